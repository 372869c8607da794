//! ipcperl [ options ] path file.pm sub [ args... ]
//!
//! A preforking server (see [`ucspi_ipc::prefork`]) whose handler is a Perl
//! subroutine. Each child, once, creates a Perl interpreter and loads
//! file.pm; then, for each connection, it calls `sub` (in package main
//! unless qualified) with `args...`, the connection on STDIN and STDOUT and
//! its environment in %ENV. The Perl side of this is the bootstrap code in
//! src/perl/bootstrap.pl; the calls into libperl are src/perl/shim.c.
//!
//! Unlike the rest of the suite it links libc and libperl (the `perl`
//! feature builds it): libc's start files call `main`, libc provides the
//! memory functions, and the server forks through libc's `fork`, so that
//! the C library's state is right in the children that run Perl.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// It calls C: the shim (libc's fork and environ through ucspi_ipc::libc).
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, CStr};
use core::ptr::NonNull;
use rustix::process::Pid;
use ucspi_ipc::libc;
use ucspi_ipc::log::{self, Line};
use ucspi_ipc::prefork::{Connection, Server};
use ucspi_ipc::runtime::{self, CStrArray, Start};

const USAGE: &CStr = ucspi_ipc::prefork_usage!("file.pm sub [ args... ]");

/// The Perl code each child runs before loading file.pm, NUL-terminated.
const BOOTSTRAP: &str = concat!(include_str!("../perl/bootstrap.pl"), "\0");

/// Most bytes of a message taken from Perl (a die, a load error); the log
/// line cuts it further.
const MESSAGE_MAX: usize = 1024;

extern "C" {
    /// src/perl/shim.c: creates and starts the interpreter, with $0 set to
    /// `script`; 0 or -1.
    fn ipcperl_start(
        argc: c_int,
        argv: *const *const c_char,
        env: *const *const c_char,
        script: *const c_char,
    ) -> c_int;
    /// src/perl/shim.c: compiles and runs code; 0, or -1 with $@ in msg.
    fn ipcperl_eval(code: *const c_char, msg: *mut c_char, len: usize) -> c_int;
    /// src/perl/shim.c: calls a Perl subroutine with (count of `counted`,
    /// counted..., rest...); 0, or 1 with the message it returned (or
    /// died with) in msg.
    fn ipcperl_call(
        name: *const c_char,
        counted: *const *const c_char,
        rest: *const *const c_char,
        msg: *mut c_char,
        len: usize,
    ) -> c_int;
}

/// What libc's start files gave `main`, for Perl's own start-up.
#[derive(Clone, Copy)]
struct MainArgs {
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log::panic_exit(info)
}

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    // SAFETY: main's own arguments, which nothing changes: Perl, as
    // src/perl/shim.c sets it up, copies the environment before it
    // changes it.
    let start = unsafe { libc::start(argv, envp) };
    ipcperl(start, MainArgs { argc, argv, envp })
}

// Under cfg(test) (clippy --all-targets) the entry point is the harness's.
#[cfg(test)]
const _: fn(Start, MainArgs) -> ! = ipcperl;

fn ipcperl(start: Start, main_args: MainArgs) -> ! {
    let mut server = Server::from_command_line(start, c"ipcperl", USAGE, 2);
    // SAFETY: libc::fork is fork(2) through libc, and this program has one
    // thread.
    unsafe { server.fork_with(libc::fork) };
    // Perl owns the descriptors its handles use, opened when it likes (a
    // database handle kept in a global, say): closing them behind its back
    // would break them. A handle in a lexical closes with its scope.
    server.keep_descriptors();
    server.run(move |args| {
        let (Some(file), Some(sub)) = (args.first(), args.skip(1).first()) else { log::usage() };
        start_perl(main_args, file, sub);
        let child = rustix::process::getpid();
        move |connection: &Connection<'_>| handle(connection, child)
    })
}

/// A child's set-up: an interpreter, the bootstrap, file.pm. Exits 111 with
/// a message if any of it fails.
fn start_perl(main_args: MainArgs, file: &CStr, sub: &CStr) {
    // While this runs, the library has /dev/null on 0 and 1: Perl's STDIN
    // and STDOUT find descriptors that are really there, and it closes
    // them afterwards (Perl's load-time handles on them are never used
    // again).
    // SAFETY: once in this process, with main's own arguments and a
    // NUL-terminated file name.
    if unsafe { ipcperl_start(main_args.argc, main_args.argv, main_args.envp, file.as_ptr()) } != 0 {
        log::die(log::EXIT_TEMP, &[b"unable to start perl"]);
    }
    let mut msg = [0u8; MESSAGE_MAX];
    // SAFETY: the bootstrap is NUL-terminated; msg is writable for its
    // length.
    if unsafe { ipcperl_eval(BOOTSTRAP.as_ptr().cast(), msg.as_mut_ptr().cast(), msg.len()) } != 0 {
        fatal(&[b"unable to start perl: "], &msg);
    }
    let load = [file.as_ptr(), sub.as_ptr(), core::ptr::null()];
    // SAFETY: the name is NUL-terminated, `load` null-terminated (with
    // NUL-terminated strings), msg writable for its length.
    let failed = unsafe {
        ipcperl_call(c"IPCPerl::load".as_ptr(), load.as_ptr(), core::ptr::null(), msg.as_mut_ptr().cast(), msg.len())
    };
    if failed != 0 {
        fatal(&[b"unable to load ", file.to_bytes(), b": "], &msg);
    }
}

/// The handler: calls the Perl subroutine for the connection on 0 and 1,
/// in the server's child `child`.
fn handle(connection: &Connection<'_>, child: Pid) {
    let before = environ_digest();
    let mut msg = [0u8; MESSAGE_MAX];
    // The handler's arguments: the operands after file.pm and sub.
    let args = connection.args().skip(2);
    // SAFETY: the name is NUL-terminated, the environment and arguments
    // are null-terminated arrays of NUL-terminated strings, msg writable
    // for its length.
    let died = unsafe {
        ipcperl_call(
            c"IPCPerl::handle".as_ptr(),
            connection.env().as_ptr(),
            args.as_ptr(),
            msg.as_mut_ptr().cast(),
            msg.len(),
        )
    };
    if rustix::process::getpid() != child {
        // A process the handler forked, returning from it: it must not go
        // on to serve as one of the server's children.
        runtime::exit(if died != 0 { log::EXIT_TEMP } else { 0 });
    }
    if died != 0 {
        // What it printed has been delivered; the child may not be sane.
        warn(&[b"dropping connection, handler died: "], &msg);
        runtime::exit(log::EXIT_TEMP);
    }
    if environ_digest() != before {
        // Perl restores %ENV, and through it the C environment, after each
        // call; something else changed the latter (see doc/ipcperl.md).
        libc::drop_for_changed_environ();
    }
}

/// `ipcperl: fatal: PIECES MESSAGE`, exit 111.
fn fatal(pieces: &[&[u8]], msg: &[u8]) -> ! {
    if log::verbosity() >= 1 {
        let mut l = log::die_line(pieces);
        one_line(&mut l, msg);
        l.emit();
    }
    runtime::exit(log::EXIT_TEMP)
}

/// `ipcperl: warning: PIECES MESSAGE`.
fn warn(pieces: &[&[u8]], msg: &[u8]) {
    if log::verbosity() >= 1 {
        let mut l = Line::new();
        l.str(b"warning: ");
        for p in pieces {
            l.str(p);
        }
        one_line(&mut l, msg);
        l.emit();
    }
}

/// Appends a NUL-terminated message from Perl as one line: its trailing
/// newlines removed, the others made `; ` (a compile error is several
/// lines), tabs spaces, other control characters `?`.
fn one_line(l: &mut Line, msg: &[u8]) {
    let msg = msg.split(|&c| c == 0).next().unwrap_or(b"");
    let end = msg.iter().rposition(|&c| c != b'\n').map_or(0, |i| i + 1);
    for &c in &msg[..end] {
        match c {
            b'\n' => l.str(b"; "),
            b'\t' => l.str(b" "),
            0..=31 | 127 => l.str(b"?"),
            c => l.str(&[c]),
        };
    }
}

/// The C environment's contents, in a form that compares equal whatever
/// the order of the entries (Perl rewrites them in its hash's order):
/// their number and two order-free sums of a 64-bit hash of each.
#[derive(PartialEq, Eq)]
struct Digest {
    entries: usize,
    sums: (u64, u64),
}

fn environ_digest() -> Digest {
    let mut d = Digest { entries: 0, sums: (0, 0) };
    let Some(p) = NonNull::new(libc::environ().cast_mut()) else { return d };
    // SAFETY: libc's environ is a null-terminated array of NUL-terminated
    // strings, which nothing changes while we read them (one thread).
    for entry in unsafe { CStrArray::from_ptr(p) }.iter() {
        let (a, b) = hash(entry.to_bytes());
        d.entries += 1;
        d.sums = (d.sums.0.wrapping_add(a), d.sums.1.wrapping_add(b));
    }
    d
}

/// Two independent 64-bit hashes of `s` (FNV-1a, and a multiply-rotate),
/// each mixed again (splitmix64's finaliser) so that sums of them do not
/// cancel out.
fn hash(s: &[u8]) -> (u64, u64) {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = s.len() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for &c in s {
        a = (a ^ c as u64).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ c as u64).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    }
    (mix(a), mix(b))
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
