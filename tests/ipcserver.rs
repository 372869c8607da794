//! ipcserver, the front end, and the whole chain it builds.
use crate::common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The original's usage line, with our extra options (-1, -C, -G, -a).
const USAGE: &str = "ipcserver: usage: ipcserver [ -1UXShHoOdDqQvpP ] [ -c limit ] [ -C locallimit ] \
[ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -G gidlist ] [ -b backlog ] [ -a perms ] \
[ -l localname ] path program\n";

/// Starts ipcserver with `args` (socket path and prog included), stderr
/// to `log`.
fn start(args: &[&str], sock: &Path, log: &Path) -> Server {
    let mut c = cmd("ipcserver");
    c.args(args).stderr(std::fs::File::create(log).unwrap());
    Server::start(&mut c, sock)
}

fn text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn usage_errors() {
    let limit = "(a number from 1 to 65535)";
    let id = "(a number from 0 to 4294967294)";
    let bad: &[(&[&str], String)] = &[
        (&[], "".into()),
        (&["/tmp/x"], "".into()),
        // An empty path (a run script whose $SOCK is unset), as the original.
        (&["", "true"], "".into()),
        (&["-c", "x", "/tmp/x", "true"], format!("illegal value for option -c: x {limit}")),
        (&["-c", "0", "/tmp/x", "true"], format!("illegal value for option -c: 0 {limit}")),
        (&["-c", "65536", "/tmp/x", "true"], format!("illegal value for option -c: 65536 {limit}")),
        (&["-C", "0", "/tmp/x", "true"], format!("illegal value for option -C: 0 {limit}")),
        (&["-C", "-1", "/tmp/x", "true"], format!("illegal value for option -C: -1 {limit}")),
        (&["-b", "z", "/tmp/x", "true"], "illegal value for option -b: z (a number from 0 to 2147483647)".into()),
        (&["-a", "9", "/tmp/x", "true"], "illegal value for option -a: 9 (octal, at most 777)".into()),
        (&["-u", "root", "/tmp/x", "true"], format!("illegal value for option -u: root {id}")),
        (&["-u", "4294967295", "/tmp/x", "true"], format!("illegal value for option -u: 4294967295 {id}")),
        (&["-g", "x", "/tmp/x", "true"], format!("illegal value for option -g: x {id}")),
        (
            &["-G", "1,a", "/tmp/x", "true"],
            "illegal value for option -G: 1,a (comma-separated gids, at most 1024)".into(),
        ),
        (&["-k", "/tmp/x", "true"], "illegal option -- k".into()),
        (&["-c"], "option requires an argument -- c".into()),
    ];
    for (args, msg) in bad {
        let o = run(cmd("ipcserver").args(*args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        let msg = if msg.is_empty() { String::new() } else { format!("ipcserver: {msg}\n") };
        assert_eq!(stderr(&o), format!("{msg}{USAGE}"), "{args:?}");
    }
    // -q silences a missing operand (as the original), not an option error.
    for args in [&["-q"][..], &["-q", "", "true"]] {
        let o = run(cmd("ipcserver").args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), "", "{args:?}");
    }
    let o = run(cmd("ipcserver").args(["-q", "-k"]), 10);
    assert_eq!(stderr(&o), format!("ipcserver: illegal option -- k\n{USAGE}"));
}

/// Every option value is checked, the privilege drop resolved, before the
/// socket is bound: a command line that fails leaves no socket file.
#[test]
fn nothing_is_bound_for_a_command_line_that_fails() {
    let d = TempDir::new();
    let sock = d.join("s");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, String);
    let cases: [Case; 4] = [
        (
            &["-u", "4294967295"],
            &[],
            100,
            format!("illegal value for option -u: 4294967295 (a number from 0 to 4294967294)\n{USAGE}"),
        ),
        (&["-U"], &[("GID", "1")], 100, "fatal: UID not set\n".into()),
        (&["-U"], &[("UID", "1"), ("GID", "x")], 100, "fatal: invalid GID\n".into()),
        (&["-u", "3999999999"], &[], 100, "fatal: uid 3999999999 has no entry in /etc/passwd: give a gid\n".into()),
    ];
    for (opts, vars, code, msg) in cases {
        let o = run(
            cmd("ipcserver")
                .env_remove("UID")
                .env_remove("GID")
                .envs(vars.iter().copied())
                .args(opts)
                .arg(&sock)
                .arg("true"),
            10,
        );
        assert!(!sock.exists(), "{opts:?} left a socket file");
        assert_eq!(o.status.code(), Some(code), "{opts:?}");
        assert_eq!(stderr(&o), format!("ipcserver: {msg}"), "{opts:?}");
    }
}

/// `-q` after `-U` silences its error too, and nothing is bound.
#[test]
fn quiet_applies_to_environment_errors_given_before_it() {
    let d = TempDir::new();
    let sock = d.join("s");
    let o = run(cmd("ipcserver").env_remove("UID").env("GID", "1").args(["-U", "-q"]).arg(&sock).arg("true"), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "");
    assert!(!sock.exists());
}

/// An empty supplementary list (what s6-envuidgid sets for a user with no
/// other group) is passed on whole: no supplementary group.
#[test]
fn an_empty_group_list_is_passed_on() {
    if !need_root() {
        return;
    }
    let d = TempDir::new();
    for (i, (opts, env)) in
        [(&["-u", "65534", "-g", "65533", "-G", ""][..], &[][..]), (&["-U"][..], &[("GIDLIST", "")][..])]
            .iter()
            .enumerate()
    {
        let sock = d.join(&format!("s{i}"));
        let mut c = cmd("ipcserver");
        c.env("UID", "65534").env("GID", "65533").envs(env.iter().copied()).args(*opts).arg(&sock);
        let _srv = Server::start(c.args(["cat", "/proc/self/status"]).stderr(Stdio::null()), &sock);
        let (u, g, groups) = identity(&fetch(&sock).unwrap());
        assert_eq!(
            (u.as_str(), g.as_str(), groups.as_str()),
            ("65534 65534 65534 65534", "65533 65533 65533 65533", ""),
            "{opts:?}"
        );
    }
}

#[test]
fn the_largest_connection_limit_is_accepted() {
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = start(&["-c", "65535", "-C", "65535", "-h", "-H", s(&sock), "echo", "ok"], &sock, &d.join("log"));
    assert_eq!(fetch(&sock).unwrap(), b"ok\n");
}

#[test]
fn serves_with_the_ucspi_environment_and_ignores_o() {
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = start(&["-o", "-O", s(&sock), "env"], &sock, &d.join("log"));
    let out = fetch(&sock).unwrap();
    assert_eq!(env_value(&out, "PROTO").as_deref(), Some("IPC"));
    assert_eq!(env_value(&out, "IPCLOCALPATH").as_deref(), Some(s(&sock)));
    assert_eq!(env_value(&out, "IPCREMOTEPATH").as_deref(), Some(""));
    assert!(env_value(&out, "IPCREMOTEEUID").unwrap().parse::<u32>().is_ok());
    assert!(env_value(&out, "IPCREMOTEEGID").unwrap().parse::<u32>().is_ok());
    assert_eq!(env_value(&out, "IPCCONNNUM").as_deref(), Some("0"));
    assert_eq!(text(&d.join("log")), "");
}

#[test]
fn capital_p_disables_credentials() {
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = start(&["-P", s(&sock), "env"], &sock, &d.join("log"));
    let out = fetch(&sock).unwrap();
    assert_eq!(env_value(&out, "IPCREMOTEEUID"), None);
    assert_eq!(env_value(&out, "IPCREMOTEEGID"), None);
}

#[test]
fn finds_its_siblings_next_to_itself_not_in_path() {
    let d = TempDir::new();
    let sock = d.join("s");
    let mut c = cmd("ipcserver");
    c.env("PATH", "/nonexistent").args(["-B", "hi ", s(&sock), "/bin/echo", "there"]);
    let _srv = Server::start(c.stderr(Stdio::null()), &sock);
    assert_eq!(fetch(&sock).unwrap(), b"hi there\n");
}

#[test]
fn readiness_line_through_the_chain() {
    let d = TempDir::new();
    let sock = d.join("s");
    let mut child =
        cmd("ipcserver").args(["-1", s(&sock), "true"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let _srv = Server { child };
    let mut line = String::new();
    out.read_to_string(&mut line).unwrap();
    assert_eq!(line, format!("{}\n", s(&sock)));
    assert!(socket_ready(&sock));
}

#[test]
fn verbose_and_quiet() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    // With and without an access link in the chain: the same lines, the
    // original's, in its order.
    for (i, extra) in [&["-x", s(&d.join("none.cdb")), "-X"][..], &[][..]].iter().enumerate() {
        let sock = d.join(&format!("s{i}"));
        let log = d.join(&format!("log{i}"));
        let mut args = vec!["-v", "-c", "3"];
        args.extend_from_slice(extra);
        args.extend([s(&sock), "sh", "-c", "exit 2"]);
        let srv = start(&args, &sock, &log);
        fetch(&sock).unwrap();
        assert!(wait_until(10, || text(&log).matches("status: 0/3").count() >= 2), "{}", text(&log));
        let l = text(&log);
        let lines: Vec<&str> = l.lines().collect();
        let pid = lines[2].strip_prefix("ipcserver: pid ").unwrap().strip_suffix(" from ").unwrap();
        assert_eq!(
            lines,
            [
                "ipcserver: status: 0/3".to_string(),
                "ipcserver: status: 1/3".into(),
                format!("ipcserver: pid {pid} from "),
                format!("ipcserver: ok {pid} {} :{uid},{gid}", s(&sock)),
                format!("ipcserver: end {pid} status 512"),
                "ipcserver: status: 0/3".into(),
            ],
            "{extra:?}"
        );
        drop(srv);
    }

    // -q: nothing from any link, not even a missing rules file or a failed
    // bind.
    let sock = d.join("q");
    let log = d.join("qlog");
    let _srv = start(&["-q", "-x", s(&d.join("none.cdb")), s(&sock), "true"], &sock, &log);
    fetch(&sock).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(text(&log), "", "-q: not even the missing rules file is reported");
    let o = run(cmd("ipcserver").args(["-q", "-D", s(&sock), "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "");
    let o = run(cmd("ipcserver").args(["-q", "-u", "0", s(&d.join("nodir/s")), "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "");
}

#[test]
fn bind_errors_are_clear() {
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = start(&[s(&sock), "true"], &sock, &d.join("log"));
    // -D on a live socket.
    let o = run(cmd("ipcserver").args(["-D", s(&sock), "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcserver: fatal: unable to bind {}: address already in use\n", s(&sock)));
    // A missing directory.
    let missing = d.join("no/such/dir/s");
    let o = run(cmd("ipcserver").args([s(&missing), "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcserver: fatal: unable to bind {}: no such file or directory\n", s(&missing)));
    // A directory where the socket should be says so (the original and s6
    // leave it for bind, which says `address already in use`).
    let o = run(cmd("ipcserver").args([d.path().to_str().unwrap(), "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcserver: fatal: unable to bind {}: is a directory\n", d.path().display()));
    assert!(d.path().is_dir());
}

/// A path of exactly `len` bytes inside `d`.
fn path_of_len(d: &TempDir, len: usize) -> PathBuf {
    let base = format!("{}/", d.path().display());
    let p = format!("{base}{}", "x".repeat(len - base.len()));
    assert_eq!(p.len(), len);
    PathBuf::from(p)
}

#[test]
fn socket_paths_of_108_and_109_bytes() {
    let d = TempDir::new();
    let ok = path_of_len(&d, 108);
    let srv = start(&[s(&ok), "sh", "-c", "echo $IPCLOCALPATH"], &ok, &d.join("log"));
    // Rust's std cannot connect to such a path; our clients can.
    let o = run(cmd("ipccat").arg(&ok), 10);
    assert_eq!(stdout(&o), format!("{}\n", s(&ok)), "{}", stderr(&o));
    drop(srv);
    let long = path_of_len(&d, 109);
    let o = run(cmd("ipcserver").args([s(&long), "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcserver: fatal: unable to bind {}: file name too long\n", s(&long)));
    assert!(!long.exists());
}

/// Only an old socket is removed before binding: `ipcserver notes.txt
/// prog` must not delete the notes (the original and s6 do).
#[test]
fn only_a_socket_at_path_is_replaced() {
    let d = TempDir::new();
    let notes = d.join("notes.txt");
    std::fs::write(&notes, "not a socket").unwrap();
    for opts in [&[][..], &["-d"], &["-q"]] {
        let o = run(cmd("ipcserver").args(opts).args([s(&notes), "sh", "-c", "echo ran"]), 10);
        assert_eq!(o.status.code(), Some(111), "{opts:?}");
        let msg = format!("ipcserver: fatal: unable to bind {}: file exists and is not a socket\n", s(&notes));
        assert_eq!(stderr(&o), if opts == ["-q"] { "" } else { &msg }, "{opts:?}");
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a socket");
    }
    let o = run(cmd("ipcserver").args(["-D", s(&notes), "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert!(stderr(&o).ends_with("address already in use\n"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a socket");
    // A symbolic link (even to a socket) and a FIFO are not sockets either.
    let old = d.join("old.sock");
    drop(std::os::unix::net::UnixListener::bind(&old).unwrap());
    let link = d.join("link");
    std::os::unix::fs::symlink(&old, &link).unwrap();
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for path in [&link, &fifo] {
        let o = run(cmd("ipcserver").args([s(path), "true"]), 10);
        assert_eq!(o.status.code(), Some(111), "{}", path.display());
        assert!(stderr(&o).ends_with(": file exists and is not a socket\n"), "{}", stderr(&o));
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // An old socket is replaced.
    let _srv = start(&[s(&old), "echo", "ok"], &old, &d.join("log"));
    assert_eq!(fetch(&old).unwrap(), b"ok\n");
}

#[test]
fn socket_permissions_with_a() {
    let d = TempDir::new();
    for (perms, mode) in [(None, 0o777), (Some("600"), 0o600), (Some("0640"), 0o640)] {
        let sock = d.join(&format!("s{mode:o}"));
        let mut args = Vec::new();
        if let Some(p) = perms {
            args.extend(["-a", p]);
        }
        args.extend([s(&sock), "true"]);
        let _srv = start(&args, &sock, &d.join("log"));
        let m = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "{perms:?}");
    }
}

#[test]
fn banner_and_localname() {
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv =
        start(&["-B", "220 ready\n", "-l", "name", s(&sock), "sh", "-c", "echo $IPCLOCALPATH"], &sock, &d.join("log"));
    assert_eq!(fetch(&sock).unwrap(), b"220 ready\nname\n");
}

#[test]
fn rules_allow_deny_and_environment() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let cdb = rules(d.path(), &format!("{uid}.{gid}:allow,WHO=\"me\",Q=/a\"b/\n:deny\n"));
    let sock = d.join("s");
    let marker = d.join("ran");
    let log = d.join("log");
    let handler = format!("touch {}; echo $WHO $Q", s(&marker));
    let srv = start(&["-x", s(&cdb), s(&sock), "sh", "-c", &handler], &sock, &log);
    assert_eq!(fetch(&sock).unwrap(), b"me a\"b\n");
    assert!(marker.exists());
    drop(srv);

    // Deny: the connection is dropped, the handler never runs.
    std::fs::remove_file(&marker).unwrap();
    let cdb = rules(d.path(), &format!("{uid}:deny\n:allow\n"));
    let sock = d.join("t");
    let _srv = start(&["-v", "-x", s(&cdb), s(&sock), "sh", "-c", &handler], &sock, &log);
    assert_eq!(fetch(&sock).unwrap(), b"");
    assert!(wait_until(10, || text(&log).contains(" status 25600")), "{}", text(&log));
    assert!(text(&log).contains("ipcserver: deny "), "{}", text(&log));
    assert!(!marker.exists(), "a denied connection ran the handler");
}

/// Rules that cannot be read drop every connection: ipcserver still
/// starts (as the original), but says so once at start, unless -q (or
/// -X, for a missing file only).
#[test]
fn unreadable_rules_are_reported_at_start() {
    let d = TempDir::new();
    let missing = d.join("missing.cdb");
    let garbage = d.join("garbage.cdb");
    std::fs::write(&garbage, "garbage").unwrap();
    let good = rules(d.path(), ":allow\n");
    let warning = |p: &Path, reason: &str| {
        format!(
            "ipcserver: warning: unable to read {}: {reason} (every connection is dropped until it can be read)\n",
            s(p)
        )
    };
    let cases: [(&[&str], &Path, String); 6] = [
        (&[], &missing, warning(&missing, "no such file or directory")),
        (&["-q"], &missing, String::new()),
        (&["-X"], &missing, String::new()),
        (&[], &garbage, warning(&garbage, "corrupt cdb file")),
        (&["-X"], &garbage, warning(&garbage, "corrupt cdb file")),
        (&[], &good, String::new()),
    ];
    for (i, (opts, cdb, expected)) in cases.into_iter().enumerate() {
        let sock = d.join(&format!("s{i}"));
        let log = d.join(&format!("log{i}"));
        let mut args = opts.to_vec();
        args.extend(["-x", s(cdb), s(&sock), "echo", "served"]);
        let _srv = start(&args, &sock, &log);
        // Written before the chain starts, so before the socket exists.
        assert_eq!(text(&log), expected, "{opts:?} {}", cdb.display());
        fetch(&sock).unwrap();
        fetch(&sock).unwrap();
        assert_eq!(text(&log).matches("warning: unable to read").count(), expected.lines().count(), "once only");
    }
}

#[test]
fn missing_rules_file_with_and_without_capital_x() {
    let d = TempDir::new();
    let missing = d.join("missing.cdb");
    let sock = d.join("s");
    let log = d.join("log");
    let srv = start(&["-x", s(&missing), s(&sock), "echo", "served"], &sock, &log);
    assert_eq!(fetch(&sock).unwrap(), b"");
    assert!(wait_until(10, || text(&log).contains("no such file or directory")), "{}", text(&log));
    drop(srv);
    let sock = d.join("t");
    let _srv = start(&["-X", "-x", s(&missing), s(&sock), "echo", "served"], &sock, &log);
    assert_eq!(fetch(&sock).unwrap(), b"served\n");
}

#[test]
fn corrupt_rules_drop_the_connection_and_the_server_keeps_serving() {
    let d = TempDir::new();
    let cdb = rules(d.path(), ":allow,A=\"1\"\n");
    let good = std::fs::read(&cdb).unwrap();
    let sock = d.join("s");
    let log = d.join("log");
    let _srv = start(&["-x", s(&cdb), s(&sock), "sh", "-c", "echo $A"], &sock, &log);
    assert_eq!(fetch(&sock).unwrap(), b"1\n");
    for broken in [&good[..100], &good[..2048], &good[..good.len() - 3], b"garbage"] {
        std::fs::write(&cdb, broken).unwrap();
        assert_eq!(fetch(&sock).unwrap(), b"", "a broken file must drop the connection");
    }
    assert!(
        text(&log).contains(&format!(
            "ipcserver: warning: dropping connection, unable to read {}: corrupt cdb file",
            s(&cdb)
        )),
        "{}",
        text(&log)
    );
    assert!(!text(&log).contains("panic"), "{}", text(&log));
    std::fs::write(&cdb, &good).unwrap();
    assert_eq!(fetch(&sock).unwrap(), b"1\n");
}

#[test]
fn rules_replaced_while_serving_never_fail_a_connection() {
    let d = TempDir::new();
    let cdb = rules(d.path(), ":allow,V=\"0\"\n");
    let sock = d.join("s");
    let _srv = start(&["-x", s(&cdb), s(&sock), "sh", "-c", "echo ${V:-none}"], &sock, &d.join("log"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = {
        let (sock, stop) = (sock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut n = 0;
            while n < 100 || !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(String::from_utf8(fetch(&sock).unwrap()).unwrap());
                n += 1;
                if n > 5000 {
                    break;
                }
            }
            seen
        })
    };
    for i in 1..=20 {
        let o =
            run_input(cmd("ipcrules").arg(&cdb).arg(d.join("rules.tmp")), format!(":allow,V=\"{i}\"\n").as_bytes(), 20);
        assert!(o.status.success());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = clients.join().unwrap();
    assert!(seen.len() >= 100);
    for answer in &seen {
        let v: u32 = answer.trim().parse().unwrap_or_else(|_| panic!("a connection failed: {answer:?}"));
        assert!(v <= 20);
    }
}

/// The handler's Uid, Gid and Groups lines as "uid gid groups".
fn identity(out: &[u8]) -> (String, String, String) {
    let st = String::from_utf8_lossy(out).into_owned();
    let field = |n: &str| {
        st.lines()
            .find(|l| l.starts_with(n))
            .map(|l| l[n.len()..].split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

#[test]
fn drops_privileges_with_u_g_and_capital_g() {
    if !need_root() {
        return;
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = start(&["-u", "65534", "-g", "65533", s(&sock), "cat", "/proc/self/status"], &sock, &d.join("log"));
    let (u, g, groups) = identity(&fetch(&sock).unwrap());
    assert_eq!(u, "65534 65534 65534 65534");
    assert_eq!(g, "65533 65533 65533 65533");
    assert_eq!(groups, "65533", "a dropped server never keeps root's groups");

    let sock = d.join("t");
    let _srv2 = start(
        &["-u", "65534", "-g", "65533", "-G", "100,200", s(&sock), "cat", "/proc/self/status"],
        &sock,
        &d.join("log"),
    );
    let (_, _, groups) = identity(&fetch(&sock).unwrap());
    assert_eq!(groups, "100 200");
}

/// `ipcserver OPTS... PATH prog...` run by nobody (uid and gid 65534, no
/// other group), with `vars` in its environment.
fn as_nobody(opts: &[&str], vars: &[(&str, &str)], path: &Path, prog: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin("ipcserver"));
    c.args(opts).arg(path).args(prog).env_remove("UID").env_remove("GID").env_remove("GIDLIST");
    c.envs(vars.iter().copied());
    c
}

/// Run by a user, `-u`, `-g`, `-G` and `-U` for other ids are refused
/// before anything is bound (they used to fail after binding, leaving the
/// socket behind); for the user's own ids they change nothing, and the
/// server serves.
#[test]
fn a_change_of_ids_without_root_is_refused_before_binding() {
    if !need_root() || !have("setpriv") {
        return;
    }
    let d = TempDir::new();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = d.join("s");
    let refused = "ipcserver: fatal: -u, -g, -G and -U need root, unless they name the server's own ids\n";
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case; 5] = [
        (&["-u", "1000", "-g", "1000"], &[]),
        (&["-u", "65534", "-g", "1000"], &[]),
        (&["-u", "1"], &[]),
        (&["-G", "5"], &[]),
        (&["-U"], &[("UID", "65534"), ("GID", "65534"), ("GIDLIST", "5")]),
    ];
    for (opts, vars) in cases {
        let o = run(&mut as_nobody(opts, vars, &sock, &["sh", "-c", "echo ran"]), 10);
        assert_eq!((o.status.code(), stderr(&o)), (Some(100), refused.to_string()), "{opts:?} {vars:?}");
        assert!(!sock.exists(), "{opts:?} {vars:?} left a socket file");
    }
    let o = run(&mut as_nobody(&["-q", "-u", "1"], &[], &sock, &["true"]), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), String::new()));
    // Its own ids: served, as nobody.
    let own: [Case; 3] = [
        (&["-u", "65534", "-g", "65534"], &[]),
        (&["-u", "65534"], &[]),
        (&["-U"], &[("UID", "65534"), ("GID", "65534"), ("GIDLIST", "")]),
    ];
    for (opts, vars) in own {
        let _ = std::fs::remove_file(&sock);
        let _srv = Server::start(&mut as_nobody(opts, vars, &sock, &["cat", "/proc/self/status"]), &sock);
        let (u, g, groups) = identity(&fetch(&sock).unwrap());
        assert_eq!(
            (u.as_str(), g.as_str(), groups.as_str()),
            ("65534 65534 65534 65534", "65534 65534 65534 65534", "")
        );
    }
}

#[test]
fn drops_privileges_from_the_environment_with_capital_u() {
    if !need_root() {
        return;
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let mut c = cmd("ipcserver");
    c.env("UID", "65534")
        .env("GID", "65532")
        .env("GIDLIST", "7,8")
        .args(["-U", s(&sock), "cat", "/proc/self/status"])
        .stderr(Stdio::null());
    let _srv = Server::start(&mut c, &sock);
    let (u, g, groups) = identity(&fetch(&sock).unwrap());
    assert_eq!(u, "65534 65534 65534 65534");
    assert_eq!(g, "65532 65532 65532 65532");
    assert_eq!(groups, "7 8");
}

/// A client running as `uid`: prints the server's first line, then holds
/// the connection until its stdin is closed.
fn client_as(uid: u32, sock: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(bin("ipcapplyuidgid"))
        .args(["-u", &uid.to_string(), "-g", &uid.to_string()])
        .arg(bin("ipcclient"))
        .arg(sock)
        .args(["sh", "-c", "head -n 1 <&6; echo end; cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The server's line (if any), then "end" once the client has read it
    // or seen the connection closed.
    let mut got = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if line == "end\n" || line.is_empty() {
            break;
        }
        got.push_str(&line);
    }
    (child, got)
}

#[test]
fn local_limit_per_uid_with_two_users() {
    if !need_root() {
        return;
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let log = d.join("log");
    let _srv = start(
        &["-c", "10", "-C", "2", s(&sock), "sh", "-c", "echo $IPCREMOTEEUID:$IPCCONNNUM; exec cat >/dev/null"],
        &sock,
        &log,
    );
    let (mut a, la) = client_as(65534, &sock);
    let (mut b, lb) = client_as(65534, &sock);
    assert_eq!((la.as_str(), lb.as_str()), ("65534:0\n", "65534:1\n"));
    // A third connection from that uid is over the limit: closed at once.
    let (mut c, lc) = client_as(65534, &sock);
    assert_eq!(lc, "");
    assert!(wait_until(10, || text(&log).contains("uid 65534: local limit of 2 reached")), "{}", text(&log));
    // Another uid is still served, and counted on its own.
    let (mut e, le) = client_as(65533, &sock);
    assert_eq!(le, "65533:0\n");
    for ch in [&mut a, &mut b, &mut c, &mut e] {
        drop(ch.stdin.take());
        assert!(wait_timeout(ch, 10).is_some());
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn a_handler_that_reads_and_writes_binary_data() {
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = start(&[s(&sock), "cat"], &sock, &d.join("log"));
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let writer = {
        let mut c = c.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || {
            c.write_all(&data).unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back, data);
}

#[test]
fn the_whole_chain_leaves_signals_as_it_found_them() {
    // -u 0 ("leave unchanged") puts ipcapplyuidgid in the chain, -B puts
    // ipcserver-access in it: every link is crossed.
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = start(&["-u", "0", "-B", "", s(&sock), "cat", "/proc/self/status"], &sock, &d.join("log"));
    let status = String::from_utf8(fetch(&sock).unwrap()).unwrap();
    let mask = |name: &str| {
        let l = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0);
    assert_eq!(mask("SigIgn:") & (1 << (13 - 1)), 0, "SIGPIPE must reach the handler at its default");
}

/// The lines of each connection come in the original's order, `pid`,
/// then the access line, then `end`, by design and not by timing: under a
/// burst of concurrent connections, with and without an access link.
#[test]
fn log_order_per_connection_under_load() {
    let d = TempDir::new();
    let cdb = rules(d.path(), ":allow\n");
    for (i, extra) in [&["-x", s(&cdb)][..], &[][..]].iter().enumerate() {
        let sock = d.join(&format!("s{i}"));
        let log = d.join(&format!("log{i}"));
        let mut args = vec!["-v"];
        args.extend_from_slice(extra);
        args.extend([s(&sock), "true"]);
        let _srv = start(&args, &sock, &log);
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let sock = sock.clone();
                std::thread::spawn(move || (0..40).for_each(|_| drop(fetch(&sock))))
            })
            .collect();
        clients.into_iter().for_each(|t| t.join().unwrap());
        assert!(wait_until(20, || text(&log).matches(" end ").count() == 320), "{}", text(&log));
        let l = text(&log);
        let lines: Vec<&str> = l.lines().collect();
        let mut checked = 0;
        for (at, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("ipcserver: pid ") else { continue };
            let pid = rest.split(' ').next().unwrap();
            let ok = lines.iter().position(|l| l.starts_with(&format!("ipcserver: ok {pid} "))).unwrap();
            let end = lines.iter().position(|l| l.starts_with(&format!("ipcserver: end {pid} "))).unwrap();
            assert!(at < ok && ok < end, "connection {pid} out of order ({at}, {ok}, {end}): {extra:?}");
            checked += 1;
        }
        assert_eq!(checked, 320);
    }
}

/// A user in /etc/passwd whose primary gid differs from its uid.
fn user_with_other_gid() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
        })
        .find(|&(u, g)| u != 0 && u != g)
        .expect("a user whose gid is not its uid")
}

#[test]
fn u_without_g_takes_the_primary_gid_and_later_options_override_earlier_ones() {
    if !need_root() {
        return;
    }
    let d = TempDir::new();
    let (uid, gid) = user_with_other_gid();
    let serve = |n: &str, opts: &[&str]| {
        let sock = d.join(n);
        let mut c = cmd("ipcserver");
        c.env("UID", "65534")
            .env("GID", "65533")
            .env_remove("GIDLIST")
            .args(opts)
            .arg(&sock)
            .args(["cat", "/proc/self/status"]);
        let _srv = Server::start(c.stderr(Stdio::null()), &sock);
        let (u, g, groups) = identity(&fetch(&sock).unwrap());
        (u.split(' ').next().unwrap().to_string(), g.split(' ').next().unwrap().to_string(), groups)
    };
    let ids = |u: u32, g: u32| (u.to_string(), g.to_string(), g.to_string());
    assert_eq!(serve("a", &["-u", &uid.to_string()]), ids(uid, gid), "the primary gid, never root's");
    assert_eq!(serve("b", &["-U", "-u", "1"]), ids(1, 65533));
    assert_eq!(serve("c", &["-u", "1", "-U"]), ids(65534, 65533));
    assert_eq!(serve("e", &["-U", "-g", "5"]), ids(65534, 5));
    assert_eq!(serve("f", &["-g", "5", "-U"]), ids(65534, 65533));
}

/// Started through PATH in a mount namespace where /proc is empty, the
/// front end finds its siblings through the kernel's AT_EXECFN.
#[test]
fn finds_its_siblings_without_proc() {
    if !need_root() || !have("unshare") {
        return;
    }
    let probe = run(Command::new("unshare").args(["--mount", "--propagation", "private", "true"]), 10);
    if !probe.status.success() {
        skip(&format!("no mount namespaces here ({})", stderr(&probe).trim()));
        return;
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let dir = bin("ipcserver").parent().unwrap().to_path_buf();
    let script = "mount -t tmpfs none /proc && [ ! -e /proc/self ] && PATH=\"$0:$PATH\" exec ipcserver -B 'no proc ' \"$1\" echo here";
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", script]).arg(&dir).arg(&sock);
    let _srv = Server::start(c.stderr(Stdio::null()), &sock);
    assert_eq!(fetch(&sock).unwrap(), b"no proc here\n");
}
