//! ipcserver-access [ -v verbosity ] [ -E | -e ] [ -l localname ]
//! [ -B banner ] [ -x rules.cdb ] [ -X ] prog...
//!
//! Runs once per connection between the server and the application:
//! writes the banner, sets IPCLOCALPATH, applies the access rules for the
//! client's ids (a deny exits 100 without running prog), logs, and
//! executes into prog.
#![no_std]
#![no_main]

use core::ffi::CStr;
use rustix::io::Errno;
use ucspi_ipc::cdb::{self, CdbError, Reader};
use ucspi_ipc::env::{self, Env};
use ucspi_ipc::rules::{self, Client, Record};
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::{args::Getopt, exec, io, log, num, socket};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"[ -v verbosity ] [ -E | -e ] [ -l localname ] [ -B banner ] [ -x rules.cdb ] [ -X ] prog...";

/// The rule's record, in .bss: a zeroed 8 KiB stack buffer would cost a
/// memset and page faults on every connection (see runtime::Table).
static RECORD: runtime::Table<[u8; cdb::RECORD_MAX]> = runtime::Table::new([0; cdb::RECORD_MAX]);

struct Options {
    verbosity: u8,
    strip: bool,
    localname: Option<&'static [u8]>,
    banner: Option<&'static [u8]>,
    rules: Option<&'static CStr>,
    rules_optional: bool,
}

fn options(opts: &mut Getopt) -> Options {
    let mut o =
        Options { verbosity: 1, strip: false, localname: None, banner: None, rules: None, rules_optional: false };
    for opt in opts.by_ref() {
        match opt.letter {
            b'v' => {
                let v = num::parse_u32(opt.arg_bytes()).unwrap_or_else(|| log::usage(USAGE));
                o.verbosity = v.min(u8::MAX as u32) as u8;
            }
            b'E' => o.strip = true,
            b'e' => o.strip = false,
            b'l' => o.localname = Some(opt.arg_bytes()),
            b'B' => o.banner = Some(opt.arg_bytes()),
            b'x' => o.rules = Some(opt.arg),
            b'X' => o.rules_optional = true,
            _ => log::usage(USAGE),
        }
    }
    o
}

/// Writes the banner to the connection. `send` with MSG_NOSIGNAL so that
/// a client gone away is a message, not a silent SIGPIPE death; plain
/// `write` when descriptor 1 is not a socket.
fn send_banner(mut banner: &[u8]) -> Result<(), Errno> {
    let out = io::fd(1);
    while !banner.is_empty() {
        match rustix::net::send(out, banner, rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => banner = &banner[n..],
            Err(Errno::INTR) => {}
            Err(Errno::NOTSOCK) => return io::write_all(out, banner),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The client's ids from the environment; the server's own for unset ones.
fn client_ids(envp: runtime::CStrArray) -> (u32, u32) {
    let c = Client::from_env(envp).unwrap_or_else(|bad| bad.die());
    let euid = c.euid.unwrap_or_else(|| rustix::process::geteuid().as_raw());
    let egid = c.egid.unwrap_or_else(|| rustix::process::getegid().as_raw());
    (euid, egid)
}

fn unable(path: &CStr, verb: &[u8], reason: &[u8]) -> ! {
    log::fatal(log::EXIT_TEMP, &[b"unable to ", verb, b" ", path.to_bytes(), b": ", reason])
}

/// Applies the rule for the client to `env`; false for a deny.
fn apply_rules(path: &CStr, optional: bool, client: Client, env: &mut Env) -> bool {
    let rules = match Reader::open(path) {
        Ok(r) => r,
        Err(CdbError::Open(Errno::NOENT)) if optional => return true,
        Err(e) => unable(path, e.verb(), e.reason()),
    };
    let Some(buf) = RECORD.take() else { runtime::exit(log::EXIT_TEMP) };
    let found = rules::lookup(&rules, client, b"", buf).unwrap_or_else(|e| unable(path, e.verb(), e.reason()));
    // The descriptor is close-on-exec and we exit or exec soon: leaving it
    // open saves a close per connection.
    core::mem::forget(rules);
    let Some(found) = found else { return true };
    for r in rules::records(&buf[found.value]) {
        match r {
            Ok(Record::Deny) => return false,
            Ok(Record::Set(name, value)) => {
                if let Err(e) = env.set(name, value) {
                    log::fatal_sys(e, &[b"set environment variable ", name]);
                }
            }
            // An exec override is ipcexec's business.
            Ok(Record::Exec(_)) => {}
            Err(_) => unable(path, b"read", rules::MALFORMED),
        }
    }
    true
}

/// `ok|deny PID LOCALPATH REMOTEPATH:EUID,EGID`.
fn log_connection(allowed: bool, local: &[u8], remote: &[u8], (euid, egid): (u32, u32)) {
    let mut l = log::Line::new();
    l.str(if allowed { b"ok " } else { b"deny " });
    l.num(rustix::process::getpid().as_raw_nonzero().get() as u64).str(b" ");
    l.sanitised(local).str(b" ").sanitised(remote).str(b":");
    l.num(euid as u64).str(b",").num(egid as u64);
    l.emit();
}

fn main(start: Start) -> ! {
    log::set_name(b"ipcserver-access");
    let mut opts = Getopt::new(start.argv, b"v:Eel:B:x:X");
    let o = options(&mut opts);
    if opts.operand_count() == 0 {
        log::usage(USAGE);
    }
    log::set_verbosity(o.verbosity);
    let envp = start.envp;
    let logging = o.verbosity >= 2;

    if let Some(banner) = o.banner {
        if let Err(e) = send_banner(banner) {
            log::fatal_sys(e, &[b"write banner"]);
        }
    }

    let env = Env::take();
    if let Err(e) = env.inherit(envp) {
        log::fatal_sys(e, &[b"read environment"]);
    }
    let inherited = env::get(envp, b"IPCLOCALPATH");
    let looked_up;
    let local: &[u8] = match (o.localname, inherited) {
        (Some(l), _) => l,
        (None, Some(l)) => l,
        (None, None) if o.strip && !logging => b"",
        (None, None) => {
            looked_up =
                socket::local_path(io::fd(0)).unwrap_or_else(|e| log::fatal_sys(e, &[b"get local socket path"]));
            &looked_up
        }
    };
    if o.strip {
        env.retain(|name| name != b"PROTO" && !name.starts_with(b"IPC"));
    } else if o.localname.is_some() || inherited.is_none() {
        if let Err(e) = env.set(b"IPCLOCALPATH", local) {
            log::fatal_sys(e, &[b"set environment variable IPCLOCALPATH"]);
        }
    }

    let ids = (o.rules.is_some() || logging).then(|| client_ids(envp));
    let allowed = match (o.rules, ids) {
        (Some(path), Some((euid, egid))) => {
            apply_rules(path, o.rules_optional, Client { euid: Some(euid), egid: Some(egid) }, env)
        }
        _ => true,
    };
    if let (true, Some(ids)) = (logging, ids) {
        log_connection(allowed, local, env::get(envp, b"IPCREMOTEPATH").unwrap_or(b""), ids);
    }
    if !allowed {
        runtime::exit(log::EXIT_USAGE);
    }
    exec::exec_or_die(opts.operands(), env.finish())
}
