//! ipcaccept [ -XShHoOdDqQvpP ] [ -x rules.cdb ] [ -B banner ] [ -l localname ] [ -f lockfile ] program...
//!
//! ucspi-ipc 0.70's acceptor, typically an instance of ipclisten: accepts
//! connections on the listening socket on descriptor 0, one at a time.
//! For each it forks a child that puts the connection on descriptors 0
//! and 1, writes the banner, applies the rules (a deny exits 100) and
//! executes into program with PROTO, IPCLOCALPATH, IPCREMOTEPATH,
//! IPCREMOTEEUID, IPCREMOTEEGID, IPCREMOTEPID and IPCREMOTEGIDLIST set
//! (and the rule's variables); it
//! waits for that child before it accepts again. With -f it accepts only
//! while it holds an exclusive lock on lockfile, so that the instances of
//! one ipclisten take turns.
//!
//! It waits for a connection and for its child in poll, SIGTERM and
//! SIGCHLD coming through a signalfd: SIGTERM exits 0, the child serving
//! on, as the original's. Taking the lock and accepting are done once a
//! connection is waiting, with SIGTERM unblocked: should either block
//! (another process holds the lock, or took the connection), SIGTERM ends
//! us there by its default action.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// One audited use: fork.
#![allow(unsafe_code)]

use core::ffi::CStr;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::OwnedFd;
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::process::Signal;
use ucspi_ipc::children::{Children, Signals};
use ucspi_ipc::connection::{self, Access, GroupsBuf, Peer};
use ucspi_ipc::env::Env;
use ucspi_ipc::io::Std;
use ucspi_ipc::lockfile::LockFile;
use ucspi_ipc::rules::{self, Dropped};
use ucspi_ipc::runtime::{self, CStrArray, Forked, SigSet, Start, Table};
use ucspi_ipc::server_options::ConnectionOptions;
use ucspi_ipc::socket::{self, Inherited, SockPath};
use ucspi_ipc::{args::Getopt, exec, io, log};

ucspi_ipc::program!(main);

/// The rule's record, in .bss (see [`Table`]); each child reads its own
/// copy.
static RECORD: Table<[u8; rules::RULES_RECORD_MAX]> = Table::new([0; rules::RULES_RECORD_MAX]);

/// How long accepting pauses after it failed (out of descriptors, say).
const BACKOFF_MS: i64 = 100;

/// What every connection's child needs.
struct Server<'s> {
    o: &'s ConnectionOptions,
    prog: CStrArray<'static>,
    local: &'s [u8],
}

fn main(start: Start) -> ! {
    log::init(
        c"ipcaccept",
        c"[ -XShHoOdDqQvpP ] [ -x rules.cdb ] [ -B banner ] [ -l localname ] [ -f lockfile ] program",
    );
    let mut o = ConnectionOptions::new();
    let mut opts = Getopt::new(start.argv, b"XShHoOdDqQvpPx:B:l:f:");
    for opt in opts.by_ref() {
        if !o.read(&opt) {
            log::usage();
        }
    }
    // As the original's, the verbosity is for connections: a usage or
    // set-up error is said even under -q.
    if opts.operand_count() == 0 {
        log::usage();
    }
    // Created with the original's mode, first, as the original.
    let lock = o.lockfile.map(|path| LockFile::open(path, Some(Mode::from_bits_truncate(0o600))));
    let listener = Inherited::stdin();
    let local = o.localname.map_or(&listener.local[..], CStr::to_bytes);
    let env = Env::take();
    if let Err(e) = connection::server_env(env, start.envp, local) {
        log::die_sys(e, &[b"build the environment"]);
    }
    let base = env.mark();
    let record = RECORD.take().unwrap_or_else(|| runtime::exit(log::EXIT_TEMP));
    let signals = Signals::new(SigSet::EMPTY.with(Signal::TERM).with(Signal::CHILD), BLOCKED_TOO);
    let groups = GroupsBuf::take();
    let mut child = Children::take(1).without_status_lines();
    let server = Server { o: &o, prog: opts.operands(), local };
    log::set_verbosity(o.verbosity);
    if o.peercred {
        connection::probe_groups(listener.fd);
    }
    loop {
        let Some((conn, remote)) = accept(&listener, lock.as_ref(), &signals) else { continue };
        let Some(peer) = Peer::accepted(&conn, &remote, o.peercred, groups) else { continue };
        env.truncate(base);
        if !peer.pushed_env(env, None) {
            continue;
        }
        // SAFETY: this program is single-threaded and links no C library.
        match unsafe { runtime::fork() } {
            Ok(Forked::Child) => server.serve(conn, &peer, env, record),
            Ok(Forked::Parent(pid)) => {
                drop(conn);
                child.add(pid, 0);
            }
            Err(e) => log::warn_sys(e, &[b"fork"]),
        }
        // One connection at a time: wait for its child.
        while !child.is_empty() {
            signals.wait(None);
            signals.drain(stop_on_term);
            child.reap(|_, _| {});
        }
    }
}

/// Blocked, besides the signals read from the signalfd: SIGPIPE, so that
/// a closed log pipe is an error for us and not a death.
const BLOCKED_TOO: SigSet = SigSet::EMPTY.with(Signal::PIPE);

/// SIGTERM: exit 0, as the original (a child serves on).
fn stop_on_term(signal: Signal) {
    if signal == Signal::TERM {
        runtime::exit(0)
    }
}

/// Waits for a connection (or SIGTERM) and accepts it, under the lock if
/// any: the connection and the client's path; `None` when there was none
/// to take after all (another process was quicker) or accept failed.
fn accept(listener: &Inherited, lock: Option<&LockFile>, signals: &Signals) -> Option<(OwnedFd, SockPath)> {
    let sigfd = signals.fd();
    let mut fds = [PollFd::new(&sigfd, PollFlags::IN), PollFd::new(&listener.fd, PollFlags::IN)];
    match poll(&mut fds, None) {
        Ok(_) | Err(Errno::INTR) => {}
        Err(e) => log::die_sys(e, &[b"poll"]),
    }
    if !fds[0].revents().is_empty() {
        signals.drain(stop_on_term);
    }
    if fds[1].revents().is_empty() {
        return None;
    }
    let accepted = with_term_unblocked(|| {
        if let Some(lock) = lock {
            lock.lock();
            // Another instance may have taken it while we waited for the
            // lock: accept only what is still there, rather than hold the
            // lock waiting for the next one.
            let now = Timespec { tv_sec: 0, tv_nsec: 0 };
            let mut waiting = [PollFd::new(&listener.fd, PollFlags::IN)];
            if !matches!(poll(&mut waiting, Some(&now)), Ok(1)) {
                lock.unlock();
                return Err(Errno::AGAIN);
            }
        }
        let accepted = socket::accept(listener.fd);
        if let Some(lock) = lock {
            lock.unlock();
        }
        accepted
    });
    match accepted {
        Ok(connection) => Some(connection),
        Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => None,
        Err(e) => {
            log::warn_sys(e, &[b"accept"]);
            let _ = rustix::thread::nanosleep(&Timespec { tv_sec: 0, tv_nsec: BACKOFF_MS * 1_000_000 });
            None
        }
    }
}

/// Runs `f` with SIGTERM unblocked, at its default action (the rest of
/// the mask, the launcher's included, as it is).
fn with_term_unblocked<T>(f: impl FnOnce() -> T) -> T {
    let term = SigSet::EMPTY.with(Signal::TERM);
    let _ = runtime::unblock_signals(term);
    let r = f();
    let _ = runtime::block_signals(term);
    r
}

impl Server<'_> {
    /// In the child: serves the connection, or exits (100 for a deny, 111
    /// when it cannot).
    fn serve(
        &self,
        conn: OwnedFd,
        peer: &Peer<'_>,
        env: &mut Env<'static>,
        record: &'static mut [u8; rules::RULES_RECORD_MAX],
    ) -> ! {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        if log::verbosity() >= 2 {
            connection::log_pid_from(pid, peer.remote);
        }
        // The listening socket on 0 is not used here again.
        if let Err(e) = io::install_std(conn, &[Std::In, Std::Out]) {
            log::die_dropping_sys(e, &[b"move the connection to descriptors 0 and 1"]);
        }
        let access = Access { name: log::name(), pid, local: self.local };
        let admitted = connection::admit(self.o.banner(), self.o.rules_file(), peer, access, record, env);
        match admitted {
            Ok(true) => {}
            Ok(false) => runtime::exit(log::EXIT_PERMANENT),
            Err(Dropped) => runtime::exit(log::EXIT_TEMP),
        }
        if let Err(e) = runtime::set_signal_mask(SigSet::EMPTY) {
            log::die_dropping_sys(e, &[b"clear the signal mask"]);
        }
        exec::exec_or_drop(self.prog, env.finish())
    }
}
