//! ipcrulescheck [ -S ] rules.cdb: say what a server using rules.cdb
//! would do with a client whose ids are $IPCREMOTEEUID and $IPCREMOTEEGID
//! (either may be unset; a set but non-numeric one is refused, exit 100),
//! and with -S, what one run with -S would do with a client whose
//! supplementary groups are $IPCREMOTEGIDLIST (unset: none).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::client::Client;
use ucspi_ipc::rules_programs::{self, Checker};
use ucspi_ipc::runtime::Start;
use ucspi_ipc::{args, log};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(c"ipcrulescheck", c"[ -S ] rules.cdb");
    let (supplementary, [path]) = args::flag_and_exact_operands(start.argv, b"S");
    let client = Client::from_env(start.envp).unwrap_or_else(|bad| bad.die());
    let client = rules_programs::with_groups(client, start.envp, supplementary);
    rules_programs::check(path, client, b"", Checker::Access)
}
