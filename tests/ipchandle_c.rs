//! The C interface to the preforking servers (ipchandle/): the static
//! library, built as a user builds it (`cargo build --release -p
//! ucspi-ipc-ipchandle`), and C servers compiled on it with the system's
//! C compiler and ipchandle.h: the example ipcprint
//! (ipchandle/examples/ipcprint.c) against ours in Rust and against the
//! original's 0.67 and 0.70, and the tests' handler
//! (tests/fixtures/ipchandle/handler.c) for what the library does around
//! each call of `server`: its arguments, environ and the original's check
//! of it, stdio, a process the handler forks, descriptors, exits, signals,
//! the lock file. Without a C compiler every test says SKIPPED.
use crate::common;
use crate::prefork::{cargo_build, normal_log, originals, tests_target, Prefork};

use common::*;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where these tests build the library and the C servers.
fn build_dir() -> PathBuf {
    tests_target("ipchandle-c")
}

/// libucspi_ipc_ipchandle.a for the target these tests run on, built once
/// per run.
pub(crate) fn library() -> PathBuf {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            let release = cargo_build(&top().join("Cargo.toml"), &["-p", "ucspi-ipc-ipchandle"], &build_dir());
            release.join("libucspi_ipc_ipchandle.a")
        })
        .clone()
}

/// Why a test that needs [`c_compiler`] is skipped.
pub(crate) const NO_C_COMPILER: &str =
    "no C compiler for the target (cc, or a cross gcc as CARGO_TARGET_<TRIPLE>_LINKER)";

/// The C compiler for the target these tests run on: `cc`, or for another
/// architecture the cross compiler Cargo links with there
/// (`CARGO_TARGET_<TRIPLE>_LINKER`, which .ci/run sets).
pub(crate) fn c_compiler() -> Option<PathBuf> {
    if common::emulated() {
        let target = env!("UCSPI_IPC_TARGET").to_uppercase().replace(['-', '.'], "_");
        std::env::var_os(format!("CARGO_TARGET_{target}_LINKER")).map(PathBuf::from).filter(|linker| {
            let name = linker.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with("gcc") || name.ends_with("cc") || name.ends_with("clang")
        })
    } else {
        which("cc")
    }
}

/// Compiles `source` (relative to the top of the tree) into BUILD/bin/NAME
/// as doc/ipchandle.md says, the header's directory and the library given
/// by hand (tests/package.rs does it with pkg-config). Warnings are errors.
fn compile(name: &str, source: &str) -> Option<PathBuf> {
    let cc = c_compiler()?;
    let bin = build_dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let out = bin.join(name);
    let o = run(
        Command::new(cc)
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(top().join(source))
            .arg("-I")
            .arg(top().join("ipchandle"))
            .arg(library()),
        120,
    );
    assert!(o.status.success(), "{source} does not compile:\n{}", stderr(&o));
    Some(out)
}

/// The example, ipchandle/examples/ipcprint.c, as BUILD/bin/ipcprint: the
/// name its lines start with, as ours.
fn c_ipcprint() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    built(&BUILT, "ipcprint", "ipchandle/examples/ipcprint.c")
}

/// The tests' handler, as BUILD/bin/handler.
fn handler() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    built(&BUILT, "handler", "tests/fixtures/ipchandle/handler.c")
}

/// [`compile`], once per run; SKIPPED for every test that asks without a
/// C compiler.
fn built(once: &OnceLock<Option<PathBuf>>, name: &str, source: &str) -> Option<PathBuf> {
    let program = once.get_or_init(|| compile(name, source)).clone();
    if program.is_none() {
        skip(NO_C_COMPILER);
    }
    program
}

/// What a server answers a connection that sends nothing, its socket's
/// path as S.
fn answer(p: &Prefork) -> String {
    String::from_utf8_lossy(&fetch(&p.sock()).unwrap()).replace(p.sock().to_str().unwrap(), "S")
}

/// Runs `program -v OPTS path`, makes `connections` connections one
/// after the other (each once the previous one is logged as done or
/// dropped), stops it; gives the answers and the log, with the socket as
/// S and pids as N.
fn session(program: &Path, opts: &[&str], connections: usize) -> (Vec<String>, Vec<String>) {
    let mut all = vec!["-v"];
    all.extend_from_slice(opts);
    let mut p = Prefork::start(program, &all, &[]);
    let mut answers = Vec::new();
    for i in 1..=connections {
        answers.push(answer(&p));
        let ended = || p.log().matches(": done ").count() + p.log().matches("environ changed").count();
        assert!(wait_until(10, || ended() >= i), "{}", p.log());
    }
    assert_eq!(p.stop(), 0, "{}", p.log());
    let log = p.log();
    // Each drop ends its child with 111, and SIGTERM the others.
    let ends = log.lines().filter(|l| l.contains(": end ")).count();
    let drops = log.matches("environ changed").count();
    assert_eq!(log.matches(" status 28416\n").count(), drops, "{log}");
    assert_eq!(log.matches(" status 15\n").count(), ends - drops, "{log}");
    (answers, normal_log(&log, &p.sock()))
}

/// Rules in DIR/rules.cdb that allow our uid with `assignments`.
fn allow_me(dir: &TempDir, assignments: &str) -> PathBuf {
    rules(dir.path(), &format!("{}:allow,{assignments}\n", own_ids().0))
}

/// The example's bytes are ipcprint's in Rust, under the options that
/// change them.
#[test]
fn the_c_ipcprint_writes_what_ours_writes() {
    let Some(c_ipcprint) = c_ipcprint() else { return };
    let (uid, gid) = own_ids();
    let dir = TempDir::new();
    let cdb = allow_me(&dir, "IPCREMOTEPATH=\"set by a rule\"");
    let cdb = cdb.to_str().unwrap();
    for opts in [
        vec!["-c", "1"],
        vec!["-c", "1", "-B", "banner\n"],
        vec!["-c", "1", "-l", "name"],
        vec!["-c", "1", "-P"],
        vec!["-c", "1", "-x", cdb],
    ] {
        let answers: Vec<String> =
            [c_ipcprint.clone(), bin("ipcprint")].iter().map(|p| answer(&Prefork::start(p, &opts, &[]))).collect();
        assert_eq!(answers[0], answers[1], "{opts:?}");
    }
    let c = Prefork::start(&c_ipcprint, &["-c", "1"], &[]);
    assert_eq!(
        answer(&c),
        format!("\nPROTO=IPC\nIPCLOCALPATH=S\nIPCREMOTEPATH=\nIPCREMOTEEUID={uid}\nIPCREMOTEEGID={gid}\n")
    );
}

/// Its log lines are ours, for a connection served and one denied.
#[test]
fn the_c_ipcprint_logs_what_ours_logs() {
    let Some(c_ipcprint) = c_ipcprint() else { return };
    let dir = TempDir::new();
    let deny = rules(dir.path(), ":deny\n");
    for opts in [vec!["-v", "-c", "1"], vec!["-v", "-c", "2", "-x", deny.to_str().unwrap()]] {
        let logs: Vec<Vec<String>> = [c_ipcprint.clone(), bin("ipcprint")]
            .iter()
            .map(|program| {
                let mut p = Prefork::start(program, &opts, &[]);
                fetch(&p.sock()).unwrap();
                assert!(wait_until(10, || p.log().contains(": done ") || p.log().contains(": deny ")), "{}", p.log());
                assert_eq!(p.stop(), 0);
                normal_log(&p.log(), &p.sock())
            })
            .collect();
        assert_eq!(logs[0], logs[1], "{opts:?}");
        assert!(logs[0].iter().any(|l| l.starts_with("ipcserver: ")), "{:?}", logs[0]);
    }
}

/// Side by side with the original's ipcprint, three connections to one
/// child: the same answers and the same log, the second connection's
/// environ changed, its child replaced, on both.
#[test]
fn the_c_ipcprint_against_the_originals() {
    let Some(c_ipcprint) = c_ipcprint() else { return };
    let (ours, our_log) = session(&c_ipcprint, &["-c", "1"], 3);
    let (uid, gid) = own_ids();
    // Pids and statuses are N: exit 111 (28416) after the second, SIGTERM
    // (15) at the end, which `session` and the next test check.
    let expected = [
        "ipcprint: status: 0/1",
        "ipcprint: status: 1/1",
        "ipcprint: pid N from ",
        &format!("ipcserver: ok N S :{uid},{gid}"),
        "ipcprint: done N",
        "ipcprint: pid N from ",
        &format!("ipcserver: ok N S :{uid},{gid}"),
        "ipcprint: warning: dropping connection, environ changed",
        "ipcprint: end N status N",
        "ipcprint: status: 0/1",
        "ipcprint: status: 1/1",
        "ipcprint: pid N from ",
        &format!("ipcserver: ok N S :{uid},{gid}"),
        "ipcprint: done N",
        "ipcprint: end N status N",
        "ipcprint: status: 0/1",
    ];
    assert_eq!(our_log, expected);
    for a in &ours {
        assert_eq!(a, &ours[0]);
    }
    for original in originals() {
        let (theirs, their_log) = session(&original, &["-c", "1"], 3);
        assert_eq!(theirs, ours, "{}", original.display());
        assert_eq!(their_log, our_log, "{}", original.display());
    }
}

/// Usage errors are ipcprint's; getopt's line names the program by the
/// last component of argv[0], as the original's does, and an empty
/// argv[0] by `ipchandle`.
#[test]
fn usage_errors_as_ipcprints() {
    let (Some(c_ipcprint), Some(handler)) = (c_ipcprint(), handler()) else { return };
    let dir = TempDir::new();
    let sock = dir.join("s");
    let s = sock.to_str().unwrap();
    for args in [vec![], vec![""], vec!["-Z", s], vec!["-c", "0", s], vec!["-c"]] {
        let outputs: Vec<(Option<i32>, String)> = [&c_ipcprint, &bin("ipcprint")]
            .iter()
            .map(|p| {
                let o = run(Command::new(p).arg0("ipcprint").args(&args), 10);
                (o.status.code(), stderr(&o))
            })
            .collect();
        assert_eq!(outputs[0], outputs[1], "{args:?}");
        assert_eq!(outputs[0].0, Some(100));
        assert!(!sock.exists());
    }
    let usage = "usage: {} [ -1UXSdDqQvpP ] [ -c limit ] [ -C locallimit ] [ -x rules.cdb ] [ -B banner ] \
[ -g gid ] [ -u uid ] [ -G gidlist ] [ -b backlog ] [ -a perms ] [ -l localname ] [ -f lockfile ] path\n";
    let by_path = handler.to_str().unwrap();
    for (arg0, getopt, invoked) in [(by_path, "handler", by_path), ("", "ipchandle", "ipchandle")] {
        let o = run(Command::new(&handler).arg0(arg0).arg("-Z"), 10);
        assert_eq!(o.status.code(), Some(100));
        let usage = usage.replace("{}", invoked);
        assert_eq!(stderr(&o), format!("{getopt}: illegal option -- Z\n{invoked}: {usage}"), "{arg0:?}");
    }
}

/// `server` gets the operands after path, `argv[argc]` NULL.
#[test]
fn the_handler_gets_the_operands_after_path() {
    let Some(handler) = handler() else { return };
    let p = Prefork::start(&handler, &["-c", "1"], &["a", "b c", ""]);
    assert_eq!(p.ask("args"), "3: a b c \n");
    let p = Prefork::start(&handler, &["-c", "1"], &[]);
    assert_eq!(p.ask("args"), "0:\n");
}

/// getenv reads the connection's environment: the server's, the
/// connection's variables, the rule's assignments.
#[test]
fn environ_is_the_connections() {
    let Some(handler) = handler() else { return };
    let (uid, _) = own_ids();
    let dir = TempDir::new();
    let cdb = allow_me(&dir, "FOO=\"bar\"");
    let sock = dir.join("s");
    let mut c = Command::new(&handler);
    c.env("INHERITED", "yes").args(["-c", "1", "-x"]).arg(&cdb).arg(&sock);
    let mut server = Server::start(&mut c, &sock);
    assert!(wait_until(10, || children(server.pid()).0.len() == 1));
    let ask = |line: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut v = String::new();
        s.read_to_string(&mut v).unwrap();
        v
    };
    for (name, value) in [
        ("FOO", "bar"),
        ("INHERITED", "yes"),
        ("PROTO", "IPC"),
        ("IPCREMOTEEUID", &uid.to_string()),
        ("IPCCONNNUM", "0"),
    ] {
        assert_eq!(ask(&format!("env {name}")), format!("{value}\n"), "{name}");
    }
    assert_eq!(ask("env IPCLOCALPATH"), format!("{}\n", sock.display()));
    stop_with_children(&mut server);
}

/// A handler that leaves environ another array than it was given (setenv
/// of a new variable, clearenv) has its answer delivered, then costs the
/// connection (no `done`) and its child, as in the original.
#[test]
fn a_new_environ_drops_the_connection_and_the_child() {
    let Some(handler) = handler() else { return };
    for (command, reply) in [("setenv", "added\n"), ("clearenv", "cleared\n")] {
        let p = Prefork::start(&handler, &["-v", "-c", "1"], &[]);
        let first = p.ask("count");
        let pid = first.split(' ').next().unwrap().to_string();
        assert_eq!(p.ask(command), reply);
        assert!(p.wait_log(&format!("handler: end {pid} status 28416\n"), 1), "{}", p.log());
        let log = p.log();
        let dropped = format!("ipcserver: ok {pid} ");
        let after = log.rsplit(&dropped).next().unwrap();
        assert!(after.contains("\nhandler: warning: dropping connection, environ changed\n"), "{log}");
        assert!(!after.contains(&format!("done {pid}")), "{log}");
        let next = p.ask("count");
        assert_ne!(next.split(' ').next().unwrap(), pid, "{command}: the child was replaced");
        assert!(next.ends_with(" 1\n"), "{next}");
    }
}

/// Changes made in the array the handler was given (a variable replaced
/// or removed) stay with their connection: the next one gets its own
/// environment, and the child serves on, as the original's does.
#[test]
fn changes_in_place_stay_with_their_connection() {
    let Some(handler) = handler() else { return };
    let p = Prefork::start(&handler, &["-c", "1"], &[]);
    let pid = p.ask("count").split(' ').next().unwrap().to_string();
    assert_eq!(p.ask("overwrite"), "PROTO=changed\n");
    assert_eq!(p.ask("env PROTO"), "IPC\n");
    assert_eq!(p.ask("unset PROTO"), "unset PROTO\n");
    assert_eq!(p.ask("env PROTO"), "IPC\n");
    assert_eq!(p.ask("count"), format!("{pid} 6\n"));
    assert_eq!(p.log(), "");
}

/// What the handler printed reaches its client without a fflush; what
/// stdin read ahead, and its end of file, stay with their connection.
#[test]
fn stdout_is_flushed_and_stdin_starts_clean() {
    let Some(handler) = handler() else { return };
    let p = Prefork::start(&handler, &["-c", "1"], &[]);
    let send = |input: &[u8]| {
        let mut s = p.connect();
        s.write_all(input).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut v = String::new();
        s.read_to_string(&mut v).unwrap();
        v
    };
    assert_eq!(send(b"echo one\nleft over for the next connection\n"), "one\n");
    assert_eq!(send(b"echo two\n"), "two\n");
    assert_eq!(send(b""), "eof\n");
    assert_eq!(send(b"echo three\n"), "three\n");
    assert_eq!(send(b"count\n").split(' ').nth(1), Some("5\n"), "one child served them all");
}

/// A process the handler forks that returns from `server` exits (0)
/// rather than serve on as a child of no one.
#[test]
fn a_process_the_handler_forks_does_not_serve() {
    let Some(handler) = handler() else { return };
    let p = Prefork::start(&handler, &["-c", "1"], &[]);
    assert_eq!(p.ask("fork"), "the forked process exited 0\n");
    assert_eq!(children(p.server.pid()).0.len(), 1);
    assert!(p.ask("count").ends_with(" 2\n"));
}

/// Descriptors the handler opens stay open (libc keeps some of its own
/// across calls): releasing them is the handler's part.
#[test]
fn descriptors_the_handler_keeps_stay_open() {
    let Some(handler) = handler() else { return };
    let p = Prefork::start(&handler, &["-c", "1"], &[]);
    let free: i32 = p.ask("fd").trim().parse().unwrap();
    assert_eq!(p.ask("keep"), format!("{free}\n"));
    assert_eq!(p.ask("fd"), format!("{}\n", free + 1));
}

/// A child whose handler exits is replaced; SIGHUP replaces every child;
/// SIGTERM stops them and the server (0), busy or not.
#[test]
fn exits_and_signals() {
    let Some(handler) = handler() else { return };
    let mut p = Prefork::start(&handler, &["-v", "-c", "1"], &[]);
    let pid = p.ask("count").split(' ').next().unwrap().to_string();
    assert_eq!(p.ask("exit 3"), "bye\n");
    assert!(p.wait_log(&format!("handler: end {pid} status 768\n"), 1), "{}", p.log());
    assert_ne!(p.ask("count").split(' ').next().unwrap(), pid);
    let before = children(p.server.pid()).0;
    p.server.signal(1);
    assert!(wait_until(10, || {
        let now = children(p.server.pid()).0;
        now.len() == 1 && now.iter().all(|k| !before.contains(k))
    }));
    let mut busy = p.connect();
    busy.write_all(b"wait\n").unwrap();
    let mut w = [0u8; 8];
    busy.read_exact(&mut w).unwrap();
    assert_eq!(&w, b"waiting\n");
    assert_eq!(p.stop(), 0);
    assert_eq!(busy.read(&mut w).unwrap(), 0, "the busy child was stopped");
}

/// `-f lockfile`: made (0644) before binding, and the children serve
/// under it.
#[test]
fn the_lock_file() {
    let Some(handler) = handler() else { return };
    let dir = TempDir::new();
    let lock = dir.join("lock");
    let p = Prefork::start_in(dir, &handler, &["-c", "2", "-f", lock.to_str().unwrap()], &[]);
    assert_eq!(std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777, 0o644);
    for i in 0..4 {
        assert_eq!(p.ask(&format!("echo {i}")), format!("{i}\n"));
    }
}
