//! The README's examples, read from README.md itself and run as written,
//! so that the README cannot promise what the programs do not do.
//!
//! Which examples run, and how:
//! - A code block of README.md (indented by four spaces, or fenced) is an
//!   example to run when its first line starts with the prompt `$ `. Other
//!   blocks are not run: build and install instructions (`cargo ...`,
//!   `apt-get ...`, `package/install`) and chain diagrams (`prog...`).
//! - In such a block, a line starting with `$ ` is a command; the lines
//!   after it, up to the next command, are what it prints (stdout and
//!   stderr together, as a terminal shows them), and it must exit 0 (an
//!   example that shows a failure shows it with `; echo $?`). Commands read
//!   no input (stdin is /dev/null).
//! - `$ cat FILE` followed by lines shows a file: the test writes those
//!   lines to FILE.
//! - A command that ends in `&` starts a server: the test waits until that
//!   process listens on a socket before the next command, and stops it (by
//!   pid, with its children) at the end.
//! - The commands of a block run one after the other in one `sh`, so that
//!   `cd` and `export` hold for the rest. The blocks whose preceding
//!   paragraph ends with "As root:" run in a root shell; the others in the
//!   user's shell: as nobody (uid and gid 65534) when the tests run as
//!   root, as the user running them otherwise. The sections (`###`) that
//!   have no root block run in order in one user's shell
//!   (`unprivileged_examples`); each section with one gets a root shell and
//!   a user's shell of its own (`examples_that_need_root`, SKIPPED when not
//!   root).
//! - Both shells start in a directory of their own under a temporary one,
//!   with an environment of PATH (our built programs first) and TMPDIR
//!   (that directory, so that `mktemp -d` makes its directory there).
//! - Machine-dependent values: the README says that 1000 stands for your
//!   uid, so the number 1000 is replaced by the uid of the user's shell in
//!   commands, files and output. The system paths of the root examples are
//!   mapped into the temporary directory (`SYSTEM_PATHS`).
use crate::common;

use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The uid of the README's examples, which stands for the reader's own.
const EXAMPLE_UID: &str = "1000";

/// The system directories the root examples name, and where under the
/// temporary directory the test makes them instead: ipcexec's rules
/// directory, and /run for its socket.
const SYSTEM_PATHS: [(&str, &str); 2] = [("/etc/ipcexec/", "etc/ipcexec/"), ("/run/", "run/")];

/// How long one command may take.
const COMMAND_SECS: u64 = 30;

/// Ends every command's output: what the shell prints after it, with the
/// command's exit code (or a server's pid).
const MARKER: &str = "@@readme-done@@ ";

/// A code block of README.md and where it stands.
struct Block {
    /// The heading of the section it is in.
    section: String,
    /// Whether the paragraph before it ends with "As root:".
    as_root: bool,
    lines: Vec<String>,
}

impl Block {
    fn runnable(&self) -> bool {
        self.lines.first().is_some_and(|l| l.starts_with("$ "))
    }
}

/// The code blocks of a markdown text, in order.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut section = String::new();
    let mut before = "";
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let body: Vec<String>;
        if line.starts_with("```") {
            let end = lines[i + 1..].iter().position(|l| l.starts_with("```")).map_or(lines.len(), |n| i + 1 + n);
            body = lines[i + 1..end].iter().map(|l| l.to_string()).collect();
            i = end + 1;
        } else if line.starts_with("    ") && (i == 0 || lines[i - 1].trim().is_empty()) {
            // An indented block goes on over blank lines while indented
            // lines follow them.
            let mut end = i;
            let mut j = i;
            while j < lines.len() && (lines[j].starts_with("    ") || lines[j].trim().is_empty()) {
                if !lines[j].trim().is_empty() {
                    end = j + 1;
                }
                j += 1;
            }
            body = lines[i..end].iter().map(|l| l.get(4..).unwrap_or("").to_string()).collect();
            i = end;
        } else {
            if let Some(heading) = line.strip_prefix('#') {
                section = heading.trim_start_matches('#').trim().to_string();
                before = "";
            } else if !line.trim().is_empty() {
                before = line;
            }
            i += 1;
            continue;
        }
        found.push(Block { section: section.clone(), as_root: before.trim_end().ends_with("As root:"), lines: body });
        before = "";
    }
    found
}

/// The README's runnable examples.
fn examples() -> Vec<Block> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    blocks(&readme).into_iter().filter(Block::runnable).collect()
}

/// One step of a transcript.
#[derive(Debug)]
enum Step {
    /// `$ cat FILE` and its lines: FILE has those contents.
    Write { file: String, contents: String },
    /// `$ COMMAND &`: a server to start.
    Start { command: String },
    /// `$ COMMAND` and the output it prints.
    Run { command: String, output: String },
}

/// The steps of a runnable block.
fn steps(block: &Block) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < block.lines.len() {
        let command = block.lines[i].strip_prefix("$ ").expect("a runnable block starts with a command").to_string();
        let shown = block.lines[i + 1..].iter().take_while(|l| !l.starts_with("$ ")).count();
        let output: String = block.lines[i + 1..i + 1 + shown].iter().map(|l| format!("{l}\n")).collect();
        i += 1 + shown;
        let file = command.strip_prefix("cat ").filter(|f| !f.contains(|c: char| " \t;&|<>$'\"`*?".contains(c)));
        steps.push(match file {
            Some(file) => Step::Write { file: file.to_string(), contents: output },
            None if command.ends_with('&') => {
                assert!(
                    output.is_empty(),
                    "{}: `{command}` starts a server but shows output:\n{output}",
                    block.section
                );
                Step::Start { command }
            }
            None => Step::Run { command, output },
        });
    }
    steps
}

/// `text` as it reads on this machine: the example uid replaced by `uid`
/// wherever it is a number of its own, and the system paths, where a
/// word starts with them, moved under `dir`.
fn localise(text: &str, uid: u32, dir: &Path) -> String {
    let digit = |c: char| c.is_ascii_digit();
    let mut out = replace_where(text, EXAMPLE_UID, &uid.to_string(), |before, after| {
        !before.is_some_and(digit) && !after.starts_with(digit)
    });
    for (system, local) in SYSTEM_PATHS {
        let moved = format!("{}/{local}", dir.display());
        out = replace_where(&out, system, &moved, |before, _| before.is_none_or(|c| " \t\n='\"<>".contains(c)));
    }
    out
}

/// `text` with `pattern` replaced by `with` where `applies` says so, given
/// the character before the match (after the replacements made so far)
/// and the text after it.
fn replace_where(text: &str, pattern: &str, with: &str, applies: impl Fn(Option<char>, &str) -> bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(pattern) {
        out.push_str(&rest[..at]);
        rest = &rest[at + pattern.len()..];
        out.push_str(if applies(out.chars().next_back(), rest) { with } else { pattern });
    }
    out.push_str(rest);
    out
}

/// The user the non-root examples run as: nobody when the tests run as
/// root, else the user running them.
fn unprivileged_user() -> (u32, u32) {
    if is_root() {
        (NOBODY, NOBODY)
    } else {
        own_ids()
    }
}

/// A `sh` that runs the examples' commands one at a time, as one user, in
/// a directory of that user's own; the servers it starts are stopped and
/// the shell ended when it is dropped.
struct Shell {
    child: Child,
    commands: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    unread: Vec<u8>,
    servers: Vec<i32>,
    /// The uid that the example uid stands for.
    uid: u32,
    /// The temporary directory, for the system paths.
    top: PathBuf,
}

impl Shell {
    /// A shell as `user` (None: as we are), in the new directory `dir`
    /// under `top`, where the example uid stands for `uid`.
    fn start(user: Option<(u32, u32)>, uid: u32, top: &Path, dir: &str) -> Shell {
        let home = top.join(dir);
        std::fs::create_dir(&home).unwrap();
        let mut c = match user {
            Some((uid, gid)) => {
                std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
                let mut c = cmd("ipcapplyuidgid");
                c.args(["-u", &uid.to_string(), "-g", &gid.to_string(), "sh"]);
                c
            }
            None => Command::new("sh"),
        };
        let mut path = vec![bin("ipcserver").parent().unwrap().to_path_buf()];
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        c.env_clear()
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("TMPDIR", &home)
            .current_dir(&home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(top.join(format!("{dir}.log"))).unwrap());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
        let commands = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (send, output) = channel();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if send.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Shell { child, commands, output, unread: Vec::new(), servers: Vec::new(), uid, top: top.to_path_buf() }
    }

    /// What the shells of this directory, and the servers they started,
    /// wrote on stderr: a client's failure may be in a server's log.
    fn log(&self) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.top)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        logs.iter().map(|l| format!("{}:\n{}", l.display(), std::fs::read_to_string(l).unwrap_or_default())).collect()
    }

    /// Sends `script` to the shell, followed by a line that prints the
    /// marker and `$VALUE`; returns what the shell printed before it, and
    /// that value.
    fn send(&mut self, script: &str, value: &str, what: &str) -> (String, String) {
        let text = format!("{script}\nprintf '{MARKER}%s\\n' \"${value}\"\n");
        let commands = self.commands.as_mut().unwrap();
        commands.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("{what}: the shell is gone ({e})"));
        let end = Instant::now() + Duration::from_secs(COMMAND_SECS);
        loop {
            let text = String::from_utf8_lossy(&self.unread).into_owned();
            if let Some(at) = text.find(MARKER) {
                if let Some(eol) = text[at..].find('\n') {
                    self.unread = text.as_bytes()[at + eol + 1..].to_vec();
                    return (text[..at].to_string(), text[at + MARKER.len()..at + eol].to_string());
                }
            }
            match self.output.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(bytes) => self.unread.extend(bytes),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{what}: no end after {COMMAND_SECS}s; printed so far:\n{text}\nlogs:\n{}", self.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{what}: the shell exited; printed:\n{text}\nlogs:\n{}", self.log())
                }
            }
        }
    }

    /// Runs one step of `section`.
    fn step(&mut self, section: &str, step: &Step) {
        let (uid, top) = (self.uid, self.top.clone());
        let here = |text: &str| localise(text, uid, &top);
        match step {
            Step::Write { file, contents } => {
                let file = here(file);
                let what = format!("{section}: writing {file}");
                let script = format!("cat > {file} <<'@@readme-eof@@'\n{}@@readme-eof@@", here(contents));
                let (printed, status) = self.send(&script, "?", &what);
                assert_eq!((printed.as_str(), status.as_str()), ("", "0"), "{what}; logs:\n{}", self.log());
            }
            Step::Start { command } => {
                let command = here(command);
                let what = format!("{section}: $ {command}");
                let (printed, pid) = self.send(&command, "!", &what);
                assert_eq!(printed, "", "{what}");
                let pid: i32 = pid.parse().unwrap();
                self.servers.push(pid);
                let listening = wait_until(COMMAND_SECS, || {
                    assert!(alive(pid), "{what}: the server exited; logs:\n{}", self.log());
                    listens(pid)
                });
                assert!(listening, "{what}: no socket listening after {COMMAND_SECS}s; logs:\n{}", self.log());
            }
            Step::Run { command, output } => {
                let command = here(command);
                let what = format!("{section}: $ {command}");
                let (printed, status) = self.send(&format!("{{ {command}\n}} </dev/null 2>&1"), "?", &what);
                assert!(
                    printed == here(output) && status == "0",
                    "{what}\nshown in README.md:\n{}printed (exit code {status}):\n{printed}logs:\n{}",
                    here(output),
                    self.log()
                );
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // The servers stop on SIGTERM, as under a supervisor; then
        // whatever else the shell started and is left (a handler, a
        // command that hung) is killed. Only the shell's own children
        // count as servers: a pid it has reaped may be someone else's now.
        let shell = self.child.id() as i32;
        let started = descendants(shell);
        let ours = children(shell).0;
        for &pid in self.servers.iter().filter(|pid| ours.contains(pid) && alive(**pid)) {
            kill(pid, 15);
            wait_until(5, || !alive(pid));
        }
        for pid in started.into_iter().filter(|&pid| alive(pid)) {
            kill(pid, 9);
        }
        // The shell reaps its children before it ends: no zombie is left
        // to init.
        if let Some(mut commands) = self.commands.take() {
            let _ = commands.write_all(b"wait\n");
        }
        if wait_timeout(&mut self.child, 10).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether process `pid` holds a listening Unix socket.
fn listens(pid: i32) -> bool {
    const ACCEPTCON: &str = "00010000";
    let listening: Vec<String> = std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 7 && f[3] == ACCEPTCON).then(|| format!("socket:[{}]", f[6]))
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| listening.iter().any(|s| l.as_os_str() == s.as_str()))
        })
    })
}

/// The sections of `examples` in order, each with its blocks.
fn sections(examples: &[Block]) -> Vec<(&str, Vec<&Block>)> {
    let mut found: Vec<(&str, Vec<&Block>)> = Vec::new();
    for b in examples {
        match found.last_mut() {
            Some((name, blocks)) if *name == b.section => blocks.push(b),
            _ => found.push((&b.section, vec![b])),
        }
    }
    found
}

/// The sections without a root example, in order, in one user's shell: a
/// server started in one section serves the clients of the next.
#[test]
fn unprivileged_examples() {
    let examples = examples();
    let unprivileged: Vec<_> = sections(&examples).into_iter().filter(|(_, b)| b.iter().all(|b| !b.as_root)).collect();
    assert!(!unprivileged.is_empty(), "no runnable example in README.md");
    let d = TempDir::new();
    let user = unprivileged_user();
    let mut shell = Shell::start(is_root().then_some(user), user.0, d.path(), "user");
    for (name, blocks) in unprivileged {
        for step in blocks.iter().flat_map(|b| steps(b)) {
            shell.step(name, &step);
        }
    }
}

/// Each section with a root example, in a root shell and a user's shell
/// of its own.
#[test]
fn examples_that_need_root() {
    let examples = examples();
    let privileged: Vec<_> = sections(&examples).into_iter().filter(|(_, b)| b.iter().any(|b| b.as_root)).collect();
    assert!(!privileged.is_empty(), "no example marked \"As root:\" in README.md");
    if !need_root() {
        return;
    }
    for (name, blocks) in privileged {
        let d = TempDir::new();
        for (_, local) in SYSTEM_PATHS {
            std::fs::create_dir_all(d.join(local)).unwrap();
        }
        // In both shells the example uid is the user's: root writes the
        // rules that name it.
        let (uid, gid) = unprivileged_user();
        let mut root = Shell::start(None, uid, d.path(), "root");
        let mut user = Shell::start(Some((uid, gid)), uid, d.path(), "user");
        for block in blocks {
            let shell = if block.as_root { &mut root } else { &mut user };
            for step in steps(block) {
                shell.step(name, &step);
            }
        }
    }
}

/// The block rules of the doc comment, on a small text: sections, the
/// root marker, blank lines inside a block, fenced blocks.
/// The examples call the programs by name: before the first of them, the
/// README says where the names come from (this test puts our build first
/// in PATH; a reader must install the programs or do the same).
#[test]
fn the_examples_say_where_the_programs_come_from() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let first = readme.find("\n### A server").expect("the section A server");
    let before = &readme[readme[..first].rfind("\n\n").unwrap_or(0)..first];
    for needle in ["package/install", "target/release", "PATH"] {
        assert!(before.contains(needle), "the paragraph before \"A server\" does not mention {needle}:{before}");
    }
}

#[test]
fn blocks_are_found_with_their_section_and_user() {
    let text = "# Title\n\n    not a prompt\n\n## Part\n\nAs root:\n\n    $ one\n    out\n\n    $ two\n\nThen:\n\n```\n$ three\n```\n";
    let found = blocks(text);
    let seen: Vec<(&str, bool, Vec<&str>)> =
        found.iter().map(|b| (b.section.as_str(), b.as_root, b.lines.iter().map(String::as_str).collect())).collect();
    assert_eq!(
        seen,
        [
            ("Title", false, vec!["not a prompt"]),
            ("Part", true, vec!["$ one", "out", "", "$ two"]),
            ("Part", false, vec!["$ three"]),
        ]
    );
    assert_eq!(found.iter().filter(|b| b.runnable()).count(), 2);
}

/// 1000 only as a number of its own; system paths only where a word
/// starts with them.
#[test]
fn example_uid_and_system_paths_are_localised() {
    let dir = Path::new("/tmp/x");
    assert_eq!(
        localise("uid 1000, 10000, 10001000, 1000.1000,0.id cat /etc/ipcexec/rules IPCEXEC_SOCKET=/run/ipcexec.sock /var/run/x", 65534, dir),
        "uid 65534, 10000, 10001000, 65534.65534,0.id cat /tmp/x/etc/ipcexec/rules IPCEXEC_SOCKET=/tmp/x/run/ipcexec.sock /var/run/x"
    );
}
