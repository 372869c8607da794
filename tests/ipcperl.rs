//! ipcperl, the preforking server that runs Perl handlers: arguments,
//! %ENV, STDIN and STDOUT per connection, state kept within a child, %ENV
//! and STDIN that do not leak into the next connection, output delivered
//! whatever the handler does (exit, die), the C environment checked, load
//! errors that stop the server, usage errors, the load after the
//! privilege drop, SIGHUP's reload, memory that does not grow per
//! connection, and the handler's view against the original's.
//!
//! ipcperl is built only with the `perl` feature (`cargo test --release
//! --features perl --test suite ipcperl::`); without it every test says
//! SKIPPED.
use crate::common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USAGE: &str = "ipcperl: usage: ipcperl [ -1UXSdDqQvpP ] [ -c limit ] [ -C locallimit ] [ -x rules.cdb ] \
[ -B banner ] [ -g gid ] [ -u uid ] [ -G gidlist ] [ -b backlog ] [ -a perms ] [ -l localname ] \
[ -f lockfile ] path file.pm sub [ args... ]\n";

/// How to build and run these tests, as the README says it.
const TEST_COMMAND: &str = "cargo test --release --features perl --test suite ipcperl::";

/// ipcperl, if the `perl` feature built it; says SKIPPED if not. (Cargo
/// names the executable even without the feature, which a build with it
/// may have left behind: the feature is what says it is current.)
pub(crate) fn ipcperl() -> Option<PathBuf> {
    let path = option_env!("CARGO_BIN_EXE_ipcperl").filter(|_| cfg!(feature = "perl")).map(PathBuf::from);
    if path.is_none() {
        skip(&format!("ipcperl was not built (it needs libperl-dev and the perl feature: {TEST_COMMAND})"));
    }
    path
}

/// The SKIPPED line gives the command the README and ipcperl's page give,
/// so that whoever reads it runs what the documentation says.
#[test]
fn the_skip_hint_is_the_documented_command() {
    for page in ["README.md", "doc/ipcperl.md"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(page)).unwrap();
        assert!(text.contains(TEST_COMMAND), "{page} does not say {TEST_COMMAND:?}");
    }
}

/// An ipcperl server on `DIR/s` for `DIR/h.pm`, stderr in `DIR/log`.
struct Perl {
    server: Server,
    dir: TempDir,
}

impl Perl {
    /// Writes `code` to h.pm in a new directory and starts
    /// `ipcperl OPTS DIR/s h.pm ARGS...` there.
    fn start(program: &Path, code: &str, opts: &[&str], args: &[&str]) -> Perl {
        let dir = TempDir::new();
        Perl::start_in(dir, program, code, opts, args)
    }

    fn start_in(dir: TempDir, program: &Path, code: &str, opts: &[&str], args: &[&str]) -> Perl {
        std::fs::write(dir.join("h.pm"), code).unwrap();
        let sock = dir.join("s");
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let mut c = Command::new(program);
        // Invoked by its name, as through PATH: the name its lines start with.
        c.arg0(program.file_name().unwrap());
        c.current_dir(dir.path()).args(opts).arg(&sock).arg("h.pm").args(args).stderr(log);
        let server = Server::start(&mut c, &sock);
        Perl { server, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap()
    }

    /// Waits until the log has `n` lines containing `what`.
    fn wait_log(&self, what: &str, n: usize) -> bool {
        wait_until(10, || self.log().matches(what).count() >= n)
    }

    fn connect(&self) -> UnixStream {
        connect(&self.dir.join("s"))
    }

    /// Sends `input`, closes the sending side, reads the answer to EOF.
    fn ask(&self, input: &str) -> String {
        let mut s = self.connect();
        let _ = s.write_all(input.as_bytes());
        let _ = s.shutdown(Shutdown::Write);
        read_all(&mut s)
    }

    /// SIGTERM; the server exits 0 and leaves no child behind.
    fn stop(&mut self) {
        let pid = self.server.pid();
        let kids = children(pid).0;
        self.server.signal(15);
        let st = self.server.wait(20).expect("server did not exit on SIGTERM");
        assert_eq!(st.code(), Some(0), "{}", self.log());
        for k in kids {
            assert!(wait_until(10, || !alive(k)), "child {k} outlived the server");
        }
    }
}

/// A server dropped without a stop (a test that failed, or one done with
/// it) is stopped with its children.
impl Drop for Perl {
    fn drop(&mut self) {
        stop_with_children(&mut self.server);
    }
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Everything the server sent. A handler that leaves input unread makes
/// the end of the connection a reset, after the data: that ends it too.
fn read_all(s: &mut UnixStream) -> String {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    String::from_utf8(v).unwrap()
}

/// Reads one line (without its newline).
fn read_line(s: &mut UnixStream) -> String {
    let mut v = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        v.push(b[0]);
    }
    String::from_utf8(v).unwrap()
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn the_handler_sees_its_arguments_environment_and_input() {
    let Some(ipcperl) = ipcperl() else { return };
    let dir = TempDir::new();
    let cdb = rules(dir.path(), ":allow,GREETING=\"hello there\"\n");
    let code = r#"
        sub show {
            my $line = <STDIN>;
            chomp $line;
            require POSIX;  # an XS module: DynaLoader works
            print "args=", join(",", @_), " \$0=$0\n";
            print "line=$line\n";
            print "floor=", POSIX::floor(2.5), "\n";
            print map { "$_=$ENV{$_}\n" } sort keys %ENV;
        }
        1;
    "#;
    let mut c = Command::new(&ipcperl);
    c.arg0("ipcperl");
    let sock = dir.join("s");
    std::fs::write(dir.join("h.pm"), code).unwrap();
    c.current_dir(dir.path())
        .env_clear()
        .env("INHERITED", "yes")
        .args(["-c", "1", "-x"])
        .arg(&cdb)
        .arg(&sock)
        .args(["h.pm", "show", "one", "two words", ""])
        .stderr(std::fs::File::create(dir.join("log")).unwrap());
    let mut p = Perl { server: Server::start(&mut c, &sock), dir };
    let got = p.ask("a line from the client\nand another\n");
    let want = format!(
        "args=one,two words, $0=h.pm\nline=a line from the client\nfloor=2\n\
         GREETING=hello there\nINHERITED=yes\nIPCCONNNUM=0\nIPCLOCALPATH={}\nIPCREMOTEEGID={}\n\
         IPCREMOTEEUID={}\nIPCREMOTEGIDLIST={}\nIPCREMOTEPATH=\nIPCREMOTEPID={}\nPROTO=IPC\n",
        sock.display(),
        std::fs::metadata("/proc/self").unwrap().gid(),
        euid(),
        own_groups(),
        std::process::id()
    );
    assert_eq!(got, want, "{}", p.log());
    p.stop();
}

#[test]
fn a_child_keeps_its_state_across_connections() {
    let Some(ipcperl) = ipcperl() else { return };
    // The file is loaded in the child that serves (its pid), once.
    let code = r#"
        my $count = 0;
        my $loaded_by = $$;
        sub count { $count++; print "$count $$ $loaded_by\n"; }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-c", "1"], &["count"]);
    let answers: Vec<String> = (0..3).map(|_| p.ask("")).collect();
    let pid = answers[0].split_whitespace().nth(1).unwrap().to_string();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a, &format!("{} {pid} {pid}\n", i + 1));
    }
    assert_ne!(pid, p.server.pid().to_string(), "loaded in a child, not in the parent");
    p.stop();
}

#[test]
fn environment_changes_do_not_reach_the_next_connection() {
    let Some(ipcperl) = ipcperl() else { return };
    let code = r#"
        sub env {
            print "FOO=", $ENV{FOO} // "unset", " PROTO=", $ENV{PROTO} // "unset", " $$\n";
            $ENV{FOO} = "set by the handler";
            delete $ENV{PROTO};
            # The C environment follows %ENV during the call.
            system q{echo "sh: FOO=$FOO PROTO=${PROTO-unset}"};
        }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-c", "1"], &["env"]);
    let first = p.ask("");
    let pid = first.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    for answer in [first, p.ask("")] {
        assert_eq!(answer, format!("FOO=unset PROTO=IPC {pid}\nsh: FOO=set by the handler PROTO=unset\n"));
    }
    assert!(!p.log().contains("warning"), "{}", p.log());
    p.stop();
}

#[test]
fn a_changed_c_environment_drops_the_connection_and_the_child() {
    let Some(ipcperl) = ipcperl() else { return };
    // A reference to the load-time %ENV outlives `local %ENV`: through it a
    // handler changes the environment every later connection would start
    // from, and the C environment with it.
    let code = r#"
        my $env = \%ENV;
        sub leak { print "served by $$\n"; $env->{LEAKED} = "yes" if <STDIN> eq "leak\n"; }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-v", "-c", "1"], &["leak"]);
    let first = p.ask("leak\n");
    let pid = first.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(first, format!("served by {pid}\n"), "what it printed is delivered");
    assert!(p.wait_log(&format!("ipcperl: end {pid} status 28416"), 1), "{}", p.log());
    assert!(p.log().contains("ipcperl: warning: dropping connection, environ changed\n"), "{}", p.log());
    let second = p.ask("no\n");
    assert_ne!(second, first, "a new child serves the next connection");
    assert_eq!(p.ask("no\n"), second, "which serves on");
    p.stop();
}

#[test]
fn exit_delivers_the_output_and_the_child_is_replaced() {
    let Some(ipcperl) = ipcperl() else { return };
    // No $|: the output is in Perl's buffer when exit is called. "kept":
    // the handler keeps its STDOUT alive (so that nothing flushes it when
    // its scope ends); "core": CORE::exit, which ipcperl's exit does not
    // see, but which still ends the call's scope (and its STDOUT).
    let code = r#"
        my @kept;
        sub bye {
            my $how = <STDIN>;
            chomp $how;
            push @kept, *STDOUT{IO} if $how eq "kept";
            print "bye from $$\n";
            exit 3 if $how eq "exit" || $how eq "kept";
            CORE::exit(4) if $how eq "core";
        }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-v", "-c", "1"], &["bye"]);
    let mut pids = Vec::new();
    for (how, status) in [("exit", 768), ("kept", 768), ("core", 1024)] {
        let got = p.ask(&format!("{how}\n"));
        let pid = got.strip_prefix("bye from ").and_then(|s| s.strip_suffix('\n')).unwrap_or_else(|| panic!("{got:?}"));
        assert!(p.wait_log(&format!("ipcperl: end {pid} status {status}\n"), 1), "{}", p.log());
        pids.push(pid.to_string());
    }
    let last = p.ask("stay\n");
    assert!(!pids.iter().any(|pid| last == format!("bye from {pid}\n")), "{last} served by a new child");
    assert!(pids[0] != pids[1] && pids[1] != pids[2]);
    p.stop();
}

#[test]
fn file_scope_autoflush_applies_to_every_connection() {
    let Some(ipcperl) = ipcperl() else { return };
    // A conversation: each answer must leave before the next question is
    // read.
    let code = r#"
        $| = 1;
        sub talk { while (my $q = <STDIN>) { print "re: $q"; } }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-c", "1"], &["talk"]);
    for _ in 0..2 {
        let mut s = p.connect();
        for q in ["one", "two"] {
            s.write_all(format!("{q}\n").as_bytes()).unwrap();
            assert_eq!(read_line(&mut s), format!("re: {q}"));
        }
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_all(&mut s), "");
    }
    p.stop();
}

#[test]
fn each_connection_gets_a_fresh_stdin() {
    let Some(ipcperl) = ipcperl() else { return };
    let code = r#"
        sub first_line {
            my $line = <STDIN>;
            if ($line eq "slurp\n") {
                my @rest = <STDIN>;
                print "slurped ", scalar(@rest), " eof=", eof(STDIN) ? 1 : 0, "\n";
            } else {
                print "got ", defined $line ? $line : "nothing\n";
            }
        }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-c", "1"], &["first_line"]);
    // Two lines, one read: the second stays with its connection (Perl
    // reads ahead into its buffer, so a shared STDIN would hand it on).
    assert_eq!(p.ask("first\nsecond\n"), "got first\n");
    assert_eq!(p.ask("third\nfourth\n"), "got third\n");
    // Read to end of file: the next connection still reads.
    assert_eq!(p.ask("slurp\na\nb\n"), "slurped 2 eof=1\n");
    assert_eq!(p.ask("fifth\n"), "got fifth\n");
    // The same with the client still sending: no read-ahead crosses over.
    let mut s = p.connect();
    s.write_all(b"sixth\nseventh\n").unwrap();
    assert_eq!(read_all(&mut s), "got sixth\n");
    assert_eq!(p.ask(""), "got nothing\n");
    assert!(!p.log().contains("warning"), "{}", p.log());
    p.stop();
}

#[test]
fn a_handler_that_dies_is_dropped_and_its_child_replaced() {
    let Some(ipcperl) = ipcperl() else { return };
    let code = r#"
        sub maybe {
            my $what = <STDIN>;
            print "partial from $$\n";
            die "it went\nwrong\tbadly\n" if $what eq "die\n";
            die { code => 42 } if $what eq "object\n";
        }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-v", "-c", "1"], &["maybe"]);
    let got = p.ask("die\n");
    let pid = got.strip_prefix("partial from ").and_then(|s| s.strip_suffix('\n')).unwrap().to_string();
    assert!(p.wait_log(&format!("ipcperl: end {pid} status 28416\n"), 1), "{}", p.log());
    assert!(
        p.log().contains("ipcperl: warning: dropping connection, handler died: it went; wrong badly\n"),
        "{}",
        p.log()
    );
    let got = p.ask("object\n");
    let pid2 = got.strip_prefix("partial from ").and_then(|s| s.strip_suffix('\n')).unwrap().to_string();
    assert_ne!(pid2, pid, "a new child");
    assert!(p.wait_log(&format!("ipcperl: end {pid2} status 28416\n"), 1), "{}", p.log());
    assert!(p.log().contains("ipcperl: warning: dropping connection, handler died: HASH(0x"), "{}", p.log());
    // The server goes on.
    let got = p.ask("fine\n");
    assert!(got.starts_with("partial from ") && !got.contains(&pid) && !got.contains(&pid2), "{got}");
    p.stop();
}

#[test]
fn a_file_that_fails_to_load_stops_the_server() {
    let Some(ipcperl) = ipcperl() else { return };
    let cases: [(&str, Option<&str>, &str, &str); 5] = [
        ("syntax", Some("sub h {\n"), "h", "Missing right curly or square bracket at ./h.pm line 1, at end of line; "),
        ("false", Some("sub h {}\n0;\n"), "h", "it did not return a true value\n"),
        ("dies", Some("die \"not today\\n\";\n"), "h", "not today\n"),
        ("missing", None, "h", "no such file or directory\n"),
        ("no sub", Some("sub h {}\n1;\n"), "other", "it defines no subroutine main::other\n"),
    ];
    for (case, code, sub, reason) in cases {
        let dir = TempDir::new();
        if let Some(code) = code {
            std::fs::write(dir.join("h.pm"), code).unwrap();
        }
        let o = run(
            Command::new(&ipcperl)
                .arg0("ipcperl")
                .current_dir(dir.path())
                .args(["-c", "2"])
                .arg(dir.join("s"))
                .args(["h.pm", sub]),
            20,
        );
        assert_eq!(o.status.code(), Some(111), "{case}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("ipcperl: fatal: unable to load h.pm: {reason}")), "{case}: {err}");
        assert!(err.contains("ipcperl: fatal: a child exited before serving: stopping\n"), "{case}: {err}");
        for line in err.lines() {
            assert!(line.starts_with("ipcperl: fatal: "), "{case}: one line per message: {err}");
        }
    }
}

#[test]
fn missing_operands_are_usage_errors() {
    let Some(ipcperl) = ipcperl() else { return };
    let dir = TempDir::new();
    let sock = dir.join("s");
    let sock = sock.to_str().unwrap();
    for args in [&[][..], &[sock][..], &[sock, "h.pm"][..]] {
        let o = run(Command::new(&ipcperl).arg0("ipcperl").args(args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), USAGE, "{args:?}");
    }
    assert!(!dir.join("s").exists(), "nothing bound");
}

#[test]
fn the_file_is_loaded_after_the_privilege_drop() {
    let Some(ipcperl) = ipcperl() else { return };
    if !need_root() {
        return;
    }
    let code = r#"
        my $at_load = "$< $> " . (0 + $();
        sub ids { print "$at_load\n"; }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-c", "1", "-u", "65534", "-g", "65534"], &["ids"]);
    assert_eq!(p.ask(""), "65534 65534 65534\n", "{}", p.log());
    p.stop();
}

#[test]
fn a_process_the_handler_forks_does_not_serve() {
    let Some(ipcperl) = ipcperl() else { return };
    // The forked process returns from the handler as its parent does: it
    // must exit there, not accept connections beside the server's child.
    let code = r#"
        sub forks {
            my $pid = fork;
            return unless $pid;
            waitpid $pid, 0;
            print "$$ ", $? >> 8, "\n";
        }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-c", "1"], &["forks"]);
    let first = p.ask("");
    let pid = first.split(' ').next().unwrap().to_string();
    assert_eq!(first, format!("{pid} 0\n"), "the forked process exited 0");
    for _ in 0..5 {
        assert_eq!(p.ask(""), first, "the same child serves");
    }
    p.stop();
}

/// The original ipcperl and ours, side by side (when `UCSPI_IPC_ORIGINAL`
/// names the original's bin/): a handler sees the same arguments, input
/// and %ENV (but IPCCONNNUM, which is ours). With `$|` set, since the
/// original delivers nothing otherwise.
#[test]
fn the_handler_sees_what_the_original_shows() {
    let Some(ours) = ipcperl() else { return };
    let Some(original) = std::env::var_os("UCSPI_IPC_ORIGINAL") else {
        skip("UCSPI_IPC_ORIGINAL is not set");
        return;
    };
    let original = PathBuf::from(original).join("ipcperl");
    let code = r#"
        $| = 1;
        sub show {
            my $line = <STDIN>;
            print "args=", join(",", @_), "\nline=$line";
            # Ours only (s6's and issue 19's variables): left out.
            print map { "$_=$ENV{$_}\n" } grep { !/^IPC(CONNNUM|REMOTEPID|REMOTEGIDLIST)$/ } sort keys %ENV;
            $ENV{FOO} = "changed";
        }
        1;
    "#;
    let answers = |program: &Path| -> Vec<String> {
        let dir = TempDir::new();
        std::fs::write(dir.join("h.pm"), code).unwrap();
        let sock = dir.join("s");
        let mut c = Command::new(program);
        // Invoked by its name, as through PATH: the name its lines start with.
        c.arg0(program.file_name().unwrap());
        c.current_dir(dir.path())
            .env_clear()
            .env("FOO", "bar")
            .args(["-c", "1"])
            .arg(&sock)
            .args(["h.pm", "show", "a", "b c"])
            .stderr(std::fs::File::create(dir.join("log")).unwrap());
        let mut server = Server::start(&mut c, &sock);
        let got = (0..2)
            .map(|i| {
                let mut s = connect(&sock);
                s.write_all(format!("line {i}\n").as_bytes()).unwrap();
                read_all(&mut s).replace(dir.path().to_str().unwrap(), "DIR")
            })
            .collect();
        // The original's children outlive a parent killed by SIGKILL: stop
        // it with SIGTERM, then make sure of its children, by pid.
        let kids = children(server.pid()).0;
        server.signal(15);
        let _ = server.wait(10);
        for k in kids {
            if alive(k) {
                kill(k, 9);
            }
        }
        got
    };
    let (theirs, ours) = (answers(&original), answers(&ours));
    assert!(theirs[0].starts_with("args=a,b c\nline=line 0\nFOO=bar\n"), "{theirs:?}");
    assert_eq!(theirs, ours);
}

/// The child's memory after `n` more connections, minus before (kB).
fn growth(p: &Perl, n: usize) -> i64 {
    assert_eq!(p.ask(""), "ok\n", "a child is serving");
    let kids = children(p.server.pid()).0;
    assert_eq!(kids.len(), 1, "one child");
    let rss = || -> i64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", kids[0])).unwrap();
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let before = rss();
    for _ in 0..n {
        assert_eq!(p.ask(""), "ok\n");
    }
    rss() - before
}

/// Setting %ENV per connection (and restoring it) frees what it
/// allocates: an embedded Perl's default (putenv of new strings) leaks the
/// whole environment twice per connection.
#[test]
fn memory_does_not_grow_with_connections() {
    let Some(ipcperl) = ipcperl() else { return };
    let code = "sub ok { print \"ok\\n\" } 1;\n";
    let mut p = Perl::start(&ipcperl, code, &["-c", "1"], &["ok"]);
    growth(&p, 200);
    let env_size: usize = std::env::vars().map(|(n, v)| n.len() + v.len() + 2).sum();
    let grown = growth(&p, 2000);
    assert!(grown < 1024, "{grown} kB more after 2000 connections (environment: {env_size} bytes)");
    p.stop();
}

/// SIGHUP replaces the children, which load the file again.
#[test]
fn sighup_reloads_the_file() {
    let Some(ipcperl) = ipcperl() else { return };
    let mut p = Perl::start(&ipcperl, "sub v { print \"one\\n\" } 1;\n", &["-c", "2"], &["v"]);
    assert_eq!(p.ask(""), "one\n");
    std::fs::write(p.dir.join("h.pm"), "sub v { print \"two\\n\" } 1;\n").unwrap();
    p.server.signal(1);
    assert!(wait_until(10, || p.ask("") == "two\n"), "{}", p.log());
    for _ in 0..4 {
        assert_eq!(p.ask(""), "two\n", "no child of the old file is left");
    }
    p.stop();
}

#[test]
fn a_handle_opened_lazily_and_kept_in_a_global_lasts() {
    let Some(ipcperl) = ipcperl() else { return };
    // As a database handle would: opened on the first call, used by every
    // later one.
    let code = r#"
        our $log;
        sub note {
            open($log, '>>', 'kept.log') or die "open: $!" unless $log;
            my $line = <STDIN>;
            print {$log} $line or die "print: $!";
            $log->flush or die "flush: $!";
            print "noted\n";
        }
        1;
    "#;
    let mut p = Perl::start(&ipcperl, code, &["-c", "1"], &["note"]);
    for i in 0..3 {
        assert_eq!(p.ask(&format!("line {i}\n")), "noted\n", "{}", p.log());
    }
    assert_eq!(std::fs::read_to_string(p.dir.join("kept.log")).unwrap(), "line 0\nline 1\nline 2\n");
    p.stop();
}
