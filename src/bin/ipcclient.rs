//! ipcclient [ -qQv ] [ -p localpath ] [ -l localname ] PATH prog...:
//! connect to the Unix socket PATH, put the connection on descriptors 6
//! (read) and 7 (write), set `PROTO=IPC` and `IPCLOCALPATH`, and execute
//! into prog....
#![no_std]
#![no_main]

use core::ffi::CStr;
use rustix::fd::{AsFd, IntoRawFd};
use ucspi_ipc::runtime::Start;
use ucspi_ipc::{args::Getopt, env::Env, exec, io, log, socket};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"[ -qQv ] [ -p localpath ] [ -l localname ] path prog...";

fn main(start: Start) -> ! {
    log::set_name(b"ipcclient");
    let mut verbosity = 1;
    let mut local_path: Option<&CStr> = None;
    let mut local_name: Option<&[u8]> = None;
    let mut opts = Getopt::new(start.argv, b"qQvp:l:");
    for o in opts.by_ref() {
        match o.letter {
            b'q' => verbosity = 0,
            b'Q' => verbosity = 1,
            b'v' => verbosity = 2,
            b'p' => local_path = Some(o.arg),
            b'l' => local_name = Some(o.arg_bytes()),
            _ => log::usage(USAGE),
        }
    }
    if opts.operand_count() < 2 {
        log::usage(USAGE);
    }
    // Usage errors are always shown; -q silences the rest.
    log::set_verbosity(verbosity);
    let Some(path) = opts.operands().iter().next() else { log::usage(USAGE) };

    let sock = socket::connect_or_die(path, local_path);
    if log::verbosity() >= 2 {
        log::Line::new().str(b"connected to ").str(path.to_bytes()).emit();
    }

    let env = Env::take();
    // Without -p the socket has no path: no need to ask the kernel.
    let bound = match local_path {
        Some(_) if local_name.is_none() => socket::local_path(sock.as_fd())
            .unwrap_or_else(|e| log::fatal_sys(e, &[b"get the local path of the socket"])),
        _ => socket::SockPath::new(),
    };
    let set = env
        .inherit(start.envp)
        .and_then(|()| env.set(b"PROTO", b"IPC"))
        .and_then(|()| env.set(b"IPCLOCALPATH", local_name.unwrap_or(&bound)));
    if let Err(e) = set {
        log::fatal_sys(e, &[b"build the environment"]);
    }

    // The one socket becomes both 6 and 7, inherited by prog.
    let raw = sock.into_raw_fd();
    for n in [6, 7] {
        if let Err(e) = io::dup_to(io::fd(raw), n) {
            log::fatal_sys(e, &[b"move the socket to descriptors 6 and 7"]);
        }
    }
    if raw != 6 && raw != 7 {
        io::close(raw);
    }
    exec::exec_or_die(opts.operands().skip(1), env.finish())
}
