//! ipcprint [ options ] path
//!
//! The example preforking server of ucspi-ipc (see [`ucspi_ipc::prefork`]):
//! it writes the connection's variables to the client, byte for byte as
//! the original does: an empty line, then PROTO, IPCLOCALPATH,
//! IPCREMOTEPATH, IPCREMOTEEUID and IPCREMOTEEGID as `NAME=VALUE` lines
//! (`unset` for one that is not set), in one write.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::prefork::{Connection, Server};
use ucspi_ipc::runtime::Start;
use ucspi_ipc::{io, log};

ucspi_ipc::program!(main);

const VARS: [&[u8]; 5] = [b"PROTO", b"IPCLOCALPATH", b"IPCREMOTEPATH", b"IPCREMOTEEUID", b"IPCREMOTEEGID"];

fn print_vars(connection: &Connection<'_>) {
    let mut buf = [0u8; 4096];
    let mut out = io::Buffered::new(io::stdout(), &mut buf);
    let mut written = out.put(&[b"\n"]);
    for name in VARS {
        let value = connection.var(name).unwrap_or(b"unset");
        written = written.and_then(|()| out.put(&[name, b"=", value, b"\n"]));
    }
    if let Err(e) = written.and_then(|()| out.flush()) {
        log::warn_sys(e, &[b"write to the client"]);
    }
}

const USAGE: &core::ffi::CStr = ucspi_ipc::prefork_usage!();

fn main(start: Start) -> ! {
    let server = Server::from_command_line(start, c"ipcprint", USAGE, 0);
    server.run(|_args| print_vars)
}
