//! ipcrules rules.cdb rules.tmp: compile access rules read on stdin into
//! rules.tmp, then fsync it and rename it over rules.cdb. On any error
//! rules.cdb is untouched and rules.tmp removed.
#![no_std]
#![no_main]

use core::ffi::CStr;
use ucspi_ipc::cdb::{self, AtomicError, Step};
use ucspi_ipc::rules::{self, CompileError, Lines, Syntax};
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args, io, log};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"rules.cdb rules.tmp";

fn main(start: Start) -> ! {
    log::set_name(b"ipcrules");
    let [target, tmp] = args::exact_operands(start.argv, USAGE);
    compile(target, tmp)
}

/// Kept out of `main` so that its 128 KiB of buffers (stack-probed, so
/// faulted in page by page) cost nothing on the usage path.
#[inline(never)]
fn compile(target: &CStr, tmp: &CStr) -> ! {
    let mut lines = Lines::new();
    let result = cdb::write_atomic(target, tmp, |w| rules::compile(io::fd(0), Syntax::Access, &mut lines, w));
    let tmp = tmp.to_bytes();
    match result {
        Ok(()) => runtime::exit(0),
        Err(AtomicError::Fill(CompileError::Parse)) => {
            log::fatal(log::EXIT_USAGE, &[b"unable to parse this line: ", lines.current()])
        }
        Err(AtomicError::Fill(CompileError::Read(e))) => log::fatal_sys(e, &[b"read standard input"]),
        Err(AtomicError::Fill(CompileError::Write(e)) | AtomicError::Sys(Step::Write, e)) => {
            log::fatal_sys(e, &[b"write ", tmp])
        }
        Err(AtomicError::Sys(Step::Create, e)) => log::fatal_sys(e, &[b"create ", tmp]),
        Err(AtomicError::Sys(Step::Sync, e)) => log::fatal_sys(e, &[b"sync ", tmp]),
        Err(AtomicError::Sys(Step::Rename, e)) => log::fatal_sys(e, &[b"rename ", tmp, b" to ", target.to_bytes()]),
    }
}
