//! ipcserverd [ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] [ -C localmaxconn ] [ -N name ] prog...
//!
//! The long-lived daemon of the server chain. Descriptor 0 is a bound,
//! listening Unix stream socket; for each connection it starts prog... with
//! the connection on descriptors 0 and 1 and the UCSPI-IPC variables in its
//! environment, keeping at most maxconn children (and localmaxconn per uid).
//! Signals arrive through a signalfd; children are spawned vfork-style, so a
//! connection costs accept, a credential lookup, one clone and the child's
//! dup2/exec, and no allocation.
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
// Audited uses: replacing descriptor 1 at start, and the connection on
// descriptors 0 and 1 in each child.
#![allow(unsafe_code)]

use arrayvec::ArrayVec;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};
use ucspi_ipc::env::{Env, Mark};
use ucspi_ipc::runtime::{self, CStrArray, SigSet, Start};
use ucspi_ipc::socket::SockPath;
use ucspi_ipc::{args::Getopt, exec, io, log, log::Line, socket};

ucspi_ipc::program!(main);

/// Largest maxconn: the size of the child table.
const MAXCONN_LIMIT: usize = 65535;
static CHILDREN: runtime::Table<ArrayVec<Child, MAXCONN_LIMIT>> = runtime::Table::new(ArrayVec::new_const());

/// Most connections accepted between two looks at the signals.
const ACCEPTS_PER_ROUND: usize = 64;
/// How long accepting pauses after the system ran out of a resource,
/// unless a child exits first.
const BACKOFF_MS: i64 = 100;

/// The variables this program sets; inherited values are dropped.
const OUR_VARS: [&[u8]; 6] =
    [b"PROTO", b"IPCLOCALPATH", b"IPCREMOTEPATH", b"IPCREMOTEEUID", b"IPCREMOTEEGID", b"IPCCONNNUM"];

/// A running child and the uid it serves (None under -P).
struct Child {
    pid: Pid,
    uid: Option<u32>,
}

/// The daemon's state. The child table and the environment are large
/// fixed-capacity arrays kept in `.bss` (see [`runtime::Table`]).
struct Server {
    listener: BorrowedFd<'static>,
    /// Whether accept can be retried until EAGAIN (non-blocking socket).
    nonblocking: bool,
    peercred: bool,
    maxconn: usize,
    localmax: usize,
    children: &'static mut ArrayVec<Child, MAXCONN_LIMIT>,
    /// The environment of every child up to `base`; per connection only
    /// the remote variables are added after it.
    env: &'static mut Env<'static>,
    base: Mark,
    prog: CStrArray<'static>,
    path_var: Option<&'static [u8]>,
    local: SockPath,
    /// Accepting is paused after a resource shortage.
    paused: bool,
    /// The current shortage was logged (once per episode).
    shortage_logged: bool,
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
            b'c' => maxconn = o.number(1, MAXCONN_LIMIT as u32) as usize,
            b'C' => localmax = Some(o.number(1, MAXCONN_LIMIT as u32) as usize),
            b'N' => log::set_name(o.arg),
            _ => log::usage(),
        }
    }
    if opts.operand_count() == 0 {
        log::usage();
    }
    let listener = io::stdin();
    if !socket::is_unix_listener(listener) {
        log::fatal(log::EXIT_USAGE, &[b"standard input is not a listening Unix stream socket"]);
    }
    let nonblocking = rustix::fs::fcntl_getfl(listener)
        .map(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
        .unwrap_or_else(|e| log::fatal_sys(e, &[b"read the flags of standard input"]));
    let local =
        socket::local_path(listener).unwrap_or_else(|e| log::fatal_sys(e, &[b"get the local path of standard input"]));

    let env = Env::take();
    let Some(children) = CHILDREN.take() else { runtime::exit(log::EXIT_TEMP) };
    let prepared = env
        .inherit(start.envp)
        .and_then(|()| {
            env.retain(|name| !OUR_VARS.contains(&name));
            env.push(b"PROTO", b"IPC")
        })
        .and_then(|()| env.push(b"IPCLOCALPATH", &local));
    if let Err(e) = prepared {
        log::fatal_sys(e, &[b"build the environment"]);
    }
    let base = env.mark();

    // Children must start as from a clean exec, whatever our launcher left
    // ignored (SIGPIPE, SIGCHLD...): defaults here, an empty mask there.
    // SIGPIPE is blocked rather than ignored, so that a closed log pipe is
    // an error for us and not a death.
    runtime::default_dispositions().unwrap_or_else(|e| log::fatal_sys(e, &[b"reset signal dispositions"]));
    let handled =
        SigSet::EMPTY.with(Signal::CHILD).with(Signal::TERM).with(Signal::HUP).with(Signal::QUIT).with(Signal::ABORT);
    runtime::block_signals(handled.with(Signal::PIPE)).unwrap_or_else(|e| log::fatal_sys(e, &[b"block signals"]));
    let sigfd = runtime::signalfd(handled).unwrap_or_else(|e| log::fatal_sys(e, &[b"create signalfd"]));

    if ready {
        let mut line = ArrayVec::<u8, { socket::PATH_MAX + 1 }>::new();
        let _ = line.try_extend_from_slice(&local);
        let _ = line.try_push(b'\n');
        if let Err(e) = io::write_all(io::stdout(), &line) {
            log::warn_sys(e, &[b"write readiness notification"]);
        }
    }
    // Let go of stdout (a notification pipe, say), and keep descriptor 1
    // busy with a second reference to the listening socket rather than
    // closed, so that no connection is ever accepted onto it. Children get
    // their connection on 0 and 1 instead.
    // SAFETY: nothing in this program borrows descriptor 1 after this
    // point; it is replaced, not used.
    if let Err(e) = unsafe { io::dup_to(listener, 1) } {
        log::fatal_sys(e, &[b"replace standard output"]);
    }

    let mut server = Server {
        listener,
        nonblocking,
        peercred,
        maxconn,
        localmax: localmax.unwrap_or(maxconn).min(maxconn),
        children,
        env,
        base,
        prog: opts.operands(),
        path_var: ucspi_ipc::env::get(start.envp, b"PATH"),
        local,
        paused: false,
        shortage_logged: false,
    };
    server.status(0);
    server.run(&sigfd)
}

impl Server {
    fn run(&mut self, sigfd: &OwnedFd) -> ! {
        let backoff = rustix::event::Timespec { tv_sec: 0, tv_nsec: BACKOFF_MS * 1_000_000 };
        loop {
            let accepting = !self.paused && self.children.len() < self.maxconn;
            let mut fds = [PollFd::new(sigfd, PollFlags::IN), PollFd::new(&self.listener, PollFlags::IN)];
            let n = if accepting { 2 } else { 1 };
            match poll(&mut fds[..n], self.paused.then_some(&backoff)) {
                // Only a paused poll has a timeout: the pause is over.
                Ok(0) => self.paused = false,
                Ok(_) | Err(Errno::INTR) => {}
                // More descriptors polled than RLIMIT_NOFILE allows, or no
                // memory: a shortage like any other. Wait, then look at
                // the signals without poll.
                Err(e @ (Errno::INVAL | Errno::NOMEM)) => {
                    self.shortage(e, b"poll");
                    let _ = rustix::thread::nanosleep(&backoff);
                    self.handle_signals(sigfd);
                    continue;
                }
                Err(e) => log::fatal_sys(e, &[b"poll"]),
            }
            let signalled = !fds[0].revents().is_empty();
            let connecting = accepting && !fds[1].revents().is_empty();
            if signalled {
                self.handle_signals(sigfd);
            }
            if connecting {
                self.accept_some();
            }
        }
    }

    /// Accepts while under the limit: until EAGAIN on a non-blocking
    /// socket (at most [`ACCEPTS_PER_ROUND`]), once on a blocking one (poll
    /// said it would not block).
    fn accept_some(&mut self) {
        for _ in 0..ACCEPTS_PER_ROUND {
            if self.children.len() >= self.maxconn {
                return;
            }
            match socket::accept(self.listener) {
                Ok((conn, remote)) => {
                    self.shortage_logged = false;
                    self.serve(conn, &remote);
                }
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) | Err(Errno::CONNABORTED) => {}
                Err(e @ (Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) => {
                    self.shortage(e, b"accept");
                    self.paused = true;
                    return;
                }
                Err(e) => {
                    log::warn_sys(e, &[b"accept"]);
                    return;
                }
            }
            if !self.nonblocking {
                return;
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

    fn same_uid(&self, uid: Option<u32>) -> usize {
        self.children.iter().filter(|c| c.uid == uid).count()
    }

    fn serve(&mut self, conn: OwnedFd, remote: &[u8]) {
        let ids = if self.peercred {
            match socket::peer_ids(&conn) {
                Ok(ids) => Some(ids),
                Err(e) => return log::warn_sys(e, &[b"get the credentials of a client, dropping it"]),
            }
        } else {
            None
        };
        let uid = ids.map(|(u, _)| u);
        let mut same_uid = self.same_uid(uid);
        if same_uid >= self.localmax {
            // Children of this uid may have exited since the last look at
            // the signals: count again before refusing.
            self.reap();
            same_uid = self.same_uid(uid);
            if same_uid >= self.localmax {
                return self.refuse(uid);
            }
        }
        self.env.truncate(self.base);
        let built = self
            .env
            .push(b"IPCREMOTEPATH", remote)
            .and_then(|()| match ids {
                Some((u, g)) => self
                    .env
                    .push_num(b"IPCREMOTEEUID", u as u64)
                    .and_then(|()| self.env.push_num(b"IPCREMOTEEGID", g as u64)),
                None => Ok(()),
            })
            .and_then(|()| self.env.push_num(b"IPCCONNNUM", same_uid as u64));
        if let Err(e) = built {
            return log::warn_sys(e, &[b"build the environment of a client, dropping it"]);
        }
        let envp = self.env.finish();
        let (prog, path_var) = (self.prog, self.path_var);
        let (count, maxconn, local) = (self.children.len() + 1, self.maxconn, &self.local);
        let conn_fd = conn.as_fd();
        let spawned = runtime::spawn(&mut || {
            if log::verbosity() >= 2 {
                child_log(count, maxconn, local, remote, ids);
            }
            // SAFETY: in the child, descriptors 0 and 1 are replaced by the
            // connection for prog; nothing here uses them afterwards.
            if let Err(e) = unsafe { io::dup_to(conn_fd, 0).and_then(|()| io::dup_to(conn_fd, 1)) } {
                log::drop_connection(&[b"move the connection to descriptors 0 and 1: ", log::errno_text(e)]);
            }
            if let Err(e) = runtime::set_signal_mask(SigSet::EMPTY) {
                log::drop_connection(&[b"clear the signal mask: ", log::errno_text(e)]);
            }
            let err = exec::exec_search(prog, envp, path_var);
            let name = prog.first().map_or(&b""[..], |p| p.to_bytes());
            log::drop_connection(&[b"run ", name, b": ", log::errno_text(err)])
        });
        drop(conn);
        match spawned {
            // Cannot overflow: we only accept below maxconn.
            Ok(pid) => {
                let _ = self.children.try_push(Child { pid, uid });
            }
            Err(e) => log::warn_sys(e, &[b"fork"]),
        }
    }

    fn refuse(&self, uid: Option<u32>) {
        if log::verbosity() >= 1 {
            let mut l = Line::new();
            l.str(b"warning: dropping a connection from ");
            match uid {
                Some(u) => l.str(b"uid ").num(u as u64),
                None => l.str(b"a client"),
            };
            l.str(b": local limit of ").num(self.localmax as u64).str(b" reached").emit();
        }
    }

    fn handle_signals(&mut self, sigfd: &OwnedFd) {
        // struct signalfd_siginfo is 128 bytes, the signal number its first
        // u32. A short read means the queue is empty: no read for EAGAIN.
        const INFO: usize = 128;
        let mut buf = [0u8; 8 * INFO];
        loop {
            let n = match rustix::io::read(sigfd, &mut buf) {
                Ok(n) => n,
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => continue,
                Err(e) => log::fatal_sys(e, &[b"read signalfd"]),
            };
            for info in buf[..n].chunks_exact(INFO) {
                let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32;
                self.handle(Signal::from_named_raw(signo));
            }
            if n < buf.len() {
                return;
            }
        }
    }

    fn handle(&mut self, signal: Option<Signal>) {
        match signal {
            Some(Signal::CHILD) => self.reap(),
            Some(Signal::TERM) => runtime::exit(0),
            Some(Signal::HUP) => self.kill_children(&[Signal::TERM, Signal::CONT]),
            Some(Signal::QUIT) => {
                self.kill_children(&[Signal::TERM, Signal::CONT]);
                runtime::exit(0)
            }
            Some(Signal::ABORT) => {
                self.kill_children(&[Signal::KILL]);
                runtime::exit(0)
            }
            _ => {}
        }
    }

    fn kill_children(&self, signals: &[Signal]) {
        for c in self.children.iter() {
            for &s in signals {
                let _ = rustix::process::kill_process(c.pid, s);
            }
        }
    }

    /// Collects every child that has exited; a child exiting also ends a
    /// pause for a resource shortage.
    fn reap(&mut self) {
        // All our children are in the table: once it is empty there is
        // nothing left to wait for.
        while !self.children.is_empty() {
            let Ok(Some((pid, status))) = rustix::process::waitpid(None, WaitOptions::NOHANG) else { return };
            self.paused = false;
            if let Some(i) = self.children.iter().position(|c| c.pid == pid) {
                self.children.swap_remove(i);
            }
            if log::verbosity() >= 2 {
                Line::new()
                    .str(b"end ")
                    .num(pid.as_raw_nonzero().get() as u64)
                    .str(b" status ")
                    .num(status.as_raw() as u32 as u64)
                    .emit();
                self.status(self.children.len());
            }
        }
    }

    fn status(&self, n: usize) {
        status_line(n, self.maxconn);
    }
}

/// `status: N/MAX`, at verbosity 2.
fn status_line(n: usize, maxconn: usize) {
    if log::verbosity() >= 2 {
        Line::new().str(b"status: ").num(n as u64).str(b"/").num(maxconn as u64).emit();
    }
}

/// What a child logs before it executes prog: `status: N/MAX`, `pid PID
/// from REMOTE`, and at verbosity 3 the access line (when there is no
/// ipcserver-access to write it), with our own ids under -P as the
/// original.
fn child_log(count: usize, maxconn: usize, local: &[u8], remote: &[u8], ids: Option<(u32, u32)>) {
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    status_line(count, maxconn);
    Line::new().str(b"pid ").num(pid as u64).str(b" from ").sanitised(remote).emit();
    if log::verbosity() >= 3 {
        let ids = ids.unwrap_or_else(|| (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw()));
        log::access(true, pid, local, remote, ids);
    }
}
