//! ipccommand [ -F ] uid prog...
//!
//! Runs under ipcclient, against ipcexec: writes the request to run
//! prog... as uid to descriptor 7, then copies stdin to the server and the
//! server's output to stdout at the same time; when stdin ends it shuts
//! down its side of the connection (so a program that reads to end of file
//! sees it) and goes on copying until the server closes. Exit 0, 100 on a
//! usage error, 111 on an I/O error.
//!
//! `-F`: sends its own descriptors 0, 1 and 2 with the request, so that
//! the program reads and writes them directly (a terminal stays a
//! terminal; nothing is relayed), then waits for the program's wait status
//! and exits with it (a death by signal N as 128+N). A server that does
//! not know `-F` closes the connection without a status: a clear error.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use rustix::io::Errno;
use ucspi_ipc::relay::{self, Ends, Failure};
use ucspi_ipc::request::{self, ARGS_MAX, COUNT_MAX};
use ucspi_ipc::runtime::{self, CStrArray, Start};
use ucspi_ipc::{args, io, log, netstring, socket, uidgid};

ucspi_ipc::program!(main);

static BUFFERS: runtime::Table<relay::Buffers> = runtime::Table::new(relay::Buffers::new());

fn main(start: Start) -> ! {
    log::init(c"ipccommand", c"[ -F ] uid program");
    let (with_fds, operands) = args::flag_and_operands(start.argv, b"F", 2);
    let uid = operands.first().map_or(&b""[..], |u| u.to_bytes());
    // No server takes a uid longer than that (leading zeros).
    if uidgid::parse_id(uid).is_none() || uid.len() > request::UID_TEXT_MAX {
        log::die(log::EXIT_PERMANENT, &[b"invalid uid: ", uid]);
    }
    let prog = operands.skip(1);
    match send_request(with_fds, uid, prog) {
        Ok(()) => {}
        // The server closed the connection before it had the request: with
        // -F, that is what one without -F support does (wait_for_status
        // says so).
        Err(Errno::PIPE | Errno::CONNRESET) if with_fds => {}
        Err(e) => log::die_sys(e, &[b"write the request"]),
    }
    if with_fds {
        wait_for_status()
    }
    let ends =
        Ends { input: io::stdin(), from_server: io::from_server(), to_server: io::to_server(), output: io::stdout() };
    let Some(buffers) = BUFFERS.take() else { runtime::exit(log::EXIT_TEMP) };
    match relay::relay(ends, buffers) {
        Ok(()) => runtime::exit(0),
        Err(Failure::ReadInput(e)) => log::die_sys(e, &[b"read from stdin"]),
        Err(Failure::WriteServer(e)) => log::die_sys(e, &[b"write to the server"]),
        Err(Failure::ReadServer(e)) => log::die_sys(e, &[b"read from the server"]),
        Err(Failure::WriteOutput(e)) => log::die_sys(e, &[b"write to stdout"]),
        Err(Failure::Poll(e)) => log::die_sys(e, &[b"poll"]),
    }
}

/// Writes the request to run `prog` as `uid` (with our descriptors 0, 1
/// and 2 attached to its first bytes when `with_fds`). A server that has
/// gone is an error (EPIPE), not a death by SIGPIPE.
fn send_request(with_fds: bool, uid: &[u8], prog: CStrArray<'_>) -> Result<(), Errno> {
    let count = prog.len();
    let len: usize = prog.iter().map(|a| a.to_bytes_with_nul().len()).sum();
    if count > COUNT_MAX {
        log::die(log::EXIT_PERMANENT, &[b"more than 1024 arguments"]);
    }
    if len > ARGS_MAX {
        log::die(log::EXIT_PERMANENT, &[b"arguments longer than 131072 bytes"]);
    }
    if with_fds {
        let ours = [io::stdin(), io::stdout(), io::stderr()];
        let marker = request::WITH_FDS;
        if socket::send_with_fds(io::to_server(), marker, &ours)? < marker.len() {
            return Err(Errno::IO);
        }
    }
    let mut buf = [0u8; 4096];
    let mut out = io::Buffered::to_socket(io::to_server(), &mut buf);
    out.put(&[&request::header(false, uid, count, len)])?;
    for arg in prog.iter() {
        out.put(&[arg.to_bytes_with_nul()])?;
    }
    out.put(&[b","])?;
    out.flush()
}

/// Reads the program's wait status and exits as it did.
fn wait_for_status() -> ! {
    let mut buf = [0u8; 32];
    let mut have = 0;
    loop {
        match netstring::parse(&buf[..have], 10) {
            Ok(Some((digits, _))) => exit_as(digits),
            Err(_) => break,
            Ok(None) if have == buf.len() => break,
            Ok(None) => {}
        }
        match io::read(io::from_server(), &mut buf[have..]) {
            // A server that closes with our request unread resets.
            Ok(0) | Err(Errno::CONNRESET) => break,
            Ok(n) => have += n,
            Err(e) => log::die_sys(e, &[b"read the exit status"]),
        }
    }
    log::die(
        log::EXIT_TEMP,
        &[b"the server closed the connection without an exit status (a server without -F support does that)"],
    )
}

/// Exits as a program with wait status `digits` did: its exit code, or
/// 128 + N for a death by signal N.
fn exit_as(digits: &[u8]) -> ! {
    let Some(status) = ucspi_ipc::num::parse_u32(digits) else {
        log::die(log::EXIT_TEMP, &[b"the server sent a bad exit status"])
    };
    let signal = status & 0x7f;
    runtime::exit(if signal == 0 { ((status >> 8) & 0xff) as i32 } else { 128 + signal as i32 })
}
