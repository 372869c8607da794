//! ipcconnect PATH: connect to the Unix socket PATH and copy stdin to the
//! server and the server's output to stdout, both at once (see
//! [`ucspi_ipc::relay`]). When stdin ends, the socket's write side is shut
//! down and reading goes on; when the server closes, whatever it sent is
//! written out and the program exits 0, as mconnect does.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use rustix::fd::AsFd;
use ucspi_ipc::relay::{self, Ends, Failure};
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args, io, log, socket};

ucspi_ipc::program!(main);

static BUFFERS: runtime::Table<relay::Buffers> = runtime::Table::new(relay::Buffers::new());

fn main(start: Start) -> ! {
    log::init(c"ipcconnect", c"path");
    let [path] = args::exact_operands(start.argv);
    let conn = socket::connect_or_die(path, None);
    let path = path.to_bytes();
    let ends = Ends { input: io::stdin(), from_server: conn.as_fd(), to_server: conn.as_fd(), output: io::stdout() };
    let Some(buffers) = BUFFERS.take() else { runtime::exit(log::EXIT_TEMP) };
    match relay::relay(ends, buffers) {
        Ok(()) => runtime::exit(0),
        Err(Failure::ReadInput(e)) => log::die_sys(e, &[b"read from stdin"]),
        Err(Failure::WriteServer(e)) => log::die_sys(e, &[b"write to ", path]),
        Err(Failure::ReadServer(e)) => log::die_sys(e, &[b"read from ", path]),
        Err(Failure::WriteOutput(e)) => log::die_sys(e, &[b"write to stdout"]),
        Err(Failure::Poll(e)) => log::die_sys(e, &[b"poll"]),
    }
}
