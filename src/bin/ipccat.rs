//! ipccat PATH: connect to PATH and copy what the server sends to stdout
//! until it closes the connection.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use rustix::fd::AsFd;
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args, io, log, socket};

ucspi_ipc::program!(main);

/// What one read takes.
static BUFFER: runtime::Table<[u8; 16384]> = runtime::Table::new([0; 16384]);

fn main(start: Start) -> ! {
    log::init(c"ipccat", c"path");
    let [path] = args::exact_operands(start.argv);
    let conn = socket::connect_or_die(path, None);
    let Some(buf) = BUFFER.take() else { runtime::exit(log::EXIT_TEMP) };
    match io::copy(conn.as_fd(), io::stdout(), buf) {
        Ok(_) => runtime::exit(0),
        Err(io::CopyError::Read(e)) => log::die_sys(e, &[b"read from ", path.to_bytes()]),
        Err(io::CopyError::Write(e)) => log::die_sys(e, &[b"write to stdout"]),
    }
}
