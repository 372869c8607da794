//! Messages on stderr: one line each, written with one `write`, starting
//! with the program's name (`NAME: fatal: unable to VERB OBJECT: REASON`,
//! `NAME: warning: ...`, `NAME: usage: ...`); errno as short human text;
//! the sanitising of strings that come from clients; the verbosity level
//! (`-q` 0, `-Q` 1, `-v` 2 and more).
//!
//! The name is fixed per program; the links of the server chain take
//! another with `-N name` ([`set_name`]), which is how `ipcserver` makes
//! every line of its chain read `ipcserver: ...` as the original's does.
//!
//! It has no format strings: a [`Line`] is built from byte pieces and
//! numbers into a fixed buffer, cut (never overflowing) if too long. It
//! does not buffer across lines.

#![allow(unsafe_code)]
use crate::io;
use crate::num;
use arrayvec::ArrayVec;
use core::ffi::{c_char, CStr};
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use rustix::io::Errno;

// The state below is set at every start and read by every line. It is
// kept in `.data`, not in `.bss` where its zeros would put it: at exec the
// kernel clears the rest of the last page of `.data` (the start of
// `.bss`), so that page is already in memory and writable, and this state
// costs no page fault of its own (`.bss` would take one, on every run,
// usage errors included). Measured with `perf record -e page-faults -d`.

/// The program's name and the arguments part of its usage line, as C
/// strings: one pointer each, so that they can be replaced at any time
/// without a lock.
#[link_section = ".data.ucspi_ipc.log"]
static NAME: AtomicPtr<c_char> = AtomicPtr::new(core::ptr::null_mut());
#[link_section = ".data.ucspi_ipc.log"]
static USAGE: AtomicPtr<c_char> = AtomicPtr::new(core::ptr::null_mut());
#[link_section = ".data.ucspi_ipc.log"]
static USAGE_NAME: AtomicPtr<c_char> = AtomicPtr::new(core::ptr::null_mut());
#[link_section = ".data.ucspi_ipc.log"]
static OPTION_ERROR_NAME: AtomicPtr<c_char> = AtomicPtr::new(core::ptr::null_mut());
static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Exit code of a permanent failure, one that trying again unchanged
/// would meet again: a usage error, a refused client or request, a bad
/// rules line.
pub const EXIT_PERMANENT: i32 = 100;
/// Exit code of a temporary failure: a system error, worth trying again.
pub const EXIT_TEMP: i32 = 111;

fn load(p: &AtomicPtr<c_char>, default: &'static [u8]) -> &'static [u8] {
    let p = p.load(Ordering::Acquire);
    if p.is_null() {
        return default;
    }
    // SAFETY: only `&'static CStr` pointers are ever stored.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// Sets the program name that starts every line, and the arguments part
/// of its usage line (`NAME: usage: NAME ARGS`).
pub fn init(name: &'static CStr, usage: &'static CStr) {
    set_name(name);
    USAGE.store(usage.as_ptr() as *mut c_char, Ordering::Release);
}

/// Replaces the name lines start with (the server chain's links take
/// `-N name` for this: run by `ipcserver`, every line of the chain reads
/// `ipcserver: ...`, as the original's).
pub fn set_name(name: &'static CStr) {
    NAME.store(name.as_ptr() as *mut c_char, Ordering::Release);
}

/// Names the program in its usage line as `name` rather than by the name
/// its lines start with (the original's ipcexec says `ipcserver: usage:
/// ipcexec rules.cdb`).
pub fn set_usage_name(name: &'static CStr) {
    USAGE_NAME.store(name.as_ptr() as *mut c_char, Ordering::Release);
}

/// Names getopt's complaints (`NAME: illegal option -- X`) `name` rather
/// than by the name other lines start with (the original's preforking
/// servers say `ipcprint: illegal option -- X`, then `./ipcprint: usage:
/// ./ipcprint ...` when run as `./ipcprint`).
pub fn set_option_error_name(name: &'static CStr) {
    OPTION_ERROR_NAME.store(name.as_ptr() as *mut c_char, Ordering::Release);
}

/// The program name given to [`init`] or [`set_name`].
pub fn name() -> &'static [u8] {
    load(&NAME, b"ucspi-ipc")
}

/// 0: nothing, 1: errors and warnings (default), 2: also status lines
/// and access lines, 3: access lines with the client's pid and groups
/// (for ipcserverd, 3: also one access line per connection, 4: with
/// them).
pub fn set_verbosity(v: u8) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// The verbosity given to [`set_verbosity`].
pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Longest message line; longer ones are cut.
pub const LINE_MAX: usize = 1024;
/// How much of a client-supplied string a log line shows.
pub const SANITISED_MAX: usize = 100;

/// One message line under construction.
///
/// Its builders are never inlined: every message of every program is made
/// of them, and inlined at each call site they cost the programs hundreds
/// of bytes each (2 KB of ipcprint); a call costs nothing next to the write.
pub struct Line(ArrayVec<u8, LINE_MAX>);

impl Line {
    /// A line starting with `NAME: `.
    pub fn new() -> Line {
        Line::named(name())
    }

    /// A line starting with `name: ` rather than the program's name.
    #[inline(never)]
    pub fn named(name: &[u8]) -> Line {
        let mut l = Line(ArrayVec::new());
        l.str(name).str(b": ");
        l
    }

    /// Appends bytes as they are (cut at the line's capacity).
    #[inline(never)]
    pub fn str(&mut self, s: &[u8]) -> &mut Line {
        // Cut, keeping a byte for the newline.
        let room = self.0.remaining_capacity().saturating_sub(1);
        crate::bounded::append(&mut self.0, &s[..s.len().min(room)]);
        self
    }

    /// Appends a number in decimal.
    #[inline(never)]
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
        // Fits: `str` keeps a byte for it.
        crate::bounded::push(&mut self.0, b'\n');
        let _ = io::write_all(io::stderr(), &self.0);
    }
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

fn usage_line() {
    Line::new().str(b"usage: ").str(load(&USAGE_NAME, name())).str(b" ").str(load(&USAGE, b"")).emit();
}

/// `NAME: usage: NAME ARGS`, exit 100 (printed unless verbosity is 0).
pub fn usage() -> ! {
    if verbosity() >= 1 {
        usage_line();
    }
    crate::runtime::exit(EXIT_PERMANENT)
}

/// `NAME: PIECES...` then the usage line, exit 100, whatever the
/// verbosity (as getopt's `illegal option -- X` is always printed).
pub fn option_error(pieces: &[&[u8]]) -> ! {
    let mut l = Line::named(load(&OPTION_ERROR_NAME, name()));
    for p in pieces {
        l.str(p);
    }
    l.emit();
    usage_line();
    crate::runtime::exit(EXIT_PERMANENT)
}

// The error door. Every line about a failure is one cell of a grid, and
// its function's name is the cell's address, as in skalibs' strerr_*:
//
//   what the line says                           ends the program        goes on
//   fatal: PIECES                                die(code, ..)           -
//   fatal: unable to PIECES: ERRNO               die_sys(err, ..)        -
//   warning: PIECES                              -                       warn(..)
//   warning: unable to PIECES: ERRNO             -                       warn_sys(err, ..)
//   warning: dropping connection, unable to
//     PIECES                                     die_dropping(..)        warn_dropping(..)
//     PIECES: ERRNO                              die_dropping_sys(..)    warn_dropping_sys(..)
//
// `_sys` takes the errno and writes its text last; `die_dropping*` is how
// a per-connection process gives up on its one connection (exit 111), in
// the original's words, `warn_dropping*` how a process that serves on (a
// preforking child) says it did. A program that must do something before
// it writes its last line (answer its client) builds it with `die_line`
// or `die_sys_line`. Nothing is written at verbosity 0 but `option_error`.

const FATAL: &[u8] = b"fatal: ";
const FATAL_UNABLE: &[u8] = b"fatal: unable to ";
const WARNING: &[u8] = b"warning: ";
const WARNING_UNABLE: &[u8] = b"warning: unable to ";
const DROPPING: &[u8] = b"warning: dropping connection, unable to ";

/// `NAME: KIND PIECES...`, then `: ERRNO` if there is one.
fn compose(kind: &[u8], pieces: &[&[u8]], err: Option<Errno>) -> Line {
    let mut l = Line::new();
    l.str(kind);
    for p in pieces {
        l.str(p);
    }
    if let Some(e) = err {
        l.str(b": ").errno(e);
    }
    l
}

fn write(kind: &[u8], pieces: &[&[u8]], err: Option<Errno>) {
    if verbosity() >= 1 {
        compose(kind, pieces, err).emit();
    }
}

/// `NAME: fatal: PIECES...`, then exit with `code`.
pub fn die(code: i32, pieces: &[&[u8]]) -> ! {
    write(FATAL, pieces, None);
    crate::runtime::exit(code)
}

/// `NAME: fatal: unable to PIECES...: ERRNO`, exit 111.
pub fn die_sys(err: Errno, pieces: &[&[u8]]) -> ! {
    write(FATAL_UNABLE, pieces, Some(err));
    crate::runtime::exit(EXIT_TEMP)
}

/// `NAME: warning: PIECES...`.
pub fn warn(pieces: &[&[u8]]) {
    write(WARNING, pieces, None);
}

/// `NAME: warning: unable to PIECES...: ERRNO`.
pub fn warn_sys(err: Errno, pieces: &[&[u8]]) {
    write(WARNING_UNABLE, pieces, Some(err));
}

/// `NAME: warning: dropping connection, unable to PIECES...`, exit 111.
pub fn die_dropping(pieces: &[&[u8]]) -> ! {
    warn_dropping(pieces);
    crate::runtime::exit(EXIT_TEMP)
}

/// `NAME: warning: dropping connection, unable to PIECES...: ERRNO`,
/// exit 111.
pub fn die_dropping_sys(err: Errno, pieces: &[&[u8]]) -> ! {
    warn_dropping_sys(err, pieces);
    crate::runtime::exit(EXIT_TEMP)
}

/// The line of [`die_dropping`], without the exit.
pub fn warn_dropping(pieces: &[&[u8]]) {
    write(DROPPING, pieces, None);
}

/// The line of [`die_dropping_sys`], without the exit.
pub fn warn_dropping_sys(err: Errno, pieces: &[&[u8]]) {
    write(DROPPING, pieces, Some(err));
}

/// The line [`die`] writes, to be written later.
pub fn die_line(pieces: &[&[u8]]) -> Line {
    compose(FATAL, pieces, None)
}

/// The line [`die_sys`] writes, to be written later.
pub fn die_sys_line(err: Errno, pieces: &[&[u8]]) -> Line {
    compose(FATAL_UNABLE, pieces, Some(err))
}

/// `NAME: unable to PIECES...: ERRNO`, exit 111: outside the grid, the
/// original ipcclient's form for a failed connection, without `fatal:`.
pub fn unable_to(err: Errno, pieces: &[&[u8]]) -> ! {
    write(b"unable to ", pieces, Some(err));
    crate::runtime::exit(EXIT_TEMP)
}

/// Writes one line for a panic and exits [`EXIT_TEMP`] (a temporary or
/// system error). No formatting machinery is pulled in.
pub fn panic_exit(info: &core::panic::PanicInfo) -> ! {
    let _ = info;
    compose(FATAL, &[b"internal error (panic)"], None).emit();
    crate::runtime::exit(EXIT_TEMP)
}

/// Each errno that has a text of its own, and that text, as strerror
/// would say it (lower case).
const ERRNO_TEXTS: [(Errno, &[u8]); 54] = [
    (Errno::PERM, b"operation not permitted"),
    (Errno::NOENT, b"no such file or directory"),
    (Errno::SRCH, b"no such process"),
    (Errno::INTR, b"interrupted system call"),
    (Errno::IO, b"input/output error"),
    (Errno::NXIO, b"no such device or address"),
    (Errno::TOOBIG, b"argument list too long"),
    (Errno::NOEXEC, b"exec format error"),
    (Errno::BADF, b"bad file descriptor"),
    (Errno::CHILD, b"no child processes"),
    (Errno::AGAIN, b"resource temporarily unavailable"),
    (Errno::NOMEM, b"out of memory"),
    (Errno::ACCESS, b"permission denied"),
    (Errno::FAULT, b"bad address"),
    (Errno::BUSY, b"device or resource busy"),
    (Errno::EXIST, b"file exists"),
    (Errno::XDEV, b"invalid cross-device link"),
    (Errno::NOTDIR, b"not a directory"),
    (Errno::ISDIR, b"is a directory"),
    (Errno::INVAL, b"invalid argument"),
    (Errno::NFILE, b"too many open files in system"),
    (Errno::MFILE, b"too many open files"),
    (Errno::NOTTY, b"inappropriate ioctl for device"),
    (Errno::TXTBSY, b"text file busy"),
    (Errno::FBIG, b"file too large"),
    (Errno::NOSPC, b"no space left on device"),
    (Errno::SPIPE, b"illegal seek"),
    (Errno::ROFS, b"read-only file system"),
    (Errno::MLINK, b"too many links"),
    (Errno::PIPE, b"broken pipe"),
    (Errno::RANGE, b"numerical result out of range"),
    (Errno::NAMETOOLONG, b"file name too long"),
    (Errno::NOSYS, b"function not implemented"),
    (Errno::NOTEMPTY, b"directory not empty"),
    (Errno::LOOP, b"too many levels of symbolic links"),
    (Errno::NOTSOCK, b"socket operation on non-socket"),
    (Errno::DESTADDRREQ, b"destination address required"),
    (Errno::PROTOTYPE, b"protocol wrong type for socket"),
    (Errno::NOPROTOOPT, b"protocol not available"),
    (Errno::OPNOTSUPP, b"operation not supported"),
    (Errno::AFNOSUPPORT, b"address family not supported by protocol"),
    (Errno::ADDRINUSE, b"address already in use"),
    (Errno::ADDRNOTAVAIL, b"cannot assign requested address"),
    (Errno::CONNABORTED, b"software caused connection abort"),
    (Errno::CONNRESET, b"connection reset by peer"),
    (Errno::NOBUFS, b"no buffer space available"),
    (Errno::ISCONN, b"transport endpoint is already connected"),
    (Errno::NOTCONN, b"transport endpoint is not connected"),
    (Errno::TIMEDOUT, b"connection timed out"),
    (Errno::CONNREFUSED, b"connection refused"),
    (Errno::ALREADY, b"operation already in progress"),
    (Errno::INPROGRESS, b"operation now in progress"),
    (Errno::DQUOT, b"disk quota exceeded"),
    (Errno::OVERFLOW, b"value too large for defined data type"),
];

/// What [`errno_text`] says of any other errno.
const UNKNOWN_ERRNO: &[u8] = b"unknown error";

// The texts end to end in one array, and each errno with where its text
// ends: numbers, no pointers. The programs are position-independent, and
// a table of pointers to the texts (what a `match` returning them compiles
// to on riscv64 and 32-bit ARM) would be relocated at every start of every
// program: 128 relocations, 3 KB of each program on riscv64.
const ERRNO_TEXT_BYTES: usize = {
    let (mut total, mut i) = (0, 0);
    while i < ERRNO_TEXTS.len() {
        total += ERRNO_TEXTS[i].1.len();
        i += 1;
    }
    total
};
const _: () = assert!(ERRNO_TEXT_BYTES <= u16::MAX as usize, "the ends must fit in u16");
static ERRNO_TEXT: [u8; ERRNO_TEXT_BYTES] = {
    let (mut all, mut at, mut i) = ([0; ERRNO_TEXT_BYTES], 0, 0);
    while i < ERRNO_TEXTS.len() {
        let text = ERRNO_TEXTS[i].1;
        let mut j = 0;
        while j < text.len() {
            all[at] = text[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    all
};
static ERRNO_TEXT_ENDS: [(u16, u16); ERRNO_TEXTS.len()] = {
    let (mut ends, mut at, mut i) = ([(0, 0); ERRNO_TEXTS.len()], 0, 0);
    while i < ERRNO_TEXTS.len() {
        at += ERRNO_TEXTS[i].1.len();
        ends[i] = (ERRNO_TEXTS[i].0.raw_os_error() as u16, at as u16);
        i += 1;
    }
    ends
};

/// Short human text for an errno, as strerror would say it (lower case).
pub fn errno_text(e: Errno) -> &'static [u8] {
    let Some(i) = ERRNO_TEXT_ENDS.iter().position(|&(errno, _)| i32::from(errno) == e.raw_os_error()) else {
        return UNKNOWN_ERRNO;
    };
    let start = if i == 0 { 0 } else { ERRNO_TEXT_ENDS[i - 1].1 as usize };
    &ERRNO_TEXT[start..ERRNO_TEXT_ENDS[i].1 as usize]
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
        for (e, text) in ERRNO_TEXTS {
            assert_eq!(errno_text(e), text);
        }
        assert_eq!(errno_text(Errno::from_raw_os_error(4000)), b"unknown error");
    }
}
