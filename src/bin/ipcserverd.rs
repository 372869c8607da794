//! ipcserverd [ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] [ -C localmaxconn ] prog...
//!
//! The long-lived daemon of the server chain. Descriptor 0 is a bound,
//! listening Unix stream socket; for each connection it starts prog... with
//! the connection on descriptors 0 and 1 and the UCSPI-IPC variables in its
//! environment, keeping at most maxconn children (and localmaxconn per uid).
//! Signals arrive through a signalfd; children are spawned vfork-style, so a
//! connection costs accept, a credential lookup, one clone and the child's
//! dup2/exec, and no allocation.
#![no_std]
#![no_main]

use arrayvec::ArrayVec;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};
use ucspi_ipc::env::{Env, Mark};
use ucspi_ipc::runtime::{self, CStrArray, Disposition, SigSet, Start};
use ucspi_ipc::{args::Getopt, exec, io, log, log::Line, num, socket};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"[ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] [ -C localmaxconn ] prog...";
/// Largest maxconn: the size of the child table.
const MAXCONN_LIMIT: usize = 16384;
static CHILDREN: runtime::Table<ArrayVec<Child, MAXCONN_LIMIT>> = runtime::Table::new(ArrayVec::new_const());

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
    env: &'static mut Env,
    base: Mark,
    prog: CStrArray,
    path_var: Option<&'static [u8]>,
    /// The signal mask we found, restored in each child.
    mask: SigSet,
    /// SIGCHLD was ignored when we started: children get it back that way.
    sigchld_was_ignored: bool,
}

fn main(start: Start) -> ! {
    log::set_name(b"ipcserverd");
    let mut ready = false;
    let mut peercred = true;
    let mut maxconn = 40;
    let mut localmax = None;
    let mut opts = Getopt::new(start.argv, b"1v:Ppc:C:");
    for o in opts.by_ref() {
        match o.letter {
            b'1' => ready = true,
            b'v' => log::set_verbosity(number(o.arg_bytes()).min(255) as u8),
            b'P' => peercred = false,
            b'p' => peercred = true,
            b'c' => maxconn = number(o.arg_bytes()) as usize,
            b'C' => localmax = Some(number(o.arg_bytes()) as usize),
            _ => log::usage(USAGE),
        }
    }
    if opts.operand_count() == 0 || maxconn == 0 || maxconn > MAXCONN_LIMIT || localmax == Some(0) {
        log::usage(USAGE);
    }
    let listener = io::fd(0);
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

    let sigchld_was_ignored = runtime::set_disposition(Signal::CHILD, None) == Ok(Disposition::Ignore);
    if sigchld_was_ignored {
        // Ignored SIGCHLD would make the kernel reap children behind our
        // back and the connection count would never go down.
        if let Err(e) = runtime::set_disposition(Signal::CHILD, Some(Disposition::Default)) {
            log::fatal_sys(e, &[b"reset SIGCHLD"]);
        }
    }
    let signals = SigSet::default()
        .with(Signal::CHILD)
        .with(Signal::TERM)
        .with(Signal::HUP)
        .with(Signal::QUIT)
        .with(Signal::ABORT);
    let mask = runtime::block_signals(signals).unwrap_or_else(|e| log::fatal_sys(e, &[b"block signals"]));
    let sigfd = runtime::signalfd(signals).unwrap_or_else(|e| log::fatal_sys(e, &[b"create signalfd"]));

    if ready {
        let mut line = ArrayVec::<u8, { socket::PATH_MAX + 2 }>::new();
        let _ = line.try_extend_from_slice(&local);
        let _ = line.try_push(b'\n');
        if let Err(e) = io::write_all(io::fd(1), &line) {
            log::warn_sys(e, &[b"write readiness notification"]);
        }
    }
    io::close(1);

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
        mask,
        sigchld_was_ignored,
    };
    server.status();
    server.run(&sigfd)
}

fn number(s: &[u8]) -> u32 {
    num::parse_u32(s).unwrap_or_else(|| log::usage(USAGE))
}

impl Server {
    fn run(&mut self, sigfd: &OwnedFd) -> ! {
        loop {
            let accepting = self.children.len() < self.maxconn;
            let mut fds = [PollFd::new(sigfd, PollFlags::IN), PollFd::new(&self.listener, PollFlags::IN)];
            let n = if accepting { 2 } else { 1 };
            match poll(&mut fds[..n], None) {
                Ok(_) | Err(Errno::INTR) => {}
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
    /// socket, once on a blocking one (poll said it would not block).
    fn accept_some(&mut self) {
        while self.children.len() < self.maxconn {
            match socket::accept(self.listener) {
                Ok((conn, remote)) => self.serve(conn, &remote),
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) | Err(Errno::CONNABORTED) => {}
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
        let same_uid = self.children.iter().filter(|c| c.uid == uid).count();
        if same_uid >= self.localmax {
            return self.refuse(uid);
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
        let (prog, path_var, mask, reignore) = (self.prog, self.path_var, self.mask, self.sigchld_was_ignored);
        let conn_fd = conn.as_fd();
        let spawned = runtime::spawn(&mut || {
            if let Err(e) = io::dup_to(conn_fd, 0).and_then(|()| io::dup_to(conn_fd, 1)) {
                log::fatal_sys(e, &[b"move the connection to descriptors 0 and 1"]);
            }
            if reignore {
                let _ = runtime::set_disposition(Signal::CHILD, Some(Disposition::Ignore));
            }
            if let Err(e) = runtime::set_signal_mask(mask) {
                log::fatal_sys(e, &[b"restore the signal mask"]);
            }
            let err = exec::exec_search(prog, envp, path_var);
            let name = prog.iter().next().map_or(&b""[..], |p| p.to_bytes());
            log::fatal_sys(err, &[b"run ", name])
        });
        drop(conn);
        match spawned {
            Ok(pid) => {
                // Cannot overflow: we only accept below maxconn.
                let _ = self.children.try_push(Child { pid, uid });
                if log::verbosity() >= 2 {
                    self.status();
                    Line::new()
                        .str(b"pid ")
                        .num(pid.as_raw_nonzero().get() as u64)
                        .str(b" from ")
                        .sanitised(remote)
                        .emit();
                }
            }
            Err(e) => log::warn_sys(e, &[b"fork"]),
        }
    }

    fn refuse(&self, uid: Option<u32>) {
        let mut l = Line::new();
        l.str(b"warning: dropping a connection from ");
        match uid {
            Some(u) => l.str(b"uid ").num(u as u64),
            None => l.str(b"a client"),
        };
        l.str(b": local limit of ").num(self.localmax as u64).str(b" reached");
        if log::verbosity() >= 1 {
            l.emit();
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

    fn reap(&mut self) {
        // All our children are in the table: once it is empty there is
        // nothing left to wait for.
        while !self.children.is_empty() {
            let Ok(Some((pid, status))) = rustix::process::waitpid(None, WaitOptions::NOHANG) else { return };
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
                self.status();
            }
        }
    }

    fn status(&self) {
        if log::verbosity() >= 2 {
            Line::new().str(b"status: ").num(self.children.len() as u64).str(b"/").num(self.maxconn as u64).emit();
        }
    }
}
