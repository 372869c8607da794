//! ipcserver-socketbinder [ -d | -D ] [ -b backlog ] [ -a perms ] [ -B ] PATH prog...:
//! bind a Unix stream socket to PATH, listen, put it on descriptor 0 (not
//! close-on-exec) and execute into prog..., the first link of the server
//! chain.
#![no_std]
#![no_main]

use rustix::fd::IntoRawFd;
use ucspi_ipc::runtime::Start;
use ucspi_ipc::socket::{self, ListenOptions};
use ucspi_ipc::{args::Getopt, exec, io, log, num};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"[ -d | -D ] [ -b backlog ] [ -a perms ] [ -B ] path prog...";

/// The default backlog: the kernel clamps any larger value to
/// net.core.somaxconn, so asking for the most an int can say gives the
/// system maximum without reading /proc.
const BACKLOG_SYSTEM_MAX: i32 = i32::MAX;

fn main(start: Start) -> ! {
    log::set_name(b"ipcserver-socketbinder");
    let mut o = ListenOptions { remove_existing: true, backlog: BACKLOG_SYSTEM_MAX, perms: 0o777, nonblocking: true };
    let mut opts = Getopt::new(start.argv, b"dDb:a:B");
    for opt in opts.by_ref() {
        match opt.letter {
            b'd' => o.remove_existing = true,
            b'D' => o.remove_existing = false,
            b'b' => {
                o.backlog = num::parse_u32(opt.arg_bytes())
                    .and_then(|n| i32::try_from(n).ok())
                    .unwrap_or_else(|| log::usage(USAGE))
            }
            b'a' => {
                o.perms = num::parse_octal(opt.arg_bytes()).filter(|&p| p <= 0o777).unwrap_or_else(|| log::usage(USAGE))
            }
            b'B' => o.nonblocking = false,
            _ => log::usage(USAGE),
        }
    }
    if opts.operand_count() < 2 {
        log::usage(USAGE);
    }
    let mut operands = opts.operands().iter();
    let Some(path) = operands.next() else { log::usage(USAGE) };
    let sock =
        socket::listen(path, &o).unwrap_or_else(|(step, e)| log::fatal_sys(e, &[step.verb(), b" ", path.to_bytes()]));
    let raw = sock.into_raw_fd();
    if let Err(e) = io::dup_to(io::fd(raw), 0) {
        log::fatal_sys(e, &[b"move the socket to descriptor 0"]);
    }
    if raw != 0 {
        io::close(raw);
    }
    exec::exec_or_die(opts.operands().skip(1), start.envp)
}
