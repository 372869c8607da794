//! ipcrulescheck, run for real: options, behaviour and messages.
use crate::common;
use common::*;

use std::path::Path;
use std::process::Command;

/// Runs ipcrulescheck with only the given IPCREMOTE* variables set.
fn check(cdb: &Path, euid: Option<&str>, egid: Option<&str>) -> std::process::Output {
    let mut c = cmd("ipcrulescheck");
    c.arg(cdb).env_remove("IPCREMOTEEUID").env_remove("IPCREMOTEEGID");
    if let Some(u) = euid {
        c.env("IPCREMOTEEUID", u);
    }
    if let Some(g) = egid {
        c.env("IPCREMOTEEGID", g);
    }
    run(&mut c, 10)
}

fn says(cdb: &Path, euid: Option<&str>, egid: Option<&str>) -> String {
    let o = check(cdb, euid, egid);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    stdout(&o)
}

const EXAMPLE: &str = "1001.1010:allow,which=\"first\"\n\
                       1002:allow,which=\"second\"\n\
                       :allow,which=\"third\"\n\
                       .1010:allow,which=\"fourth\"\n";

#[test]
fn the_manual_example() {
    let d = TempDir::new();
    let cdb = rules(d.path(), EXAMPLE);
    assert_eq!(says(&cdb, Some("5"), Some("10")), "rule :\nset environment variable which=third\nallow connection\n");
    assert_eq!(
        says(&cdb, Some("1002"), Some("10")),
        "rule 1002:\nset environment variable which=second\nallow connection\n"
    );
    assert_eq!(
        says(&cdb, Some("5"), Some("1010")),
        "rule .1010:\nset environment variable which=fourth\nallow connection\n"
    );
    assert_eq!(
        says(&cdb, Some("1001"), Some("1010")),
        "rule 1001.1010:\nset environment variable which=first\nallow connection\n"
    );
}

#[test]
fn unset_ids_skip_their_keys() {
    let d = TempDir::new();
    let cdb = rules(d.path(), EXAMPLE);
    // Without the gid, 1001.1010 and .1010 cannot match.
    assert_eq!(says(&cdb, Some("1001"), None), "rule :\nset environment variable which=third\nallow connection\n");
    assert_eq!(says(&cdb, Some("1002"), None), "rule 1002:\nset environment variable which=second\nallow connection\n");
    assert_eq!(
        says(&cdb, None, Some("1010")),
        "rule .1010:\nset environment variable which=fourth\nallow connection\n"
    );
    assert_eq!(says(&cdb, None, None), "rule :\nset environment variable which=third\nallow connection\n");
}

#[test]
fn deny_default_and_several_assignments() {
    let d = TempDir::new();
    let cdb = rules(d.path(), "7:deny\n8:allow,A=\"1\",B=/two words/,C=''\n9:allow\n10-12:deny\n");
    assert_eq!(says(&cdb, Some("7"), Some("7")), "rule 7:\ndeny connection\n");
    assert_eq!(
        says(&cdb, Some("8"), Some("0")),
        "rule 8:\nset environment variable A=1\nset environment variable B=two words\nset environment variable C=\nallow connection\n"
    );
    assert_eq!(says(&cdb, Some("9"), None), "rule 9:\nallow connection\n");
    assert_eq!(says(&cdb, Some("11"), None), "rule 11:\ndeny connection\n");
    assert_eq!(says(&cdb, Some("13"), Some("1")), "default:\nallow connection\n");
    assert_eq!(says(&cdb, None, None), "default:\nallow connection\n");
}

#[test]
fn usage_and_bad_ids() {
    let usage = "ipcrulescheck: usage: ipcrulescheck [ -S ] rules.cdb\n";
    for (args, err) in [
        (vec![], usage.to_string()),
        (vec!["a", "b"], usage.to_string()),
        (vec!["-v", "a"], format!("ipcrulescheck: illegal option -- v\n{usage}")),
    ] {
        let o = run(cmd("ipcrulescheck").args(&args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), err);
        assert_eq!(stdout(&o), "");
    }
    let d = TempDir::new();
    let cdb = rules(d.path(), ":deny\n");
    let o = check(&cdb, Some("12x"), Some("1"));
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "ipcrulescheck: fatal: invalid IPCREMOTEEUID: 12x\n");
    let o = check(&cdb, Some("1"), Some(""));
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "ipcrulescheck: fatal: invalid IPCREMOTEEGID: \n");
    let o = check(&cdb, Some("4294967296"), None);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "ipcrulescheck: fatal: invalid IPCREMOTEEUID: 4294967296\n");
    assert_eq!(stdout(&o), "");
}

#[test]
fn unreadable_and_corrupt_files() {
    let d = TempDir::new();
    let missing = d.join("none.cdb");
    let o = check(&missing, Some("1"), Some("1"));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!("ipcrulescheck: fatal: unable to read {}: no such file or directory\n", missing.display())
    );
    assert_eq!(stdout(&o), "");

    let o = check(d.path(), Some("1"), Some("1"));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcrulescheck: fatal: unable to read {}: is a directory\n", d.path().display()));

    let cdb = rules(d.path(), "1:allow,A=\"x\"\n");
    let whole = std::fs::read(&cdb).unwrap();
    let cut = d.join("cut.cdb");
    for len in [0, 100, 2047, 2048, 2055, whole.len() - 1] {
        std::fs::write(&cut, &whole[..len]).unwrap();
        let o = check(&cut, Some("1"), Some("1"));
        assert_eq!(o.status.code(), Some(111), "cut at {len}");
        assert_eq!(stderr(&o), format!("ipcrulescheck: fatal: unable to read {}: corrupt cdb file\n", cut.display()));
        assert_eq!(stdout(&o), "");
    }
}

#[test]
fn files_from_tinycdb_are_honoured() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let cdb = d.join("made.cdb");
    let input = "+4,11:1000->+X=tinycdb\0\n+2,2:.5->D\0\n+0,12:->+WHO=nobody\0\n+3,3:bad->?x\0\n\n";
    let mut c = Command::new("cdb");
    c.arg("-c").arg(&cdb);
    let o = run_input(&mut c, input.as_bytes(), 10);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        says(&cdb, Some("1000"), Some("5")),
        "rule 1000:\nset environment variable X=tinycdb\nallow connection\n"
    );
    assert_eq!(says(&cdb, Some("1"), Some("5")), "rule .5:\ndeny connection\n");
    assert_eq!(says(&cdb, Some("1"), Some("1")), "rule :\nset environment variable WHO=nobody\nallow connection\n");
    // A value no rules compiler writes is an error, not a guess.
    let o = Command::new(bin("ipcrulescheck")).arg(&cdb).env("IPCREMOTEEUID", "bad").output().unwrap();
    assert_eq!(o.status.code(), Some(100));
    let input = "+1,3:7->?x\0\n\n";
    let mut c = Command::new("cdb");
    c.arg("-c").arg(&cdb);
    assert!(run_input(&mut c, input.as_bytes(), 10).status.success());
    let o = check(&cdb, Some("7"), None);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcrulescheck: fatal: unable to read {}: malformed rule\n", cdb.display()));
}

/// A nameless assignment, which the original's compiler writes for
/// `,="x"`, is shown as the original shows it.
#[test]
fn nameless_assignments_are_shown() {
    let d = TempDir::new();
    let cdb = rules(d.path(), ".5:allow,=\"emptyname\",B=\"x\"\n");
    assert_eq!(
        says(&cdb, None, Some("5")),
        "rule .5:\nset environment variable =emptyname\nset environment variable B=x\nallow connection\n"
    );
}
