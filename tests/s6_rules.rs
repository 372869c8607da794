//! ipcserver-access with s6's rules formats. A table of rule sets and
//! clients goes through Debian's s6-ipcserver-access (`-i dir`, `-x
//! s6.cdb`) and ours (`-i dir`, `-s s6.cdb`), with `-e` and `-E`: each
//! must make the same decision and the same environment. Then what only
//! ours does: log lines and banner with these formats, and the error cases.
use crate::common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

/// A rule set: files under the rules directory and their contents.
type Tree = &'static [(&'static str, &'static [u8])];

/// Every kind of rule, and rules for ids that the table's clients have.
const FULL: Tree = &[
    ("uid/self/allow", b""),
    ("uid/self/env/WHO", b"uid self\n"),
    ("uid/1000/allow", b""),
    ("uid/1000/env/WHO", b"uid 1000\n"),
    // Empty: unsets. A lone newline: set, empty.
    ("uid/1000/env/HOME", b""),
    ("uid/1000/env/EMPTY", b"\n"),
    // Kept without -E, removed with it; the server's own value wins.
    ("uid/1000/env/PROTO", b"from the rule\n"),
    ("uid/1000/env/IPCLOCALPATH", b"from the rule\n"),
    ("uid/1001/deny", b""),
    ("uid/1001/env/WHO", b"denied anyway\n"),
    // Both: allow wins.
    ("uid/1002/allow", b""),
    ("uid/1002/deny", b""),
    ("uid/1003/allow", b""),
    ("uid/1003/exec", b"env -0 WHERE=exec\n"),
    ("uid/1003/env/WHO", b"uid 1003\n"),
    // Neither allow nor deny: no rule.
    ("uid/1004/env/WHO", b"not a rule\n"),
    ("uid/1004/exec", b"env -0 WHERE=exec\n"),
    ("gid/self/allow", b""),
    ("gid/self/env/WHO", b"gid self\n"),
    ("gid/100/deny", b""),
    ("gid/101/allow", b""),
    ("gid/101/env/WHO", b"gid 101\n"),
    ("uid/default/allow", b""),
    ("uid/default/env/WHO", b"default\n"),
];

/// No default: whoever no rule names is denied.
const NO_DEFAULT: Tree = &[("uid/1000/allow", b""), ("gid/101/allow", b""), ("gid/self/deny", b"")];

/// A rules directory with no rule at all.
const EMPTY: Tree = &[("uid/.keep", b""), ("gid/.keep", b"")];

/// s6-envdir's reading of files.
const ENVDIR: Tree = &[
    ("uid/default/allow", b""),
    ("uid/default/env/TRAIL", b"a b  \t\r\nsecond line\n"),
    ("uid/default/env/LEAD", b"  lead"),
    ("uid/default/env/VT", b"a\x0b\x0c\n"),
    ("uid/default/env/NULS", b"a\0b\0\n"),
    ("uid/default/env/BLANK", b" \n"),
    ("uid/default/env/NEWLINE", b"\nnext"),
    ("uid/default/env/HOME", b""),
    ("uid/default/env/KEEP", b"replaced\n"),
    ("uid/default/env/.hidden", b"dot\n"),
    ("uid/default/env/A=B", b"equals\n"),
];

/// A value longer than s6-envdir reads (4095 bytes). s6's compiler
/// writes `B=` and those bytes (4098 with the NUL: it refuses over 4100),
/// but s6's cdb reader refuses a rule's environment over 4096 bytes: for
/// this set, s6 -x is expected to fail and is left out.
const LONG: Tree = &[("uid/default/allow", b""), ("uid/default/env/B", &[b'x'; 5000])];

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The program (or the exec script) ran: its environment, sorted.
    Allowed(Vec<String>),
    Denied,
    /// Anything else: exit code and stderr.
    Failed(Option<i32>, String),
}

fn outcome(o: &Output, deny_code: i32) -> Outcome {
    match o.status.code() {
        Some(0) => {
            let mut vars: Vec<String> = o
                .stdout
                .split(|&b| b == 0)
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            vars.sort();
            Outcome::Allowed(vars)
        }
        Some(c) if c == deny_code && o.stdout.is_empty() => Outcome::Denied,
        c => Outcome::Failed(c, stderr(o)),
    }
}

/// s6 runs the execlineb its build names (/usr/lib/execline/bin on
/// Debian), ours the one PATH finds; Debian's /usr/bin/execlineb is a
/// wrapper that puts /usr/lib/execline/bin first in PATH. That prefix
/// apart, an exec rule's outcome must be the same.
fn without_execline_wrapper(o: Outcome) -> Outcome {
    match o {
        Outcome::Allowed(vars) if vars.iter().any(|v| v == "WHERE=exec") => {
            Outcome::Allowed(vars.into_iter().map(|v| v.replacen("PATH=/usr/lib/execline/bin:", "PATH=", 1)).collect())
        }
        o => o,
    }
}

/// s6-accessrules-cdb-from-fs DIR into CDB.
fn s6_compile(dir: &Path, cdb: &Path) {
    let o = run(Command::new("s6-accessrules-cdb-from-fs").arg(cdb).arg(dir), 10);
    assert_eq!(o.status.code(), Some(0), "s6-accessrules-cdb-from-fs: {}", stderr(&o));
}

/// `program flag -l loc rules-option path env -0 WHERE=prog`, for client
/// (euid, egid), in an environment with HOME and KEEP besides the
/// server's variables.
fn access(program: Command, flag: &str, option: &str, rules: &Path, (euid, egid): (u32, u32)) -> Output {
    let mut c = program;
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/home/server")
        .env("KEEP", "kept")
        .env("PROTO", "IPC")
        .env("IPCREMOTEEUID", euid.to_string())
        .env("IPCREMOTEEGID", egid.to_string())
        .args([flag, "-l", "loc", option])
        .arg(rules)
        .args(["env", "-0", "WHERE=prog"]);
    run(&mut c, 10)
}

#[test]
fn same_decisions_and_environments_as_s6() {
    if !have("s6-ipcserver-access") || !have("s6-accessrules-cdb-from-fs") || !have("execlineb") {
        return;
    }
    let own = own_ids();
    let clients = [
        own,
        (own.0, 101),
        (1000, own.1),
        (1000, 100),
        (1001, 101),
        (1002, 5),
        (1003, 5),
        (1004, 5),
        (4000, 100),
        (4000, 101),
        (4000, own.1),
        (4000, 5),
    ];
    let sets = [("FULL", FULL), ("NO_DEFAULT", NO_DEFAULT), ("EMPTY", EMPTY), ("ENVDIR", ENVDIR), ("LONG", LONG)];
    let d = TempDir::new();
    let mut cases = 0;
    let mut differences = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, tree) in sets {
        let dir = d.join(name);
        let cdb = d.join(&format!("{name}.cdb"));
        write_tree(&dir, tree);
        s6_compile(&dir, &cdb);
        for ids in clients {
            for flag in ["-e", "-E"] {
                let reference = outcome(&access(Command::new("s6-ipcserver-access"), flag, "-i", &dir, ids), 1);
                assert!(!matches!(reference, Outcome::Failed(..)), "{name} {ids:?} {flag}: s6 -i: {reference:?}");
                let s6_cdb = outcome(&access(Command::new("s6-ipcserver-access"), flag, "-x", &cdb, ids), 1);
                let ours_dir = outcome(&access(cmd("ipcserver-access"), flag, "-i", &dir, ids), 100);
                let ours_cdb = outcome(&access(cmd("ipcserver-access"), flag, "-s", &cdb, ids), 100);
                let mut runs = vec![("ours -i", ours_dir), ("ours -s", ours_cdb)];
                if name == "LONG" {
                    assert!(matches!(s6_cdb, Outcome::Failed(Some(111), _)), "s6 reads a long rule now: {s6_cdb:?}");
                } else {
                    runs.push(("s6 -x", s6_cdb));
                }
                for (who, got) in runs {
                    let got = without_execline_wrapper(got);
                    cases += 1;
                    if got != reference {
                        differences.push(format!("{name} {ids:?} {flag}: {who}: {got:?}\n  s6 -i: {reference:?}"));
                    }
                }
                seen.insert(format!("{reference:?}"));
            }
        }
    }
    assert!(differences.is_empty(), "{} of {cases} differ:\n{}", differences.len(), differences.join("\n"));
    // The table reaches allows with and without environments, scripts and
    // denials (a table where everything failed alike would prove nothing).
    assert!(seen.contains("Denied"));
    for needle in
        ["WHERE=exec", "WHO=uid self", "WHO=gid self", "WHO=gid 101", "WHO=default", "EMPTY=", "NULS=a\\nb\\n"]
    {
        assert!(seen.iter().any(|s| s.contains(needle)), "no case shows {needle}");
    }
    eprintln!("s6_rules: {cases} runs of ours agree with s6-ipcserver-access -i");
}

/// Our ipcserver-access with these variables (and PATH, IPCLOCALPATH),
/// stdin empty.
fn ours(args: &[&str], rules: &[&Path], vars: &[(&str, &str)]) -> Output {
    let mut c = cmd("ipcserver-access");
    c.env_clear().env("PATH", "/usr/bin:/bin").env("IPCLOCALPATH", "/srv/s").args(args).args(rules);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.args(["sh", "-c", "echo ran; echo \"WHO=$WHO\""]);
    run(&mut c, 10)
}

const CLIENT: &[(&str, &str)] = &[("PROTO", "IPC"), ("IPCREMOTEEUID", "1000"), ("IPCREMOTEEGID", "100")];

/// Makes an s6 rules cdb holding `records` with tinycdb's `cdb -c`.
fn cdb_make(path: &Path, records: &[(&str, &[u8])]) {
    let mut input = Vec::new();
    for (k, v) in records {
        input.extend_from_slice(format!("+{},{}:{k}->", k.len(), v.len()).as_bytes());
        input.extend_from_slice(v);
        input.push(b'\n');
    }
    input.push(b'\n');
    let o = run_input(Command::new("cdb").arg("-c").arg(path), &input, 10);
    assert_eq!(o.status.code(), Some(0), "cdb -c: {}", stderr(&o));
}

#[test]
fn log_lines_banner_and_deny_with_s6_rules() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let dir = d.join("rules");
    write_tree(&dir, &[("uid/1000/deny", b""), ("gid/100/allow", b""), ("gid/100/env/WHO", b"group\n")]);
    let cdb = d.join("s6.cdb");
    cdb_make(&cdb, &[("uid/1000", b"D"), ("gid/100", b"A\0\x0aWHO=group\0\0\0")]);
    for (option, rules) in [("-i", &dir), ("-s", &cdb)] {
        let o = ours(&["-v2", "-B", "hello\n", "-l", "/srv/s", option], &[rules], CLIENT);
        assert_eq!(o.status.code(), Some(100), "{option}: {}", stderr(&o));
        assert_eq!(stdout(&o), "hello\n", "{option}: the banner goes out before the rules deny");
        let log = stderr(&o);
        assert!(log.starts_with("ipcserver-access: deny ") && log.ends_with(" /srv/s :1000,100\n"), "{option}: {log}");

        let client = [("PROTO", "IPC"), ("IPCREMOTEEUID", "1001"), ("IPCREMOTEEGID", "100")];
        let o = ours(&["-v2", "-N", "ipcserver", "-l", "/srv/s", option], &[rules], &client);
        assert_eq!(o.status.code(), Some(0), "{option}: {}", stderr(&o));
        assert_eq!(stdout(&o), "ran\nWHO=group\n");
        let log = stderr(&o);
        assert!(log.starts_with("ipcserver: ok ") && log.ends_with(" /srv/s :1001,100\n"), "{option}: {log}");

        // Silent at the default verbosity.
        let o = ours(&[option], &[rules], CLIENT);
        assert_eq!((o.status.code(), stderr(&o)), (Some(100), String::new()), "{option}");
    }
}

/// Runs ours on `rules` for CLIENT and returns its exit code and stderr.
fn failure(args: &[&str], rules: &Path) -> (Option<i32>, String) {
    let o = ours(args, &[rules], CLIENT);
    (o.status.code(), stderr(&o))
}

fn dropping(what: &str) -> String {
    format!("ipcserver-access: warning: dropping connection, unable to {what}\n")
}

#[test]
fn missing_rules_drop_the_connection_unless_x() {
    let d = TempDir::new();
    let gone = d.join("nowhere");
    for option in ["-i", "-s"] {
        let want = dropping(&format!("read {}: no such file or directory", gone.display()));
        assert_eq!(failure(&[option], &gone), (Some(111), want), "{option}");
        let o = ours(&["-X", option], &[&gone], CLIENT);
        assert_eq!((o.status.code(), stdout(&o)), (Some(0), "ran\nWHO=\n".into()), "{option} -X: {}", stderr(&o));
    }
    std::fs::write(d.join("file"), "").unwrap();
    let want = dropping(&format!("read {}: not a directory", d.join("file").display()));
    assert_eq!(failure(&["-i"], &d.join("file")), (Some(111), want));
    // The last of -x, -i and -s counts.
    write_tree(&d.join("rules"), &[("uid/default/allow", b"")]);
    let o = ours(&["-x", gone.to_str().unwrap(), "-i"], &[&d.join("rules")], CLIENT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn broken_rules_directories_are_reported() {
    let d = TempDir::new();
    let r = d.join("rules");
    write_tree(
        &r,
        &[
            ("uid/1000/allow", b""),
            ("uid/1000/env/SUB/file", b""),
            ("gid/100", b"a file where a rule directory should be"),
            ("uid/2000/allow", b""),
            ("uid/2000/exec", &[b'x'; 4097]),
            ("uid/2001/allow", b""),
            ("uid/2001/env/.keep", b""),
        ],
    );
    std::os::unix::fs::symlink("LOOP", r.join("uid/2001/env/LOOP")).unwrap();
    let at = |path: &str, reason: &str| dropping(&format!("read {}/{path}: {reason}", r.display()));
    assert_eq!(failure(&["-i"], &r), (Some(111), at("uid/1000/env/SUB", "is a directory")));
    let client = |uid: &'static str| [("PROTO", "IPC"), ("IPCREMOTEEUID", uid), ("IPCREMOTEEGID", "100")];
    let o = ours(&["-i"], &[&r], &client("1001"));
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), at("gid/100/allow", "not a directory")));
    let o = ours(&["-i"], &[&r], &client("2000"));
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), at("uid/2000/exec", "longer than 4096 bytes")));
    let o = ours(&["-i"], &[&r], &client("2001"));
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(111), at("uid/2001/env/LOOP", "too many levels of symbolic links"))
    );
}

#[test]
fn a_huge_environment_is_refused_not_a_crash() {
    let d = TempDir::new();
    let r = d.join("rules");
    write_tree(&r, &[("uid/default/allow", b"")]);
    std::fs::create_dir_all(r.join("uid/default/env")).unwrap();
    // 300 values of 4000 bytes: more than the rule buffer (1 MiB) holds.
    for i in 0..300 {
        std::fs::write(r.join(format!("uid/default/env/V{i}")), [b'v'; 4000]).unwrap();
    }
    let (code, err) = failure(&["-i"], &r);
    assert_eq!(code, Some(111), "{err}");
    let want = "ipcserver-access: warning: dropping connection, unable to set environment variable V";
    assert!(err.starts_with(want) && err.ends_with(": argument list too long\n"), "{err}");
}

#[test]
fn a_fifo_in_env_does_not_hang() {
    let d = TempDir::new();
    let r = d.join("rules");
    write_tree(&r, &[("uid/default/allow", b""), ("uid/default/env/WHO", b"x\n")]);
    let fifo = r.join("uid/default/env/FIFO");
    let o = run(Command::new("mkfifo").arg(&fifo), 10);
    assert!(o.status.success(), "mkfifo: {}", stderr(&o));
    // No writer: read as empty (unset). s6 would wait for one for ever.
    let o = ours(&["-i"], &[&r], CLIENT);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "ran\nWHO=x\n".into()), "{}", stderr(&o));
}

#[test]
fn corrupt_or_malformed_s6_cdb_files_are_reported() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let cdb = d.join("s6.cdb");
    std::fs::write(&cdb, b"not a cdb").unwrap();
    let want = dropping(&format!("read {}: corrupt cdb file", cdb.display()));
    assert_eq!(failure(&["-s"], &cdb), (Some(111), want));
    let malformed = dropping(&format!("read {}: malformed rule", cdb.display()));
    for value in [&b"Z"[..], b"", b"A\0\0\0", b"A\0\x04X=1\0\0\x01", b"A\0\x04X=1x\0\0"] {
        cdb_make(&cdb, &[("uid/1000", value), ("uid/default", b"A\0\0\0\0")]);
        assert_eq!(failure(&["-s"], &cdb), (Some(111), malformed.clone()), "{value:?}");
    }
    // A rule's environment over 4096 bytes, which s6's own reader refuses,
    // and a script, NUL-terminated for execlineb.
    let env = format!("WHO={}\0", "w".repeat(5000));
    let mut v = b"A".to_vec();
    v.extend_from_slice(&(env.len() as u16).to_be_bytes());
    v.extend_from_slice(env.as_bytes());
    v.extend_from_slice(b"\0\x04echo");
    cdb_make(&cdb, &[("uid/1000", &v)]);
    let o = ours(&["-s"], &[&cdb], CLIENT);
    if have("execlineb") {
        assert_eq!((o.status.code(), stdout(&o)), (Some(0), "\n".into()), "{}", stderr(&o));
    }
}

#[test]
fn unknown_ids_match_only_the_default() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let self_only = d.join("self");
    write_tree(&self_only, &[("uid/self/allow", b""), ("gid/self/allow", b""), ("uid/0/allow", b"")]);
    let with_default = d.join("default");
    write_tree(&with_default, &[("uid/self/deny", b""), ("uid/default/allow", b""), ("uid/default/env/WHO", b"d\n")]);
    let unknown = [("PROTO", "IPC")];
    // Under ipcserver -P the ids are unset: a self rule never matches a
    // client we know nothing of, the default rule does.
    let o = ours(&["-i"], &[&self_only], &unknown);
    assert_eq!(o.status.code(), Some(100), "{}", stderr(&o));
    let o = ours(&["-i"], &[&with_default], &unknown);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "ran\nWHO=d\n".into()), "{}", stderr(&o));
    // The log line shows the server's own ids, as with -x.
    let o = ours(&["-v2", "-l", "loc", "-i"], &[&with_default], &unknown);
    assert!(stderr(&o).ends_with(&format!(" loc :{uid},{gid}\n")), "{}", stderr(&o));
    // s6 refuses to run without them.
    if have("s6-ipcserver-access") {
        let o = run(
            Command::new("s6-ipcserver-access")
                .env_clear()
                .env("PROTO", "IPC")
                .arg("-i")
                .arg(&with_default)
                .arg("true"),
            10,
        );
        assert_eq!(o.status.code(), Some(100), "{}", stderr(&o));
    }
    // A set but unusable id is refused, as with -x.
    let bad = [("PROTO", "IPC"), ("IPCREMOTEEUID", "x1"), ("IPCREMOTEEGID", "1")];
    let o = ours(&["-i"], &[&with_default], &bad);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(100), "ipcserver-access: fatal: invalid IPCREMOTEEUID: x1\n".into())
    );
}

#[test]
fn an_exec_rule_needs_execlineb_in_path() {
    let d = TempDir::new();
    let r = d.join("rules");
    write_tree(&r, &[("uid/default/allow", b""), ("uid/default/exec", b"echo hi\n")]);
    let mut c = cmd("ipcserver-access");
    c.env_clear().env("PATH", d.path()).envs(CLIENT.iter().copied()).args(["-l", "loc", "-i"]).arg(&r).arg("true");
    let o = run(&mut c, 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), dropping("run execlineb: no such file or directory")));
}
