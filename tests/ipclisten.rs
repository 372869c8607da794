//! ipclisten (ucspi-ipc 0.70): binds, drops privileges, and keeps `-c`
//! instances of a program running with the listening socket on
//! descriptors 0 and 1, restarting those that exit. The instances here
//! are mostly `sleep`, so that what each was given (descriptors, ids,
//! environment, signals) is read from /proc; ipcaccept under ipclisten is
//! tested in tests/ipcaccept.rs.
use crate::common;
use common::launch::{process_signals, served, Launcher};
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str =
    "ipclisten: usage: ipclisten [ -UdDqQv ] [ -c limit ] [ -g gid ] [ -u uid ] [ -b backlog ] path program\n";

/// An ipclisten we started, on DIR/s, with its stderr in DIR/log.
struct Listen {
    server: Server,
    sock: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Listen {
    /// Starts `ipclisten OPTS DIR/s PROG...` and waits until it listens.
    fn start(opts: &[&str], prog: &[&str]) -> Listen {
        Listen::start_with(opts, prog, |_| {})
    }

    fn start_with(opts: &[&str], prog: &[&str], adjust: impl FnOnce(&mut Command)) -> Listen {
        let dir = TempDir::new();
        let sock = dir.join("s");
        let log = dir.join("log");
        let mut c = cmd("ipclisten");
        c.args(opts).arg(&sock).args(prog).stderr(std::fs::File::create(&log).unwrap());
        adjust(&mut c);
        let server = Server::start(&mut c, &sock);
        Listen { server, sock, log, _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Waits until the log has `n` lines, then returns it.
    fn log_lines(&self, n: usize) -> String {
        assert!(wait_until(10, || self.log().lines().count() >= n), "fewer than {n} lines:\n{}", self.log());
        self.log()
    }

    /// The running instances, once there are `n` of them and each has
    /// executed into `comm` (a child may still be ipclisten's copy).
    fn instances(&self, n: usize, comm: &str) -> Vec<i32> {
        let mut found = Vec::new();
        let ready = wait_until(10, || {
            found = children(self.server.pid()).0.into_iter().filter(|&p| alive(p)).collect();
            found.len() == n && found.iter().all(|p| comm_of(*p) == comm)
        });
        assert!(ready, "not {n} instances of {comm}: {found:?}\n{}", self.log());
        found.sort();
        found
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        for p in descendants(self.server.pid()) {
            kill(p, 9);
        }
    }
}

fn comm_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// What descriptor `fd` of `pid` is (`socket:[INODE]`, a path...).
fn fd_of(pid: i32, fd: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).map(|p| p.display().to_string()).unwrap_or_default()
}

/// A `Uid:`, `Gid:` or `Groups:` line of /proc/PID/status, without its
/// name.
fn status_field(pid: i32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(name)).unwrap();
    line[name.len()..].split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn usage_and_option_errors() {
    let d = TempDir::new();
    let s = d.join("s");
    let s = s.to_str().unwrap();
    let value =
        |opt: &str, v: &str, range: &str| format!("ipclisten: illegal value for option -{opt}: {v} ({range})\n");
    let count = "a number from 1 to 65535";
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec![], USAGE.into()),
        // The original forks for ever instances that crash: a program is
        // required.
        (vec![s], USAGE.into()),
        (vec!["-v", s], USAGE.into()),
        // An empty path (a run script's unset variable).
        (vec!["", "true"], USAGE.into()),
        (vec!["-q", s], String::new()),
        (vec!["-z", s, "true"], format!("ipclisten: illegal option -- z\n{USAGE}")),
        (vec!["-q", "-z", s, "true"], format!("ipclisten: illegal option -- z\n{USAGE}")),
        (vec!["-c"], format!("ipclisten: option requires an argument -- c\n{USAGE}")),
        (vec!["-c", "0", s, "true"], format!("{}{USAGE}", value("c", "0", count))),
        (vec!["-c", "x", s, "true"], format!("{}{USAGE}", value("c", "x", count))),
        (vec!["-c", "65536", s, "true"], format!("{}{USAGE}", value("c", "65536", count))),
        (vec!["-b", "z", s, "true"], format!("{}{USAGE}", value("b", "z", "a number from 0 to 2147483647"))),
        (vec!["-u", "abc", s, "true"], format!("{}{USAGE}", value("u", "abc", "a number from 0 to 4294967294"))),
        (vec!["-g", "-1", s, "true"], format!("{}{USAGE}", value("g", "-1", "a number from 0 to 4294967294"))),
    ];
    for (args, expected) in cases {
        let o = run(cmd("ipclisten").args(&args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), expected, "{args:?}");
        assert!(!Path::new(s).exists(), "{args:?}: nothing may be bound");
    }
    // -U without $UID: refused, not root kept.
    let o = run(cmd("ipclisten").args(["-U", s, "true"]).env_remove("UID").env("GID", "100"), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), "ipclisten: fatal: UID not set\n".to_string()));
}

#[test]
fn bind_errors_name_the_path() {
    let d = TempDir::new();
    let missing = d.join("no/such/s");
    let o = run(cmd("ipclisten").arg(&missing).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!("ipclisten: fatal: unable to bind {}: no such file or directory\n", missing.display())
    );
    let o = run(cmd("ipclisten").arg("-q").arg(&missing).arg("true"), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), String::new()));
    let too_long = d.join(&"x".repeat(109 - d.path().to_str().unwrap().len() - 1));
    let o = run(cmd("ipclisten").arg(&too_long).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert!(stderr(&o).ends_with(": file name too long\n"), "{}", stderr(&o));

    // Only a socket is removed: a regular file is kept, and refused.
    let notes = d.join("notes.txt");
    std::fs::write(&notes, "notes\n").unwrap();
    let o = run(cmd("ipclisten").arg(&notes).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!("ipclisten: fatal: unable to bind {}: file exists and is not a socket\n", notes.display())
    );
    assert_eq!(std::fs::read(&notes).unwrap(), b"notes\n");

    // -D: an existing path is not removed; -d (the default) removes it.
    let l = Listen::start(&[], &["sleep", "1000"]);
    let o = run(cmd("ipclisten").arg("-D").arg(&l.sock).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipclisten: fatal: unable to bind {}: address already in use\n", l.sock.display()));
    // Between the removal and the bind, there is no file.
    let file = || std::fs::metadata(&l.sock).ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let before = file();
    let again = Server::start(cmd("ipclisten").args(["-d", "-b", "5"]).arg(&l.sock).args(["sleep", "1000"]), &l.sock);
    assert!(wait_until(10, || file().is_some_and(|f| Some(f) != before)), "the old socket file was not replaced");
    for p in descendants(again.pid()) {
        kill(p, 9);
    }
}

/// Each instance has the listening socket, blocking, on descriptors 0
/// and 1 and on no other, stderr as ipclisten's, and the environment
/// ipclisten was given: it sets no variable. The socket file is 0777.
#[test]
fn instances_get_the_socket_on_0_and_1_and_nothing_else() {
    let l = Listen::start_with(&["-c", "2"], &["sleep", "1000"], |c| {
        c.env("LISTEN_TEST", "kept").env_remove("PROTO");
    });
    let socket = format!("socket:[{}]", listening_inode(&l.sock).unwrap());
    for pid in l.instances(2, "sleep") {
        assert_eq!(fd_of(pid, 0), socket);
        assert_eq!(fd_of(pid, 1), socket);
        assert_eq!(fd_of(pid, 2), l.log.display().to_string());
        let others: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !["0", "1", "2"].contains(&n.as_str()))
            .filter(|n| fd_of(pid, n.parse().unwrap()) == socket)
            .collect();
        assert!(others.is_empty(), "the socket is also on {others:?}");
        let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/0")).unwrap();
        let flags = flags.lines().find_map(|l| l.strip_prefix("flags:")).unwrap().trim();
        assert_eq!(u32::from_str_radix(flags, 8).unwrap() & 0o4000, 0, "O_NONBLOCK set: {flags}");
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        assert!(vars.contains(&&b"LISTEN_TEST=kept"[..]));
        assert!(!vars.iter().any(|v| v.starts_with(b"PROTO=") || v.starts_with(b"IPC")), "{vars:?}");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&l.sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o777);
}

/// -c instances run; one that exits is started again, with the
/// original's log lines.
#[test]
fn instances_are_kept_running_and_restarted() {
    let l = Listen::start(&["-v", "-c", "3"], &["sleep", "1000"]);
    let first = l.instances(3, "sleep");
    assert_eq!(
        l.log_lines(4),
        "ipclisten: status: 0/3\nipclisten: status: 1/3\nipclisten: status: 2/3\nipclisten: status: 3/3\n"
    );
    kill(first[1], 9);
    // Its end first: until it is reaped, the killed one is still a child.
    assert!(wait_until(10, || l.log().contains(&format!("end {} status 9\n", first[1]))), "{}", l.log());
    let now = l.instances(3, "sleep");
    assert!(!now.contains(&first[1]) && now.contains(&first[0]) && now.contains(&first[2]), "{first:?} then {now:?}");
    let after = l.log_lines(7).lines().skip(4).map(|l| format!("{l}\n")).collect::<String>();
    let end = format!("ipclisten: end {} status 9\nipclisten: status: 2/3\nipclisten: status: 3/3\n", first[1]);
    assert_eq!(after, end);
    // An instance that exits with a code is restarted too.
    kill(now[0], 15);
    assert!(wait_until(10, || l.log().contains(&format!("end {} status 15\n", now[0]))), "{}", l.log());
    l.instances(3, "sleep");
    assert!(alive(l.server.pid()));
}

/// An instance that cannot start is not forked in a tight loop: one that
/// lived less than a second is started again a second after it started.
/// A failed exec says so with the original's words (and exits 111).
#[test]
fn failing_instances_are_restarted_once_a_second() {
    let started = Instant::now();
    let l = Listen::start(&["-v"], &["/nonexistent/prog"]);
    assert!(wait_until(10, || l.log().matches(" end ").count() >= 3), "{}", l.log());
    let elapsed = started.elapsed().as_secs_f64();
    assert!(elapsed >= 1.8, "3 starts in {elapsed} s");
    let log = l.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[..2], ["ipclisten: status: 0/1", "ipclisten: status: 1/1"]);
    assert_eq!(
        lines[2],
        "ipclisten: warning: dropping connection, unable to run /nonexistent/prog: no such file or directory"
    );
    assert!(lines[3].starts_with("ipclisten: end ") && lines[3].ends_with(" status 28416"), "{log}");
    assert_eq!(lines[4..6], ["ipclisten: status: 0/1", "ipclisten: status: 1/1"]);
    assert!(log.matches(" end ").count() <= 4, "{log}");
}

/// SIGTERM stops the instances and exits 0 once they have; SIGHUP starts
/// them all again, and ipclisten goes on.
#[test]
fn sigterm_stops_the_instances_and_sighup_restarts_them() {
    let mut l = Listen::start(&["-c", "2"], &["sleep", "1000"]);
    let first = l.instances(2, "sleep");
    l.server.signal(1);
    assert!(wait_until(10, || first.iter().all(|&p| !alive(p))));
    let second = l.instances(2, "sleep");
    assert!(second.iter().all(|p| !first.contains(p)));
    l.server.signal(15);
    let status = l.server.wait(10).expect("ipclisten did not exit on SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(second.iter().all(|&p| !alive(p)), "instances left running");
    assert!(!socket_ready(&l.sock));
}

/// Killed (SIGKILL, where it cannot stop them), ipclisten leaves no
/// instance serving on unsupervised: each gets SIGTERM.
#[test]
fn instances_do_not_outlive_ipclisten() {
    let l = Listen::start(&["-c", "2"], &["sleep", "1000"]);
    let instances = l.instances(2, "sleep");
    l.server.signal(9);
    assert!(wait_until(10, || instances.iter().all(|&p| !alive(p))), "{instances:?} outlived ipclisten");
}

/// Started with `&` from a script, ipclisten survives SIGINT, and its
/// instances start with SIGINT and SIGQUIT still ignored and nothing
/// blocked; a launcher that ignores SIGPIPE does not pass that on.
#[test]
fn instances_keep_what_the_launcher_ignored() {
    for launcher in Launcher::available(&[Launcher::Background, Launcher::IgnoresPipe]) {
        let ignored = if launcher == Launcher::Background { "INT,QUIT" } else { "-" };
        let d = TempDir::new();
        let sock = d.join("s");
        let argv = [bin("ipclisten"), sock.clone(), "sleep".into(), "1000".into()];
        let srv = launcher.start(&argv, &d.join("log"));
        let mut instance = None;
        assert!(wait_until(10, || {
            instance = children(srv.pid).0.into_iter().find(|&p| comm_of(p) == "sleep");
            instance.is_some()
        }));
        let instance = instance.unwrap();
        assert_eq!(process_signals(instance), (ignored.to_string(), "-".to_string()), "{launcher:?}");
        if launcher == Launcher::Background {
            kill(srv.pid, 2);
            kill(instance, 2);
            assert!(alive(srv.pid) && alive(instance), "SIGINT ended them");
        }
    }
}

/// As root: the socket is bound first (in a directory only root may
/// write), then privileges are dropped: instances run as -u and -g, with
/// -g as their only group; -u alone takes the user's primary gid; -U
/// takes $UID and $GID.
#[test]
fn privileges_are_dropped_after_binding() {
    if !need_root() {
        return;
    }
    let Some((_, uid, gid)) = by_uid(NOBODY) else {
        skip("no user nobody");
        return;
    };
    let ids = |l: &Listen| {
        let pid = l.instances(1, "sleep")[0];
        (status_field(pid, "Uid:"), status_field(pid, "Gid:"), status_field(pid, "Groups:"))
    };
    let l = Listen::start(&["-u", "65534", "-g", "65533"], &["sleep", "1000"]);
    let all = |n: u32| format!("{n} {n} {n} {n}");
    assert_eq!(ids(&l), (all(65534), all(65533), "65533".to_string()));
    // Bound as root, in a directory where nobody may create nothing.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&l.sock).unwrap());
    assert_eq!(owner, 0, "bound before the drop");
    drop(l);
    let l = Listen::start(&["-u", &uid.to_string()], &["sleep", "1000"]);
    assert_eq!(ids(&l), (all(uid), all(gid), gid.to_string()));
    drop(l);
    let l = Listen::start_with(&["-U"], &["sleep", "1000"], |c| {
        c.env("UID", "65534").env("GID", "100").env_remove("GIDLIST");
    });
    assert_eq!(ids(&l), (all(65534), all(100), "100".to_string()));
}

/// ipclisten hands ipcserverd what a socket binder would: ipcserverd
/// serves each connection as usual, with the socket's path.
#[test]
fn ipcserverd_serves_under_ipclisten() {
    let l = Listen::start(
        &["-v"],
        &[bin("ipcserverd").to_str().unwrap(), "-v2", "sh", "-c", "echo \"$PROTO $IPCLOCALPATH\""],
    );
    let expected = format!("IPC {}\n", l.sock.display());
    for _ in 0..3 {
        assert_eq!(String::from_utf8(served(&l.sock, b"").unwrap()).unwrap(), expected);
    }
    assert!(wait_until(10, || l.log().matches("ipcserverd: end ").count() == 3), "{}", l.log());
    let log = l.log();
    assert!(log.starts_with("ipclisten: status: 0/1\nipclisten: status: 1/1\nipcserverd: status: 0/40\n"), "{log}");
}
