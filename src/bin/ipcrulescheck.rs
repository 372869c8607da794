//! ipcrulescheck rules.cdb: say what a server using rules.cdb would do
//! with a client whose ids are $IPCREMOTEEUID and $IPCREMOTEEGID (either
//! may be unset; a set but non-numeric one is refused, exit 100).
#![no_std]
#![no_main]

use arrayvec::ArrayVec;
use ucspi_ipc::cdb::{self, Reader};
use ucspi_ipc::rules::{self, Client, Record};
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args, io, log};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"rules.cdb";

/// Room for the longest report: every record of a value at most
/// VALUE_MAX long turns into at most seven times its length of text.
type Report = ArrayVec<u8, 65536>;

// In .bss rather than on the stack, where stack probes would fault in
// every page of them at each start (see runtime::Table).
static REPORT: runtime::Table<Report> = runtime::Table::new(ArrayVec::new_const());
static RECORD: runtime::Table<[u8; cdb::RECORD_MAX]> = runtime::Table::new([0; cdb::RECORD_MAX]);

fn put(out: &mut Report, pieces: &[&[u8]]) {
    for p in pieces {
        // Cannot fail: see `Report`.
        let _ = out.try_extend_from_slice(p);
    }
}

fn main(start: Start) -> ! {
    log::set_name(b"ipcrulescheck");
    let [path] = args::exact_operands(start.argv, USAGE);
    let client = Client::from_env(start.envp).unwrap_or_else(|bad| bad.die());
    let unable = |verb: &[u8], reason: &[u8]| -> ! {
        log::fatal(log::EXIT_TEMP, &[b"unable to ", verb, b" ", path.to_bytes(), b": ", reason])
    };
    let rules = Reader::open(path).unwrap_or_else(|e| unable(e.verb(), e.reason()));
    let (Some(buf), Some(out)) = (RECORD.take(), REPORT.take()) else { runtime::exit(log::EXIT_TEMP) };
    let found = rules::lookup(&rules, client, b"", buf).unwrap_or_else(|e| unable(e.verb(), e.reason()));
    match found {
        None => put(out, &[b"default:\nallow connection\n"]),
        Some(f) => {
            put(out, &[b"rule ", &f.key, b":\n"]);
            let mut verdict: &[u8] = b"allow connection\n";
            for r in rules::records(&buf[f.value]) {
                match r {
                    Ok(Record::Deny) => {
                        verdict = b"deny connection\n";
                        break;
                    }
                    Ok(Record::Set(name, value)) => put(out, &[b"set environment variable ", name, b"=", value, b"\n"]),
                    // Not for connections: ipcexec's business.
                    Ok(Record::Exec(_)) => {}
                    Err(_) => unable(b"read", rules::MALFORMED),
                }
            }
            put(out, &[verdict]);
        }
    }
    if let Err(e) = io::write_all(io::fd(1), out) {
        log::fatal_sys(e, &[b"write to stdout"]);
    }
    runtime::exit(0)
}
