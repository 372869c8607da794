//! ipcaccept (ucspi-ipc 0.70): accepts on the listening socket it finds
//! on descriptor 0, one connection at a time, with the UCSPI environment,
//! banner, rules and log lines; `-f` takes turns through a lock file.
//! Here the test binds the socket (blocking, as ipclisten makes it, or
//! not, as socket binders do), or runs it under ipclisten, our socket
//! binder or s6's.
use crate::common;
use common::launch::{mask, served, Launcher};
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const USAGE: &str = "ipcaccept: usage: ipcaccept [ -XShHoOdDqQvpP ] [ -x rules.cdb ] [ -B banner ] \
[ -l localname ] [ -f lockfile ] program\n";

/// An ipcaccept we started on DIR/s, with its stderr in DIR/log.
struct Accept {
    server: Server,
    sock: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl Accept {
    /// `ipcaccept ARGS` with a socket the test bound on its stdin
    /// (`nonblocking` as a socket binder makes it).
    fn start(args: &[&str], nonblocking: bool) -> Accept {
        Accept::start_with(args, nonblocking, |_, _| {})
    }

    fn start_with(args: &[&str], nonblocking: bool, adjust: impl FnOnce(&mut Command, &Path)) -> Accept {
        let dir = TempDir::new();
        let sock = dir.join("s");
        let log = dir.join("log");
        let listener = UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(nonblocking).unwrap();
        let mut c = cmd("ipcaccept");
        c.args(args).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        adjust(&mut c, dir.path());
        let child = c.stdin(Stdio::from(std::os::fd::OwnedFd::from(listener))).spawn().unwrap();
        Accept { server: Server { child }, sock, log, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Waits until the log has `n` lines; returns them with the pids
    /// named P1, P2... in order of appearance.
    fn log_lines(&self, n: usize) -> String {
        assert!(wait_until(10, || self.log().lines().count() >= n), "fewer than {n} lines:\n{}", self.log());
        pids_named(&self.log())
    }

    fn fetch(&self) -> String {
        String::from_utf8(fetch(&self.sock).unwrap()).unwrap()
    }
}

impl Drop for Accept {
    fn drop(&mut self) {
        for p in descendants(self.server.pid()) {
            kill(p, 9);
        }
    }
}

/// `log` with the numbers after `pid `, `ok `, `deny `, `end ` replaced
/// by P1, P2..., and our own ids by U,G.
fn pids_named(log: &str) -> String {
    let mut names: Vec<String> = Vec::new();
    let (uid, gid) = own_ids();
    let mut out = String::new();
    for line in log.lines() {
        let mut words: Vec<String> = line.split(' ').map(String::from).collect();
        for i in 1..words.len() {
            if ["pid", "ok", "deny", "end"].contains(&words[i - 1].as_str()) && words[i].parse::<u32>().is_ok() {
                let at = names.iter().position(|n| *n == words[i]).unwrap_or_else(|| {
                    names.push(words[i].clone());
                    names.len() - 1
                });
                words[i] = format!("P{}", at + 1);
            }
        }
        out.push_str(&words.join(" ").replace(&format!(":{uid},{gid}"), ":U,G"));
        out.push('\n');
    }
    out
}

#[test]
fn usage_and_option_errors() {
    let cases: [(&[&str], &str); 9] = [
        (&[], ""),
        // As the original: -q is for connections, not for a usage error.
        (&["-q"], ""),
        (&["-v"], ""),
        (&["-z", "true"], "ipcaccept: illegal option -- z\n"),
        (&["-q", "-z", "true"], "ipcaccept: illegal option -- z\n"),
        (&["-c", "1", "true"], "ipcaccept: illegal option -- c\n"),
        (&["-x"], "ipcaccept: option requires an argument -- x\n"),
        (&["-B"], "ipcaccept: option requires an argument -- B\n"),
        (&["-f"], "ipcaccept: option requires an argument -- f\n"),
    ];
    for (args, message) in cases {
        let o = run(cmd("ipcaccept").args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), format!("{message}{USAGE}"), "{args:?}");
    }
}

/// The original spins on a descriptor 0 it cannot accept on; ours says
/// so, even under -q, as it says every set-up error.
#[test]
fn stdin_must_be_a_listening_socket() {
    // Not a socket (a pipe): s6-ipcserverd's words, as ipcserverd's.
    for args in [&["true"][..], &["-q", "true"]] {
        let o = run(cmd("ipcaccept").args(args), 10);
        let expected = "ipcaccept: fatal: stdin is not a socket\n";
        assert_eq!((o.status.code(), stderr(&o)), (Some(100), expected.to_string()), "{args:?}");
    }
    let expected = "ipcaccept: fatal: standard input is not a listening Unix stream socket\n";
    let (a, _b) = UnixStream::pair().unwrap();
    let o = run_on(cmd("ipcaccept").arg("true"), a, 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), expected.to_string()));
}

/// PROTO, IPCLOCALPATH, IPCREMOTEPATH, IPCREMOTEEUID, IPCREMOTEEGID, as
/// the original sets them, then ours, IPCREMOTEPID and IPCREMOTEGIDLIST
/// (the client is this process), whether the socket blocks or not; no
/// IPCCONNNUM (it serves one connection at a time); the values of these
/// variables in its own environment are not passed on.
#[test]
fn sets_the_ucspi_environment() {
    for nonblocking in [false, true] {
        let a = Accept::start_with(&["env"], nonblocking, |c, _| {
            c.env("IPCCONNNUM", "5").env("IPCREMOTEEUID", "7").env("PROTO", "TCP").env("KEPT", "yes");
            c.env("IPCREMOTEPID", "1").env("IPCREMOTEGIDLIST", "1,2");
        });
        let out = a.fetch();
        let (uid, gid) = own_ids();
        let server_vars: Vec<(String, String)> =
            env_lines(out.as_bytes()).into_iter().filter(|(n, _)| n == "PROTO" || n.starts_with("IPC")).collect();
        let expected = [
            ("PROTO", "IPC".to_string()),
            ("IPCLOCALPATH", a.sock.display().to_string()),
            ("IPCREMOTEPATH", String::new()),
            ("IPCREMOTEEUID", uid.to_string()),
            ("IPCREMOTEEGID", gid.to_string()),
            ("IPCREMOTEPID", std::process::id().to_string()),
            ("IPCREMOTEGIDLIST", own_groups()),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
        assert_eq!(server_vars, expected, "nonblocking {nonblocking}");
        assert_eq!(env_value(out.as_bytes(), "KEPT").as_deref(), Some("yes"));
        // A client bound to a path.
        let me = a.dir.join("me");
        let o = run(cmd("ipcclient").arg("-p").arg(&me).arg(&a.sock).args(["sh", "-c", "cat <&6"]), 10);
        assert_eq!(env_value(&o.stdout, "IPCREMOTEPATH"), Some(me.display().to_string()));
    }
}

/// With -v, the original's lines for each connection, in this order;
/// nothing at the default verbosity or with -q.
#[test]
fn log_lines_in_order() {
    let a = Accept::start(&["-v", "sh", "-c", "echo hello; exit 3"], false);
    assert_eq!(a.fetch(), "hello\n");
    let me = a.dir.join("client");
    run(cmd("ipcclient").arg("-p").arg(&me).arg(&a.sock).args(["sh", "-c", "cat <&6"]), 10);
    let sock = a.sock.display();
    let expected = format!(
        "ipcaccept: pid P1 from \nipcaccept: ok P1 {sock} :U,G\nipcaccept: end P1 status 768\n\
         ipcaccept: pid P2 from {me}\nipcaccept: ok P2 {sock} {me}:U,G\nipcaccept: end P2 status 768\n",
        me = me.display()
    );
    assert_eq!(a.log_lines(6), expected);
    // A second connection is accepted once the first one's handler has
    // been collected: whatever the first would log is written by then.
    for args in [&["echo", "hello"][..], &["-q", "-x", "/nonexistent.cdb", "echo", "hello"]] {
        let a = Accept::start(args, false);
        let quiet = args[0] == "-q";
        for _ in 0..2 {
            assert_eq!(a.fetch(), if quiet { "" } else { "hello\n" }, "{args:?}");
        }
        assert_eq!(a.log(), "", "{args:?}");
    }
}

/// The banner comes first, then the program's output; a denied client
/// gets the banner and nothing else.
#[test]
fn banner_then_rules() {
    let (allowing, denying) = (TempDir::new(), TempDir::new());
    let (uid, gid) = own_ids();
    let allow = rules(allowing.path(), &format!("{uid}.{gid}:allow,GREETING=\"hi\"\n"));
    let a =
        Accept::start(&["-v", "-B", "banner\n", "-x", allow.to_str().unwrap(), "sh", "-c", "echo $GREETING"], false);
    assert_eq!(a.fetch(), "banner\nhi\n");
    let deny = rules(denying.path(), &format!("{uid}:deny\n"));
    let b = Accept::start(&["-v", "-B", "banner\n", "-x", deny.to_str().unwrap(), "echo", "never"], true);
    assert_eq!(b.fetch(), "banner\n");
    let sock = b.sock.display();
    let expected = format!("ipcaccept: pid P1 from \nipcaccept: deny P1 {sock} :U,G\nipcaccept: end P1 status 25600\n");
    assert_eq!(b.log_lines(3), expected);
}

/// A missing rules file drops the connection with the original's
/// warning, unless -X; -l names the local side, in the environment and
/// the log.
#[test]
fn missing_rules_and_local_name() {
    let a = Accept::start(&["-v", "-x", "/nonexistent/rules.cdb", "echo", "never"], false);
    assert_eq!(a.fetch(), "");
    let expected = "ipcaccept: pid P1 from \nipcaccept: warning: dropping connection, unable to read \
                    /nonexistent/rules.cdb: no such file or directory\nipcaccept: end P1 status 28416\n";
    assert_eq!(a.log_lines(3), expected);
    let a =
        Accept::start(&["-v", "-X", "-x", "/nonexistent/rules.cdb", "-l", "name", "printenv", "IPCLOCALPATH"], false);
    assert_eq!(a.fetch(), "name\n");
    assert_eq!(a.log_lines(3), "ipcaccept: pid P1 from \nipcaccept: ok P1 name :U,G\nipcaccept: end P1 status 0\n");
}

/// -P: no credentials looked up (the log and the rules use our own ids,
/// as the original); a later -p turns them back on.
#[test]
fn no_credentials_with_capital_p() {
    let env = "env | grep ^IPCREMOTEE | sort";
    let a = Accept::start(&["-v", "-P", "sh", "-c", env], false);
    assert_eq!(a.fetch(), "");
    assert!(a.log_lines(3).contains(" :U,G\n"), "{}", a.log());
    let a = Accept::start(&["-Pp", "sh", "-c", env], false);
    let (uid, gid) = own_ids();
    assert_eq!(a.fetch(), format!("IPCREMOTEEGID={gid}\nIPCREMOTEEUID={uid}\n"));
}

/// Listed in the original's usage line and refused by its getopt: ours
/// accepts them, without effect.
#[test]
fn listed_options_are_accepted() {
    let a = Accept::start(&["-hHoOdD", "echo", "served"], false);
    assert_eq!(a.fetch(), "served\n");
}

/// One connection at a time: the next one is accepted only once the
/// handler of the last has exited.
#[test]
fn one_connection_at_a_time() {
    let a = Accept::start(&["-v", "sh", "-c", "echo started; read line; echo \"got $line\""], false);
    let mut first = UnixStream::connect(&a.sock).unwrap();
    let mut reader = BufReader::new(first.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    // Queued in the backlog while the first handler runs.
    let sock = a.sock.clone();
    let second = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.write_all(b"two\n").unwrap();
        let mut v = String::new();
        s.read_to_string(&mut v).unwrap();
        v
    });
    first.write_all(b"one\n").unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got one\n");
    assert_eq!(second.join().unwrap(), "started\ngot two\n");
    let log: Vec<String> = a.log_lines(6).lines().map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" ")).collect();
    let order = ["ipcaccept: pid P1", "ipcaccept: ok P1", "ipcaccept: end P1", "ipcaccept: pid P2"];
    assert_eq!(log[..4], order);
}

/// Whether `pid` waits for a flock (a blocked request in /proc/locks).
fn waits_for_a_lock(pid: i32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|l| l.contains("-> FLOCK") && l.split_whitespace().nth(5) == Some(&pid.to_string()))
}

/// -f: the lock file is created (mode 0600, the original's); a connection
/// is accepted only while ipcaccept holds the lock. A lock file that
/// cannot be opened is fatal, even under -q.
#[test]
fn accepts_under_the_lock() {
    if !have("flock") {
        return;
    }
    let d = TempDir::new();
    let l = UnixListener::bind(d.join("s")).unwrap();
    let o = run_on(cmd("ipcaccept").args(["-q", "-f"]).arg(d.join("no/lock")).arg("true"), l, 10);
    let message =
        format!("ipcaccept: fatal: unable to open {}: no such file or directory\n", d.join("no/lock").display());
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), message));

    let a = Accept::start_with(&["-v", "-f", "lock", "echo", "served"], false, |c, dir| {
        c.current_dir(dir);
    });
    let lock = a.dir.join("lock");
    assert!(wait_until(10, || lock.exists()));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&lock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // Someone else holds the lock: the client waits in the backlog.
    let mut holder = Command::new("flock")
        .arg("-x")
        .arg(&lock)
        .args(["sh", "-c", "echo locked; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(holder.stdout.take().unwrap()).read_line(&mut said).unwrap();
    assert_eq!(said, "locked\n");
    let sock = a.sock.clone();
    let client = std::thread::spawn(move || fetch(&sock).unwrap());
    assert!(wait_until(10, || waits_for_a_lock(a.server.pid())), "ipcaccept never asked for the lock");
    assert_eq!(a.log(), "", "accepted without the lock");
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert_eq!(client.join().unwrap(), b"served\n");
    assert_eq!(a.fetch(), "served\n");
}

/// SIGTERM: exit 0, waiting for a connection or for a handler; a handler
/// serves on.
#[test]
fn sigterm_exits_0_and_the_handler_serves_on() {
    let mut a = Accept::start(&["true"], false);
    assert!(wait_until(10, || has_signalfd(a.server.pid())));
    a.server.signal(15);
    assert_eq!(a.server.wait(10).and_then(|s| s.code()), Some(0));

    let mut a = Accept::start(&["sh", "-c", "echo started; read line; echo \"got $line\""], true);
    let mut s = UnixStream::connect(&a.sock).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    a.server.signal(15);
    assert_eq!(a.server.wait(10).and_then(|s| s.code()), Some(0));
    s.write_all(b"after\n").unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got after\n");
}

/// Whether `pid` has made its signalfd (it has set itself up).
fn has_signalfd(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|mut fds| {
        fds.any(|e| std::fs::read_link(e.unwrap().path()).is_ok_and(|t| t.to_string_lossy() == "anon_inode:[signalfd]"))
    })
}

/// A server chain as ucspi-ipc 0.70 runs it: several ipcaccept instances
/// under one ipclisten, taking turns through the lock file, with rules:
/// every one of many simultaneous clients is served once.
#[test]
fn under_ipclisten_with_a_lock_and_rules() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let cdb = rules(d.path(), &format!("{uid}.{gid}:allow,WHO=\"friend\"\n:deny\n"));
    let sock = d.join("s");
    let log = d.join("log");
    let lock = d.join("lock");
    let server = Server::start(
        cmd("ipclisten")
            .args(["-v", "-c", "4"])
            .arg(&sock)
            .arg(bin("ipcaccept"))
            .args(["-v", "-f"])
            .arg(&lock)
            .arg("-x")
            .arg(&cdb)
            .args(["sh", "-c", "echo \"$WHO $IPCLOCALPATH\""])
            .stderr(std::fs::File::create(&log).unwrap()),
        &sock,
    );
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || served(&sock, b"").unwrap())
        })
        .collect();
    let expected = format!("friend {}\n", sock.display());
    for c in clients {
        assert_eq!(String::from_utf8(c.join().unwrap()).unwrap(), expected);
    }
    let read = || std::fs::read_to_string(&log).unwrap();
    assert!(wait_until(10, || read().matches("ipcaccept: end ").count() == 12), "{}", read());
    assert_eq!(read().matches("ipcaccept: ok ").count(), 12);
    assert!(read().starts_with("ipclisten: status: 0/4\nipclisten: status: 1/4\n"), "{}", read());
    for p in descendants(server.pid()) {
        kill(p, 9);
    }
}

/// After a socket binder (ours, or s6's), whose socket does not block:
/// served as under ipclisten, and no spinning while idle (the original
/// loops on EAGAIN there).
#[test]
fn after_socket_binders() {
    let mut binders = vec![bin("ipcserver-socketbinder")];
    if let Some(s6) = which("s6-ipcserver-socketbinder") {
        binders.push(s6);
    } else {
        skip("no s6-ipcserver-socketbinder (apt-get install s6); ours only");
    }
    for binder in binders {
        let d = TempDir::new();
        let sock = d.join("s");
        let server = Server::start(
            Command::new(&binder).arg(&sock).arg(bin("ipcaccept")).args(["sh", "-c", "echo $IPCLOCALPATH"]),
            &sock,
        );
        for _ in 0..3 {
            assert_eq!(fetch(&sock).unwrap(), format!("{}\n", sock.display()).into_bytes(), "{binder:?}");
        }
        let before = cpu_ticks(server.pid());
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(cpu_ticks(server.pid()) - before < 5, "{binder:?}: ipcaccept spins while idle");
    }
}

/// Started with `&` from a script, or by a launcher that ignores
/// SIGPIPE: handlers start with what the launcher ignored and the
/// servers do not use still ignored (SIGINT and SIGQUIT), the signals
/// they use at default, and an empty mask.
#[test]
fn handlers_keep_what_the_launcher_ignored() {
    for launcher in Launcher::available(&[Launcher::Background, Launcher::IgnoresPipe]) {
        let ignored = if launcher == Launcher::Background { "INT,QUIT" } else { "-" };
        let d = TempDir::new();
        let sock = d.join("s");
        let argv = [bin("ipclisten"), sock.clone(), bin("ipcaccept"), "cat".into(), "/proc/self/status".into()];
        let _srv = launcher.start(&argv, &d.join("log"));
        let status = String::from_utf8(served(&sock, b"").expect("never served")).unwrap();
        assert_eq!((mask(&status, "SigIgn:"), mask(&status, "SigBlk:")), (ignored.to_string(), "-".to_string()));
    }
}
