//! Messages on stderr: one line each, written with one `write`, starting
//! with the program's name (`NAME: fatal: unable to VERB OBJECT: REASON`,
//! `NAME: warning: ...`, `NAME: usage: ...`); errno as short human text;
//! the sanitising of strings that come from clients; the verbosity level
//! (`-q` 0, `-Q` 1, `-v` 2).
//!
//! It has no format strings: a [`Line`] is built from byte pieces and
//! numbers into a fixed buffer, cut (never overflowing) if too long. It
//! does not buffer across lines.

use crate::io;
use crate::num;
use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use rustix::io::Errno;

static NAME_PTR: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static NAME_LEN: AtomicUsize = AtomicUsize::new(0);
static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Exit code for usage errors and permanent refusals.
pub const EXIT_USAGE: i32 = 100;
/// Exit code for temporary and system errors.
pub const EXIT_TEMP: i32 = 111;

/// Sets the program name that starts every line.
pub fn set_name(name: &'static [u8]) {
    NAME_LEN.store(name.len(), Ordering::Relaxed);
    NAME_PTR.store(name.as_ptr() as *mut u8, Ordering::Relaxed);
}

/// The program name given to [`set_name`].
pub fn name() -> &'static [u8] {
    let p = NAME_PTR.load(Ordering::Relaxed);
    if p.is_null() {
        return b"ucspi-ipc";
    }
    // SAFETY: set_name stored a pointer and length of a 'static slice.
    unsafe { core::slice::from_raw_parts(p, NAME_LEN.load(Ordering::Relaxed)) }
}

/// 0: nothing, 1: errors and warnings (default), 2: also status lines.
pub fn set_verbosity(v: u8) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Longest message line; longer ones are cut.
pub const LINE_MAX: usize = 1024;
/// How much of a client-supplied string a log line shows.
pub const SANITISED_MAX: usize = 100;

/// One message line under construction.
pub struct Line(ArrayVec<u8, LINE_MAX>);

impl Line {
    /// A line starting with `NAME: `.
    pub fn new() -> Line {
        let mut l = Line(ArrayVec::new());
        l.str(name()).str(b": ");
        l
    }

    /// Appends bytes as they are (cut at the line's capacity).
    pub fn str(&mut self, s: &[u8]) -> &mut Line {
        let room = self.0.remaining_capacity().saturating_sub(1);
        let _ = self.0.try_extend_from_slice(&s[..s.len().min(room)]);
        self
    }

    /// Appends a number in decimal.
    pub fn num(&mut self, n: u64) -> &mut Line {
        let mut b = [0; num::U64_DIGITS];
        self.str(num::fmt_u64(n, &mut b))
    }

    /// Appends a string from a client, sanitised: bytes outside 33..=126,
    /// `%` and `:` become `?`; more than 100 bytes are cut and `...` added.
    pub fn sanitised(&mut self, s: &[u8]) -> &mut Line {
        for &c in s.iter().take(SANITISED_MAX) {
            let safe = (33..=126).contains(&c) && c != b'%' && c != b':';
            self.str(&[if safe { c } else { b'?' }]);
        }
        if s.len() > SANITISED_MAX {
            self.str(b"...");
        }
        self
    }

    /// Appends the human text of an errno.
    pub fn errno(&mut self, e: Errno) -> &mut Line {
        self.str(errno_text(e))
    }

    /// The line so far, without newline.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Writes the line and a newline to stderr in one write.
    pub fn emit(&mut self) {
        let _ = self.0.try_push(b'\n');
        let _ = io::write_all(io::fd(2), &self.0);
    }
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

/// `NAME: usage: NAME ARGS`, exit 100 (printed unless verbosity is 0).
pub fn usage(args: &[u8]) -> ! {
    if verbosity() >= 1 {
        Line::new().str(b"usage: ").str(name()).str(b" ").str(args).emit();
    }
    crate::runtime::exit(EXIT_USAGE)
}

/// `NAME: fatal: PIECES...`, then exit with `code`.
pub fn fatal(code: i32, pieces: &[&[u8]]) -> ! {
    if verbosity() >= 1 {
        let mut l = Line::new();
        l.str(b"fatal: ");
        for p in pieces {
            l.str(p);
        }
        l.emit();
    }
    crate::runtime::exit(code)
}

/// `NAME: fatal: unable to PIECES...: REASON`, exit 111.
pub fn fatal_sys(err: Errno, pieces: &[&[u8]]) -> ! {
    if verbosity() >= 1 {
        unable(b"fatal: ", err, pieces).emit();
    }
    crate::runtime::exit(EXIT_TEMP)
}

/// `NAME: warning: unable to PIECES...: REASON`.
pub fn warn_sys(err: Errno, pieces: &[&[u8]]) {
    if verbosity() >= 1 {
        unable(b"warning: ", err, pieces).emit();
    }
}

fn unable(kind: &[u8], err: Errno, pieces: &[&[u8]]) -> Line {
    let mut l = Line::new();
    l.str(kind).str(b"unable to ");
    for p in pieces {
        l.str(p);
    }
    l.str(b": ").errno(err);
    l
}

/// Short human text for an errno, as strerror would say it (lower case).
pub fn errno_text(e: Errno) -> &'static [u8] {
    match e {
        Errno::PERM => b"operation not permitted",
        Errno::NOENT => b"no such file or directory",
        Errno::SRCH => b"no such process",
        Errno::INTR => b"interrupted system call",
        Errno::IO => b"input/output error",
        Errno::NXIO => b"no such device or address",
        Errno::TOOBIG => b"argument list too long",
        Errno::NOEXEC => b"exec format error",
        Errno::BADF => b"bad file descriptor",
        Errno::CHILD => b"no child processes",
        Errno::AGAIN => b"resource temporarily unavailable",
        Errno::NOMEM => b"out of memory",
        Errno::ACCESS => b"permission denied",
        Errno::FAULT => b"bad address",
        Errno::BUSY => b"device or resource busy",
        Errno::EXIST => b"file exists",
        Errno::XDEV => b"invalid cross-device link",
        Errno::NOTDIR => b"not a directory",
        Errno::ISDIR => b"is a directory",
        Errno::INVAL => b"invalid argument",
        Errno::NFILE => b"too many open files in system",
        Errno::MFILE => b"too many open files",
        Errno::NOTTY => b"inappropriate ioctl for device",
        Errno::TXTBSY => b"text file busy",
        Errno::FBIG => b"file too large",
        Errno::NOSPC => b"no space left on device",
        Errno::SPIPE => b"illegal seek",
        Errno::ROFS => b"read-only file system",
        Errno::MLINK => b"too many links",
        Errno::PIPE => b"broken pipe",
        Errno::RANGE => b"numerical result out of range",
        Errno::NAMETOOLONG => b"file name too long",
        Errno::NOSYS => b"function not implemented",
        Errno::NOTEMPTY => b"directory not empty",
        Errno::LOOP => b"too many levels of symbolic links",
        Errno::NOTSOCK => b"socket operation on non-socket",
        Errno::DESTADDRREQ => b"destination address required",
        Errno::PROTOTYPE => b"protocol wrong type for socket",
        Errno::NOPROTOOPT => b"protocol not available",
        Errno::OPNOTSUPP => b"operation not supported",
        Errno::AFNOSUPPORT => b"address family not supported by protocol",
        Errno::ADDRINUSE => b"address already in use",
        Errno::ADDRNOTAVAIL => b"cannot assign requested address",
        Errno::CONNABORTED => b"software caused connection abort",
        Errno::CONNRESET => b"connection reset by peer",
        Errno::NOBUFS => b"no buffer space available",
        Errno::ISCONN => b"transport endpoint is already connected",
        Errno::NOTCONN => b"transport endpoint is not connected",
        Errno::TIMEDOUT => b"connection timed out",
        Errno::CONNREFUSED => b"connection refused",
        Errno::ALREADY => b"operation already in progress",
        Errno::INPROGRESS => b"operation now in progress",
        Errno::DQUOT => b"disk quota exceeded",
        Errno::OVERFLOW => b"value too large for defined data type",
        _ => b"unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises_client_strings() {
        let mut l = Line(ArrayVec::new());
        l.sanitised(b"a b:c%d\x01\x7f~!");
        assert_eq!(l.as_bytes(), b"a?b?c?d??~!");
        let mut l = Line(ArrayVec::new());
        l.sanitised(&[b'x'; 150]);
        assert_eq!(l.as_bytes().len(), 103);
        assert!(l.as_bytes().ends_with(b"x..."));
    }

    #[test]
    fn lines_are_cut_not_overflowed() {
        let mut l = Line::new();
        l.str(&[b'y'; 5000]).num(7);
        assert_eq!(l.as_bytes().len(), LINE_MAX - 1);
    }

    #[test]
    fn errno_texts() {
        assert_eq!(errno_text(Errno::ADDRINUSE), b"address already in use");
        assert_eq!(errno_text(Errno::NAMETOOLONG), b"file name too long");
    }
}
