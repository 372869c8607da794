//! ipcclient, run for real: options, behaviour and messages.
use crate::common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;

const USAGE: &str = "ipcclient: usage: ipcclient [ -qQv ] [ -p localpath ] [ -l localname ] path program\n";

fn client() -> Command {
    cmd("ipcclient")
}

/// Echoes one line back, then closes.
fn echo_line(c: UnixStream) {
    let mut line = String::new();
    BufReader::new(&c).read_line(&mut line).unwrap();
    (&c).write_all(line.as_bytes()).unwrap();
}

#[test]
fn usage_errors() {
    let d = TempDir::new();
    let s = d.join("s");
    let s = s.to_str().unwrap();
    let cases: [(&[&str], String); 6] = [
        (&[], USAGE.into()),
        (&[s], USAGE.into()),
        (&["-x", s, "true"], format!("ipcclient: illegal option -- x\n{USAGE}")),
        (&["-p"], format!("ipcclient: option requires an argument -- p\n{USAGE}")),
        // As the original: option errors are printed even after -q, a
        // missing operand is not.
        (&["-q", "-l"], format!("ipcclient: option requires an argument -- l\n{USAGE}")),
        (&["-q", s], "".into()),
    ];
    for (args, err) in cases {
        let o = run(client().args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), err, "{args:?}");
    }
}

#[test]
fn connect_errors() {
    let d = TempDir::new();
    let none = d.join("none");
    // The original's words: no "fatal:".
    let msg = format!("ipcclient: unable to connect to {}: no such file or directory\n", none.display());
    for opts in [&[][..], &["-Q"][..], &["-qQ"][..], &["-v"][..]] {
        let o = run(client().args(opts).arg(&none).args(["sh", "-c", "echo ran"]), 10);
        assert_eq!(o.status.code(), Some(111));
        assert_eq!(stderr(&o), msg, "{opts:?}");
        assert_eq!(stdout(&o), "");
    }
    for opts in [&["-q"][..], &["-Qq"][..], &["-vq"][..]] {
        let o = run(client().args(opts).arg(&none).arg("true"), 10);
        assert_eq!(o.status.code(), Some(111));
        assert_eq!(stderr(&o), "", "{opts:?}");
    }
    // A socket file nobody listens on.
    let dead = d.join("dead");
    drop(UnixListener::bind(&dead).unwrap());
    let o = run(client().arg(&dead).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcclient: unable to connect to {}: connection refused\n", dead.display()));
    // 108 bytes is a path Linux accepts; 109 is not.
    let base = d.path().to_str().unwrap().len() + 1;
    let longest = d.join(&"c".repeat(108 - base));
    let o = run(client().arg(&longest).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!("ipcclient: unable to connect to {}: no such file or directory\n", longest.display())
    );
    let long = d.join(&"c".repeat(109 - base));
    let o = run(client().arg(&long).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcclient: unable to connect to {}: file name too long\n", long.display()));
    // An empty path names no socket: refused, in the original's words.
    let o = run(client().args(["", "sh", "-c", "echo ran"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcclient: unable to connect to : connection refused\n");
    assert_eq!(stdout(&o), "");
}

#[test]
fn verbose_says_connected() {
    let d = TempDir::new();
    let s = d.join("s");
    let server = serve_once(&s, |_| {});
    let o = run(client().arg("-v").arg(&s).args(["sh", "-c", "echo ran"]), 10);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), format!("ipcclient: connected to {}\n", s.display()));
    assert_eq!(stdout(&o), "ran\n");
    server.join().unwrap();
}

#[test]
fn descriptors_6_and_7_are_the_connection() {
    let d = TempDir::new();
    let s = d.join("s");
    let server = serve_once(&s, echo_line);
    let script = "echo hello >&7; read x <&6; echo \"got $x\"; \
                  [ \"$(readlink /proc/$$/fd/6)\" = \"$(readlink /proc/$$/fd/7)\" ] && echo same; \
                  readlink /proc/$$/fd/6; ls /proc/$$/fd";
    let o = run(client().arg(&s).args(["sh", "-c", script]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["got hello", "same"]);
    assert!(lines[2].starts_with("socket:["), "{out}");
    // Exactly the runner's descriptors plus 6 and 7: the socket's first
    // descriptor was closed.
    let plain = run(Command::new("sh").args(["-c", "ls /proc/$$/fd"]), 10);
    let mut expect: Vec<String> = stdout(&plain).lines().map(String::from).collect();
    expect.extend(["6".to_string(), "7".to_string()]);
    expect.sort();
    let mut fds: Vec<String> = lines[3..].iter().map(|s| s.to_string()).collect();
    fds.sort();
    assert_eq!(fds, expect);
    server.join().unwrap();
}

/// PROTO and IPCLOCALPATH as prog sees them, with `opts`.
fn client_env(opts: &[&str], d: &TempDir) -> (Option<String>, Option<String>) {
    let s = d.join("s");
    let _ = std::fs::remove_file(&s);
    let server = serve_once(&s, |_| {});
    let o = run(client().env_remove("IPCLOCALPATH").env("PROTO", "TCP").args(opts).arg(&s).arg("env"), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    server.join().unwrap();
    (env_value(&o.stdout, "PROTO"), env_value(&o.stdout, "IPCLOCALPATH"))
}

#[test]
fn environment() {
    let d = TempDir::new();
    let ipc = Some("IPC".to_string());
    assert_eq!(client_env(&[], &d), (ipc.clone(), Some("".into())));
    assert_eq!(client_env(&["-l", "name"], &d), (ipc.clone(), Some("name".into())));
    assert_eq!(client_env(&["-l", ""], &d), (ipc.clone(), Some("".into())));
    let local = d.join("local");
    let local_str = local.to_str().unwrap();
    assert_eq!(client_env(&["-p", local_str], &d), (ipc.clone(), Some(local_str.into())));
    std::fs::remove_file(&local).unwrap();
    assert_eq!(client_env(&["-p", local_str, "-l", "other"], &d), (ipc.clone(), Some("other".into())));
    std::fs::remove_file(&local).unwrap();
    assert_eq!(client_env(&["-lfirst", "-lsecond"], &d), (ipc, Some("second".into())));
}

#[test]
fn the_server_sees_the_local_path() {
    if !have("s6-ipcserver") {
        return;
    }
    let d = TempDir::new();
    let s = d.join("s");
    let _server =
        Server::start(Command::new("s6-ipcserver").arg(&s).args(["sh", "-c", "printf '%s\\n' \"$IPCREMOTEPATH\""]), &s);
    let local = d.join("me");
    let o = run(client().arg("-p").arg(&local).arg(&s).args(["sh", "-c", "cat <&6"]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\n", local.display()));
    // Without -p the client has no path, and with an empty one neither
    // (as the original's -p '', which binds no path the server can see).
    let o = run(client().arg(&s).args(["sh", "-c", "cat <&6"]), 10);
    assert_eq!(stdout(&o), "\n");
    let o = run(client().args(["-p", ""]).arg(&s).args(["sh", "-c", "cat <&6; echo \"[$IPCLOCALPATH]\""]), 10);
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(0), "\n[]\n".into(), String::new()));
}

#[test]
fn local_path_errors() {
    let d = TempDir::new();
    let s = d.join("s");
    let _listener = UnixListener::bind(&s).unwrap();
    let local = d.join("taken");
    std::fs::write(&local, "x").unwrap();
    let o = run(client().arg("-p").arg(&local).arg(&s).args(["sh", "-c", "echo ran"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcclient: fatal: unable to bind {}: address already in use\n", local.display()));
    assert_eq!(stdout(&o), "");
    let base = d.path().to_str().unwrap().len() + 1;
    let long = d.join(&"l".repeat(109 - base));
    let o = run(client().arg("-p").arg(&long).arg(&s).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcclient: fatal: unable to bind {}: file name too long\n", long.display()));
    let o = run(client().arg("-q").arg("-p").arg(&local).arg(&s).arg("true"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "");
}

/// A server that sees the full 108-byte path a client bound (Linux's
/// longest), and a client with stdout closed whose socket does not take
/// descriptor 1.
#[test]
fn longest_local_path_and_closed_stdout() {
    let d = TempDir::new();
    let s = d.join("s");
    let base = d.path().to_str().unwrap().len() + 1;
    let local = d.join(&"m".repeat(108 - base));
    let server = serve_once(&s, |c| {
        let addr = c.peer_addr().unwrap();
        (&c).write_all(addr.as_pathname().unwrap().to_str().unwrap().as_bytes()).unwrap();
    });
    let o = run(client().arg("-p").arg(&local).arg(&s).args(["sh", "-c", "cat <&6; echo; echo \"$IPCLOCALPATH\""]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let l = local.display();
    assert_eq!(stdout(&o), format!("{l}\n{l}\n"));
    server.join().unwrap();
    let server = serve_once(&d.join("s2"), |_| {});
    let o = run(
        Command::new("sh")
            .args([
                "-c",
                "exec \"$0\" \"$1\" sh -c 'for n in 1 6 7; do [ -e /proc/$$/fd/$n ] && echo $n >&2; done' >&-",
            ])
            .arg(bin("ipcclient"))
            .arg(d.join("s2")),
        10,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fds: Vec<String> = stderr(&o).lines().map(String::from).collect();
    assert_eq!(fds, ["6", "7"], "descriptor 1 stays closed");
    server.join().unwrap();
}

#[test]
fn exec_failure() {
    let d = TempDir::new();
    let s = d.join("s");
    let server = serve_once(&s, |_| {});
    let o = run(client().arg(&s).arg("/nonexistent/prog"), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcclient: fatal: unable to run /nonexistent/prog: no such file or directory\n");
    server.join().unwrap();
}
