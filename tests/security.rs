//! The attacks on the privileged-exec service (issue 16 §3), each run on
//! our ipcexec and, where it applies, on the original ucspi-ipc 0.67's
//! (`UCSPI_IPC_ORIGINAL=DIR`, its `bin/`) and on s6-sudod under
//! s6-ipcserver (Debian's s6). Ours must come out exactly as asserted;
//! the peers' outcomes are printed beside ours, one line a case:
//!
//!     security: CASE: ours=refused(111) original=ran-as-root s6=n/a
//!
//! and asserted only where the original's documents a known hole that
//! doc/security.md names (its uid wrap-around, its allow when no rule
//! matches, its programs on the server's terminal). A peer that is not
//! here is `skipped`; a case that does not apply to it is `n/a`.
//!
//! Outcomes: `ran-as-root`, `ran-as-UID` (the program ran, as that uid),
//! `denied(100)`, `refused(CODE)` (ipcexec exited CODE, nothing ran),
//! `crashed(SIGNAL)`, `held` (still there when the case gave up on it),
//! and words of the case's own. The whole suite needs root (it runs
//! programs as nobody and as root): SKIPPED otherwise. doc/security.md
//! says what each case guarantees.
use crate::common;
use common::exec::*;
use common::*;

use rustix::fd::AsFd;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The program most cases ask for: it says which uid it ran as.
const RAN: &str = "echo ran-as-$(id -u)";

/// A peer that is not installed here.
const SKIPPED: &str = "skipped";
/// A case that does not apply to a peer.
const NA: &str = "n/a";

/// The original's `bin/` directory, if given.
fn original() -> Option<PathBuf> {
    std::env::var_os("UCSPI_IPC_ORIGINAL").map(PathBuf::from)
}

/// Whether s6's s6-ipcserver, s6-sudod and s6-sudo are installed.
fn s6() -> bool {
    ["s6-ipcserver", "s6-sudod", "s6-sudo", "s6-envuidgid", "s6-applyuidgid"].iter().all(|p| which(p).is_some())
}

/// One line of the table, on the test's real stderr (the harness captures
/// `eprintln!`).
fn report(case: &str, ours: &str, original: &str, s6: &str) {
    let _ = writeln!(std::io::stderr().lock(), "security: {case}: ours={ours} original={original} s6={s6}");
}

/// Runs `f` for the original's directory, or says it is not here.
fn with_original(f: impl FnOnce(&Path) -> String) -> String {
    original().map_or_else(|| SKIPPED.to_string(), |dir| f(&dir))
}

/// Runs `f` when s6 is here, or says it is not.
fn with_s6(f: impl FnOnce() -> String) -> String {
    if s6() {
        f()
    } else {
        SKIPPED.to_string()
    }
}

/// Whether the suite can run here; says SKIPPED otherwise.
fn prerequisites() -> bool {
    need_root() && have("setpriv") && by_uid(NOBODY).is_some()
}

/// The outcome of a run that ended (`code`, 128+N for signal N, None
/// when it was killed after its time) with `out` on its stdout.
fn outcome(code: Option<i32>, out: &str) -> String {
    if let Some(uid) = out.lines().find_map(|l| l.strip_prefix("ran-as-")) {
        return if uid == "0" { "ran-as-root".to_string() } else { format!("ran-as-{uid}") };
    }
    match code {
        None => "held".to_string(),
        Some(100) => "denied(100)".to_string(),
        Some(c) if c > 128 => format!("crashed(signal {})", c - 128),
        Some(c) => format!("refused({c})"),
    }
}

fn outcome_of(o: &Output) -> String {
    outcome(o.status.code().or(o.status.signal().map(|s| 128 + s)), &stdout(o))
}

/// An ipcexec run by hand on `cdb`, for a client with nobody's ids.
fn direct(ipcexec: &Path, cdb: &Path, input: &[u8]) -> String {
    outcome_of(&exec_direct_with(ipcexec, cdb, (NOBODY, NOBODY), &[], input))
}

/// A directory anyone may write in (for what programs run as nobody
/// leave).
fn open_dir(parent: &Path) -> PathBuf {
    let d = parent.join("w");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    d
}

/// Each malformed or oversized request, by hand on a pipe, with rules
/// that allow whatever parses: ours refuses all but the valid ones.
#[test]
fn malformed_and_oversized_requests() {
    if !prerequisites() {
        return;
    }
    let d = TempDir::new();
    let cdb = exec_rules(d.path(), ":allow\n");
    let ran = |extra: &[&str]| {
        let mut args = vec!["sh", "-c", RAN];
        args.extend_from_slice(extra);
        request("65534", &args)
    };
    let body = format!("sh\0-c\0{RAN}\0");
    let mut cut = ran(&[]);
    cut.pop();
    let many = |n: usize| ran(&vec!["x"; n - 3]);
    let long = |len: usize| ran(&["x".repeat(len - body.len() - 1).as_str()]);
    let mut zeros = b"00000000000000000005:65534,".to_vec();
    zeros.extend_from_slice(&ran(&[])[8..]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not a netstring (an HTTP request)", b"GET / HTTP/1.0\r\n\r\n".to_vec(), "refused(111)"),
        ("a 20-digit length", b"99999999999999999999:".to_vec(), "refused(111)"),
        ("a 21-digit length", b"999999999999999999999:".to_vec(), "refused(111)"),
        ("a length with 18 leading zeros", zeros, "ran-as-65534"),
        ("argc 0", request_bytes("65534", 0, b""), "refused(111)"),
        ("argc 1024", many(1024), "ran-as-65534"),
        ("argc 1025", many(1025), "refused(111)"),
        (
            "a NUL inside an argument (count 3, 4 NULs)",
            request_bytes("65534", 3, format!("{body}x\0").as_bytes()),
            "refused(111)",
        ),
        (
            "arguments hidden behind the count (count 1, 3 NULs)",
            request_bytes("65534", 1, body.as_bytes()),
            "refused(111)",
        ),
        (
            "arguments without their final NUL",
            request_bytes("65534", 3, &body.as_bytes()[..body.len() - 1]),
            "refused(111)",
        ),
        ("131072 bytes of arguments", long(131072), "ran-as-65534"),
        ("131073 bytes of arguments", long(131073), "refused(111)"),
        ("a request cut short", cut, "refused(111)"),
        ("nothing at all", Vec::new(), "refused(111)"),
    ];
    for (case, input, want) in cases {
        let ours = direct(&bin("ipcexec"), &cdb, &input);
        let theirs = with_original(|o| direct(&o.join("ipcexec"), &cdb, &input));
        report(
            case,
            &ours,
            &theirs,
            if case.starts_with("not a") || case.contains("20-digit") { "see s6_garbage" } else { NA },
        );
        assert_eq!(ours, want, "{case}");
    }
}

/// What s6-sudod does with bytes that are not its protocol.
#[test]
fn s6_garbage() {
    if !prerequisites() || !s6() {
        return;
    }
    let d = TempDir::new();
    let mark = open_dir(d.path()).join("ran");
    let s = ExecServer::start_command("", |sock, _| {
        let mut c = Command::new("s6-ipcserver");
        c.arg(sock).args(["s6-sudod", "sh", "-c"]).arg(format!("touch {}", mark.display()));
        c
    });
    for (case, bytes) in [
        ("not a netstring (an HTTP request)", &b"GET / HTTP/1.0\r\n\r\n"[..]),
        ("a 20-digit length", b"99999999999999999999:"),
    ] {
        let (closed, _) = exchange(&s.sock, bytes, 5);
        let s6 = match (mark.exists(), closed) {
            (true, _) => "ran".to_string(),
            (false, Some(_)) => "refused".to_string(),
            (false, None) => "held".to_string(),
        };
        report(&format!("{case} (to s6-sudod)"), NA, NA, &s6);
    }
}

/// Connects to `sock`, writes `bytes` and keeps its side open: when the
/// server closed the connection (None: still open after `secs`), and
/// what it sent.
fn exchange(sock: &Path, bytes: &[u8], secs: u64) -> (Option<Duration>, Vec<u8>) {
    let start = Instant::now();
    let mut c = UnixStream::connect(sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let _ = c.write_all(bytes);
    let mut back = Vec::new();
    let read = c.read_to_end(&mut back);
    (closed(read, start), back)
}

/// When a read that waited for the server to close ended (`read`'s
/// result), if it did not give up waiting: an end of file, or a reset
/// (the server closed with bytes of ours unread).
fn closed(read: std::io::Result<usize>, start: Instant) -> Option<Duration> {
    match read {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
        _ => Some(start.elapsed()),
    }
}

/// Uids out of range, and uids with leading zeros: ours never wraps one
/// onto another; the original wraps 2^32 to 0 and runs as root.
#[test]
fn uids_out_of_range() {
    if !prerequisites() {
        return;
    }
    let d = TempDir::new();
    let allow = exec_rules(d.path(), ":allow\n");
    let d2 = TempDir::new();
    let no_root = exec_rules(d2.path(), ",0.sh:deny\n:allow\n");
    let cases: [(&str, &str, &Path, &str); 9] = [
        ("uid 4294967296 (2^32)", "4294967296", &allow, "refused(111)"),
        ("uid 18446744073709551616 (2^64)", "18446744073709551616", &allow, "refused(111)"),
        ("uid 4294967295 ((uid_t)-1)", "4294967295", &allow, "refused(111)"),
        ("uid -1", "-1", &allow, "refused(111)"),
        ("uid with a blank", " 0", &allow, "refused(111)"),
        ("uid +0", "+0", &allow, "refused(111)"),
        ("uid 0065534 (leading zeros)", "0065534", &allow, "ran-as-65534"),
        ("uid 000 against a rule denying root", "000", &no_root, "denied(100)"),
        ("uid 2^32 against a rule denying root", "4294967296", &no_root, "refused(111)"),
    ];
    for (case, uid, cdb, want) in cases {
        let input = request(uid, &["sh", "-c", RAN]);
        let ours = direct(&bin("ipcexec"), cdb, &input);
        let theirs = with_original(|o| direct(&o.join("ipcexec"), cdb, &input));
        report(case, &ours, &theirs, NA);
        assert_eq!(ours, want, "{case}");
        // The original's known hole, which doc/security.md names.
        if uid == "4294967296" && *cdb == *allow && original().is_some() {
            assert_eq!(theirs, "ran-as-root", "{case}: the original no longer wraps?");
        }
    }
}

/// Program names that differ from the one a rule allows by a path, a
/// `..` or a blank are other keys: denied.
#[test]
fn command_names() {
    if !prerequisites() {
        return;
    }
    let d = TempDir::new();
    let cdb = exec_rules(d.path(), ",65534.sh:allow\n:deny\n");
    for (name, want) in [
        ("sh", "ran-as-65534"),
        ("/bin/sh", "denied(100)"),
        ("../../../../bin/sh", "denied(100)"),
        ("./sh", "denied(100)"),
        (" sh", "denied(100)"),
        ("sh ", "denied(100)"),
        ("s h", "denied(100)"),
        ("sh\n", "denied(100)"),
    ] {
        let input = request("65534", &[name, "-c", RAN]);
        let ours = direct(&bin("ipcexec"), &cdb, &input);
        let theirs = with_original(|o| direct(&o.join("ipcexec"), &cdb, &input));
        report(&format!("command name {name:?}"), &ours, &theirs, NA);
        assert_eq!(ours, want, "{name:?}");
    }
}

/// A program name longer than a rules key must not be looked up as
/// another name (the empty one): a rule for it (which the original's
/// ipcexecrules compiles, ours refuses) must not run the long name.
#[test]
fn a_program_name_longer_than_a_key() {
    if !prerequisites() {
        return;
    }
    let d = TempDir::new();
    let cdb = d.join("rules.cdb");
    write_cdb(&cdb, &[(b",65534.", b"=/bin/sh\0"), (b"", b"D")]);
    for len in [4080, 4097, 8000] {
        let name = "a".repeat(len);
        let input = request("65534", &[&name, "-c", RAN]);
        let o = exec_direct(&cdb, (NOBODY, NOBODY), &[], &input);
        let ours = outcome_of(&o);
        let theirs = with_original(|dir| direct(&dir.join("ipcexec"), &cdb, &input));
        report(&format!("a {len}-byte program name, a rule for the empty name"), &ours, &theirs, NA);
        assert_eq!(ours, "refused(111)", "{len}: {}", stderr(&o));
        assert_eq!(stderr(&o), "ipcserver: fatal: bad ipc request: program name too long\n");
    }
}

/// A cdb file of `records` (key, value), as no rules compiler writes it.
fn write_cdb(path: &Path, records: &[(&[u8], &[u8])]) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // Close-on-exec, as every descriptor a test opens: the other tests'
    // children, started meanwhile by other threads, must not inherit it.
    let flags = rustix::fs::OFlags::WRONLY
        | rustix::fs::OFlags::CREATE
        | rustix::fs::OFlags::TRUNC
        | rustix::fs::OFlags::CLOEXEC;
    let fd = rustix::fs::open(name.as_c_str(), flags, rustix::fs::Mode::from_bits_truncate(0o644)).unwrap();
    let mut w = ucspi_ipc::cdb::Writer::new(fd.as_fd());
    for (key, value) in records {
        w.add(key, value).unwrap();
    }
    w.finish().unwrap();
}

/// A script that writes its pid into `mark` and waits, as `sleep`, with
/// the descriptors it was given, to be looked at by [`program_fds`].
fn fd_probe(mark: &Path) -> String {
    format!("echo $$ >{}.tmp && mv {0}.tmp {0}; exec sleep 30", mark.display())
}

/// What the descriptors 0, 1 and 2 of the [`fd_probe`] that writes
/// `mark` are, in short (`socket`, `null`, a path), once it has said its
/// pid, unless `gone` says first that it will not; then it is killed, by
/// pid. Empty when it did not run.
fn program_fds(mark: &Path, gone: impl Fn() -> bool) -> Vec<String> {
    let pid = || std::fs::read_to_string(mark).ok().and_then(|p| p.trim().parse::<i32>().ok());
    wait_until(10, || pid().is_some() || gone());
    let Some(pid) = pid() else { return Vec::new() };
    let kinds = (0..3)
        .map(|n| {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{n}")).unwrap_or_default();
            let target = target.to_string_lossy();
            target.split(':').next().unwrap_or("").trim_start_matches('/').replace("dev/", "")
        })
        .collect();
    kill(pid, 9);
    kinds
}

/// Descriptors: of odd types, too many, without the marker, split, more
/// than a message holds. Through the server, the test (root) the client.
#[test]
fn descriptors() {
    if !prerequisites() {
        return;
    }
    let rules = "0,65534.sh:allow\n:deny\n";
    let ours = ExecServer::start(rules);
    let theirs = original().map(|o| {
        ExecServer::start_command(rules, |sock, cdb| {
            let mut c = Command::new(o.join("ipcserver"));
            c.arg("-v").arg(sock).arg(o.join("ipcexec")).arg(cdb);
            c
        })
    });
    let marks = open_dir(ours.dir.path());
    let mark = marks.join("fds");
    // What the program had on 0, 1 and 2, in `mark`.
    let probe = fd_probe(&mark);
    let req = request("65534", &["sh", "-c", &probe]);
    // Close-on-exec, so that no child of another test (a thread of this
    // process) inherits them; the copies sent with SCM_RIGHTS arrive
    // without the flag whatever it is here.
    let open =
        |p: &str, flags| rustix::fs::open(p, flags | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty()).unwrap();
    let null = open("/dev/null", rustix::fs::OFlags::RDWR);
    let dir = open("/tmp", rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY);
    let (sock_a, _sock_b) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let odd = [sock_a.as_fd(), dir.as_fd(), null.as_fd()];
    let four = [null.as_fd(); 4];
    let one = [null.as_fd()];
    // How a server took the request: what the program had, the status
    // sent back, or how it refused.
    let served = |s: &ExecServer, parts: &[Part<'_>]| {
        let _ = std::fs::remove_file(&mark);
        let _ = std::fs::write(&s.log, "");
        let (kinds, back) = std::thread::scope(|scope| {
            let sent = scope.spawn(|| send_with_fds(&s.sock, parts));
            let kinds = program_fds(&mark, || sent.is_finished());
            (kinds, String::from_utf8_lossy(&sent.join().unwrap()).into_owned())
        });
        if !kinds.is_empty() {
            format!("ran-with({})", kinds.join(","))
        } else if wait_until(5, || s.log().contains("fatal")) {
            "refused(111)".to_string()
        } else {
            format!("closed({back})")
        }
    };
    let marked = [b"1:F,".as_slice(), &req].concat();
    let cases: [(&str, Vec<Part<'_>>, &str); 5] = [
        ("1:F, with a socket, a directory and /dev/null", vec![(&marked, &odd)], "ran-with(socket,tmp,null)"),
        ("1:F, with four descriptors", vec![(&marked, &four)], "refused(111)"),
        ("three descriptors without 1:F,", vec![(&req, &odd)], "refused(111)"),
        (
            "1:F, with its descriptors split over three messages",
            vec![(b"1:F,", &one), (&req[..4], &one), (&req[4..], &one)],
            "ran-with(null,null,null)",
        ),
        ("no descriptor, no 1:F,", vec![(&req, &[])], "ran-with(socket,socket,socket)"),
    ];
    for (case, parts, want) in cases {
        let o = served(&ours, &parts);
        let t = theirs.as_ref().map_or(SKIPPED.to_string(), |t| served(t, &parts));
        report(case, &o, &t, if case.contains("directory") { "see s6_descriptors" } else { NA });
        assert_eq!(o, want, "{case}: {}", ours.log());
    }
    // More than a message holds (the kernel truncates: MSG_CTRUNC): refused,
    // and no copy is kept (the pipe's write end is closed everywhere:
    // close-on-exec, or a long-lived child of another test would hold it).
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let many = vec![w.as_fd(); 253];
    let o = served(&ours, &[(&marked, &many)]);
    let t = theirs.as_ref().map_or(SKIPPED.to_string(), |t| served(t, &[(&marked, &many)]));
    drop(many);
    drop(w);
    let mut fds = [rustix::event::PollFd::new(&r, rustix::event::PollFlags::IN)];
    let timeout = rustix::event::Timespec { tv_sec: 5, tv_nsec: 0 };
    let closed = rustix::event::poll(&mut fds, Some(&timeout)).unwrap() == 1
        && rustix::io::read(&r, &mut [0u8; 1]).unwrap() == 0;
    report("1:F, with 253 descriptors (MSG_CTRUNC)", &format!("{o}, kept none: {closed}"), &t, NA);
    assert_eq!((o.as_str(), closed), ("refused(111)", true));
}

/// s6-sudod given descriptors of odd types (s6-sudoc always sends its 0,
/// 1 and 2).
#[test]
fn s6_descriptors() {
    if !prerequisites() || !s6() {
        return;
    }
    let d = TempDir::new();
    let mark = open_dir(d.path()).join("fds");
    let probe = fd_probe(&mark);
    let s = ExecServer::start_command("", |sock, _| {
        let mut c = Command::new("s6-ipcserver");
        c.arg(sock).args(["s6-sudod", "sh", "-c", &probe]);
        c
    });
    let (a, _b) = UnixStream::pair().unwrap();
    let mut c = Command::new("s6-sudo");
    c.arg(&s.sock)
        .stdin(std::fs::File::open("/tmp").unwrap())
        .stdout(std::fs::File::create("/dev/null").unwrap())
        .stderr(std::os::fd::OwnedFd::from(a));
    let mut child = c.spawn().unwrap();
    let kinds = program_fds(&mark, || false);
    if wait_timeout(&mut child, 10).is_none() {
        kill(child.id() as i32, 9);
        let _ = child.wait();
    }
    report("1:F, with a socket, a directory and /dev/null", NA, NA, &format!("ran-with({})", kinds.join(",")));
}

/// A client that goes away while its program runs: with -F the program
/// gets SIGTERM (as from s6-sudod); without, it reads the end of its
/// input.
#[test]
fn clients_that_go_away() {
    if !prerequisites() {
        return;
    }
    let rules = "0,65534.sh:allow\n:deny\n";
    let ours = ExecServer::start(rules);
    let marks = open_dir(ours.dir.path());
    let vanish = |s: &ExecServer, opts: &[&str], eof: bool, name: &str| {
        let mark = marks.join(name);
        let probe = departure_probe(&mark, eof);
        client_vanishes(&mut s.command(opts, "65534", &["sh", "-c", &probe]), &mark).unwrap_or("nothing".into())
    };
    let f = vanish(&ours, &["-F"], false, "f");
    let s6 = with_s6(|| {
        let mark = marks.join("s6");
        let probe = departure_probe(&mark, false);
        let s = ExecServer::start_command("", |sock, _| {
            let mut c = Command::new("s6-ipcserver");
            c.arg(sock).args(["s6-sudod", "sh", "-c", &probe]);
            c
        });
        client_vanishes(Command::new("s6-sudo").arg(&s.sock), &mark).unwrap_or("nothing".into())
    });
    report("a -F client killed while its program runs", &f, NA, &s6);
    assert_eq!(f, "term");
    let plain = vanish(&ours, &[], true, "plain");
    let theirs = with_original(|o| {
        let t = ExecServer::start_command(rules, |sock, cdb| {
            let mut c = Command::new(o.join("ipcserver"));
            c.arg(sock).arg(o.join("ipcexec")).arg(cdb);
            c
        });
        vanish(&t, &[], true, "original")
    });
    report("a plain client killed while its program reads its input", &plain, &theirs, NA);
    assert_eq!(plain, "eof");
}

/// Clients that send nothing, or a byte at a time: IPCEXEC_TIMEOUT=1 is
/// for the whole request.
#[test]
fn slow_clients() {
    if !prerequisites() {
        return;
    }
    let rules = ":allow\n";
    let server = |ipcserver: PathBuf, ipcexec: PathBuf| {
        ExecServer::start_command(rules, move |sock, cdb| {
            let mut c = Command::new(ipcserver);
            c.env("IPCEXEC_TIMEOUT", "1").arg(sock).arg(ipcexec).arg(cdb);
            c
        })
    };
    let ours = server(bin("ipcserver"), bin("ipcexec"));
    let theirs = original().map(|o| server(o.join("ipcserver"), o.join("ipcexec")));
    let s6 = s6().then(|| {
        ExecServer::start_command("", |sock, _| {
            let mut c = Command::new("s6-ipcserver");
            c.arg(sock).args(["s6-sudod", "true"]);
            c
        })
    });
    let said = |closed: Option<Duration>| match closed {
        Some(t) => format!("dropped({}s)", t.as_secs_f64().round()),
        None => "held(>4s)".to_string(),
    };
    let silent = |s: &ExecServer| said(exchange(&s.sock, b"", 4).0);
    let o = silent(&ours);
    report(
        "a client that sends nothing (IPCEXEC_TIMEOUT=1)",
        &o,
        &theirs.as_ref().map_or(SKIPPED.into(), silent),
        &s6.as_ref().map_or(SKIPPED.into(), silent),
    );
    // Dropped, not held: the seconds it took (1, plus start-up) vary
    // with the machine's load.
    assert!(o.starts_with("dropped("), "{o}");
    // One byte every 200 ms of a request that would take 8 s.
    let trickle = |s: &ExecServer| {
        let bytes = request("65534", &["sh", "-c", "echo a request of forty bytes"]);
        let mut c = UnixStream::connect(&s.sock).unwrap();
        let writer = c.try_clone().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let t = std::thread::spawn(move || {
            let mut w = writer;
            for b in bytes {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) || w.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let start = Instant::now();
        c.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
        let ended = closed(c.read_to_end(&mut Vec::new()), start);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(c);
        let _ = t.join();
        said(ended)
    };
    let o = trickle(&ours);
    report(
        "a client that sends a byte every 200 ms (IPCEXEC_TIMEOUT=1)",
        &o,
        &theirs.as_ref().map_or(SKIPPED.into(), trickle),
        NA,
    );
    // Dropped, not held: the seconds it took (1, plus start-up) vary
    // with the machine's load.
    assert!(o.starts_with("dropped("), "{o}");
}

/// One uid (root, here) holds every connection it may: another user is
/// still served with `-C`; the original's ipcserver has no `-C`.
#[test]
fn one_uid_flooding() {
    if !prerequisites() {
        return;
    }
    let rules = "65534,65534.sh:allow\n:deny\n";
    // (server, how many of the flood's connections it keeps, client)
    let nobody = |c: &mut Command| {
        let mut n = Command::new("setpriv");
        n.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(c.get_program()).args(c.get_args());
        n
    };
    let flood = |s: &ExecServer, kept: usize, client: Command| {
        let held: Vec<UnixStream> = (0..4).map(|_| UnixStream::connect(&s.sock).unwrap()).collect();
        let full = wait_until(10, || descendants(s.pid()).len() >= kept);
        let mut client = client;
        let served = run_input_within(&mut client, b"", 5)
            .map(|o| stdout(&o))
            .map_or("starved(>5s)".to_string(), |out| if out == "served\n" { "served".into() } else { out });
        drop(held);
        format!("{served}{}", if full { "" } else { " (the flood was not all held)" })
    };
    let ours = ExecServer::start_command(rules, |sock, cdb| {
        let mut c = cmd("ipcserver");
        c.args(["-v", "-c", "4", "-C", "2"]).arg(sock).arg(bin("ipcexec")).arg(cdb);
        c
    });
    let o = flood(&ours, 2, nobody(&mut ours.command(&[], "65534", &["sh", "-c", "echo served"])));
    let t = with_original(|dir| {
        let t = ExecServer::start_command(rules, |sock, cdb| {
            let mut c = Command::new(dir.join("ipcserver"));
            c.args(["-v", "-c", "4"]).arg(sock).arg(dir.join("ipcexec")).arg(cdb);
            c
        });
        let client = nobody(&mut t.command(&[], "65534", &["sh", "-c", "echo served"]));
        flood(&t, 4, client)
    });
    let s6 = with_s6(|| {
        let s = ExecServer::start_command("", |sock, _| {
            let mut c = Command::new("s6-ipcserver");
            c.args(["-c", "4", "-C", "2"]).arg(sock).args(["s6-sudod", "echo", "served"]);
            c
        });
        flood(&s, 2, nobody(Command::new("s6-sudo").arg(&s.sock)))
    });
    report("one uid holds 4 connections (-c 4 -C 2; the original: -c 4)", &o, &t, &s6);
    assert_eq!(o, "served");
    assert!(ours.log().contains("ipcserver: warning: dropping a connection from uid 0: local limit of 2 reached"));
}

/// Rules replaced (ipcexecrules' atomic rename) again and again while
/// requests are served: each request gets one rules file or the other,
/// whole.
#[test]
fn rules_replaced_during_requests() {
    if !prerequisites() {
        return;
    }
    let (a, b) = (":allow,V=\"a\"\n", ":allow,V=\"b\"\n");
    let race = |ipcserver: PathBuf, ipcexec: PathBuf, ipcexecrules: PathBuf| {
        let s = ExecServer::start_command(a, |sock, cdb| {
            let mut c = Command::new(ipcserver);
            c.arg(sock).arg(ipcexec).arg(cdb);
            c
        });
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stopped, dir) = (stop.clone(), s.dir.path().to_path_buf());
        let compiler = std::thread::spawn(move || {
            let mut n = 0;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) && n < 2000 {
                exec_rules_with(&ipcexecrules, &dir, [a, b][n % 2]);
                n += 1;
            }
            n
        });
        let answers: Vec<String> =
            (0..100).map(|_| stdout(&run(&mut s.command(&[], "0", &["printenv", "V"]), 10))).collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let compiled = compiler.join().unwrap();
        let whole = answers.iter().filter(|v| *v == "a\n" || *v == "b\n").count();
        format!("{whole}/100 served ({compiled} replacements)")
    };
    let o = race(bin("ipcserver"), bin("ipcexec"), bin("ipcexecrules"));
    let t = with_original(|d| race(d.join("ipcserver"), d.join("ipcexec"), d.join("ipcexecrules")));
    report("rules replaced by ipcexecrules during 100 requests", &o, &t, NA);
    assert!(o.starts_with("100/100 served"), "{o}");
}

/// Rules files that are not rules: missing, empty, cut short, corrupt, a
/// rule of an unknown kind, a directory, a FIFO. And a file without a
/// final `:deny` that no rule matches.
#[test]
fn rules_files_that_are_not_rules() {
    if !prerequisites() {
        return;
    }
    let d = TempDir::new();
    let valid = std::fs::read(exec_rules(d.path(), ":allow\n")).unwrap();
    let path = |name: &str| d.join(name);
    std::fs::write(path("empty.cdb"), "").unwrap();
    std::fs::write(path("cut.cdb"), &valid[..1000]).unwrap();
    std::fs::write(path("corrupt.cdb"), vec![0xff; 2048]).unwrap();
    write_cdb(&path("unknown.cdb"), &[(b"", b"Z")]);
    std::fs::create_dir(path("dir.cdb")).unwrap();
    assert!(Command::new("mkfifo").arg(path("fifo.cdb")).status().unwrap().success());
    let no_deny = d.join("nodeny");
    std::fs::create_dir(&no_deny).unwrap();
    let no_deny = exec_rules(&no_deny, ",0.other:allow\n");
    let input = request("65534", &["sh", "-c", RAN]);
    for (case, cdb, want) in [
        ("rules file missing", path("none.cdb"), "refused(111)"),
        ("rules file empty", path("empty.cdb"), "refused(111)"),
        ("rules file cut short", path("cut.cdb"), "refused(111)"),
        ("rules file corrupt", path("corrupt.cdb"), "refused(111)"),
        ("a rule of an unknown kind", path("unknown.cdb"), "refused(111)"),
        ("rules file a directory", path("dir.cdb"), "refused(111)"),
        ("rules file a FIFO", path("fifo.cdb"), "refused(111)"),
        ("no rule matches (no final :deny)", no_deny.clone(), "denied(100)"),
    ] {
        let start = Instant::now();
        let ours = direct(&bin("ipcexec"), &cdb, &input);
        let took = start.elapsed();
        let theirs = with_original(|o| {
            run_input_within(
                Command::new(o.join("ipcexec")).arg(&cdb).env("IPCREMOTEEUID", "65534").env("IPCREMOTEEGID", "65534"),
                &input,
                3,
            )
            .map_or("held(>3s)".to_string(), |o| outcome_of(&o))
        });
        report(case, &ours, &theirs, NA);
        assert_eq!(ours, want, "{case}");
        assert!(took < Duration::from_secs(5), "{case} took {took:?}");
        // The original's known hole, which doc/security.md names.
        if cdb == no_deny && original().is_some() {
            assert_eq!(theirs, "ran-as-65534", "{case}: the original no longer allows?");
        }
    }
}

/// Starts `server(socket, rules.cdb)` as an admin might from a root
/// shell: on a terminal (its controlling terminal), with supplementary
/// groups 0, 4 and 27, descriptor 5 open on a file only root may read,
/// and PATH and SERVER_VAR alone in its environment.
fn launched_on_a_terminal(rules: &str, server: impl FnOnce(&Path, &Path) -> Vec<std::ffi::OsString>) -> ExecServer {
    const LAUNCH: &str = "import os, pty, sys\n\
        os.dup2(os.open(sys.argv[1], os.O_RDONLY), 5)\n\
        os.setgroups([0, 4, 27])\n\
        pid, fd = pty.fork()\n\
        if pid == 0: os.execv(sys.argv[2], sys.argv[2:])\n\
        while True:\n\
        \x20   try: data = os.read(fd, 4096)\n\
        \x20   except OSError: break\n\
        \x20   if not data: break\n";
    let dir = TempDir::new();
    let secret = dir.join("secret");
    std::fs::write(&secret, "root only\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cdb = exec_rules(dir.path(), rules);
    ExecServer::start_in(dir, &cdb, |sock, cdb| {
        // Debian's python3, not a shim that adds variables of its own.
        let python = Path::new("/usr/bin/python3");
        let mut c = Command::new(if python.exists() { python.to_path_buf() } else { which("python3").unwrap() });
        c.env_clear().env("PATH", "/usr/bin:/bin").env("SERVER_VAR", "server");
        c.args(["-c", LAUNCH]).arg(&secret).args(server(sock, cdb));
        c
    })
}

/// What a program had when it ran.
struct State {
    /// `pid=P session=own|inherited tty=yes|no`, its own report.
    said: String,
    /// `uid=U gid=G groups=...`
    ids: String,
    /// CapInh, CapPrm, CapEff, CapBnd, CapAmb.
    caps: [u64; 5],
    fds: String,
    env: std::collections::BTreeMap<String, String>,
}

/// The probe a program runs: it reports its session and terminal, then
/// waits (as `sleep`, with the same descriptors) to be looked at.
const STATE_PROBE: &str = "read -r _ _ _ _ _ sid _ </proc/$$/stat; \
    if [ \"$sid\" = $$ ]; then s=own; else s=inherited; fi; \
    if (exec </dev/tty) 2>/dev/null; then t=yes; else t=no; fi; \
    echo \"pid=$$ session=$s tty=$t\"; exec sleep 30";

/// Runs `client` (whose program is [`STATE_PROBE`]), and looks at the
/// program from here while it waits; then ends it, by pid.
fn state_of(client: &mut Command) -> Option<State> {
    let mut child = client.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    });
    let finished = wait_until(10, || reader.is_finished());
    let said = if finished { reader.join().unwrap() } else { String::new() };
    let pid: Option<i32> = said.strip_prefix("pid=").and_then(|r| r.split(' ').next()).and_then(|p| p.parse().ok());
    // Looked at once it sleeps in `sleep`: just after that exec the
    // dynamic loader holds descriptor 3 for a moment (ld.so.cache, libc),
    // which is not something the program was given.
    let asleep = |pid: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.contains("(sleep) S ")
    };
    let state = pid.filter(|&pid| wait_until(10, || asleep(pid))).map(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("").split_whitespace().collect::<Vec<_>>()
        };
        let ids = format!("uid={} gid={} groups={}", field("Uid:")[0], field("Gid:")[0], field("Groups:").join(","));
        let cap = |n: &str| u64::from_str_radix(field(n)[0], 16).unwrap();
        let caps = [cap("CapInh:"), cap("CapPrm:"), cap("CapEff:"), cap("CapBnd:"), cap("CapAmb:")];
        let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort();
        let fds = fds.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let env = environ
            .split(|&b| b == 0)
            .filter_map(|v| {
                let v = String::from_utf8_lossy(v);
                v.split_once('=').map(|(n, v)| (n.to_string(), v.to_string()))
            })
            .collect();
        kill(pid, 9);
        State { said: said.clone(), ids, caps, fds, env }
    });
    if wait_timeout(&mut child, 10).is_none() {
        kill(child.id() as i32, 9);
        let _ = child.wait();
    }
    state
}

/// `setpriv` as nobody, with CLIENT_VAR and a claim to be root in the
/// environment, running `argv`.
fn as_nobody(argv: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "env", "CLIENT_VAR=client", "IPCREMOTEEUID=0"]);
    c.args(argv);
    c
}

/// The privilege state of the program: ids, groups, capabilities,
/// session, terminal, descriptors and environment, for a server started
/// as an admin might start it by hand (see [`launched_on_a_terminal`]).
#[test]
fn privilege_state_of_the_program() {
    if !prerequisites() || !have("python3") {
        return;
    }
    let rules = "65534,65534.sh:allow\n65534,0.sh:allow\n:deny\n";
    let ipcserver_with = |dir: PathBuf| {
        move |sock: &Path, cdb: &Path| {
            vec![dir.join("ipcserver").into(), sock.into(), dir.join("ipcexec").into(), cdb.into()]
        }
    };
    let ours = launched_on_a_terminal(rules, ipcserver_with(bin_dir()));
    let ours_as = |uid: &str, opts: &[&str]| {
        let mut argv: Vec<std::ffi::OsString> = vec![bin("ipcclient").into(), ours.sock.clone().into()];
        argv.push(bin("ipccommand").into());
        argv.extend(opts.iter().map(|o| o.into()));
        argv.extend([uid, "sh", "-c", STATE_PROBE].map(Into::into));
        state_of(&mut as_nobody(&argv.iter().map(|a| a.as_os_str()).collect::<Vec<_>>())).expect("our program ran")
    };
    let (nobody, root, with_f) = (ours_as("65534", &[]), ours_as("0", &[]), ours_as("65534", &["-F"]));
    let original = original().map(|o| {
        let t = launched_on_a_terminal(rules, ipcserver_with(o.clone()));
        let argv: Vec<std::ffi::OsString> = vec![
            bin("ipcclient").into(),
            t.sock.clone().into(),
            bin("ipccommand").into(),
            "65534".into(),
            "sh".into(),
            "-c".into(),
            STATE_PROBE.into(),
        ];
        let nobody = state_of(&mut as_nobody(&argv.iter().map(|a| a.as_os_str()).collect::<Vec<_>>()));
        let mut argv = argv;
        argv[3] = "0".into();
        let root = state_of(&mut as_nobody(&argv.iter().map(|a| a.as_os_str()).collect::<Vec<_>>()));
        (nobody, root)
    });
    let s6 = s6().then(|| {
        let s = launched_on_a_terminal("", |sock, _| {
            let mut argv = vec![which("s6-ipcserver").unwrap().into_os_string(), sock.into()];
            let chain = ["s6-envuidgid", "nobody", "s6-applyuidgid", "-U", "s6-sudod", "sh", "-c", STATE_PROBE];
            argv.extend(chain.map(Into::into));
            argv
        });
        state_of(&mut as_nobody(&["s6-sudo".as_ref(), s.sock.as_os_str()]))
    });
    let peer = |f: &dyn Fn(&State) -> String, which: u8| -> (String, String) {
        let t = match &original {
            None => SKIPPED.to_string(),
            Some((n, r)) => (if which == 0 { n } else { r }).as_ref().map_or("did not run".into(), f),
        };
        let s = match (&s6, which) {
            (None, _) => SKIPPED.to_string(),
            (Some(_), 1) => NA.to_string(),
            (Some(s), _) => s.as_ref().map_or("did not run".into(), f),
        };
        (t, s)
    };
    let row = |case: &str, f: &dyn Fn(&State) -> String, ours: &State, which: u8| {
        let (t, s) = peer(f, which);
        let o = f(ours);
        report(case, &o, &t, &s);
        o
    };
    let ids = |s: &State| s.ids.clone();
    assert_eq!(
        row("ids, target nobody (server's groups 0,4,27)", &ids, &nobody, 0),
        "uid=65534 gid=65534 groups=65534"
    );
    assert_eq!(row("ids, target root (server's groups 0,4,27)", &ids, &root, 1), "uid=0 gid=0 groups=0");
    let bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| u64::from_str_radix(v.trim(), 16).unwrap()))
        .unwrap();
    let caps = |s: &State| {
        let [inh, prm, eff, bnd, amb] = s.caps;
        let bnd = if bnd == bounding { "server's".to_string() } else { format!("{bnd:x}") };
        format!("inh={inh:x} prm={prm:x} eff={eff:x} amb={amb:x} bnd={bnd}")
    };
    assert_eq!(row("capabilities, target nobody", &caps, &nobody, 0), "inh=0 prm=0 eff=0 amb=0 bnd=server's");
    let word = |key: &'static str| {
        move |s: &State| s.said.split(' ').find_map(|w| w.strip_prefix(key)).unwrap_or("?").to_string()
    };
    assert_eq!(row("session of its own", &word("session="), &nobody, 0), "own");
    let tty = row("the server's controlling terminal", &word("tty="), &nobody, 0);
    assert_eq!(tty, "no");
    if let Some((Some(t), _)) = &original {
        // The original's known hole, which doc/security.md names.
        assert_eq!(word("tty=")(t), "yes", "the original's program no longer reaches the server's terminal?");
    }
    let fds = |s: &State| s.fds.clone();
    assert_eq!(row("descriptors (server started with 5 open on a root-only file)", &fds, &nobody, 0), "0,1,2");
    report("descriptors with -F", &with_f.fds, NA, NA);
    assert_eq!(with_f.fds, "0,1,2");
    let from_client = |s: &State| {
        format!(
            "CLIENT_VAR={} IPCREMOTEEUID={}",
            s.env.get("CLIENT_VAR").map_or("unset", |v| v),
            s.env.get("IPCREMOTEEUID").map_or("unset", |v| v)
        )
    };
    assert_eq!(
        row("the client's environment (CLIENT_VAR, IPCREMOTEEUID=0)", &from_client, &nobody, 0),
        "CLIENT_VAR=unset IPCREMOTEEUID=65534"
    );
    // The server's environment (its launcher's, the same for each peer)
    // against the program's, less what the probe's shell sets itself.
    let server = children(ours.pid()).0.first().copied().expect("the server runs");
    let environ = std::fs::read(format!("/proc/{server}/environ")).unwrap();
    let server_env: std::collections::BTreeSet<String> = environ
        .split(|&b| b == 0)
        .filter_map(|v| Some(String::from_utf8_lossy(v).split_once('=')?.0.to_string()))
        .collect();
    let names = |s: &State| {
        let shells = ["PWD", "OLDPWD", "SHLVL", "_"];
        let added: Vec<&str> = s
            .env
            .keys()
            .filter(|n| !server_env.contains(*n) && !shells.contains(&n.as_str()))
            .map(|n| n.as_str())
            .collect();
        let lost: Vec<&str> = server_env.iter().filter(|n| !s.env.contains_key(*n)).map(|n| n.as_str()).collect();
        format!("server's +{} -{}", added.join(","), lost.join(","))
    };
    assert_eq!(
        row("the program's environment", &names, &nobody, 0),
        "server's +IPCCONNNUM,IPCLOCALPATH,IPCREMOTEEGID,IPCREMOTEEUID,IPCREMOTEGIDLIST,IPCREMOTEPATH,IPCREMOTEPID,PROTO -"
    );
}

/// A terminal passed (`-F`) to a program run as another user: ours gives
/// it one of its own; s6-sudod passes the caller's.
#[test]
fn a_terminal_for_another_user() {
    if !prerequisites() || !have("script") {
        return;
    }
    let ours = ExecServer::start("0,65534.tty:allow\n:deny\n");
    let client =
        format!("{} {} {} -F 65534 tty", bin("ipcclient").display(), ours.sock.display(), bin("ipccommand").display());
    let o = terminal_seen(&client);
    let s6 = with_s6(|| {
        let s = ExecServer::start_command("", |sock, _| {
            let mut c = Command::new("s6-ipcserver");
            c.arg(sock).args(["s6-envuidgid", "nobody", "s6-applyuidgid", "-U", "s6-sudod", "tty"]);
            c
        });
        terminal_seen(&format!("s6-sudo {}", s.sock.display()))
    });
    report("a terminal passed to a program run as another user", &o, NA, &s6);
    assert_eq!(o, "its own");
}

/// Which terminal the program of `client` (run on a new terminal) had:
/// `its own`, `the caller's`, or what it said.
fn terminal_seen(client: &str) -> String {
    // (What `script` types when its input ends may reach the program's
    // terminal, which echoes it: `^@`, at the end of a line or on one of
    // its own, depending on when it comes.)
    let lines: Vec<String> =
        on_a_terminal(client).iter().map(|l| l.replace("^@", "")).filter(|l| !l.is_empty()).collect();
    match &lines[..] {
        [caller, program] if caller == program => "the caller's".to_string(),
        [_, program] if program.starts_with("/dev/pts/") => "its own".to_string(),
        other => format!("{other:?}"),
    }
}
