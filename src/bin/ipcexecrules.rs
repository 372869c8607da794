//! ipcexecrules rules.cdb rules.tmp: compile ipcexec rules read on stdin
//! (ipcrules' format, with `allow="path"`) into rules.tmp, then fsync it
//! and rename it over rules.cdb. On any error rules.cdb is untouched and
//! rules.tmp removed.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::rules::Syntax;
use ucspi_ipc::rules_programs;
use ucspi_ipc::runtime::Start;
use ucspi_ipc::{args, log};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(c"ipcexecrules", c"rules.cdb rules.tmp");
    let [target, tmp] = args::exact_operands(start.argv);
    rules_programs::compile_atomically(target, tmp, Syntax::Exec)
}
