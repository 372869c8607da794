//! ipcserverd on its own: the test binds the socket and hands it over on
//! descriptor 0, as ipcserver-socketbinder (or s6's) would.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const USAGE: &str =
    "ipcserverd: usage: ipcserverd [ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] [ -C localmaxconn ] prog...\n";

/// Binds `sock` and spawns `c` with the listening socket as its stdin,
/// as a socket binder would hand it over.
fn spawn_on(sock: &Path, c: &mut Command) -> Server {
    let listener = UnixListener::bind(sock).unwrap();
    let child = c.stdin(Stdio::from(std::os::fd::OwnedFd::from(listener))).spawn().unwrap();
    Server { child }
}

/// A running ipcserverd on a fresh socket, with its stderr in a file.
struct Daemon {
    server: Server,
    sock: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Daemon {
    fn start(args: &[&str]) -> Daemon {
        let dir = TempDir::new();
        let sock = dir.join("s");
        let log = dir.join("log");
        // The socket listens once bound: no need to probe it (a probe would
        // be a connection of its own).
        let server = spawn_on(
            &sock,
            cmd("ipcserverd").args(args).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()),
        );
        Daemon { server, sock, log, _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn fetch(&self) -> String {
        String::from_utf8(fetch(&self.sock).unwrap()).unwrap()
    }

    fn dir(&self) -> &Path {
        self.sock.parent().unwrap()
    }
}

#[test]
fn usage_errors() {
    for args in [
        &[][..],
        &["-c", "0", "true"],
        &["-c", "x", "true"],
        &["-C", "0", "true"],
        &["-z", "true"],
        &["-c", "16385", "true"],
        &["-c"],
    ] {
        let o = run(cmd("ipcserverd").args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), USAGE, "{args:?}");
    }
}

#[test]
fn stdin_must_be_a_listening_socket() {
    let expected = "ipcserverd: fatal: standard input is not a listening Unix stream socket\n";
    let o = run(cmd("ipcserverd").arg("true"), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), expected);
    // A connected (not listening) Unix socket is refused too.
    let (a, _b) = UnixStream::pair().unwrap();
    let o = wait_output(
        cmd("ipcserverd")
            .arg("true")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(a)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        10,
    );
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), expected);
}

#[test]
fn sets_the_ucspi_environment_exactly() {
    let d = Daemon::start(&["env"]);
    let out = d.fetch();
    let env = env_lines(out.as_bytes());
    let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("PROTO").as_deref(), Some("IPC"));
    assert_eq!(get("IPCLOCALPATH"), Some(d.sock.display().to_string()));
    assert_eq!(get("IPCREMOTEPATH").as_deref(), Some(""));
    let uid = unsafe_ids();
    assert_eq!(get("IPCREMOTEEUID"), Some(uid.0.to_string()));
    assert_eq!(get("IPCREMOTEEGID"), Some(uid.1.to_string()));
    assert_eq!(get("IPCCONNNUM").as_deref(), Some("0"));

    // A client bound to a path shows up as IPCREMOTEPATH.
    let client_path = d.dir().join("client");
    let out = python_connect_bound(&d.sock, &client_path);
    assert_eq!(env_value(out.as_bytes(), "IPCREMOTEPATH"), Some(client_path.display().to_string()));
}

/// Connects from a socket bound to `local` (std cannot bind a client) and
/// reads to EOF.
fn python_connect_bound(sock: &Path, local: &Path) -> String {
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.bind({:?})\ns.connect({:?})\n\
         d=b''\nwhile True:\n  b=s.recv(65536)\n  if not b: break\n  d+=b\nsys.stdout.buffer.write(d)\n",
        local.display().to_string(),
        sock.display().to_string()
    );
    let o = run(Command::new("python3").arg("-c").arg(script), 20);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn unsafe_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        // Real, effective, saved, fs: the effective one is the second.
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

#[test]
fn no_credentials_with_capital_p_and_inherited_values_are_dropped() {
    let dir = TempDir::new();
    let sock = dir.join("s");
    let _server = spawn_on(
        &sock,
        cmd("ipcserverd")
            .args(["-P", "env"])
            .env("IPCREMOTEEUID", "4242")
            .env("IPCREMOTEEGID", "4242")
            .env("IPCCONNNUM", "99")
            .env("PROTO", "TCP")
            .stdout(Stdio::null()),
    );
    let out = fetch(&sock).unwrap();
    assert_eq!(env_value(&out, "IPCREMOTEEUID"), None);
    assert_eq!(env_value(&out, "IPCREMOTEEGID"), None);
    assert_eq!(env_value(&out, "IPCCONNNUM").as_deref(), Some("0"));
    assert_eq!(env_value(&out, "PROTO").as_deref(), Some("IPC"));
}

#[test]
fn handler_gets_only_0_1_2_default_sigpipe_and_no_blocked_signals() {
    // The handler is exec'd directly (no shell) so its descriptors are ours.
    let d = Daemon::start(&["ls", "/proc/self/fd"]);
    let fds: Vec<String> = d.fetch().lines().map(String::from).collect();
    // ls itself opens one descriptor (3) to read the directory; whatever
    // the test harness leaks to its own children is not ours to close.
    let o = run(Command::new("ls").arg("/proc/self/fd"), 10);
    let inherited: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(fds, inherited);
    assert!(fds.iter().any(|f| f == "3") && fds.len() >= 4);

    let d = Daemon::start(&["cat", "/proc/self/status"]);
    let status = d.fetch();
    let mask = |name: &str| {
        let l = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "no signal blocked in the handler");
    assert_eq!(mask("SigIgn:") & (1 << (13 - 1)), 0, "SIGPIPE not ignored");
}

#[test]
fn readiness_line_on_stdout_then_closed() {
    let dir = TempDir::new();
    let sock = dir.join("s");
    let mut server =
        spawn_on(&sock, cmd("ipcserverd").args(["-1", "true"]).stdout(Stdio::piped()).stderr(Stdio::null()));
    let mut out = server.child.stdout.take().unwrap();
    // read_to_string returns only when the daemon closed its stdout, while
    // it keeps running.
    let mut s = String::new();
    out.read_to_string(&mut s).unwrap();
    assert_eq!(s, format!("{}\n", sock.display()));
    assert!(socket_ready(&sock));

    // Without -1, stdout is closed at start and nothing is written.
    let sock2 = dir.join("s2");
    let mut server2 = spawn_on(&sock2, cmd("ipcserverd").arg("true").stdout(Stdio::piped()).stderr(Stdio::null()));
    let mut out = server2.child.stdout.take().unwrap();
    let mut s = String::new();
    out.read_to_string(&mut s).unwrap();
    assert_eq!(s, "");
}

#[test]
fn verbose_status_lines() {
    let d = Daemon::start(&["-v2", "-c", "7", "sh", "-c", "echo hi; exit 100"]);
    assert_eq!(d.fetch(), "hi\n");
    let client_path = d.dir().join("cl");
    assert_eq!(python_connect_bound(&d.sock, &client_path), "hi\n");
    assert!(wait_until(10, || d.log().matches("status: 0/7").count() == 3));
    let log = d.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 9, "{log}");
    assert_eq!(lines[0], "ipcserverd: status: 0/7");
    assert_eq!(lines[1], "ipcserverd: status: 1/7");
    let pid = lines[2].strip_prefix("ipcserverd: pid ").unwrap().strip_suffix(" from ").unwrap();
    assert_eq!(lines[3], format!("ipcserverd: end {pid} status 25600"));
    assert_eq!(lines[4], "ipcserverd: status: 0/7");
    // Remote paths are sanitised in the log (':' and '%' become '?').
    let pid2 = lines[6].strip_prefix("ipcserverd: pid ").unwrap();
    assert!(pid2.ends_with(&format!(" from {}", client_path.display())), "{}", lines[6]);
}

#[test]
fn sanitises_remote_paths_in_log_lines() {
    let d = Daemon::start(&["-v2", "true"]);
    let client_path = d.dir().join("a:b%c d");
    python_connect_bound(&d.sock, &client_path);
    assert!(wait_until(10, || d.log().contains(" from ")));
    let shown = client_path.display().to_string().replace([':', '%', ' '], "?");
    assert!(d.log().contains(&format!(" from {shown}\n")), "{}", d.log());
}

#[test]
fn quiet_daemon_logs_nothing() {
    let d = Daemon::start(&["-v0", "true"]);
    d.fetch();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.log(), "");
}

#[test]
fn missing_program_is_reported_by_the_child_and_the_server_goes_on() {
    let d = Daemon::start(&["/nonexistent/prog"]);
    assert_eq!(d.fetch(), "");
    assert!(wait_until(10, || d.log().contains("unable to run")));
    assert_eq!(
        d.log().lines().next().unwrap(),
        "ipcserverd: fatal: unable to run /nonexistent/prog: no such file or directory"
    );
    assert_eq!(d.fetch(), "");
    assert!(d.server.child.id() > 0 && alive(d.server.pid()));
}

/// The daemon's children as the kernel lists them.
fn child_pids(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn never_more_than_maxconn_children_under_a_burst_and_all_served() {
    // Each handler appends "+" when it starts and "-" before it ends
    // (O_APPEND writes of one line are atomic), so at every point of the
    // file the running sum counts handlers that were all alive at once.
    let d = Daemon::start(&[
        "-c",
        "5",
        "sh",
        "-c",
        "echo + >>\"$IPCLOCALPATH.live\"; echo ok; echo - >>\"$IPCLOCALPATH.live\"",
    ]);
    let sock = d.sock.clone();
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || (0..100).filter(|_| fetch(&sock).unwrap() == b"ok\n").count())
        })
        .collect();
    let served: usize = clients.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(served, 2000);
    let live = d.dir().join("s.live");
    assert!(wait_until(10, || std::fs::read_to_string(&live).unwrap().lines().count() == 4000));
    let (mut now, mut max) = (0i32, 0i32);
    for l in std::fs::read_to_string(&live).unwrap().lines() {
        now += if l == "+" { 1 } else { -1 };
        max = max.max(now);
    }
    assert_eq!(now, 0);
    assert!(max <= 5, "{max} handlers alive at once with -c 5");
    assert!(max >= 2, "the burst should have run handlers concurrently (max {max})");
    // No zombies accumulate: everything is reaped.
    let pid = d.server.pid();
    assert!(wait_until(10, || children(pid).0.is_empty()), "children left: {:?}", children(pid));
}

#[test]
fn no_zombies_after_1000_connections() {
    let d = Daemon::start(&["true"]);
    for _ in 0..1000 {
        d.fetch();
    }
    assert!(wait_until(10, || children(d.server.pid()).1 == 0));
    assert!(wait_until(10, || children(d.server.pid()).0.is_empty()));
}

#[test]
fn connection_numbers_count_live_connections_of_the_same_uid() {
    // Each handler prints IPCCONNNUM, then waits for the client to close.
    let d = Daemon::start(&["-C", "2", "sh", "-c", "echo $IPCCONNNUM; exec cat >/dev/null"]);
    let open = |d: &Daemon| {
        let s = UnixStream::connect(&d.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap()).read_line(&mut line).unwrap();
        (s, line)
    };
    let (a, la) = open(&d);
    let (b, lb) = open(&d);
    assert_eq!((la.as_str(), lb.as_str()), ("0\n", "1\n"));
    // The third one from the same uid is over -C 2: closed at once.
    let (_c, lc) = open(&d);
    assert_eq!(lc, "");
    assert!(wait_until(10, || d.log().contains("local limit of 2 reached")), "{}", d.log());
    drop(a);
    // Once one is gone, a new connection is served again.
    assert!(wait_until(10, || child_pids(d.server.pid()).len() == 1));
    let (_d2, ld) = open(&d);
    assert_eq!(ld, "1\n");
    drop(b);
}

/// Starts a handler that records its pid and traps TERM into a file.
fn signal_daemon() -> (Daemon, Vec<(UnixStream, i32)>) {
    let d = Daemon::start(&[
        "sh",
        "-c",
        "trap 'echo term >> \"$IPCLOCALPATH.term.$$\"; exit 0' TERM; echo $$; while :; do sleep 0.05; done",
    ]);
    let mut conns = Vec::new();
    for _ in 0..2 {
        let s = UnixStream::connect(&d.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap()).read_line(&mut line).unwrap();
        conns.push((s, line.trim().parse().unwrap()));
    }
    (d, conns)
}

#[test]
fn sigterm_exits_and_leaves_children_running() {
    let (mut d, conns) = signal_daemon();
    d.server.signal(15);
    assert_eq!(d.server.wait(10).and_then(|s| s.code()), Some(0));
    std::thread::sleep(Duration::from_millis(200));
    for (_, pid) in &conns {
        assert!(alive(*pid), "child {pid} should keep running");
        kill(*pid, 9);
    }
}

#[test]
fn sighup_terminates_children_and_keeps_serving() {
    let (d, conns) = signal_daemon();
    d.server.signal(1);
    for (_, pid) in &conns {
        assert!(wait_until(10, || !alive(*pid)), "child {pid} still alive after HUP");
        assert!(d.dir().join(format!("s.term.{pid}")).exists(), "child {pid} got SIGTERM");
    }
    assert!(alive(d.server.pid()));
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).unwrap(), 1, "a new connection is still served");
    let pid_line = {
        let mut line = vec![b[0]];
        let mut r = BufReader::new(s.try_clone().unwrap());
        r.read_until(b'\n', &mut line).unwrap();
        String::from_utf8(line).unwrap()
    };
    kill(pid_line.trim().parse().unwrap(), 9);
    let _ = s.write_all(b"");
}

#[test]
fn sigquit_terminates_children_then_exits() {
    let (mut d, conns) = signal_daemon();
    d.server.signal(3);
    assert_eq!(d.server.wait(10).and_then(|s| s.code()), Some(0));
    for (_, pid) in &conns {
        assert!(wait_until(10, || !alive(*pid)), "child {pid} still alive after QUIT");
        assert!(d.dir().join(format!("s.term.{pid}")).exists(), "child {pid} got SIGTERM");
    }
}

#[test]
fn sigabrt_kills_children_then_exits() {
    let (mut d, conns) = signal_daemon();
    d.server.signal(6);
    assert_eq!(d.server.wait(10).and_then(|s| s.code()), Some(0));
    for (_, pid) in &conns {
        assert!(wait_until(10, || !alive(*pid)), "child {pid} still alive after ABRT");
    }
    // SIGKILL leaves no chance to run the TERM trap.
    let traps = std::fs::read_dir(d.dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("s.term."));
    assert_eq!(traps.count(), 0);
}

#[test]
fn ignored_sigchld_is_not_inherited_by_the_daemon_but_is_by_children() {
    // Started with SIGCHLD ignored, the daemon must still count children
    // down (else -c 1 would serve one connection only), and the handler
    // gets the disposition the daemon found.
    let dir = TempDir::new();
    let sock = dir.join("s");
    let _server = spawn_on(&sock, Command::new("python3")
        .arg("-c")
        .arg("import os,signal,sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])")
        .arg(bin("ipcserverd"))
        .args(["-c", "1", "grep", "SigIgn", "/proc/self/status"])
        .stdout(Stdio::null()));
    for _ in 0..3 {
        let out = String::from_utf8(fetch(&sock).unwrap()).unwrap();
        let mask = u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_ne!(mask & (1 << (17 - 1)), 0, "handler sees SIGCHLD ignored again");
    }
}
