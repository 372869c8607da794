//! The preforking server library (`ucspi_ipc::prefork`), through ipcprint
//! and the tests' own server, tests/fixtures/prefork-fixture (a crate of
//! its own, which these tests build, as a user's server would be built):
//! options, log lines, children replaced, SIGTERM and SIGHUP, the lock
//! file, access rules, what a handler leaves behind, and ipcprint's bytes
//! against the original's.
use crate::common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Builds the crate whose manifest is `manifest` (release, offline, for
/// the target these tests were built for, into `target_dir`) and returns
/// the path of its program `name`. The target directory is kept between
/// runs, so only the first build compiles the dependencies.
fn build_crate(manifest: &Path, target_dir: &Path, name: &str) -> PathBuf {
    cargo_build(manifest, &[], target_dir).join(name)
}

/// `cargo build` of `manifest`'s crate (or, with `-p NAME` in `args`, of
/// one package of its workspace) as [`build_crate`] does it; returns the
/// directory of what it built.
pub(crate) fn cargo_build(manifest: &Path, args: &[&str], target_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = env!("UCSPI_IPC_TARGET");
    let o = run(
        Command::new(cargo)
            .args(["build", "--release", "--offline", "--quiet", "--target", target])
            .args(args)
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .env_remove("RUSTFLAGS"),
        600,
    );
    assert!(o.status.success(), "{} {args:?} does not build:\n{}", manifest.display(), stderr(&o));
    target_dir.join(target).join("release")
}

/// Where the tests build their crates: beside our own release directory.
pub(crate) fn tests_target(what: &str) -> PathBuf {
    bin("ipccat").parent().unwrap().parent().unwrap().join(what)
}

/// The tests' preforking server, built once per run.
fn fixture() -> PathBuf {
    static FIXTURE: OnceLock<PathBuf> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prefork-fixture/Cargo.toml");
            build_crate(&manifest, &tests_target("fixtures"), "prefork-fixture")
        })
        .clone()
}

/// A preforking server on `DIR/s`, stderr in `DIR/log`.
pub(crate) struct Prefork {
    pub(crate) server: Server,
    dir: TempDir,
}

impl Prefork {
    pub(crate) fn start(program: &Path, opts: &[&str], args: &[&str]) -> Prefork {
        let dir = TempDir::new();
        Prefork::start_in(dir, program, opts, args)
    }

    pub(crate) fn start_in(dir: TempDir, program: &Path, opts: &[&str], args: &[&str]) -> Prefork {
        let sock = dir.join("s");
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let mut c = Command::new(program);
        // Invoked by its name, as through PATH: the name its lines start with.
        c.arg0(program.file_name().unwrap());
        c.current_dir(dir.path()).args(opts).arg(&sock).args(args).stderr(log);
        let server = Server::start(&mut c, &sock);
        // The socket listens before the children are forked: wait for
        // them, so that tests may look at them.
        let n: usize = opts.iter().position(|&o| o == "-c").map_or(40, |i| opts[i + 1].parse().unwrap());
        assert!(wait_until(10, || children(server.pid()).0.len() == n), "{n} children never started");
        Prefork { server, dir }
    }

    pub(crate) fn sock(&self) -> PathBuf {
        self.dir.join("s")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap()
    }

    /// Sends one command line and reads the answer to EOF.
    pub(crate) fn ask(&self, line: &str) -> String {
        let mut s = self.connect();
        // A dropped or denied connection may be closed before the line is
        // written: what it answered is what counts.
        let _ = s.write_all(format!("{line}\n").as_bytes());
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        String::from_utf8(v).unwrap()
    }

    pub(crate) fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(self.sock()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Waits until the log has `n` lines containing `what`.
    pub(crate) fn wait_log(&self, what: &str, n: usize) -> bool {
        wait_until(10, || self.log().matches(what).count() >= n)
    }

    /// SIGTERM, then the exit status; no child of the server is left.
    pub(crate) fn stop(&mut self) -> i32 {
        let pid = self.server.pid();
        let kids = children(pid).0;
        self.server.signal(15);
        let st = self.server.wait(20).expect("server did not exit on SIGTERM");
        for k in kids {
            assert!(!alive(k), "child {k} outlived the server");
        }
        st.code().unwrap_or(-1)
    }
}

/// A server dropped without a stop (a test that failed, or one done with
/// it) is stopped with its children.
impl Drop for Prefork {
    fn drop(&mut self) {
        stop_with_children(&mut self.server);
    }
}

#[test]
fn ipcprint_writes_the_variables_byte_for_byte() {
    let (uid, gid) = own_ids();
    let p = Prefork::start(&bin("ipcprint"), &["-c", "2"], &[]);
    let got = fetch(&p.sock()).unwrap();
    let want = format!(
        "\nPROTO=IPC\nIPCLOCALPATH={}\nIPCREMOTEPATH=\nIPCREMOTEEUID={uid}\nIPCREMOTEEGID={gid}\n",
        p.sock().display()
    );
    assert_eq!(String::from_utf8_lossy(&got), want);
}

#[test]
fn ipcprint_banner_localname_and_unset_ids() {
    let p = Prefork::start(&bin("ipcprint"), &["-c", "1", "-B", "hi\n", "-l", "name", "-P"], &[]);
    let got = fetch(&p.sock()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "hi\n\nPROTO=IPC\nIPCLOCALPATH=name\nIPCREMOTEPATH=\nIPCREMOTEEUID=unset\nIPCREMOTEEGID=unset\n"
    );
}

#[test]
fn log_lines_in_order_and_sigterm_stops_children_then_the_server() {
    let (uid, gid) = own_ids();
    let mut p = Prefork::start(&bin("ipcprint"), &["-v", "-c", "2"], &[]);
    fetch(&p.sock()).unwrap();
    assert!(p.wait_log(": done ", 1), "{}", p.log());
    let kids = children(p.server.pid()).0;
    assert_eq!(kids.len(), 2);
    assert_eq!(p.stop(), 0);
    let log = p.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(&lines[..3], ["ipcprint: status: 0/2", "ipcprint: status: 1/2", "ipcprint: status: 2/2"], "{log}");
    let pid = lines[3].strip_prefix("ipcprint: pid ").and_then(|l| l.strip_suffix(" from ")).expect(&log);
    let sock = p.sock();
    // The access line is ipcserver's, as the original's.
    assert_eq!(lines[4], format!("ipcserver: ok {pid} {} :{uid},{gid}", sock.display()));
    assert_eq!(lines[5], format!("ipcprint: done {pid}"));
    // Then each child's end (SIGTERM: status 15), the count going down.
    let rest = &lines[6..];
    assert_eq!(rest.len(), 4, "{log}");
    let mut ended: Vec<i32> = Vec::new();
    for (i, pair) in rest.chunks(2).enumerate() {
        let end = pair[0].strip_prefix("ipcprint: end ").and_then(|l| l.strip_suffix(" status 15")).expect(&log);
        ended.push(end.parse().unwrap());
        assert_eq!(pair[1], format!("ipcprint: status: {}/2", 1 - i), "{log}");
    }
    ended.sort();
    let mut kids = kids;
    kids.sort();
    assert_eq!(ended, kids);
}

#[test]
fn quiet_logs_nothing_and_default_logs_no_status() {
    for opt in ["-q", "-Q"] {
        let mut p = Prefork::start(&bin("ipcprint"), &[opt, "-c", "1"], &[]);
        fetch(&p.sock()).unwrap();
        assert_eq!(p.stop(), 0);
        assert_eq!(p.log(), "", "{opt}");
    }
}

#[test]
fn usage_errors_exit_100_before_binding() {
    let dir = TempDir::new();
    let sock = dir.join("s");
    let usage = "ipcprint: usage: ipcprint [ -1UXSdDqQvpP ] [ -c limit ] [ -C locallimit ] [ -x rules.cdb ] \
[ -B banner ] [ -g gid ] [ -u uid ] [ -G gidlist ] [ -b backlog ] [ -a perms ] [ -l localname ] [ -f lockfile ] path\n";
    let s = sock.to_str().unwrap();
    for (args, msg) in [
        (vec![], String::new()),
        // An empty path, as the original's ipcprint says it.
        (vec![""], String::new()),
        (vec!["-Z", s], "ipcprint: illegal option -- Z\n".to_string()),
        (vec!["-c", "0", s], "ipcprint: illegal value for option -c: 0 (a number from 1 to 65535)\n".into()),
    ] {
        let o = run(cmd("ipcprint").arg0("ipcprint").args(&args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), format!("{msg}{usage}"), "{args:?}");
        assert!(!sock.exists());
    }
    let o = run(&mut Command::new(fixture()), 10);
    assert_eq!(o.status.code(), Some(100));
    assert!(stderr(&o).ends_with(" path [ -e ] [ args... ]\n"), "{}", stderr(&o));
}

#[test]
fn a_child_that_exits_is_replaced_with_a_fresh_one() {
    let p = Prefork::start(&fixture(), &["-v", "-c", "1"], &[]);
    let first = p.ask("count");
    let second = p.ask("count");
    let (pid, _) = first.trim().split_once(' ').unwrap();
    assert_eq!(second.trim(), format!("{pid} 2"), "state kept across connections of one child");
    assert_eq!(p.ask("exit 3"), "bye\n");
    let third = p.ask("count");
    let (new_pid, n) = third.trim().split_once(' ').unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(n, "1");
    let log = p.log();
    assert!(log.contains(&format!("prefork-fixture: end {pid} status 768\n")), "{log}");
    let after_end = log.split(&format!("end {pid} status 768\n")).nth(1).unwrap();
    assert!(after_end.starts_with("prefork-fixture: status: 0/1\nprefork-fixture: status: 1/1\n"), "{log}");
}

#[test]
fn a_panicking_handler_costs_one_line_and_its_child() {
    let p = Prefork::start(&fixture(), &["-c", "1"], &[]);
    let before = p.ask("count");
    assert_eq!(p.ask("panic"), "");
    let after = p.ask("count");
    assert_ne!(before.split(' ').next(), after.split(' ').next());
    assert_eq!(p.log(), "prefork-fixture: fatal: internal error (panic)\n");
}

#[test]
fn sigterm_with_busy_children_waits_for_them() {
    let mut p = Prefork::start(&fixture(), &["-c", "2"], &[]);
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = p.connect();
        s.write_all(b"wait\n").unwrap();
        let mut w = [0u8; 8];
        s.read_exact(&mut w).unwrap();
        assert_eq!(&w, b"waiting\n");
        busy.push(s);
    }
    assert_eq!(p.stop(), 0);
    // The busy children were stopped: their clients see the end.
    for mut s in busy {
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).unwrap(), 0);
    }
}

#[test]
fn sighup_replaces_every_child() {
    let p = Prefork::start(&fixture(), &["-c", "2"], &[]);
    let before = children(p.server.pid()).0;
    assert_eq!(before.len(), 2);
    p.server.signal(1);
    assert!(wait_until(10, || {
        let now = children(p.server.pid()).0;
        now.len() == 2 && now.iter().all(|k| !before.contains(k))
    }));
    assert_eq!(p.ask("x"), "x\n");
}

#[test]
fn arguments_after_path_reach_the_handler() {
    let p = Prefork::start(&fixture(), &["-c", "1"], &["a", "b c"]);
    assert_eq!(p.ask("args"), "a b c\n");
}

#[test]
fn descriptors_a_handler_leaves_open_are_closed() {
    let p = Prefork::start(&fixture(), &["-c", "1"], &[]);
    let free = p.ask("fd");
    assert_eq!(p.ask("leak"), free);
    assert_eq!(p.ask("fd"), free, "the leaked descriptor was closed after its connection");
}

#[test]
fn a_child_whose_set_up_fails_stops_the_server() {
    let dir = TempDir::new();
    let sock = dir.join("s");
    let o = run(Command::new(fixture()).args(["-c", "3"]).arg(&sock).arg("-e"), 20);
    assert_eq!(o.status.code(), Some(111));
    let err = stderr(&o);
    assert!(err.contains("prefork-fixture: fatal: set-up failed, as asked\n"), "{err}");
    assert!(err.contains("prefork-fixture: fatal: a child exited before serving: stopping\n"), "{err}");
}

#[test]
fn readiness_line_once_the_children_are_started() {
    let dir = TempDir::new();
    let sock = dir.join("s");
    let mut child = Command::new(bin("ipcprint"))
        .args(["-1", "-c", "2"])
        .arg(&sock)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut line = String::new();
    out.read_to_string(&mut line).unwrap();
    assert_eq!(line, format!("{}\n", sock.display()), "a line, then stdout is closed");
    assert!(fetch(&sock).unwrap().starts_with(b"\nPROTO=IPC\n"));
    kill(child.id() as i32, 15);
    assert_eq!(wait_timeout(&mut child, 10).and_then(|s| s.code()), Some(0));
}

#[test]
fn the_lock_file_is_held_by_one_child_at_a_time() {
    let dir = TempDir::new();
    let lock = dir.join("lock");
    let p = Prefork::start_in(dir, &fixture(), &["-c", "3", "-f", lock.to_str().unwrap()], &[]);
    let meta = std::fs::metadata(&lock).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o644);
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    // Idle, one child holds the lock (and waits in accept); the other two
    // wait for it: each locks its own open file description.
    let kids = children(p.server.pid()).0;
    let locks = || -> (Vec<i32>, usize) {
        let text = std::fs::read_to_string("/proc/locks").unwrap();
        let mut holders = Vec::new();
        let mut waiters = 0;
        for l in text.lines().filter(|l| l.contains("FLOCK") && l.contains(&format!(":{inode} "))) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f[1] == "->" {
                waiters += 1;
            } else {
                holders.push(f[4].parse().unwrap());
            }
        }
        (holders, waiters)
    };
    assert!(wait_until(10, || locks().1 == 2), "{:?}", locks());
    let (holders, _) = locks();
    assert_eq!(holders.len(), 1);
    assert!(kids.contains(&holders[0]));
    for i in 0..6 {
        assert_eq!(p.ask(&format!("n{i}")), format!("n{i}\n"));
    }
}

/// Run by a user, a change of ids is refused before binding, as by
/// ipcserver; its own ids change nothing.
#[test]
fn a_change_of_ids_without_root_is_refused_before_binding() {
    if !need_root() || !have("setpriv") {
        return;
    }
    let dir = TempDir::new();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let sock = dir.join("s");
    let nobody = |opts: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin("ipcprint")).args(opts).arg(&sock);
        c
    };
    let o = run(&mut nobody(&["-u", "1", "-g", "1"]), 10);
    assert_eq!(o.status.code(), Some(100));
    // Named as run, as the original's.
    let want = format!(
        "{}: fatal: -u, -g, -G and -U need root, unless they name the server's own ids\n",
        bin("ipcprint").display()
    );
    assert_eq!(stderr(&o), want);
    assert!(!sock.exists());
    let _server = Server::start(&mut nobody(&["-u", "65534", "-g", "65534", "-c", "1"]), &sock);
    assert!(String::from_utf8_lossy(&fetch(&sock).unwrap()).contains("IPCREMOTEEUID=0"));
}

#[test]
fn an_unusable_lock_file_is_fatal_before_binding() {
    let dir = TempDir::new();
    let sock = dir.join("s");
    let o = run(cmd("ipcprint").arg0("ipcprint").args(["-f", "/nonexistent/lock"]).arg(&sock), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcprint: fatal: unable to open /nonexistent/lock: no such file or directory\n");
    assert!(!sock.exists());
}

#[test]
fn access_rules_allow_with_assignments_and_deny_after_the_banner() {
    let (uid, gid) = own_ids();
    let dir = TempDir::new();
    let cdb = rules(dir.path(), &format!("{uid}:allow,FOO=\"bar\"\n"));
    let p = Prefork::start_in(dir, &fixture(), &["-v", "-c", "1", "-x", cdb.to_str().unwrap()], &[]);
    assert_eq!(p.ask("env FOO"), "bar\n");
    assert!(p.log().contains(" :0,0\n") || p.log().contains(&format!(":{uid},{gid}\n")));

    let dir = TempDir::new();
    let cdb = rules(dir.path(), &format!("{uid}:deny\n"));
    let p = Prefork::start_in(dir, &fixture(), &["-v", "-c", "1", "-B", "banner\n", "-x", cdb.to_str().unwrap()], &[]);
    assert_eq!(p.ask("env FOO"), "banner\n");
    assert!(p.wait_log(": deny ", 1), "{}", p.log());
    assert!(!p.log().contains(": done "), "{}", p.log());
}

#[test]
fn missing_rules_drop_the_connection_unless_x_says_optional() {
    let p = Prefork::start(&fixture(), &["-c", "1", "-x", "missing.cdb"], &[]);
    assert_eq!(p.ask("x"), "");
    assert_eq!(
        p.log(),
        "prefork-fixture: warning: dropping connection, unable to read missing.cdb: no such file or directory\n"
    );
    assert_eq!(children(p.server.pid()).0.len(), 1, "the child serves on");
    let p = Prefork::start(&fixture(), &["-c", "1", "-X", "-x", "missing.cdb"], &[]);
    assert_eq!(p.ask("x"), "x\n");
}

#[test]
fn each_connection_gets_its_own_environment() {
    if !need_root() || !have("setpriv") {
        return;
    }
    let dir = TempDir::new();
    let cdb = rules(dir.path(), "0:allow,FOO=\"root\"\n:allow\n");
    let p = Prefork::start_in(dir, &fixture(), &["-c", "1", "-x", cdb.to_str().unwrap()], &[]);
    let as_nobody = |line: &str| {
        let script = format!("echo '{line}' >&7; cat <&6");
        let o = run(
            Command::new("setpriv")
                .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .arg(bin("ipcclient"))
                .arg(p.sock())
                .args(["sh", "-c", &script]),
            10,
        );
        stdout(&o)
    };
    assert_eq!(p.ask("env FOO"), "root\n");
    assert_eq!(as_nobody("env FOO"), "unset\n");
    assert_eq!(as_nobody("env IPCREMOTEEUID"), "65534\n");
    assert_eq!(p.ask("env IPCREMOTEEUID"), "0\n");
    assert_eq!(p.ask("env FOO"), "root\n");
}

#[test]
fn local_limit_and_connection_numbers_across_children() {
    let p = Prefork::start(&fixture(), &["-c", "3", "-C", "2"], &[]);
    let mut held = p.connect();
    held.write_all(b"wait\n").unwrap();
    let mut w = [0u8; 8];
    held.read_exact(&mut w).unwrap();
    assert_eq!(p.ask("env IPCCONNNUM"), "1\n");
    let mut held2 = p.connect();
    held2.write_all(b"wait\n").unwrap();
    held2.read_exact(&mut w).unwrap();
    let (uid, _) = own_ids();
    assert_eq!(p.ask("x"), "", "a third connection of the same uid is over -C 2");
    assert!(p.wait_log("local limit of 2 reached", 1), "{}", p.log());
    assert!(p.log().contains(&format!("warning: dropping a connection from uid {uid}: local limit of 2 reached")));
    drop(held);
    drop(held2);
    assert!(wait_until(10, || p.ask("env IPCCONNNUM") == "0\n"));
}

#[test]
fn a_quiet_server_refuses_over_the_local_limit_without_a_line() {
    // -q is nothing at all (behaviour.md §0), as ipcserverd's refusal is.
    let p = Prefork::start(&fixture(), &["-q", "-c", "2", "-C", "1"], &[]);
    let mut held = p.connect();
    held.write_all(b"wait\n").unwrap();
    let mut w = [0u8; 8];
    held.read_exact(&mut w).unwrap();
    // The refusal's line comes before its connection is closed.
    assert_eq!(p.ask("x"), "", "a second connection of the same uid is over -C 1");
    assert_eq!(p.log(), "");
}

/// The original's ipcprint of each release at hand: 0.67
/// (`UCSPI_IPC_ORIGINAL`) and 0.70 (`UCSPI_IPC_ORIGINAL_070`).
pub(crate) fn originals() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for var in ["UCSPI_IPC_ORIGINAL", "UCSPI_IPC_ORIGINAL_070"] {
        match std::env::var_os(var) {
            Some(dir) => found.push(PathBuf::from(dir).join("ipcprint")),
            None => skip(&format!("{var} is not set")),
        }
    }
    found
}

/// A log with the numbers that vary (pids) as N and the socket as S.
pub(crate) fn normal_log(log: &str, sock: &Path) -> Vec<String> {
    log.replace(sock.to_str().unwrap(), "S")
        .lines()
        .map(|l| {
            l.split(' ')
                .map(|w| if w.chars().all(|c| c.is_ascii_digit()) && w.len() > 1 { "N" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// ipcprint's bytes and log lines against the original's, for the same
/// options, both invoked by the same name: the access lines start with
/// `ipcserver:`, the others with that name.
#[test]
fn ipcprint_against_the_original() {
    for original in originals() {
        for opts in [vec!["-c", "1"], vec!["-c", "1", "-B", "b"], vec!["-c", "1", "-l", "n"], vec!["-c", "1", "-P"]] {
            let ours = Prefork::start(&bin("ipcprint"), &opts, &[]);
            let theirs = Prefork::start(&original, &opts, &[]);
            let a = String::from_utf8_lossy(&fetch(&ours.sock()).unwrap()).replace(ours.sock().to_str().unwrap(), "S");
            let b =
                String::from_utf8_lossy(&fetch(&theirs.sock()).unwrap()).replace(theirs.sock().to_str().unwrap(), "S");
            assert_eq!(a, b, "{} {opts:?}", original.display());
        }
        let mut logs = Vec::new();
        for program in [bin("ipcprint"), original.clone()] {
            let mut p = Prefork::start(&program, &["-v", "-c", "1"], &[]);
            fetch(&p.sock()).unwrap();
            assert!(p.wait_log(": done ", 1));
            p.stop();
            logs.push(normal_log(&p.log(), &p.sock()));
        }
        assert_eq!(logs[0], logs[1], "{}", original.display());
        let (uid, gid) = own_ids();
        assert!(logs[0].contains(&format!("ipcserver: ok N S :{uid},{gid}")), "{:?}", logs[0]);
    }
}

/// Run by a path, the server names itself by that path in every line but
/// the access lines, usage included, as the original does.
#[test]
fn messages_name_the_server_as_invoked() {
    let originals = originals();
    let dir = TempDir::new();
    let sock = dir.join("s");
    // A usage error, and a denied connection's log (-x with a rule file
    // that denies everyone), each program by its full path.
    let cdb = rules(dir.path(), ":deny\n");
    let mut outputs = Vec::new();
    for program in std::iter::once(bin("ipcprint")).chain(originals) {
        let path = program.to_str().unwrap().to_string();
        let o = run(Command::new(&program).arg("-Z"), 10);
        assert_eq!(o.status.code(), Some(100));
        let usage = stderr(&o).replace(&path, "PROG");
        let mut c = Command::new(&program);
        c.args(["-v", "-c", "1", "-x"]).arg(&cdb).arg(&sock).stderr(std::fs::File::create(dir.join("log")).unwrap());
        let mut server = Server::start(&mut c, &sock);
        // The original leaves a denied connection open: the log says when
        // the decision is made.
        let client = UnixStream::connect(&sock).unwrap();
        assert!(wait_until(10, || std::fs::read_to_string(dir.join("log")).unwrap().contains("deny ")));
        drop(client);
        server.signal(15);
        server.wait(20).unwrap();
        let log = std::fs::read_to_string(dir.join("log")).unwrap().replace(&path, "PROG");
        outputs.push((usage, normal_log(&log, &sock)));
        let _ = std::fs::remove_file(&sock);
    }
    let (usage, log) = &outputs[0];
    assert!(usage.starts_with("ipcprint: illegal option -- Z\nPROG: usage: PROG [ "), "{usage}");
    let (uid, gid) = own_ids();
    assert_eq!(log[..3], ["PROG: status: 0/1", "PROG: status: 1/1", "PROG: pid N from "], "{log:?}");
    assert_eq!(log[3], format!("ipcserver: deny N S :{uid},{gid}"));
    // The original's usage lists fewer options; its lines are the same.
    for (theirs_usage, theirs_log) in &outputs[1..] {
        assert!(theirs_usage.starts_with("ipcprint: illegal option -- Z\nPROG: usage: PROG [ "), "{theirs_usage}");
        assert_eq!(theirs_log, log);
    }
}

#[test]
fn children_do_not_outlive_a_parent_killed_by_sigkill() {
    let mut p = Prefork::start(&fixture(), &["-c", "3"], &[]);
    let kids = children(p.server.pid()).0;
    assert_eq!(kids.len(), 3);
    p.server.signal(9);
    p.server.wait(10).unwrap();
    assert!(wait_until(10, || kids.iter().all(|&k| !alive(k))), "orphans left serving");
}

/// The code blocks of doc/ipchandle.md, in order: Cargo.toml, build.rs,
/// src/main.rs.
fn doc_example() -> Vec<String> {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("doc/ipchandle.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (&mut current, line) {
            (None, l) if l == "```toml" || l == "```rust" => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// The page's complete server, built as a user would (its own crate, a
/// path dependency on this one, offline) and run.
#[test]
fn the_documented_server_builds_and_serves() {
    let blocks = doc_example();
    assert_eq!(blocks.len(), 3, "doc/ipchandle.md: Cargo.toml, build.rs, src/main.rs");
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = tests_target("doc-example");
    std::fs::create_dir_all(project.join("src")).unwrap();
    let manifest = blocks[0].replace("path = \"../ucspi-ipc\"", &format!("path = {:?}", top.display().to_string()));
    assert_ne!(manifest, blocks[0], "the manifest's dependency path is where the test expects it");
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(project.join("build.rs"), &blocks[1]).unwrap();
    std::fs::write(project.join("src/main.rs"), &blocks[2]).unwrap();
    let greet = build_crate(&project.join("Cargo.toml"), &project.join("target"), "greet");
    let (uid, _) = own_ids();
    let p = Prefork::start(&greet, &["-c", "2"], &["hi"]);
    assert_eq!(p.ask(""), format!("hi, uid {uid}: you are client 1 of this child\n"));
}
