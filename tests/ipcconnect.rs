//! ipcconnect, run for real: options, behaviour and messages.
use crate::common;
use common::*;
use std::io::{Read, Write};
use std::process::Command;

fn connect() -> Command {
    cmd("ipcconnect")
}

/// Every byte value, in a pseudo-random order, `len` bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

#[test]
fn usage_and_connect_errors() {
    let usage = "ipcconnect: usage: ipcconnect path\n";
    for (args, err) in [
        (&[][..], usage.to_string()),
        (&["a", "b"][..], usage.to_string()),
        (&["-x", "a"][..], format!("ipcconnect: illegal option -- x\n{usage}")),
    ] {
        let o = run(connect().args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), err);
    }
    let d = TempDir::new();
    let p = d.join("none");
    let o = run(connect().arg(&p), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcconnect: unable to connect to {}: no such file or directory\n", p.display()));
    let o = run(connect().arg(""), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcconnect: unable to connect to : connection refused\n");
}

#[test]
fn four_mebibytes_each_way_through_an_echo_server() {
    let d = TempDir::new();
    let s = d.join("s");
    // Reads and writes in turn, like cat: it stops reading while its
    // writes are blocked, so the client must read while it sends.
    let server = serve_once(&s, |c| {
        std::io::copy(&mut &c, &mut &c).unwrap();
    });
    let data = noise(4 << 20);
    let o = run_input(connect().arg(&s), &data, 60);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(o.stdout == data, "echoed data differs ({} bytes back)", o.stdout.len());
    server.join().unwrap();
}

#[test]
fn through_the_s6_server_chain() {
    if !have("s6-ipcserver") {
        return;
    }
    let d = TempDir::new();
    let s = d.join("s");
    let _server = Server::start(Command::new("s6-ipcserver").arg(&s).arg("cat"), &s);
    let data = noise(4 << 20);
    let o = run_input(connect().arg(&s), &data, 60);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout == data, "echoed data differs ({} bytes back)", o.stdout.len());
}

#[test]
fn end_of_stdin_half_closes_and_reading_goes_on() {
    let d = TempDir::new();
    let s = d.join("s");
    // Answers only after seeing the end of the request.
    let server = serve_once(&s, |mut c| {
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        c.write_all(format!("{} bytes\n", v.len()).as_bytes()).unwrap();
        c.write_all(&v[..10]).unwrap();
    });
    let data = noise(1 << 20);
    let o = run_input(connect().arg(&s), &data, 30);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut expect = b"1048576 bytes\n".to_vec();
    expect.extend_from_slice(&data[..10]);
    assert_eq!(o.stdout, expect);
    server.join().unwrap();
}

#[test]
fn empty_stdin() {
    let d = TempDir::new();
    let s = d.join("s");
    let server = serve_once(&s, |mut c| {
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
        c.write_all(format!("got {}\n", v.len()).as_bytes()).unwrap();
    });
    let o = run(connect().arg(&s), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "got 0\n");
    server.join().unwrap();
}

#[test]
fn a_server_that_answers_without_reading() {
    let data = noise(4 << 20);
    for _ in 0..5 {
        let d = TempDir::new();
        let s = d.join("s");
        let server = serve_once(&s, |mut c| {
            let mut some = [0u8; 100];
            c.read_exact(&mut some).unwrap();
            c.write_all(b"no thanks\n").unwrap();
        });
        let o = run_input(connect().arg(&s), &data, 30);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), "no thanks\n");
        assert_eq!(stderr(&o), "");
        server.join().unwrap();
    }
}
