//! The original ucspi-ipc 0.67 and ours, side by side, over the cases of
//! issue 5 §1: usage and option errors, connection failures, client
//! environments, rules compiled byte for byte, rules checked, server logs
//! and handler environments, bind errors, privilege drops (as root).
//! Then 0.70's ipclisten and ipcaccept (issue 15 §3), on the same kinds
//! of cases.
//!
//! The original's programs come from `UCSPI_IPC_ORIGINAL=DIR` (0.67's
//! `bin/` directory) and `UCSPI_IPC_ORIGINAL_070=DIR` (0.70's); without
//! one, its test says SKIPPED. For each case both are run
//! the same way and their exit codes, outputs and files compared. Only the
//! differences behaviour.md lists as deliberate are allowed: each has a
//! normaliser below that makes the two outcomes comparable, and the test
//! prints how many cases needed which. Anything else fails the test.
use crate::common;
use common::launch::{mask, served, Launcher};
use common::*;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a run showed: exit code (None: still running after the time
/// limit, then killed; a death by signal N is 128+N), stdout, stderr, and
/// whatever else the case looks at (a dump of a compiled cdb, a server's
/// log, a handler's environment).
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    code: Option<i32>,
    out: String,
    err: String,
    extra: String,
}

/// Runs `c` with stdin from `input`; gives it `secs`, then kills it.
fn outcome(c: &mut Command, input: &[u8], secs: f64) -> Outcome {
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let end = std::time::Instant::now() + Duration::from_secs_f64(secs);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            break st.code().or(st.signal().map(|n| 128 + n));
        }
        if std::time::Instant::now() > end {
            kill(child.id() as i32, 9);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    Outcome {
        code,
        out: String::from_utf8_lossy(&t1.join().unwrap()).into_owned(),
        err: String::from_utf8_lossy(&t2.join().unwrap()).into_owned(),
        extra: String::new(),
    }
}

/// The two suites: where their programs are.
#[derive(Clone, Copy)]
enum Suite {
    Original,
    Ours,
}

struct Bins {
    original: PathBuf,
    ours: PathBuf,
}

impl Bins {
    fn dir(&self, s: Suite) -> &Path {
        match s {
            Suite::Original => &self.original,
            Suite::Ours => &self.ours,
        }
    }
    fn prog(&self, s: Suite, name: &str) -> PathBuf {
        self.dir(s).join(name)
    }
}

/// A deliberate difference: its reason and a normaliser that makes the
/// two outcomes of a case comparable if (and only if) that difference is
/// all there is in that respect. It returns whether it changed anything.
type Normaliser = fn(&str, &mut Outcome, &mut Outcome) -> bool;

/// The original's own reason texts (djb's error_str) for ours (strerror,
/// lower case), in the messages where they occur: behaviour.md, "REASON
/// texts".
const REASONS: [(&str, &str, &str); 6] = [
    ("", "file does not exist", "no such file or directory"),
    ("", "address already used", "address already in use"),
    ("", "access denied", "permission denied"),
    // The original checks a socket path's length itself and says this...
    ("unable to bind", "protocol error", "file name too long"),
    ("unable to connect", "protocol error", "file name too long"),
    // ...and this for a cdb it cannot make sense of.
    (".cdb", "protocol error", "corrupt cdb file"),
];

fn replace_all(o: &mut Outcome, from: &str, to: &str) -> bool {
    let before = o.clone();
    o.out = o.out.replace(from, to);
    o.err = o.err.replace(from, to);
    o.extra = o.extra.replace(from, to);
    *o != before
}

fn reason_texts(_: &str, orig: &mut Outcome, _: &mut Outcome) -> bool {
    let before = orig.clone();
    for text in [&mut orig.out, &mut orig.err, &mut orig.extra] {
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            let mut line = line.to_string();
            for (context, theirs, ours) in REASONS {
                if line.contains(context) {
                    line = line.replace(&format!(": {theirs}"), &format!(": {ours}"));
                }
            }
            out.push_str(&line);
        }
        *text = out;
    }
    *orig != before
}

/// Ours names the socket in `unable to bind PATH: REASON`.
fn bind_names_the_path(_: &str, _: &mut Outcome, ours: &mut Outcome) -> bool {
    let before = ours.clone();
    for text in [&mut ours.err, &mut ours.extra] {
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            match (line.find("unable to bind /"), line.rfind(": ")) {
                (Some(at), Some(colon)) if colon > at => {
                    out.push_str(&line[..at + "unable to bind".len()]);
                    out.push_str(&line[colon..]);
                }
                _ => out.push_str(line),
            }
        }
        *text = out;
    }
    *ours != before
}

const OUR_SERVER_USAGE: &str = "ipcserver: usage: ipcserver [ -1UXShHoOdDqQvpP ] [ -c limit ] [ -C locallimit ] \
[ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -G gidlist ] [ -b backlog ] [ -a perms ] [ -l localname ] \
path program";
const THEIR_SERVER_USAGE: &str = "ipcserver: usage: ipcserver [ -UXhHoOdDqQvpP ] [ -c limit ] [ -x rules.cdb ] \
[ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] path program";

fn server_usage_lists_our_options(_: &str, _: &mut Outcome, ours: &mut Outcome) -> bool {
    replace_all(ours, OUR_SERVER_USAGE, THEIR_SERVER_USAGE)
}

/// Ours refuses a value the original takes silently (`-c x`, `-u abc`,
/// `-c 0`...): it serves (or keeps root) where ours stops before binding.
fn numbers_are_validated(_: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    if ours.code == Some(100) && ours.err.contains("illegal value for option") && orig.code != Some(100) {
        *orig = ours.clone();
        return true;
    }
    false
}

/// The options the original's usage line lists but its getopt refuses
/// (`-h -H -o -O`, and ipcaccept's `-d -D`) are accepted and ignored.
fn listed_options_are_accepted(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let listed = ["h", "H", "o", "O", "d", "D"];
    let refused = listed.iter().any(|o| case.contains(&format!("-{o}")))
        && orig.err.lines().any(|l| listed.iter().any(|o| l.ends_with(&format!(": illegal option -- {o}"))));
    if refused && ours.code != Some(100) {
        *orig = ours.clone();
    }
    refused
}

/// The original crashes (a signal) where ours reports the error.
fn the_original_crashes(_: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    if orig.code.is_some_and(|c| c > 128) && ours.code == Some(111) && ours.err.contains("fatal: ") {
        *orig = ours.clone();
        return true;
    }
    false
}

/// ipclisten without a program is a usage error, where the original
/// starts instances that crash, in a tight loop, until it is killed.
fn a_program_is_required(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let usage = ours.err.is_empty() || ours.err.starts_with("ipclisten: usage: ");
    if case.starts_with("ipclisten ") && orig.code.is_none() && ours.code == Some(100) && usage {
        *orig = ours.clone();
        return true;
    }
    false
}

/// ipcaccept refuses a descriptor 0 that is not a listening socket, where
/// the original spins on accept until it is killed.
fn descriptor_0_is_checked(_: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let refused = ours.err == "ipcaccept: fatal: stdin is not a socket\n"
        || ours.err == "ipcaccept: fatal: standard input is not a listening Unix stream socket\n";
    if orig.code.is_none() && ours.code == Some(100) && refused {
        *orig = ours.clone();
        return true;
    }
    false
}

/// ipclisten's instances get SIGTERM when it dies (of SIGINT here),
/// where the original's serve on, unsupervised.
fn instances_do_not_outlive_ipclisten(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let (served, gone) = ("after SIGINT served", "after SIGINT gone");
    if !case.starts_with("signals ipclisten ") || !orig.extra.ends_with(served) || !ours.extra.ends_with(gone) {
        return false;
    }
    orig.extra = orig.extra.replace(served, gone);
    true
}

/// ipcrules refuses a line the original skips or stores as text that no
/// lookup can build (no colon, `abc:`, ` 1:`, `5-3:`, `1-:`...): only
/// lines of those kinds, judged here independently of our parser.
fn unmatchable_rules_are_refused(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let Some(line) = case.strip_prefix("ipcrules \"").and_then(|l| l.strip_suffix('"')) else { return false };
    let line = line.replace("\\t", "\t").replace("\\\"", "\"");
    if orig.code == Some(0)
        && ours.code == Some(100)
        && ours.err.contains("unable to parse this line: ")
        && could_never_match(&line)
    {
        *orig = ours.clone();
        return true;
    }
    false
}

/// Whether a rule line the original accepts has a pattern no lookup
/// builds: no colon (the original skips the line), an address that is not
/// `U.G`, `U`, `.G`, empty or a range `A-B` with A <= B of 32-bit
/// decimals, or a command part that is not `,UID.CMD`. (A range without
/// its first number, `-B`, did match: see [`ranges_need_both_ends`].)
fn could_never_match(line: &str) -> bool {
    let line = line.trim_end_matches([' ', '\t']);
    if line.starts_with('#') || line.is_empty() {
        return false;
    }
    let Some((pattern, _)) = line.split_once(':') else { return true };
    let id = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && s.parse::<u32>().is_ok();
    let (addr, cmd) = match pattern.split_once(',') {
        Some((a, c)) => (a, Some(c)),
        None => (pattern, None),
    };
    let addr_ok = addr.is_empty()
        || open_range(addr).is_some()
        || id(addr)
        || addr.strip_prefix('.').is_some_and(id)
        || addr.split_once('.').is_some_and(|(u, g)| id(u) && id(g))
        || addr
            .split_once('-')
            .is_some_and(|(a, b)| id(a) && id(b) && a.parse::<u32>().unwrap() <= b.parse::<u32>().unwrap());
    // A program name with a blank or a control character is no name a
    // request sends.
    let name_ok = |name: &str| !name.is_empty() && name.bytes().all(|b| b > b' ' && b != 0x7f);
    let cmd_ok = cmd.is_none_or(|c| c.split_once('.').is_some_and(|(u, name)| id(u) && name_ok(name)));
    !(addr_ok && cmd_ok)
}

/// The last number of a range without its first, `-B` (`-` alone: 0),
/// which the original compiles as `0-B`.
fn open_range(addr: &str) -> Option<u64> {
    let last = addr.strip_prefix('-')?;
    if last.is_empty() {
        return Some(0);
    }
    last.bytes().all(|c| c.is_ascii_digit()).then(|| last.parse().ok()).flatten()
}

/// A range needs both its numbers: the original compiles `-B:` as
/// `0-B:` (uids 0 to B), ours refuses the line; only lines of that kind,
/// and only if the original's file holds exactly the keys 0 to B.
fn ranges_need_both_ends(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let Some(line) = case.strip_prefix("ipcrules \"").and_then(|l| l.strip_suffix('"')) else { return false };
    let Some(last) = line.split_once(':').and_then(|(addr, _)| open_range(addr)).filter(|&b| b < 100) else {
        return false;
    };
    let keys: Vec<String> = orig
        .extra
        .lines()
        .filter_map(|r| r.strip_prefix('+').and_then(|r| r.split_once(':')).and_then(|(_, r)| r.split_once("->")))
        .map(|(k, _)| k.to_string())
        .collect();
    let zero_to_last: Vec<String> = (0..=last).map(|u| u.to_string()).collect();
    if orig.code == Some(0)
        && keys == zero_to_last
        && ours.code == Some(100)
        && ours.err.contains("unable to parse this line: ")
    {
        *orig = ours.clone();
        return true;
    }
    false
}

/// Client strings in log lines are sanitised (`:`, `%`, blanks, control
/// bytes become `?`).
fn log_strings_are_sanitised(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    if !case.contains("sanitised") || orig.err == ours.err {
        return false;
    }
    let sanitised: String = orig
        .err
        .lines()
        .map(|l| match l.split_once(" from ") {
            Some((head, path)) => {
                let p: String =
                    path.chars().map(|c| if c.is_ascii_graphic() && c != ':' && c != '%' { c } else { '?' }).collect();
                format!("{head} from {p}\n")
            }
            None => format!("{l}\n"),
        })
        .collect();
    if sanitised == ours.err {
        orig.err = sanitised;
        return true;
    }
    false
}

/// Numbers in rules are stored canonically: `01001` is the key `1001`.
fn rule_numbers_are_canonical(_: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    if orig.code != Some(0) || ours.code != Some(0) || orig.extra == ours.extra {
        return false;
    }
    let canonical = canonical_dump(&orig.extra);
    if canonical == ours.extra {
        orig.extra = canonical;
        return true;
    }
    false
}

/// A `cdb -d` dump with every key's numbers in canonical decimal.
fn canonical_dump(dump: &str) -> String {
    let mut out = String::new();
    for rec in dump.split_inclusive('\n') {
        let Some((head, rest)) = rec.strip_prefix('+').and_then(|r| r.split_once(':')) else {
            out.push_str(rec);
            continue;
        };
        let (_, dlen) = head.split_once(',').unwrap();
        let (key, value) = rest.split_once("->").unwrap();
        let (addr, cmd) = match key.split_once(',') {
            Some((a, c)) => (a, Some(c)),
            None => (key, None),
        };
        let num = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                s.parse::<u64>().map(|n| n.to_string()).unwrap_or(s.into())
            }
        };
        let mut k = match addr.split_once('.') {
            Some((u, g)) => format!("{}.{}", num(u), num(g)),
            None => num(addr),
        };
        if let Some(c) = cmd {
            let (u, name) = c.split_once('.').unwrap_or((c, ""));
            k.push_str(&format!(",{}.{name}", num(u)));
        }
        out.push_str(&format!("+{},{dlen}:{k}->{value}", k.len()));
    }
    out
}

/// `IPCCONNNUM` is set by ours (s6's variable), not by the original.
fn connnum_is_set(_: &str, _: &mut Outcome, ours: &mut Outcome) -> bool {
    let before = ours.clone();
    ours.out = ours.out.lines().filter(|l| !l.starts_with("IPCCONNNUM=")).map(|l| format!("{l}\n")).collect();
    *ours != before
}

/// `IPCREMOTEPID` and `IPCREMOTEGIDLIST`, the client's pid and
/// supplementary groups, are set by ours (issue 19), not by the original.
fn pid_and_groups_are_set(_: &str, _: &mut Outcome, ours: &mut Outcome) -> bool {
    let before = ours.clone();
    let ours_only = |l: &str| l.starts_with("IPCREMOTEPID=") || l.starts_with("IPCREMOTEGIDLIST=");
    ours.out = ours.out.lines().filter(|l| !ours_only(l)).map(|l| format!("{l}\n")).collect();
    *ours != before
}

/// The usage lines of the programs that read rules list `-S` (issue 19:
/// lookups with the client's supplementary groups).
fn usage_lists_s(_: &str, _: &mut Outcome, ours: &mut Outcome) -> bool {
    let mut changed = false;
    for (with, without) in [
        ("ipcrulescheck [ -S ] rules.cdb", "ipcrulescheck rules.cdb"),
        ("ipcexecrulescheck [ -S ] rules.cdb", "ipcexecrulescheck rules.cdb"),
        ("ipcexec [ -S ] rules.cdb", "ipcexec rules.cdb"),
        ("ipcaccept [ -XShHoOdDqQvpP ]", "ipcaccept [ -XhHoOdDqQvpP ]"),
        ("ipcprint [ -1UXSdDqQvpP ]", "ipcprint [ -1UXdDqQvpP ]"),
        ("ipcperl [ -1UXSdDqQvpP ]", "ipcperl [ -1UXdDqQvpP ]"),
    ] {
        changed |= replace_all(ours, with, without);
    }
    changed
}

/// ipccat and ipcconnect are programs, not scripts over ipcclient: their
/// messages start with their own names, and a closed stdout is their
/// error (111), not cat's, nor ignored as the original's ipcconnect
/// ignores it (exit 0, the server's data lost).
fn clients_are_programs(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let Some(name) = ["ipccat", "ipcconnect"].into_iter().find(|n| case.starts_with(n)) else { return false };
    let mut changed = replace_all(orig, "ipcclient: unable to connect", &format!("{name}: unable to connect"));
    let ignored = name == "ipcconnect" && orig.code == Some(0) && orig.err.is_empty();
    if (orig.err.starts_with("cat: ") || ignored)
        && ours.err.starts_with(&format!("{name}: fatal: unable to write to stdout"))
    {
        *orig = ours.clone();
        changed = true;
    }
    changed
}

/// Only a socket is removed before binding: a regular file at the path is
/// refused (the original deletes it and serves), and a directory says so
/// (the original's bind says `address already used`).
fn only_a_socket_is_removed(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let program = case.split(' ').next().unwrap_or_default();
    let refused = |o: &Outcome, reason: &str| {
        o.code == Some(111) && o.err == format!("{program}: fatal: unable to bind: {reason}\n")
    };
    let file = case.ends_with("on a regular file")
        && orig.code.is_none()
        && orig.extra == "the file is kept: false"
        && refused(ours, "file exists and is not a socket")
        && ours.extra == "the file is kept: true";
    let dir =
        case.ends_with("a directory") && refused(orig, "address already in use") && refused(ours, "is a directory");
    if file || dir {
        *orig = ours.clone();
    }
    file || dir
}

/// Run by a user, ipcserver refuses a change of ids before it binds (the
/// original binds, fails to set the gid and leaves the socket), and
/// serves with the user's own ids (where the original fails the same way).
fn ids_need_root_before_binding(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let Some((program, _)) = case.split_once(" run by a user") else { return false };
    let failed = orig.code == Some(111) && orig.err.contains("fatal: unable to set gid: ");
    let refused = ours.code == Some(100)
        && ours.err
            == format!("{program}: fatal: -u, -g, -G and -U need root, unless they name the server's own ids\n")
        && ours.extra == "socket left: false";
    let serves = ours.code.is_none() && ours.err.is_empty();
    if failed && ((case.ends_with("other ids") && refused) || (case.ends_with("its own ids") && serves)) {
        *orig = ours.clone();
        return true;
    }
    false
}

/// A refused rule line is followed by a line of ours that says which line
/// it is and what was expected there (`ipcrules: line 3: expected ...`).
fn refusals_say_where_and_what(case: &str, _: &mut Outcome, ours: &mut Outcome) -> bool {
    if !case.starts_with("ipcrules ") {
        return false;
    }
    let ours_only = |l: &str| {
        l.strip_prefix("ipcrules: line ")
            .and_then(|r| r.split_once(": expected "))
            .is_some_and(|(n, _)| n.bytes().all(|c| c.is_ascii_digit()))
    };
    let kept: String = ours.err.split_inclusive('\n').filter(|l| !ours_only(l)).collect();
    let changed = kept != ours.err;
    ours.err = kept;
    changed
}

/// ipcserver says once at start that its rules cannot be read (the
/// original says nothing until a connection is dropped).
fn unreadable_rules_are_reported_at_start(case: &str, _: &mut Outcome, ours: &mut Outcome) -> bool {
    let Some(rest) = ours.err.strip_prefix("ipcserver: warning: unable to read ") else { return false };
    let Some((line, after)) = rest.split_once('\n') else { return false };
    if case.starts_with("ipcserver ")
        && case.contains("-x")
        && line.ends_with(" (every connection is dropped until it can be read)")
    {
        ours.err = after.to_string();
        return true;
    }
    false
}

/// ipcrules removes its temporary file when it fails (the original leaves
/// it).
fn rules_tmp_is_removed(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let removed = "temporary file left: false";
    if case.starts_with("ipcrules ") && orig.extra == "temporary file left: true" && ours.extra == removed {
        orig.extra = removed.into();
        return true;
    }
    false
}

/// ipcconnect shuts down its side of the connection when its input ends:
/// a server that reads to the end of its input sees it (the original's
/// never does, and the server waits: here, until its own time-out).
fn ipcconnect_passes_the_end_of_input(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let passed = "the server saw the end of its input: true";
    if case.contains("reads to the end")
        && orig.extra == "the server saw the end of its input: false"
        && ours.extra == passed
    {
        orig.extra = passed.into();
        return true;
    }
    false
}

/// A uid given without a gid takes the user's primary gid from
/// /etc/passwd (the original keeps gid 0 and root's groups).
fn uid_takes_its_primary_gid(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    if case.contains("primary gid") && orig.out != ours.out {
        orig.out = ours.out.clone();
        return true;
    }
    false
}

/// A value the original reads as a key (`IPCREMOTEEUID=abc`) is refused.
fn ids_are_validated(_: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    if ours.code == Some(100) && ours.err.contains("fatal: invalid IPCREMOTE") && orig.code == Some(0) {
        *orig = ours.clone();
        return true;
    }
    false
}

/// The original's handlers keep the mask their launcher blocked; ours
/// start with an empty one, as s6's (behaviour.md §0).
fn handlers_start_with_an_empty_mask(case: &str, orig: &mut Outcome, ours: &mut Outcome) -> bool {
    let empty = "blocks -;";
    if !case.starts_with("signals ") || !ours.extra.contains(empty) {
        return false;
    }
    let Some(at) = orig.extra.find("blocks ") else { return false };
    let Some(end) = orig.extra[at..].find(';') else { return false };
    let before = orig.extra.clone();
    orig.extra.replace_range(at..at + end + 1, empty);
    orig.extra != before
}

/// In order: first those that edit one side, then those that make one
/// side a copy of the other when the difference is of their kind.
const NORMALISERS: [(&str, Normaliser); 26] = [
    ("log lines sanitise client strings", log_strings_are_sanitised),
    ("unreadable rules are reported at start", unreadable_rules_are_reported_at_start),
    ("refused rule lines say where and what was expected", refusals_say_where_and_what),
    ("REASON texts are strerror's", reason_texts),
    ("bind messages name the path", bind_names_the_path),
    ("ipcserver's usage lists -1 -C -G -S -a", server_usage_lists_our_options),
    ("usage lines list -S", usage_lists_s),
    ("rule numbers are canonical", rule_numbers_are_canonical),
    ("IPCCONNNUM is set", connnum_is_set),
    ("IPCREMOTEPID and IPCREMOTEGIDLIST are set", pid_and_groups_are_set),
    ("ipccat and ipcconnect are programs", clients_are_programs),
    ("-h -H -o -O are accepted", listed_options_are_accepted),
    ("the original crashes", the_original_crashes),
    ("ipcconnect passes the end of input", ipcconnect_passes_the_end_of_input),
    ("ipcrules removes its temporary file", rules_tmp_is_removed),
    ("numbers and ids are validated", numbers_are_validated),
    ("unmatchable rule lines are refused", unmatchable_rules_are_refused),
    ("a range needs both its numbers", ranges_need_both_ends),
    ("a uid without a gid takes its primary gid", uid_takes_its_primary_gid),
    ("only a socket is removed", only_a_socket_is_removed),
    ("a change of ids needs root, checked before binding", ids_need_root_before_binding),
    ("non-numeric ids in the environment are refused", ids_are_validated),
    ("handlers start with an empty mask", handlers_start_with_an_empty_mask),
    ("ipclisten needs a program", a_program_is_required),
    ("ipcaccept checks descriptor 0", descriptor_0_is_checked),
    ("instances do not outlive ipclisten", instances_do_not_outlive_ipclisten),
];

/// The results of all cases: how many were identical, how many differed
/// by which deliberate reasons, and the unexplained differences.
#[derive(Default)]
struct Tally {
    cases: usize,
    identical: usize,
    by_reason: BTreeMap<String, usize>,
    unexplained: Vec<String>,
}

impl Tally {
    /// Says how many cases were identical and which differences the
    /// others had; fails on any that no deliberate difference explains.
    fn report(&self, name: &str) {
        let mut report = format!(
            "{name}: {} cases, {} identical, {} with deliberate differences, {} unexplained\n",
            self.cases,
            self.identical,
            self.by_reason.values().sum::<usize>(),
            self.unexplained.len()
        );
        for (reason, n) in &self.by_reason {
            report.push_str(&format!("  {n:4}  {reason}\n"));
        }
        let _ = std::io::stderr().lock().write_all(report.as_bytes());
        assert!(self.unexplained.is_empty(), "{report}\nunexplained differences:\n{}", self.unexplained.join("\n"));
    }

    fn compare(&mut self, case: &str, mut orig: Outcome, mut ours: Outcome) {
        self.cases += 1;
        if orig == ours {
            self.identical += 1;
            return;
        }
        let (raw_orig, raw_ours) = (orig.clone(), ours.clone());
        let mut reasons = Vec::new();
        for (reason, normalise) in NORMALISERS {
            if normalise(case, &mut orig, &mut ours) {
                reasons.push(reason);
            }
        }
        if orig == ours {
            *self.by_reason.entry(reasons.join(" + ")).or_default() += 1;
        } else {
            self.unexplained.push(format!("{case}:\n  original: {raw_orig:?}\n  ours:     {raw_ours:?}"));
        }
    }
}

/// Runs `name` of each suite as `args` in `dir`, with `env` and stdin.
fn both(
    t: &mut Tally,
    bins: &Bins,
    case: &str,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    input: &[u8],
) -> (Outcome, Outcome) {
    let run = |s: Suite| {
        let mut c = Command::new(bins.prog(s, name));
        c.args(args).env_remove("IPCREMOTEEUID").env_remove("IPCREMOTEEGID").envs(env.iter().copied());
        outcome(&mut c, input, 1.0)
    };
    let (o, u) = (run(Suite::Original), run(Suite::Ours));
    t.compare(case, o.clone(), u.clone());
    (o, u)
}

fn usage_and_option_errors(t: &mut Tally, bins: &Bins) {
    let d = TempDir::new();
    let sock = d.join("s");
    let s = sock.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("ipcserver", &[]),
        ("ipcserver", &[s]),
        ("ipcserver", &["-q"]),
        ("ipcserver", &["-q", s]),
        ("ipcserver", &["-k", s, "true"]),
        ("ipcserver", &["-q", "-k", s, "true"]),
        ("ipcserver", &["-c"]),
        ("ipcserver", &["-x"]),
        ("ipcserver", &["-c", "x", s, "true"]),
        ("ipcserver", &["-c", "0", s, "true"]),
        // The original takes any number (it serves, with `status: 0/100000`).
        ("ipcserver", &["-c", "100000", s, "true"]),
        ("ipcserver", &["-u", "abc", s, "true"]),
        ("ipcserver", &["-b", "z", s, "true"]),
        // An empty path: a run script whose $SOCK is unset.
        ("ipcserver", &["", "true"]),
        ("ipcserver", &["-q", "", "true"]),
        ("ipcclient", &[]),
        ("ipcclient", &[s]),
        ("ipcclient", &["-q"]),
        ("ipcclient", &["-q", s]),
        ("ipcclient", &["-k", s, "true"]),
        ("ipcclient", &["-q", "-k", s, "true"]),
        ("ipcclient", &["-p"]),
        ("ipcclient", &["-q", "-l"]),
        ("ipcrules", &[]),
        ("ipcrules", &["a.cdb"]),
        ("ipcrulescheck", &[]),
        ("ipccat", &[]),
        ("ipccat", &["a", "b"]),
        ("ipcconnect", &[]),
        ("ipcconnect", &["a", "b"]),
    ];
    for (name, args) in cases {
        both(t, bins, &format!("{name} {args:?}"), name, args, &[], b"");
        let _ = std::fs::remove_file(&sock);
    }
}

fn connection_failures(t: &mut Tally, bins: &Bins) {
    let d = TempDir::new();
    let missing = d.join("missing");
    let dead = d.join("dead");
    drop(UnixListener::bind(&dead).unwrap());
    let long = d.join(&"l".repeat(109 - d.path().to_str().unwrap().len() - 1));
    for target in [&missing, &dead, &long] {
        let p = target.to_str().unwrap();
        for opts in [&[][..], &["-q"][..], &["-v"][..]] {
            let mut args: Vec<&str> = opts.to_vec();
            args.extend([p, "sh", "-c", "echo ran"]);
            both(t, bins, &format!("ipcclient {args:?}"), "ipcclient", &args, &[], b"");
        }
        both(t, bins, &format!("ipccat {p}"), "ipccat", &[p], &[], b"");
        both(t, bins, &format!("ipcconnect {p}"), "ipcconnect", &[p], &[], b"");
    }
    // An empty path: nothing to connect to.
    both(t, bins, "ipcclient ''", "ipcclient", &["", "sh", "-c", "echo ran"], &[], b"");
    both(t, bins, "ipcclient -q ''", "ipcclient", &["-q", "", "sh", "-c", "echo ran"], &[], b"");
    both(t, bins, "ipccat ''", "ipccat", &[""], &[], b"");
    both(t, bins, "ipcconnect ''", "ipcconnect", &[""], &[], b"");
}

/// A listener that answers every connection with `answer`, in a thread
/// that ends when `n` connections were served.
fn answering(path: &Path, n: usize, answer: &'static [u8]) -> std::thread::JoinHandle<()> {
    let l = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut c, _)) = l.accept() else { return };
            let _ = c.write_all(answer);
        }
    })
}

fn client_behaviour(t: &mut Tally, bins: &Bins) {
    let d = TempDir::new();
    let sock = d.join("s");
    let s = sock.to_str().unwrap();
    let local = d.join("me");
    let lp = local.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("ipcclient", &[s, "sh", "-c", "cat <&6; env | grep -E '^(PROTO|IPCLOCALPATH)=' | sort"]),
        ("ipcclient", &["-v", s, "sh", "-c", "cat <&6"]),
        ("ipcclient", &["-l", "name", s, "sh", "-c", "echo $IPCLOCALPATH"]),
        ("ipcclient", &["-p", lp, s, "sh", "-c", "echo $IPCLOCALPATH"]),
        ("ipcclient", &["-p", lp, "-l", "other", s, "sh", "-c", "echo $IPCLOCALPATH"]),
        ("ipcclient", &["-p", "", s, "sh", "-c", "cat <&6; echo \"[$IPCLOCALPATH]\""]),
        ("ipcclient", &[s, "/nonexistent/prog"]),
        ("ipccat", &[s]),
    ];
    for (name, args) in cases {
        let case = format!("{name} {args:?}");
        let run = |suite: Suite| {
            let _ = std::fs::remove_file(&sock);
            let _ = std::fs::remove_file(&local);
            let server = answering(&sock, 1, b"hello\n");
            let mut c = Command::new(bins.prog(suite, name));
            let o = outcome(c.args(*args).env_remove("IPCLOCALPATH"), b"", 5.0);
            drop(std::os::unix::net::UnixStream::connect(&sock));
            let _ = server.join();
            o
        };
        let (o, u) = (run(Suite::Original), run(Suite::Ours));
        t.compare(&case, o, u);
    }
    // A client bound to the longest path Linux allows.
    let base = d.path().to_str().unwrap().len() + 1;
    let longest = d.join(&"m".repeat(108 - base));
    let run = |suite: Suite| {
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::remove_file(&longest);
        let server = answering(&sock, 1, b"hi\n");
        let mut c = Command::new(bins.prog(suite, "ipcclient"));
        let o =
            outcome(c.arg("-p").arg(&longest).arg(&sock).args(["sh", "-c", "cat <&6; echo $IPCLOCALPATH"]), b"", 5.0);
        let _ = server.join();
        o
    };
    let (o, u) = (run(Suite::Original), run(Suite::Ours));
    t.compare("ipcclient -p (108 bytes)", o, u);
    // Standard output closed: nothing may go back to the server. The
    // server writes, waits a second for anything to come back (the
    // original's ipcconnect never ends its side of the connection), then
    // closes.
    for name in ["ipccat", "ipcconnect"] {
        let run = |suite: Suite| {
            let _ = std::fs::remove_file(&sock);
            let server = serve_once(&sock, |mut c| {
                c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let _ = c.write_all(b"hello\n");
                let mut back = Vec::new();
                let _ = std::io::Read::read_to_end(&mut c, &mut back);
                back
            });
            let mut c = Command::new("sh");
            let mut o =
                outcome(c.args(["-c", "exec \"$0\" \"$1\" >&-"]).arg(bins.prog(suite, name)).arg(&sock), b"", 5.0);
            o.extra = format!("server got {:?}", String::from_utf8_lossy(&server.join().unwrap()));
            o
        };
        let (o, u) = (run(Suite::Original), run(Suite::Ours));
        t.compare(&format!("{name} with stdout closed"), o, u);
    }
    // A server that reads its input to the end before it answers: it
    // sees the end only if the client passes it on (else, here, it gives
    // up waiting after a second).
    let run = |suite: Suite| {
        let _ = std::fs::remove_file(&sock);
        let server = serve_once(&sock, |mut c| {
            c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut input = Vec::new();
            let ended = std::io::Read::read_to_end(&mut c, &mut input).is_ok();
            let _ = c.write_all(format!("got {} bytes\n", input.len()).as_bytes());
            ended
        });
        let mut o = outcome(Command::new(bins.prog(suite, "ipcconnect")).arg(&sock), b"abc\n", 5.0);
        o.extra = format!("the server saw the end of its input: {}", server.join().unwrap());
        o
    };
    let (o, u) = (run(Suite::Original), run(Suite::Ours));
    t.compare("ipcconnect to a server that reads to the end of its input", o, u);
}

/// `cdb -d` of a file, or what went wrong.
fn dump(cdb: &Path) -> String {
    match Command::new("cdb").arg("-d").arg(cdb).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => format!("no cdb ({})", cdb.exists()),
    }
}

/// Rule lines: exit code, message and the compiled cdb, byte for byte.
const RULE_LINES: &[&str] = &[
    "1001.1010:allow",
    "1001:deny",
    ".1010:allow",
    ":deny",
    "1-3:deny",
    "1001,0.echo:allow",
    "1001.1010,0.echo:allow,A=\"x\"",
    ",0.ls:deny",
    "1-3,0.ls:deny",
    "1001,0.ec ho:deny",
    ":allow,=\"nameless\",B=\"x\"",
    ":allow,A,B=\"x\"",
    ":allow,A B=\"x\"",
    "1:allow, A=\"x\"",
    "1:allow,A=\"x\",",
    "1:allow,A=B=\"x\"",
    "1:allow,A=\"x\"B=\"y\"",
    "1:allow,A=\"x\" ",
    "1:allow,A=\"x\" ,B=\"y\"",
    "1:deny,A=\"x\",B=/y/",
    "1:allow,A=\"\"",
    "1:allow,A==",
    "1:allow,A=xx",
    "1:allow,A=xyx",
    ":allowed",
    ":Allow",
    ":deny ",
    ":allow\t",
    ":allow,A=\"\tx\"",
    ":allow,A=\"x\"#",
    "1:allow#comment",
    "1: allow",
    ":allow,A=\"a:b\"",
    "#comment",
    "# comment with : and ,",
    "",
    "\t",
    ":",
    ":allow:",
    "1001:allow=/bin/sh/",
    "1001,0.echo:allow=/bin/x/",
    ":bogus",
    ":allow,A",
    ":allow,A=x",
    ":allow,A=\"x",
    "01001:deny",
    "007.0010:allow",
    "08-010:deny",
    "abc:allow",
    "1001",
    "allow",
    "  1:allow",
    "  #x",
    "1 :allow",
    "1.:allow",
    ".:allow",
    "1.2.3:allow",
    "1..2:allow",
    "4294967296:allow",
    "5-3:deny",
    "1-:deny",
    "-1:allow",
    "-5:deny",
    "-:deny",
    "1.2-3:deny",
    "1001,x:deny",
    "1001,:deny",
    "1001,0.:deny",
    ",:deny",
    // How a refused line is shown: trailing blanks cut, ending at a NUL.
    ":bogus   ",
    ":bogus\t \t",
    "1:deny\0junk",
    ":bogus  \0  ",
];

fn rules_compiled(t: &mut Tally, bins: &Bins) {
    if !have_for("rules (tinycdb to dump)", "cdb") {
        return;
    }
    let d = TempDir::new();
    let mut lines: Vec<String> = RULE_LINES.iter().map(|l| l.to_string()).collect();
    // Lines of any length, and the largest assignment a reader honours.
    lines.push(format!("#{}", "c".repeat(300_000)));
    lines.push(format!("1:allow,A=\"{}\"", "v".repeat(131_000)));
    for line in &lines {
        let input = format!("{line}\n");
        let run = |suite: Suite| {
            let cdb = d.join("r.cdb");
            let _ = std::fs::remove_file(&cdb);
            let mut c = Command::new(bins.prog(suite, "ipcrules"));
            let mut o = outcome(c.arg(&cdb).arg(d.join("r.tmp")), input.as_bytes(), 10.0);
            o.extra = dump(&cdb);
            o
        };
        let (o, u) = (run(Suite::Original), run(Suite::Ours));
        let shown: String = line.chars().take(60).collect();
        t.compare(&format!("ipcrules {shown:?}"), o, u);
    }
    // Failures of the files themselves, and of a line: whether the
    // temporary file is left behind too.
    let dir_target = d.join("adir");
    std::fs::create_dir(&dir_target).unwrap();
    for (case, target, tmp, input) in [
        ("ipcrules over a directory", dir_target.clone(), d.join("r.tmp"), ":deny\n"),
        ("ipcrules tmp in a missing directory", d.join("x.cdb"), d.join("nodir/r.tmp"), ":deny\n"),
        ("ipcrules with a refused line", d.join("x.cdb"), d.join("r.tmp"), "1:deny\n:bogus\n"),
    ] {
        let run = |suite: Suite| {
            let _ = std::fs::remove_file(&tmp);
            let mut o =
                outcome(Command::new(bins.prog(suite, "ipcrules")).arg(&target).arg(&tmp), input.as_bytes(), 5.0);
            o.extra = format!("temporary file left: {}", tmp.exists());
            o
        };
        let (o, u) = (run(Suite::Original), run(Suite::Ours));
        t.compare(case, o, u);
    }
    let run = |suite: Suite| {
        let mut c = Command::new(bins.prog(suite, "ipcrules"));
        c.arg(d.join("y.cdb")).arg(d.join("y.tmp")).stdin(std::fs::File::open(d.path()).unwrap());
        let o = c.output().unwrap();
        Outcome { code: o.status.code(), out: stdout(&o), err: stderr(&o), extra: String::new() }
    };
    t.compare("ipcrules reading a directory", run(Suite::Original), run(Suite::Ours));
}

fn rules_checked(t: &mut Tally, bins: &Bins) {
    let d = TempDir::new();
    let cdb = d.join("r.cdb");
    let text = "1001.1010:allow,which=\"first\"\n1002:allow,which=/second/\n:allow,which=+third+\n\
                .1010:allow,which==fourth=\n1002:deny\n.5:allow,=\"emptyname\",B=\"x\"\n1003:deny,A=\"b\"\n";
    let o = run_input(
        Command::new(bins.prog(Suite::Original, "ipcrules")).arg(&cdb).arg(d.join("r.tmp")),
        text.as_bytes(),
        10,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c = cdb.to_str().unwrap();
    let missing = d.join("none.cdb");
    let envs: &[(&str, &[(&str, &str)])] = &[
        (c, &[("IPCREMOTEEUID", "1001"), ("IPCREMOTEEGID", "1010")]),
        (c, &[("IPCREMOTEEUID", "1002"), ("IPCREMOTEEGID", "1010")]),
        (c, &[("IPCREMOTEEUID", "1003")]),
        (c, &[("IPCREMOTEEUID", "7"), ("IPCREMOTEEGID", "1010")]),
        (c, &[("IPCREMOTEEGID", "5")]),
        (c, &[]),
        (c, &[("IPCREMOTEEUID", "abc")]),
        (missing.to_str().unwrap(), &[("IPCREMOTEEUID", "1")]),
        (d.path().to_str().unwrap(), &[]),
    ];
    for (file, env) in envs {
        both(t, bins, &format!("ipcrulescheck {file} {env:?}"), "ipcrulescheck", &[file], env, b"");
    }
}

/// Replaces the numbers that follow `pid `, `ok `, `deny `, `end ` in a
/// log by P1, P2... in order of appearance, so that two runs compare.
fn log_with_pids_named(log: &str) -> String {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut out = String::new();
    for line in log.lines() {
        let mut words: Vec<String> = line.split(' ').map(String::from).collect();
        for i in 1..words.len() {
            if ["pid", "ok", "deny", "end"].contains(&words[i - 1].as_str()) && words[i].parse::<u32>().is_ok() {
                let n = names.len() + 1;
                words[i] = names.entry(words[i].clone()).or_insert_with(|| format!("P{n}")).clone();
            }
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// A server's command line, `PROGRAM OPTS PATH [LINK LINK-OPTS] HANDLER...`:
/// ipcserver alone, or 0.70's ipclisten running ipcaccept, of one suite.
#[derive(Clone, Copy)]
struct Chain<'a> {
    program: &'a str,
    opts: &'a [&'a str],
    link: Option<(&'a str, &'a [&'a str])>,
}

impl<'a> Chain<'a> {
    fn ipcserver(opts: &'a [&'a str]) -> Chain<'a> {
        Chain { program: "ipcserver", opts, link: None }
    }

    fn ipclisten(opts: &'a [&'a str], accept_opts: &'a [&'a str]) -> Chain<'a> {
        Chain { program: "ipclisten", opts, link: Some(("ipcaccept", accept_opts)) }
    }

    fn argv(&self, bins: &Bins, suite: Suite, sock: &Path, handler: &[&str]) -> Vec<std::ffi::OsString> {
        let mut argv = vec![bins.prog(suite, self.program).into_os_string()];
        argv.extend(self.opts.iter().map(Into::into));
        argv.push(sock.into());
        if let Some((link, opts)) = self.link {
            argv.push(bins.prog(suite, link).into_os_string());
            argv.extend(opts.iter().map(Into::into));
        }
        argv.extend(handler.iter().map(Into::into));
        argv
    }

    fn command(&self, bins: &Bins, suite: Suite, sock: &Path, handler: &[&str]) -> Command {
        let argv = self.argv(bins, suite, sock, handler);
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    }

    /// Whether the link that logs connections logs their ends.
    fn logs_ends(&self) -> bool {
        let opts = self.link.map_or(self.opts, |(_, opts)| opts);
        !opts.contains(&"-q") && opts.iter().any(|o| o.starts_with("-v"))
    }
}

/// Kills `server` (SIGKILL) and what it started that is left (the
/// original's ipclisten leaves its instances running).
fn stop(server: &mut std::process::Child) -> Option<i32> {
    let left = descendants(server.id() as i32);
    let code = match server.try_wait().unwrap() {
        Some(st) => st.code(),
        None => {
            kill(server.id() as i32, 9);
            let _ = server.wait();
            None
        }
    };
    for p in left {
        kill(p, 9);
    }
    code
}

/// Runs the `chain` of `suite` on a fresh PATH, serves `connections`
/// (each with our ipcclient, reading what the handler writes), stops the
/// server, and returns the clients' output and the server's log.
fn serve(
    bins: &Bins,
    suite: Suite,
    chain: Chain,
    handler: &[&str],
    connections: usize,
    env: &[(&str, &str)],
) -> Outcome {
    let d = TempDir::new();
    let sock = d.join("s");
    let log = d.join("log");
    let mut c = chain.command(bins, suite, &sock, handler);
    c.envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::null());
    c.stderr(std::fs::File::create(&log).unwrap());
    let mut child = c.spawn().unwrap();
    let ready = wait_until(5, || socket_ready(&sock) || child.try_wait().unwrap().is_some());
    let mut out = String::new();
    if ready && socket_ready(&sock) {
        // Each connection once the previous one's `end` and `status`
        // lines are written: their order with the next connection's lines
        // is otherwise a race, in both servers.
        let settled = |n: usize| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // (A server that logs no `status` lines has only its `end`.)
            let counted =
                !text.contains("status: ") || text.rsplit(" end ").next().is_some_and(|t| t.contains("status: "));
            text.matches(" end ").count() >= n && counted
        };
        for n in 0..connections {
            let o = run(cmd("ipcclient").arg(&sock).args(["sh", "-c", "cat <&6"]), 10);
            out.push_str(&stdout(&o));
            if chain.logs_ends() && n + 1 < connections {
                wait_until(5, || settled(n + 1));
            }
        }
        // The log is complete once every connection has ended.
        if chain.logs_ends() {
            wait_until(5, || std::fs::read_to_string(&log).unwrap_or_default().matches(" end ").count() >= connections);
            std::thread::sleep(Duration::from_millis(50));
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let code = stop(&mut child);
    let log = std::fs::read_to_string(&log).unwrap_or_default().replace(sock.to_str().unwrap(), "SOCK");
    let log = log.replace(d.path().to_str().unwrap(), "DIR");
    Outcome {
        code,
        out: out.replace(d.path().to_str().unwrap(), "DIR"),
        err: log_with_pids_named(&log),
        extra: String::new(),
    }
}

fn server_logs_and_environment(t: &mut Tally, bins: &Bins) {
    let d = TempDir::new();
    let cdb = d.join("r.cdb");
    let (uid, gid) = {
        let st = std::fs::read_to_string("/proc/self/status").unwrap();
        let f = |n: &str| st.lines().find(|l| l.starts_with(n)).unwrap().split_whitespace().nth(2).unwrap().to_string();
        (f("Uid:"), f("Gid:"))
    };
    let compile = |text: &str| {
        let o = run_input(
            Command::new(bins.prog(Suite::Original, "ipcrules")).arg(&cdb).arg(d.join("r.tmp")),
            text.as_bytes(),
            10,
        );
        assert!(o.status.success());
    };
    let env_handler: &[&str] = &["sh", "-c", "echo hello; env | grep -E '^(PROTO|IPC|A=)' | sort"];
    let c = cdb.to_str().unwrap();
    let missing = d.join("none.cdb");
    let m = missing.to_str().unwrap();
    type ServerCase<'a> = (&'a str, Vec<&'a str>, &'a [&'a str]);
    let cases: Vec<ServerCase> = vec![
        ("plain -v", vec!["-v"], env_handler),
        ("quiet", vec!["-q"], env_handler),
        ("default verbosity", vec![], env_handler),
        ("-v -B -l", vec!["-v", "-B", "banner\n", "-l", "name"], env_handler),
        ("-v -P", vec!["-v", "-P"], env_handler),
        ("-v -x allow", vec!["-v", "-x", c], env_handler),
        ("-v -x missing", vec!["-v", "-x", m], env_handler),
        ("-v -X -x missing", vec!["-v", "-X", "-x", m], env_handler),
        ("-q -x missing", vec!["-q", "-x", m], env_handler),
        ("-v exec failure", vec!["-v"], &["/nonexistent/prog"]),
        ("-v exit 3", vec!["-v"], &["sh", "-c", "exit 3"]),
        ("-v -c 1", vec!["-v", "-c", "1"], env_handler),
        ("-v -c 65535", vec!["-v", "-c", "65535"], env_handler),
        ("-v -o -O -h -H", vec!["-v", "-o", "-O", "-h", "-H"], env_handler),
    ];
    compile(&format!("{uid}.{gid}:allow,A=\"rule\"\n:deny\n"));
    for (name, opts, handler) in &cases {
        let chain = Chain::ipcserver(opts);
        let (o, u) =
            (serve(bins, Suite::Original, chain, handler, 2, &[]), serve(bins, Suite::Ours, chain, handler, 2, &[]));
        t.compare(&format!("ipcserver {name}"), o, u);
    }
    compile(&format!("{uid}:deny\n:allow\n"));
    let opts = ["-v", "-x", c];
    let chain = Chain::ipcserver(&opts);
    let (o, u) = (
        serve(bins, Suite::Original, chain, env_handler, 2, &[]),
        serve(bins, Suite::Ours, chain, env_handler, 2, &[]),
    );
    t.compare("ipcserver -v -x deny", o, u);
    std::fs::write(&cdb, b"garbage").unwrap();
    let (o, u) = (
        serve(bins, Suite::Original, chain, env_handler, 1, &[]),
        serve(bins, Suite::Ours, chain, env_handler, 1, &[]),
    );
    t.compare("ipcserver -v -x corrupt", o, u);
}

/// A client whose path has bytes a log line must not show raw, served
/// by `chain` (which logs at `-v`).
fn sanitised_log_lines(t: &mut Tally, bins: &Bins, chain: Chain) {
    let run = |suite: Suite| {
        let d = TempDir::new();
        let sock = d.join("s");
        let log = d.join("log");
        let mut srv = chain
            .command(bins, suite, &sock, &["sh", "-c", "printf '%s\\n' \"$IPCREMOTEPATH\""])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        wait_until(5, || socket_ready(&sock));
        let o = run(cmd("ipcclient").arg("-p").arg(d.join("a:b%c d")).arg(&sock).args(["sh", "-c", "cat <&6"]), 10);
        wait_until(5, || std::fs::read_to_string(&log).unwrap_or_default().contains(" end "));
        stop(&mut srv);
        let log = std::fs::read_to_string(&log).unwrap().replace(d.path().to_str().unwrap(), "DIR");
        Outcome {
            code: o.status.code(),
            out: stdout(&o).replace(d.path().to_str().unwrap(), "DIR"),
            err: log_with_pids_named(&log).lines().filter(|l| l.contains(" from ")).map(|l| format!("{l}\n")).collect(),
            extra: String::new(),
        }
    };
    t.compare(
        &format!("{} -v, client path sanitised in the log", chain.program),
        run(Suite::Original),
        run(Suite::Ours),
    );
}

/// What binding PATH says, for the `chain` that binds it.
fn bind_errors(t: &mut Tally, bins: &Bins, chain: Chain) {
    let d = TempDir::new();
    let live = d.join("live");
    let _live = Server::start(cmd("ipcserver").arg(&live).arg("true").stderr(Stdio::null()), &live);
    let base = d.path().to_str().unwrap().len() + 1;
    let too_long = d.join(&"x".repeat(109 - base));
    let l = live.to_str().unwrap();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("-D on a live socket", vec!["-D".into(), l.into(), "true".into()]),
        ("missing directory", vec![d.join("no/such/s").to_str().unwrap().into(), "true".into()]),
        ("a directory", vec![d.path().to_str().unwrap().into(), "true".into()]),
        ("109-byte path", vec![too_long.to_str().unwrap().into(), "true".into()]),
        ("-q missing directory", vec!["-q".into(), d.join("no/such/s").to_str().unwrap().into(), "true".into()]),
    ];
    for (name, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        both(t, bins, &format!("{} {name}", chain.program), chain.program, &args, &[], b"");
    }
    // A regular file where the socket should be (`ipcserver notes.txt
    // prog`): is it still there afterwards?
    let notes = d.join("notes.txt");
    let on_notes = |suite: Suite| {
        std::fs::write(&notes, "notes\n").unwrap();
        let mut o = outcome(Command::new(bins.prog(suite, chain.program)).arg(&notes).arg("true"), b"", 1.0);
        o.extra = format!("the file is kept: {}", std::fs::read(&notes).is_ok_and(|n| n == b"notes\n"));
        let _ = std::fs::remove_file(&notes);
        o
    };
    t.compare(&format!("{} on a regular file", chain.program), on_notes(Suite::Original), on_notes(Suite::Ours));
    // The longest path Linux accepts is served by both.
    let longest = d.join(&"y".repeat(108 - base));
    let run = |suite: Suite| {
        let mut srv = chain
            .command(bins, suite, &longest, &["sh", "-c", "echo $IPCLOCALPATH"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(5, || socket_ready(&longest));
        let o = run(cmd("ipcclient").arg(&longest).args(["sh", "-c", "cat <&6"]), 10);
        stop(&mut srv);
        let _ = std::fs::remove_file(&longest);
        Outcome { code: o.status.code(), out: stdout(&o), err: stderr(&o), extra: String::new() }
    };
    t.compare(&format!("{} on a 108-byte path", chain.program), run(Suite::Original), run(Suite::Ours));
}

/// The privilege options of `chain`'s first program, given as the opts
/// of `chain_with`.
fn privilege_drops(t: &mut Tally, bins: &Bins, chain_with: fn(&'static [&'static str]) -> Chain<'static>) {
    if !is_root() {
        skip("privilege drops: needs root");
        return;
    }
    let ids: &[&str] = &["sh", "-c", "id -u; id -g; grep Groups /proc/self/status"];
    let env = [("UID", "65534"), ("GID", "65533")];
    let cases: &[(&str, &'static [&'static str])] = &[
        ("-u -g", &["-u", "65534", "-g", "65533"]),
        ("-g", &["-g", "65533"]),
        ("-U", &["-U"]),
        ("-U -u", &["-U", "-u", "1"]),
        ("-u -U", &["-u", "1", "-U"]),
        ("-U -g", &["-U", "-g", "5"]),
        ("-g -U", &["-g", "5", "-U"]),
        ("-u alone: primary gid", &["-u", "1"]),
    ];
    for (name, opts) in cases {
        let chain = chain_with(opts);
        let run = |s: Suite| serve(bins, s, chain, ids, 1, &env);
        t.compare(&format!("{} {name}", chain.program), run(Suite::Original), run(Suite::Ours));
    }
    // Run by a user (nobody, no other group), for other ids and for its
    // own: is the socket left behind?
    if !have_for("privilege drops by a user", "setpriv") {
        return;
    }
    let d = TempDir::new();
    std::fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let sock = d.join("s");
    let program = chain_with(&[]).program;
    for (name, opts) in [("other ids", ["-u", "1000", "-g", "1000"]), ("its own ids", ["-u", "65534", "-g", "65534"])] {
        let run = |suite: Suite| {
            let _ = std::fs::remove_file(&sock);
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bins.prog(suite, program));
            let mut o = outcome(c.args(opts).arg(&sock).arg("true"), b"", 1.0);
            o.err = o.err.replace(sock.to_str().unwrap(), "SOCK");
            o.extra = format!("socket left: {}", sock.exists());
            o
        };
        t.compare(&format!("{program} run by a user, {name}"), run(Suite::Original), run(Suite::Ours));
    }
}

/// Started by each launcher (`&` from sh, nohup, one that ignores
/// SIGPIPE, one that blocks signals): what the handler ignores and blocks,
/// and whether the server (`chain`) is still there after a SIGINT.
fn signals_from_launchers(t: &mut Tally, bins: &Bins, chain: Chain) {
    for launcher in Launcher::ALL {
        if let Some(what) = launcher.missing() {
            skip(&format!("signals: {launcher:?}: no {what}"));
            continue;
        }
        let run = |suite: Suite| {
            let d = TempDir::new();
            let sock = d.join("s");
            let argv = chain.argv(bins, suite, &sock, &["cat", "/proc/self/status"]);
            let srv = launcher.start(&argv, &d.join("log"));
            let status = String::from_utf8(served(&sock, b"").unwrap_or_default()).unwrap();
            let handler = match status.contains("SigIgn:") {
                true => format!("ignores {}, blocks {};", mask(&status, "SigIgn:"), mask(&status, "SigBlk:")),
                false => "never served;".to_string(),
            };
            kill(srv.pid, 2);
            let after = if served(&sock, b"").is_some() { "served" } else { "gone" };
            Outcome {
                code: None,
                out: String::new(),
                err: String::new(),
                extra: format!("{handler} after SIGINT {after}"),
            }
        };
        t.compare(&format!("signals {} {launcher:?}", chain.program), run(Suite::Original), run(Suite::Ours));
    }
}

/// The original's programs, from the directory `var` names, and ours;
/// `None` (and SKIPPED) when `var` is not set.
fn bins_from(var: &str, programs: &[&str]) -> Option<Bins> {
    let Some(dir) = std::env::var_os(var) else {
        skip(&format!("{var} is not set"));
        return None;
    };
    let bins = Bins { original: PathBuf::from(dir), ours: bin("ipcserver").parent().unwrap().to_path_buf() };
    for name in programs {
        assert!(bins.original.join(name).exists(), "no {name} in {}", bins.original.display());
    }
    Some(bins)
}

#[test]
fn differential_against_the_original() {
    let Some(bins) = bins_from("UCSPI_IPC_ORIGINAL", &["ipcserver"]) else { return };
    let mut t = Tally::default();
    usage_and_option_errors(&mut t, &bins);
    connection_failures(&mut t, &bins);
    client_behaviour(&mut t, &bins);
    rules_compiled(&mut t, &bins);
    rules_checked(&mut t, &bins);
    server_logs_and_environment(&mut t, &bins);
    sanitised_log_lines(&mut t, &bins, Chain::ipcserver(&["-v"]));
    bind_errors(&mut t, &bins, Chain::ipcserver(&[]));
    privilege_drops(&mut t, &bins, Chain::ipcserver);
    signals_from_launchers(&mut t, &bins, Chain::ipcserver(&[]));
    t.report("compat_original");
}

/// ucspi-ipc 0.70's ipclisten and ipcaccept: usage and option errors,
/// and a descriptor 0 ipcaccept cannot accept on.
fn usage_and_option_errors_070(t: &mut Tally, bins: &Bins) {
    let d = TempDir::new();
    let sock = d.join("s");
    let s = sock.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("ipclisten", &[]),
        ("ipclisten", &["-q"]),
        ("ipclisten", &[s]),
        ("ipclisten", &["-q", s]),
        ("ipclisten", &["-z", s, "true"]),
        ("ipclisten", &["-q", "-z", s, "true"]),
        ("ipclisten", &["-c"]),
        ("ipclisten", &["-c", "x", s, "true"]),
        ("ipclisten", &["-c", "0", s, "true"]),
        ("ipclisten", &["-b", "z", s, "true"]),
        ("ipclisten", &["-u", "abc", s, "true"]),
        ("ipcaccept", &[]),
        ("ipcaccept", &["-q"]),
        ("ipcaccept", &["-v"]),
        ("ipcaccept", &["-z", "true"]),
        ("ipcaccept", &["-q", "-z", "true"]),
        ("ipcaccept", &["-c", "1", "true"]),
        ("ipcaccept", &["-x"]),
        ("ipcaccept", &["-f"]),
        // Descriptor 0 is a pipe.
        ("ipcaccept", &["true"]),
        ("ipcaccept", &["-q", "true"]),
    ];
    for (name, args) in cases {
        both(t, bins, &format!("{name} {args:?}"), name, args, &[], b"");
        let _ = std::fs::remove_file(&sock);
    }
    // The options ipcaccept's usage line lists, on a socket ipclisten
    // binds: the original's instances exit at once with their usage line.
    for opts in [&["-h"][..], &["-hHoOdD"]] {
        let run = |suite: Suite| {
            let d = TempDir::new();
            let mut c = Chain::ipclisten(&[], opts).command(bins, suite, &d.join("s"), &["true"]);
            let mut o = outcome(&mut c, b"", 1.0);
            // Many times for the original: once is enough.
            o.err = o.err.lines().take(2).map(|l| format!("{l}\n")).collect();
            o
        };
        t.compare(&format!("ipcaccept {opts:?} under ipclisten"), run(Suite::Original), run(Suite::Ours));
    }
}

/// `ipclisten LISTEN-OPTS PATH ipcaccept ACCEPT-OPTS HANDLER`: what
/// clients get and the log says.
fn server_logs_and_environment_070(t: &mut Tally, bins: &Bins) {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let allow = rules(d.path(), &format!("{uid}.{gid}:allow,A=\"rule\"\n:deny\n"));
    let denying = TempDir::new();
    let deny = rules(denying.path(), &format!("{uid}:deny\n:allow\n"));
    let corrupt = d.join("corrupt.cdb");
    std::fs::write(&corrupt, b"garbage").unwrap();
    let env_handler: &[&str] = &["sh", "-c", "echo hello; env | grep -E '^(PROTO|IPC|A=)' | sort"];
    let (a, n, c) = (allow.to_str().unwrap(), deny.to_str().unwrap(), corrupt.to_str().unwrap());
    let m = d.join("none.cdb");
    let m = m.to_str().unwrap();
    let lock = d.join("lock");
    let l = lock.to_str().unwrap();
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, &'a [&'a str], usize);
    let cases: Vec<Case> = vec![
        ("plain -v", vec!["-v"], vec!["-v"], env_handler, 2),
        ("quiet", vec!["-q"], vec!["-q"], env_handler, 2),
        ("default verbosity", vec![], vec![], env_handler, 2),
        ("-B -l", vec!["-v"], vec!["-v", "-B", "banner\n", "-l", "name"], env_handler, 2),
        ("-P", vec!["-v"], vec!["-v", "-P"], env_handler, 2),
        ("-x allow", vec![], vec!["-v", "-x", a], env_handler, 2),
        ("-x deny", vec![], vec!["-v", "-x", n], env_handler, 2),
        ("-x missing", vec![], vec!["-v", "-x", m], env_handler, 2),
        ("-X -x missing", vec![], vec!["-v", "-X", "-x", m], env_handler, 2),
        ("-q -x missing", vec![], vec!["-q", "-x", m], env_handler, 2),
        ("-x corrupt", vec![], vec!["-v", "-x", c], env_handler, 1),
        ("exec failure", vec![], vec!["-v"], &["/nonexistent/prog"], 2),
        ("exit 3", vec![], vec!["-v"], &["sh", "-c", "exit 3"], 2),
        // One connection: the lines of two instances' connections may
        // come in either order, and so may the first instance's and
        // ipclisten's "status: 2/2" (which ipclisten -v shows above).
        ("-c 2, -f", vec!["-c", "2"], vec!["-v", "-f", l], env_handler, 1),
    ];
    for (name, listen, accept, handler, connections) in &cases {
        let chain = Chain::ipclisten(listen, accept);
        let run = |suite: Suite| serve(bins, suite, chain, handler, *connections, &[]);
        t.compare(&format!("ipclisten/ipcaccept {name}"), run(Suite::Original), run(Suite::Ours));
    }
}

#[test]
fn differential_against_the_original_070() {
    let Some(bins) = bins_from("UCSPI_IPC_ORIGINAL_070", &["ipclisten", "ipcaccept"]) else { return };
    let mut t = Tally::default();
    usage_and_option_errors_070(&mut t, &bins);
    server_logs_and_environment_070(&mut t, &bins);
    sanitised_log_lines(&mut t, &bins, Chain::ipclisten(&[], &["-v"]));
    bind_errors(&mut t, &bins, Chain::ipclisten(&[], &[]));
    privilege_drops(&mut t, &bins, |opts| Chain::ipclisten(opts, &[]));
    signals_from_launchers(&mut t, &bins, Chain::ipclisten(&[], &[]));
    t.report("compat_original 0.70");
}
