//! Relaying a client's standard input and output to and from a server,
//! both directions at once: one poll loop over two fixed buffers, so that
//! large transfers both ways cannot deadlock. When the input ends, the
//! socket's write side is shut down (so a server that reads to end of file
//! sees it) and reading goes on; when the server closes, whatever it sent
//! is written out and the relay ends.
//!
//! If the server stops reading (the socket says `broken pipe` or
//! `connection reset`), the rest of the input is dropped and the server's
//! output is still copied out: a server may answer and close without
//! reading everything. A closed input (started with descriptor 0 closed)
//! is an empty one. This is `ipcconnect` and `ipccommand`'s loop; it
//! prints nothing, it says what failed.

use arrayvec::ArrayVec;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags, Shutdown};

const BUFFER_SIZE: usize = 32768;

/// The four ends of a relay.
#[derive(Clone, Copy)]
pub struct Ends<'a> {
    /// What goes to the server (standard input).
    pub input: BorrowedFd<'a>,
    /// The socket, as read.
    pub from_server: BorrowedFd<'a>,
    /// The socket, as written (the same socket, or a copy of it).
    pub to_server: BorrowedFd<'a>,
    /// Where the server's output goes (standard output).
    pub output: BorrowedFd<'a>,
}

/// Which step of a relay failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Reading the input.
    ReadInput(Errno),
    /// Writing to the server.
    WriteServer(Errno),
    /// Reading from the server.
    ReadServer(Errno),
    /// Writing the output.
    WriteOutput(Errno),
    /// Waiting for any of them.
    Poll(Errno),
}

/// The two buffers of a relay, 32 KiB each way. A caller keeps them in
/// `.bss` (a [`crate::runtime::Table`]) rather than on the stack, where
/// the stack probes of the frame holding them would touch all 16 pages at
/// every start; in `.bss` a relay touches only the pages it fills.
pub struct Buffers {
    pub(crate) up: Buffer,
    pub(crate) down: Buffer,
}

impl Buffers {
    /// Two empty buffers (all zero bytes, so a static of them is `.bss`).
    pub const fn new() -> Buffers {
        Buffers { up: Buffer::new(), down: Buffer::new() }
    }
}

impl Default for Buffers {
    fn default() -> Buffers {
        Buffers::new()
    }
}

/// Bytes read from one side and not yet written to the other.
pub(crate) struct Buffer {
    data: [u8; BUFFER_SIZE],
    start: usize,
    end: usize,
}

impl Buffer {
    const fn new() -> Buffer {
        Buffer { data: [0; BUFFER_SIZE], start: 0, end: 0 }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }
    pub(crate) fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    pub(crate) fn consumed(&mut self, n: usize) {
        self.start += n;
    }
    /// Room to read into; only asked for when empty, so it is all of it.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        self.start = 0;
        self.end = 0;
        &mut self.data
    }
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = n;
    }
    pub(crate) fn clear(&mut self) {
        self.start = self.end;
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Input,
    FromServer,
    ToServer,
    Output,
}

/// Relays until the server has closed and all it sent is written out,
/// through `buffers` (emptied first).
pub fn relay(ends: Ends<'_>, buffers: &mut Buffers) -> Result<(), Failure> {
    let Buffers { up, down } = buffers; // up: input to the server; down: the server to output
    up.clear();
    down.clear();
    let mut reading_input = true;
    let mut sending = true;
    let mut server_open = true;
    loop {
        if !server_open && down.is_empty() {
            return Ok(());
        }
        if sending && !reading_input && up.is_empty() {
            // Fails only if the server is already gone, which reading
            // will tell.
            let _ = rustix::net::shutdown(ends.to_server, Shutdown::Write);
            sending = false;
        }
        let mut fds = ArrayVec::<PollFd<'_>, 4>::new();
        let mut slots = ArrayVec::<Slot, 4>::new();
        let mut watch = |fd, events, slot| {
            fds.push(PollFd::from_borrowed_fd(fd, events));
            slots.push(slot);
        };
        if reading_input && up.is_empty() {
            watch(ends.input, PollFlags::IN, Slot::Input);
        }
        if server_open && down.is_empty() {
            watch(ends.from_server, PollFlags::IN, Slot::FromServer);
        }
        if sending && !up.is_empty() {
            watch(ends.to_server, PollFlags::OUT, Slot::ToServer);
        }
        if !down.is_empty() {
            watch(ends.output, PollFlags::OUT, Slot::Output);
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(Failure::Poll(e)),
        }
        for (fd, slot) in fds.iter().zip(slots.iter()) {
            if fd.revents().is_empty() {
                continue;
            }
            match slot {
                Slot::Input => match crate::io::read(ends.input, up.space()) {
                    // A closed input is an empty one: the server's output
                    // still comes out.
                    Ok(0) | Err(Errno::BADF) => reading_input = false,
                    Ok(n) => up.filled(n),
                    // An inherited non-blocking input: poll again.
                    Err(Errno::AGAIN) => {}
                    Err(e) => return Err(Failure::ReadInput(e)),
                },
                Slot::ToServer => {
                    match rustix::net::send(ends.to_server, up.pending(), SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                        Ok(n) => up.consumed(n),
                        Err(Errno::AGAIN | Errno::INTR) => {}
                        Err(Errno::PIPE | Errno::CONNRESET) => {
                            // The server no longer reads.
                            up.clear();
                            reading_input = false;
                            sending = false;
                        }
                        Err(e) => return Err(Failure::WriteServer(e)),
                    }
                }
                Slot::FromServer => match rustix::net::recv(ends.from_server, down.space(), RecvFlags::DONTWAIT) {
                    // A reset comes after all the data the server sent.
                    Ok((0, _)) | Err(Errno::CONNRESET) => server_open = false,
                    Ok((n, _)) => down.filled(n),
                    Err(Errno::AGAIN | Errno::INTR) => {}
                    Err(e) => return Err(Failure::ReadServer(e)),
                },
                Slot::Output => match rustix::io::write(ends.output, down.pending()) {
                    Ok(n) => down.consumed(n),
                    Err(Errno::INTR | Errno::AGAIN) => {}
                    Err(e) => return Err(Failure::WriteOutput(e)),
                },
            }
        }
    }
}
