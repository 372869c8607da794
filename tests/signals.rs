//! What a server started from a script or another program inherits, and
//! what its handlers start with: a signal the launcher ignored and the
//! server never uses stays ignored (SIGINT and SIGQUIT under `&`, SIGHUP
//! under nohup), the signals it uses are at default in handlers, and
//! handlers start with an empty mask. As s6's servers (compared here when
//! installed) and the original's (tests/compat_original.rs).
use crate::common;
use common::launch::{connect, mask, process_signals, served, Launcher};
use common::*;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;

/// The handler's SigIgn and SigBlk (as names) under `launcher`, for a
/// server run as `server SOCK cat /proc/self/status`.
fn handler_signals(server: &OsStr, launcher: Launcher) -> (String, String) {
    let d = TempDir::new();
    let sock = d.join("s");
    let argv = [server, sock.as_os_str(), "cat".as_ref(), "/proc/self/status".as_ref()];
    let _srv = launcher.start(&argv, &d.join("log"));
    let status = served(&sock, b"").unwrap_or_else(|| panic!("{launcher:?}: {server:?} never served"));
    let status = String::from_utf8(status).unwrap();
    (mask(&status, "SigIgn:"), mask(&status, "SigBlk:"))
}

/// What the handler of each launcher starts with (Python, the blocking
/// launcher, ignores SIGPIPE and SIGXFSZ itself).
fn expected(launcher: Launcher) -> (&'static str, &'static str) {
    match launcher {
        Launcher::Background => ("INT,QUIT", "-"),
        Launcher::Nohup => ("HUP", "-"),
        Launcher::IgnoresPipe => ("-", "-"),
        Launcher::BlocksSignals => ("XFSZ", "-"),
    }
}

#[test]
fn handlers_keep_what_the_launcher_ignored_and_the_server_does_not_use() {
    let s6 = which("s6-ipcserver");
    if s6.is_none() {
        skip("no s6-ipcserver to compare with (apt-get install s6); ours checked alone");
    }
    for launcher in Launcher::ALL {
        if let Some(what) = launcher.missing() {
            skip(&format!("{launcher:?}: no {what}"));
            continue;
        }
        let (want_ignored, want_blocked) = expected(launcher);
        let ours = handler_signals(bin("ipcserver").as_os_str(), launcher);
        assert_eq!((ours.0.as_str(), ours.1.as_str()), (want_ignored, want_blocked), "{launcher:?}");
        if let Some(s6) = &s6 {
            assert_eq!(handler_signals(s6.as_os_str(), launcher), ours, "{launcher:?}: s6-ipcserver and ours");
        }
    }
}

/// Started with `&` from a script, the server and its handlers ignore
/// SIGINT: a Ctrl-C to the script does not take the service down.
#[test]
fn started_with_an_ampersand_the_server_survives_sigint() {
    if let Some(what) = Launcher::Background.missing() {
        return skip(&format!("no {what}"));
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let argv = [bin("ipcserver").into_os_string(), sock.clone().into_os_string(), "echo".into(), "hello".into()];
    let argv: Vec<&OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
    let srv = Launcher::Background.start(&argv, &d.join("log"));
    assert_eq!(served(&sock, b"").as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(process_signals(srv.pid).0, "INT,QUIT");
    // An ignored signal is discarded when sent: if it were not, the server
    // would be dead before the next client.
    assert!(kill(srv.pid, 2));
    assert_eq!(served(&sock, b"").as_deref(), Some(&b"hello\n"[..]), "SIGINT ended the server");
    assert!(alive(srv.pid));
}

/// The same for a preforking server: its children too keep SIGINT and
/// SIGQUIT ignored (and SIGPIPE, which they ignore themselves).
#[test]
fn a_preforking_server_started_with_an_ampersand_survives_sigint() {
    if let Some(what) = Launcher::Background.missing() {
        return skip(&format!("no {what}"));
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let argv = [bin("ipcprint").into_os_string(), "-c".into(), "2".into(), sock.clone().into_os_string()];
    let argv: Vec<&OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
    let srv = Launcher::Background.start(&argv, &d.join("log"));
    assert!(served(&sock, b"").is_some());
    let kids = children(srv.pid).0;
    assert_eq!(kids.len(), 2, "{kids:?}");
    for &kid in &kids {
        assert_eq!(process_signals(kid), ("INT,QUIT,PIPE".to_string(), "-".to_string()), "child {kid}");
    }
    for pid in kids.iter().chain([&srv.pid]) {
        assert!(kill(*pid, 2));
    }
    assert!(served(&sock, b"").is_some(), "SIGINT ended the server");
    assert_eq!(children(srv.pid).0, kids, "children were replaced");
}

/// Sends "a", reads it back, lets `between` act, then sends "b": what
/// comes back (the handler is `cat`).
fn echo_around(sock: &Path, between: impl FnOnce()) -> String {
    let mut s = connect(sock).unwrap();
    s.write_all(b"a\n").unwrap();
    let mut first = [0u8; 2];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"a\n");
    between();
    let _ = s.write_all(b"b\n");
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    rest
}

/// Under nohup the server ignores SIGHUP, as the original does: running
/// handlers go on. Without it SIGHUP ends them (SIGTERM), as s6's does.
#[test]
fn under_nohup_sighup_leaves_the_handlers_running() {
    if let Some(what) = Launcher::Nohup.missing() {
        return skip(&format!("no {what}"));
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let argv = [bin("ipcserver").into_os_string(), sock.clone().into_os_string(), "cat".into()];
    let argv: Vec<&OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
    let srv = Launcher::Nohup.start(&argv, &d.join("log"));
    // Once a client is served the chain has reached the accept loop.
    let hang_up = || {
        assert_eq!(process_signals(srv.pid).0, "HUP");
        assert!(kill(srv.pid, 1));
    };
    assert_eq!(echo_around(&sock, hang_up), "b\n", "SIGHUP ended the handler under nohup");
    drop(srv);
    std::fs::remove_file(&sock).unwrap();

    let srv = Server::start(cmd("ipcserver").arg(&sock).arg("cat"), &sock);
    let hang_up = || {
        let handlers = children(srv.pid()).0;
        srv.signal(1);
        // The handlers end once the server has read the signal: "b" is
        // written after that, not in a race with it.
        let ended = wait_until(10, || handlers.iter().all(|h| !children(srv.pid()).0.contains(h)));
        assert!(ended, "SIGHUP left the handlers {handlers:?} running");
    };
    assert_eq!(echo_around(&sock, hang_up), "", "SIGHUP left the handler running");
}
