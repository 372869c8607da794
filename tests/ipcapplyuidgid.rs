//! ipcapplyuidgid, run for real: options, behaviour and messages.
use crate::common;
use common::*;
use std::process::{Command, Output};

const USAGE: &str = "ipcapplyuidgid: usage: ipcapplyuidgid [ -z ] [ -u uid ] [ -g gid ] [ -G gidlist ] [ -U ] \
[ -v verbosity ] [ -N name ] prog...\n";

/// ipcapplyuidgid with a clean environment, so that only the variables a
/// test sets are seen.
fn apply() -> Command {
    let mut c = cmd("ipcapplyuidgid");
    c.env_clear().env("PATH", "/usr/bin:/bin");
    c
}

/// The Uid, Gid and Groups lines of `/proc/self/status` as the exec'd
/// program sees them.
fn ids(c: &mut Command) -> (String, String, String) {
    let o = run(c.args(["cat", "/proc/self/status"]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let status = stdout(&o);
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

fn all(id: u32) -> String {
    format!("{id} {id} {id} {id}")
}

fn own_ids() -> (String, String, String) {
    ids(&mut Command::new("env"))
}

/// uid and primary gid of a user in /etc/passwd.
fn passwd_entry(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd.lines().find(|l| l.split(':').next() == Some(name)).unwrap();
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

fn fails(o: &Output, code: i32, err: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    assert_eq!(stderr(o), err);
    assert_eq!(stdout(o), "", "nothing may run");
}

#[test]
fn usage_errors() {
    for args in [&[][..], &["-z"][..], &["-u", "65534"][..]] {
        let o = run(apply().args(args), 10);
        fails(&o, 100, USAGE);
    }
    let id = "(a number from 0 to 4294967294)";
    let list = "(comma-separated gids, at most 1024)";
    let cases: [(&[&str], String); 12] = [
        (&["-x", "true"], "illegal option -- x".into()),
        (&["-u"], "option requires an argument -- u".into()),
        (&["-u", "x", "true"], format!("illegal value for option -u: x {id}")),
        (&["-u", "", "true"], format!("illegal value for option -u:  {id}")),
        (&["-u", "-1", "true"], format!("illegal value for option -u: -1 {id}")),
        (&["-u", "4294967295", "true"], format!("illegal value for option -u: 4294967295 {id}")),
        (&["-u", "4294967296", "true"], format!("illegal value for option -u: 4294967296 {id}")),
        (&["-g", "1x", "true"], format!("illegal value for option -g: 1x {id}")),
        (&["-G", "1,,2", "true"], format!("illegal value for option -G: 1,,2 {list}")),
        (&["-G", "1,", "true"], format!("illegal value for option -G: 1, {list}")),
        (&["-G", "1,x", "true"], format!("illegal value for option -G: 1,x {list}")),
        (&["-v", "x", "true"], "illegal value for option -v: x (a number from 0 to 255)".into()),
    ];
    for (args, msg) in cases {
        let o = run(apply().args(args), 10);
        fails(&o, 100, &format!("ipcapplyuidgid: {msg}\n{USAGE}"));
    }
    // A bad number never lets prog run, whatever the verbosity.
    let o = run(apply().args(["-v0", "-u", "x", "sh", "-c", "echo ran"]), 10);
    fails(&o, 100, &format!("ipcapplyuidgid: illegal value for option -u: x {id}\n{USAGE}"));
}

#[test]
fn name_and_verbosity_of_messages() {
    let o = run(apply().args(["-N", "ipcserver", "/nonexistent/prog"]), 10);
    fails(&o, 111, "ipcserver: fatal: unable to run /nonexistent/prog: no such file or directory\n");
    let o = run(apply().args(["-v0", "/nonexistent/prog"]), 10);
    fails(&o, 111, "");
}

#[test]
fn capital_u_needs_uid_and_gid() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("GID", "1")], "UID not set"),
        (&[("UID", "1")], "GID not set"),
        (&[("UID", "x"), ("GID", "1")], "invalid UID"),
        (&[("UID", ""), ("GID", "1")], "invalid UID"),
        (&[("UID", "1"), ("GID", "-1")], "invalid GID"),
        (&[("UID", "1"), ("GID", "1"), ("GIDLIST", "1,,2")], "invalid GIDLIST"),
    ];
    for (vars, msg) in cases {
        let o = run(apply().envs(vars.iter().copied()).args(["-U", "sh", "-c", "echo ran"]), 10);
        fails(&o, 100, &format!("ipcapplyuidgid: fatal: {msg}\n"));
    }
}

#[test]
fn z_removes_uid_gid_gidlist_only() {
    let o = run(
        apply()
            .env("UID", "0")
            .env("GID", "0")
            .env("GIDLIST", "")
            .env("KEEP", "yes")
            .env("UIDX", "1")
            .args(["-z", "env"]),
        10,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut vars = env_lines(&o.stdout);
    vars.sort();
    let expect: Vec<(String, String)> = [("KEEP", "yes"), ("PATH", "/usr/bin:/bin"), ("UIDX", "1")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(vars, expect);
    // Without -z they are passed on unchanged.
    let o = run(apply().env("UID", "0").env("GID", "0").env("GIDLIST", "7").args(["-U", "env"]), 10);
    assert_eq!(env_value(&o.stdout, "UID").as_deref(), Some("0"));
    assert_eq!(env_value(&o.stdout, "GID").as_deref(), Some("0"));
    assert_eq!(env_value(&o.stdout, "GIDLIST").as_deref(), Some("7"));
}

#[test]
fn exec_failure() {
    let o = run(apply().arg("/nonexistent/prog"), 10);
    fails(&o, 111, "ipcapplyuidgid: fatal: unable to run /nonexistent/prog: no such file or directory\n");
}

#[test]
fn no_option_and_zero_ids_change_nothing() {
    if !need_root() {
        return;
    }
    let own = own_ids();
    assert_eq!(ids(&mut apply()), own);
    assert_eq!(ids(apply().args(["-u", "0", "-g", "0"])), own);
}

#[test]
fn uid_and_gid_and_the_gid_becomes_the_only_group() {
    if !need_root() {
        return;
    }
    assert_eq!(ids(apply().args(["-u", "65534", "-g", "65533"])), (all(65534), all(65533), "65533".into()));
    // -u alone: the user's primary gid from /etc/passwd, and only that group.
    let (uid, gid) = passwd_entry("nobody");
    assert_eq!(ids(apply().args(["-u", &uid.to_string()])), (all(uid), all(gid), gid.to_string()));
    // A uid without an entry is refused rather than left with root's gid.
    let o = run(apply().args(["-u", "3999999999", "sh", "-c", "echo ran"]), 10);
    fails(&o, 100, "ipcapplyuidgid: fatal: uid 3999999999 has no entry in /etc/passwd: give a gid\n");
    // -g alone: uid unchanged, groups = that gid.
    let (uid, _, _) = own_ids();
    assert_eq!(ids(apply().args(["-g", "1001"])), (uid, all(1001), "1001".into()));
    // A later option overrides an earlier one.
    assert_eq!(ids(apply().args(["-u1", "-g2", "-u", "3", "-g", "4"])), (all(3), all(4), "4".into()));
}

/// `-g 0` leaves the gid as it is: when the uid changes, the only group
/// is that gid, never root's group 0.
#[test]
fn a_gid_left_unchanged_is_the_only_group_when_the_uid_changes() {
    if !need_root() {
        return;
    }
    let inner = bin("ipcapplyuidgid");
    let inner = inner.to_str().unwrap();
    assert_eq!(ids(apply().args(["-g", "5", inner, "-u", "1", "-g", "0"])), (all(1), all(5), "5".into()));
    assert_eq!(ids(apply().args(["-g", "5", inner, "-u", "1", "-g", "0", "-G", "9"])), (all(1), all(5), "9".into()));
}

#[test]
fn quiet_applies_to_environment_errors_given_before_it() {
    let o = run(apply().args(["-U", "-v0", "sh", "-c", "echo ran"]), 10);
    fails(&o, 100, "");
}

#[test]
fn explicit_group_list() {
    if !need_root() {
        return;
    }
    assert_eq!(ids(apply().args(["-u", "10", "-g", "20", "-G", "5,6,7"])), (all(10), all(20), "5 6 7".into()));
    assert_eq!(ids(apply().args(["-u", "10", "-g", "20", "-G", ""])), (all(10), all(20), "".into()));
    let (uid, gid, _) = own_ids();
    assert_eq!(ids(apply().args(["-G", "8,9"])), (uid, gid, "8 9".into()));
}

#[test]
fn ids_from_the_environment() {
    if !need_root() {
        return;
    }
    let env = |c: &mut Command, list: Option<&str>| {
        c.env("UID", "101").env("GID", "102");
        if let Some(l) = list {
            c.env("GIDLIST", l);
        }
    };
    let mut c = apply();
    env(&mut c, Some("103,104"));
    assert_eq!(ids(c.arg("-U")), (all(101), all(102), "103 104".into()));
    // No GIDLIST: the gid is the only group.
    let mut c = apply();
    env(&mut c, None);
    assert_eq!(ids(c.arg("-U")), (all(101), all(102), "102".into()));
    // Empty GIDLIST: no supplementary groups.
    let mut c = apply();
    env(&mut c, Some(""));
    assert_eq!(ids(c.arg("-U")), (all(101), all(102), "".into()));
    // Later options override -U; -U overrides earlier ones.
    let mut c = apply();
    env(&mut c, Some("103"));
    assert_eq!(ids(c.args(["-U", "-u", "7", "-G", "8"])), (all(7), all(102), "8".into()));
    let mut c = apply();
    env(&mut c, Some("103"));
    assert_eq!(ids(c.args(["-u", "7", "-g", "9", "-U"])), (all(101), all(102), "103".into()));
    // -z with -U: used, then removed.
    let mut c = apply();
    env(&mut c, Some("103"));
    let o = run(c.args(["-z", "-U", "sh", "-c", "id -u; id -g; env"]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("101\n102\n"), "{out}");
    for name in ["UID", "GID", "GIDLIST"] {
        assert_eq!(env_value(&o.stdout, name), None, "{name} must be removed");
    }
    assert_eq!(env_value(&o.stdout, "PATH").as_deref(), Some("/usr/bin:/bin"));
}

#[test]
fn a_failing_step_is_fatal_and_nothing_runs() {
    if !need_root() {
        return;
    }
    let inner = bin("ipcapplyuidgid");
    let inner = inner.to_str().unwrap();
    // Groups come first: without privilege, that is the step that fails,
    // unless they are those the process has (-g 0 keeps its gid, 65534,
    // its only group), and then the next step fails.
    let cases: [(&[&str], &str); 4] = [
        (&["-G", "1"], "set supplementary groups"),
        (&["-g", "1"], "set supplementary groups"),
        (&["-u", "1"], "set supplementary groups"),
        (&["-u", "1", "-g", "0"], "set uid"),
    ];
    for (args, what) in cases {
        let o = run(apply().args(["-u", "65534", inner]).args(args).args(["sh", "-c", "echo ran"]), 10);
        fails(&o, 111, &format!("ipcapplyuidgid: fatal: unable to {what}: operation not permitted\n"));
    }
    // A list other than the one it has cannot be set without privilege
    // either, even an empty one (it has group 5 besides its gid).
    let o = run(apply().args(["-u", "65534", "-G", "5,65534", inner, "-G", "", "sh", "-c", "echo ran"]), 10);
    fails(&o, 111, "ipcapplyuidgid: fatal: unable to set supplementary groups: operation not permitted\n");
}

/// `program args...` run by nobody (uid and gid 65534) with the
/// supplementary groups `groups` (comma-separated; empty: none), through
/// setpriv, in a clean environment plus `vars`.
fn as_nobody(groups: &str, vars: &[(&str, &str)], program: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.env_clear().env("PATH", "/usr/bin:/bin").envs(vars.iter().copied());
    c.args(["--reuid=65534", "--regid=65534"]);
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        c.arg(format!("--groups={groups}"));
    }
    c.arg(program).args(args);
    c
}

/// Run by a user with its own ids, as a user's own service tree runs it
/// (`s6-envuidgid me ipcapplyuidgid -U ...`), it changes nothing and runs
/// prog, as s6-applyuidgid does: no call that needs root is made for a
/// change that is no change. A real change still fails.
#[test]
fn an_unprivileged_user_may_name_its_own_ids() {
    if !need_root() || !have("setpriv") {
        return;
    }
    let me = bin("ipcapplyuidgid");
    let nobody = (all(65534), all(65534));
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let own: [Case; 5] = [
        ("", &["-u", "65534", "-g", "65534"], &[]),
        ("5,65534", &["-u", "65534", "-g", "65534"], &[]),
        ("5", &["-u", "65534"], &[]),
        // s6-envuidgid's variables for nobody, who is in no other group.
        ("", &["-U"], &[("UID", "65534"), ("GID", "65534"), ("GIDLIST", "")]),
        ("5", &["-U"], &[("UID", "65534"), ("GID", "65534"), ("GIDLIST", "5")]),
    ];
    for (groups, args, vars) in own {
        let (uid, gid, kept) = ids(&mut as_nobody(groups, vars, &me, args));
        assert_eq!((uid, gid), nobody.clone(), "{groups} {args:?} {vars:?}");
        assert_eq!(kept, groups.replace(',', " "), "{groups} {args:?} {vars:?}: the groups stay");
    }
    // What s6-applyuidgid does with the same command lines (-U aside:
    // s6 2.11 sets its list whatever it holds).
    if have("s6-applyuidgid") {
        for groups in ["", "5,65534"] {
            let s6 = std::path::Path::new("s6-applyuidgid");
            let (uid, gid, kept) = ids(&mut as_nobody(groups, &[], s6, &["-u", "65534", "-g", "65534"]));
            assert_eq!((uid, gid, kept), (all(65534), all(65534), groups.replace(',', " ")), "s6 with {groups}");
        }
    }
    // Another uid, another gid, another list: root's business.
    let change: [(&[&str], &str); 3] = [
        (&["-u", "1", "-g", "65534"], "set uid"),
        (&["-u", "65534", "-g", "1"], "set gid"),
        (&["-u", "65534", "-g", "65534", "-G", "5"], "set supplementary groups"),
    ];
    for (args, what) in change {
        let o = run(as_nobody("", &[], &me, args).args(["sh", "-c", "echo ran"]), 10);
        fails(&o, 111, &format!("ipcapplyuidgid: fatal: unable to {what}: operation not permitted\n"));
    }
}
