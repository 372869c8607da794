//! The recipes of examples/ (doc/examples.md), run as a user would run
//! them: the s6 service directory under s6-svscan, the runit one under
//! runsv, the execline server and client scripts (as root: they drop
//! privileges), the systemd units under systemd-socket-activate, and the
//! ipcexec service set up and used through ipcrun. Each is copied into a
//! temporary directory with only its settings changed (socket path,
//! program directory), or run as it is with its settings in the
//! environment. A recipe whose tools are missing is SKIPPED.
use crate::common;
use common::supervise::*;
use common::*;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file or directory of examples/.
fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(rel)
}

/// PATH with our programs first, as after installing them.
fn path_with_bin() -> OsString {
    let mut dirs = vec![bin_dir()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// Whether every program in `tools` is installed; says SKIPPED if not.
fn have_all(tools: &[&str]) -> bool {
    tools.iter().all(|t| have(t))
}

/// Copies the recipe directory examples/REL to `to`, modes included.
fn copy_recipe(rel: &str, to: &Path) {
    let o = run(Command::new("cp").arg("-R").arg(example(rel)).arg(to), 10);
    assert_eq!(o.status.code(), Some(0), "cp: {}", stderr(&o));
}

/// `text` with its one occurrence of `old` replaced: a setting of a
/// recipe, which must be there exactly once.
fn replace_once(text: &str, old: &str, new: &str) -> String {
    assert_eq!(text.matches(old).count(), 1, "{old:?} once in:\n{text}");
    text.replace(old, new)
}

/// Rewrites the file `file` with `replace_once`.
fn adjust(file: &Path, old: &str, new: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, replace_once(&text, old, new)).unwrap();
}

/// The greeting of the recipes for a client of uid `uid`.
fn greeting(uid: u32) -> String {
    format!("hello, uid {uid}\n")
}

/// Connects with ipccat and returns (exit code, stdout, stderr).
fn ipccat(sock: &Path) -> (Option<i32>, String, String) {
    let o = run(cmd("ipccat").arg(sock), 10);
    (o.status.code(), stdout(&o), stderr(&o))
}

/// The lines `ipcserver -v` logs for one connection of ours to `sock`
/// (`-v` gives an `ok` line even without rules), each after whatever
/// prefix the logger adds (a timestamp and a space): waits at most 10 s
/// for the six lines to be in `log`, then compares them with the start
/// line and that connection's lines.
fn assert_logged_one_connection(log: &Path, prefix_len: usize, name: &str, sock: &Path) {
    let lines = || -> Vec<String> {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines().map(|l| l.get(prefix_len..).unwrap_or(l).to_string()).collect()
    };
    let end = format!("{name}: end ");
    let complete = wait_until(10, || {
        let l = lines();
        l.len() >= 6 && l.iter().any(|l| l.starts_with(&end))
    });
    assert!(complete, "{}:\n{:?}", log.display(), lines());
    let got = lines();
    let pid = got.iter().find_map(|l| l.strip_prefix(&format!("{name}: pid "))?.split(' ').next()).unwrap();
    let (uid, gid) = (my_uid(), std::os::unix::fs::MetadataExt::gid(&std::fs::metadata("/proc/self").unwrap()));
    let want = [
        "status: 0/40".to_string(),
        "status: 1/40".to_string(),
        format!("pid {pid} from "),
        format!("ok {pid} {} :{uid},{gid}", s(sock)),
        format!("end {pid} status 0"),
        "status: 0/40".to_string(),
    ];
    let want: Vec<String> = want.iter().map(|l| format!("{name}: {l}")).collect();
    assert_eq!(got, want, "{}", log.display());
}

/// Asserts that the server `pid` on `sock` is gone, that nothing it
/// started is left, and that its socket refuses clients.
fn assert_gone(pid: i32, sock: &Path, inode: u64) {
    assert!(wait_until(10, || !alive(pid)), "the server {pid} is still running");
    let left = left_behind(sock, inode);
    for &p in &left {
        kill(p, 9);
    }
    assert_eq!(left, Vec::<i32>::new(), "processes left behind by the server (now killed)");
    let refused = format!("ipccat: unable to connect to {}: connection refused\n", s(sock));
    assert_eq!(ipccat(sock), (Some(111), String::new(), refused));
}

/// The pid's command name, as ps shows it.
fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim_end().to_string()
}

// ---- s6 ----

#[test]
fn s6_service_directory_ready_served_logged_and_stopped() {
    let tools = ["s6-svscan", "s6-svscanctl", "s6-svwait", "s6-svc", "s6-svstat", "s6-envdir", "s6-log"];
    if !have_all(&tools) || !have("execlineb") {
        return;
    }
    let t = TempDir::new();
    let scan = t.join("scan");
    std::fs::create_dir(&scan).unwrap();
    let svc = scan.join("greeter");
    copy_recipe("s6/greeter", &svc);
    // The settings, in env/.
    let sock = t.join("greeter.sock");
    adjust(&svc.join("env/SOCKET"), "/run/greeter.sock\n", &format!("{}\n", s(&sock)));
    adjust(&svc.join("env/BIN"), "/usr/local/bin\n", &format!("{}\n", s(&bin_dir())));

    let mut svscan = Svscan::start(&scan, &t.join("svscan.out"));
    svscan.wait_supervised(&svc);
    let o = s6("s6-svwait", &["-U", "-t", "10000"], &svc);
    assert_eq!(o.status.code(), Some(0), "s6-svwait -U: {}", stderr(&o));
    // Ready means served: no waiting.
    assert_eq!(ipccat(&sock), (Some(0), greeting(my_uid()), String::new()));
    let pid = service_pid(&svc);
    assert_eq!(comm(pid), "ipcserverd");
    assert_eq!(svstat("up,ready", &svc), "true true");
    let inode = listening_inode(&sock).unwrap();
    // s6-svscan started the logger, with a pipe from the service.
    svscan.wait_supervised(&svc.join("log"));
    let logger = service_pid(&svc.join("log"));
    assert!(wait_until(10, || comm(logger) == "s6-log"), "the logger is {}", comm(logger));
    // "@" and 24 hex digits of TAI64N, and a space.
    assert_logged_one_connection(&svc.join("log/main/current"), 26, "ipcserver", &sock);

    let o = s6("s6-svc", &["-d"], &svc);
    assert_eq!(o.status.code(), Some(0), "s6-svc -d: {}", stderr(&o));
    let o = s6("s6-svwait", &["-D", "-t", "10000"], &svc);
    assert_eq!(o.status.code(), Some(0), "s6-svwait -D: {}", stderr(&o));
    assert_eq!(svstat("up,ready,exitcode", &svc), "false false 0");
    assert_gone(pid, &sock, inode);
    assert!(alive(logger), "the logger stopped with the service");

    let st = svscan.stop(10);
    assert!(matches!(st, Some(st) if st.code() == Some(0)), "s6-svscan: {st:?}");
    assert!(wait_until(5, || !alive(logger)), "the logger {logger} is still running");
    let output = std::fs::read_to_string(t.join("svscan.out")).unwrap();
    assert_eq!(output, "", "s6-svscan and the supervisors said something");
}

// ---- runit ----

#[test]
fn runit_service_directory_checked_served_logged_and_stopped() {
    if !have_all(&["runsv", "sv", "svlogd"]) {
        return;
    }
    let t = TempDir::new();
    let svc = t.join("greeter");
    copy_recipe("runit/greeter", &svc);
    // The settings, at the top of run.
    let sock = t.join("greeter.sock");
    let run_script = svc.join("run");
    adjust(&run_script, "\nsocket=/run/greeter.sock\n", &format!("\nsocket={}\n", sh_quote(s(&sock))));
    adjust(&run_script, "\nbin=/usr/local/bin\n", &format!("\nbin={}\n", sh_quote(s(&bin_dir()))));

    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut runsv = Runsv::start(&svc, &[("PATH", path.as_os_str())], &t.join("runsv.out"));
    // sv waits for ./check, which says ready once the server is.
    let o = runsv.sv(&["-w", "10", "up"]);
    assert_eq!(o.status.code(), Some(0), "sv up: {}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with(&format!("ok: run: {}: (pid ", s(&svc))), "{}", stdout(&o));
    assert_eq!(ipccat(&sock), (Some(0), greeting(my_uid()), String::new()));
    let pid = runsv.pid("").unwrap();
    assert_eq!(comm(pid), "ipcserverd");
    assert_eq!(std::fs::read_to_string(svc.join("ready")).unwrap(), format!("{}\n", s(&sock)));
    let o = runsv.sv(&["check"]);
    assert_eq!(o.status.code(), Some(0), "sv check: {}{}", stdout(&o), stderr(&o));
    let inode = listening_inode(&sock).unwrap();
    let logger = runsv.pid("log").unwrap();
    assert!(wait_until(10, || comm(logger) == "svlogd"), "the logger is {}", comm(logger));
    // svlogd -tt: "YYYY-MM-DD_HH:MM:SS.SSSSS " before each line.
    assert_logged_one_connection(&svc.join("log/main/current"), 26, "ipcserver", &sock);

    let o = runsv.sv(&["-w", "10", "down"]);
    assert_eq!(o.status.code(), Some(0), "sv down: {}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with(&format!("ok: down: {}: ", s(&svc))), "{}", stdout(&o));
    assert_gone(pid, &sock, inode);
    // ./finish: not ready any more.
    assert!(wait_until(10, || !svc.join("ready").exists()), "./finish did not remove ./ready");

    runsv.stop();
    assert!(wait_until(5, || !alive(logger)), "the logger {logger} is still running");
    let output = std::fs::read_to_string(t.join("runsv.out")).unwrap();
    assert_eq!(output, "", "runsv said something");
}

// ---- execline ----

#[test]
fn execline_scripts_drop_privileges_and_apply_rules() {
    if !need_root() || !have_all(&["execlineb", "s6-envuidgid", "setpriv"]) {
        return;
    }
    let Some((nobody, ..)) = by_uid(NOBODY) else {
        skip("no user 65534 in /etc/passwd");
        return;
    };
    let t = TempDir::new();
    let sock = t.join("greeter.sock");
    let cdb = rules(t.path(), &std::fs::read_to_string(example("execline/rules")).unwrap());
    let log = t.join("server.log");
    let mut server = Server::start(
        Command::new(example("execline/greeter-server"))
            .env("PATH", path_with_bin())
            .env("GREETER_SOCKET", &sock)
            .env("GREETER_RULES", &cdb)
            .env("GREETER_ACCOUNT", &nobody)
            .stderr(std::fs::File::create(&log).unwrap()),
        &sock,
    );
    let pid = server.pid();
    // The chain went all the way to ipcserverd, which runs as nobody.
    assert!(wait_until(10, || comm(pid) == "ipcserverd"), "{}", comm(pid));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for ids in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(ids)).unwrap();
        assert!(line.split_whitespace().skip(1).all(|id| id == NOBODY.to_string()), "{line}");
    }
    let inode = listening_inode(&sock).unwrap();

    let client = |as_nobody: bool| -> Output {
        let mut c = if as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(example("execline/greeter-client"));
            c
        } else {
            Command::new(example("execline/greeter-client"))
        };
        run(c.arg("world").env("PATH", path_with_bin()).env("GREETER_SOCKET", &sock), 10)
    };
    // Root is denied by the rules: the server closes without a word.
    let o = client(false);
    assert_eq!(stdout(&o), "", "{}", stderr(&o));
    // Anybody else is greeted by a handler that runs as nobody.
    let o = client(true);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello, world: you are uid 65534, I am uid 65534\n");

    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let both = wait_until(10, || logged().matches("ipcserverd: end ").count() == 2);
    assert!(both, "{}", logged());
    let text = logged();
    assert!(text.starts_with("ipcserverd: status: 0/40\n"), "{text}");
    // Each connection's verdict (without its pid), and how it ended.
    let verdicts: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ipcserver-access: "))
        .map(|l| l.split(' ').enumerate().filter(|(i, _)| *i != 1).map(|(_, f)| f).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(verdicts, [format!("deny {} :0,0", s(&sock)), format!("ok {} :65534,65534", s(&sock))]);
    let ends: Vec<&str> =
        text.lines().filter(|l| l.starts_with("ipcserverd: end ")).filter_map(|l| l.rsplit(' ').next()).collect();
    assert_eq!(ends, ["25600", "0"], "{text}");

    server.signal(15);
    assert_eq!(server.wait(10).and_then(|st| st.code()), Some(0));
    assert_gone(pid, &sock, inode);
}

// ---- systemd ----

/// The words of a unit's command line, as systemd splits it: blanks
/// separate words, quotes group them, `$$` is a `$`. Backslashes, `%`
/// specifiers and `$NAME` substitutions are more than the recipes use,
/// and more than this reads.
fn unit_command_words(line: &str) -> Vec<String> {
    assert!(!line.contains('\\') && !line.contains('%'), "more than this test splits: {line}");
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
            match c {
                '\'' | '"' => word.extend(chars.by_ref().take_while(|&q| q != c)),
                _ => word.push(c),
            }
        }
        assert!(!word.replace("$$", "").contains('$'), "a substitution in {word:?}");
        words.push(word.replace("$$", "$"));
    }
}

/// The value of `key=` in a unit file's text (one line, the last one).
fn unit_setting<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines().rev().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn systemd_units_socket_activated() {
    if !have("systemd-socket-activate") {
        return;
    }
    let t = TempDir::new();
    let sock = t.join("greeter.sock");
    let socket_unit = std::fs::read_to_string(example("systemd/greeter.socket")).unwrap();
    let service_unit = std::fs::read_to_string(example("systemd/greeter.service")).unwrap();
    // The settings: the socket's path and the programs' directory.
    let socket_unit =
        replace_once(&socket_unit, "\nListenStream=/run/greeter.sock\n", &format!("\nListenStream={}\n", s(&sock)));
    let service_unit = replace_once(&service_unit, "=/usr/local/bin/", &format!("={}/", s(&bin_dir())));
    let units = t.join("units");
    std::fs::create_dir(&units).unwrap();
    std::fs::write(units.join("greeter.socket"), &socket_unit).unwrap();
    std::fs::write(units.join("greeter.service"), &service_unit).unwrap();

    // What systemd itself would say of them (it checks the programs too).
    if have("systemd-analyze") {
        let o = run(
            Command::new("systemd-analyze")
                .arg("verify")
                .arg(units.join("greeter.socket"))
                .arg(units.join("greeter.service")),
            30,
        );
        assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(0), String::new(), String::new()));
    }
    // systemd-socket-activate --inetd passes the socket on descriptor 0
    // (and 1), which is what these settings make systemd do.
    assert_eq!(unit_setting(&socket_unit, "Accept"), Some("no"));
    assert_eq!(unit_setting(&service_unit, "StandardInput"), Some("socket"));
    assert_eq!(unit_setting(&service_unit, "StandardError"), Some("journal"));
    let argv = unit_command_words(unit_setting(&service_unit, "ExecStart").unwrap());
    assert_eq!(argv[0], s(&bin("ipcserverd")));

    let log = t.join("activate.log");
    let mut activator = Command::new("systemd-socket-activate");
    activator.arg("--inetd").arg("-l").arg(&sock).args(&argv).stderr(std::fs::File::create(&log).unwrap());
    let mut server = Server::start(&mut activator, &sock);
    let pid = server.pid();
    // Nothing started before the first client; that client is served.
    assert_ne!(comm(pid), "ipcserverd");
    assert_eq!(ipccat(&sock), (Some(0), greeting(my_uid()), String::new()));
    assert_eq!(comm(pid), "ipcserverd");
    // The next one by the same server.
    assert_eq!(ipccat(&sock), (Some(0), greeting(my_uid()), String::new()));
    assert_eq!(server.pid(), pid);
    let inode = listening_inode(&sock).unwrap();
    // The start line, then four per connection.
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let ours =
        || -> Vec<String> { logged().lines().filter(|l| l.starts_with("ipcserverd: ")).map(String::from).collect() };
    assert!(wait_until(10, || ours().len() == 9), "{}", logged());
    let ours = ours();
    assert_eq!(ours[0], "ipcserverd: status: 0/40");
    assert_eq!(ours.iter().filter(|l| l.starts_with("ipcserverd: end ") && l.ends_with(" status 0")).count(), 2);
    assert!(!logged().contains("fatal") && !logged().contains("warning"), "{}", logged());

    // What systemctl stop sends the service's main process.
    server.signal(15);
    assert_eq!(server.wait(10).and_then(|st| st.code()), Some(0));
    assert_gone(pid, &sock, inode);
}

// ---- the ipcexec service ----

#[test]
fn ipcexec_service_set_up_by_root_used_by_a_user() {
    let tools = ["s6-svscan", "s6-svscanctl", "s6-svc", "s6-svwait", "s6-svstat", "s6-log", "setpriv", "id"];
    if !need_root() || !have_all(&tools) {
        return;
    }
    if by_uid(NOBODY).is_none() {
        skip("no user 65534 in /etc/passwd");
        return;
    }
    let t = TempDir::new();
    let scan = t.join("scan");
    std::fs::create_dir(&scan).unwrap();
    let dir = t.join("ipcexec");
    let mut svscan = Svscan::start(&scan, &t.join("svscan.out"));

    // As root: setup USER DIR SCANDIR.
    let o = run(
        Command::new(example("ipcexec/setup")).args(["nobody", s(&dir), s(&scan)]).env("PATH", path_with_bin()),
        20,
    );
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(0), String::new(), String::new()));
    let svc = scan.join("ipcexec");
    svscan.wait_supervised(&svc);
    // No readiness notification here: wait for the socket, as a user
    // would for a second or two. It is bound as DIR/s.
    let bound = dir.join("s");
    assert!(wait_until(10, || socket_ready(&bound)), "the service never listened");
    let pid = service_pid(&svc);
    let inode = listening_inode(&bound).unwrap();

    // As nobody: try, through the link in the scan directory.
    let o = run(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(example("ipcexec/try"))
            .env("PATH", path_with_bin())
            .env("IPCEXEC_SOCKET", svc.join("s")),
        20,
    );
    let want = "0\nroot\ncat /etc/shadow: exit 100\n";
    assert_eq!((o.status.code(), stdout(&o).as_str(), stderr(&o).as_str()), (Some(0), want, ""));
    // Served: the chain has reached ipcserverd (a listening socket alone
    // says only that ipcserver-socketbinder has run).
    assert_eq!(comm(pid), "ipcserverd");

    // The service's log, by its logger.
    let current = dir.join("log/main/current");
    let logged = || std::fs::read_to_string(&current).unwrap_or_default();
    let complete = wait_until(10, || logged().contains("ipcexec: deny 65534.65534,0.cat"));
    assert!(complete, "{}", logged());
    let text = logged();
    let verdicts: Vec<&str> = text.lines().filter_map(|l| l.split_once(" ipcexec: ").map(|(_, v)| v)).collect();
    assert_eq!(verdicts, ["ok 65534.65534,0.id", "ok 65534.65534,0.id", "deny 65534.65534,0.cat"]);

    let o = s6("s6-svc", &["-d"], &svc);
    assert_eq!(o.status.code(), Some(0), "s6-svc -d: {}", stderr(&o));
    let o = s6("s6-svwait", &["-D", "-t", "10000"], &svc);
    assert_eq!(o.status.code(), Some(0), "s6-svwait -D: {}", stderr(&o));
    assert_gone(pid, &bound, inode);
    let st = svscan.stop(10);
    assert!(matches!(st, Some(st) if st.code() == Some(0)), "s6-svscan: {st:?}");
}
