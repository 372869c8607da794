//! The privileged-exec service in tests: requests as the original's
//! ipccommand writes them, ipcexec's rules compiled, ipcexec run by hand
//! on a pipe or served on a socket (ours, the original's, or s6-sudod
//! under s6-ipcserver), descriptors sent with a request, and a program
//! that says whether its client's departure reached it. Used by
//! tests/ipcexec.rs and tests/security.rs.

use super::*;
use rustix::fd::BorrowedFd;
use std::io::Read;
use std::process::{Command, Output, Stdio};

/// A request for `uid` to run `args`, as the original ipccommand writes it.
pub fn request(uid: &str, args: &[&str]) -> Vec<u8> {
    request_bytes(uid, args.len(), &args.iter().flat_map(|a| a.bytes().chain([0])).collect::<Vec<u8>>())
}

/// A request for `uid` with the count `count` and `body` as the arguments'
/// netstring, whatever they hold.
pub fn request_bytes(uid: &str, count: usize, body: &[u8]) -> Vec<u8> {
    let count = count.to_string();
    let mut r = format!("{}:{uid},{}:{count},{}:", uid.len(), count.len(), body.len()).into_bytes();
    r.extend_from_slice(body);
    r.push(b',');
    r
}

/// ipcexec's rules compiled by `ipcexecrules` (ours, or the original's
/// from its directory) into DIR/rules.cdb.
pub fn exec_rules_with(ipcexecrules: &Path, dir: &Path, text: &str) -> PathBuf {
    let cdb = dir.join("rules.cdb");
    let o = run_input(Command::new(ipcexecrules).arg(&cdb).arg(dir.join("rules.tmp")), text.as_bytes(), 10);
    assert_eq!(o.status.code(), Some(0), "ipcexecrules: {}", stderr(&o));
    cdb
}

/// ipcexec's rules compiled with our ipcexecrules into DIR/rules.cdb.
pub fn exec_rules(dir: &Path, text: &str) -> PathBuf {
    exec_rules_with(&bin("ipcexecrules"), dir, text)
}

/// `ipcexec` (ours or another) on `cdb`, run by hand with `input` (the
/// request and what follows) on a pipe, the client's ids `euid.egid`,
/// `env` and PATH alone in its environment.
pub fn exec_direct_with(ipcexec: &Path, cdb: &Path, ids: (u32, u32), env: &[(&str, &str)], input: &[u8]) -> Output {
    let mut c = Command::new(ipcexec);
    c.arg(cdb).env_clear().env("PATH", "/usr/bin:/bin");
    c.env("IPCREMOTEEUID", ids.0.to_string()).env("IPCREMOTEEGID", ids.1.to_string());
    c.envs(env.iter().copied());
    run_input(&mut c, input, 20)
}

/// Our `ipcexec` as [`exec_direct_with`] runs it.
pub fn exec_direct(cdb: &Path, ids: (u32, u32), env: &[(&str, &str)], input: &[u8]) -> Output {
    exec_direct_with(&bin("ipcexec"), cdb, ids, env, input)
}

/// A server of the privileged-exec service on a fresh socket DIR/s, with
/// its rules compiled into DIR/rules.cdb and its stderr in DIR/log. When
/// dropped, it and everything it started are killed, by pid (a server
/// started under a launcher may outlive it).
pub struct ExecServer {
    server: Option<Server>,
    pub dir: TempDir,
    pub sock: PathBuf,
    pub log: PathBuf,
}

impl ExecServer {
    /// `ipcserver -v SOCK ipcexec rules.cdb`, ours.
    pub fn start(rules_text: &str) -> ExecServer {
        ExecServer::start_with(rules_text, &bin("ipcexec"))
    }

    /// Our `ipcserver -v SOCK IPCEXEC rules.cdb`, with another ipcexec.
    pub fn start_with(rules_text: &str, ipcexec: &Path) -> ExecServer {
        ExecServer::start_command(rules_text, |sock, cdb| {
            let mut c = cmd("ipcserver");
            c.arg("-v").arg(sock).arg(ipcexec).arg(cdb);
            c
        })
    }

    /// The server `command(socket, rules.cdb)` makes (ours, the
    /// original's, s6-ipcserver with s6-sudod...), rules compiled by ours.
    pub fn start_command(rules_text: &str, command: impl FnOnce(&Path, &Path) -> Command) -> ExecServer {
        let dir = TempDir::new();
        let cdb = exec_rules(dir.path(), rules_text);
        ExecServer::start_in(dir, &cdb, command)
    }

    /// As [`ExecServer::start_command`], in `dir`, with `cdb` as it is.
    pub fn start_in(dir: TempDir, cdb: &Path, command: impl FnOnce(&Path, &Path) -> Command) -> ExecServer {
        let sock = dir.join("s");
        let log = dir.join("log");
        let mut c = command(&sock, cdb);
        c.stderr(std::fs::File::create(&log).unwrap());
        let server = Server::start(&mut c, &sock);
        ExecServer { server: Some(server), dir, sock, log }
    }

    pub fn pid(&self) -> i32 {
        self.server.as_ref().map_or(0, |s| s.pid())
    }

    /// Our ipcclient and ipccommand, with `opts` (`-F`), asking for `prog`
    /// as `uid`.
    pub fn command(&self, opts: &[&str], uid: &str, prog: &[&str]) -> Command {
        let mut c = Command::new(bin("ipcclient"));
        c.arg(&self.sock).arg(bin("ipccommand")).args(opts).arg(uid).args(prog);
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ExecServer {
    fn drop(&mut self) {
        for p in descendants(self.pid()) {
            kill(p, 9);
        }
        drop(self.server.take());
    }
}

/// Some bytes of a request, and the descriptors sent with them.
pub type Part<'a> = (&'a [u8], &'a [BorrowedFd<'a>]);

/// Connects to `sock`, sends `parts` in turn, each with its descriptors
/// attached (SCM_RIGHTS, in one `sendmsg`, as many as given), and returns
/// what the server answers until it closes (at most 20 s).
pub fn send_with_fds(sock: &Path, parts: &[Part<'_>]) -> Vec<u8> {
    use rustix::net::{sendmsg, sockopt, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let path = std::ffi::CString::new(sock.as_os_str().as_encoded_bytes()).unwrap();
    let s = ucspi_ipc::socket::connect(&path, None).unwrap();
    sockopt::set_socket_timeout(&s, sockopt::Timeout::Recv, Some(std::time::Duration::from_secs(20))).unwrap();
    for &(data, fds) in parts {
        let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(fds.is_empty() || control.push(SendAncillaryMessage::ScmRights(fds)));
        // The server may refuse, and close, before it has everything.
        let _ = sendmsg(&s, &[rustix::io::IoSlice::new(data)], &mut control, SendFlags::NOSIGNAL);
    }
    let mut back = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = rustix::io::read(&s, &mut buf) {
        back.extend_from_slice(&buf[..n]);
    }
    back
}

/// A shell script that says `started` on its stdout, then waits: for the
/// end of its input (`stdin_eof`) or for ever, and writes `term` into
/// `mark` when a SIGTERM reaches it, `eof` when its input ends.
pub fn departure_probe(mark: &Path, stdin_eof: bool) -> String {
    let wait = if stdin_eof { "cat >/dev/null" } else { "while :; do sleep 0.05; done" };
    format!(
        "trap 'echo term >{m}; exit 0' TERM; echo started; {wait}; echo eof >{m}",
        m = sh_quote(mark.to_str().unwrap())
    )
}

/// Starts `client` (whose program is a [`departure_probe`] writing
/// `mark`), waits until the program says it started, kills the client
/// (SIGKILL, by pid), then waits up to 10 s for the program to say what
/// reached it: `Some("term")`, `Some("eof")`, or None.
pub fn client_vanishes(client: &mut Command, mark: &Path) -> Option<String> {
    let mut child = client.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut started = [0u8; 8];
    let ok = child.stdout.take().unwrap().read_exact(&mut started).is_ok();
    kill(child.id() as i32, 9);
    let _ = child.wait();
    assert!(ok && &started == b"started\n", "the program did not start: {:?}", String::from_utf8_lossy(&started));
    // The shell creates the file before it writes the word: wait for the
    // whole line, not for the file (an empty read was a flaky "").
    wait_until(10, || std::fs::read_to_string(mark).is_ok_and(|s| s.ends_with('\n')));
    std::fs::read_to_string(mark).ok().map(|s| s.trim().to_string())
}

/// Runs `tty; CLIENT` (a shell command line) on a new terminal, under
/// `script`, and returns the lines it printed: the terminal's name, then
/// what the client's program printed.
pub fn on_a_terminal(client: &str) -> Vec<String> {
    let o = run(Command::new("script").args(["-qec", &format!("tty; {client}"), "/dev/null"]), 20);
    stdout(&o).replace('\r', "").lines().map(String::from).collect()
}
