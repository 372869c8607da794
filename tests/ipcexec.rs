//! ipcexec, ipccommand, ipcexecrules, ipcexecrulescheck, ipcdo and ipcrun,
//! run for real: requests well and badly formed, the rules and their
//! lookup order, what the program runs as and with, descriptor passing,
//! and the original ucspi-ipc 0.67 on either side of the connection.
use crate::common;
use common::exec::*;
use common::*;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The primary gid of `uid` in /etc/passwd.
fn primary_gid(uid: u32) -> Option<u32> {
    std::fs::read_to_string("/etc/passwd").unwrap().lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f.get(3)?.parse().ok())?
    })
}

/// `ipcexec: ok|deny EUID.EGID,UID.CMD` as ipcexec logs it.
fn access_line(verdict: &str, (e, g): (u32, u32), uid: u32, cmd: &str) -> String {
    format!("ipcexec: {verdict} {e}.{g},{uid}.{cmd}\n")
}

#[test]
fn usage() {
    let usage = "ipcserver: usage: ipcexec [ -S ] rules.cdb \n";
    for (args, err) in [
        (&[][..], usage.to_string()),
        (&["a", "b"][..], usage.to_string()),
        (&["-x", "a"][..], format!("ipcserver: illegal option -- x\n{usage}")),
    ] {
        let o = run(cmd("ipcexec").args(args), 10);
        assert_eq!(o.status.code(), Some(100));
        assert_eq!(stderr(&o), err);
    }
}

#[test]
fn bad_requests_run_nothing() {
    let d = TempDir::new();
    let marker = d.join("ran");
    let (uid, gid) = own_ids();
    let cdb = exec_rules(d.path(), ":allow\n");
    let m = marker.to_str().unwrap();
    let touch = |uid: &str| request(uid, &["touch", m]);
    let mut cases: Vec<(Vec<u8>, &str)> = vec![
        (b"x:0,".to_vec(), "not three netstrings"),
        (b"1:a,1:1,6:touch\0,".to_vec(), "the uid is not a number"),
        (b"10:4294967295,1:1,6:touch\0,".to_vec(), "the uid is not a number"),
        (b"1:0,1:0,0:,".to_vec(), "the argument count is not a number from 1 to 1024"),
        (b"1:0,4:1025,".to_vec(), "the argument count is not a number from 1 to 1024"),
        (b"1:0,1:3,6:touch\0,".to_vec(), "the arguments do not match their count"),
        (b"1:0,1:1,5:touch,".to_vec(), "the arguments do not match their count"),
        (b"1:0,1:1,6:touch\0x".to_vec(), "not three netstrings"),
        (b"1:0,1:1,99999999:".to_vec(), "arguments longer than 131072 bytes"),
        (b"1:F,1:0,1:1,6:touch\0,".to_vec(), "1:F, without exactly three descriptors, or descriptors without 1:F,"),
    ];
    let mut truncated = touch(&uid.to_string());
    truncated.pop();
    cases.push((truncated, "connection closed before the end"));
    cases.push((Vec::new(), "connection closed before the end"));
    for (input, reason) in cases {
        let o = exec_direct(&cdb, (uid, gid), &[], &input);
        assert_eq!(o.status.code(), Some(111), "{reason}");
        assert_eq!(stderr(&o), format!("ipcserver: fatal: bad ipc request: {reason}\n"));
        assert!(!marker.exists(), "{reason}: the program ran");
    }
}

#[test]
fn a_request_that_does_not_arrive_in_time_is_dropped() {
    let d = TempDir::new();
    let cdb = exec_rules(d.path(), ":allow\n");
    let mut c = cmd("ipcexec");
    c.arg(&cdb).env("IPCEXEC_TIMEOUT", "1").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // Half a request, then silence, with the connection kept open.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1:0,1:1,").unwrap();
    let start = std::time::Instant::now();
    let o = wait_output(child, 10);
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(stdin);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcserver: fatal: bad ipc request: not received in time\n");
    let o = run(cmd("ipcexec").arg(&cdb).env("IPCEXEC_TIMEOUT", "0"), 10);
    assert_eq!(stderr(&o), "ipcserver: fatal: invalid IPCEXEC_TIMEOUT: 0\n");
    assert_eq!(o.status.code(), Some(100));
}

#[test]
fn unknown_uid_and_unreadable_rules() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let cdb = exec_rules(d.path(), ":allow\n");
    let o = exec_direct(&cdb, (uid, gid), &[], &request("3999999999", &["true"]));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcserver: fatal: unknown uid 3999999999\n");
    let missing = d.join("none.cdb");
    let o = exec_direct(&missing, (uid, gid), &[], &request(&uid.to_string(), &["true"]));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!("ipcserver: fatal: unable to read {}: no such file or directory\n", missing.display())
    );
}

/// A FIFO (or a device) at the rules path is refused at once: opening
/// one for reading would wait for a writer for ever, as root. (run_input
/// gives up after 20 s; the deadline of a request is 10 s.)
#[test]
fn rules_that_are_not_a_regular_file_are_refused_at_once() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let fifo = d.join("fifo.cdb");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for path in [fifo.as_path(), Path::new("/dev/zero")] {
        let start = std::time::Instant::now();
        let o = exec_direct(path, (uid, gid), &[], &request(&uid.to_string(), &["true"]));
        assert_eq!(o.status.code(), Some(111), "{}", path.display());
        let want = format!("ipcserver: fatal: unable to read {}: not a regular file\n", path.display());
        assert_eq!(stderr(&o), want);
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{} held the request", path.display());
    }
}

/// Which rule applies to a client (euid 1001, egid 1010) asking to run
/// `printenv WHICH` as us: every key form, in the original's order, and no
/// rule means deny.
#[test]
fn lookup_order_and_fail_closed_default() {
    let d = TempDir::new();
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let lines = [
        format!("1001.1010,{u}.printenv:allow,WHICH=\"uid.gid\""),
        format!("1001,{u}.printenv:allow,WHICH=\"uid\""),
        format!(".1010,{u}.printenv:allow,WHICH=\"gid\""),
        format!(",{u}.printenv:allow,WHICH=\"anyone\""),
        ":allow,WHICH=\"empty key\"".to_string(),
    ];
    let client = (1001, 1010);
    let rq = request(&u, &["printenv", "WHICH"]);
    for first in 0..lines.len() {
        let cdb = exec_rules(d.path(), &(lines[first..].join("\n") + "\n"));
        let o = exec_direct(&cdb, client, &[], &rq);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let expect = ["uid.gid", "uid", "gid", "anyone", "empty key"][first];
        assert_eq!(stdout(&o), format!("{expect}\n"));
        assert_eq!(stderr(&o), access_line("ok", client, uid, "printenv"));
    }
    // Other clients fall through to the empty key.
    let cdb = exec_rules(d.path(), &(lines.join("\n") + "\n"));
    let o = exec_direct(&cdb, (7, 7), &[], &rq);
    assert_eq!(stdout(&o), "anyone\n");
    // No rule: denied, silently but for the log line (the original allows).
    let cdb = exec_rules(d.path(), &format!("1001,{u}.other:allow\n"));
    let o = exec_direct(&cdb, client, &[], &rq);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), access_line("deny", client, uid, "printenv"));
    // An explicit deny, before a broader allow.
    let cdb = exec_rules(d.path(), &format!("1001,{u}.printenv:deny\n:allow\n"));
    let o = exec_direct(&cdb, client, &[], &rq);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(stderr(&o), access_line("deny", client, uid, "printenv"));
}

#[test]
fn assignments_exec_override_and_the_environment() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let u = uid.to_string();
    let cdb = exec_rules(
        d.path(),
        &format!(
            ",{u}.env:allow,A=\"rule\",=\"nameless\"\n,{u}.ls:allow=\"/bin/echo\",B=\"b\"\n,{u}.missing:allow=\"/nonexistent\"\n"
        ),
    );
    let o = exec_direct(&cdb, (uid, gid), &[("KEEP", "1")], &request(&u, &["env"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let vars = env_lines(&o.stdout);
    let get = |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("A").as_deref(), Some("rule"));
    assert_eq!(get("KEEP").as_deref(), Some("1"));
    assert_eq!(get("IPCREMOTEEUID"), Some(uid.to_string()));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("nameless"));
    // allow="path": that program, with the request's arguments (and its
    // argv[0] kept).
    let o = exec_direct(&cdb, (uid, gid), &[], &request(&u, &["ls", "-l", "x y"]));
    assert_eq!(stdout(&o), "-l x y\n");
    // A failed exec, with stderr sent to the client as everything else.
    let o = exec_direct(&cdb, (uid, gid), &[], &request(&u, &["missing"]));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stdout(&o), "ipcserver: fatal: unable to run missing: no such file or directory\n");
    // The program's name comes from the client: sanitised in the message,
    // which may reach the server's log (IPCERROUT=0), so that it cannot
    // forge log lines.
    let cdb = exec_rules(d.path(), ":allow\n");
    let forged = "x\nipcexec: ok 0.0,0.forged";
    let o = exec_direct(&cdb, (uid, gid), &[("IPCERROUT", "0")], &request(&u, &[forged]));
    assert_eq!(o.status.code(), Some(111));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.ends_with("ipcserver: fatal: unable to run x?ipcexec??ok?0.0,0.forged: no such file or directory\n"),
        "{err}"
    );
    // A program name too long for a key is a bad request, also one longer
    // than a whole key (which must not be looked up without its name).
    for len in [4080, 4097, 100_000] {
        let long = "p".repeat(len);
        let o = exec_direct(&cdb, (uid, gid), &[], &request(&u, &[&long]));
        assert_eq!(
            (o.status.code(), stderr(&o)),
            (Some(111), "ipcserver: fatal: bad ipc request: program name too long\n".into()),
            "{len}"
        );
    }
}

#[test]
fn stderr_goes_to_the_client_unless_ipcerrout_is_0() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let u = uid.to_string();
    let cdb = exec_rules(d.path(), &format!(",{u}.sh:allow\n"));
    let rq = request(&u, &["sh", "-c", "echo out; echo err >&2"]);
    // As the original reads it: unset, or "decimal nonzero" (its leading
    // digits), redirects.
    for (env, out, err) in [
        (&[][..], "out\nerr\n", ""),
        (&[("IPCERROUT", "1")][..], "out\nerr\n", ""),
        (&[("IPCERROUT", "2x")][..], "out\nerr\n", ""),
        (&[("IPCERROUT", "0")][..], "out\n", "err\n"),
        (&[("IPCERROUT", "00")][..], "out\n", "err\n"),
        (&[("IPCERROUT", "")][..], "out\n", "err\n"),
        (&[("IPCERROUT", "abc")][..], "out\n", "err\n"),
    ] {
        let o = exec_direct(&cdb, (uid, gid), env, &rq);
        assert_eq!(stdout(&o), out, "{env:?}");
        assert_eq!(stderr(&o), format!("{}{err}", access_line("ok", (uid, gid), uid, "sh")), "{env:?}");
    }
}

/// What follows the request is the program's input, whole, even when it
/// comes in the same write as the request (the original loses it).
#[test]
fn input_after_the_request_reaches_the_program_whole() {
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let u = uid.to_string();
    let cdb = exec_rules(d.path(), &format!(",{u}.cat:allow\n"));
    let mut input = request(&u, &["cat"]);
    input.extend_from_slice(b"right behind the request\n");
    let o = exec_direct(&cdb, (uid, gid), &[], &input);
    assert_eq!(stdout(&o), "right behind the request\n");
}

/// The program runs as the uid asked for, its primary gid, and no other
/// group; IPCUID and IPCGID (from the rule or the environment) override.
#[test]
fn the_program_runs_as_the_target_user() {
    if !need_root() {
        return;
    }
    let d = TempDir::new();
    let cdb = exec_rules(d.path(), ":allow\n,65534.ids:allow=\"/bin/cat\",IPCGID=\"5\"\n");
    let status = |o: &Output| {
        let s = stdout(o);
        let f = |n: &str| {
            s.lines().find(|l| l.starts_with(n)).unwrap()[n.len()..].split_whitespace().collect::<Vec<_>>().join(" ")
        };
        (f("Uid:"), f("Gid:"), f("Groups:"))
    };
    let all = |n: u32| format!("{n} {n} {n} {n}");
    let rq = |uid: &str| request(uid, &["cat", "/proc/self/status"]);
    let nobody_gid = primary_gid(65534).unwrap();
    let o = exec_direct(&cdb, (1000, 1000), &[], &rq("65534"));
    assert_eq!(status(&o), (all(65534), all(nobody_gid), nobody_gid.to_string()), "{}", stderr(&o));
    let o = exec_direct(&cdb, (1000, 1000), &[], &rq("0"));
    assert_eq!(status(&o), (all(0), all(0), "0".to_string()));
    let o = exec_direct(&cdb, (1000, 1000), &[("IPCUID", "1"), ("IPCGID", "2")], &rq("0"));
    assert_eq!(status(&o), (all(1), all(2), "2".to_string()));
    let o = exec_direct(&cdb, (1000, 1000), &[], &request("65534", &["ids", "/proc/self/status"]));
    assert_eq!(status(&o), (all(65534), all(5), "5".to_string()));
    // IPCUID alone: that user's primary gid, never the asked-for uid's
    // (root's here).
    let o = exec_direct(&cdb, (1000, 1000), &[("IPCUID", "65534")], &rq("0"));
    assert_eq!(status(&o), (all(65534), all(nobody_gid), nobody_gid.to_string()));
    let o = exec_direct(&cdb, (1000, 1000), &[("IPCUID", "3999999999")], &rq("0"));
    assert_eq!((o.status.code(), stdout(&o)), (Some(111), String::new()));
    let o = exec_direct(&cdb, (1000, 1000), &[("IPCUID", "x")], &rq("0"));
    assert_eq!(o.status.code(), Some(100));
    assert!(stderr(&o).ends_with("ipcserver: fatal: invalid IPCUID: x\n"), "{}", stderr(&o));
}

/// A server started from a terminal (its controlling terminal, as when an
/// admin runs it from a root shell): the programs ipcexec runs, relayed or
/// with -F, start in a session of their own, and cannot open that
/// terminal (where TIOCSTI would type into the admin's shell).
#[test]
fn programs_do_not_reach_the_servers_terminal() {
    if !have("python3") {
        return;
    }
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let dir = TempDir::new();
    let cdb = exec_rules(dir.path(), &format!(",{u}.sh:allow\n"));
    let sock = dir.join("s");
    // python3 starts the server in a new session whose controlling
    // terminal is a pseudo-terminal, and reads it until the server ends.
    let on_a_terminal = "import os, pty, sys\n\
        pid, fd = pty.fork()\n\
        if pid == 0: os.execv(sys.argv[1], sys.argv[1:])\n\
        while True:\n\
        \x20   try: data = os.read(fd, 4096)\n\
        \x20   except OSError: break\n\
        \x20   if not data: break\n";
    let mut c = Command::new("python3");
    c.args(["-c", on_a_terminal]).arg(bin("ipcserver")).arg(&sock).arg(bin("ipcexec")).arg(&cdb);
    let server = Server::start(&mut c, &sock);
    // The server outlives python (a hang-up is no end for it): stopped by
    // pid, with python, however the test ends.
    struct Stop(i32);
    impl Drop for Stop {
        fn drop(&mut self) {
            for pid in descendants(self.0) {
                kill(pid, 9);
            }
        }
    }
    let _stop = Stop(server.pid());
    let terminal = descendants(server.pid())
        .into_iter()
        .find_map(|p| std::fs::read_link(format!("/proc/{p}/fd/2")).ok().filter(|t| t.starts_with("/dev/pts")))
        .expect("the server has a terminal");
    let probe = "if (exec </dev/tty) 2>/dev/null; then echo has a terminal; else echo none; fi; \
                 read -r _ _ _ _ _ sid _ </proc/$$/stat; [ \"$sid\" = $$ ] && echo leads its session";
    for opts in [&[][..], &["-F"]] {
        let o = run(
            Command::new(bin("ipcclient"))
                .arg(&sock)
                .arg(bin("ipccommand"))
                .args(opts)
                .arg(&u)
                .args(["sh", "-c", probe]),
            10,
        );
        let out = stdout(&o);
        assert_eq!(
            out,
            "none\nleads its session\n",
            "{opts:?} (server's terminal {}): {}",
            terminal.display(),
            stderr(&o)
        );
    }
}

#[test]
fn relayed_requests_through_the_server() {
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let s = ExecServer::start(&format!(",{u}.wc:allow\n,{u}.sh:allow\n"));
    // The program reads to the end of its input: ipccommand shuts down its
    // side when stdin ends (the original never does, and this would hang).
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let o = run_input(&mut s.command(&[], &u, &["wc", "-c"]), &data, 20);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "300000");
    // A closed stdin is empty input: the program's output still comes.
    let mut c = Command::new("sh");
    c.args(["-c", "exec \"$0\" \"$@\" <&-"]).arg(bin("ipcclient")).arg(&s.sock).arg(bin("ipccommand")).arg(&u);
    let o = run(c.args(["sh", "-c", "echo still here"]), 10);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "still here\n".into()), "{}", stderr(&o));
    // Binary data both ways.
    let o = run_input(&mut s.command(&[], &u, &["sh", "-c", "cat"]), &data, 20);
    assert!(o.stdout == data, "{} bytes back", o.stdout.len());
    // A denied request: nothing, exit 0 (as the original's ipccommand).
    let o = run(&mut s.command(&[], &u, &["id"]), 10);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), String::new()));
    assert!(wait_until(10, || s.log().contains(&format!(",{u}.id\n"))), "{}", s.log());
    assert!(s.log().contains(&format!("ipcexec: deny {uid}.")), "{}", s.log());
}

#[test]
fn descriptors_passed_with_f_and_the_exit_status_back() {
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let s = ExecServer::start(&format!(",{u}.sh:allow\n,{u}.cat:allow\n"));
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 128 + 15), ("kill -KILL $$", 128 + 9)] {
        let o = run(&mut s.command(&["-F"], &u, &["sh", "-c", script]), 10);
        assert_eq!(o.status.code(), Some(code), "{script}: {}", stderr(&o));
    }
    // The program writes our stdout and stderr itself, and reads our stdin.
    let o = run_input(&mut s.command(&["-F"], &u, &["sh", "-c", "cat; echo err >&2"]), b"from stdin\n", 10);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("from stdin\n", "err\n"));
    // Large binary data, straight through (no relay).
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(7) >> 3) as u8).collect();
    let o = run_input(&mut s.command(&["-F"], &u, &["cat"]), &data, 30);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout == data, "{} bytes back", o.stdout.len());
    // Denied: 100, as ipcexec exits; a failure in ipcexec: 111, its
    // status too (not "no status").
    let o = run(&mut s.command(&["-F"], &u, &["id"]), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), String::new()));
    let o = run(&mut s.command(&["-F"], "3999999999", &["sh"]), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), String::new()));
    assert!(wait_until(10, || s.log().contains("ipcserver: fatal: unknown uid 3999999999")), "{}", s.log());
}

/// With -F, a client that goes away gets its program SIGTERM (and
/// SIGCONT), rather than leaving it running unseen.
#[test]
fn a_vanished_f_client_stops_its_program() {
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let s = ExecServer::start(&format!(",{u}.sh:allow\n"));
    let mark = s.dir.join("term");
    let reached = client_vanishes(&mut s.command(&["-F"], &u, &["sh", "-c", &departure_probe(&mark, false)]), &mark);
    assert_eq!(reached.as_deref(), Some("term"), "the program did not get SIGTERM");
}

/// With -F the program's stdin is the caller's terminal: `tty` names it.
#[test]
fn descriptors_passed_with_f_keep_a_terminal() {
    if !have("script") {
        return;
    }
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let s = ExecServer::start(&format!(",{u}.tty:allow\n,{u}.sh:allow\n"));
    let client =
        format!("{} {} {} -F {u} tty", bin("ipcclient").display(), s.sock.display(), bin("ipccommand").display());
    let lines = on_a_terminal(&client);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("/dev/pts/"), "{lines:?}");
    assert_eq!(lines[0], lines[1], "the program sees the caller's terminal");
}

/// Run as another user (nobody, for root), a program given the caller's
/// terminal with -F gets a pseudo-terminal of its own instead, relayed
/// both ways (the caller's keys, its output, its exit code), and nothing
/// it leaves behind holds the caller's terminal.
#[test]
fn another_users_program_gets_a_terminal_of_its_own() {
    if !have("script") || !need_root() {
        return;
    }
    let s = ExecServer::start("0,65534.sh:allow\n");
    let left = s.dir.join("left");
    std::fs::create_dir(&left).unwrap();
    std::fs::set_permissions(&left, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let program = format!(
        "tty; read -r line; echo \"got $line\"; \
         (trap '' HUP; exec sh -c 'echo $$ >{0}/pid; exec sleep 60') & until [ -s {0}/pid ]; do :; done; exit 3",
        left.display()
    );
    // The leftover ignores the hang-up its terminal gets when the program
    // (its session leader) exits, and says so before the program exits.
    let inner = format!(
        "tty; {} {} {} -F 65534 sh -c {}; echo \"exit $?\"",
        bin("ipcclient").display(),
        s.sock.display(),
        bin("ipccommand").display(),
        sh_quote(&program)
    );
    let o = run_input(Command::new("script").args(["-qec", &inner, "/dev/null"]), b"hello\n", 20);
    let out = stdout(&o).replace('\r', "");
    let lines: Vec<&str> = out.lines().filter(|l| *l != "hello").collect();
    let sleeper: i32 = std::fs::read_to_string(left.join("pid"))
        .map_err(|e| format!("{e}: {out:?} {}", stderr(&o)))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Its standard output (its input is /dev/null, as for any `&`).
    let held = std::fs::read_link(format!("/proc/{sleeper}/fd/1")).map(|p| p.display().to_string());
    kill(sleeper, 9);
    assert_eq!(lines.len(), 4, "{out:?}");
    let (caller, own) = (lines[0], lines[1]);
    assert!(caller.starts_with("/dev/pts/") && own.starts_with("/dev/pts/"), "{out:?}");
    assert_ne!(caller, own, "the program got the caller's terminal");
    assert_eq!(&lines[2..], ["got hello", "exit 3"], "{out:?}");
    // Its own, which is gone with the relay ("/dev/pts/N (deleted)").
    let held = held.unwrap();
    assert!(held.starts_with(own) && held != caller, "what the program left behind holds {held}");
}

/// A caller in the background (`ipcdo -F ... &` from a shell) does not take
/// the terminal from the foreground: while its program runs (relayed, as
/// another user), the terminal stays in its modes and what is typed goes
/// to the foreground job; the program's output is still relayed.
#[test]
fn a_relayed_caller_in_the_background_leaves_the_terminal_to_the_foreground() {
    if !have("python3") || !need_root() {
        return;
    }
    let s = ExecServer::start("0,65534.sh:allow\n");
    let result = s.dir.join("result");
    // python3 opens a pseudo-terminal; a child leads a session on it,
    // starts the client as a background job, then reads a line as the
    // foreground does, and writes down what it read, whether the terminal
    // was in canonical mode then, and the job's exit code. python3 itself
    // types the line once the program's output has come through.
    let harness = "import os, pty, sys, termios, fcntl, select, subprocess\n\
        master, slave = pty.openpty()\n\
        pid = os.fork()\n\
        if pid == 0:\n\
        \x20   os.close(master); os.setsid(); fcntl.ioctl(slave, termios.TIOCSCTTY, 0)\n\
        \x20   for n in (0, 1, 2): os.dup2(slave, n)\n\
        \x20   job = subprocess.Popen(sys.argv[2:], process_group=0)\n\
        \x20   got = os.read(0, 100) if select.select([0], [], [], 10)[0] else b'nothing'\n\
        \x20   canonical = (termios.tcgetattr(0)[3] & termios.ICANON) != 0\n\
        \x20   code = job.wait()\n\
        \x20   open(sys.argv[1], 'w').write(f'{got!r} {canonical} {code}')\n\
        \x20   os._exit(0)\n\
        name = os.ttyname(slave)\n\
        os.close(slave)\n\
        seen = b''\n\
        import time\n\
        deadline = time.monotonic() + 30\n\
        while time.monotonic() < deadline:\n\
        \x20   if not select.select([master], [], [], 1)[0]: continue\n\
        \x20   try: data = os.read(master, 4096)\n\
        \x20   except OSError: break\n\
        \x20   if not data: break\n\
        \x20   seen += data\n\
        \x20   if b'started' in seen and b'typed' not in seen: os.write(master, b'typed\\n'); seen += b'typed'\n\
        else:\n\
        \x20   sys.stderr.write(f'the terminal stayed open 30 s; seen: {seen!r}\\n')\n\
        \x20   for p in filter(str.isdigit, os.listdir('/proc')):\n\
        \x20       try: fds = [os.readlink(f'/proc/{p}/fd/{f}') for f in os.listdir(f'/proc/{p}/fd')]\n\
        \x20       except OSError: continue\n\
        \x20       if name in fds: sys.stderr.write(f'held by {p}: ' + open(f'/proc/{p}/cmdline', 'rb').read().replace(b'\\0', b' ').decode(errors='replace') + '\\n')\n\
        \x20   os.kill(pid, 9)\n\
        os.waitpid(pid, 0)\n";
    let o = run(
        Command::new("python3")
            .args(["-c", harness])
            .arg(&result)
            .arg(bin("ipcclient"))
            .arg(&s.sock)
            .arg(bin("ipccommand"))
            .args(["-F", "65534", "sh", "-c", "echo started; sleep 2"]),
        60,
    );
    let got = std::fs::read_to_string(&result).map_err(|e| format!("{e}: {} {}", stdout(&o), stderr(&o))).unwrap();
    assert_eq!(got, "b'typed\\n' True 0", "{} {}", s.log(), stderr(&o));
}

/// Descriptors come with `1:F,` three exactly, in one message or several
/// within the request: more (also more than a message can hold, which the
/// kernel truncates) is a bad request, and nothing runs.
#[test]
fn three_descriptors_exactly() {
    use rustix::fd::AsFd;
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let s = ExecServer::start(&format!(",{u}.sh:allow\n"));
    let marker = s.dir.join("ran");
    // Close-on-exec: the other tests' children must not inherit it.
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC;
    let null = rustix::fs::open("/dev/null", flags, rustix::fs::Mode::empty()).unwrap();
    let uid_part = format!("{}:{u},", u.len());
    let touch = format!("touch {}", marker.display());
    let rest = request_bytes("", 3, format!("sh\0-c\0{touch}\0").as_bytes());
    // The request in three parts (the marker, the uid, the rest), each
    // sent with `counts` descriptors.
    let send = |counts: [usize; 3]| {
        let fds: Vec<_> = counts.iter().map(|&n| vec![null.as_fd(); n]).collect();
        let parts: [(&[u8], &[_]); 3] = [(b"1:F,", &fds[0]), (uid_part.as_bytes(), &fds[1]), (&rest[3..], &fds[2])];
        send_with_fds(&s.sock, &parts)
    };
    let refused =
        "ipcserver: fatal: bad ipc request: 1:F, without exactly three descriptors, or descriptors without 1:F,";
    for counts in [[4, 0, 0], [3, 1, 0], [2, 0, 2], [9, 0, 0], [2, 0, 0]] {
        assert_eq!(send(counts), b"", "{counts:?}");
        assert!(wait_until(10, || s.log().matches(refused).count() == 1), "{counts:?}: {}", s.log());
        assert!(!marker.exists(), "{counts:?} ran the program");
        std::fs::write(&s.log, "").unwrap();
    }
    for counts in [[3, 0, 0], [1, 1, 1]] {
        assert_eq!(send(counts), b"1:0,", "{counts:?}");
        assert!(marker.exists(), "{counts:?} did not run the program");
        std::fs::remove_file(&marker).unwrap();
    }
}

/// A blank (or a control character) in a rule's program name makes a key
/// no request names: `65534,0.id :deny` would deny nothing and let `id`
/// run under a wider allow. It is refused, with where and why.
#[test]
fn a_program_name_with_a_blank_is_refused() {
    let d = TempDir::new();
    let cdb = d.join("rules.cdb");
    let o = run_input(cmd("ipcexecrules").arg(&cdb).arg(d.join("rules.tmp")), b"65534,0.id :deny\n:allow\n", 10);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        stderr(&o),
        "ipcexecrules: fatal: unable to parse this line: 65534,0.id :deny\n\
         ipcexecrules: line 1: expected a program name without blanks or control characters\n"
    );
    assert!(!cdb.exists() && !d.join("rules.tmp").exists());
}

#[test]
fn ipccommand_usage_and_errors() {
    let usage = "ipccommand: usage: ipccommand [ -F ] uid program\n";
    for (args, err) in [
        (&[][..], usage.to_string()),
        (&["0"][..], usage.to_string()),
        (&["-x", "0", "true"][..], format!("ipccommand: illegal option -- x\n{usage}")),
        (&["root", "true"][..], "ipccommand: fatal: invalid uid: root\n".to_string()),
        // Longer than any uid a server reads (10 digits), leading zeros
        // and all: refused here, not sent.
        (&["00000000000", "true"][..], "ipccommand: fatal: invalid uid: 00000000000\n".to_string()),
    ] {
        let o = run(cmd("ipccommand").args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), err, "{args:?}");
    }
    // Not under ipcclient: descriptor 7 is not there.
    let o = run(cmd("ipccommand").args(["0", "true"]), 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipccommand: fatal: unable to write the request: bad file descriptor\n");
}

/// A server that closes the connection before ipccommand has written its
/// request: an error with a message, never a death by SIGPIPE. The client
/// starts writing only once the server has closed (a file says so).
#[test]
fn a_server_gone_before_the_request_is_an_error_not_sigpipe() {
    for (flag, err) in [
        (None, "ipccommand: fatal: unable to write the request: broken pipe\n"),
        (
            Some("-F"),
            "ipccommand: fatal: the server closed the connection without an exit status (a server without -F support does that)\n",
        ),
    ] {
        let d = TempDir::new();
        let (sock, closed) = (d.join("s"), d.join("closed"));
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let flag_file = closed.clone();
        let server = std::thread::spawn(move || {
            drop(listener.accept().unwrap());
            std::fs::write(flag_file, "").unwrap();
        });
        let script = "n=0; while [ ! -e \"$1\" ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; shift; exec \"$@\"";
        let mut c = cmd("ipcclient");
        c.arg(&sock).args(["sh", "-c", script, "sh"]).arg(&closed).arg(bin("ipccommand"));
        c.args(flag).args(["0", "sh", "-c", "echo never"]);
        let o = run(&mut c, 30);
        server.join().unwrap();
        assert_eq!(o.status.code(), Some(111), "{flag:?}: {:?} {}", o.status, stderr(&o));
        assert_eq!(stderr(&o), err, "{flag:?}");
        assert_eq!(stdout(&o), "");
    }
}

/// The original on either side: our ipccommand against its ipcexec, its
/// ipccommand against ours, and -F against a server that does not know it.
#[test]
fn wire_compatible_with_the_original_both_ways() {
    let Some(original) = std::env::var_os("UCSPI_IPC_ORIGINAL").map(PathBuf::from) else {
        skip("UCSPI_IPC_ORIGINAL is not set");
        return;
    };
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let rules_text = format!(",{u}.sh:allow\n,{u}.wc:allow\n");
    // Our client, the original's server.
    let theirs = ExecServer::start_with(&rules_text, &original.join("ipcexec"));
    let o = run(&mut theirs.command(&[], &u, &["sh", "-c", "echo from the original"]), 10);
    assert_eq!(stdout(&o), "from the original\n", "{}", stderr(&o));
    // A program that reads to the end of its input ends: our half-close
    // reaches it. (What it reads may be short: the original's ipcexec
    // reads 8192 bytes at once and loses input that comes with the request.)
    let o = run_input(&mut theirs.command(&[], &u, &["sh", "-c", "cat >/dev/null; echo done"]), b"12345", 10);
    assert_eq!(stdout(&o), "done\n", "{}", stderr(&o));
    // -F against it: a clear error, at once.
    let start = std::time::Instant::now();
    let o = run(&mut theirs.command(&["-F"], &u, &["sh", "-c", "echo x"]), 10);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        "ipccommand: fatal: the server closed the connection without an exit status (a server without -F support does that)\n"
    );
    // The original's client, our server.
    let ours = ExecServer::start(&rules_text);
    let mut c = Command::new(original.join("ipcclient"));
    // (One line of input: the original's ipccommand never shuts down its
    // side, so a program that reads to the end would wait forever.)
    c.arg(&ours.sock).arg(original.join("ipccommand")).arg(&u).args(["sh", "-c", "echo from ours; head -n 1"]);
    let o = run_input(&mut c, b"input\n", 10);
    assert_eq!(stdout(&o), "from ours\ninput\n", "{}", stderr(&o));
}

/// ipcexecrules compiles what the original does, byte for byte, and
/// ipcexecrulescheck says what ipcexec will do.
#[test]
fn exec_rules_compiled_and_checked() {
    let d = TempDir::new();
    let text = "0,0.echo:allow,A=\"x\"\n0,0.ls:allow=\"/bin/echo\"\n0,0.false:deny\n\
                0,0.idx:allow,IPCUID=\"1\",IPCGID=\"2\"\n:allow,X=\"y\"\n";
    let cdb = exec_rules(d.path(), text);
    if let Some(original) = std::env::var_os("UCSPI_IPC_ORIGINAL").map(PathBuf::from) {
        let theirs = d.join("theirs.cdb");
        let o = run_input(
            Command::new(original.join("ipcexecrules")).arg(&theirs).arg(d.join("t.tmp")),
            text.as_bytes(),
            10,
        );
        assert!(o.status.success());
        assert_eq!(std::fs::read(&cdb).unwrap(), std::fs::read(&theirs).unwrap(), "byte for byte");
    }
    let check = |vars: &[(&str, &str)]| {
        let mut c = cmd("ipcexecrulescheck");
        c.arg(&cdb).env_clear().env("IPCREMOTEEUID", "0").env("IPCREMOTEEGID", "0").envs(vars.iter().copied());
        run(&mut c, 10)
    };
    let says = |vars: &[(&str, &str)]| stdout(&check(vars));
    assert_eq!(says(&[("IPCCOMMAND", "echo")]), "rule 0,0.echo:\nset environment variable A=x\nallow connection\n");
    assert_eq!(says(&[("IPCCOMMAND", "ls")]), "rule 0,0.ls:\nexecute /bin/echo\nallow connection\n");
    assert_eq!(says(&[("IPCCOMMAND", "false")]), "rule 0,0.false:\ndeny connection\n");
    assert_eq!(says(&[("IPCCOMMAND", "zzz")]), "rule :\nset environment variable X=y\nallow connection\n");
    assert_eq!(
        says(&[("IPCCOMMAND", "echo"), ("IPCUID", "1")]),
        "rule :\nset environment variable X=y\nallow connection\n"
    );
    let cdb2 = exec_rules(d.path(), "0,0.echo:allow\n");
    let o = run(cmd("ipcexecrulescheck").arg(&cdb2).env_clear().env("IPCCOMMAND", "zzz"), 10);
    assert_eq!(stdout(&o), "default:\ndeny connection\n", "ipcexec fails closed");
    let o = check(&[]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), "ipcexecrulescheck: fatal: IPCCOMMAND not set\n".into()));
    let o = check(&[("IPCCOMMAND", "echo"), ("IPCUID", "x")]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), "ipcexecrulescheck: fatal: invalid IPCUID: x\n".into()));
    let o = run_input(cmd("ipcexecrules").arg(d.join("x.cdb")).arg(d.join("x.tmp")), b"1,0.ls:deny=\"/x\"\n", 10);
    assert_eq!(
        stderr(&o),
        "ipcexecrules: fatal: unable to parse this line: 1,0.ls:deny=\"/x\"\n\
         ipcexecrules: line 1: expected ',NAME=\"value\"' or the end of the line\n"
    );
}

#[test]
fn ipcdo_and_ipcrun() {
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let s = ExecServer::start(&format!(",{u}.echo:allow\n,0.echo:allow\n"));
    let name = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&u.as_str())).then(|| f[0].to_string())
        })
        .unwrap();
    for who in [u.as_str(), name.as_str()] {
        let o = run(cmd("ipcdo").env("IPCEXEC_SOCKET", &s.sock).args([who, "echo", "as", who]), 10);
        assert_eq!(stdout(&o), format!("as {who}\n"), "{}", stderr(&o));
        let o = run(cmd("ipcdo").env("IPCEXEC_SOCKET", &s.sock).args(["-F", who, "echo", "with -F"]), 10);
        assert_eq!((o.status.code(), stdout(&o)), (Some(0), "with -F\n".into()), "{}", stderr(&o));
    }
    let o = run(cmd("ipcdo").args(["nosuchaccount", "echo"]), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), "ipcdo: fatal: unknown account nosuchaccount\n".into()));
    let o = run(cmd("ipcdo").arg("root"), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), "ipcdo: usage: ipcdo [ -F ] user prog\n".into()));
    let o = run(&mut cmd("ipcrun"), 10);
    assert_eq!((o.status.code(), stderr(&o)), (Some(100), "ipcrun: usage: ipcrun [ -F ] prog\n".into()));
    // A socket path that starts with `-` is still a path.
    let o = run(cmd("ipcdo").env("IPCEXEC_SOCKET", "-p").args([u.as_str(), "true"]), 10);
    assert_eq!(stderr(&o), "ipcclient: unable to connect to -p: no such file or directory\n");
    // The default socket is the original's.
    let o = run(cmd("ipcrun").env_remove("IPCEXEC_SOCKET").arg("true"), 10);
    if !Path::new("/service/ipcexec/s").exists() {
        assert_eq!(stderr(&o), "ipcclient: unable to connect to /service/ipcexec/s: no such file or directory\n");
    }
    if is_root() {
        let o = run(cmd("ipcrun").env("IPCEXEC_SOCKET", &s.sock).args(["echo", "as root"]), 10);
        assert_eq!(stdout(&o), "as root\n", "{}", stderr(&o));
    }
}

/// The service as the issue describes it: run as root, used by an
/// unprivileged user, whose identity the program sees.
#[test]
fn an_unprivileged_client_runs_a_program_as_root() {
    if !need_root() || !have("setpriv") {
        return;
    }
    let s = ExecServer::start("65534,0.sh:allow\n:deny\n");
    let script = "id -u; echo $IPCREMOTEEUID $IPCREMOTEEGID";
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin("ipcrun")).args(["sh", "-c", script]);
    let o = run(c.env("IPCEXEC_SOCKET", &s.sock), 10);
    assert_eq!(stdout(&o), "0\n65534 65534\n", "{}", stderr(&o));
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin("ipcrun")).args(["id"]);
    let o = run(c.env("IPCEXEC_SOCKET", &s.sock), 10);
    assert_eq!(stdout(&o), "", "denied");
    let mut back = String::new();
    let _ = std::fs::File::open(&s.log).unwrap().read_to_string(&mut back);
    assert!(wait_until(10, || s.log().contains("ipcexec: deny 65534.65534,0.id")), "{}", s.log());
    let _ = &s.dir;
}

/// Through the server, a client that writes its request and the program's
/// input in one write: the program gets all of it (the original's ipcexec
/// reads 8192 bytes at once and loses it).
#[test]
fn one_write_for_request_and_input_over_the_socket() {
    let (uid, _) = own_ids();
    let u = uid.to_string();
    let s = ExecServer::start(&format!(",{u}.cat:allow\n"));
    for _ in 0..20 {
        let mut c = std::os::unix::net::UnixStream::connect(&s.sock).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut bytes = request(&u, &["cat"]);
        bytes.extend_from_slice(b"all of it\n");
        c.write_all(&bytes).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        assert_eq!(back, "all of it\n");
    }
}
