//! ipcconnect PATH: connect to the Unix socket PATH and copy stdin to the
//! server and the server's output to stdout, both at once (one poll loop
//! over two fixed buffers, so large transfers both ways cannot deadlock).
//! When stdin ends, the socket's write side is shut down and reading goes
//! on; when the server closes, whatever it sent is written out and the
//! program exits 0, as mconnect does.
//!
//! If the server stops reading (the socket says `broken pipe` or
//! `connection reset`), the rest of stdin is dropped and the server's
//! output is still copied out: a server may answer and close without
//! reading everything.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use arrayvec::ArrayVec;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags, Shutdown};
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args, io, log, socket};

ucspi_ipc::program!(main);

const BUFFER_SIZE: usize = 32768;

/// Bytes read from one side and not yet written to the other.
struct Buffer {
    data: [u8; BUFFER_SIZE],
    start: usize,
    end: usize,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer { data: [0; BUFFER_SIZE], start: 0, end: 0 }
    }
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    fn consumed(&mut self, n: usize) {
        self.start += n;
    }
    /// Room to read into; only asked for when empty, so it is all of it.
    fn space(&mut self) -> &mut [u8] {
        self.start = 0;
        self.end = 0;
        &mut self.data
    }
    fn filled(&mut self, n: usize) {
        self.end = n;
    }
    fn clear(&mut self) {
        self.start = self.end;
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Stdin,
    Socket,
    Stdout,
}

fn main(start: Start) -> ! {
    log::init(c"ipcconnect", c"path");
    let [path] = args::exact_operands(start.argv);
    let conn = socket::connect_or_die(path, None);
    relay(conn.as_fd(), path.to_bytes())
}

fn relay(sock: BorrowedFd<'_>, path: &[u8]) -> ! {
    let (stdin, stdout) = (io::stdin(), io::stdout());
    let mut up = Buffer::new(); // stdin to the server
    let mut down = Buffer::new(); // the server to stdout
    let mut reading_stdin = true;
    let mut sending = true;
    let mut server_open = true;
    loop {
        if !server_open && down.is_empty() {
            runtime::exit(0);
        }
        if sending && !reading_stdin && up.is_empty() {
            // Fails only if the server is already gone, which reading
            // will tell.
            let _ = rustix::net::shutdown(sock, Shutdown::Write);
            sending = false;
        }
        let mut fds = ArrayVec::<PollFd<'_>, 3>::new();
        let mut slots = ArrayVec::<Slot, 3>::new();
        if reading_stdin && up.is_empty() {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
            slots.push(Slot::Stdin);
        }
        let want_read = server_open && down.is_empty();
        let want_send = sending && !up.is_empty();
        if want_read || want_send {
            let mut events = PollFlags::empty();
            events.set(PollFlags::IN, want_read);
            events.set(PollFlags::OUT, want_send);
            fds.push(PollFd::from_borrowed_fd(sock, events));
            slots.push(Slot::Socket);
        }
        if !down.is_empty() {
            fds.push(PollFd::from_borrowed_fd(stdout, PollFlags::OUT));
            slots.push(Slot::Stdout);
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => log::fatal_sys(e, &[b"poll"]),
        }
        for (fd, slot) in fds.iter().zip(slots.iter()) {
            if fd.revents().is_empty() {
                continue;
            }
            match slot {
                Slot::Stdin => match io::read(stdin, up.space()) {
                    Ok(0) => reading_stdin = false,
                    Ok(n) => up.filled(n),
                    // An inherited non-blocking stdin: poll again.
                    Err(Errno::AGAIN) => {}
                    Err(e) => log::fatal_sys(e, &[b"read from stdin"]),
                },
                Slot::Socket => {
                    if want_send {
                        match rustix::net::send(sock, up.pending(), SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                            Ok(n) => up.consumed(n),
                            Err(Errno::AGAIN | Errno::INTR) => {}
                            Err(Errno::PIPE | Errno::CONNRESET) => {
                                // The server no longer reads.
                                up.clear();
                                reading_stdin = false;
                                sending = false;
                            }
                            Err(e) => log::fatal_sys(e, &[b"write to ", path]),
                        }
                    }
                    if want_read {
                        match rustix::net::recv(sock, down.space(), RecvFlags::DONTWAIT) {
                            // A reset comes after all the data the server sent.
                            Ok((0, _)) | Err(Errno::CONNRESET) => server_open = false,
                            Ok((n, _)) => down.filled(n),
                            Err(Errno::AGAIN | Errno::INTR) => {}
                            Err(e) => log::fatal_sys(e, &[b"read from ", path]),
                        }
                    }
                }
                Slot::Stdout => match rustix::io::write(stdout, down.pending()) {
                    Ok(n) => down.consumed(n),
                    Err(Errno::INTR | Errno::AGAIN) => {}
                    Err(e) => log::fatal_sys(e, &[b"write to stdout"]),
                },
            }
        }
    }
}
