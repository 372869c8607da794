//! ipcrun [ -F ] prog...: `ipcdo root prog...`: asks the ipcexec server to
//! run prog... as root. It executes into `ipcclient -l0 SOCKET ipccommand
//! [-F] 0 prog...` (found next to it); SOCKET is $IPCEXEC_SOCKET, by
//! default /service/ipcexec/s.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::runtime::Start;
use ucspi_ipc::{args, log, request};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(c"ipcrun", c"[ -F ] prog");
    let (with_fds, operands) = args::flag_and_operands(start.argv, b"F", 1);
    request::run_client(start, b"0", with_fds, operands)
}
