//! What the four rules programs do, shared by each pair: compiling rules
//! on standard input into a cdb file, atomically ([`compile_atomically`]:
//! ipcrules and ipcexecrules), and saying what a rules file decides for a
//! client ([`check`]: ipcrulescheck and ipcexecrulescheck), each ending
//! with the program's exit.
//!
//! The rules format, its compiler and its lookup are the `rules` module's;
//! this one only drives them and prints, and no server uses it.

use crate::cdb::{self, AtomicError, Reader, Step};
use crate::client::{self, Client};
use crate::lines::Lines;
use crate::log;
use crate::rules::{self, CompileError, Key, Record, Syntax, MALFORMED, RULES_LINE_MAX, RULES_RECORD_MAX};
use core::ffi::CStr;
use rustix::io::Errno;

/// The record buffer of [`check`], in `.bss` (see `runtime::Table`).
static RECORD: crate::runtime::Table<[u8; RULES_RECORD_MAX]> = crate::runtime::Table::new([0; RULES_RECORD_MAX]);

/// Which checker is reporting.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    /// ipcrulescheck: connections; no rule means allow.
    Access,
    /// ipcexecrulescheck: requests; `execute PATH` shown; no rule means
    /// deny (ipcexec fails closed).
    Exec,
}

/// The client the checkers look up: with `-S` (`supplementary`), with
/// the supplementary groups of `$IPCREMOTEGIDLIST` (unset: none, as an
/// unset id is unknown); a set but unusable list is `fatal: invalid
/// IPCREMOTEGIDLIST: VALUE`, 100.
pub fn with_groups<'e>(client: Client<'e>, envp: crate::runtime::CStrArray<'e>, supplementary: bool) -> Client<'e> {
    if !supplementary {
        return client;
    }
    let groups = client::groups_from_env(envp).unwrap_or_else(|bad| bad.die());
    Client { groups: groups.unwrap_or_default(), ..client }
}

/// What `ipcrulescheck` and `ipcexecrulescheck` do: looks up the rule for
/// `client` (keys ending in `suffix`) in `path` and prints, as the
/// originals do, `rule KEY:`, a line per record (`set environment variable
/// NAME=VALUE`; for exec rules `execute PATH`), then `allow connection` or
/// `deny connection`; or `default:` and the default. Nothing is printed
/// unless the whole rule decodes. Exits 0, or 111 with `unable to read
/// FILE: REASON`.
pub fn check(path: &CStr, client: Client<'_>, suffix: &[u8], checker: Checker) -> ! {
    let unable =
        |reason: &[u8]| -> ! { log::die(log::EXIT_TEMP, &[b"unable to read ", path.to_bytes(), b": ", reason]) };
    let file = Reader::open(path).unwrap_or_else(|e| unable(e.reason()));
    let Some(buf) = RECORD.take() else { crate::runtime::exit(log::EXIT_TEMP) };
    let mut key = Key::new();
    let found = rules::lookup(&file, client, suffix, buf, &mut key).unwrap_or_else(|e| unable(e.reason()));
    let rule = found.map(|v| (&key[..], &buf[v]));
    if rule.is_some_and(|(_, value)| rules::records(value).any(|r| r.is_err())) {
        unable(MALFORMED);
    }
    let mut room = [0u8; 4096];
    let mut out = crate::io::Buffered::new(crate::io::stdout(), &mut room);
    if let Err(e) = report(&mut out, rule, checker).and_then(|()| out.flush()) {
        log::die_sys(e, &[b"write to stdout"]);
    }
    crate::runtime::exit(0)
}

fn report(out: &mut crate::io::Buffered<'_>, rule: Option<(&[u8], &[u8])>, checker: Checker) -> Result<(), Errno> {
    let Some((key, value)) = rule else {
        let default: &[u8] = if checker == Checker::Exec { b"deny connection\n" } else { b"allow connection\n" };
        return out.put(&[b"default:\n", default]);
    };
    out.put(&[b"rule ", key, b":\n"])?;
    for r in rules::records(value).flatten() {
        match r {
            Record::Deny => return out.put(&[b"deny connection\n"]),
            Record::Set(a) => out.put(&[b"set environment variable ", a.entry().to_bytes(), b"\n"])?,
            Record::Exec(p) if checker == Checker::Exec => out.put(&[b"execute ", p.to_bytes(), b"\n"])?,
            // Not for connections: ipcexec's business.
            Record::Exec(_) => {}
        }
    }
    out.put(&[b"allow connection\n"])
}

/// The input buffer of [`compile_atomically`]: a whole rule line, in
/// `.bss` (pages are touched only as far as lines reach).
static INPUT: crate::runtime::Table<[u8; RULES_LINE_MAX + 1]> = crate::runtime::Table::new([0; RULES_LINE_MAX + 1]);

/// What `ipcrules` and `ipcexecrules` do: compiles the rules on standard
/// input into `tmp`, syncs it and renames it over `target`, then exits 0.
/// On failure `target` is untouched, `tmp` removed, and the program exits
/// with the original's message: `unable to parse this line: LINE` (100,
/// LINE as [`rules::shown`], then a line of ours, `line N: expected ...`),
/// `unable to read input`, `unable to create TMP`, `unable to move TMP to
/// TARGET` (111).
pub fn compile_atomically(target: &CStr, tmp: &CStr, syntax: Syntax) -> ! {
    let Some(buf) = INPUT.take() else { crate::runtime::exit(log::EXIT_TEMP) };
    let mut lines = Lines::new(buf);
    let input = crate::io::stdin();
    let result = cdb::write_atomic(target, tmp, |w| rules::compile(input, syntax, &mut lines, w));
    let tmp = tmp.to_bytes();
    match result {
        Ok(()) => crate::runtime::exit(0),
        Err(AtomicError::Fill(CompileError::Parse(refused))) => {
            if log::verbosity() >= 1 {
                log::die_line(&[refused.error.message(), rules::shown(lines.last())]).emit();
                let mut l = log::Line::new();
                l.str(b"line ").num(lines.number()).str(b": expected ");
                refused.expected.describe(&mut l);
                l.emit();
            }
            crate::runtime::exit(log::EXIT_PERMANENT)
        }
        Err(AtomicError::Fill(CompileError::Read(e))) => log::die_sys(e, &[b"read input"]),
        Err(AtomicError::Fill(CompileError::Write(e)) | AtomicError::Sys(Step::Write, e)) => {
            log::die_sys(e, &[b"write ", tmp])
        }
        Err(AtomicError::Sys(Step::Create, e)) => log::die_sys(e, &[b"create ", tmp]),
        Err(AtomicError::Sys(Step::Sync, e)) => log::die_sys(e, &[b"sync ", tmp]),
        Err(AtomicError::Sys(Step::Rename, e)) => log::die_sys(e, &[b"move ", tmp, b" to ", target.to_bytes()]),
    }
}
