//! ipcexec's request path through a socketpair, descriptors included: the
//! input says what a client writes, in which `sendmsg` calls, and which
//! calls carry descriptors (SCM_RIGHTS) and how many, more than the three
//! a request may bring included; `request::read` reads the other end with
//! a deadline, and must do what [`expected`] says.
//!
//! The input is a control byte MODE, then N call descriptions of two
//! bytes, LEN and FDS, N being MODE's high nibble, then the bytes written
//! (those cut short are what is there). Call i writes the next LEN + 1
//! bytes; FDS's low 3 bits say how many descriptors it carries, 0 to
//! [`FDS_MOST`] (7: no control message at all, where 0 is an empty
//! SCM_RIGHTS), the first of them being file FDS >> 3 of the [`pool`] and
//! the others the files after it, round. What the calls leave of the
//! bytes goes in one more call, without descriptors; calls that would
//! carry no byte are not made (a stream socket drops their descriptors).
//! MODE bit 0: everything is written before the read starts (one thread,
//! the same steps on every run), else a writer thread writes while the
//! read goes on, yielding between calls.
//!
//! The model, from request.rs and socket.rs's documentation: a stream
//! socket hands a call's descriptors over with the call's first byte, so
//! the descriptors that come with a request are those of the calls whose
//! first byte is one of the request's. With the bytes all there is (the
//! writer hangs up after them), `read` must give what
//! [`request::reference_parse`] makes of all the bytes, more needed being
//! `Truncated`; a whole request is refused (`Descriptors`) unless exactly
//! three descriptors came with it if it starts with `1:F,`, and none if
//! not; an accepted one comes with exactly the files sent (in order, each
//! close-on-exec), and everything after its bytes stays on the socket.
//! Whatever happens, no descriptor of the files sent is left open: the
//! number of descriptors in /proc/self/fd that are one of the pool's files
//! is the same after a run as before it. (Only those are counted, not all
//! of /proc/self/fd: `cargo test` runs other checks in other threads,
//! opening and closing files of their own meanwhile, and these files are
//! the only ones `read` could leave open.)

use super::connection;
use super::request::{self as model, Outcome, Whole};
use super::support::{self, show, Text};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;
use ucspi_ipc::request::{self, Bad};
use ucspi_ipc::socket::FDS_ROOM;

/// The most descriptors one call carries: twice what a request may bring.
pub const FDS_MOST: usize = 6;
/// The files sent, each with an identity of its own.
const POOL: usize = 4;
/// The most bytes written before the read starts (MODE bit 0): well
/// under what a socket's send buffer holds, so that writing never waits
/// for a reader that has not started.
const QUEUED_MOST: usize = 8192;
/// Milliseconds `read` is given: only a hang takes that long, as the writer
/// always hangs up.
const DEADLINE_SECS: u64 = 5;

/// A file's identity: device and inode.
type Id = (u64, u64);

/// The files sent as descriptors: the read end of a pipe and three files
/// in memory, made once, and their identities.
fn pool() -> &'static [(OwnedFd, Id); POOL] {
    static POOL_FILES: OnceLock<[(OwnedFd, Id); POOL]> = OnceLock::new();
    POOL_FILES.get_or_init(|| {
        let (pipe, _) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
        let files = [pipe, support::empty_file(), support::empty_file(), support::empty_file()];
        files.map(|f| {
            let id = identity(&f);
            (f, id)
        })
    })
}

fn identity(fd: impl AsFd) -> Id {
    let st = rustix::fs::fstat(fd).expect("fstat");
    (st.st_dev, st.st_ino)
}

/// Which pool file `fd` is.
fn which(fd: impl AsFd) -> Option<usize> {
    let id = identity(fd);
    pool().iter().position(|(_, i)| *i == id)
}

/// How many of this process's descriptors are pool files.
fn pool_descriptors() -> usize {
    let ids: Vec<Id> = pool().iter().map(|(_, id)| *id).collect();
    let open = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    // A descriptor closed since the listing (another thread's) is none.
    open.filter_map(|e| std::fs::metadata(e.ok()?.path()).ok()).filter(|m| ids.contains(&(m.dev(), m.ino()))).count()
}

/// One `sendmsg` call: where its bytes are, and the pool files it carries
/// (None: no control message).
#[derive(Debug, Clone)]
pub struct Call {
    pub bytes: std::ops::Range<usize>,
    pub fds: Option<Vec<usize>>,
}

/// The input, decoded: whether everything is written before the read, the
/// calls, and the bytes.
pub fn decode(data: &[u8]) -> (bool, Vec<Call>, &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return (true, Vec::new(), &[]) };
    let n = usize::from(mode >> 4).min(rest.len() / 2);
    let (described, bytes) = rest.split_at(2 * n);
    let mut calls = Vec::new();
    let mut at = 0;
    for d in described.chunks_exact(2) {
        let end = (at + usize::from(d[0]) + 1).min(bytes.len());
        let count = usize::from(d[1] & 7);
        let first = usize::from(d[1] >> 3);
        let fds = (count <= FDS_MOST).then(|| (0..count).map(|k| (first + k) % POOL).collect());
        if end > at {
            calls.push(Call { bytes: at..end, fds });
        }
        at = end;
    }
    if at < bytes.len() {
        calls.push(Call { bytes: at..bytes.len(), fds: None });
    }
    (mode & 1 != 0 && bytes.len() <= QUEUED_MOST, calls, bytes)
}

/// What `read` gives, or should.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Bad(Bad),
    /// The request, the pool files that came with it, and what was left
    /// on the socket.
    Read(Whole, Vec<usize>, Text),
}

/// What the model says `read` gives for `bytes` written in `calls`.
pub fn expected(calls: &[Call], bytes: &[u8]) -> Read {
    let w = match model::reference_parse(bytes) {
        Outcome::More => return Read::Bad(Bad::Truncated),
        Outcome::Bad(bad) => return Read::Bad(bad),
        Outcome::Whole(w) => w,
    };
    let came: Vec<usize> =
        calls.iter().filter(|c| c.bytes.start < w.used).flat_map(|c| c.fds.iter().flatten().copied()).collect();
    if came.len() != if w.with_fds { ucspi_ipc::socket::FDS_MAX } else { 0 } {
        return Read::Bad(Bad::Descriptors);
    }
    let rest = Text::from(&bytes[w.used..]);
    Read::Read(Whole { used: 0, ..w }, came, rest)
}

/// Sends `data` in one `sendmsg`, with `fds` attached if given; how much
/// of `data` went out (0 after an error: the reader is gone).
fn send(to: &OwnedFd, data: &[u8], fds: Option<&[BorrowedFd<'_>]>) -> usize {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::mem::MaybeUninit;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_MOST))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if let Some(fds) = fds {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)), "{} descriptors do not fit", fds.len());
    }
    loop {
        match rustix::net::sendmsg(to, &[rustix::io::IoSlice::new(data)], &mut control, SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => {}
            r => return r.unwrap_or(0),
        }
    }
}

/// Makes `calls` on `to`, then hangs up; `yielding`: lets the reader run
/// after each.
fn write_calls(to: OwnedFd, calls: &[Call], bytes: &[u8], yielding: bool) {
    for c in calls {
        let piece = &bytes[c.bytes.clone()];
        let fds: Option<Vec<BorrowedFd<'_>>> = c.fds.as_ref().map(|f| f.iter().map(|&i| pool()[i].0.as_fd()).collect());
        let sent = send(&to, piece, fds.as_deref());
        if sent == 0 {
            return;
        }
        connection::write_all(&to, &piece[sent..], false);
        if yielding {
            std::thread::yield_now();
        }
    }
}

/// What `read` makes of `bytes` written in `calls`, and what it leaves.
fn read(queued: bool, calls: &[Call], bytes: &[u8]) -> Read {
    let (reader, writer) = connection::pair(false);
    if queued {
        write_calls(writer, calls, bytes, false);
    } else {
        let (calls, bytes) = (calls.to_vec(), bytes.to_vec());
        connection::in_background(Box::new(move || write_calls(writer, &calls, &bytes, true)));
    }
    model::with_buffer(|buf| {
        let deadline = request::Deadline::after(DEADLINE_SECS, 0).expect("a timer");
        let got = request::read(reader.as_fd(), buf, &deadline).map(|(req, fds)| {
            let Outcome::Whole(w) = model::outcome(Ok(Some((req, 0)))) else { unreachable!() };
            let files = fds
                .iter()
                .map(|fd| {
                    let flags = rustix::io::fcntl_getfd(fd).expect("fcntl");
                    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC), "a descriptor without close-on-exec");
                    which(fd).expect("a descriptor that is none of the files sent")
                })
                .collect::<Vec<_>>();
            (w, files)
        });
        let rest = Text(connection::rest(&reader, buf));
        match got {
            Ok((w, files)) => Read::Read(w, files, rest),
            Err(bad) => Read::Bad(bad),
        }
    })
}

/// The properties above, on the kernel itself.
pub fn check(data: &[u8]) {
    check_leaving(data, |_| 0);
}

/// The properties above under qemu-user, which leaks what the kernel
/// closes: it receives a message into a control buffer of its own, larger
/// than the emulated program's, and copies only the descriptors that fit
/// the program's, leaving the others open where no program sees them
/// (seen on armv7). There, a call that carries more than a read has room
/// for ([`FDS_ROOM`]) may leave its excess open; every other call, none.
pub fn check_under_qemu_user(data: &[u8]) {
    check_leaving(data, |calls| {
        calls.iter().filter_map(|c| c.fds.as_ref()).map(|f| f.len().saturating_sub(FDS_ROOM)).sum()
    });
}

/// The properties above, `leaked(calls)` descriptors of the pool's at most
/// being left open by whatever runs the read.
fn check_leaving(data: &[u8], leaked: fn(&[Call]) -> usize) {
    let (queued, calls, bytes) = decode(data);
    let open = pool_descriptors();
    let got = read(queued, &calls, bytes);
    assert_eq!(got, expected(&calls, bytes), "read({}) in calls {calls:?}", show(bytes));
    let left = pool_descriptors();
    assert!(
        (open..=open + leaked(&calls)).contains(&left),
        "descriptors left open, {} in calls {calls:?}: {left}, {open} before",
        show(bytes)
    );
}
