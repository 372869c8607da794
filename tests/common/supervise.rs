//! Services under s6 and runit, for the tests that run them: the s6 tools
//! with a time limit, what s6-svstat says, waiting for s6-supervise,
//! s6-svscan and runsv started and stopped by pid. Starting s6-supervise
//! is left to each test, whose set-ups differ.
use super::*;

use std::ffi::OsStr;

/// Runs an s6 tool on the service directory with a time limit.
pub fn s6(tool: &str, args: &[&str], svc: &Path) -> Output {
    run(Command::new(tool).args(args).arg(svc), 15)
}

/// `s6-svstat -o FIELDS svc`, without the newline.
pub fn svstat(fields: &str, svc: &Path) -> String {
    let o = s6("s6-svstat", &["-o", fields], svc);
    assert_eq!(o.status.code(), Some(0), "s6-svstat: {}", stderr(&o));
    stdout(&o).trim_end().to_string()
}

/// The pid of the service's process, as s6-supervise reports it.
pub fn service_pid(svc: &Path) -> i32 {
    svstat("pid", svc).parse().unwrap()
}

/// Waits until s6-supervise runs `svc` and has written its status, the
/// supervisor (`s6-supervise` itself or `s6-svscan`) being `supervisor`:
/// s6-svok is true a moment before the status file exists, and s6-svwait
/// fails without it. Panics if the supervisor exits first, or after 10 s.
pub fn wait_supervised(supervisor: &mut Child, svc: &Path) {
    let ok = wait_until(10, || {
        if let Ok(Some(st)) = supervisor.try_wait() {
            panic!("the supervisor of {} exited early: {st}", svc.display());
        }
        s6("s6-svstat", &[], svc).status.success()
    });
    assert!(ok, "s6-supervise never came up on {}", svc.display());
}

/// s6-svscan on a scan directory of ours, its output in a file. Dropping
/// it stops it and everything under it, by pid if need be.
pub struct Svscan {
    child: Child,
    scan: PathBuf,
}

impl Svscan {
    pub fn start(scan: &Path, output: &Path) -> Svscan {
        let out = std::fs::File::create(output).unwrap();
        let child = Command::new("s6-svscan")
            .arg(scan)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Svscan { child, scan: scan.to_path_buf() }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits until s6-svscan's s6-supervise runs `svc` (see
    /// [`wait_supervised`]).
    pub fn wait_supervised(&mut self, svc: &Path) {
        wait_supervised(&mut self.child, svc)
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `s6-svscanctl -t` (which must succeed): s6-svscan stops every
    /// service and logger, then exits. Its exit status, or None if it is
    /// still running after `secs`.
    pub fn stop(&mut self, secs: u64) -> Option<ExitStatus> {
        let o = s6("s6-svscanctl", &["-t"], &self.scan);
        assert_eq!(o.status.code(), Some(0), "s6-svscanctl -t: {}", stderr(&o));
        wait_timeout(&mut self.child, secs)
    }

    /// What dropping it does, and may be done before: if s6-svscan still
    /// runs, `s6-svscanctl -t`, then SIGKILL to it and to what was under
    /// it, if they do not stop. No assertions: this may run while a test
    /// is panicking.
    pub fn shut_down(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let tree = descendants(self.pid());
            let _ = s6("s6-svscanctl", &["-t"], &self.scan);
            if wait_timeout(&mut self.child, 5).is_none() {
                kill(self.pid(), 9);
                let _ = self.child.wait();
            }
            for pid in tree {
                if alive(pid) {
                    kill(pid, 9);
                }
            }
        }
    }
}

impl Drop for Svscan {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// runsv on a service directory (it runs log/ itself, through a pipe),
/// with only the environment given. Dropping it stops everything, by pid
/// if need be.
pub struct Runsv {
    child: Child,
    dir: PathBuf,
}

impl Runsv {
    /// Starts runsv on `dir`, its output in the file `output`, and waits
    /// until it takes commands from sv.
    pub fn start(dir: &Path, env: &[(&str, &OsStr)], output: &Path) -> Runsv {
        let out = std::fs::File::create(output).unwrap();
        let child = Command::new(which("runsv").unwrap())
            .arg(dir)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut runsv = Runsv { child, dir: dir.to_path_buf() };
        let ok = wait_until(10, || {
            if let Ok(Some(st)) = runsv.child.try_wait() {
                panic!("runsv exited early: {st}: {}", std::fs::read_to_string(output).unwrap_or_default());
            }
            runsv.sv(&["status"]).status.success()
        });
        assert!(ok, "runsv {} never took commands", dir.display());
        runsv
    }

    /// The pid of the service (`""`) or of its logger (`"log"`), if running.
    pub fn pid(&self, svc: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(svc).join("supervise/pid")).ok()?.trim().parse().ok()
    }

    /// `sv ARGS dir`, with a time limit.
    pub fn sv(&self, args: &[&str]) -> Output {
        run(Command::new("sv").args(args).arg(&self.dir), 20)
    }

    /// Down, then exit (runsv stops the logger after the service); runsv
    /// must exit 0.
    pub fn stop(&mut self) {
        let o = self.sv(&["-w", "10", "down"]);
        assert_eq!(o.status.code(), Some(0), "sv down: {}{}", stdout(&o), stderr(&o));
        let o = self.sv(&["exit"]);
        assert_eq!(o.status.code(), Some(0), "sv exit: {}{}", stdout(&o), stderr(&o));
        let st = wait_timeout(&mut self.child, 10);
        assert!(matches!(st, Some(st) if st.code() == Some(0)), "runsv: {st:?}");
    }
}

impl Drop for Runsv {
    fn drop(&mut self) {
        // No assertions here: this may run while a test is panicking.
        if let Ok(None) = self.child.try_wait() {
            let pids = [self.pid(""), self.pid("log")];
            let _ = self.sv(&["-w", "3", "down"]);
            let _ = self.sv(&["exit"]);
            if wait_timeout(&mut self.child, 5).is_none() {
                kill(self.child.id() as i32, 9);
                let _ = self.child.wait();
                for pid in pids.into_iter().flatten() {
                    kill(pid, 9);
                }
            }
        }
    }
}
