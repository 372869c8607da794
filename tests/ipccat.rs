//! ipccat, run for real: options, behaviour and messages.
use crate::common;
use common::*;

#[test]
fn usage_and_connect_errors() {
    let o = run(&mut cmd("ipccat"), 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), "ipccat: usage: ipccat path\n");
    let d = TempDir::new();
    let p = d.join("none");
    let o = run(cmd("ipccat").arg(&p), 10);
    assert_eq!(o.status.code(), Some(111));
    // As the original's ipcclient says it: no "fatal:".
    assert_eq!(stderr(&o), format!("ipccat: unable to connect to {}: no such file or directory\n", p.display()));
    // An empty path, as the original (through its ipcclient) says it.
    let o = run(cmd("ipccat").arg(""), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipccat: unable to connect to : connection refused\n");
}

#[test]
fn usage_for_extra_operands_and_options() {
    for (args, err) in [
        (&["a", "b"][..], "ipccat: usage: ipccat path\n"),
        (&["-x", "a"][..], "ipccat: illegal option -- x\nipccat: usage: ipccat path\n"),
    ] {
        let o = run(cmd("ipccat").args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), err);
    }
}

#[test]
fn copies_every_byte_until_eof_then_exits_0() {
    use std::io::Write;
    let d = TempDir::new();
    let s = d.join("s");
    let l = std::os::unix::net::UnixListener::bind(&s).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let sent = data.clone();
    let server = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        for chunk in sent.chunks(4093) {
            c.write_all(chunk).unwrap();
        }
    });
    let o = run(cmd("ipccat").arg(&s), 20);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(o.stdout == data, "got {} bytes, not the {} sent", o.stdout.len(), data.len());
    server.join().unwrap();
}

#[test]
fn connection_refused() {
    let d = TempDir::new();
    let s = d.join("dead");
    drop(std::os::unix::net::UnixListener::bind(&s).unwrap());
    let o = run(cmd("ipccat").arg(&s), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipccat: unable to connect to {}: connection refused\n", s.display()));
}

/// Started with stdout closed, ipccat must fail cleanly: its socket must
/// not land on descriptor 1, where it would send the server's data back.
#[test]
fn stdout_closed_fails_cleanly_and_sends_nothing_back() {
    use std::io::{Read, Write};
    let d = TempDir::new();
    let s = d.join("s");
    let l = std::os::unix::net::UnixListener::bind(&s).unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        c.write_all(b"hello\n").unwrap();
        let mut back = Vec::new();
        let _ = c.read_to_end(&mut back);
        back
    });
    let o = run(std::process::Command::new("sh").args(["-c", "exec \"$0\" \"$1\" >&-"]).arg(bin("ipccat")).arg(&s), 10);
    assert_eq!(o.status.code(), Some(111), "{}", stderr(&o));
    assert_eq!(stderr(&o), "ipccat: fatal: unable to write to stdout: bad file descriptor\n");
    assert_eq!(server.join().unwrap(), b"", "nothing may be sent to the server");
}
