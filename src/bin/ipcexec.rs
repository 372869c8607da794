//! ipcexec [ -S ] rules.cdb
//!
//! Runs under a server, once per connection, as root: reads one request
//! (a uid and a command line, see [`ucspi_ipc::request`]), looks up the
//! rules for the client and that request, and runs the program as that
//! uid, its primary gid and no other group. Keys are tried in the
//! original's order (`EUID.EGID,UID.CMD`, `EUID,UID.CMD`, `.EGID,UID.CMD`,
//! `,UID.CMD`, then the empty key; with `-S`, `EUID.Gn,UID.CMD` and
//! `.Gn,UID.CMD` for each of the client's supplementary groups, from
//! IPCREMOTEGIDLIST, after the primary gid's); no matching rule means
//! deny (the original allows). An allowed rule's assignments reach the program;
//! `allow="path"` runs path instead; `IPCUID` and `IPCGID` (from the rule
//! or the environment) override the ids; unless `IPCERROUT` is set to a
//! value that does not read as a nonzero number, the program's stderr is
//! its stdout. Each request logs one line,
//! `ipcexec: ok|deny EUID.EGID,UID.CMD`; other messages start with
//! `ipcserver:`, as the original's do.
//!
//! A request that brings the client's descriptors 0, 1 and 2 runs the
//! program on those, in a child, and answers with its wait status.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// One audited use: closing every descriptor above 2 before the program.
#![allow(unsafe_code)]
// A failure carries its message line (1 KiB) back to the one place that
// reports it, once, just before exit; there is no allocator to box it.
#![allow(clippy::result_large_err)]

use core::ffi::CStr;
use rustix::fd::AsFd;
use rustix::process::{Gid, Uid, WaitOptions};
use ucspi_ipc::cdb::Reader;
use ucspi_ipc::client::{self, Client, Verdict};
use ucspi_ipc::env::{self, Env};
use ucspi_ipc::io::Std;
use ucspi_ipc::pty::{Program, Pty};
use ucspi_ipc::request::{self, Fds, Request};
use ucspi_ipc::rules::{self, ApplyError, Key};
use ucspi_ipc::runtime::{self, CStrArray, Never, Start};
use ucspi_ipc::strvec::StrVec;
use ucspi_ipc::userdb::{self, Query};
use ucspi_ipc::{args, exec, io, log, netstring, num, relay, socket, uidgid};

ucspi_ipc::program!(main);

/// How long a client has to send its whole request, by default.
const TIMEOUT_DEFAULT: u32 = 10;

static REQUEST: runtime::Table<[u8; request::BUFFER]> = runtime::Table::new([0; request::BUFFER]);
static RECORD: runtime::Table<[u8; rules::RULES_RECORD_MAX]> = runtime::Table::new([0; rules::RULES_RECORD_MAX]);
static RELAY: runtime::Table<relay::Buffers> = runtime::Table::new(relay::Buffers::new());

fn main(start: Start) -> ! {
    log::init(c"ipcserver", c"[ -S ] rules.cdb ");
    // The original's usage line, with our -S: `ipcserver: usage: ipcexec
    // rules.cdb `.
    log::set_usage_name(c"ipcexec");
    let (supplementary, [path]) = args::flag_and_exact_operands(start.argv, b"S");
    let envp = start.envp;
    let timeout = match env::get(envp, b"IPCEXEC_TIMEOUT") {
        None => TIMEOUT_DEFAULT,
        Some(t) => num::parse_u32(t)
            .filter(|&t| t > 0)
            .unwrap_or_else(|| log::die(log::EXIT_PERMANENT, &[b"invalid IPCEXEC_TIMEOUT: ", t])),
    };
    let client = Client::from_env(envp).unwrap_or_else(|bad| bad.die());
    // With -S, the client as the rules see it has its groups; `None`, a
    // client whose groups are not known, is denied.
    let with_groups = match supplementary {
        false => Some(client),
        true => client.with_groups(client::groups_from_env(envp).unwrap_or_else(|bad| bad.die())),
    };
    let (Some(buf), Some(record)) = (REQUEST.take(), RECORD.take()) else { runtime::exit(log::EXIT_TEMP) };
    let deadline =
        request::Deadline::after(u64::from(timeout), 0).unwrap_or_else(|e| log::die_sys(e, &[b"create a timer"]));
    let (req, fds) = request::read(io::stdin(), buf, &deadline)
        .unwrap_or_else(|bad| log::die(log::EXIT_TEMP, &[b"bad ipc request: ", bad.reason()]));
    // Closed now, before descriptors 0 to 2 are rearranged (it could be 2).
    drop(deadline);
    let with_fds = req.with_fds;
    let Err(failure) = serve(path, envp, (client, with_groups), req, fds, record);
    // A client that sent its descriptors waits for a status: it gets ours.
    if with_fds {
        send_status((failure.code as u32) << 8);
    }
    runtime::exit(failure.code)
}

/// How serving a request ended short of running the program: the exit
/// code. Its message (none for a deny, which the access line says) is
/// written when the failure is made: carried here, its 1 KiB line would be
/// copied through every frame it is returned from, and enlarge them.
struct Failure {
    code: i32,
}

/// `fatal: PIECES...`, exit `code`.
#[cold]
fn fatal(code: i32, pieces: &[&[u8]]) -> Failure {
    if log::verbosity() >= 1 {
        log::die_line(pieces).emit();
    }
    Failure { code }
}

/// `fatal: unable to PIECES...: REASON`, exit 111.
#[cold]
fn fatal_sys(e: rustix::io::Errno, pieces: &[&[u8]]) -> Failure {
    if log::verbosity() >= 1 {
        log::die_sys_line(e, pieces).emit();
    }
    Failure { code: log::EXIT_TEMP }
}

/// Everything after the request is read: the rules, the ids, and running
/// the program, which does not return. Not inlined: its frame (keys of
/// 4 KiB) is touched only once there is a request. `client`: as the
/// environment names it, and as the rules see it (see [`apply_rules`]).
#[inline(never)]
fn serve(
    path: &CStr,
    envp: CStrArray<'static>,
    (client, with_groups): (Client<'static>, Option<Client<'static>>),
    req: Request<'static>,
    fds: Fds,
    record: &'static mut [u8],
) -> Result<Never, Failure> {
    let user = known_user(req.uid)?;
    let env = Env::take();
    env.inherit(envp).map_err(|e| fatal_sys(e, &[b"read environment"]))?;
    let allowed = apply_rules(path, with_groups, &req, record, env)?;
    access_line(allowed.is_some(), client, &req);
    let Some(run_instead) = allowed else { return Err(Failure { code: log::EXIT_PERMANENT }) };

    // IPCUID and IPCGID (the environment's, or the rule's) override the
    // ids; IPCUID alone takes that user's primary gid, never the group of
    // the uid asked for (which could be root's).
    let id = |name: &[u8]| match env.get(name) {
        None => Ok(None),
        Some(v) => {
            uidgid::parse_id(v).map(Some).ok_or_else(|| fatal(log::EXIT_PERMANENT, &[b"invalid ", name, b": ", v]))
        }
    };
    let (uid, gid) = match (id(b"IPCUID")?, id(b"IPCGID")?) {
        (None, None) => (req.uid, user.gid),
        (Some(uid), None) => (uid, known_user(uid)?.gid),
        (uid, Some(gid)) => (uid.unwrap_or(req.uid), gid),
    };
    let ids = (Uid::from_raw(uid), Gid::from_raw(gid));
    let errout = env.get(b"IPCERROUT").is_none_or(decimal_nonzero);

    let argv = StrVec::take();
    for arg in req.args() {
        argv.push_borrowed(arg).map_err(|e| fatal_sys(e, &[b"build the command line"]))?;
    }
    let program = run_instead.unwrap_or(req.args().next().unwrap_or(c""));
    let (argv, envp) = (argv.finish(), env.finish());
    new_session().map_err(|e| fatal_sys(e, &[b"start a new session"]))?;
    if req.with_fds {
        run_with_fds(program, argv, envp, ids, fds, client.euid)
    }
    if errout {
        // Messages go to the client from here on.
        io::replace_std(io::stdout(), Std::Err).map_err(|e| fatal_sys(e, &[b"move stderr to stdout"]))?;
    }
    only_stdio();
    become_user(ids);
    run(program, argv, envp)
}

/// Puts us, and so the program, in a session of our own, with no
/// controlling terminal: a program run for a client must not reach the
/// terminal of whoever started the server (an admin's root shell, where
/// TIOCSTI would type its commands). Under a server we are never a process
/// group leader, and setsid cannot fail; a process that already leads its
/// own session (systemd starts each service so) is where setsid would
/// put it.
fn new_session() -> Result<(), rustix::io::Errno> {
    match rustix::process::setsid() {
        Ok(_) => Ok(()),
        Err(rustix::io::Errno::PERM) if rustix::process::getsid(None)? == rustix::process::getpid() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The user database's entry for `uid`.
fn known_user(uid: u32) -> Result<userdb::User, Failure> {
    let mut digits = [0; num::U64_DIGITS];
    match userdb::find(Query::Uid(uid)) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(fatal(log::EXIT_TEMP, &[b"unknown uid ", num::fmt_u64(uid as u64, &mut digits)])),
        Err(e) => Err(fatal_sys(e, &[b"read /etc/passwd"])),
    }
}

/// Whether a value is "decimal nonzero" as the original reads it: its
/// leading digits, if any, make a number other than 0.
fn decimal_nonzero(v: &[u8]) -> bool {
    v.iter().take_while(|c| c.is_ascii_digit()).any(|&c| c != b'0')
}

/// The rule for this client and request, applied to `env`: `None` for a
/// deny (or no rule, or a client whose groups `-S` asked for and are not
/// known: `client` is `None`), else the program to run instead of the one
/// asked for, if the rule names one.
fn apply_rules(
    path: &CStr,
    client: Option<Client<'_>>,
    req: &Request<'_>,
    record: &'static mut [u8],
    env: &mut Env<'static>,
) -> Result<Option<Option<&'static CStr>>, Failure> {
    let unable = |reason: &[u8]| fatal(log::EXIT_TEMP, &[b"unable to read ", path.to_bytes(), b": ", reason]);
    let mut suffix = Key::new();
    let mut digits = [0; num::U64_DIGITS];
    // A piece that does not fit is not added: the name would be looked up
    // without it (as the empty name), so that is too long as well.
    let mut fits = true;
    for piece in [&b","[..], num::fmt_u64(req.uid as u64, &mut digits), b".", req.program()] {
        fits &= suffix.try_extend_from_slice(piece).is_ok();
    }
    if !fits || suffix.len() > rules::SUFFIX_MAX {
        return Err(fatal(log::EXIT_TEMP, &[b"bad ipc request: program name too long"]));
    }
    let Some(client) = client else { return Ok(None) };
    let rules = Reader::open(path).map_err(|e| unable(e.reason()))?;
    let mut key = Key::new();
    let found = rules::lookup(&rules, client, &suffix, record, &mut key).map_err(|e| unable(e.reason()))?;
    // No rule: deny. The original allows, and so a rules file without a
    // final `:deny` would let every local user run anything as root.
    let Some(found) = found else { return Ok(None) };
    let value: &'static [u8] = &record[found];
    match rules::apply(value, env) {
        Ok(Verdict::Allow(instead)) => Ok(Some(instead)),
        Ok(Verdict::Deny) => Ok(None),
        Err(ApplyError::Malformed) => Err(unable(rules::MALFORMED)),
        Err(ApplyError::Env(name, e)) => Err(fatal_sys(e, &[b"set environment variable ", name])),
    }
}

/// `ipcexec: ok|deny EUID.EGID,UID.CMD` on the server's log.
fn access_line(allowed: bool, client: Client<'_>, req: &Request<'_>) {
    if log::verbosity() == 0 {
        return;
    }
    let mut l = log::Line::named(b"ipcexec");
    l.str(if allowed { b"ok " } else { b"deny " });
    if let Some(u) = client.euid {
        l.num(u as u64);
    }
    l.str(b".");
    if let Some(g) = client.egid {
        l.num(g as u64);
    }
    l.str(b",").num(req.uid as u64).str(b".").sanitised(req.program());
    l.emit();
}

/// Closes every descriptor but 0, 1 and 2, just before the program runs:
/// what the server inherited from whoever started it (a root shell's
/// open files, a supervisor's pipes) must not reach a program run for a
/// client, as another user. Ours are close-on-exec already.
fn only_stdio() {
    // SAFETY: called by the process that becomes the program, after its
    // last use of any descriptor above 2: from here it drops privileges
    // and executes, or writes on 2 and exits, and nothing it still owns
    // (the rules, the client's descriptors moved onto 0 to 2, a
    // pseudo-terminal's) is used or dropped again.
    unsafe { runtime::close_from(3) }
}

/// Drops to `uid`, `gid` and just that group ([`uidgid::become_user`]),
/// or exits 111.
fn become_user((uid, gid): (Uid, Gid)) {
    if let Err((what, e)) = uidgid::become_user(uid, gid) {
        log::die_sys(e, &[what]);
    }
}

/// Executes `program` with `argv` (a PATH search for a name without `/`).
/// On failure the message names the program the client asked for,
/// sanitised: it may reach the server's log.
fn run(program: &CStr, argv: CStrArray<'_>, envp: CStrArray<'_>) -> ! {
    let err = exec::exec_file_search(program, argv, envp, env::get(envp, b"PATH"));
    if log::verbosity() >= 1 {
        let mut line = log::Line::new();
        line.str(b"fatal: unable to run ").sanitised(argv.first().map_or(&b""[..], |a| a.to_bytes()));
        line.str(b": ").errno(err).emit();
    }
    runtime::exit(log::EXIT_TEMP)
}

/// Runs the program on the client's descriptors, in a child, waits for
/// it and sends the client its wait status. If the client passed a
/// terminal and the program runs as another uid than the client's, the
/// program gets a pseudo-terminal of its own in its place, which we
/// relay to the client's ([`ucspi_ipc::pty`]): the client's terminal
/// never reaches another user.
fn run_with_fds(
    program: &CStr,
    argv: CStrArray<'_>,
    envp: CStrArray<'_>,
    ids: (Uid, Gid),
    fds: Fds,
    caller: Option<u32>,
) -> ! {
    let terminals = [0, 1, 2].map(|n| fds.get(n).is_some_and(rustix::termios::isatty));
    let shielded = caller != Some(ids.0.as_raw()) && terminals.contains(&true);
    let pty = match shielded {
        false => None,
        true => {
            let caller_terminal = fds[terminals.iter().position(|&t| t).unwrap_or(0)].as_fd();
            Some(Pty::like(caller_terminal).unwrap_or_else(|(what, e)| log::die_sys(e, &[what])))
        }
    };
    let spawned = runtime::spawn(&mut || {
        // A child is never a group leader: setsid cannot fail here.
        if let Err(e) = rustix::process::setsid() {
            log::die_sys(e, &[b"start a new session"]);
        }
        if let Some(pty) = &pty {
            pty.become_controlling(ids.0).unwrap_or_else(|(what, e)| log::die_sys(e, &[what]));
        }
        for (to, fd) in Std::ALL.into_iter().zip(&fds) {
            let fd = match &pty {
                Some(pty) if terminals[to as usize] => pty.terminal(),
                _ => fd.as_fd(),
            };
            if let Err(e) = io::replace_std(fd, to) {
                log::die_sys(e, &[b"move the client's descriptors"]);
            }
        }
        only_stdio();
        become_user(ids);
        run(program, argv, envp)
    });
    let pid = spawned.unwrap_or_else(|e| log::die_sys(e, &[b"fork"]));
    // The program holds the client's descriptors now; we must not, or a
    // reader of the client's output would wait for us too: we keep only
    // the client's terminals, to relay, if the program has its own.
    let mut kept = [None, None, None];
    for (n, fd) in fds.into_iter().enumerate() {
        if pty.is_some() && terminals[n] {
            kept[n] = Some(fd);
        }
    }
    match pty {
        Some(pty) => relay_terminal(pty, &kept, pid),
        None => watch_client(pid),
    }
    drop(kept);
    let status = loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => break status.as_raw() as u32,
            Err(rustix::io::Errno::INTR) => {}
            Ok(None) | Err(_) => log::die(log::EXIT_TEMP, &[b"unable to wait for the program"]),
        }
    };
    send_status(status);
    runtime::exit(0)
}

/// Relays the program's terminal to the client's (`kept`: its terminal
/// descriptors) until the program exits, the client's terminal restored
/// after. Without pidfds (Linux before 5.3) the program cannot be watched
/// while relaying: it is stopped, and the request fails.
fn relay_terminal(pty: Pty, kept: &[Option<rustix::fd::OwnedFd>; 3], pid: rustix::process::Pid) {
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap_or_else(|e| {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        log::die_sys(e, &[b"watch the program"])
    });
    let input = kept[0].as_ref().map(|fd| fd.as_fd());
    let output = kept[1].as_ref().or(kept[2].as_ref()).map_or(input, |fd| Some(fd.as_fd()));
    let Some(output) = output else { return };
    // The client's process, to follow whether it is in the foreground.
    let client = socket::peer_cred(io::stdin()).ok().and_then(|c| rustix::process::Pid::from_raw(c.pid? as i32));
    let Some(buffers) = RELAY.take() else { return };
    if let Err((what, e)) =
        pty.relay(input, output, Program { pid, pidfd: pidfd.as_fd() }, io::stdin(), client, buffers)
    {
        log::warn_sys(e, &[what]);
    }
}

/// Until the program exits, watches the connection: a client that goes
/// away (nothing more is expected from it) gets its program SIGTERM and
/// SIGCONT, as s6-sudod does, rather than leaving it running unseen.
/// Without pidfds (Linux before 5.3) the program is simply waited for.
fn watch_client(pid: rustix::process::Pid) {
    use rustix::event::{poll, PollFd, PollFlags};
    let Ok(pidfd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else { return };
    loop {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN), PollFd::from_borrowed_fd(io::stdin(), PollFlags::IN)];
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        if !fds[0].revents().is_empty() {
            return;
        }
        let mut scratch = [0u8; 256];
        if matches!(io::read(io::stdin(), &mut scratch), Ok(0) | Err(_)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
            return;
        }
    }
}

/// Room for the reply [`send_status`] writes: a netstring of a u32's
/// digits.
const STATUS_REPLY_MAX: usize = netstring::HEADER_MAX + num::U32_DIGITS + ",".len();

/// Writes a wait status to the client: a netstring of decimal digits.
fn send_status(status: u32) {
    let mut digits = [0; num::U64_DIGITS];
    let digits = num::fmt_u64(status as u64, &mut digits);
    let mut reply = arrayvec::ArrayVec::<u8, STATUS_REPLY_MAX>::new();
    for piece in [&netstring::header(digits.len())[..], digits, b","] {
        ucspi_ipc::bounded::append(&mut reply, piece);
    }
    // A client gone away cannot be told; nothing else to do about it.
    let _ = rustix::net::send(io::stdout(), &reply, rustix::net::SendFlags::NOSIGNAL);
}
