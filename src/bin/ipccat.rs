//! ipccat PATH: connect to PATH and copy what the server sends to stdout
//! until it closes the connection.
#![no_std]
#![no_main]

use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args, io, log, socket};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"path";

fn main(start: Start) -> ! {
    log::set_name(b"ipccat");
    let [path] = args::exact_operands(start.argv, USAGE);
    let conn = socket::connect_or_die(path, None);
    match io::copy(rustix::fd::AsFd::as_fd(&conn), io::fd(1)) {
        Ok(_) => runtime::exit(0),
        Err(io::CopyError::Read(e)) => log::fatal_sys(e, &[b"read from ", path.to_bytes()]),
        Err(io::CopyError::Write(e)) => log::fatal_sys(e, &[b"write to stdout"]),
    }
}
