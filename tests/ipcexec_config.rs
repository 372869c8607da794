//! ipcexec-config: the service directory it writes (layout, modes, owners,
//! every byte of every file), its messages and exit codes, that a failure
//! leaves nothing behind, what its scripts do on their own, and the service
//! brought up for real under s6-supervise and runit's runsv (as root), used
//! by an unprivileged user through ipcrun. With `UCSPI_IPC_ORIGINAL`, the
//! layout and messages are compared with the original's.
use crate::common;
use common::supervise::{s6, wait_supervised, Runsv};
use common::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// Who the tests configure: as root, root serving and nobody logging; as
/// another user, that user for both (chown to others needs root). None
/// (and SKIPPED) when the needed entries are not in /etc/passwd.
struct Accounts {
    user: String,
    loguser: String,
    log_ids: (u32, u32),
}

fn accounts() -> Option<Accounts> {
    let (user, log) = if is_root() { (by_uid(0), by_uid(NOBODY)) } else { (by_uid(my_uid()), by_uid(my_uid())) };
    match (user, log) {
        (Some(u), Some(l)) => Some(Accounts { user: u.0, loguser: l.0, log_ids: (l.1, l.2) }),
        _ => {
            skip("the accounts it needs are not in /etc/passwd");
            None
        }
    }
}

/// The directory our programs are in, as the kernel reports it.
fn canonical_bin_dir() -> String {
    std::fs::canonicalize(bin("ipcexec-config").parent().unwrap()).unwrap().to_str().unwrap().to_string()
}

fn config(args: &[&str]) -> Output {
    run(cmd("ipcexec-config").args(args), 10)
}

fn assert_ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    assert_eq!((stdout(o), stderr(o)), (String::new(), String::new()));
}

const RUN: &str = r#"#!/bin/sh
exec 2>&1
d=@DIR@ b=@BIN@
# env/: each file's first line (without trailing blanks) is a variable; an
# empty file unsets it.
for f in "$d"/env/*; do
  n=${f##*/}
  case $n in *[!A-Za-z0-9_]* | [0-9]*) continue ;; esac
  test -f "$f" || continue
  if test -s "$f"; then IFS= read -r v <"$f"; export "$n=${v%"${v##*[! @TAB@]}"}"; else unset "$n"; fi
done
# rules/data.cdb: compiled from rules/data when missing or older.
r=$d/rules
if test ! -f "$r"/data.cdb || test "$r"/data -nt "$r"/data.cdb; then
  "$b"/ipcexecrules "$r"/data.cdb "$r"/data.tmp <"$r"/data || exit 111
fi
# At most 40 requests at once, 4 of them from any one uid: no client can
# hold every slot, root's requests included.
exec "$b"/ipcserver -v -c 40 -C 4@IDS@ "$d"/s "$b"/ipcexec "$r"/data.cdb
"#;

const LOG_RUN: &str = r#"#!/bin/sh
for l in 's6-log t' 'svlogd -t' 'multilog t'; do
  command -v "${l% *}" >/dev/null && exec @BIN@/ipcapplyuidgid -u @UID@ -g @GID@ $l ./main
done
echo 'log/run: no logger found: install s6 (s6-log), runit (svlogd) or daemontools (multilog)' >&2
exit 111
"#;

/// Every byte of dir/run; `server_ids` when the user is not root.
fn expected_run(dir: &str, server_ids: Option<(u32, u32)>) -> String {
    let ids = server_ids.map(|(u, g)| format!(" -u {u} -g {g}")).unwrap_or_default();
    RUN.replace("@DIR@", &sh_quote(dir))
        .replace("@BIN@", &sh_quote(&canonical_bin_dir()))
        .replace("@TAB@", "\t")
        .replace("@IDS@", &ids)
}

fn expected_log_run((uid, gid): (u32, u32)) -> String {
    LOG_RUN
        .replace("@BIN@", &sh_quote(&canonical_bin_dir()))
        .replace("@UID@", &uid.to_string())
        .replace("@GID@", &gid.to_string())
}

fn expected_makefile() -> String {
    format!(
        "data.cdb: data\n\t{}/ipcexecrules data.cdb data.tmp <data\n",
        sh_quote(&canonical_bin_dir()).replace('$', "$$")
    )
}

/// What a tree holds: relative path -> (type, mode bits, uid, gid).
type Tree = BTreeMap<String, (char, u32, u32, u32)>;

fn tree(root: &Path) -> Tree {
    fn walk(root: &Path, rel: &str, out: &mut Tree) {
        let path = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
        let m = std::fs::symlink_metadata(&path).unwrap();
        let t = m.file_type();
        let kind = if t.is_dir() {
            'd'
        } else if t.is_file() {
            'f'
        } else if t.is_socket() {
            's'
        } else {
            '?'
        };
        out.insert(if rel.is_empty() { ".".into() } else { rel.into() }, (kind, m.mode() & 0o7777, m.uid(), m.gid()));
        if t.is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                let name = e.unwrap().file_name().into_string().unwrap();
                walk(root, &if rel.is_empty() { name } else { format!("{rel}/{name}") }, out);
            }
        }
    }
    let mut out = Tree::new();
    walk(root, "", &mut out);
    out
}

/// The entries of a directory, as names.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn writes_the_original_layout() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let dir = t.join("svc");
    assert_ok(&config(&[&a.user, &a.loguser, s(&dir)]));

    let me = my_uid();
    let (lu, lg) = a.log_ids;
    let mine = |kind, mode| (kind, mode, me);
    let want: Vec<(&str, (char, u32, u32))> = vec![
        (".", mine('d', 0o3755)),
        ("env", mine('d', 0o2755)),
        ("env/IPCERROUT", mine('f', 0o644)),
        ("log", mine('d', 0o2755)),
        ("log/main", ('d', 0o2755, lu)),
        ("log/run", mine('f', 0o755)),
        ("log/status", ('f', 0o644, lu)),
        ("rules", mine('d', 0o2755)),
        ("rules/Makefile", mine('f', 0o644)),
        ("rules/data", mine('f', 0o644)),
        ("run", mine('f', 0o755)),
    ];
    let got = tree(&dir);
    let got_short: Vec<(&str, (char, u32, u32))> = got.iter().map(|(k, v)| (k.as_str(), (v.0, v.1, v.2))).collect();
    assert_eq!(got_short, want);
    assert_eq!(got["log/main"].3, lg);
    assert_eq!(got["log/status"].3, lg);

    let read = |rel: &str| std::fs::read_to_string(dir.join(rel)).unwrap();
    assert_eq!(read("env/IPCERROUT"), "1");
    assert_eq!(read("rules/data"), ":deny\n");
    assert_eq!(read("log/status"), "");
    assert_eq!(read("rules/Makefile"), expected_makefile());
    assert_eq!(read("log/run"), expected_log_run(a.log_ids));
    let server_ids = by_uid(me).filter(|_| me != 0).map(|e| (e.1, e.2));
    assert_eq!(read("run"), expected_run(s(&dir), server_ids));
    for script in ["run", "log/run"] {
        let o = run(Command::new("sh").arg("-n").arg(dir.join(script)), 10);
        assert_eq!(o.status.code(), Some(0), "sh -n {script}: {}", stderr(&o));
    }
}

#[test]
fn trailing_slashes_and_odd_bytes_in_dir() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    // Quotes, a dollar, a backquote, a space, a newline: sh must read the
    // path back as it is.
    let odd = t.join("it's \"$HOME\" `x`\nz");
    assert_ok(&config(&[&a.user, &a.loguser, &format!("{}//", s(&odd))]));
    let run_script = std::fs::read_to_string(odd.join("run")).unwrap();
    let me = my_uid();
    assert_eq!(run_script, expected_run(s(&odd), by_uid(me).filter(|_| me != 0).map(|e| (e.1, e.2))));
    // The assignments of d and b, evaluated by sh.
    let start = run_script.find("d=").unwrap();
    let end = run_script.find("\n# env/").unwrap();
    let show = format!("{}\nprintf '%s|%s' \"$d\" \"$b\"", &run_script[start..end]);
    let o = run(Command::new("sh").arg("-c").arg(show), 10);
    assert_eq!(stdout(&o), format!("{}|{}", s(&odd), canonical_bin_dir()));
    let o = run(Command::new("sh").arg("-n").arg(odd.join("run")), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_user_other_than_root_gets_its_ids_and_numbers_are_accounts() {
    let t = TempDir::new();
    let Some(nobody) = by_uid(NOBODY) else {
        skip("no user 65534 in /etc/passwd");
        return;
    };
    let Some(me) = by_uid(my_uid()) else {
        skip("my uid is not in /etc/passwd");
        return;
    };
    // Logging as ourselves works for anyone; as nobody, only as root.
    let log = if is_root() { nobody.clone() } else { me.clone() };
    let dir = t.join("byname");
    assert_ok(&config(&[&nobody.0, &log.0, s(&dir)]));
    let run_script = std::fs::read_to_string(dir.join("run")).unwrap();
    assert_eq!(run_script, expected_run(s(&dir), Some((nobody.1, nobody.2))));
    assert!(run_script.contains(&format!("ipcserver -v -c 40 -C 4 -u {} -g {} \"$d\"/s", nobody.1, nobody.2)));

    // A name not in /etc/passwd that is a uid it has is that account.
    let dir2 = t.join("bynumber");
    assert_ok(&config(&[&nobody.1.to_string(), &log.1.to_string(), s(&dir2)]));
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(read(&dir2, "run"), expected_run(s(&dir2), Some((nobody.1, nobody.2))));
    assert_eq!(read(&dir2, "log/run"), read(&dir, "log/run"));
    assert_eq!(read(&dir2, "log/run"), expected_log_run((log.1, log.2)));

    // Root serving: no privilege drop at all.
    let root = by_uid(0).unwrap();
    let dir3 = t.join("root");
    assert_ok(&config(&[&root.0, &log.0, s(&dir3)]));
    assert_eq!(read(&dir3, "run"), expected_run(s(&dir3), None));
    let dir4 = t.join("rootnumber");
    assert_ok(&config(&["0", &log.0, s(&dir4)]));
    assert_eq!(read(&dir4, "run"), expected_run(s(&dir4), None));
}

#[test]
fn usage_and_account_errors_create_nothing() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let dir = t.join("svc");
    let d = s(&dir);
    let usage = "ipcexec-config: usage: ipcexec-config user loguser dir\n";
    let long = format!("{}/{}", s(t.path()), "a".repeat(106 - s(t.path()).len()));
    let relative = |dir: &str| format!("ipcexec-config: the directory must be an absolute path: {dir}\n{usage}");
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec![], 100, usage.into()),
        (vec![&a.user, &a.loguser], 100, usage.into()),
        (vec![&a.user, &a.loguser, d, "x"], 100, usage.into()),
        // A relative dir: the usage line, and why.
        (vec![&a.user, &a.loguser, "svc"], 100, relative("svc")),
        (vec![&a.user, &a.loguser, "./svc"], 100, relative("./svc")),
        (vec![&a.user, &a.loguser, ""], 100, relative("")),
        // The dir is checked first, then the logger's account, then the user's.
        (vec!["no-such-user", "no-such-loguser", "svc"], 100, relative("svc")),
        (vec!["-v", &a.user, &a.loguser, d], 100, format!("ipcexec-config: illegal option -- v\n{usage}")),
        (vec!["no-such-user", &a.loguser, d], 111, "ipcexec-config: fatal: unknown account no-such-user\n".into()),
        (vec![&a.user, "no-such-loguser", d], 111, "ipcexec-config: fatal: unknown account no-such-loguser\n".into()),
        (
            vec!["no-such-user", "no-such-loguser", d],
            111,
            "ipcexec-config: fatal: unknown account no-such-loguser\n".into(),
        ),
        (vec!["4294967294", &a.loguser, d], 111, "ipcexec-config: fatal: unknown account 4294967294\n".into()),
        (
            vec![&a.user, &a.loguser, &long],
            100,
            format!("ipcexec-config: fatal: socket path longer than 108 bytes: {long}/s\n"),
        ),
    ];
    for (args, code, message) in cases {
        let o = config(&args);
        assert_eq!((o.status.code(), stderr(&o)), (Some(code), message), "{args:?}");
        assert_eq!(stdout(&o), "");
        assert!(listing(t.path()).is_empty(), "{args:?} left {:?}", listing(t.path()));
    }
    // 106 bytes of dir make a socket path of 108: accepted.
    let longest = &long[..long.len() - 1];
    assert_ok(&config(&[&a.user, &a.loguser, longest]));
    assert!(Path::new(longest).join("run").exists());
}

#[test]
fn an_existing_path_is_left_alone() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let dir = t.join("svc");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("mine"), "keep").unwrap();
    let before = tree(t.path());
    for given in [s(&dir).to_string(), format!("{}/", s(&dir))] {
        let o = config(&[&a.user, &a.loguser, &given]);
        let want = format!("ipcexec-config: fatal: unable to create {}: file exists\n", s(&dir));
        assert_eq!((o.status.code(), stderr(&o)), (Some(111), want));
        assert_eq!(tree(t.path()), before);
    }
    let o = config(&[&a.user, &a.loguser, "/"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(111), "ipcexec-config: fatal: unable to create /: file exists\n".into())
    );
    let o = config(&[&a.user, &a.loguser, s(&t.join("no/svc"))]);
    let want = format!("ipcexec-config: fatal: unable to create {}: no such file or directory\n", s(&t.join("no/svc")));
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), want));
    assert_eq!(tree(t.path()), before);
}

#[test]
fn missing_programs_are_refused_before_anything_is_made() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let lonely = t.join("bin");
    std::fs::create_dir(&lonely).unwrap();
    // Copied by cp, not by this process: a thread of ours starting a
    // program while the copy is open for writing would make executing it
    // fail with ETXTBSY.
    let o = run(Command::new("cp").arg(bin("ipcexec-config")).arg(&lonely), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = t.join("svc");
    let o = run(Command::new(lonely.join("ipcexec-config")).args([&a.user, &a.loguser, s(&dir)]), 10);
    let want = format!("ipcexec-config: fatal: unable to find {}/ipcserver: no such file or directory\n", s(&lonely));
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), want));
    assert!(!dir.exists());
}

/// Runs ipcexec-config with a file size limit and SIGXFSZ ignored, so that
/// writing past `limit` bytes fails with EFBIG.
fn config_with_size_limit(limit: usize, args: &[&str]) -> Output {
    let script = "trap '' XFSZ; limit=$1; shift; exec prlimit --fsize=\"$limit\" \"$@\"";
    run(Command::new("sh").args(["-c", script, "sh", &limit.to_string(), s(&bin("ipcexec-config"))]).args(args), 10)
}

#[test]
fn a_late_failure_removes_everything_it_made() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let dir = t.join("svc");
    let d = s(&dir);
    if have("prlimit") {
        // log/run is written after log/, log/main and log/status; run after
        // log/run (and is always longer).
        let log_run = expected_log_run(a.log_ids).len();
        for (limit, failing) in [(10, "log/run"), (log_run, "run")] {
            let o = config_with_size_limit(limit, &[&a.user, &a.loguser, d]);
            let want = format!("ipcexec-config: fatal: unable to write {d}/{failing}: file too large\n");
            assert_eq!((o.status.code(), stderr(&o)), (Some(111), want));
            assert!(listing(t.path()).is_empty(), "left {:?}", listing(t.path()));
        }
    }
    // Giving log/main away needs root: as another user it fails after the
    // directory, log/ and log/main exist.
    let open = t.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let dir = open.join("svc");
    let d = s(&dir);
    let o = if is_root() {
        if !have("setpriv") {
            return;
        }
        let Some(nobody) = by_uid(NOBODY) else { return };
        let ids = [format!("--reuid={}", nobody.1), format!("--regid={}", nobody.2)];
        run(
            Command::new("setpriv")
                .args(&ids)
                .arg("--clear-groups")
                .arg(bin("ipcexec-config"))
                .args(["root", "root", d]),
            10,
        )
    } else {
        config(&[&a.user, "root", d])
    };
    let want = format!("ipcexec-config: fatal: unable to set owner of {d}/log/main: operation not permitted\n");
    assert_eq!((o.status.code(), stderr(&o)), (Some(111), want));
    assert!(listing(&open).is_empty(), "left {:?}", listing(&open));
}

#[test]
fn the_log_script_says_when_there_is_no_logger() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let dir = t.join("svc");
    assert_ok(&config(&[&a.user, &a.loguser, s(&dir)]));
    let empty = t.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(Command::new(dir.join("log/run")).current_dir(dir.join("log")).env("PATH", &empty), 10);
    let want = "log/run: no logger found: install s6 (s6-log), runit (svlogd) or daemontools (multilog)\n";
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(111), String::new(), want.to_string()));
}

#[test]
fn the_run_script_does_not_start_on_rules_that_do_not_compile() {
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let dir = t.join("svc");
    assert_ok(&config(&[&a.user, &a.loguser, s(&dir)]));
    std::fs::write(dir.join("rules/data"), "1000,0.id:allow\nnot a rule\n:deny\n").unwrap();
    let o = run(Command::new(dir.join("run")).current_dir(&dir), 10);
    let want = "ipcexecrules: fatal: unable to parse this line: not a rule\n\
                ipcexecrules: line 2: expected a colon after the address (ADDRESS:allow or ADDRESS:deny)\n";
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(111), want.to_string(), String::new()));
    assert_eq!(listing(&dir.join("rules")), ["Makefile", "data"]);
    assert!(!dir.join("s").exists());
}

// ---- The service, for real (as root) ----

/// The rules the live tests install: nobody may run id and env as root
/// (by absolute path, whatever PATH says), nothing else.
const LIVE_RULES: &str = "65534,0.id:allow=\"/usr/bin/id\"\n65534,0.env:allow=\"/usr/bin/env\"\n:deny\n";

/// `ipcrun ARGS` as uid and gid 65534, no groups, against dir/s.
fn ipcrun_as_nobody(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin("ipcrun")).args(args);
    run(c.env("IPCEXEC_SOCKET", dir.join("s")), 20)
}

/// What the live tests need; says SKIPPED otherwise.
fn live_prerequisites(tools: &[&str]) -> Option<String> {
    if !need_root() || !tools.iter().chain(["setpriv"].iter()).all(|p| have(p)) {
        return None;
    }
    match (by_uid(NOBODY), Path::new("/usr/bin/id").exists() && Path::new("/usr/bin/env").exists()) {
        (Some(n), true) => Some(n.0),
        _ => {
            skip("needs user 65534 in /etc/passwd, /usr/bin/id and /usr/bin/env");
            None
        }
    }
}

/// Writes the service's env/ additions: FOO (a first line with trailing
/// blanks, then more), and an empty EMPTIED, which unsets what the
/// supervisor has.
fn add_env(dir: &Path) {
    std::fs::write(dir.join("env/FOO"), "bar \t \nsecond line\n").unwrap();
    std::fs::write(dir.join("env/EMPTIED"), "").unwrap();
}

/// While the service runs the first time: the rules were compiled at
/// start, `:deny` is in force, the socket is usable by nobody.
fn check_first_start(dir: &Path) {
    assert!(dir.join("rules/data.cdb").is_file(), "rules/data.cdb was not compiled at start");
    let m = std::fs::metadata(dir.join("s")).unwrap();
    assert!(m.file_type().is_socket());
    let o = ipcrun_as_nobody(dir, &["-F", "id"]);
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(100), String::new(), String::new()));
}

/// With LIVE_RULES in force: nobody runs id and env as root, and is
/// refused anything else.
fn check_rules_in_force(dir: &Path) {
    let o = ipcrun_as_nobody(dir, &["id"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("uid=0(root) gid=0(root)"), "{}", stdout(&o));
    let o = ipcrun_as_nobody(dir, &["env"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let env = o.stdout;
    assert_eq!(env_value(&env, "FOO").as_deref(), Some("bar"));
    assert_eq!(env_value(&env, "IPCERROUT").as_deref(), Some("1"));
    assert_eq!(env_value(&env, "IPCREMOTEEUID").as_deref(), Some("65534"));
    assert_eq!(env_value(&env, "EMPTIED"), None);
    let o = ipcrun_as_nobody(dir, &["-F", "whoami"]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(100), String::new()));
    let o = ipcrun_as_nobody(dir, &["whoami"]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), String::new()));
}

/// The log: written by the logger as nobody into log/main/current, each
/// line with a TAI64N timestamp, holding ipcexec's lines.
fn check_log(dir: &Path) {
    let current = dir.join("log/main/current");
    let want = ["ipcexec: deny 65534.65534,0.id", "ipcexec: ok 65534.65534,0.id", "ipcexec: ok 65534.65534,0.env"];
    let text = || std::fs::read_to_string(&current).unwrap_or_default();
    let complete = wait_until(10, || {
        let t = text();
        want.iter().all(|w| t.contains(w)) && t.contains("ipcexec: deny 65534.65534,0.whoami")
    });
    assert!(complete, "log/main/current:\n{}", text());
    assert_eq!(std::fs::metadata(&current).unwrap().uid(), NOBODY);
    for line in text().lines() {
        let stamped = line.len() > 26 && line.starts_with("@4000") && line.as_bytes()[25] == b' ';
        assert!(stamped, "no timestamp: {line:?}");
    }
    assert!(text().contains(" ipcserver: status: 0/40\n"), "{}", text());
}

/// One uid cannot hold the service: with four silent connections of ours
/// (root's) open, a fifth is refused (logged), and nobody is still served.
fn check_one_uid_cannot_hold_the_service(dir: &Path) {
    let held: Vec<UnixStream> = (0..4).map(|_| UnixStream::connect(dir.join("s")).unwrap()).collect();
    let mut fifth = UnixStream::connect(dir.join("s")).unwrap();
    fifth.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = Vec::new();
    assert_eq!(fifth.read_to_end(&mut rest).unwrap(), 0);
    let current = dir.join("log/main/current");
    let text = || std::fs::read_to_string(&current).unwrap_or_default();
    let refused = "ipcserver: warning: dropping a connection from uid 0: local limit of 4 reached";
    assert!(wait_until(10, || text().contains(refused)), "log/main/current:\n{}", text());
    let o = ipcrun_as_nobody(dir, &["id"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    drop(held);
}

/// Recompiles rules/ with make, or, without make, with the Makefile's
/// recipe run by sh.
fn recompile(rules: &Path) {
    let o = if Path::new("/usr/bin/make").exists() {
        run(Command::new("make").arg("-s").arg("-C").arg(rules), 20)
    } else {
        let makefile = std::fs::read_to_string(rules.join("Makefile")).unwrap();
        let recipe = makefile.lines().nth(1).unwrap().trim_start_matches('\t').replace("$$", "$");
        run(Command::new("sh").arg("-c").arg(recipe).current_dir(rules), 20)
    };
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

/// The service and its logger, each under an s6-supervise of ours, joined
/// by a pipe (what s6-svscan does for a service with a log/ directory).
/// Dropping it stops both, by pid if need be.
struct S6Pair {
    supervisors: Vec<(Child, PathBuf)>,
    output: PathBuf,
}

impl S6Pair {
    fn start(dir: &Path, output: &Path) -> S6Pair {
        let out = std::fs::File::create(output).unwrap();
        let mut main = Command::new("s6-supervise")
            .arg(dir)
            .env("EMPTIED", "set by the supervisor")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(out.try_clone().unwrap())
            .spawn()
            .unwrap();
        let pipe = Stdio::from(main.stdout.take().unwrap());
        let log = Command::new("s6-supervise")
            .arg(dir.join("log"))
            .stdin(pipe)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn();
        let mut pair = S6Pair { supervisors: vec![(main, dir.to_path_buf())], output: output.to_path_buf() };
        pair.supervisors.push((log.unwrap(), dir.join("log")));
        for (child, svc) in pair.supervisors.iter_mut() {
            wait_supervised(child, svc);
        }
        pair
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// `s6-svc -dx` on the service, then on the logger (which then sees
    /// the end of its input); both supervisors must exit 0.
    fn stop(&mut self) {
        for (child, svc) in self.supervisors.iter_mut() {
            let o = s6("s6-svc", &["-dx"], svc);
            assert_eq!(o.status.code(), Some(0), "s6-svc -dx {}: {}", svc.display(), stderr(&o));
            let st = wait_timeout(child, 10);
            assert!(matches!(st, Some(st) if st.code() == Some(0)), "s6-supervise {}: {st:?}", svc.display());
        }
    }
}

impl Drop for S6Pair {
    fn drop(&mut self) {
        // No assertions: this may run while a test is panicking.
        for (child, svc) in self.supervisors.iter_mut() {
            if let Ok(None) = child.try_wait() {
                let pid = stdout(&s6("s6-svstat", &["-o", "pid"], svc)).trim().parse::<i32>().unwrap_or(-1);
                let _ = s6("s6-svc", &["-dx"], svc);
                if wait_timeout(child, 5).is_none() {
                    kill(child.id() as i32, 9);
                    let _ = child.wait();
                    if pid > 0 {
                        kill(pid, 9);
                    }
                }
            }
        }
    }
}

#[test]
fn the_service_under_s6_supervise() {
    let Some(nobody) = live_prerequisites(&["s6-supervise", "s6-svc", "s6-svstat", "s6-log"]) else {
        return;
    };
    let t = TempDir::new();
    let dir = t.join("svc");
    assert_ok(&config(&["root", &nobody, s(&dir)]));
    add_env(&dir);
    let mut pair = S6Pair::start(&dir, &t.join("supervisors.log"));
    assert!(wait_until(10, || socket_ready(&dir.join("s"))), "the service never listened:\n{}", pair.output());
    let pid: i32 = stdout(&s6("s6-svstat", &["-o", "pid"], &dir)).trim().parse().unwrap();
    // A client served: only now has the chain surely reached ipcserverd
    // (the socket listens from ipcserver-socketbinder on).
    check_first_start(&dir);
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(), "ipcserverd\n");

    std::fs::write(dir.join("rules/data"), LIVE_RULES).unwrap();
    recompile(&dir.join("rules"));
    check_rules_in_force(&dir);
    check_log(&dir);
    check_one_uid_cannot_hold_the_service(&dir);
    // The logger runs as nobody.
    let log_pid: i32 = stdout(&s6("s6-svstat", &["-o", "pid"], &dir.join("log"))).trim().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{log_pid}/status")).unwrap();
    assert!(status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().all(|f| f == "Uid:" || f == "65534")));
    assert_eq!(std::fs::read_to_string(format!("/proc/{log_pid}/comm")).unwrap(), "s6-log\n");

    pair.stop();
    assert!(wait_until(5, || !alive(pid)), "the server {pid} is still running");
    assert!(!pair.output().contains("fatal"), "{}", pair.output());
}

#[test]
fn the_service_under_runsv() {
    let Some(nobody) = live_prerequisites(&["runsv", "sv", "svlogd"]) else { return };
    let t = TempDir::new();
    let dir = t.join("svc");
    assert_ok(&config(&["root", &nobody, s(&dir)]));
    add_env(&dir);
    // Only svlogd on PATH: the run scripts need nothing else (and so the
    // log script picks svlogd, even where s6-log is installed).
    let path = t.join("path");
    std::fs::create_dir(&path).unwrap();
    std::os::unix::fs::symlink(which("svlogd").unwrap(), path.join("svlogd")).unwrap();
    let env = [("PATH", path.as_os_str()), ("EMPTIED", "set by the supervisor".as_ref())];
    let mut sv = Runsv::start(&dir, &env, &t.join("runsv.log"));
    let output = || std::fs::read_to_string(t.join("runsv.log")).unwrap_or_default();
    assert!(wait_until(10, || socket_ready(&dir.join("s"))), "the service never listened:\n{}", output());
    let pid = sv.pid("").unwrap();
    // A client served: only now has the chain surely reached ipcserverd
    // (the socket listens from ipcserver-socketbinder on).
    check_first_start(&dir);
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(), "ipcserverd\n");

    // New rules, compiled by the run script when the service restarts
    // (rules/data.cdb made older than rules/data whatever the clock's
    // resolution).
    std::fs::write(dir.join("rules/data"), LIVE_RULES).unwrap();
    let cdb = std::fs::File::options().write(true).open(dir.join("rules/data.cdb")).unwrap();
    cdb.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    drop(cdb);
    let o = sv.sv(&["restart"]);
    assert_eq!(o.status.code(), Some(0), "sv restart: {}{}", stdout(&o), stderr(&o));
    let restarted = wait_until(10, || sv.pid("").is_some_and(|p| p != pid) && socket_ready(&dir.join("s")));
    assert!(restarted, "the service did not restart:\n{}", output());
    check_rules_in_force(&dir);
    check_log(&dir);
    check_one_uid_cannot_hold_the_service(&dir);
    let log_pid = sv.pid("log").unwrap();
    assert_eq!(std::fs::read_to_string(format!("/proc/{log_pid}/comm")).unwrap(), "svlogd\n");

    sv.stop();
    assert!(wait_until(5, || !alive(pid) && !alive(log_pid)), "the server or the logger is still running");
    assert!(!output().contains("fatal"), "{}", output());
}

// ---- Against the original ----

#[test]
fn same_layout_and_messages_as_the_original() {
    let Some(orig) = std::env::var_os("UCSPI_IPC_ORIGINAL") else {
        skip("UCSPI_IPC_ORIGINAL is not set");
        return;
    };
    let original = PathBuf::from(orig).join("ipcexec-config");
    let Some(a) = accounts() else { return };
    let t = TempDir::new();
    let (theirs, ours) = (t.join("theirs"), t.join("ours"));
    let o = run(Command::new(&original).args([&a.user, &a.loguser, s(&theirs)]), 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_ok(&config(&[&a.user, &a.loguser, s(&ours)]));
    assert_eq!(tree(&ours), tree(&theirs));
    for f in ["env/IPCERROUT", "rules/data", "log/status"] {
        assert_eq!(std::fs::read(ours.join(f)).unwrap(), std::fs::read(theirs.join(f)).unwrap(), "{f}");
    }

    // Messages, on the same path, one program after the other; the
    // original may leave a half-made directory (ours never does).
    let (p, orphan) = (t.join("p"), t.join("none/p"));
    let cases: Vec<Vec<&str>> = vec![
        vec![&a.user, &a.loguser, "relative"],
        vec![&a.user, &a.loguser],
        vec!["no-such-user", &a.loguser, s(&p)],
        vec![&a.user, "no-such-loguser", s(&p)],
        vec!["no-such-user", "no-such-loguser", s(&p)],
        vec![&a.user, &a.loguser, s(&ours)],
        vec![&a.user, &a.loguser, s(&orphan)],
    ];
    for args in cases {
        let o = run(Command::new(&original).args(&args), 10);
        let _ = std::fs::remove_dir_all(&p);
        // REASON texts are strerror's (behaviour.md §0).
        let theirs = stderr(&o)
            .replace("file already exists", "file exists")
            .replace("file does not exist", "no such file or directory");
        let code = o.status.code();
        let o = config(&args);
        // Ours says why a relative dir is refused, before the usage line.
        let ours = stderr(&o).replace("ipcexec-config: the directory must be an absolute path: relative\n", "");
        assert_eq!((o.status.code(), ours), (code, theirs), "{args:?}");
        assert!(!p.exists());
    }
}
