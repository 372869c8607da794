//! ipcserver-access, run for real: options, behaviour and messages.
use crate::common;
use common::*;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const USAGE: &str = "ipcserver-access: usage: ipcserver-access [ -v verbosity ] [ -E | -e ] [ -S ] [ -l localname ] \
                     [ -B banner ] [ -x rules.cdb | -i rulesdir | -s s6rules.cdb ] [ -X ] [ -N name ] prog...\n";

/// ipcserver-access with exactly `vars` (and PATH) in its environment.
fn access(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut c = cmd("ipcserver-access");
    c.args(args).env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// The client's variables as a server would set them.
const CLIENT: &[(&str, &str)] = &[
    ("PROTO", "IPC"),
    ("IPCLOCALPATH", "/srv/sock"),
    ("IPCREMOTEPATH", ""),
    ("IPCREMOTEEUID", "1001"),
    ("IPCREMOTEEGID", "1010"),
    ("IPCCONNNUM", "0"),
];

fn env_set(out: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(out).lines().map(str::to_string).collect()
}

fn set(lines: &[&str]) -> BTreeSet<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

fn rules_dir(rules: &str) -> (TempDir, PathBuf) {
    let d = TempDir::new();
    let cdb = common::rules(d.path(), rules);
    (d, cdb)
}

const EXAMPLE: &str = "1001.1010:allow,which=\"first\",SECOND=/2/\n\
                       1002:deny\n\
                       :allow,which=\"third\"\n\
                       .1010:allow,which=\"fourth\"\n";

/// Runs `c` (stdin empty, output captured) and returns its pid with what
/// it printed: log lines name the pid.
fn spawn_wait(c: &mut Command) -> (u32, std::process::Output) {
    let child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    (child.id(), wait_output(child, 10))
}

/// Run outside a server (no PROTO), it says what s6-ipcserver-access
/// says, under its own name, and runs nothing.
#[test]
fn no_server_around_is_refused_in_s6s_words() {
    let expected = (Some(100), String::new(), "ipcserver-access: fatal: PROTO not set\n".to_string());
    let outcome = |c: &mut Command| {
        let o = run(c, 10);
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let vars: Vec<(&str, &str)> = CLIENT.iter().copied().filter(|(k, _)| *k != "PROTO").collect();
    assert_eq!(outcome(&mut access(&["echo", "ran"], &vars)), expected);
    assert_eq!(outcome(&mut access(&["-B", "banner", "-x", "/nonexistent", "echo", "ran"], &[])), expected);
    if have("s6-ipcserver-access") {
        let mut s6 = Command::new("s6-ipcserver-access");
        s6.env_clear().args(["echo", "ran"]);
        let (code, out, err) = outcome(&mut s6);
        assert_eq!((code, out, err.replace("s6-ipcserver-access", "ipcserver-access")), expected);
    }
}

#[test]
fn usage_errors() {
    let cases: [(&[&str], &str); 6] = [
        (&[], ""),
        (&["-x"], "ipcserver-access: option requires an argument -- x\n"),
        (&["-v", "x", "env"], "ipcserver-access: illegal value for option -v: x (a number from 0 to 255)\n"),
        (&["-v"], "ipcserver-access: option requires an argument -- v\n"),
        (&["-z", "env"], "ipcserver-access: illegal option -- z\n"),
        (&["-E", "-X"], ""),
    ];
    for (args, msg) in cases {
        let o = run(&mut access(args, CLIENT), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), format!("{msg}{USAGE}"), "{args:?}");
    }
}

#[test]
fn allow_sets_the_rule_variables_exactly() {
    let (_d, cdb) = rules_dir(EXAMPLE);
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert_eq!(
        env_set(&o.stdout),
        set(&[
            "PATH=/usr/bin:/bin",
            "PROTO=IPC",
            "IPCLOCALPATH=/srv/sock",
            "IPCREMOTEPATH=",
            "IPCREMOTEEUID=1001",
            "IPCREMOTEEGID=1010",
            "IPCCONNNUM=0",
            "which=first",
            "SECOND=2"
        ])
    );
    // Lookup order: .G before the empty key.
    let mut vars = CLIENT.to_vec();
    vars[3] = ("IPCREMOTEEUID", "5");
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], &vars), 10);
    assert_eq!(env_value(&o.stdout, "which").as_deref(), Some("fourth"));
    assert_eq!(env_value(&o.stdout, "SECOND"), None);
    vars[4] = ("IPCREMOTEEGID", "10");
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], &vars), 10);
    assert_eq!(env_value(&o.stdout, "which").as_deref(), Some("third"));
}

#[test]
fn a_rule_replaces_an_inherited_variable() {
    let (_d, cdb) = rules_dir(":allow,HOME=\"/rule\",E=''\n");
    let mut vars = CLIENT.to_vec();
    vars.push(("HOME", "/inherited"));
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], &vars), 10);
    let out = stdout(&o);
    assert_eq!(out.lines().filter(|l| l.starts_with("HOME=")).collect::<Vec<_>>(), vec!["HOME=/rule"]);
    assert_eq!(env_value(&o.stdout, "E").as_deref(), Some(""));
}

#[test]
fn deny_exits_100_without_running_prog() {
    let (d, cdb) = rules_dir(EXAMPLE);
    let marker = d.join("ran");
    let mut vars = CLIENT.to_vec();
    vars[3] = ("IPCREMOTEEUID", "1002");
    let script = format!("touch {}; echo ran", marker.display());
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "sh", "-c", &script], &vars), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
    assert!(!marker.exists());
    // The same client is let through when its rule allows.
    vars[3] = ("IPCREMOTEEUID", "1001");
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "sh", "-c", &script], &vars), 10);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "ran\n");
    assert!(marker.exists());
}

#[test]
fn unset_ids_use_the_servers_own() {
    let (euid, egid) = own_ids();
    let (_d, cdb) = rules_dir(&format!("{euid}.{egid}:allow,WHO=\"me\"\n:deny\n"));
    let vars = [("PROTO", "IPC"), ("IPCLOCALPATH", "/s")];
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], &vars), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env_value(&o.stdout, "WHO").as_deref(), Some("me"));
    assert_eq!(env_value(&o.stdout, "IPCREMOTEEUID"), None, "ids are looked up, not set");
}

#[test]
fn non_numeric_ids_are_refused() {
    let (_d, cdb) = rules_dir(":allow\n");
    let mut vars = CLIENT.to_vec();
    vars[4] = ("IPCREMOTEEGID", "10 10");
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], &vars), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "ipcserver-access: fatal: invalid IPCREMOTEEGID: 10?10\n");
    assert_eq!(stdout(&o), "");
}

/// A FIFO at the rules path drops the connection at once (its open would
/// wait for a writer for ever), with or without -X.
#[test]
fn rules_that_are_not_a_regular_file_drop_the_connection_at_once() {
    let d = TempDir::new();
    let fifo = d.join("fifo.cdb");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let f = fifo.to_str().unwrap();
    for args in [&["-x", f, "/usr/bin/env"][..], &["-X", "-x", f, "/usr/bin/env"]] {
        let o = run(&mut access(args, CLIENT), 10);
        assert_eq!(o.status.code(), Some(111), "{args:?}");
        let want = format!("ipcserver-access: warning: dropping connection, unable to read {f}: not a regular file\n");
        assert_eq!((stdout(&o), stderr(&o)), (String::new(), want), "{args:?}");
    }
}

#[test]
fn missing_rules_file_with_and_without_big_x() {
    let d = TempDir::new();
    let missing = d.join("none.cdb");
    let m = missing.to_str().unwrap();
    let o = run(&mut access(&["-x", m, "/usr/bin/env"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        format!("ipcserver-access: warning: dropping connection, unable to read {m}: no such file or directory\n")
    );
    for args in [&["-X", "-x", m, "/usr/bin/env"][..], &["-Xx", m, "/usr/bin/env"], &["-x", m, "-X", "/usr/bin/env"]] {
        let o = run(&mut access(args, CLIENT), 10);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(env_value(&o.stdout, "IPCREMOTEEUID").as_deref(), Some("1001"));
    }
    // -X only excuses a missing file, not an unreadable one.
    let o = run(&mut access(&["-X", "-x", d.path().to_str().unwrap(), "/usr/bin/env"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!(
            "ipcserver-access: warning: dropping connection, unable to read {}: is a directory\n",
            d.path().display()
        )
    );
    // -v 0: no message, same exit.
    let o = run(&mut access(&["-v0", "-x", m, "/usr/bin/env"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "");
}

#[test]
fn corrupt_rules_drop_the_connection() {
    let (d, cdb) = rules_dir(EXAMPLE);
    let whole = std::fs::read(&cdb).unwrap();
    let bad = d.join("bad.cdb");
    let marker = d.join("ran");
    let script = format!("touch {}", marker.display());
    for len in [0, 1000, 2047, 2048, 2048 + 10] {
        std::fs::write(&bad, &whole[..len]).unwrap();
        let o = run(&mut access(&["-X", "-x", bad.to_str().unwrap(), "sh", "-c", &script], CLIENT), 10);
        assert_eq!(o.status.code(), Some(111), "cut at {len}");
        assert_eq!(
            stderr(&o),
            format!(
                "ipcserver-access: warning: dropping connection, unable to read {}: corrupt cdb file\n",
                bad.display()
            )
        );
        assert!(!marker.exists());
    }
    // A value that no compiler writes.
    if have_for("malformed value", "cdb") {
        let mut c = Command::new("cdb");
        c.arg("-c").arg(&bad);
        assert!(run_input(&mut c, b"+0,5:->+A=1\0\n+4,3:1001->+A\0\n\n", 10).status.success());
        let o = run(&mut access(&["-x", bad.to_str().unwrap(), "sh", "-c", &script], CLIENT), 10);
        assert_eq!(o.status.code(), Some(111));
        assert_eq!(
            stderr(&o),
            format!(
                "ipcserver-access: warning: dropping connection, unable to read {}: malformed rule\n",
                bad.display()
            )
        );
        assert!(!marker.exists());
    }
}

#[test]
fn rules_made_by_tinycdb_are_honoured() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let cdb = d.join("made.cdb");
    // 1001.1010: an exec override (ignored here) and two variables;
    // 1002: deny.
    let input = "+9,24:1001.1010->=/bin/false\0+A=1\0+B=x y\0\n+4,2:1002->D\0\n\n";
    let mut c = Command::new("cdb");
    c.arg("-c").arg(&cdb);
    assert!(run_input(&mut c, input.as_bytes(), 10).status.success());
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env_value(&o.stdout, "A").as_deref(), Some("1"));
    assert_eq!(env_value(&o.stdout, "B").as_deref(), Some("x y"));
    let mut vars = CLIENT.to_vec();
    vars[3] = ("IPCREMOTEEUID", "1002");
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], &vars), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stdout(&o), "");
}

#[test]
fn local_path_from_option_inheritance_or_the_socket() {
    let o = run(&mut access(&["-l", "/named", "/usr/bin/env"], CLIENT), 10);
    assert_eq!(env_value(&o.stdout, "IPCLOCALPATH").as_deref(), Some("/named"));
    assert_eq!(stdout(&o).matches("IPCLOCALPATH=").count(), 1);
    let o = run(&mut access(&["-l", "", "/usr/bin/env"], CLIENT), 10);
    assert_eq!(env_value(&o.stdout, "IPCLOCALPATH").as_deref(), Some(""));
    let o = run(&mut access(&["/usr/bin/env"], CLIENT), 10);
    assert_eq!(env_value(&o.stdout, "IPCLOCALPATH").as_deref(), Some("/srv/sock"));

    // Not inherited: getsockname on descriptor 0.
    let d = TempDir::new();
    let sock = d.join("l.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let vars: Vec<_> = CLIENT.iter().filter(|(k, _)| *k != "IPCLOCALPATH").copied().collect();
    let o = access(&["/usr/bin/env"], &vars).stdin(Stdio::from(OwnedFd::from(listener))).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env_value(&o.stdout, "IPCLOCALPATH").as_deref(), Some(sock.to_str().unwrap()));
    // An unnamed socket has an empty path.
    let (a, _b) = UnixStream::pair().unwrap();
    let o = access(&["/usr/bin/env"], &vars).stdin(Stdio::from(OwnedFd::from(a))).output().unwrap();
    assert_eq!(env_value(&o.stdout, "IPCLOCALPATH").as_deref(), Some(""));
    // Descriptor 0 that is no socket, and nothing to say otherwise.
    let o = run(&mut access(&["/usr/bin/env"], &vars), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        "ipcserver-access: warning: dropping connection, unable to get local socket path: socket operation on non-socket\n"
    );
    assert_eq!(stdout(&o), "");
}

#[test]
fn big_e_removes_proto_and_ipc_variables_but_keeps_the_rules() {
    let (_d, cdb) = rules_dir(":allow,ACCESS=\"special\"\n");
    let mut vars = CLIENT.to_vec();
    vars.push(("IPCOTHER", "x"));
    vars.push(("KEEP", "1"));
    vars.push(("XIPC", "2"));
    let c = cdb.to_str().unwrap();
    let o = run(&mut access(&["-E", "-x", c, "/usr/bin/env"], &vars), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env_set(&o.stdout), set(&["PATH=/usr/bin:/bin", "KEEP=1", "XIPC=2", "ACCESS=special"]));
    // -l does not bring IPCLOCALPATH back under -E.
    let o = run(&mut access(&["-E", "-l", "/x", "/usr/bin/env"], &vars), 10);
    assert_eq!(env_value(&o.stdout, "IPCLOCALPATH"), None);
    // -E works without any IPCLOCALPATH or socket.
    let o = run(&mut access(&["-E", "/usr/bin/env"], &[("PROTO", "IPC"), ("IPCREMOTEEUID", "1")]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env_set(&o.stdout), set(&["PATH=/usr/bin:/bin"]));
    // The later of -E and -e wins.
    let o = run(&mut access(&["-E", "-e", "/usr/bin/env"], &vars), 10);
    assert_eq!(env_value(&o.stdout, "IPCOTHER").as_deref(), Some("x"));
    assert_eq!(env_value(&o.stdout, "PROTO").as_deref(), Some("IPC"));
    let o = run(&mut access(&["-eE", "/usr/bin/env"], &vars), 10);
    assert_eq!(env_value(&o.stdout, "PROTO"), None);
}

#[test]
fn banner_comes_first() {
    let o = run(&mut access(&["-B", "hello\r\n", "sh", "-c", "echo after"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "hello\r\nafter\n");
    let o = run(&mut access(&["-Bone", "-B", "two ", "sh", "-c", "echo after"], CLIENT), 10);
    assert_eq!(stdout(&o), "two after\n");
    // The banner goes out even to a client that is then denied.
    let (_d, cdb) = rules_dir(":deny\n");
    let o = run(&mut access(&["-B", "go away\n", "-x", cdb.to_str().unwrap(), "/usr/bin/env"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stdout(&o), "go away\n");
}

#[test]
fn failed_banner_drops_the_connection() {
    let d = TempDir::new();
    let marker = d.join("ran");
    let (ours, theirs) = UnixStream::pair().unwrap();
    drop(theirs);
    let script = format!("touch {}", marker.display());
    let o = access(&["-B", "hello", "sh", "-c", &script], CLIENT)
        .stdout(Stdio::from(OwnedFd::from(ours)))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcserver-access: warning: dropping connection, unable to write banner: broken pipe\n");
    assert!(!marker.exists());
}

#[test]
fn verbose_log_lines() {
    let (_d, cdb) = rules_dir(EXAMPLE);
    let c = cdb.to_str().unwrap();
    let mut vars = CLIENT.to_vec();
    vars[1] = ("IPCLOCALPATH", "/srv/a b:c%");
    vars[2] = ("IPCREMOTEPATH", "/client\tpath");
    let (pid, o) = spawn_wait(&mut access(&["-v", "2", "-x", c, "sh", "-c", "echo $$"], &vars));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), format!("{pid}\n"));
    assert_eq!(stderr(&o), format!("ipcserver-access: ok {pid} /srv/a?b?c? /client?path:1001,1010\n"));

    vars[3] = ("IPCREMOTEEUID", "1002");
    let (pid, o) = spawn_wait(&mut access(&["-v2", "-x", c, "/usr/bin/env"], &vars));
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), format!("ipcserver-access: deny {pid} /srv/a?b?c? /client?path:1002,1010\n"));

    // Long paths are cut; without -x the ids still show (own ones when unset).
    let long = "p".repeat(150);
    let (euid, egid) = own_ids();
    let vars = [("PROTO", "IPC"), ("IPCLOCALPATH", "/l"), ("IPCREMOTEPATH", long.as_str())];
    let child = access(&["-v2", "sh", "-c", "true"], &vars)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = wait_output(child, 10);
    assert_eq!(stderr(&o), format!("ipcserver-access: ok {pid} /l {}...:{euid},{egid}\n", "p".repeat(100)));
    // Default verbosity: silent.
    let o = run(&mut access(&["-x", c, "/usr/bin/env"], CLIENT), 10);
    assert_eq!(stderr(&o), "");
}

#[test]
fn failed_exec_is_reported() {
    let o = run(&mut access(&["/nonexistent/prog"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        "ipcserver-access: warning: dropping connection, unable to run /nonexistent/prog: no such file or directory\n"
    );
}

// ---- end to end, under the s6 server -------------------------------------

/// Fields drop in order: the server is stopped before its directory goes.
struct Chain {
    server: Server,
    sock: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

/// s6-ipcserver-socketbinder SOCK s6-ipcserverd ipcserver-access ARGS prog...
fn chain(d: TempDir, access_args: &[&str], prog: &[&str]) -> Chain {
    let sock = d.join("s");
    let log = d.join("log");
    let mut c = Command::new("s6-ipcserver-socketbinder");
    c.arg(&sock).arg("s6-ipcserverd").arg(bin("ipcserver-access")).args(access_args).args(prog);
    c.stderr(std::fs::File::create(&log).unwrap());
    let server = Server::start(&mut c, &sock);
    Chain { server, sock, log, _dir: d }
}

fn have_s6() -> bool {
    have("s6-ipcserver-socketbinder") && have("s6-ipcserverd")
}

fn log_text(c: &Chain) -> String {
    std::fs::read_to_string(&c.log).unwrap()
}

#[test]
fn under_s6_allow_sets_the_environment() {
    if !have_s6() {
        return;
    }
    let (euid, egid) = own_ids();
    let d = TempDir::new();
    let cdb =
        common::rules(d.path(), &format!("{euid}.{egid}:allow,ACCESS=\"special\",SECRETWORD=/mudshark/\n:deny\n"));
    let c = chain(d, &["-B", "welcome\n", "-x", cdb.to_str().unwrap()], &["/usr/bin/env"]);
    let out = fetch(&c.sock).unwrap();
    assert!(out.starts_with(b"welcome\n"), "{}", String::from_utf8_lossy(&out));
    let env = &out[8..];
    assert_eq!(env_value(env, "ACCESS").as_deref(), Some("special"));
    assert_eq!(env_value(env, "SECRETWORD").as_deref(), Some("mudshark"));
    assert_eq!(env_value(env, "IPCLOCALPATH").as_deref(), Some(c.sock.to_str().unwrap()));
    assert_eq!(env_value(env, "IPCREMOTEEUID"), Some(euid.to_string()));
    assert_eq!(env_value(env, "IPCREMOTEPATH").as_deref(), Some(""));
    assert_eq!(env_value(env, "PROTO").as_deref(), Some("IPC"));
}

#[test]
fn under_s6_deny_and_log_lines() {
    if !have_s6() {
        return;
    }
    let (euid, egid) = own_ids();
    let d = TempDir::new();
    let cdb = common::rules(d.path(), &format!("{euid}:allow,V=\"1\"\n"));
    // Each handler leaves a file named by its pid.
    let dir = d.path().to_path_buf();
    let ran = |pid: &str| dir.join(format!("ran.{pid}"));
    let script = format!("touch {}/ran.$$; echo $$", dir.display());
    let c = chain(d, &["-v2", "-x", cdb.to_str().unwrap()], &["sh", "-c", &script]);
    // Allowed: the handler's pid is the one logged.
    let out = String::from_utf8(fetch(&c.sock).unwrap()).unwrap();
    let pid = out.trim().to_string();
    assert!(ran(&pid).exists());
    let sock = c.sock.to_str().unwrap();
    let want = format!("ipcserver-access: ok {pid} {sock} :{euid},{egid}\n");
    assert!(wait_until(10, || log_text(&c).contains(&want)), "{}", log_text(&c));
    // Now deny: nothing runs, the client sees end of file at once.
    common::rules(cdb.parent().unwrap(), &format!("{euid}:deny\n"));
    let out = fetch(&c.sock).unwrap();
    assert_eq!(out, b"");
    assert!(wait_until(10, || log_text(&c).contains("ipcserver-access: deny ")), "{}", log_text(&c));
    let log = log_text(&c);
    let deny_line = log.lines().find(|l| l.starts_with("ipcserver-access: deny ")).unwrap();
    let deny_pid = deny_line.split(' ').nth(2).unwrap();
    assert_eq!(deny_line, format!("ipcserver-access: deny {deny_pid} {sock} :{euid},{egid}"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!ran(deny_pid).exists(), "the denied connection's handler ran");
}

#[test]
fn under_s6_corrupt_rules_drop_connections_until_fixed() {
    if !have_s6() {
        return;
    }
    let d = TempDir::new();
    let cdb = common::rules(d.path(), ":allow,V=\"good\"\n");
    let c = chain(d, &["-x", cdb.to_str().unwrap()], &["/usr/bin/printenv", "V"]);
    assert_eq!(fetch(&c.sock).unwrap(), b"good\n");
    let whole = std::fs::read(&cdb).unwrap();
    std::fs::write(&cdb, &whole[..whole.len() - 5]).unwrap();
    assert_eq!(fetch(&c.sock).unwrap(), b"");
    let msg =
        format!("ipcserver-access: warning: dropping connection, unable to read {}: corrupt cdb file", cdb.display());
    assert!(wait_until(10, || log_text(&c).contains(&msg)), "{}", log_text(&c));
    std::fs::remove_file(&cdb).unwrap();
    assert_eq!(fetch(&c.sock).unwrap(), b"");
    let msg = format!(
        "ipcserver-access: warning: dropping connection, unable to read {}: no such file or directory",
        cdb.display()
    );
    assert!(wait_until(10, || log_text(&c).contains(&msg)), "{}", log_text(&c));
    common::rules(cdb.parent().unwrap(), ":allow,V=\"fixed\"\n");
    assert_eq!(fetch(&c.sock).unwrap(), b"fixed\n");
}

#[test]
fn under_s6_rules_replaced_while_clients_connect() {
    if !have_s6() {
        return;
    }
    let d = TempDir::new();
    let cdb = common::rules(d.path(), ":allow,V=\"a\"\n");
    let c = chain(d, &["-x", cdb.to_str().unwrap()], &["/usr/bin/printenv", "V"]);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let cdb = cdb.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 0..20 {
                common::rules(
                    cdb.parent().unwrap(),
                    &format!("# rewrite {i}\n:allow,V=\"{}\"\n", if i % 2 == 0 { "b" } else { "a" }),
                );
                std::thread::sleep(Duration::from_millis(15));
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let mut seen = BTreeSet::new();
    let mut n = 0;
    while n < 2000 && (n < 200 || !done.load(std::sync::atomic::Ordering::SeqCst)) {
        let mut s = UnixStream::connect(&c.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out == "a\n" || out == "b\n", "connection {n} got {out:?}; log: {}", log_text(&c));
        seen.insert(out);
        n += 1;
    }
    writer.join().unwrap();
    assert!(done.load(std::sync::atomic::Ordering::SeqCst), "rewrites finished within the loop");
    assert_eq!(seen.len(), 2, "both versions of the rules were served");
    assert!(!log_text(&c).contains("fatal"), "{}", log_text(&c));
    drop(c.server);
}

/// A nameless assignment (the original's compiler writes one for
/// `,="value"`) sets nothing and the others apply, as in the original; an
/// assignment far beyond the copy buffer reaches the program whole.
#[test]
fn nameless_and_large_assignments_are_honoured() {
    let big = "b".repeat(100_000);
    let (_d, cdb) = rules_dir(&format!(":allow,=\"nameless\",B=\"x\",BIG=\"{big}\"\n"));
    let o = run(&mut access(&["-x", cdb.to_str().unwrap(), "/usr/bin/env"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let vars = env_set(&o.stdout);
    assert!(vars.contains("B=x"));
    assert!(vars.contains(&format!("BIG={big}")));
    assert!(!vars.iter().any(|v| v.contains("nameless")), "{vars:?}");
}

#[test]
fn quiet_silences_a_missing_program() {
    let o = run(&mut access(&["-v0"], CLIENT), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "");
}

#[test]
fn logs_under_the_name_it_is_given() {
    let (_d, cdb) = rules_dir(":deny\n");
    let (pid, o) = spawn_wait(&mut access(&["-N", "ipcserver", "-v2", "-x", cdb.to_str().unwrap(), "true"], CLIENT));
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), format!("ipcserver: deny {pid} /srv/sock :1001,1010\n"));
}
