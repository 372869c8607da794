//! ipcrulescheck rules.cdb: say what a server using rules.cdb would do
//! with a client whose ids are $IPCREMOTEEUID and $IPCREMOTEEGID (either
//! may be unset; a set but non-numeric one is refused, exit 100).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::cdb::Reader;
use ucspi_ipc::rules::{self, Client, Record};
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args, io, log};

ucspi_ipc::program!(main);

// In .bss rather than on the stack, where stack probes would fault in
// every page at each start (see runtime::Table).
static RECORD: runtime::Table<[u8; rules::RECORD_MAX]> = runtime::Table::new([0; rules::RECORD_MAX]);

fn main(start: Start) -> ! {
    log::init(c"ipcrulescheck", c"rules.cdb");
    let [path] = args::exact_operands(start.argv);
    let client = Client::from_env(start.envp).unwrap_or_else(|bad| bad.die());
    let unable =
        |reason: &[u8]| -> ! { log::fatal(log::EXIT_TEMP, &[b"unable to read ", path.to_bytes(), b": ", reason]) };
    let rules = Reader::open(path).unwrap_or_else(|e| unable(e.reason()));
    let Some(buf) = RECORD.take() else { runtime::exit(log::EXIT_TEMP) };
    let mut key = rules::Key::new();
    let found = rules::lookup(&rules, client, b"", buf, &mut key).unwrap_or_else(|e| unable(e.reason()));
    // Nothing is printed unless the whole rule decodes.
    if let Some(v) = &found {
        if rules::records(&buf[v.clone()]).any(|r| r.is_err()) {
            unable(rules::MALFORMED);
        }
    }
    let mut room = [0u8; 4096];
    let mut out = io::Buffered::new(io::stdout(), &mut room);
    let written = report(&mut out, found.map(|v| (&key[..], &buf[v]))).and_then(|()| out.flush());
    if let Err(e) = written {
        log::fatal_sys(e, &[b"write to stdout"]);
    }
    runtime::exit(0)
}

/// The report for a rule (its key and value), or for no rule.
fn report(out: &mut io::Buffered<'_>, rule: Option<(&[u8], &[u8])>) -> Result<(), rustix::io::Errno> {
    let Some((key, value)) = rule else { return out.put(&[b"default:\nallow connection\n"]) };
    out.put(&[b"rule ", key, b":\n"])?;
    for r in rules::records(value) {
        match r {
            Ok(Record::Deny) => return out.put(&[b"deny connection\n"]),
            Ok(Record::Set(a)) => out.put(&[b"set environment variable ", a.entry().to_bytes(), b"\n"])?,
            // Not for connections: ipcexec's business.
            Ok(Record::Exec(_)) | Err(_) => {}
        }
    }
    out.put(&[b"allow connection\n"])
}
