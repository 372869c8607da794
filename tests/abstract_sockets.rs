//! Abstract sockets (issue 19 §3): a socket path that starts with `@`
//! names a socket in Linux's abstract namespace. ipcserver (its chain),
//! ipcserver-socketbinder, ipclisten with ipcaccept and the preforking
//! servers serve one; ipcclient, ipccat, ipcconnect, ipccommand, ipcdo and
//! ipcrun reach one; IPCLOCALPATH, IPCREMOTEPATH, `-1` and the log lines
//! show the name with its `@`. No file is made: every program here runs
//! in an empty working directory, which must stay empty (a program that
//! took `@name` for a file would make `@name` there). `./@name` is a file;
//! `-d -D -a` are refused with an abstract name.
//!
//! Names hold the test process's pid and a tag of the test's own, so that
//! two runs or two tests never share one. A server is ready when it says
//! so: the `-1` line, or ipclisten's `status:` line, which it writes
//! once it listens.
use crate::common;
use common::exec::{exec_rules, request};
use common::*;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A name in the abstract namespace for this test process: `@` then
/// `ucspi-ipc-test.PID.TAG`.
fn unique(tag: &str) -> String {
    format!("@ucspi-ipc-test.{}.{tag}", std::process::id())
}

/// What is in a directory, by name.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A server started in `cwd`, its stdout and stderr read line by line as
/// they come; killed with everything it started when dropped.
struct Watched {
    server: Server,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    /// Starts `c` in `cwd` and waits for a line `ready` on its stdout or
    /// stderr (lines from stderr are the log, from stdout the `-1` line).
    fn start(c: &mut Command, cwd: &Path, ready: &str) -> Watched {
        c.current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut w = Watched { server: Server { child }, lines, seen: Vec::new() };
        w.wait_for(|l| l == ready);
        w
    }

    /// Waits for a line that `wanted` accepts and returns it (every line
    /// so far is kept in `seen`).
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line within 10 s; lines so far:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        for p in descendants(self.server.pid()) {
            kill(p, 9);
        }
    }
}

/// Runs `c` in `cwd` with `input`, within 10 s.
fn run_in(c: &mut Command, cwd: &Path, input: &[u8]) -> std::process::Output {
    run_input(c.current_dir(cwd), input, 10)
}

/// `ipcclient [-p LOCAL] NAME sh -c '...'`: what the client sees as
/// IPCLOCALPATH, then what the server sent.
fn client(cwd: &Path, local: Option<&str>, name: &str) -> String {
    let mut c = cmd("ipcclient");
    if let Some(local) = local {
        c.args(["-p", local]);
    }
    c.args([name, "sh", "-c", "echo \"local=$IPCLOCALPATH\"; cat <&6"]);
    let o = run_in(&mut c, cwd, b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

/// The two paths a server's program was given, from `env`'s output.
fn paths(env: &str) -> (Option<String>, Option<String>) {
    (env_value(env.as_bytes(), "IPCLOCALPATH"), env_value(env.as_bytes(), "IPCREMOTEPATH"))
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

/// ipcserver's whole chain (with ipcserver-access, for the rules) on an
/// abstract name: `-1` says the name, the program sees it with its `@`,
/// and a client bound to a name of its own is seen by it; the log names
/// both. Nothing is made in the working directory.
#[test]
fn ipcserver_serves_an_abstract_name_through_the_chain() {
    let (cwd, state) = (TempDir::new(), TempDir::new());
    let (uid, gid) = own_ids();
    let cdb = rules(state.path(), &format!("{uid}:allow,SEEN=\"yes\"\n"));
    let name = unique("chain");
    let mut c = cmd("ipcserver");
    c.args(["-1", "-v", "-x", s(&cdb), &name, "env"]);
    let mut server = Watched::start(&mut c, cwd.path(), &name);
    let out = client(cwd.path(), None, &name);
    assert!(out.starts_with("local=\n"), "an unbound client has no path: {out}");
    assert_eq!(paths(&out), (some(&name), some("")));
    assert_eq!(env_value(out.as_bytes(), "SEEN"), some("yes"));
    server.wait_for(|l| l.ends_with(&format!(" {name} :{uid},{gid}")) && l.starts_with("ipcserver: ok "));
    let me = unique("chain-client");
    let out = client(cwd.path(), Some(&me), &name);
    assert!(out.starts_with(&format!("local={me}\n")), "{out}");
    assert_eq!(paths(&out), (some(&name), some(&me)));
    let from = server.wait_for(|l| l.starts_with("ipcserver: pid ") && l.ends_with(&format!(" from {me}")));
    let pid = from.split(' ').nth(2).unwrap();
    server.wait_for(|l| l == format!("ipcserver: ok {pid} {name} {me}:{uid},{gid}"));
    // A client's name as long as one can be (107 bytes after the @) is
    // shown whole.
    let longest = format!("{me}{}", "x".repeat(108 - me.len()));
    assert_eq!(paths(&client(cwd.path(), Some(&longest), &name)).1, Some(longest));
    assert_eq!(listing(cwd.path()), Vec::<String>::new());
}

/// Starts the server `serve(NAME)` makes on a name of its own (tagged
/// `tag`), ready once it writes the line `ready` (`None`: the name, as
/// `-1` writes it), in an empty directory; a client bound to a name of
/// its own is seen with both names, `logger` logs its access line
/// (`LOGGER: ok PID NAME CLIENT:UID,GID`), and the directory stays empty.
fn serves_a_client_with_a_name(tag: &str, serve: impl FnOnce(&str) -> Command, ready: Option<&str>, logger: &str) {
    let cwd = TempDir::new();
    let name = unique(tag);
    let mut server = Watched::start(&mut serve(&name), cwd.path(), ready.unwrap_or(&name));
    let me = unique(&format!("{tag}-client"));
    assert_eq!(paths(&client(cwd.path(), Some(&me), &name)), (some(&name), some(&me)));
    server.wait_for(|l| l.starts_with(&format!("{logger}: ok ")) && l.contains(&format!(" {name} {me}:")));
    assert_eq!(listing(cwd.path()), Vec::<String>::new());
}

/// The chain by hand: ipcserver-socketbinder binds the name; with
/// IPCLOCALPATH taken away, ipcserver-access finds it on the connection
/// itself.
#[test]
fn socketbinder_binds_and_access_finds_the_name() {
    let serve = |name: &str| {
        let mut c = cmd("ipcserver-socketbinder");
        c.arg(name).arg(bin("ipcserverd")).args(["-1", "env", "-u", "IPCLOCALPATH"]);
        c.arg(bin("ipcserver-access")).args(["-v2", "env"]);
        c
    };
    serves_a_client_with_a_name("binder", serve, None, "ipcserver-access");
}

/// ucspi-ipc 0.70's split server: ipclisten binds the name (and says
/// `status:` once it listens), ipcaccept serves it and finds the name on
/// the socket it was given.
#[test]
fn ipclisten_and_ipcaccept_serve_an_abstract_name() {
    let serve = |name: &str| {
        let mut c = cmd("ipclisten");
        c.args(["-v", name]).arg(bin("ipcaccept")).args(["-v", "env"]);
        c
    };
    serves_a_client_with_a_name("listen", serve, Some("ipclisten: status: 0/1"), "ipcaccept");
}

/// A preforking server, ipcprint, on an abstract name.
#[test]
fn ipcprint_serves_an_abstract_name() {
    let cwd = TempDir::new();
    let name = unique("prefork");
    let mut c = cmd("ipcprint");
    c.args(["-1", "-c", "1", &name]);
    let _server = Watched::start(&mut c, cwd.path(), &name);
    let me = unique("prefork-client");
    let out = client(cwd.path(), Some(&me), &name);
    assert!(out.contains(&format!("\nIPCLOCALPATH={name}\nIPCREMOTEPATH={me}\n")), "{out}");
    let o = run_in(cmd("ipccat").arg(&name), cwd.path(), b"");
    assert!(stdout(&o).contains(&format!("\nIPCLOCALPATH={name}\nIPCREMOTEPATH=\n")), "{}", stderr(&o));
    assert_eq!(listing(cwd.path()), Vec::<String>::new());
}

/// ipcperl, the other preforking server, on an abstract name (built with
/// the `perl` feature only: SKIPPED without it). Its access lines start
/// with `ipcserver:`, as ipcserver's do.
#[test]
fn ipcperl_serves_an_abstract_name() {
    let Some(ipcperl) = crate::ipcperl::ipcperl() else { return };
    let state = TempDir::new();
    let handler = state.join("h.pm");
    let code = "sub h { print \"IPCLOCALPATH=$ENV{IPCLOCALPATH}\\nIPCREMOTEPATH=$ENV{IPCREMOTEPATH}\\n\" }\n1;\n";
    std::fs::write(&handler, code).unwrap();
    let serve = |name: &str| {
        let mut c = Command::new(&ipcperl);
        c.args(["-1", "-v", "-c", "1", name]).arg(&handler).arg("h");
        c
    };
    serves_a_client_with_a_name("perl", serve, None, "ipcserver");
}

/// Every client reaches a server on an abstract name: ipcclient and ipccat
/// one that prints its environment; ipcconnect (a request written by
/// hand), ipccommand (under ipcclient), ipcdo and ipcrun (IPCEXEC_SOCKET)
/// the privileged-exec service.
#[test]
fn every_client_reaches_an_abstract_name() {
    let (cwd, state) = (TempDir::new(), TempDir::new());
    let name = unique("clients");
    let mut c = cmd("ipcserver");
    c.args(["-1", &name, "env"]);
    let _env = Watched::start(&mut c, cwd.path(), &name);
    let o = run_in(cmd("ipccat").arg(&name), cwd.path(), b"");
    assert_eq!(paths(&stdout(&o)), (some(&name), some("")), "{}", stderr(&o));
    let me = unique("clients-client");
    assert_eq!(paths(&client(cwd.path(), Some(&me), &name)), (some(&name), some(&me)));

    let (uid, _) = own_ids();
    let u = uid.to_string();
    let cdb = exec_rules(state.path(), &format!(",{u}.echo:allow\n,{u}.cat:allow\n,0.echo:allow\n"));
    let exec_name = unique("ipcexec");
    let mut c = cmd("ipcserver");
    c.args(["-1", &exec_name]).arg(bin("ipcexec")).arg(&cdb);
    let _exec = Watched::start(&mut c, cwd.path(), &exec_name);
    let mut input = request(&u, &["cat"]);
    input.extend_from_slice(b"both ways\n");
    let o = run_in(cmd("ipcconnect").arg(&exec_name), cwd.path(), &input);
    assert_eq!(stdout(&o), "both ways\n", "{}", stderr(&o));
    let o =
        run_in(cmd("ipcclient").arg(&exec_name).arg(bin("ipccommand")).args([&u, "echo", "command"]), cwd.path(), b"");
    assert_eq!(stdout(&o), "command\n", "{}", stderr(&o));
    for opts in [&[][..], &["-F"]] {
        let o =
            run_in(cmd("ipcdo").env("IPCEXEC_SOCKET", &exec_name).args(opts).args([&u, "echo", "do"]), cwd.path(), b"");
        assert_eq!((o.status.code(), stdout(&o)), (Some(0), "do\n".into()), "{opts:?}: {}", stderr(&o));
    }
    if is_root() {
        let o = run_in(cmd("ipcrun").env("IPCEXEC_SOCKET", &exec_name).args(["echo", "run"]), cwd.path(), b"");
        assert_eq!(stdout(&o), "run\n", "{}", stderr(&o));
    } else {
        skip("ipcrun: needs root");
    }
    assert_eq!(listing(cwd.path()), Vec::<String>::new());
}

/// A name reaches no further than the abstract namespace: nobody there
/// is `connection refused`, and one byte more than sun_path holds after
/// its leading NUL (107) is `file name too long`, for a client and a
/// server alike, before anything is tried.
#[test]
fn an_absent_or_too_long_name() {
    let cwd = TempDir::new();
    let name = unique("nobody");
    let o = run_in(cmd("ipccat").arg(&name), cwd.path(), b"");
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(111), format!("ipccat: unable to connect to {name}: connection refused\n"))
    );
    let fits = format!("@{}", "n".repeat(107));
    let o = run_in(cmd("ipccat").arg(&fits), cwd.path(), b"");
    assert_eq!(stderr(&o), format!("ipccat: unable to connect to {fits}: connection refused\n"));
    let long = format!("{fits}n");
    let o = run_in(cmd("ipccat").arg(&long), cwd.path(), b"");
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(111), format!("ipccat: unable to connect to {long}: file name too long\n"))
    );
    let o = run_in(cmd("ipcserver-socketbinder").args([&long, "true"]), cwd.path(), b"");
    let said = format!("ipcserver-socketbinder: fatal: unable to bind {long}: file name too long\n");
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), said));
    let o = run_in(cmd("ipcclient").args(["-p", &long, &name, "true"]), cwd.path(), b"");
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(111), format!("ipcclient: fatal: unable to bind {long}: file name too long\n"))
    );
    assert_eq!(listing(cwd.path()), Vec::<String>::new());
}

/// `./@name` is a file, served beside the abstract `@name`: each server
/// has its own socket and its own clients, and the abstract one removes
/// nothing (`-d`'s default would have removed a socket file named like
/// it).
#[test]
fn dot_slash_at_is_a_file() {
    let cwd = TempDir::new();
    let name = unique("file");
    let file = format!("./{name}");
    let mut c = cmd("ipcserver");
    c.args(["-1", &file, "env"]);
    let _file = Watched::start(&mut c, cwd.path(), &file);
    assert_eq!(listing(cwd.path()), std::slice::from_ref(&name));
    let mut c = cmd("ipcserver");
    c.args(["-1", &name, "env"]);
    let _abstract = Watched::start(&mut c, cwd.path(), &name);
    // The file is left as it was, and still served (below).
    assert_eq!(listing(cwd.path()), std::slice::from_ref(&name));
    for path in [&file, &name] {
        let o = run_in(cmd("ipccat").arg(path), cwd.path(), b"");
        assert_eq!(paths(&stdout(&o)).0.as_ref(), Some(path), "{}", stderr(&o));
    }
}

/// The options about a socket's file (`-d` and `-D`: remove an old one or
/// not; `-a`: its permissions) do not apply to an abstract name: an
/// option error, 100, before anything is bound. `@` alone is no name, as
/// an empty path is none.
#[test]
fn file_options_are_refused_with_an_abstract_name() {
    let cwd = TempDir::new();
    let name = unique("refused");
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("ipcserver", &["-d"], &["true"]),
        ("ipcserver", &["-D"], &["true"]),
        ("ipcserver", &["-a", "600"], &["true"]),
        ("ipcserver", &["-a", "600", "-q"], &["true"]),
        ("ipcserver-socketbinder", &["-d"], &["true"]),
        ("ipcserver-socketbinder", &["-D"], &["true"]),
        ("ipcserver-socketbinder", &["-a", "600"], &["true"]),
        ("ipclisten", &["-d"], &["true"]),
        ("ipclisten", &["-D"], &["true"]),
        ("ipcprint", &["-d"], &[]),
        ("ipcprint", &["-D"], &[]),
        ("ipcprint", &["-a", "600"], &[]),
    ];
    for (prog, opts, rest) in cases {
        let o = run_in(cmd(prog).args(*opts).arg(&name).args(*rest), cwd.path(), b"");
        let letter = &opts[0][1..];
        let said = format!("{prog}: option -{letter} does not apply to an abstract socket: {name}\n");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(100), "{prog} {opts:?}: {err}");
        assert!(err.starts_with(&said), "{prog} {opts:?}: {err}");
        assert!(err.lines().nth(1).is_some_and(|l| l.contains(": usage: ")), "{prog} {opts:?}: {err}");
        // Not bound: the name is free.
        let o = run_in(cmd("ipccat").arg(&name), cwd.path(), b"");
        assert!(stderr(&o).ends_with("connection refused\n"), "{prog} {opts:?}: {}", stderr(&o));
    }
    for prog in ["ipcserver", "ipcserver-socketbinder", "ipclisten"] {
        let o = run_in(cmd(prog).args(["@", "true"]), cwd.path(), b"");
        assert_eq!(o.status.code(), Some(100), "{prog}: {}", stderr(&o));
        assert!(stderr(&o).starts_with(&format!("{prog}: usage: ")), "{prog}: {}", stderr(&o));
    }
    let o = run_in(cmd("ipcprint").arg("@"), cwd.path(), b"");
    assert_eq!(o.status.code(), Some(100), "ipcprint: {}", stderr(&o));
    assert_eq!(listing(cwd.path()), Vec::<String>::new());
}

/// The abstract namespace is the network namespace's: a server started in
/// a new one is out of reach from here, under the same name.
#[test]
fn the_namespace_follows_the_network_namespace() {
    if !need_root() || !have("unshare") {
        return;
    }
    let cwd = TempDir::new();
    let name = unique("netns");
    let mut c = Command::new("unshare");
    c.arg("--net").arg(bin("ipcserver")).args(["-1", &name, "env"]);
    let server = Watched::start(&mut c, cwd.path(), &name);
    let o = run_in(cmd("ipccat").arg(&name), cwd.path(), b"");
    assert_eq!(stderr(&o), format!("ipccat: unable to connect to {name}: connection refused\n"));
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/proc/{}/ns/net", server.server.pid())).arg(bin("ipccat")).arg(&name);
    if have("nsenter") {
        let o = run_in(&mut c, cwd.path(), b"");
        assert_eq!(paths(&stdout(&o)).0, some(&name), "{}", stderr(&o));
    }
}
