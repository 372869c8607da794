mod common;
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
    assert_eq!(stderr(&o), format!("ipccat: fatal: unable to connect to {}: no such file or directory\n", p.display()));
}

#[test]
fn usage_for_extra_operands_and_options() {
    for args in [&["a", "b"][..], &["-x", "a"][..]] {
        let o = run(cmd("ipccat").args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), "ipccat: usage: ipccat path\n");
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
    assert_eq!(stderr(&o), format!("ipccat: fatal: unable to connect to {}: connection refused\n", s.display()));
}
