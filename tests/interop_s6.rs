//! Interoperability: our programs mixed with s6's server chain and client,
//! ucspi-unix's client and server, execline scripts and tinycdb files.
//! Every test names the external program it needs and is skipped when it
//! is not installed.
use crate::common;
use common::*;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Which suite provides a link of the server chain.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Suite {
    Ours,
    S6,
}
use Suite::{Ours, S6};

/// The links of a server chain: socket binder, privilege drop, accept
/// loop and (optionally) access control.
#[derive(Debug)]
struct Links {
    binder: Suite,
    apply: Suite,
    daemon: Suite,
    access: Option<Suite>,
}

/// The uid and gid the chain drops to when the tests run as root.
const NOBODY: u32 = 65534;

/// Prints every variable the tests check, plus the ids the handler runs
/// with and its pid (the pid of the access link, which executed into it).
const HANDLER: &str = "env; echo ID_U=$(id -u); echo ID_G=$(id -g); echo ID_GROUPS=$(id -G); echo PID=$$";

/// A running chain, its directory and its log file.
struct Chain {
    _server: Server,
    dir: TempDir,
    sock: PathBuf,
    log: PathBuf,
}

impl Chain {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The program for a link: ours by path, s6's by name.
fn link(suite: Suite, ours: &str, s6: &str) -> String {
    match suite {
        Ours => s(&bin(ours)).to_string(),
        S6 => s6.to_string(),
    }
}

/// Whether the s6 programs `l` uses are installed; says SKIPPED (naming
/// `l`) if not.
fn have_links(l: &Links) -> bool {
    let mut need = Vec::new();
    if l.binder == S6 {
        need.push("s6-ipcserver-socketbinder");
    }
    if l.apply == S6 {
        need.push("s6-applyuidgid");
    }
    if l.daemon == S6 {
        need.push("s6-ipcserverd");
    }
    if l.access == Some(S6) {
        need.push("s6-ipcserver-access");
    }
    need.into_iter().all(|p| have_for(&format!("{l:?}"), p))
}

/// Writes the rules both access programs use: the client's uid is allowed
/// and gets RULE=ours (our cdb) or RULE=s6 (s6's rules directory); anyone
/// else is denied.
fn write_rules(d: &TempDir) {
    let (uid, _) = own_ids();
    let o = run_input(
        cmd("ipcrules").arg(d.join("rules.cdb")).arg(d.join("rules.tmp")),
        format!("{uid}:allow,RULE=\"ours\"\n:deny\n").as_bytes(),
        10,
    );
    assert!(o.status.success(), "ipcrules: {}", stderr(&o));
    let rule = d.join(&format!("rulesdir/uid/{uid}"));
    std::fs::create_dir_all(rule.join("env")).unwrap();
    std::fs::write(rule.join("allow"), "").unwrap();
    std::fs::write(rule.join("env/RULE"), "s6\n").unwrap();
}

/// Starts the chain `l` serving HANDLER on DIR/s, stderr to DIR/log. As
/// root the privilege link drops to nobody; otherwise it is given a no-op
/// option (-z) and the ids stay as they are.
fn start_chain(l: &Links) -> Chain {
    let d = TempDir::new();
    write_rules(&d);
    let sock = d.join("s");
    let log = d.join("log");
    let mut argv = vec![link(l.binder, "ipcserver-socketbinder", "s6-ipcserver-socketbinder"), s(&sock).to_string()];
    argv.push(link(l.apply, "ipcapplyuidgid", "s6-applyuidgid"));
    if is_root() {
        argv.extend(["-u".into(), NOBODY.to_string(), "-g".into(), NOBODY.to_string()]);
    } else {
        argv.push("-z".into());
    }
    argv.push(link(l.daemon, "ipcserverd", "s6-ipcserverd"));
    match l.access {
        Some(Ours) => argv.extend([s(&bin("ipcserver-access")).into(), "-x".into(), s(&d.join("rules.cdb")).into()]),
        Some(S6) => argv.extend(["s6-ipcserver-access".into(), "-i".into(), s(&d.join("rulesdir")).into()]),
        None => {}
    }
    argv.extend(["sh".into(), "-c".into(), HANDLER.into()]);
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]).stderr(std::fs::File::create(&log).unwrap());
    let server = Server::start(&mut c, &sock);
    Chain { _server: server, dir: d, sock, log }
}

/// The installed s6's version (major, minor), from the name of its
/// library (`libs6.so.2.11.3.2`) or else dpkg; None if neither says.
fn s6_version() -> Option<(u32, u32)> {
    let parse = |v: &str| {
        let mut n = v.split(['.', '-']).map(|x| x.parse::<u32>().ok());
        Some((n.next()??, n.next()??))
    };
    for dir in
        ["/usr/lib", "/usr/lib64", "/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
    {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(v) = name.strip_prefix("libs6.so.").filter(|v| v.matches('.').count() >= 2) {
                return parse(v);
            }
        }
    }
    let o = Command::new("dpkg-query").args(["-W", "-f", "${Version}", "s6"]).output().ok()?;
    parse(&String::from_utf8_lossy(&o.stdout))
}

/// Connects with `ipcclient -p DIR/c` (so the server sees a remote path)
/// and returns what the handler printed.
fn serve(c: &Chain) -> Vec<u8> {
    let local = c.dir.join("c");
    let _ = std::fs::remove_file(&local);
    let o = run(cmd("ipcclient").arg("-p").arg(&local).arg(&c.sock).args(["sh", "-c", "cat <&6"]), 10);
    assert_eq!(o.status.code(), Some(0), "ipcclient: {}", stderr(&o));
    o.stdout
}

/// Runs the chain `l`, connects once and checks the handler's
/// environment and ids exactly. Returns the chain and the handler output.
fn check_chain(l: Links) -> Option<(Chain, Vec<u8>)> {
    if !have_links(&l) {
        return None;
    }
    let c = start_chain(&l);
    let out = serve(&c);
    let v = |name: &str| env_value(&out, name);
    let (uid, gid) = own_ids();
    assert_eq!(v("PROTO").as_deref(), Some("IPC"), "{l:?}");
    assert_eq!(v("IPCREMOTEPATH").as_deref(), Some(s(&c.dir.join("c"))), "{l:?}");
    assert_eq!(v("IPCREMOTEEUID"), Some(uid.to_string()), "{l:?}");
    assert_eq!(v("IPCREMOTEEGID"), Some(gid.to_string()), "{l:?}");
    // ipcserverd counts the connections already served (0 for the first),
    // as s6-ipcserverd does since s6 2.12; before, it counted this one too.
    let connnum = match (l.daemon, s6_version()) {
        (Ours, _) => Some("0"),
        (S6, Some(v)) if v < (2, 12) => Some("1"),
        (S6, Some(_)) => Some("0"),
        (S6, None) => None,
    };
    match connnum {
        Some(n) => assert_eq!(v("IPCCONNNUM").as_deref(), Some(n), "{l:?}"),
        None => assert!(matches!(v("IPCCONNNUM").as_deref(), Some("0" | "1")), "{l:?}"),
    }
    // IPCLOCALPATH: set by our ipcserverd and by either access link;
    // s6-ipcserverd alone leaves it unset.
    let local = if l.daemon == Ours || l.access.is_some() { Some(s(&c.sock).to_string()) } else { None };
    assert_eq!(v("IPCLOCALPATH"), local, "{l:?}");
    let rule = match l.access {
        Some(Ours) => Some("ours".to_string()),
        Some(S6) => Some("s6".to_string()),
        None => None,
    };
    assert_eq!(v("RULE"), rule, "{l:?}");
    let (want_uid, want_gid) = if is_root() { (NOBODY, NOBODY) } else { (uid, gid) };
    assert_eq!(v("ID_U"), Some(want_uid.to_string()), "{l:?}");
    assert_eq!(v("ID_G"), Some(want_gid.to_string()), "{l:?}");
    if is_root() {
        // A gid without a list: the supplementary groups become that gid.
        assert_eq!(v("ID_GROUPS"), Some(NOBODY.to_string()), "{l:?}");
    }
    // Nothing of the privilege link's input leaks through.
    assert_eq!(v("UID"), None, "{l:?}");
    assert_eq!(v("GID"), None, "{l:?}");
    // A second connection is served the same way (the loop goes on).
    let again = serve(&c);
    assert_eq!(env_value(&again, "RULE"), rule, "{l:?}");
    Some((c, out))
}

// Our chain with one link replaced by its s6 twin.

#[test]
fn s6_socketbinder_in_our_chain() {
    check_chain(Links { binder: S6, apply: Ours, daemon: Ours, access: Some(Ours) });
}

#[test]
fn s6_applyuidgid_in_our_chain() {
    check_chain(Links { binder: Ours, apply: S6, daemon: Ours, access: Some(Ours) });
}

#[test]
fn s6_ipcserverd_in_our_chain_local_path_from_our_access() {
    // s6-ipcserverd does not set IPCLOCALPATH: our ipcserver-access finds
    // it with getsockname, so the handler still sees it...
    check_chain(Links { binder: Ours, apply: Ours, daemon: S6, access: Some(Ours) });
    // ...and without the access link it is indeed missing.
    check_chain(Links { binder: Ours, apply: Ours, daemon: S6, access: None });
}

#[test]
fn s6_access_in_our_chain() {
    let Some((c, out)) = check_chain(Links { binder: Ours, apply: Ours, daemon: Ours, access: Some(S6) }) else {
        return;
    };
    let (uid, gid) = own_ids();
    let pid = env_value(&out, "PID").unwrap();
    let want = format!("s6-ipcserver-access: info: allow pid {pid} uid {uid} gid {gid}\n");
    assert!(wait_until(10, || c.log_text().contains(&want)), "{}", c.log_text());
}

#[test]
fn s6_access_after_our_ipcserverd_denies_and_allows_without_rules() {
    if !have("s6-ipcserver-access") {
        return;
    }
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    // A rules directory that only denies: the handler must not run.
    std::fs::create_dir_all(d.join(&format!("deny/uid/{uid}"))).unwrap();
    std::fs::write(d.join(&format!("deny/uid/{uid}/deny")), "").unwrap();
    let sock = d.join("s");
    let log = d.join("log");
    let marker = d.join("ran");
    let handler = format!("touch {}; echo served", s(&marker));
    let mut c = cmd("ipcserver-socketbinder");
    c.arg(&sock).arg(bin("ipcserverd")).args(["-v", "2"]);
    c.args(["s6-ipcserver-access", "-v2", "-i", s(&d.join("deny")), "sh", "-c", &handler]);
    let srv = Server::start(c.stderr(std::fs::File::create(&log).unwrap()), &sock);
    assert_eq!(fetch(&sock).unwrap(), b"");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    // s6-ipcserver-access exits 1 on a denial: wait status 256.
    assert!(wait_until(10, || text().contains(" status 256\n")), "{}", text());
    let l = text();
    let end = l.lines().find_map(|x| x.strip_prefix("ipcserverd: end ")).unwrap();
    let pid = end.split(' ').next().unwrap();
    let want = format!("s6-ipcserver-access: info: deny pid {pid} uid {uid} gid {gid}: Permission denied\n");
    assert!(l.contains(&want), "{l}");
    assert!(!marker.exists(), "a denied connection ran the handler");
    drop(srv);

    // No rules at all and -v0: every connection is allowed, silently.
    let sock = d.join("t");
    let log = d.join("log0");
    let mut c = cmd("ipcserver-socketbinder");
    c.arg(&sock).arg(bin("ipcserverd")).args(["s6-ipcserver-access", "-v0", "sh", "-c", "echo $IPCLOCALPATH"]);
    let _srv = Server::start(c.stderr(std::fs::File::create(&log).unwrap()), &sock);
    assert_eq!(fetch(&sock).unwrap(), format!("{}\n", s(&sock)).into_bytes());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
}

// The s6 chain with one link replaced by ours.

#[test]
fn the_all_s6_chain_as_a_control() {
    check_chain(Links { binder: S6, apply: S6, daemon: S6, access: Some(S6) });
}

#[test]
fn our_socketbinder_in_the_s6_chain() {
    check_chain(Links { binder: Ours, apply: S6, daemon: S6, access: Some(S6) });
}

#[test]
fn our_applyuidgid_in_the_s6_chain() {
    check_chain(Links { binder: S6, apply: Ours, daemon: S6, access: Some(S6) });
}

#[test]
fn our_ipcserverd_in_the_s6_chain() {
    check_chain(Links { binder: S6, apply: S6, daemon: Ours, access: Some(S6) });
}

#[test]
fn our_access_in_the_s6_chain() {
    check_chain(Links { binder: S6, apply: S6, daemon: S6, access: Some(Ours) });
}

// Clients of one suite against servers of another.

/// Server side of the line exchange: reads the client's line, answers,
/// then reports what it knows about the client.
const EXCHANGE_SERVER: &str = "read line; echo \"server got $line\"; \
    echo \"server IPCREMOTEPATH=$IPCREMOTEPATH IPCREMOTEEUID=$IPCREMOTEEUID\"";

/// Client side: reports its environment, sends a line, copies the answer.
const EXCHANGE_CLIENT: &str = "echo \"client PROTO=$PROTO IPCLOCALPATH=$IPCLOCALPATH\"; echo ping >&7; cat <&6";

/// What the exchange prints on the client's stdout.
fn exchange_output(client_local: &str, server_sees: &str) -> String {
    let (uid, _) = own_ids();
    format!(
        "client PROTO=IPC IPCLOCALPATH={client_local}\nserver got ping\n\
         server IPCREMOTEPATH={server_sees} IPCREMOTEEUID={uid}\n"
    )
}

/// Runs `client [-p DIR/c] SOCK sh -c EXCHANGE_CLIENT` against a server
/// on `sock`, with and without a local path, and checks both sides.
fn exchange(client: &str, dir: &TempDir, sock: &Path) {
    let o = run(Command::new(client).arg(sock).args(["sh", "-c", EXCHANGE_CLIENT]), 10);
    assert_eq!(o.status.code(), Some(0), "{client}: {}", stderr(&o));
    assert_eq!(stdout(&o), exchange_output("", ""), "{client}");
    assert_eq!(stderr(&o), "");
    let local = dir.join("c");
    let o = run(Command::new(client).arg("-p").arg(&local).arg(sock).args(["sh", "-c", EXCHANGE_CLIENT]), 10);
    assert_eq!(o.status.code(), Some(0), "{client}: {}", stderr(&o));
    assert_eq!(stdout(&o), exchange_output(s(&local), s(&local)), "{client} -p");
}

#[test]
fn s6_ipcclient_against_our_ipcserver() {
    if !have("s6-ipcclient") {
        return;
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let mut c = cmd("ipcserver");
    c.arg(&sock).args(["sh", "-c", EXCHANGE_SERVER]).stderr(Stdio::null());
    let _srv = Server::start(&mut c, &sock);
    exchange("s6-ipcclient", &d, &sock);
}

#[test]
fn our_ipcclient_against_s6_ipcserver() {
    if !have("s6-ipcserver") {
        return;
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let mut c = Command::new("s6-ipcserver");
    c.arg(&sock).args(["sh", "-c", EXCHANGE_SERVER]).stderr(Stdio::null());
    let _srv = Server::start(&mut c, &sock);
    exchange(s(&bin("ipcclient")), &d, &sock);
}

#[test]
fn ucspi_unix_client_against_our_ipcserver() {
    if !have("unixclient") {
        return;
    }
    let d = TempDir::new();
    let sock = d.join("s");
    let mut c = cmd("ipcserver");
    c.arg(&sock).args(["sh", "-c", EXCHANGE_SERVER]).stderr(Stdio::null());
    let _srv = Server::start(&mut c, &sock);
    // unixclient also hands the program descriptors 6 and 7, with its own
    // UNIX-prefixed variables.
    let client = "echo \"client PROTO=$PROTO UNIXREMOTEEUID=$UNIXREMOTEEUID\"; echo ping >&7; cat <&6";
    let o = run(Command::new("unixclient").arg(&sock).args(["sh", "-c", client]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (uid, _) = own_ids();
    assert_eq!(
        stdout(&o),
        format!("client PROTO=UNIX UNIXREMOTEEUID={uid}\nserver got ping\nserver IPCREMOTEPATH= IPCREMOTEEUID={uid}\n")
    );
}

/// Handler that counts the lines it reads until end of file: it answers
/// only if the client shuts down its write side.
const COUNT_LINES: &str = "n=0; while read l; do n=$((n+1)); echo \"got $l\"; done; echo \"$n lines\"";

/// ipccat and ipcconnect against a server started by `server` (given the
/// socket path and handler).
fn our_clients_against(server: impl Fn(&Path, &str) -> Command) {
    let d = TempDir::new();
    let sock = d.join("s");
    let _srv = Server::start(server(&sock, "echo hello; printf 'no newline'").stderr(Stdio::null()), &sock);
    let o = run(cmd("ipccat").arg(&sock), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\nno newline");
    assert_eq!(stderr(&o), "");

    let sock = d.join("t");
    let _srv = Server::start(server(&sock, COUNT_LINES).stderr(Stdio::null()), &sock);
    let o = run_input(cmd("ipcconnect").arg(&sock), b"one\ntwo\nthree\n", 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "got one\ngot two\ngot three\n3 lines\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn ipccat_and_ipcconnect_against_s6_ipcserver() {
    if !have("s6-ipcserver") {
        return;
    }
    our_clients_against(|sock, handler| {
        let mut c = Command::new("s6-ipcserver");
        c.arg(sock).args(["sh", "-c", handler]);
        c
    });
}

#[test]
fn ipccat_and_ipcconnect_against_unixserver() {
    if !have("unixserver") {
        return;
    }
    our_clients_against(|sock, handler| {
        let mut c = Command::new("unixserver");
        // "--": unixserver's getopt permutes and would take sh's -c.
        c.arg("--").arg(sock).args(["sh", "-c", handler]);
        c
    });
}

// execline and tinycdb.

/// PATH with our programs first, so scripts can name them plainly.
fn path_with_ours() -> String {
    format!("{}:{}", s(bin("ipccat").parent().unwrap()), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn execline_script_runs_our_chain() {
    if !have("execlineb") {
        return;
    }
    let d = TempDir::new();
    let (uid, _) = own_ids();
    std::fs::write(d.join("rules"), format!("{uid}:allow,RULE=\"from rules\"\n:deny\n")).unwrap();
    let sock = d.join("s");
    let dir = s(d.path());
    // Compiles the rules (stdin redirected by execline), then becomes the
    // server chain; the handler's arguments include an empty one, one with
    // a space and one that looks like an option.
    let script = format!(
        "#!/usr/bin/execlineb -P\n\
         if {{ redirfd -r 0 {dir}/rules ipcrules {dir}/rules.cdb {dir}/rules.tmp }}\n\
         ipcserver-socketbinder {dir}/s\n\
         ipcserverd -1 --\n\
         ipcserver-access -x {dir}/rules.cdb --\n\
         importas -i rule RULE\n\
         importas -i local IPCLOCALPATH\n\
         printf \"[%s]\" \"two words\" \"\" -x $rule $local\n"
    );
    let file = d.join("run");
    std::fs::write(&file, script).unwrap();
    let mut child = Command::new("execlineb")
        .args(["-P", s(&file)])
        .env("PATH", path_with_ours())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(d.join("log")).unwrap())
        .spawn()
        .unwrap();
    let mut ready = child.stdout.take().unwrap();
    let _srv = Server { child };
    // The readiness line from ipcserverd -1 is all that stdout carries.
    let mut line = String::new();
    ready.read_to_string(&mut line).unwrap();
    assert_eq!(line, format!("{}\n", s(&sock)));
    assert!(socket_ready(&sock));
    let o = run(cmd("ipccat").arg(&sock), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("[two words][][-x][from rules][{}]", s(&sock)));
    assert_eq!(std::fs::read_to_string(d.join("log")).unwrap(), "");
}

#[test]
fn execline_sees_our_exit_codes() {
    if !have("execlineb") {
        return;
    }
    let d = TempDir::new();
    let missing = d.join("missing");
    // A program that fails exits with its own code; one that executes
    // into another passes that one's code on (no fork in between).
    let script = format!(
        "foreground {{ ipccat {m} }} importas -u r1 ? \
         foreground {{ ipcrules }} importas -u r2 ? \
         foreground {{ export PROTO IPC ipcapplyuidgid -z ipcserver-access -l x sh -c \"exit 7\" }} importas -u r3 ? \
         foreground {{ ipcclient -q {m} true }} importas -u r4 ? \
         echo $r1 $r2 $r3 $r4",
        m = s(&missing)
    );
    let o = run(Command::new("execlineb").arg("-Pc").arg(&script).env("PATH", path_with_ours()), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "111 100 7 111\n");
    assert_eq!(
        stderr(&o),
        format!(
            "ipccat: unable to connect to {}: no such file or directory\n\
             ipcrules: usage: ipcrules rules.cdb rules.tmp\n",
            s(&missing)
        )
    );
}

#[test]
fn tinycdb_rules_through_ipcserver_x() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let (uid, gid) = own_ids();
    let cdb = d.join("rules.cdb");
    // cdb -c input: +KLEN,DLEN:KEY->DATA lines, then an empty line.
    let make = |records: &[(String, &[u8])]| {
        let mut input = Vec::new();
        for (k, v) in records {
            input.extend(format!("+{},{}:{k}->", k.len(), v.len()).into_bytes());
            input.extend_from_slice(v);
            input.push(b'\n');
        }
        input.push(b'\n');
        let o = run_input(Command::new("cdb").arg("-c").arg(&cdb), &input, 10);
        assert!(o.status.success(), "cdb -c: {}", stderr(&o));
    };
    make(&[(format!("{uid}.{gid}"), b"+WHO=tiny\0+TWO=a b\0"), (String::new(), b"D\0")]);
    let sock = d.join("s");
    let marker = d.join("ran");
    let handler = format!("touch {}; echo \"$WHO/$TWO\"", s(&marker));
    let mut c = cmd("ipcserver");
    c.args(["-x", s(&cdb), s(&sock), "sh", "-c", &handler]).stderr(Stdio::null());
    let _srv = Server::start(&mut c, &sock);
    assert_eq!(fetch(&sock).unwrap(), b"tiny/a b\n");
    // Rebuilt by tinycdb while the server runs: now the uid is denied.
    std::fs::remove_file(&marker).unwrap();
    make(&[(uid.to_string(), b"D\0"), (String::new(), b"+WHO=all\0")]);
    assert_eq!(fetch(&sock).unwrap(), b"");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!marker.exists(), "a denied connection ran the handler");
}
