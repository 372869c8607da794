//! Shared helpers for the integration tests: where the built programs are,
//! temporary directories, running a command with a time limit, starting a
//! server and stopping it by pid, finding what a server left behind,
//! accounts, and skipping what this machine cannot do. Services under
//! s6 and runit: `supervise`; the privileged-exec service: `exec`.
#![allow(dead_code)]

pub mod exec;
pub mod launch;
pub mod supervise;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The directory of our built programs (DIR/release, or
/// DIR/TRIPLE/release for a cross build).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ipccat")).parent().unwrap().to_path_buf()
}

/// Path of one of our built programs.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Whether these tests and the programs run under an emulator (qemu-user,
/// through binfmt_misc): they were built for another architecture than
/// the one that built them.
// Both are constants of the build, equal in a native one: that is the point.
#[allow(clippy::eq_op)]
pub fn emulated() -> bool {
    env!("UCSPI_IPC_TARGET") != env!("UCSPI_IPC_HOST")
}

/// A command for one of our programs.
pub fn cmd(name: &str) -> Command {
    Command::new(bin(name))
}

/// A path as text, for an argument or a file's contents (the tests' paths
/// are all UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        // Short base: socket paths must stay under 108 bytes.
        let p = PathBuf::from(format!("/tmp/ui{}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `c` with stdin from `input`, killing it (by pid) after `secs`.
pub fn run_input(c: &mut Command, input: &[u8], secs: u64) -> Output {
    run_input_within(c, input, secs).unwrap_or_else(|| panic!("command timed out after {secs}s"))
}

/// Runs `c` with stdin from `input`; None if it ran over `secs` (then it
/// was killed, by pid).
pub fn run_input_within(c: &mut Command, input: &[u8], secs: u64) -> Option<Output> {
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", c));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let out = wait_output_within(child, secs);
    let _ = writer.join();
    out
}

/// Runs `c` with empty stdin, with a time limit.
pub fn run(c: &mut Command, secs: u64) -> Output {
    run_input(c, b"", secs)
}

/// Runs `c` with `stdin` (a socket, say) as its standard input, with a
/// time limit.
pub fn run_on(c: &mut Command, stdin: impl Into<std::os::fd::OwnedFd>, secs: u64) -> Output {
    let child = c.stdin(Stdio::from(stdin.into())).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    wait_output(child.unwrap_or_else(|e| panic!("cannot start {c:?}: {e}")), secs)
}

/// Collects a child's output, killing it if it runs over `secs`.
pub fn wait_output(child: Child, secs: u64) -> Output {
    wait_output_within(child, secs).unwrap_or_else(|| panic!("command timed out after {secs}s"))
}

/// Collects a child's output; None if it ran over `secs` (then it was
/// killed, by pid).
pub fn wait_output_within(mut child: Child, secs: u64) -> Option<Output> {
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = se.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let Some(status) = wait_timeout(&mut child, secs) else {
        let _ = child.kill();
        let _ = child.wait();
        // What it started may hold its output open: not waited for.
        return None;
    };
    Some(Output { status, stdout: t1.join().unwrap(), stderr: t2.join().unwrap() })
}

/// Waits for `child` at most `secs`; None on time-out.
pub fn wait_timeout(child: &mut Child, secs: u64) -> Option<ExitStatus> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `cond` every few ms for at most `secs`.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Whether a socket bound to `path` is listening. Read from
/// /proc/net/unix rather than by connecting: a probe connection would be
/// served like any other and skew what the test observes.
pub fn socket_ready(path: &Path) -> bool {
    let is_socket = std::fs::metadata(path).map(|m| m.file_type().is_socket()).unwrap_or(false);
    is_socket && listening_inode(path).is_some()
}

/// The inode of the socket listening on `path`, from /proc/net/unix.
pub fn listening_inode(path: &Path) -> Option<u64> {
    const ACCEPTCON: &str = "00010000";
    let want = path.to_string_lossy();
    std::fs::read_to_string("/proc/net/unix").unwrap_or_default().lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 8 && f[3] == ACCEPTCON && f[7..].join(" ") == want {
            f[6].parse().ok()
        } else {
            None
        }
    })
}

/// What a server on `path` left running: the processes that still hold
/// its listening socket (`inode`, from `listening_inode` while it
/// listened), and the handlers of its connections (`IPCLOCALPATH=path` in
/// their environment). Processes this user may not look into are not
/// seen.
pub fn left_behind(path: &Path, inode: u64) -> Vec<i32> {
    let socket = format!("socket:[{inode}]");
    let mut handler_env = format!("IPCLOCALPATH={}", path.to_string_lossy()).into_bytes();
    handler_env.push(0);
    let me = std::process::id() as i32;
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me || !alive(pid) {
            continue;
        }
        let holds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == socket.as_str()))
            })
            .unwrap_or(false);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let handles = environ.split_inclusive(|&b| b == 0).any(|v| v == handler_env.as_slice());
        if holds || handles {
            left.push(pid);
        }
    }
    left
}

/// A server process we started; killed (by its pid) when dropped.
pub struct Server {
    pub child: Child,
}

impl Server {
    /// Starts `c` (stderr captured to a file in `dir`) and waits until
    /// `socket` accepts connections.
    pub fn start(c: &mut Command, socket: &Path) -> Server {
        c.stdin(Stdio::null()).stdout(Stdio::null());
        if c.get_program() == OsStr::new("") {
            panic!("empty command");
        }
        let child = c.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", c));
        let mut s = Server { child };
        // A stale socket file may exist: wait for a real listener.
        let ok = wait_until(10, || {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("server exited early: {st}");
            }
            socket_ready(socket)
        });
        assert!(ok, "server socket {} never became ready", socket.display());
        s
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the server only.
    pub fn signal(&self, sig: i32) {
        kill(self.pid(), sig);
    }

    /// Waits for the server to exit.
    pub fn wait(&mut self, secs: u64) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, secs)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill(self.pid(), 9);
            let _ = self.child.wait();
        }
    }
}

/// kill(2) on one pid.
pub fn kill(pid: i32, sig: i32) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// The children of `pid`, and how many of them are zombies.
pub fn children(pid: i32) -> (Vec<i32>, usize) {
    let mut kids = Vec::new();
    let mut zombies = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        let after = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 2 && fields[1] == pid.to_string() {
            kids.push(p);
            if fields[0] == "Z" {
                zombies += 1;
            }
        }
    }
    (kids, zombies)
}

/// Every process descended from `pid`: its children, theirs, and so on.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        let kids = children(p).0;
        found.extend(&kids);
        next.extend(kids);
    }
    found
}

/// The CPU time `pid` has used (user and system), in clock ticks: to see
/// whether an idle server spins.
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Our effective uid and gid, from /proc.
pub fn own_ids() -> (u32, u32) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u32 {
        let line = s.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

/// Our supplementary groups, from /proc, as a server writes a client's:
/// comma-separated, ascending.
pub fn own_groups() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("Groups:")).unwrap();
    let mut gids: Vec<u32> = line.split_whitespace().skip(1).map(|g| g.parse().unwrap()).collect();
    gids.sort_unstable();
    gids.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(",")
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// The uid of the user nobody, the unprivileged account of tests that
/// run as root.
pub const NOBODY: u32 = 65534;

/// The uid this process runs as.
pub fn my_uid() -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap())
}

/// The entries of /etc/passwd: (name, uid, gid).
pub fn passwd() -> Vec<(String, u32, u32)> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
        })
        .collect()
}

/// The /etc/passwd entry of `uid`: (name, uid, gid).
pub fn by_uid(uid: u32) -> Option<(String, u32, u32)> {
    passwd().into_iter().find(|e| e.1 == uid)
}

/// Says that the running test (named by [`test_name`]) is skipped and
/// why, in the normal output of `cargo test`: the test harness captures
/// `eprintln!`, not a write to the process's stderr.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {}: {why}", test_name());
}

/// The first directory of PATH that has `program`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

/// Whether an external program is installed; says SKIPPED (with the
/// test's name) if not.
pub fn have(program: &str) -> bool {
    let found = which(program).is_some();
    if !found {
        skip(&format!("{program} is not installed"));
    }
    found
}

/// Whether an external program that `part` of the running test needs is
/// installed; says SKIPPED (with the test's name and `part`) if not.
pub fn have_for(part: &str, program: &str) -> bool {
    let found = which(program).is_some();
    if !found {
        skip(&format!("{part}: {program} is not installed"));
    }
    found
}

/// The name of the running test (`ipcserver::usage_errors`): libtest runs
/// each test in a thread named after it. Not typed by hand, so it cannot
/// drift from the function's name.
pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("(not a test thread)").to_string()
}

/// Whether we run as root; says SKIPPED (with the test's name) if not.
pub fn need_root() -> bool {
    let r = is_root();
    if !r {
        skip("needs root");
    }
    r
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Connects to a socket and reads everything until EOF.
pub fn fetch(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut v = Vec::new();
    s.read_to_end(&mut v)?;
    Ok(v)
}

/// A listener on `path` that serves one connection with `serve`, in a
/// thread: a peer for testing clients. Joining the thread gives what
/// `serve` returns.
pub fn serve_once<T: Send + 'static>(
    path: &Path,
    serve: impl FnOnce(std::os::unix::net::UnixStream) -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        serve(c)
    })
}

/// `s` quoted for sh, whatever bytes it has.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Parses `NAME=VALUE` lines (as printed by `env`) into pairs.
pub fn env_lines(out: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

/// The value of `name` in `env` output, if present.
pub fn env_value(out: &[u8], name: &str) -> Option<String> {
    env_lines(out).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Writes the files of `tree` (path under `root`, contents) under
/// `root`, making the directories: an s6 rules directory, say.
pub fn write_tree(root: &Path, tree: &[(&str, &[u8])]) {
    std::fs::create_dir_all(root).unwrap();
    for (path, content) in tree {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Compiles access rules with our ipcrules into DIR/rules.cdb.
pub fn rules(dir: &Path, text: &str) -> PathBuf {
    let cdb = dir.join("rules.cdb");
    let o = run_input(cmd("ipcrules").arg(&cdb).arg(dir.join("rules.tmp")), text.as_bytes(), 20);
    assert!(o.status.success(), "ipcrules: {}", stderr(&o));
    cdb
}

/// Stops a server that forks children which may outlive it (a preforking
/// server; the original's children do not notice their parent's death):
/// SIGTERM, as a supervisor would, SIGKILL if it does not exit in 5 s,
/// then SIGKILL, by pid, to any of the children it had that is left.
pub fn stop_with_children(server: &mut Server) {
    if let Ok(None) = server.child.try_wait() {
        let kids = children(server.pid()).0;
        server.signal(15);
        if server.wait(5).is_none() {
            server.signal(9);
        }
        for k in kids {
            if alive(k) {
                kill(k, 9);
            }
        }
    }
}
