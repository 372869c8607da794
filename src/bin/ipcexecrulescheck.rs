//! ipcexecrulescheck [ -S ] rules.cdb: say what ipcexec using rules.cdb
//! would do with a request from a client whose ids are $IPCREMOTEEUID and
//! $IPCREMOTEEGID (with -S, whose supplementary groups are
//! $IPCREMOTEGIDLIST, as ipcexec -S) to run $IPCCOMMAND (required) as
//! $IPCUID (default 0).
//! No matching rule is `default:` and `deny connection`: ipcexec fails
//! closed.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::client::Client;
use ucspi_ipc::rules::Key;
use ucspi_ipc::rules_programs::{self, Checker};
use ucspi_ipc::runtime::Start;
use ucspi_ipc::{args, env, log, uidgid};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(c"ipcexecrulescheck", c"[ -S ] rules.cdb");
    let (supplementary, [path]) = args::flag_and_exact_operands(start.argv, b"S");
    let envp = start.envp;
    let client = Client::from_env(envp).unwrap_or_else(|bad| bad.die());
    let client = rules_programs::with_groups(client, envp, supplementary);
    // The original's code for it: 111.
    let command = env::get(envp, b"IPCCOMMAND").unwrap_or_else(|| log::die(log::EXIT_TEMP, &[b"IPCCOMMAND not set"]));
    let uid = match env::get(envp, b"IPCUID") {
        None => &b"0"[..],
        Some(u) if uidgid::parse_id(u).is_some() => u,
        Some(u) => log::die(log::EXIT_PERMANENT, &[b"invalid IPCUID: ", u]),
    };
    let mut digits = [0; ucspi_ipc::num::U64_DIGITS];
    let uid = ucspi_ipc::num::fmt_u64(uidgid::parse_id(uid).unwrap_or(0) as u64, &mut digits);
    let mut suffix = Key::new();
    for piece in [&b","[..], uid, b".", command] {
        if suffix.try_extend_from_slice(piece).is_err() {
            log::die(log::EXIT_PERMANENT, &[b"IPCCOMMAND too long"]);
        }
    }
    rules_programs::check(path, client, &suffix, Checker::Exec)
}
