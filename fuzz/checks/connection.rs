//! Connections for the request checks: a socketpair or a pipe, a writer
//! thread that writes on one end while the code under test reads the
//! other, and what is left on a connection after the code is done.

use rustix::fd::OwnedFd;
use std::sync::{mpsc, Mutex, OnceLock};

/// What the writer thread does for one input: it owns the writing end and
/// hangs up by dropping it when done.
pub type Job = Box<dyn FnOnce() + Send>;

/// A connection, the reading end first: a pipe or a Unix stream
/// socketpair, both close-on-exec (replayed by `cargo test`, the checks
/// run beside tests that start programs: a write end they inherited would
/// keep the reader from its end of file).
pub fn pair(pipe: bool) -> (OwnedFd, OwnedFd) {
    if pipe {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe")
    } else {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).expect("socketpair")
    }
}

/// Writes all of `data`, stopping at an error (the reader gone).
pub fn write_all(to: &OwnedFd, mut data: &[u8], pipe: bool) {
    while !data.is_empty() {
        let r = if pipe {
            rustix::io::write(to, data)
        } else {
            rustix::net::send(to, data, rustix::net::SendFlags::NOSIGNAL)
        };
        match r {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Gives `job` to the writer thread, started the first time (one thread
/// for all inputs: starting one per input would cost more than the rest
/// of a check).
pub fn in_background(job: Job) {
    static WRITER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let writer = WRITER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::spawn(move || queue.into_iter().for_each(|job| job()));
        Mutex::new(jobs)
    });
    writer.lock().unwrap_or_else(|e| e.into_inner()).send(job).expect("the writer thread is gone");
}

/// Everything left on `from` up to the hangup, read through `buf`: once it
/// returns, the writer is done with this connection.
pub fn rest(from: &OwnedFd, buf: &mut [u8]) -> Vec<u8> {
    let mut rest = Vec::new();
    loop {
        match rustix::io::read(from, &mut buf[..]) {
            Ok(0) => return rest,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("reading the rest: {e}"),
        }
    }
}
