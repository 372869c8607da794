//! The request `ipccommand` sends `ipcexec` (behaviour.md §4), as the
//! original writes it: three netstrings, the target uid in decimal, the
//! argument count in decimal, then the arguments, each followed by NUL:
//! `1:0,1:2,11:echo\0hello\0,`. What the client writes after it is the
//! program's standard input.
//!
//! Ours only: a request may start with the netstring `1:F,`, sent with the
//! client's descriptors 0, 1 and 2 attached (SCM_RIGHTS): the program then
//! runs on those, and the server answers with its wait status, a netstring
//! of decimal digits. The original's ipcexec reads `F` as a uid and
//! refuses the request, so a client knows at once that a server does not
//! do this.
//!
//! Reading is bounded (lengths, argument count, a deadline) and exact:
//! [`read`] takes the request and nothing after it off the connection, so
//! the program's input is whole however the client's writes arrive.

use crate::netstring::{self, HEADER_MAX};
use crate::socket::{self, FDS_MAX, FDS_ROOM};
use arrayvec::ArrayVec;
use core::ffi::CStr;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// Most bytes of the arguments netstring's data.
pub const ARGS_MAX: usize = 131072;
/// Most arguments.
pub const COUNT_MAX: usize = 1024;
/// A buffer that holds any request: the marker, uid and count netstrings
/// and the arguments', each with a length of up to 20 digits (leading
/// zeros are valid) and the colon and comma around its data (`F`, at most
/// 10 bytes, 10 bytes, at most ARGS_MAX).
pub const BUFFER: usize = (HEADER_MAX + 1 + 1) + 2 * (HEADER_MAX + 10 + 1) + (HEADER_MAX + ARGS_MAX + 1);
/// The netstring that starts a request with descriptors.
pub const WITH_FDS: &[u8] = b"1:F,";

/// A whole request, borrowed from the buffer it was read into.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'b> {
    /// Whether the client sent its descriptors 0, 1 and 2 with it.
    pub with_fds: bool,
    /// The uid to run as.
    pub uid: u32,
    /// The arguments, each ending with NUL; the first is the program.
    args: &'b [u8],
}

impl<'b> Request<'b> {
    /// The arguments, the program first.
    pub fn args(&self) -> impl Iterator<Item = &'b CStr> + '_ {
        let mut rest = self.args;
        core::iter::from_fn(move || {
            let end = memchr::memchr(0, rest)?;
            // Cannot fail: exactly one NUL, at the end.
            let arg = crate::runtime::cstr_with_nul(&rest[..=end]);
            rest = &rest[end + 1..];
            arg
        })
    }

    /// The program asked for: the first argument.
    pub fn program(&self) -> &'b [u8] {
        &self.args[..memchr::memchr(0, self.args).unwrap_or(0)]
    }
}

/// Why a request is refused: the reason in `bad ipc request: REASON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Not three netstrings.
    Syntax,
    /// The uid is not a decimal number (or is 4294967295).
    Uid,
    /// The count is not a number from 1 to [`COUNT_MAX`].
    Count,
    /// The arguments do not end with NUL, or their number is not the count.
    Arguments,
    /// Longer than [`ARGS_MAX`].
    TooLong,
    /// `1:F,` came without descriptors 0, 1 and 2, or descriptors without it.
    Descriptors,
    /// The client closed the connection before the end of the request.
    Truncated,
    /// The request did not arrive in time.
    TimedOut,
}

impl Bad {
    /// The reason, for `bad ipc request: REASON`.
    pub fn reason(self) -> &'static [u8] {
        match self {
            Bad::Syntax => b"not three netstrings",
            Bad::Uid => b"the uid is not a number",
            Bad::Count => b"the argument count is not a number from 1 to 1024",
            Bad::Arguments => b"the arguments do not match their count",
            Bad::TooLong => b"arguments longer than 131072 bytes",
            Bad::Descriptors => b"1:F, without exactly three descriptors, or descriptors without 1:F,",
            Bad::Truncated => b"connection closed before the end",
            Bad::TimedOut => b"not received in time",
        }
    }
}

fn field(buf: &[u8], at: usize, max: usize, bad: Bad) -> Result<Option<(&[u8], usize)>, Bad> {
    match netstring::parse(&buf[at..], max) {
        Ok(Some((data, used))) => Ok(Some((data, at + used))),
        Ok(None) => Ok(None),
        Err(netstring::Error::TooLong) => Err(bad),
        Err(netstring::Error::Syntax) => Err(Bad::Syntax),
    }
}

/// The request at the front of `buf`, if it is all there, and the bytes it
/// takes. `Ok(None)`: a valid beginning, more is needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, Bad> {
    let Some((first, mut at)) = field(buf, 0, UID_TEXT_MAX, Bad::Uid)? else { return Ok(None) };
    let with_fds = first == b"F";
    let uid = if with_fds {
        let Some((uid, next)) = field(buf, at, UID_TEXT_MAX, Bad::Uid)? else { return Ok(None) };
        at = next;
        uid
    } else {
        first
    };
    let uid = crate::uidgid::parse_id(uid).ok_or(Bad::Uid)?;
    let Some((count, next)) = field(buf, at, 10, Bad::Count)? else { return Ok(None) };
    let count = crate::num::parse_u32(count).map(|n| n as usize).filter(|n| (1..=COUNT_MAX).contains(n));
    let count = count.ok_or(Bad::Count)?;
    let Some((args, end)) = field(buf, next, ARGS_MAX, Bad::TooLong)? else { return Ok(None) };
    if args.last() != Some(&0) || memchr::memchr_iter(0, args).count() != count {
        return Err(Bad::Arguments);
    }
    Ok(Some((Request { with_fds, uid, args }, end)))
}

/// Longest uid a request carries, in decimal text: what [`parse`] takes
/// (leading zeros count).
pub const UID_TEXT_MAX: usize = 10;

/// The longest [`header`]: the marker, three `LEN:`s, the uid, the count
/// and two commas.
const REQUEST_HEADER_MAX: usize = WITH_FDS.len() + 3 * HEADER_MAX + UID_TEXT_MAX + crate::num::U64_DIGITS + 2;

/// Writes the header of a request for `uid` and `count` arguments of
/// `args_len` bytes in all (NULs included); the arguments and
/// the final `,` follow it. `uid` is at most [`UID_TEXT_MAX`] bytes
/// (callers check: a longer one would be cut, and no reader takes it).
pub fn header(with_fds: bool, uid: &[u8], count: usize, args_len: usize) -> ArrayVec<u8, REQUEST_HEADER_MAX> {
    let mut digits = [0; crate::num::U64_DIGITS];
    let count = crate::num::fmt_u64(count as u64, &mut digits);
    crate::bounded::join([
        if with_fds { WITH_FDS } else { b"" },
        &netstring::header(uid.len()),
        uid,
        b",",
        &netstring::header(count.len()),
        count,
        b",",
        &netstring::header(args_len),
    ])
}

/// Where ipcdo and ipcrun find the ipcexec server unless
/// `$IPCEXEC_SOCKET` says otherwise: the original's compiled-in path.
pub const SOCKET_DEFAULT: &CStr = c"/service/ipcexec/s";

/// What `ipcdo` and `ipcrun` do: executes `ipcclient -l0 SOCKET ipccommand
/// [-F] UID prog...`, both programs taken from the directory of the running
/// one, SOCKET from `$IPCEXEC_SOCKET` or [`SOCKET_DEFAULT`].
pub fn run_client(
    start: crate::runtime::Start,
    uid: &[u8],
    with_fds: bool,
    prog: crate::runtime::CStrArray<'static>,
) -> ! {
    use crate::log;
    let dir = crate::exec::own_directory(start);
    let socket = crate::env::get(start.envp, b"IPCEXEC_SOCKET");
    let argv = crate::strvec::StrVec::take();
    let built = argv
        .push_concat(&[&dir, b"/ipcclient"])
        .and_then(|()| argv.push_borrowed(c"-l0"))
        // A socket path starting with `-` is still a path.
        .and_then(|()| argv.push_borrowed(c"--"))
        .and_then(|()| match socket {
            Some(s) => argv.push_concat(&[s]),
            None => argv.push_borrowed(SOCKET_DEFAULT),
        })
        .and_then(|()| argv.push_concat(&[&dir, b"/ipccommand"]))
        .and_then(|()| if with_fds { argv.push_borrowed(c"-F") } else { Ok(()) })
        .and_then(|()| argv.push_concat(&[uid]))
        .and_then(|()| argv.push_all(prog));
    if let Err(e) = built {
        log::die_sys(e, &[b"build the command line"]);
    }
    crate::exec::exec_or_die(argv.finish(), start.envp)
}

/// What came with a request: the client's descriptors 0, 1 and 2, when it
/// sent them (a request is refused with more: the room for one more is
/// how that is seen).
pub type Fds = ArrayVec<OwnedFd, FDS_ROOM>;

/// Reads one request from `from` into `buf` (at least [`BUFFER`] bytes),
/// waiting at most until `deadline`, and takes exactly
/// its bytes off the connection. On a socket it peeks, then takes what
/// the request spans; on anything else (a pipe) it reads a byte at a
/// time. Descriptors that come with it are returned; a request announcing
/// them must bring exactly three, and one that does not, none.
pub fn read<'b>(from: BorrowedFd<'_>, buf: &'b mut [u8], deadline: &Deadline) -> Result<(Request<'b>, Fds), Bad> {
    let mut fds = Fds::new();
    let mut have = 0;
    let mut socket = true;
    let end = loop {
        wait_readable(from, deadline)?;
        // What is there, on a socket without taking it; elsewhere one byte,
        // taken (never more than the request).
        let got = if socket {
            match socket::recv_with_fds(from, &mut buf[have..], true, &mut fds) {
                Err(Errno::NOTSOCK) => {
                    socket = false;
                    continue;
                }
                r => r,
            }
        } else if have < buf.len() {
            crate::io::read(from, &mut buf[have..have + 1])
        } else {
            return Err(Bad::TooLong);
        };
        let got = match got {
            Ok(0) | Err(_) => return Err(Bad::Truncated),
            Ok(n) => n,
        };
        match parse(&buf[..have + got]) {
            Err(e) => return Err(e),
            Ok(Some((_, end))) => {
                take(from, &mut buf[have..end], socket, &mut fds)?;
                break end;
            }
            Ok(None) if have + got == buf.len() => return Err(Bad::TooLong),
            // Everything seen is request: take it, and look for more.
            Ok(None) => {
                take(from, &mut buf[have..have + got], socket, &mut fds)?;
                have += got;
            }
        }
    };
    let Ok(Some((request, _))) = parse(&buf[..end]) else { return Err(Bad::Syntax) };
    if fds.len() != if request.with_fds { FDS_MAX } else { 0 } {
        return Err(Bad::Descriptors);
    }
    Ok((request, fds))
}

/// Takes the bytes of `buf` off the connection (a copy of them is already
/// there), with their descriptors; off anything but a socket they were
/// taken when read.
fn take(from: BorrowedFd<'_>, buf: &mut [u8], socket: bool, fds: &mut Fds) -> Result<(), Bad> {
    let mut done = 0;
    while socket && done < buf.len() {
        match socket::recv_with_fds(from, &mut buf[done..], false, fds) {
            Ok(0) | Err(_) => return Err(Bad::Truncated),
            Ok(n) => done += n,
        }
    }
    Ok(())
}

/// Waits until `from` is readable, or fails when `deadline` has passed.
fn wait_readable(from: BorrowedFd<'_>, deadline: &Deadline) -> Result<(), Bad> {
    loop {
        let mut fds = [PollFd::from_borrowed_fd(from, PollFlags::IN), PollFd::new(&deadline.0, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) if !fds[1].revents().is_empty() => return Err(Bad::TimedOut),
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(_) => return Err(Bad::Truncated),
        }
    }
}

/// A time limit the kernel keeps: a timer descriptor (close-on-exec) that
/// becomes readable when the time is up, so that no clock is read here
/// (reading one would bring in the vDSO parser, 2 KB of every program).
pub struct Deadline(OwnedFd);

impl Deadline {
    /// The limit `secs` seconds and `nanos` nanoseconds (below a second)
    /// from now; at least one nanosecond: a timer of zero never fires.
    /// (Not milliseconds: dividing a 64-bit count would bring the
    /// compiler's 64-bit division, 1.7 KB, into 32-bit ARM programs.)
    pub fn after(secs: u64, nanos: u32) -> Result<Deadline, Errno> {
        use rustix::time::{
            timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
        };
        let timer = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::CLOEXEC)?;
        let nanos = nanos.max(u32::from(secs == 0)).min(999_999_999);
        let it_value = Timespec { tv_sec: secs.min(i64::MAX as u64) as i64, tv_nsec: nanos.into() };
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        timerfd_settime(&timer, TimerfdTimerFlags::empty(), &Itimerspec { it_interval: zero, it_value })?;
        Ok(Deadline(timer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;

    fn deadline_in_5s() -> Deadline {
        Deadline::after(5, 0).unwrap()
    }

    fn args(r: &Request<'_>) -> Vec<String> {
        r.args().map(|a| a.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn the_originals_requests() {
        let (r, used) = parse(b"1:0,1:2,11:echo\0hello\0,stdin").unwrap().unwrap();
        assert_eq!(used, 23);
        assert_eq!((r.with_fds, r.uid, r.program()), (false, 0, &b"echo"[..]));
        assert_eq!(args(&r), ["echo", "hello"]);
        let (r, _) = parse(b"2:00,2:01,5:echo\0,").unwrap().unwrap();
        assert_eq!((r.uid, args(&r)), (0, vec!["echo".to_string()]));
        let (r, _) = parse(b"1:F,4:1000,1:1,4:tty\0,").unwrap().unwrap();
        assert_eq!((r.with_fds, r.uid, r.program()), (true, 1000, &b"tty"[..]));
        let (r, _) = parse(b"1:0,1:2,2:\0\0,").unwrap().unwrap();
        assert_eq!(args(&r), ["", ""]);
    }

    #[test]
    fn partial_requests_wait_for_more() {
        let whole = b"1:F,1:0,1:2,11:echo\0hello\0,";
        for cut in 0..whole.len() {
            assert_eq!(parse(&whole[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn bad_requests() {
        let cases: [(&[u8], Bad); 15] = [
            (b"x:0,", Bad::Syntax),
            (b"1:a,1:1,5:echo\0,", Bad::Uid),
            (b"2:-1,1:1,5:echo\0,", Bad::Uid),
            (b"10:4294967295,1:1,5:echo\0,", Bad::Uid),
            (b"11:", Bad::Uid),
            (b"1:F,1:F,1:1,5:echo\0,", Bad::Uid),
            (b"1:0,1:0,0:,", Bad::Count),
            (b"1:0,4:1025,", Bad::Count),
            (b"1:0,11:", Bad::Count),
            (b"1:0,1:2,5:echo\0,", Bad::Arguments),
            (b"1:0,1:1,4:echo,", Bad::Arguments),
            (b"1:0,1:1,6:ec\0ho\0,", Bad::Arguments),
            (b"1:0,1:1,5:echo\0x", Bad::Syntax),
            (b"1:0;1:1,5:echo\0,", Bad::Syntax),
            (b"1:0,1:1,131073:", Bad::TooLong),
        ];
        for (bytes, bad) in cases {
            assert_eq!(parse(bytes), Err(bad), "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn headers_make_requests_the_parser_reads() {
        for with_fds in [false, true] {
            let mut bytes = header(with_fds, b"1000", 2, 11).to_vec();
            bytes.extend_from_slice(b"echo\0hello\0,");
            let (r, used) = parse(&bytes).unwrap().unwrap();
            assert_eq!((r.with_fds, r.uid, used), (with_fds, 1000, bytes.len()));
            assert_eq!(args(&r), ["echo", "hello"]);
        }
    }

    #[test]
    fn reading_takes_the_request_and_nothing_more() {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (a, b) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
        // Written in pieces, with the program's input right behind it.
        for piece in [&b"1:0,1:"[..], b"2,11:echo\0he", b"llo\0,input"] {
            rustix::io::write(&a, piece).unwrap();
        }
        let mut buf = vec![0u8; BUFFER];
        let (r, fds) = read(b.as_fd(), &mut buf, &deadline_in_5s()).unwrap();
        assert_eq!((args(&r), fds.len()), (vec!["echo".to_string(), "hello".to_string()], 0));
        let mut rest = [0u8; 16];
        assert_eq!(rustix::io::read(&b, &mut rest), Ok(5));
        assert_eq!(&rest[..5], b"input");
    }

    #[test]
    fn the_longest_valid_request_fits_the_buffer() {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (a, b) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
        // Every length padded to 20 digits, ARGS_MAX bytes of arguments.
        let mut bytes = format!("{:020}:0000000001,{:020}:0000000001,{:020}:", 10, 10, ARGS_MAX).into_bytes();
        bytes.extend(std::iter::repeat_n(b'a', ARGS_MAX - 1));
        bytes.extend(b"\0,");
        let writer = std::thread::spawn(move || {
            let mut sent = 0;
            while sent < bytes.len() {
                sent += rustix::io::write(&a, &bytes[sent..]).unwrap();
            }
        });
        let mut buf = vec![0u8; BUFFER];
        let (r, _) = read(b.as_fd(), &mut buf, &deadline_in_5s()).unwrap();
        writer.join().unwrap();
        assert_eq!((r.uid, r.program().len()), (1, ARGS_MAX - 1));
    }

    #[test]
    fn descriptors_come_with_the_marker() {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (a, b) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let three = [w.as_fd(), w.as_fd(), w.as_fd()];
        socket::send_with_fds(&a, WITH_FDS, &three).unwrap();
        rustix::io::write(&a, b"1:0,1:1,4:tty\0,").unwrap();
        let mut buf = vec![0u8; BUFFER];
        let (r, fds) = read(b.as_fd(), &mut buf, &deadline_in_5s()).unwrap();
        assert!(r.with_fds);
        assert_eq!(fds.len(), 3);
        // The marker without descriptors is refused.
        rustix::io::write(&a, b"1:F,1:0,1:1,4:tty\0,").unwrap();
        assert_eq!(read(b.as_fd(), &mut buf, &deadline_in_5s()).err(), Some(Bad::Descriptors));
    }

    #[test]
    fn descriptors_without_the_marker_are_refused() {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let mut buf = vec![0u8; BUFFER];
        // One, two, three, or more than the room for them, in one message
        // or two.
        for counts in [&[1][..], &[2], &[3], &[3, 3], &[1, 3]] {
            let (a, b) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
            for (i, &n) in counts.iter().enumerate() {
                let piece: &[u8] = if i == 0 { b"1:0,1:1," } else { b"4:tty\0," };
                socket::send_with_fds(&a, piece, &[w.as_fd(); 3][..n]).unwrap();
            }
            if counts.len() == 1 {
                rustix::io::write(&a, b"4:tty\0,").unwrap();
            }
            assert_eq!(read(b.as_fd(), &mut buf, &deadline_in_5s()).err(), Some(Bad::Descriptors), "{counts:?}");
        }
    }

    #[test]
    fn silence_and_hangups_are_bounded() {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (a, b) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
        rustix::io::write(&a, b"1:0,").unwrap();
        let mut buf = vec![0u8; BUFFER];
        assert_eq!(read(b.as_fd(), &mut buf, &Deadline::after(0, 50_000_000).unwrap()).err(), Some(Bad::TimedOut));
        assert_eq!(read(b.as_fd(), &mut buf, &Deadline::after(0, 0).unwrap()).err(), Some(Bad::TimedOut));
        drop(a);
        assert_eq!(read(b.as_fd(), &mut buf, &deadline_in_5s()).err(), Some(Bad::Truncated));
    }

    #[test]
    fn pipes_are_read_a_byte_at_a_time() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&w, b"1:0,1:1,4:cat\0,rest").unwrap();
        let mut buf = vec![0u8; BUFFER];
        let (req, _) = read(r.as_fd(), &mut buf, &deadline_in_5s()).unwrap();
        assert_eq!(req.program(), b"cat");
        let mut rest = [0u8; 8];
        assert_eq!(rustix::io::read(&r, &mut rest), Ok(4));
    }
}
