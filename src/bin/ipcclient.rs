//! ipcclient [ -qQv ] [ -p localpath ] [ -l localname ] PATH prog...:
//! connect to the Unix socket PATH, put the connection on descriptors 6
//! (read) and 7 (write), set `PROTO=IPC` and `IPCLOCALPATH`, and execute
//! into prog....
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// One audited use: handing the socket over on descriptors 6 and 7.
#![allow(unsafe_code)]

use core::ffi::CStr;
use rustix::fd::AsFd;
use ucspi_ipc::runtime::Start;
use ucspi_ipc::{args::Getopt, env::Env, exec, io, log, socket};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(c"ipcclient", c"[ -qQv ] [ -p localpath ] [ -l localname ] path program");
    let mut local_path: Option<&CStr> = None;
    let mut local_name: Option<&[u8]> = None;
    let mut opts = Getopt::new(start.argv, b"qQvp:l:");
    for o in opts.by_ref() {
        match o.letter {
            b'q' => log::set_verbosity(0),
            b'Q' => log::set_verbosity(1),
            b'v' => log::set_verbosity(2),
            b'p' => local_path = Some(o.arg),
            b'l' => local_name = Some(o.arg_bytes()),
            _ => log::usage(),
        }
    }
    if opts.operand_count() < 2 {
        log::usage();
    }
    let Some(path) = opts.operands().first() else { log::usage() };

    let sock = socket::connect_or_die(path, local_path);
    if log::verbosity() >= 2 {
        log::Line::new().str(b"connected to ").str(path.to_bytes()).emit();
    }

    let env = Env::take();
    // Without -p the socket has no path: no need to ask the kernel.
    let bound = match local_path {
        Some(_) if local_name.is_none() => {
            socket::local_path(sock.as_fd()).unwrap_or_else(|e| log::die_sys(e, &[b"get the local path of the socket"]))
        }
        _ => socket::SockPath::new(),
    };
    let set = env
        .inherit(start.envp)
        .and_then(|()| env.set(b"PROTO", b"IPC"))
        .and_then(|()| env.set(b"IPCLOCALPATH", local_name.unwrap_or(&bound)));
    if let Err(e) = set {
        log::die_sys(e, &[b"build the environment"]);
    }

    // SAFETY: descriptors 6 and 7 are the protocol's, for prog: nothing in
    // this program owns or borrows them (the socket, its only descriptor,
    // may be one of them, which `install` handles).
    if let Err(e) = unsafe { io::install(sock, &[6, 7]) } {
        log::die_sys(e, &[b"move the socket to descriptors 6 and 7"]);
    }
    exec::exec_or_die(opts.operands().skip(1), env.finish())
}
