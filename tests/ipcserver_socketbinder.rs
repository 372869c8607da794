//! ipcserver-socketbinder, run for real: options, behaviour and messages.
use crate::common;
use common::*;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const USAGE: &str =
    "ipcserver-socketbinder: usage: ipcserver-socketbinder [ -d | -D ] [ -b backlog ] [ -a perms ] [ -B ] \
[ -v verbosity ] [ -N name ] path prog...\n";

fn binder() -> Command {
    cmd("ipcserver-socketbinder")
}

fn unable_to_bind(p: &Path, reason: &str) -> String {
    format!("ipcserver-socketbinder: fatal: unable to bind {}: {reason}\n", p.display())
}

/// The octal `flags:` of descriptor 0 as the exec'd program sees it.
fn fd0_flags(extra: &[&str]) -> u32 {
    let d = TempDir::new();
    let o = run(binder().args(extra).arg(d.join("s")).args(["cat", "/proc/self/fdinfo/0"]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:")).expect("flags line");
    u32::from_str_radix(flags.trim(), 8).unwrap()
}

const O_NONBLOCK: u32 = 0o4000;

#[test]
fn usage_errors() {
    let d = TempDir::new();
    let s = d.join("s");
    let s = s.to_str().unwrap();
    let backlog = "(a number from 0 to 2147483647)";
    let perms = "(octal, at most 777)";
    let cases: [(&[&str], String); 12] = [
        (&[], "".into()),
        (&[s], "".into()),
        (&["", "true"], "".into()),
        (&["-x", s, "true"], "illegal option -- x\n".into()),
        (&["-b", "x", s, "true"], format!("illegal value for option -b: x {backlog}\n")),
        (&["-b", "", s, "true"], format!("illegal value for option -b:  {backlog}\n")),
        (&["-b", "-1", s, "true"], format!("illegal value for option -b: -1 {backlog}\n")),
        (&["-b", "2147483648", s, "true"], format!("illegal value for option -b: 2147483648 {backlog}\n")),
        (&["-a", "1000", s, "true"], format!("illegal value for option -a: 1000 {perms}\n")),
        (&["-a", "8", s, "true"], format!("illegal value for option -a: 8 {perms}\n")),
        (&["-a", "", s, "true"], format!("illegal value for option -a:  {perms}\n")),
        (&["-b"], "option requires an argument -- b\n".into()),
    ];
    for (args, msg) in cases {
        let o = run(binder().args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        let msg = if msg.is_empty() { String::new() } else { format!("ipcserver-socketbinder: {msg}") };
        assert_eq!(stderr(&o), format!("{msg}{USAGE}"), "{args:?}");
        assert!(!d.join("s").exists(), "{args:?} must not bind");
    }
}

#[test]
fn name_and_quiet() {
    let d = TempDir::new();
    let s = d.join("nodir/s");
    let o = run(binder().args(["-N", "ipcserver"]).arg(&s).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcserver: fatal: unable to bind {}: no such file or directory\n", s.display()));
    let o = run(binder().args(["-v0"]).arg(&s).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "");
}

#[test]
fn socket_on_descriptor_0_and_nothing_else_passed() {
    let d = TempDir::new();
    let s = d.join("s");
    let o = run(binder().arg(&s).args(["sh", "-c", "readlink /proc/$$/fd/0; ls /proc/$$/fd"]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("socket:["), "{out}");
    let fds: Vec<&str> = lines.collect();
    // Whatever the test runner itself passes down, plus the socket on 0
    // and nothing else: the socket's first descriptor must be closed.
    let plain = run(Command::new("sh").args(["-c", "ls /proc/$$/fd"]), 10);
    assert_eq!(fds, stdout(&plain).lines().collect::<Vec<_>>());
    assert!(fds.contains(&"0"));
    assert!(std::fs::metadata(&s).unwrap().file_type().is_socket());
}

#[test]
fn nonblocking_unless_capital_b() {
    assert_eq!(fd0_flags(&[]) & O_NONBLOCK, O_NONBLOCK);
    assert_eq!(fd0_flags(&["-B"]) & O_NONBLOCK, 0);
}

#[test]
fn chains_into_s6_ipcserverd() {
    if !have("s6-ipcserverd") {
        return;
    }
    let d = TempDir::new();
    let s = d.join("s");
    let _server = Server::start(binder().arg(&s).args(["s6-ipcserverd", "sh", "-c", "echo hello"]), &s);
    assert_eq!(fetch(&s).unwrap(), b"hello\n");
    assert_eq!(fetch(&s).unwrap(), b"hello\n");
}

fn mode_after(extra: &[&str], umask: &str) -> (u32, String) {
    let d = TempDir::new();
    let s = d.join("s");
    let o = run(
        Command::new("sh")
            .args(["-c", &format!("umask {umask}; exec \"$@\""), "sh"])
            .arg(bin("ipcserver-socketbinder"))
            .args(extra)
            .arg(&s)
            .args(["sh", "-c", "umask"]),
        10,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (std::fs::metadata(&s).unwrap().permissions().mode() & 0o777, stdout(&o))
}

#[test]
fn permissions_ignore_the_umask_which_is_restored() {
    assert_eq!(mode_after(&[], "077"), (0o777, "0077\n".into()));
    assert_eq!(mode_after(&["-a", "0640"], "022"), (0o640, "0022\n".into()));
    assert_eq!(mode_after(&["-a600"], "000"), (0o600, "0000\n".into()));
    assert_eq!(mode_after(&["-a", "0"], "022"), (0, "0022\n".into()));
    assert_eq!(mode_after(&["-a", "700", "-a", "0755"], "077"), (0o755, "0077\n".into()));
}

#[test]
fn capital_d_refuses_a_live_socket_small_d_replaces() {
    let d = TempDir::new();
    let s = d.join("s");
    let listener = std::os::unix::net::UnixListener::bind(&s).unwrap();
    let o = run(binder().arg("-D").arg(&s).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), unable_to_bind(&s, "address already in use"));
    // -dD: the later option wins.
    let o = run(binder().arg("-dD").arg(&s).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), unable_to_bind(&s, "address already in use"));
    // -Dd and the default replace it.
    for opts in [&["-Dd"][..], &[][..]] {
        let o = run(binder().args(opts).arg(&s).args(["sh", "-c", "echo ran"]), 10);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), "ran\n");
    }
    drop(listener);
}

/// Only an old socket is removed: a regular file is refused with -d as
/// with -D (s6-ipcserver-socketbinder removes it), a directory says so.
#[test]
fn a_regular_file_is_refused_and_a_directory_says_so() {
    let d = TempDir::new();
    let s = d.join("f");
    std::fs::write(&s, "data").unwrap();
    let o = run(binder().arg("-D").arg(&s).args(["sh", "-c", "echo ran"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), unable_to_bind(&s, "address already in use"));
    assert_eq!(stdout(&o), "");
    assert_eq!(std::fs::read(&s).unwrap(), b"data");
    let o = run(binder().arg("-d").arg(&s).args(["sh", "-c", "echo ran"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), unable_to_bind(&s, "file exists and is not a socket"));
    assert_eq!(stdout(&o), "");
    assert_eq!(std::fs::read(&s).unwrap(), b"data");
    let o = run(binder().arg(d.path()).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), unable_to_bind(d.path(), "is a directory"));
}

#[test]
fn path_length_limit() {
    let d = TempDir::new();
    let base = d.path().to_str().unwrap().len() + 1;
    let ok = d.join(&"a".repeat(108 - base));
    assert_eq!(ok.to_str().unwrap().len(), 108);
    let o = run(binder().arg(&ok).arg("true"), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::metadata(&ok).unwrap().file_type().is_socket());
    let long = d.join(&"b".repeat(109 - base));
    let o = run(binder().arg(&long).args(["sh", "-c", "echo ran"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), unable_to_bind(&long, "file name too long"));
    assert_eq!(stdout(&o), "");
    assert!(!long.exists());
}

#[test]
fn missing_directory() {
    let d = TempDir::new();
    let s = d.join("nodir/s");
    let o = run(binder().arg(&s).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), unable_to_bind(&s, "no such file or directory"));
    let o = run(binder().arg("-D").arg(&s).arg("true"), 10);
    assert_eq!(stderr(&o), unable_to_bind(&s, "no such file or directory"));
}

#[test]
fn exec_failure() {
    let d = TempDir::new();
    let o = run(binder().arg(d.join("s")).arg("/nonexistent/prog"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        "ipcserver-socketbinder: fatal: unable to run /nonexistent/prog: no such file or directory\n"
    );
}

/// The listen backlog as `ss` reports it (Send-Q of a listening socket).
fn backlog(extra: &[&str]) -> String {
    let d = TempDir::new();
    let s = d.join("s");
    let o = run(binder().args(extra).arg(&s).args(["ss", "-xlnH"]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out.lines().find(|l| l.split_whitespace().any(|w| Path::new(w) == s)).expect("our socket");
    line.split_whitespace().nth(3).unwrap().to_string()
}

#[test]
fn backlog_default_is_the_system_maximum() {
    if !have("ss") {
        return;
    }
    let max = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    assert_eq!(backlog(&[]), max.trim());
    assert_eq!(backlog(&["-b", "7"]), "7");
    assert_eq!(backlog(&["-b0"]), "0");
}

#[test]
fn works_when_descriptor_0_is_closed() {
    // The socket is then created as descriptor 0 itself, close-on-exec:
    // that flag must be cleared, not the descriptor closed.
    let d = TempDir::new();
    let s = d.join("s");
    let o = run(
        Command::new("sh")
            .args(["-c", "exec <&-; exec \"$@\"", "sh"])
            .arg(bin("ipcserver-socketbinder"))
            .arg(&s)
            .args(["sh", "-c", "readlink /proc/$$/fd/0"]),
        10,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("socket:["), "{}", stdout(&o));
}
