//! The s6-rc service definitions in examples/s6-rc, with the real s6-rc:
//! they compile into the documented services, bundle and pipelines; the
//! values a user adapts are the `define` lines at the top of each script;
//! adapted to a temporary directory and brought up with `s6-rc -u change`
//! under an s6-svscan of our own (as root), the rules oneshots have run,
//! the greeter and ipcexec servers are up and ready, and serve at once
//! (ipcexec an unprivileged client through ipcrun), their loggers have
//! their lines; rules that do not compile keep their server down; `s6-rc
//! -d change` stops everything cleanly, and nothing the test started is
//! left running.
use crate::common;
use common::supervise::Svscan;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The source directory we ship.
fn definitions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/s6-rc")
}

/// The atomic services of the definitions.
const SERVICES: [&str; 6] = ["greeter", "greeter-log", "greeter-rules", "ipcexec", "ipcexec-log", "ipcexec-rules"];

/// The uid the servers and loggers run as in the live tests.
const NOBODY: u32 = 65534;

/// The login name of uid 65534, from /etc/passwd.
fn nobody() -> Option<String> {
    std::fs::read_to_string("/etc/passwd").ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[2] == NOBODY.to_string()).then(|| f[0].to_string())
    })
}

/// Copies the tree `from` to `to` (modes kept: the run scripts stay
/// executable).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The file of a service that holds its `define` lines: `up` for a
/// oneshot, `run` for a longrun.
fn script(source: &Path, service: &str) -> PathBuf {
    let dir = source.join(service);
    if dir.join("up").exists() {
        dir.join("up")
    } else {
        dir.join("run")
    }
}

/// What a user adapts, per service: (service, NAME, VALUE).
type Values<'a> = [(&'a str, &'a str, String)];

/// Copies the definitions to `to`, setting each (service, NAME, VALUE)
/// of `values` on the `define NAME` line of that service's script, as
/// doc/s6-rc.md tells a user to. Every define of every script must be
/// given a value, and every value must have its define.
fn adapt(to: &Path, values: &Values) {
    copy_tree(&definitions(), to);
    let mut used = vec![false; values.len()];
    for service in SERVICES {
        let path = script(to, service);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let Some(name) = line.strip_prefix("define ").and_then(|r| r.split_whitespace().next()) else {
                out.push_str(line);
                out.push('\n');
                continue;
            };
            let Some(i) = values.iter().position(|(sv, n, _)| *sv == service && *n == name) else {
                panic!("{service}: the test has no value for `define {name}`");
            };
            used[i] = true;
            // Keep the comment after the value.
            let rest = line["define ".len() + name.len()..].trim_start();
            let comment = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
            out.push_str(&format!("define {name} {}{comment}\n", values[i].2));
        }
        std::fs::write(&path, out).unwrap();
    }
    for ((service, name, _), used) in values.iter().zip(used) {
        assert!(used, "{service}: no `define {name}` line for a value the doc says to adapt");
    }
}

/// The values the tests give, everything under `dir` but the accounts,
/// and ipcexec's socket, kept as shipped (`s`, in its service directory).
fn test_values(dir: &Path, account: &str) -> Vec<(&'static str, &'static str, String)> {
    let bin = bin("ipcserver").parent().unwrap().to_str().unwrap().to_string();
    let at = |rel: &str| s(&dir.join(rel)).to_string();
    vec![
        ("greeter-rules", "rules", at("greeter/rules")),
        ("greeter-rules", "bin", bin.clone()),
        ("greeter", "socket", at("greeter.sock")),
        ("greeter", "account", account.to_string()),
        ("greeter", "rules", at("greeter/rules")),
        ("greeter", "bin", bin.clone()),
        ("greeter-log", "logdir", at("log/greeter")),
        ("greeter-log", "account", account.to_string()),
        ("ipcexec-rules", "rules", at("ipcexec/rules")),
        ("ipcexec-rules", "bin", bin.clone()),
        ("ipcexec", "socket", "s".to_string()),
        ("ipcexec", "rules", at("ipcexec/rules")),
        ("ipcexec", "bin", bin),
        ("ipcexec-log", "logdir", at("log/ipcexec")),
        ("ipcexec-log", "account", account.to_string()),
    ]
}

/// Every file under `dir`, as (relative path, contents).
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            out.extend(files(&p).into_iter().map(|(n, t)| (format!("{name}/{n}"), t)));
        } else {
            out.push((p.file_name().unwrap().to_str().unwrap().to_string(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

fn compile(compiled: &Path, source: &Path) {
    let o = run(Command::new("s6-rc-compile").arg(compiled).arg(source), 30);
    assert_eq!(o.status.code(), Some(0), "s6-rc-compile: {}", stderr(&o));
    assert_eq!((stdout(&o), stderr(&o)), (String::new(), String::new()));
}

/// `s6-rc-db -c COMPILED ARGS`: its lines, sorted.
fn db(compiled: &Path, args: &[&str]) -> Vec<String> {
    let o = run(Command::new("s6-rc-db").arg("-c").arg(compiled).args(args), 10);
    assert_eq!(o.status.code(), Some(0), "s6-rc-db {args:?}: {}", stderr(&o));
    let mut lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn the_definitions_compile_and_are_adapted_in_their_define_lines() {
    if !have("s6-rc-compile") || !have("s6-rc-db") {
        return;
    }
    let t = TempDir::new();
    // As shipped.
    let compiled = t.join("compiled");
    compile(&compiled, &definitions());
    assert_eq!(db(&compiled, &["list", "bundles"]), ["greeter-pipeline", "ipcexec-pipeline", "ucspi-ipc"]);
    assert_eq!(db(&compiled, &["list", "oneshots"]), ["greeter-rules", "ipcexec-rules"]);
    let longruns = ["greeter", "greeter-log", "ipcexec", "ipcexec-log", "s6rc-fdholder", "s6rc-oneshot-runner"];
    assert_eq!(db(&compiled, &["list", "longruns"]), longruns);
    assert_eq!(db(&compiled, &["contents", "ucspi-ipc"]), SERVICES);
    assert_eq!(db(&compiled, &["contents", "greeter-pipeline"]), ["greeter", "greeter-log"]);
    assert_eq!(db(&compiled, &["pipeline", "greeter"]), ["greeter | greeter-log"]);
    assert_eq!(db(&compiled, &["pipeline", "ipcexec"]), ["ipcexec | ipcexec-log"]);
    // Each server needs its compiled rules, and its logger first.
    assert_eq!(db(&compiled, &["dependencies", "greeter"]), ["greeter-log", "greeter-rules", "s6rc-fdholder"]);
    assert_eq!(db(&compiled, &["dependencies", "ipcexec"]), ["ipcexec-log", "ipcexec-rules", "s6rc-fdholder"]);
    // Readiness is waited for; env/ goes with ipcexec.
    let servicedirs = compiled.join("servicedirs");
    for longrun in ["greeter", "greeter-log", "ipcexec", "ipcexec-log"] {
        assert_eq!(std::fs::read_to_string(servicedirs.join(longrun).join("notification-fd")).unwrap(), "3\n");
    }
    assert_eq!(std::fs::read_to_string(servicedirs.join("ipcexec/env/IPCERROUT")).unwrap(), "1");

    // Adapted: once the define lines are set, nothing in the definitions
    // names a system location any more, and they still compile.
    let source = t.join("source");
    adapt(&source, &test_values(t.path(), "nobody"));
    for (name, text) in files(&source) {
        for system in ["/etc/", "/var/", "/run/", "/usr/local/"] {
            assert!(!text.contains(system), "{name} still names {system} once adapted:\n{text}");
        }
    }
    compile(&t.join("compiled2"), &source);
    // The oneshot's script, as s6-rc-compile lexed it: its words, NUL-separated.
    let script = db(&t.join("compiled2"), &["script", "greeter-rules"]).concat();
    let words: Vec<&str> = script.split('\0').collect();
    assert!(words.windows(3).any(|w| w == ["define", "rules", s(&t.join("greeter/rules"))]), "{words:?}");
}

// ---- Live: s6-svscan, s6-rc-init, s6-rc (as root) ----

/// What the live tests need; says SKIPPED otherwise. The account of uid
/// 65534 when all is there.
fn live_prerequisites() -> Option<String> {
    let tools = [
        "s6-rc-compile",
        "s6-rc-init",
        "s6-rc",
        "s6-svscan",
        "s6-svscanctl",
        "s6-svstat",
        "s6-envuidgid",
        "s6-envdir",
        "s6-setuidgid",
        "s6-log",
        "execlineb",
        "setpriv",
    ];
    if !need_root() || !tools.iter().all(|p| have(p)) {
        return None;
    }
    if !Path::new("/bin/execlineb").exists() {
        skip("the run scripts start with #!/bin/execlineb, which is not there");
        return None;
    }
    match (nobody(), Path::new("/usr/bin/id").exists() && Path::new("/usr/bin/env").exists()) {
        (Some(n), true) => Some(n),
        _ => {
            skip("needs user 65534 in /etc/passwd, /usr/bin/id and /usr/bin/env");
            None
        }
    }
}

/// The live processes whose working directory is under `dir` or whose
/// command line names it: what a test started there (s6-svscan, the
/// supervisors, the services and loggers).
fn processes_in(dir: &Path) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map(|c| c.starts_with(dir)).unwrap_or(false);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let named = cmdline.split(|&b| b == 0).any(|a| Path::new(&*String::from_utf8_lossy(a)).starts_with(dir));
        if (cwd || named) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// A supervision tree of our own, managed by s6-rc: DIR/source (the
/// adapted definitions) compiled into DIR/compiled, s6-svscan on DIR/scan
/// (its output in DIR/svscan.log), the live state in DIR/live. Dropping
/// it stops s6-svscan and kills, by pid, anything left under DIR.
struct Tree {
    svscan: Svscan,
    dir: TempDir,
}

impl Tree {
    fn start(dir: TempDir, nobody: &str) -> Tree {
        let (source, compiled, scan) = (dir.join("source"), dir.join("compiled"), dir.join("scan"));
        adapt(&source, &test_values(dir.path(), nobody));
        compile(&compiled, &source);
        std::fs::create_dir(&scan).unwrap();
        let svscan = Svscan::start(&scan, &dir.join("svscan.log"));
        let mut tree = Tree { svscan, dir };
        let listening = wait_until(10, || {
            if let Some(st) = tree.svscan.exited() {
                panic!("s6-svscan exited early: {st}");
            }
            run(Command::new("s6-svscanctl").arg("-a").arg(&scan), 5).status.success()
        });
        assert!(listening, "s6-svscan never read its control pipe");
        let o = run(
            Command::new("s6-rc-init")
                .args(["-t", "10000", "-c"])
                .arg(&compiled)
                .arg("-l")
                .arg(tree.dir.join("live"))
                .arg(&scan),
            20,
        );
        assert_eq!((o.status.code(), stderr(&o)), (Some(0), String::new()), "s6-rc-init");
        tree
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// `s6-rc -l DIR/live -t 20000 ARGS`.
    fn rc(&self, args: &[&str]) -> Output {
        run(Command::new("s6-rc").arg("-l").arg(self.path("live")).args(["-t", "20000"]).args(args), 30)
    }

    /// The services s6-rc has up, ours only (not its s6rc- helpers).
    fn active(&self) -> Vec<String> {
        let o = self.rc(&["-a", "list"]);
        assert_eq!(o.status.code(), Some(0), "s6-rc -a list: {}", stderr(&o));
        let mut up: Vec<String> = stdout(&o).lines().filter(|l| !l.starts_with("s6rc-")).map(str::to_string).collect();
        up.sort();
        up
    }

    /// `s6-svstat -o FIELDS` on a longrun, without the newline.
    fn svstat(&self, fields: &str, longrun: &str) -> String {
        let o = run(Command::new("s6-svstat").args(["-o", fields]).arg(self.path("scan").join(longrun)), 10);
        assert_eq!(o.status.code(), Some(0), "s6-svstat {longrun}: {}", stderr(&o));
        stdout(&o).trim_end().to_string()
    }

    fn pid(&self, longrun: &str) -> i32 {
        self.svstat("pid", longrun).parse().unwrap()
    }

    /// `s6-svscanctl -t`: s6-svscan stops every service and supervisor,
    /// then exits; after that no process of ours may be left.
    fn stop(&mut self) {
        assert!(self.svscan.stop(20).is_some(), "s6-svscan did not exit");
        let dir = self.dir.path().to_path_buf();
        assert!(wait_until(5, || processes_in(&dir).is_empty()), "left running: {:?}", processes_in(&dir));
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // No assertions: this may run while a test is panicking.
        self.svscan.shut_down();
        for pid in processes_in(self.dir.path()) {
            kill(pid, 9);
        }
    }
}

/// The greeter's rules: uid 65534 is refused, everyone else greeted with
/// the rule's variable.
const GREETER_RULES: &str = "65534:deny\n:allow,GREETING=\"hello from the rules\"\n";

/// ipcexec's rules: uid 65534 may run id and env as root, nothing else.
const IPCEXEC_RULES: &str = "65534,0.id:allow=\"/usr/bin/id\"\n65534,0.env:allow=\"/usr/bin/env\"\n:deny\n";

fn write_rules(dir: &Path, greeter: &str) {
    for (name, text) in [("greeter", greeter), ("ipcexec", IPCEXEC_RULES)] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("rules"), text).unwrap();
    }
}

/// Runs `program ARGS` as uid and gid 65534, no groups.
fn as_nobody(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin(program)).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c, 20)
}

/// The uid line of a process (real, effective, saved, filesystem).
fn uids(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("Uid:")).unwrap().split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim_end().to_string()
}

/// Waits until the log DIR/current has a line for each (start, end) of
/// `lines` (after its timestamp); every line must start with a TAI64N
/// timestamp, and s6-log, as nobody, must own the file. Returns the log.
fn wait_for_log(dir: &Path, lines: &[(&str, &str)]) -> String {
    let current = dir.join("current");
    let text = || std::fs::read_to_string(&current).unwrap_or_default();
    let has = |t: &str, (start, end): &(&str, &str)| {
        t.lines().any(|l| l.get(26..).is_some_and(|l| l.starts_with(start) && l.ends_with(end)))
    };
    let complete = wait_until(10, || lines.iter().all(|l| has(&text(), l)));
    assert!(complete, "{} lacks some of {lines:?}:\n{}", current.display(), text());
    for line in text().lines() {
        let stamped = line.len() > 26 && line.starts_with("@4000") && line.as_bytes()[25] == b' ';
        assert!(stamped, "no timestamp: {line:?}");
    }
    assert_eq!(std::fs::metadata(&current).unwrap().uid(), NOBODY);
    text()
}

#[test]
fn the_bundle_comes_up_serves_and_goes_down() {
    let Some(nobody) = live_prerequisites() else { return };
    let dir = TempDir::new();
    write_rules(dir.path(), GREETER_RULES);
    let mut tree = Tree::start(dir, &nobody);
    assert!(tree.active().is_empty());

    let o = tree.rc(&["-u", "change", "ucspi-ipc"]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(0), String::new()), "s6-rc -u change ucspi-ipc");
    assert_eq!(tree.active(), SERVICES);
    // The oneshots compiled the rules; the servers and loggers are up and
    // ready, as the accounts they were given.
    assert!(tree.path("greeter/rules.cdb").is_file());
    assert!(tree.path("ipcexec/rules.cdb").is_file());
    for longrun in ["greeter", "greeter-log", "ipcexec", "ipcexec-log"] {
        assert_eq!(tree.svstat("up,ready", longrun), "true true", "{longrun}");
    }
    let (greeter, ipcexec) = (tree.pid("greeter"), tree.pid("ipcexec"));
    let loggers = [tree.pid("greeter-log"), tree.pid("ipcexec-log")];
    // What stop() will check is gone is found while it runs.
    let running = processes_in(tree.dir.path());
    for pid in [tree.svscan.pid(), greeter, ipcexec].into_iter().chain(loggers) {
        assert!(running.contains(&pid), "{pid} not found among {running:?}");
    }
    assert_eq!((comm(greeter), uids(greeter)), ("ipcserverd".to_string(), "65534 65534 65534 65534".to_string()));
    assert_eq!((comm(ipcexec), uids(ipcexec)), ("ipcserverd".to_string(), "0 0 0 0".to_string()));
    for logger in loggers {
        assert_eq!((comm(logger), uids(logger)), ("s6-log".to_string(), "65534 65534 65534 65534".to_string()));
    }

    // Served at once: ready means accepting. The rules are in force.
    let sock = tree.path("greeter.sock");
    let o = run(cmd("ipccat").arg(&sock), 10);
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(0), "hello from the rules, uid 0\n".into(), "".into()));
    let o = as_nobody("ipccat", &[s(&sock)], &[]);
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(0), String::new(), String::new()));

    // ipcexec, on the socket its run script names `s`: SCANDIR/ipcexec/s,
    // for an unprivileged client; env/ is in force.
    let socket = tree.path("scan/ipcexec/s");
    let env = [("IPCEXEC_SOCKET", socket.as_path())];
    let o = as_nobody("ipcrun", &["id", "-u"], &env);
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(0), "0\n".into(), "".into()));
    let o = as_nobody("ipcrun", &["env"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env_value(&o.stdout, "IPCERROUT").as_deref(), Some("1"));
    assert_eq!(env_value(&o.stdout, "IPCREMOTEEUID").as_deref(), Some("65534"));
    let o = as_nobody("ipcrun", &["-F", "whoami"], &env);
    assert_eq!((o.status.code(), stdout(&o)), (Some(100), String::new()));

    // The loggers have the servers' lines.
    let sock = s(&sock);
    let (ok, deny) = (format!(" {sock} :0,0"), format!(" {sock} :65534,65534"));
    let greeter_log = wait_for_log(
        &tree.path("log/greeter"),
        &[("ipcserver: status: 0/40", ""), ("ipcserver: ok ", &ok), ("ipcserver: deny ", &deny)],
    );
    assert!(!greeter_log.contains("fatal") && !greeter_log.contains("warning"), "{greeter_log}");
    let ipcexec_log = [
        ("ipcexec: ok 65534.65534,0.id", ""),
        ("ipcexec: ok 65534.65534,0.env", ""),
        ("ipcexec: deny 65534.65534,0.whoami", ""),
    ];
    wait_for_log(&tree.path("log/ipcexec"), &ipcexec_log);

    // Down: every server and logger gone when s6-rc returns, cleanly.
    let o = tree.rc(&["-d", "change", "ucspi-ipc"]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(0), String::new()), "s6-rc -d change ucspi-ipc");
    assert!(tree.active().is_empty(), "{:?}", tree.active());
    for longrun in ["greeter", "greeter-log", "ipcexec", "ipcexec-log"] {
        assert_eq!(tree.svstat("up,exitcode", longrun), "false 0", "{longrun}");
    }
    for pid in [greeter, ipcexec].into_iter().chain(loggers) {
        assert!(!alive(pid), "{pid} ({}) is still running", comm(pid));
    }
    let o = run(cmd("ipccat").arg(sock), 10);
    let refused = format!("ipccat: unable to connect to {sock}: connection refused\n");
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), refused));
    tree.stop();
}

#[test]
fn rules_that_do_not_compile_keep_their_server_down() {
    let Some(nobody) = live_prerequisites() else { return };
    let dir = TempDir::new();
    write_rules(dir.path(), "garbage\n");
    let mut tree = Tree::start(dir, &nobody);

    // The oneshot fails with ipcrules's message; the greeter, which
    // depends on it, is not started; the rest is.
    let o = tree.rc(&["-u", "change", "ucspi-ipc"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let want = "ipcrules: fatal: unable to parse this line: garbage\n\
                ipcrules: line 1: expected a colon after the address (ADDRESS:allow or ADDRESS:deny)\n\
                s6-rc: warning: unable to start service greeter-rules: command exited 100\n";
    assert_eq!(stderr(&o), want);
    assert_eq!(tree.active(), ["greeter-log", "ipcexec", "ipcexec-log", "ipcexec-rules"]);
    assert!(!tree.path("greeter/rules.cdb").exists());
    assert!(!tree.path("greeter.sock").exists());
    assert_eq!(tree.svstat("up", "greeter"), "false");

    // Fixed, the same command brings up the rest.
    std::fs::write(tree.path("greeter/rules"), GREETER_RULES).unwrap();
    let o = tree.rc(&["-u", "change", "ucspi-ipc"]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(0), String::new()), "s6-rc -u change ucspi-ipc");
    assert_eq!(tree.active(), SERVICES);
    let o = run(cmd("ipccat").arg(tree.path("greeter.sock")), 10);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "hello from the rules, uid 0\n".to_string()));

    let o = tree.rc(&["-d", "change", "ucspi-ipc"]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(0), String::new()), "s6-rc -d change ucspi-ipc");
    tree.stop();
}
