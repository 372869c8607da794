//! Starting a server the ways scripts and other programs do (`&` from sh,
//! `nohup`, a launcher that ignores SIGPIPE, one that blocks signals), and
//! reading the signal state a process starts with, for the tests of what
//! servers and their handlers inherit (tests/signals.rs, and the
//! differential test against the original).

use super::{kill, which};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a server is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// `prog &` in a non-interactive sh: SIGINT and SIGQUIT ignored.
    Background,
    /// `nohup prog`: SIGHUP ignored.
    Nohup,
    /// `trap "" PIPE; exec prog` in sh: SIGPIPE ignored.
    IgnoresPipe,
    /// A Python launcher that blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1,
    /// SIGPIPE and SIGCHLD (Python itself ignores SIGPIPE and SIGXFSZ).
    BlocksSignals,
}

impl Launcher {
    pub const ALL: [Launcher; 4] =
        [Launcher::Background, Launcher::Nohup, Launcher::IgnoresPipe, Launcher::BlocksSignals];

    /// Those of `launchers` that this machine can start programs with;
    /// the running test says SKIPPED for the others.
    pub fn available(launchers: &[Launcher]) -> Vec<Launcher> {
        let usable = |l: &&Launcher| match l.missing() {
            Some(what) => {
                super::skip(&format!("{l:?}: no {what}"));
                false
            }
            None => true,
        };
        launchers.iter().filter(usable).copied().collect()
    }

    /// What the launcher needs, if it is missing here. Under qemu-user
    /// none is usable: the emulator keeps the real signal dispositions to
    /// itself, and what an emulated server ignored is not what a program it
    /// executes finds (seen: SIGQUIT ignored by the server, at default in
    /// its native handler).
    pub fn missing(self) -> Option<&'static str> {
        if super::emulated() {
            return Some("native run (qemu-user does not hand an emulated program's dispositions on as they are)");
        }
        let needs = match self {
            Launcher::Background | Launcher::IgnoresPipe => "sh",
            Launcher::Nohup => "nohup",
            Launcher::BlocksSignals => "python3",
        };
        which(needs).is_none().then_some(needs)
    }

    /// Starts `argv` this way, stdin and stdout on /dev/null, stderr
    /// appended to `log_path`.
    pub fn start<S: AsRef<OsStr>>(self, argv: &[S], log_path: &Path) -> Launched {
        let log = || std::fs::OpenOptions::new().create(true).append(true).open(log_path).unwrap();
        let spawn = |c: &mut Command| {
            let child = c.args(argv).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log()).spawn().unwrap();
            Launched { pid: child.id() as i32, child: Some(child) }
        };
        match self {
            Launcher::Background => {
                // The shell prints the job's pid and exits; the job runs on.
                let script = r#"log=$1; shift; "$@" </dev/null >/dev/null 2>>"$log" & echo $!"#;
                let o = Command::new("sh")
                    .args(["-c", script, "sh"])
                    .arg(log_path)
                    .args(argv)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                assert!(o.status.success());
                Launched { pid: String::from_utf8_lossy(&o.stdout).trim().parse().unwrap(), child: None }
            }
            Launcher::Nohup => spawn(&mut Command::new("nohup")),
            Launcher::IgnoresPipe => spawn(Command::new("sh").args(["-c", r#"trap "" PIPE; exec "$@""#, "sh"])),
            Launcher::BlocksSignals => {
                let script = "import os, signal, sys\n\
                    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, \
                    signal.SIGUSR1, signal.SIGPIPE, signal.SIGCHLD})\n\
                    os.execvp(sys.argv[1], sys.argv[1:])";
                spawn(Command::new("python3").args(["-c", script]))
            }
        }
    }
}

/// A server started by a [`Launcher`]; dropping it kills it (SIGKILL, by
/// pid) and, first, its children.
pub struct Launched {
    pub pid: i32,
    child: Option<Child>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        for p in super::descendants(self.pid) {
            kill(p, 9);
        }
        kill(self.pid, 9);
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        }
    }
}

/// Connects to `sock`, trying again until the server listens (for 10 s
/// at most: a server without readiness notification, like the original,
/// or one whose launcher hides it, is waited for by trying).
pub fn connect(sock: &Path) -> Option<UnixStream> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(sock) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                return Some(s);
            }
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

/// What the server on `sock` sends, until it closes, to a client that
/// sends `input` ([`connect`]); None if it never listened or closed
/// without a word.
pub fn served(sock: &Path, input: &[u8]) -> Option<Vec<u8>> {
    let mut s = connect(sock)?;
    let _ = s.write_all(input);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    (!v.is_empty()).then_some(v)
}

/// Signals 32 and 33, which glibc keeps for its threads: the test
/// harness starts its children through glibc's posix_spawn (Rust's
/// `Command`), which leaves them ignored there, and a server keeps what
/// its launcher ignored; under qemu-user they are the emulator's own and
/// no emulated program sees them. No launcher of a real user sets them.
pub const GLIBC_INTERNAL: u64 = 0b11 << 31;

/// A mask line of /proc/PID/status (`SigIgn:`, `SigBlk:`), as signal
/// names (`INT,QUIT`, `-` for none).
pub fn mask(status: &str, field: &str) -> String {
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
    let bits = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap() & !GLIBC_INTERNAL;
    let names: Vec<String> = (1..=64).filter(|n| bits >> (n - 1) & 1 == 1).map(signal_name).collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
}

fn signal_name(n: u32) -> String {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM",
        "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF",
        "WINCH", "IO", "PWR", "SYS",
    ];
    NAMES.get(n as usize - 1).map_or_else(|| n.to_string(), |s| s.to_string())
}

/// `SigIgn` and `SigBlk` of a process, as names.
pub fn process_signals(pid: i32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    (mask(&status, "SigIgn:"), mask(&status, "SigBlk:"))
}
