//! libucspi_ipc_ipchandle.a: the C interface to ucspi-ipc's preforking
//! servers ([`ucspi_ipc::prefork`]), for a handler written against the
//! original's ipchandle template. The C program defines one function,
//!
//! ```c
//! void server(int argc, char * const *argv);
//! ```
//!
//! and links this library, which supplies `main`: ipcserver's options
//! plus `-f lockfile` (the usage line is ipcprint's), the socket, the
//! children (forked through libc), the rules, the log lines, SIGTERM and
//! SIGHUP. Each child calls `server` once per connection, with the
//! connection on descriptors 0 and 1, its variables in `environ` (for
//! getenv), and the operands after the path (`argv[argc]` is NULL). Then,
//! as the original does, it checks that `environ` is the array it set:
//! if not, `warning: dropping connection, environ changed` and the child
//! exits 111, to be replaced. See doc/ipchandle.md, "From C", and
//! ipchandle.h.
//!
//! Beyond the original's template: after each call stdout is flushed and
//! what stdin read ahead is discarded (a handler's printf reaches its own
//! client, not the next one; the next call's stdin starts clean), and a
//! process the handler forked that returns from `server` exits rather than
//! serve on as a child of no one. Descriptors a handler leaves open stay
//! open (libc keeps some of its own, syslog's say): releasing what it
//! takes per connection is the handler's part, as the original says.
#![no_std]
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_void, CStr};
use rustix::process::Pid;
use ucspi_ipc::libc;
use ucspi_ipc::log;
use ucspi_ipc::prefork::{Connection, Server};
use ucspi_ipc::runtime;

/// The usage line: ipcprint's, the original's too (the operands after
/// the path are the handler's to check).
const USAGE: &CStr = ucspi_ipc::prefork_usage!();

/// The name in the messages of a server run with an empty or no
/// `argv[0]` (otherwise its last component, as the original's getopt
/// says it, or `argv[0]` itself, as the original's other lines do).
const NAMELESS: &CStr = c"ipchandle";

extern "C" {
    /// The program's: serves one connection (ipchandle.h).
    fn server(argc: c_int, argv: *const *const c_char);
    /// libc's standard input and output, `FILE *`.
    static stdin: *mut c_void;
    static stdout: *mut c_void;
    fn fflush(stream: *mut c_void) -> c_int;
    fn clearerr(stream: *mut c_void);
    /// Discards a stream's buffered data (glibc's and musl's stdio_ext.h).
    fn __fpurge(stream: *mut c_void);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log::panic_exit(info)
}

/// The precompiled libcore's unwinding tables name this personality
/// routine; a release build's LTO drops them, an unoptimised one links
/// them. Nothing unwinds (panic = "abort"): never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// The program's entry, called by libc's start files.
#[no_mangle]
extern "C" fn main(_argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    // SAFETY: main's own arguments. The initial environment array is never
    // `environ` while the handler runs (the connection's is), so libc
    // changes it only through a handler that ends its child.
    let start = unsafe { libc::start(argv, envp) };
    let initial = libc::environ();
    let name = start.argv.first().map_or(NAMELESS, last_component);
    let mut server = Server::from_command_line(start, name, USAGE, 0);
    // SAFETY: libc::fork is fork(2) through libc, and the server has one
    // thread (a handler that starts threads must end them before it
    // returns, as everything it takes per connection).
    unsafe { server.fork_with(libc::fork) };
    server.keep_descriptors();
    server.run(move |_args| {
        let child = rustix::process::getpid();
        move |connection: &Connection<'_>| handle(connection, child, initial)
    })
}

/// The part of `argv[0]` after its last slash, as the original's getopt
/// names the program; [`NAMELESS`] if that is empty.
fn last_component(arg0: &'static CStr) -> &'static CStr {
    let bytes = arg0.to_bytes_with_nul();
    let start = bytes.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    match CStr::from_bytes_with_nul(&bytes[start..]) {
        Ok(name) if !name.is_empty() => name,
        _ => NAMELESS,
    }
}

/// One connection, in the server's child `child`: `environ` is the
/// connection's for the call of `server`, then `initial` again.
fn handle(connection: &Connection<'_>, child: Pid, initial: *const *const c_char) {
    let env = connection.env().as_ptr();
    let args = connection.args();
    // SAFETY: the connection's environment, null-terminated, lives until
    // this function returns, and is `environ` only until then.
    unsafe { libc::set_environ(env) };
    // SAFETY: the program's function, declared so by ipchandle.h; `args`
    // is a null-terminated array of `len` NUL-terminated strings that
    // lives as long as the process.
    unsafe { server(args.len() as c_int, args.as_ptr()) };
    flush_stdio();
    if rustix::process::getpid() != child {
        // A process the handler forked, returning from it: it must not go
        // on to serve as one of the server's children.
        runtime::exit(0);
    }
    if libc::environ() != env {
        // The original's check: a handler that added to the environment
        // (setenv, putenv) or replaced it left an array libc allocated,
        // which the next connection's would leak, or a changed one.
        libc::drop_for_changed_environ();
    }
    // SAFETY: main's environment, which lives as long as the process.
    unsafe { libc::set_environ(initial) };
}

/// What the handler wrote to stdout goes to its client now; what stdin
/// read ahead of it is dropped, and both streams' end-of-file and error
/// flags are cleared: the next connection starts clean.
fn flush_stdio() {
    // SAFETY: libc's own streams, which a handler does not close (the
    // connection's descriptors are closed by the server, not through
    // them); one thread.
    unsafe {
        let (input, output) = (core::ptr::addr_of!(stdin).read(), core::ptr::addr_of!(stdout).read());
        fflush(output);
        clearerr(output);
        __fpurge(input);
        clearerr(input);
    }
}
