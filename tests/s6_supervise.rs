//! ipcserver as a real s6-supervise service: readiness through
//! `notification-fd` and `-1`, clients served, clean stop with s6-svc.
use crate::common;
use common::supervise::*;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Whether every s6 program these tests use is installed.
fn have_s6() -> bool {
    ["s6-supervise", "s6-svwait", "s6-svc", "s6-svstat", "s6-ipcclient"].iter().all(|p| have(p))
}

/// An s6-supervise process we started on DIR/svc, its log in DIR/log.
/// Dropping it stops the service and s6-supervise, by pid if need be.
struct Supervise {
    child: Child,
    svc: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Supervise {
    /// Writes DIR/svc with `run` (mode 0755) and notification-fd 3 when
    /// `notify`, starts s6-supervise on it and waits until it is running.
    fn start(dir: TempDir, run_script: &str, notify: bool) -> Supervise {
        let svc = dir.join("svc");
        std::fs::create_dir(&svc).unwrap();
        let run = svc.join("run");
        std::fs::write(&run, run_script).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        if notify {
            std::fs::write(svc.join("notification-fd"), "3\n").unwrap();
        }
        let log = dir.join("log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("s6-supervise")
            .arg(&svc)
            .stdin(Stdio::null())
            .stderr(out.try_clone().unwrap())
            .stdout(out)
            .spawn()
            .unwrap();
        let mut sup = Supervise { child, svc, log, _dir: dir };
        wait_supervised(&mut sup.child, &sup.svc);
        sup
    }

    fn sock(&self) -> PathBuf {
        self.svc.parent().unwrap().join("sock")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `s6-svc -dx`: stop the service, then s6-supervise; true when
    /// s6-supervise exited 0 in time.
    fn exit(&mut self) -> bool {
        let o = s6("s6-svc", &["-dx"], &self.svc);
        assert_eq!(o.status.code(), Some(0), "s6-svc -dx: {}", stderr(&o));
        matches!(wait_timeout(&mut self.child, 10), Some(st) if st.code() == Some(0))
    }
}

impl Drop for Supervise {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // No assertions here: this may run while a test is panicking.
            let pid = stdout(&s6("s6-svstat", &["-o", "pid"], &self.svc)).trim().parse::<i32>().unwrap_or(-1);
            let _ = s6("s6-svc", &["-dx"], &self.svc);
            if wait_timeout(&mut self.child, 5).is_none() {
                kill(self.child.id() as i32, 9);
                let _ = self.child.wait();
                if pid > 0 {
                    kill(pid, 9);
                }
            }
        }
    }
}

/// Connects with ipccat and returns (exit code, stdout, stderr).
fn ipccat(sock: &Path) -> (Option<i32>, String, String) {
    let o = run(cmd("ipccat").arg(sock), 10);
    (o.status.code(), stdout(&o), stderr(&o))
}

/// Asserts that the service is up, ready, runs ipcserverd, and serves
/// `greeting` to ipccat and s6-ipcclient. Returns the server's pid.
fn assert_up_and_serving(sup: &Supervise, greeting: &str) -> i32 {
    let pid = service_pid(&sup.svc);
    assert!(alive(pid));
    // The run script executed all the way into the accept loop.
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(), "ipcserverd\n");
    assert_eq!(svstat("up,ready,pid", &sup.svc), format!("true true {pid}"));
    let o = s6("s6-svstat", &[], &sup.svc);
    let line = stdout(&o);
    assert!(line.starts_with(&format!("up (pid {pid}) ")) && line.contains(", ready "), "{line}");
    assert_eq!(ipccat(&sup.sock()), (Some(0), greeting.to_string(), String::new()));
    let o = run(Command::new("s6-ipcclient").arg(sup.sock()).args(["sh", "-c", "cat <&6"]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), greeting);
    pid
}

/// Asserts that the server `pid` is gone and its socket refuses.
fn assert_stopped(sup: &Supervise, pid: i32) {
    assert!(wait_until(5, || !alive(pid)), "the server {pid} is still running");
    assert_eq!(svstat("up,ready,exitcode", &sup.svc), "false false 0");
    let sock = sup.sock();
    let refused = format!("ipccat: unable to connect to {}: connection refused\n", s(&sock));
    assert_eq!(ipccat(&sock), (Some(111), String::new(), refused));
}

#[test]
fn sh_run_script_readiness_serving_and_stop() {
    if !have_s6() {
        return;
    }
    let dir = TempDir::new();
    // The server's stdout is the notification pipe (descriptor 3, then
    // closed); its log goes where the supervisor's stdout goes.
    let script = format!(
        "#!/bin/sh\nexec 2>&1\nexec {} -1 -v {} sh -c 'echo served' 1>&3 3>&-\n",
        s(&bin("ipcserver")),
        s(&dir.join("sock"))
    );
    let mut sup = Supervise::start(dir, &script, true);
    let o = s6("s6-svwait", &["-U", "-t", "10000"], &sup.svc);
    assert_eq!(o.status.code(), Some(0), "s6-svwait -U: {}", stderr(&o));
    let pid = assert_up_and_serving(&sup, "served\n");
    // Both clients' handlers have been collected (a SIGTERM that came
    // first would leave an `end` line unwritten: ipcserverd exits on it).
    let ends = |n: usize| wait_until(10, || sup.log_text().matches("ipcserver: end ").count() == n);
    assert!(ends(2), "{}", sup.log_text());

    // Down: SIGTERM stops ipcserverd, which exits 0.
    let o = s6("s6-svc", &["-d"], &sup.svc);
    assert_eq!(o.status.code(), Some(0));
    let o = s6("s6-svwait", &["-D", "-t", "10000"], &sup.svc);
    assert_eq!(o.status.code(), Some(0), "s6-svwait -D: {}", stderr(&o));
    assert_stopped(&sup, pid);

    // Up again (a new process, ready again), then down with s6-svc -wD.
    let o = s6("s6-svc", &["-u"], &sup.svc);
    assert_eq!(o.status.code(), Some(0));
    let o = s6("s6-svwait", &["-U", "-t", "10000"], &sup.svc);
    assert_eq!(o.status.code(), Some(0), "s6-svwait -U: {}", stderr(&o));
    let pid2 = assert_up_and_serving(&sup, "served\n");
    assert_ne!(pid, pid2);
    assert!(ends(4), "{}", sup.log_text());
    let o = s6("s6-svc", &["-wD", "-T", "10000", "-d"], &sup.svc);
    assert_eq!(o.status.code(), Some(0), "s6-svc -wD -d: {}", stderr(&o));
    assert_stopped(&sup, pid2);

    assert!(sup.exit(), "s6-supervise did not exit 0 after s6-svc -x");
    let log = sup.log_text();
    assert!(log.starts_with("ipcserver: status: 0/40\n"), "{log}");
    assert_eq!(log.matches("ipcserver: end ").count(), 4, "{log}");
    assert!(!log.contains("fatal"), "{log}");
}

#[test]
fn without_dash_1_the_service_is_up_but_never_ready() {
    if !have_s6() {
        return;
    }
    // The control for the tests above: same service, no -1.
    let dir = TempDir::new();
    let sock = dir.join("sock");
    let script = format!("#!/bin/sh\nexec 2>&1\nexec {} {} echo served 1>&3 3>&-\n", s(&bin("ipcserver")), s(&sock));
    let mut sup = Supervise::start(dir, &script, true);
    let o = s6("s6-svwait", &["-u", "-t", "10000"], &sup.svc);
    assert_eq!(o.status.code(), Some(0), "s6-svwait -u: {}", stderr(&o));
    assert!(wait_until(10, || socket_ready(&sock)));
    assert_eq!(ipccat(&sock), (Some(0), "served\n".to_string(), String::new()));
    let o = s6("s6-svwait", &["-U", "-t", "300"], &sup.svc);
    assert_eq!(o.status.code(), Some(99), "s6-svwait -U should time out");
    assert_eq!(stderr(&o), "s6-svwait: fatal: timed out\n");
    let pid = service_pid(&sup.svc);
    assert_eq!(svstat("up,ready", &sup.svc), "true false");
    assert!(sup.exit(), "s6-supervise did not exit 0 after s6-svc -dx");
    assert!(wait_until(5, || !alive(pid)), "the server {pid} is still running");
}
