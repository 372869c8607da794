//! ipcdo [ -F ] user prog...: asks the ipcexec server to run prog... as
//! user (a name from /etc/passwd, or a number), sending it stdin and
//! printing what it sends back; with -F the program uses our descriptors
//! directly and ipcdo exits with its status. It executes into
//! `ipcclient -l0 SOCKET ipccommand [-F] UID prog...` (found next to it);
//! SOCKET is $IPCEXEC_SOCKET, by default /service/ipcexec/s.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::runtime::Start;
use ucspi_ipc::userdb::{self, Query};
use ucspi_ipc::{args, log, num, request, uidgid};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(c"ipcdo", c"[ -F ] user prog");
    let (with_fds, operands) = args::flag_and_operands(start.argv, b"F", 2);
    let user = operands.first().map_or(&b""[..], |u| u.to_bytes());
    let uid = match uidgid::parse_id(user) {
        Some(uid) => uid,
        None => match userdb::find(Query::Name(user)) {
            Ok(Some(entry)) => entry.uid,
            Ok(None) => log::die(log::EXIT_PERMANENT, &[b"unknown account ", user]),
            Err(e) => log::die_sys(e, &[b"read /etc/passwd"]),
        },
    };
    let mut digits = [0; num::U64_DIGITS];
    request::run_client(start, num::fmt_u64(uid as u64, &mut digits), with_fds, operands.skip(1))
}
