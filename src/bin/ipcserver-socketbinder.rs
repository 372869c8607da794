//! ipcserver-socketbinder [ -d | -D ] [ -b backlog ] [ -a perms ] [ -B ] [ -v verbosity ] [ -N name ] PATH prog...:
//! bind a Unix stream socket to PATH, listen, put it on descriptor 0 (not
//! close-on-exec) and execute into prog..., the first link of the server
//! chain.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::io::Std;
use ucspi_ipc::runtime::Start;
use ucspi_ipc::socket::{self, ListenOptions};
use ucspi_ipc::{args::Getopt, exec, io, log};

ucspi_ipc::program!(main);

/// The default backlog: the kernel clamps any larger value to
/// net.core.somaxconn, so asking for the most an int can say gives the
/// system maximum without reading /proc.
const BACKLOG_SYSTEM_MAX: i32 = i32::MAX;

fn main(start: Start) -> ! {
    log::init(
        c"ipcserver-socketbinder",
        c"[ -d | -D ] [ -b backlog ] [ -a perms ] [ -B ] [ -v verbosity ] [ -N name ] path prog...",
    );
    let mut o = ListenOptions { remove_existing: true, backlog: BACKLOG_SYSTEM_MAX, perms: 0o777, nonblocking: true };
    // The last of -d -D -a, which an abstract socket refuses.
    let mut file_option = 0;
    let mut opts = Getopt::new(start.argv, b"dDb:a:Bv:N:");
    for opt in opts.by_ref() {
        if matches!(opt.letter, b'd' | b'D' | b'a') {
            file_option = opt.letter;
        }
        match opt.letter {
            b'd' => o.remove_existing = true,
            b'D' => o.remove_existing = false,
            b'b' => o.backlog = opt.number(0, i32::MAX as u32) as i32,
            b'a' => o.perms = opt.value(socket::parse_permissions, socket::PERMISSIONS_EXPECTED),
            b'B' => o.nonblocking = false,
            b'v' => log::set_verbosity(opt.number(0, 255) as u8),
            b'N' => log::set_name(opt.arg),
            _ => log::usage(),
        }
    }
    if opts.operand_count() < 2 {
        log::usage();
    }
    let path = socket::server_path(opts.operands(), file_option);
    let sock = socket::listen_or_die(path, &o);
    if let Err(e) = io::install_std(sock, &[Std::In]) {
        log::die_sys(e, &[b"move the socket to descriptor 0"]);
    }
    exec::exec_or_die(opts.operands().skip(1), start.envp)
}
