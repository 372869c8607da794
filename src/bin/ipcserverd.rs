//! ipcserverd [ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] [ -C localmaxconn ] [ -N name ] prog...
//!
//! The long-lived daemon of the server chain. Descriptor 0 is a bound,
//! listening Unix stream socket; for each connection it starts prog... with
//! the connection on descriptors 0 and 1 and the UCSPI-IPC variables in its
//! environment, keeping at most maxconn children (and localmaxconn per uid).
//! Signals arrive through signalfds. A connection costs accept, a
//! credential lookup, one clone and the child's dup2/exec, and no
//! allocation. The child is spawned vfork-style, unless another connection
//! is already waiting: then it is started the way the machine serves
//! faster at that moment, fork or vfork, as measured while serving
//! ([`SpawnPolicy`]).
//!
//! Each child's exit wakes the daemon, which collects it, unless its CPU
//! is contended (the daemon was preempted more than once in 20
//! connections of the policy's last window): then, while connections
//! keep coming, children that have exited are collected as the next
//! connection is accepted, without a wake of their own (at one client
//! that wake came between every two connections, and with one CPU taken
//! it cost 8% of them; on a quiet machine it costs nothing, and leaving it
//! out cost 5%, measured). After [`REAP_AFTER_MS`] without a connection,
//! or when no more can be accepted, each exit wakes it again: an exited
//! child does not wait longer than that to be collected (and logged, at
//! verbosity 2), and an idle daemon does not wake for nothing.
//!
//! Fairness and robustness: at most [`ACCEPTS_PER_ROUND`] connections are
//! accepted between two looks at the signals, and exited children are
//! reaped before a connection is refused for a per-uid limit, so a flood
//! from one uid cannot starve the others; when the system runs out of
//! descriptors or memory, accepting pauses (until a child exits or
//! [`BACKOFF_MS`] pass) with one warning per shortage, and the daemon never
//! exits for it.
//!
//! The log lines of a connection are written by its child before it
//! executes prog (`status`, `pid ... from`, and at verbosity 3 the access
//! line), so they always come before anything prog or a later link writes.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// One audited use: fork, for a connection the spawn policy forks.
#![allow(unsafe_code)]

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::Signal;
use ucspi_ipc::children::{self, Children, Signals};
use ucspi_ipc::connection::{self, Access, GroupsBuf, Peer};
use ucspi_ipc::env::{Env, Mark};
use ucspi_ipc::io::Std;
use ucspi_ipc::runtime::{self, CStrArray, Forked, SigSet, Start};
use ucspi_ipc::socket::{Inherited, SockPath};
use ucspi_ipc::spawn_policy::{Reading, Spawn, SpawnPolicy};
use ucspi_ipc::{args::Getopt, exec, io, log, socket};

ucspi_ipc::program!(main);

/// Most connections accepted between two looks at the signals.
const ACCEPTS_PER_ROUND: usize = 64;
/// How long accepting pauses after the system ran out of a resource,
/// unless a child exits first.
const BACKOFF_MS: i64 = 100;
/// How long children that have exited may wait to be collected while
/// connections keep coming.
const REAP_AFTER_MS: i64 = 10;

/// The way to start a child: the policy's ([`SpawnPolicy`]), unless the
/// build fixed one (see build.rs: for measuring each alone).
fn spawn_way(policy: &mut SpawnPolicy, waiting: bool) -> Spawn {
    let way = policy.way(waiting, || Reading { ns: monotonic_ns(), preempted: runtime::preemptions() });
    if cfg!(ipcserverd_spawn = "fork") {
        Spawn::Fork
    } else if cfg!(ipcserverd_spawn = "vfork") {
        Spawn::Vfork
    } else {
        way
    }
}

/// The monotonic clock, in nanoseconds.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The daemon's state. The child table and the environment are large
/// fixed-capacity arrays kept in `.bss` (see [`runtime::Table`]).
struct Server {
    listener: BorrowedFd<'static>,
    /// Whether accept can be retried until EAGAIN (non-blocking socket).
    nonblocking: bool,
    peercred: bool,
    localmax: usize,
    /// The running children, tagged with their client's uid.
    children: Children,
    /// Where each client's groups are read.
    groups: &'static mut GroupsBuf,
    /// The environment of every child up to `base`; per connection only
    /// the remote variables are added after it.
    env: &'static mut Env<'static>,
    base: Mark,
    prog: CStrArray<'static>,
    path_var: Option<&'static [u8]>,
    local: SockPath,
    /// Accepting is paused after a resource shortage.
    paused: bool,
    /// How children start.
    policy: SpawnPolicy,
    /// The current shortage was logged (once per episode).
    shortage_logged: bool,
    /// No connection came for [`REAP_AFTER_MS`].
    idle: bool,
}

fn main(start: Start) -> ! {
    log::init(
        c"ipcserverd",
        c"[ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] [ -C localmaxconn ] [ -N name ] prog...",
    );
    let mut ready = false;
    let mut peercred = true;
    let mut maxconn = 40;
    let mut localmax = None;
    let mut opts = Getopt::new(start.argv, b"1v:Ppc:C:N:");
    for o in opts.by_ref() {
        match o.letter {
            b'1' => ready = true,
            b'v' => log::set_verbosity(o.number(0, 255) as u8),
            b'P' => peercred = false,
            b'p' => peercred = true,
            b'c' => maxconn = o.number(1, children::MAX as u32) as usize,
            b'C' => localmax = Some(o.number(1, children::MAX as u32) as usize),
            b'N' => log::set_name(o.arg),
            _ => log::usage(),
        }
    }
    if opts.operand_count() == 0 {
        log::usage();
    }
    let Inherited { fd: listener, nonblocking, local } = Inherited::stdin();
    if peercred {
        connection::probe_groups(listener);
    }

    let env = Env::take();
    if let Err(e) = connection::server_env(env, start.envp, &local) {
        log::die_sys(e, &[b"build the environment"]);
    }
    let base = env.mark();

    // Children start with the signals we use at default, whatever our
    // launcher left ignored (SIGPIPE, SIGCHLD...), and an empty mask; the
    // others stay as the launcher left them (SIGINT ignored under `&`), as
    // with the original and s6, and so do the requests it left ignored
    // (SIGHUP under nohup), which we then ignore too. SIGPIPE is blocked
    // rather than ignored, so that a closed log pipe is an error for us
    // and not a death.
    let requests = SigSet::EMPTY.with(Signal::HUP).with(Signal::QUIT).with(Signal::ABORT);
    let handled = children::heeded(requests).with(Signal::TERM);
    let signals = Signals::new(handled, SigSet::EMPTY.with(Signal::PIPE).with(Signal::CHILD));
    let exits = Signals::apart(SigSet::EMPTY.with(Signal::CHILD));

    if ready {
        socket::notify_ready(&local);
    }
    // Let go of stdout (a notification pipe, say), and keep descriptor 1
    // busy with a second reference to the listening socket rather than
    // closed, so that no connection is ever accepted onto it. Children get
    // their connection on 0 and 1 instead.
    if let Err(e) = io::replace_std(listener, Std::Out) {
        log::die_sys(e, &[b"replace standard output"]);
    }

    let mut server = Server {
        listener,
        nonblocking,
        peercred,
        localmax: localmax.unwrap_or(maxconn).min(maxconn),
        children: Children::take(maxconn),
        groups: GroupsBuf::take(),
        env,
        base,
        prog: opts.operands(),
        path_var: ucspi_ipc::env::get(start.envp, b"PATH"),
        local,
        paused: false,
        policy: SpawnPolicy::new(),
        shortage_logged: false,
        idle: true,
    };
    children::log_status(0, maxconn);
    server.run(&signals, &exits)
}

impl Server {
    /// `requests` are the signals that ask for something, `exits` reads
    /// SIGCHLD.
    fn run(&mut self, requests: &Signals, exits: &Signals) -> ! {
        let backoff = rustix::event::Timespec { tv_sec: 0, tv_nsec: BACKOFF_MS * 1_000_000 };
        let reap_after = rustix::event::Timespec { tv_sec: 0, tv_nsec: REAP_AFTER_MS * 1_000_000 };
        let (listener, requests_fd, exits_fd) = (self.listener, requests.fd(), exits.fd());
        loop {
            let accepting = !self.paused && !self.children.is_full();
            let hear_exits = self.idle || !accepting || !self.policy.contended();
            // In this order, the descriptors polled are a slice.
            let mut fds = [
                PollFd::new(&listener, PollFlags::IN),
                PollFd::new(&requests_fd, PollFlags::IN),
                PollFd::new(&exits_fd, PollFlags::IN),
            ];
            let polled = match (accepting, hear_exits) {
                (true, false) => 0..2,
                (true, true) => 0..3,
                (false, _) => 1..3,
            };
            let timeout = if self.paused {
                Some(&backoff)
            } else if !hear_exits && !self.children.is_empty() {
                Some(&reap_after)
            } else {
                None
            };
            match poll(&mut fds[polled], timeout) {
                Ok(0) if self.paused => self.paused = false,
                // No connection for a while: collect, and hear exits.
                Ok(0) => {
                    self.reap();
                    self.idle = true;
                }
                Ok(_) | Err(Errno::INTR) => {}
                // More descriptors polled than RLIMIT_NOFILE allows, or no
                // memory: a shortage like any other. Wait, then look at
                // the signals without poll.
                Err(e @ (Errno::INVAL | Errno::NOMEM)) => {
                    self.shortage(e, b"poll");
                    let _ = rustix::thread::nanosleep(&backoff);
                    self.handle_signals(requests);
                    self.collect_exits(exits);
                    continue;
                }
                Err(e) => log::die_sys(e, &[b"poll"]),
            }
            let connecting = accepting && !fds[0].revents().is_empty();
            let signalled = !fds[1].revents().is_empty();
            let exited = hear_exits && !fds[2].revents().is_empty();
            if signalled {
                self.handle_signals(requests);
            }
            if exited {
                self.collect_exits(exits);
            }
            if connecting {
                // Exits that did not wake us: collect them first.
                if !hear_exits {
                    self.reap();
                }
                let after_idle = core::mem::replace(&mut self.idle, false);
                self.accept_some(after_idle);
            }
        }
    }

    /// Accepts while under the limit: on a non-blocking socket while
    /// another connection is waiting (at most [`ACCEPTS_PER_ROUND`]), once
    /// on a blocking one (poll said it would not block). On a
    /// non-blocking socket it accepts one connection ahead, if one is
    /// waiting: whether one was decides how the current one's child
    /// starts ([`SpawnPolicy`]). `after_idle`: the first connection for a
    /// while.
    fn accept_some(&mut self, after_idle: bool) {
        if self.children.is_full() {
            return;
        }
        let mut next = self.accept_one();
        let mut accepted = 0;
        while let Some((conn, remote)) = next {
            accepted += 1;
            // Room for this one and the next, and a look ahead allowed.
            let ahead =
                self.nonblocking && accepted < ACCEPTS_PER_ROUND && self.children.len() + 1 < self.children.max();
            // Within a burst (the last look found one) an accept says it
            // at once; a poll first only where none was waiting. No look
            // while connections come one at a time (no other child runs,
            // and none has been idle): a lone client's connections would
            // each pay a system call for it.
            let alone = !after_idle && self.children.is_empty();
            let look = ahead && (accepted > 1 || (!alone && self.another_waiting()));
            next = if look { self.accept_one() } else { None };
            let way = spawn_way(&mut self.policy, next.is_some());
            self.serve(conn, &remote, way);
        }
    }

    /// Whether another connection is waiting, by a poll that does not
    /// wait. (An accept that fails with EAGAIN says the same, but made
    /// each connection about 4% slower at one client, where it always
    /// failed, measured.)
    fn another_waiting(&self) -> bool {
        let mut fds = [PollFd::new(&self.listener, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(1))
    }

    /// One connection, if one is waiting; `None` also after an error,
    /// which it reports (a shortage pauses accepting).
    fn accept_one(&mut self) -> Option<(OwnedFd, SockPath)> {
        match socket::accept(self.listener) {
            Ok(accepted) => {
                self.shortage_logged = false;
                Some(accepted)
            }
            // Gone before we took it, or a signal: poll says whether
            // another is there.
            Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => None,
            Err(e @ (Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) => {
                self.shortage(e, b"accept");
                self.paused = true;
                None
            }
            Err(e) => {
                log::warn_sys(e, &[b"accept"]);
                None
            }
        }
    }

    /// Logs a resource shortage once per episode (until a connection is
    /// accepted again).
    fn shortage(&mut self, e: Errno, what: &[u8]) {
        if !self.shortage_logged {
            log::warn_sys(e, &[what]);
            self.shortage_logged = true;
        }
    }

    fn serve(&mut self, conn: OwnedFd, remote: &[u8], how: Spawn) {
        let Some(peer) = Peer::accepted(&conn, remote, self.peercred, self.groups) else { return };
        let tag = peer.uid_tag();
        let mut others = self.children.count(tag);
        if connection::over_local_limit(others, self.localmax) {
            // Children of this uid may have exited since the last look at
            // the signals: count again before refusing.
            reap(&mut self.children, &mut self.paused);
            others = self.children.count(tag);
            if connection::over_local_limit(others, self.localmax) {
                return connection::refuse(&peer, self.localmax);
            }
        }
        self.env.truncate(self.base);
        if !peer.pushed_env(self.env, Some(others)) {
            return;
        }
        let envp = self.env.finish();
        let (prog, path_var) = (self.prog, self.path_var);
        let (count, maxconn, local) = (self.children.len() + 1, self.children.max(), &self.local);
        let conn_fd = conn.as_fd();
        let child = || -> ! {
            if log::verbosity() >= 2 {
                child_log(count, maxconn, local, &peer);
            }
            if let Err(e) = io::replace_std(conn_fd, Std::In).and_then(|()| io::replace_std(conn_fd, Std::Out)) {
                log::die_dropping_sys(e, &[b"move the connection to descriptors 0 and 1"]);
            }
            if let Err(e) = runtime::set_signal_mask(SigSet::EMPTY) {
                log::die_dropping_sys(e, &[b"clear the signal mask"]);
            }
            let err = exec::exec_search(prog, envp, path_var);
            let name = prog.first().map_or(&b""[..], |p| p.to_bytes());
            log::die_dropping_sys(err, &[b"run ", name])
        };
        let spawned = match how {
            Spawn::Vfork => runtime::spawn(&mut || child()),
            // SAFETY: ipcserverd has one thread and no C library.
            Spawn::Fork => match unsafe { runtime::fork() } {
                Ok(Forked::Child) => child(),
                Ok(Forked::Parent(pid)) => Ok(pid),
                Err(e) => Err(e),
            },
        };
        drop(conn);
        match spawned {
            // Cannot overflow: we only accept below maxconn.
            Ok(pid) => {
                self.children.add(pid, tag);
            }
            Err(e) => log::warn_sys(e, &[b"fork"]),
        }
    }

    /// Reads the pending SIGCHLD and collects every child that has exited.
    fn collect_exits(&mut self, exits: &Signals) {
        exits.drain(|_| {});
        self.reap();
    }

    fn handle_signals(&mut self, signals: &Signals) {
        signals.drain(|s| self.handle(s));
    }

    fn handle(&mut self, signal: Signal) {
        match signal {
            Signal::TERM => runtime::exit(0),
            Signal::HUP => self.children.kill_all(&[Signal::TERM, Signal::CONT]),
            Signal::QUIT => {
                self.children.kill_all(&[Signal::TERM, Signal::CONT]);
                runtime::exit(0)
            }
            Signal::ABORT => {
                self.children.kill_all(&[Signal::KILL]);
                runtime::exit(0)
            }
            _ => {}
        }
    }

    /// Collects every child that has exited ([`reap`]).
    fn reap(&mut self) {
        reap(&mut self.children, &mut self.paused);
    }
}

/// Collects every child that has exited; a child exiting also ends a
/// pause for a resource shortage. (Of the server's fields, for a caller
/// that borrows another: a client's groups.)
fn reap(children: &mut Children, paused: &mut bool) {
    children.reap(|_, _| *paused = false);
}

/// What a child logs before it executes prog: `status: N/MAX`, `pid PID
/// from REMOTE`, and at verbosity 3 the access line (when there is no
/// ipcserver-access to write it), with our own ids under -P as the
/// original; at verbosity 4 with the client's pid and groups.
fn child_log(count: usize, maxconn: usize, local: &[u8], peer: &Peer<'_>) {
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    children::log_status(count, maxconn);
    connection::log_pid_from(pid, peer.remote);
    if log::verbosity() >= 3 {
        let facts = (log::verbosity() > connection::FACTS_VERBOSITY).then(|| peer.facts());
        let access = Access { name: log::name(), pid, local };
        connection::log_access(access, true, peer.remote, peer.ids_or_own(), facts);
    }
}
