//! Preforking servers, ucspi-ipc's ipchandle: a program is a [`Handler`]
//! (called once per connection, in-process) and [`Server`], which does
//! everything else. `Server::from_command_line` takes ipcserver's options
//! plus `-f lockfile`, binds PATH, drops privileges; `Server::run` forks
//! `-c` children (default 40) and keeps that many. Each child accepts on
//! the shared socket, sets the connection's environment as ipcserver does,
//! writes the banner, applies the access rules, calls the handler with the
//! connection on descriptors 0 and 1, cleans up and accepts again: no fork
//! and no exec per connection, and no allocation either.
//!
//! The parent replaces a child that exits (a handler may end its child at
//! any time: `exit`, a panic), restarts all of them on SIGHUP, and on
//! SIGTERM stops them, waits for them and exits 0. A child that dies
//! before it could serve (its handler's set-up failed) stops the server:
//! replacing it would fail the same way, in a loop.
//!
//! What a handler leaves behind does not reach the next connection: the
//! connection's environment is a value the handler borrows (it cannot
//! change the one the next connection gets), and after each connection
//! every descriptor the handler left open is closed and the signal mask
//! emptied. What cannot be undone from outside (a changed uid, working
//! directory, or signal disposition) is the handler's to avoid.
//!
//! It does not run programs (a handler that wants to can, with
//! [`crate::exec`] and the connection's environment) and it does not buffer
//! output: a handler writes to descriptor 1 as it likes.
#![allow(unsafe_code)]

use crate::children::{self, Children, Signals};
use crate::connection::{self, Access, GroupsBuf, Peer};
use crate::env::{self, Env};
use crate::lockfile::LockFile;
use crate::log::{self, Line};
use crate::rules;
use crate::runtime::{self, CStrArray, Disposition, Forked, SigSet, Start, Table};
use crate::server_options::ServerOptions;
use crate::socket::{self, SockPath};
use crate::{args::Getopt, io};
use arrayvec::ArrayVec;
use core::ffi::CStr;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use rustix::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::Signal;

/// One connection, as a handler sees it. The connection itself is on
/// descriptors 0 (read) and 1 (write): [`io::stdin`] and [`io::stdout`].
pub struct Connection<'c> {
    env: CStrArray<'c>,
    args: CStrArray<'c>,
}

impl<'c> Connection<'c> {
    /// The connection's whole environment, ready for `execve`: what the
    /// server inherited, then PROTO, IPCLOCALPATH, IPCREMOTEPATH,
    /// IPCREMOTEEUID, IPCREMOTEEGID, IPCREMOTEPID, IPCREMOTEGIDLIST,
    /// IPCCONNNUM and the rule's assignments.
    pub fn env(&self) -> CStrArray<'c> {
        self.env
    }

    /// One variable of [`Connection::env`].
    pub fn var(&self, name: &[u8]) -> Option<&'c [u8]> {
        env::get(self.env, name)
    }

    /// The command line's operands after PATH.
    pub fn args(&self) -> CStrArray<'c> {
        self.args
    }
}

/// What a preforking server does with a connection. Any `FnMut(&Connection)`
/// is one.
pub trait Handler {
    /// Serves one connection. Returning ends it (the server closes it);
    /// exiting or panicking ends the child too, which the server replaces.
    fn handle(&mut self, connection: &Connection<'_>);
}

impl<F: FnMut(&Connection<'_>)> Handler for F {
    fn handle(&mut self, connection: &Connection<'_>) {
        self(connection)
    }
}

/// How the server creates its children: [`runtime::fork`] unless the
/// program links a C library (see [`Server::fork_with`]).
pub type ForkFn = unsafe fn() -> Result<Forked, Errno>;

/// The usage line of a preforking server: the options every one takes,
/// then PATH and the operands given (a string literal, if any), as a
/// `&'static CStr` for [`Server::from_command_line`]. Use it for a `const`,
/// so that it is checked when compiling: `const USAGE: &CStr =
/// prefork_usage!("file [ args... ]");`.
#[macro_export]
macro_rules! prefork_usage {
    () => {
        $crate::prefork_usage!(@ "")
    };
    ($operands:literal) => {
        $crate::prefork_usage!(@ concat!(" ", $operands))
    };
    (@ $tail:expr) => {
        match core::ffi::CStr::from_bytes_with_nul(
            concat!(
                "[ -1UXSdDqQvpP ] [ -c limit ] [ -C locallimit ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] \
                 [ -u uid ] [ -G gidlist ] [ -b backlog ] [ -a perms ] [ -l localname ] [ -f lockfile ] path",
                $tail,
                "\0"
            )
            .as_bytes(),
        ) {
            Ok(usage) => usage,
            Err(_) => panic!("a usage line has no NUL inside"),
        }
    };
}

/// The default number of children.
const CHILDREN_DEFAULT: usize = 40;
/// How long the parent waits before trying again when it could not fork.
const FORK_RETRY_MS: i64 = 1000;
/// How long a child pauses after the system ran out of descriptors or
/// memory in accept.
const BACKOFF_MS: i64 = 100;

/// A preforking server, bound and ready to start its children.
pub struct Server {
    o: ServerOptions,
    listener: OwnedFd,
    /// Operands after PATH.
    args: CStrArray<'static>,
    /// The environment every connection starts from.
    base: CStrArray<'static>,
    local: &'static [u8],
    fork: ForkFn,
    /// Leave the descriptors a handler opens open (see
    /// [`Server::keep_descriptors`]).
    keep_descriptors: bool,
}

/// Where a child is in its life, as the parent sees it through [`Slots`].
const SLOT_FREE: u32 = 0;
const SLOT_STARTING: u32 = 1;
const SLOT_SERVING: u32 = 2;

/// One child's place in memory shared by the whole server: where it is in
/// its life, and whose connection it is serving (0: none; else
/// `1 << 32 | uid`), for `-C` and IPCCONNNUM.
struct Slot {
    state: AtomicU32,
    client: AtomicU64,
}

/// The slots of all children, in one shared anonymous mapping made before
/// the first fork (so every process sees the same memory).
struct Slots(&'static [Slot]);

impl Slots {
    fn map(n: usize) -> Slots {
        use rustix::mm::{MapFlags, ProtFlags};
        let len = n * core::mem::size_of::<Slot>();
        // SAFETY: a new shared anonymous mapping at an address the kernel
        // chooses touches no existing memory.
        let p = unsafe {
            rustix::mm::mmap_anonymous(core::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED)
        }
        .unwrap_or_else(|e| log::die_sys(e, &[b"map shared memory"]));
        // SAFETY: the mapping is `len` bytes of zeroes, page-aligned, never
        // unmapped; all-zero bytes are valid atomics (free slots), and
        // atomics may be shared between processes.
        Slots(unsafe { core::slice::from_raw_parts(p as *const Slot, n) })
    }

    fn set_state(&self, i: usize, state: u32) {
        self.0[i].state.store(state, Ordering::Release);
    }

    fn state(&self, i: usize) -> u32 {
        self.0[i].state.load(Ordering::Acquire)
    }

    /// Records that slot `i` serves `uid`; returns how many connections of
    /// that uid are being served, this one included (one more than
    /// [`Peer::push_env`]'s others). Storing before
    /// counting means two simultaneous connections may each count the
    /// other, never neither: `-C` is never exceeded.
    fn serve(&self, i: usize, uid: u32) -> usize {
        let client = 1 << 32 | uid as u64;
        self.0[i].client.store(client, Ordering::SeqCst);
        self.0.iter().filter(|s| s.client.load(Ordering::SeqCst) == client).count()
    }

    fn served(&self, i: usize) {
        self.0[i].client.store(0, Ordering::Release);
    }
}

/// The rule's record, in .bss, taken by each child (see [`Table`]).
static RECORD: Table<[u8; rules::RULES_RECORD_MAX]> = Table::new([0; rules::RULES_RECORD_MAX]);

impl Server {
    /// Reads the command line (at least `operands` operands after PATH),
    /// checks it whole, binds PATH, drops privileges. Exits 100 on a usage
    /// error, 111 when binding or the privilege change fails.
    ///
    /// As the original's, messages and log lines name the server as it was
    /// invoked (`./ipcprint: status: 0/40` when run as `./ipcprint`, its
    /// usage line too), access lines start with `ipcserver:`, as
    /// ipcserver's do, and only getopt's complaints (`illegal option`) say
    /// `name`, which also stands in for an empty or missing `argv[0]`.
    /// `usage` is the arguments part of the usage line.
    pub fn from_command_line(start: Start, name: &'static CStr, usage: &'static CStr, operands: usize) -> Server {
        let invoked = start.argv.first().filter(|a| !a.is_empty()).unwrap_or(name);
        log::init(invoked, usage);
        log::set_option_error_name(name);
        let mut o = ServerOptions::default();
        let mut opts = Getopt::new(start.argv, b"1UXShHoOdDqQvpPc:C:x:B:g:u:G:b:a:l:f:");
        for opt in opts.by_ref() {
            if !o.read(&opt, start.envp) {
                log::usage();
            }
        }
        log::set_verbosity(o.connection.verbosity);
        let (listen, lockfile) = (o.listen_options(), o.connection.lockfile);
        // Once the whole command line (and so -q) is read.
        let target = o.ids.target();
        if opts.operand_count() < 1 + operands {
            log::usage();
        }
        let path = socket::server_path(opts.operands(), o.file_option);
        target.complete().unwrap_or_else(|e| e.die());
        target.refuse_without_privilege();
        if let Some(lockfile) = lockfile {
            // Created before binding, so that a bad path stops us at once;
            // readable by all, since children open it after the privilege
            // drop and flock needs no write access.
            drop(LockFile::open(lockfile, Some(Mode::from_bits_truncate(0o644))));
        }
        let listener = socket::listen_or_die(path, &listen);
        if o.connection.peercred {
            connection::probe_groups(&listener);
        }
        if let Err((what, e)) = target.apply() {
            log::die_sys(e, &[what]);
        }
        if let Some(lockfile) = lockfile {
            // What the children will do: fail here rather than in each.
            drop(LockFile::open(lockfile, None));
        }
        // The socket's path is PATH as given: the kernel reports a path
        // (or an abstract name) as it was bound, so none is asked for.
        let local = o.connection.localname.unwrap_or(path).to_bytes();
        let base = Env::take();
        if let Err(e) = connection::server_env(base, start.envp, local) {
            log::die_sys(e, &[b"build the environment"]);
        }
        Server {
            o,
            listener,
            args: opts.operands().skip(1),
            base: base.finish(),
            local,
            fork: runtime::fork,
            keep_descriptors: false,
        }
    }

    /// The operands after PATH, for the program to check before
    /// [`Server::run`].
    pub fn args(&self) -> CStrArray<'static> {
        self.args
    }

    /// Leaves open, after a connection, the descriptors its handler opened
    /// (by default they are closed): for a handler that keeps some across
    /// connections without the library knowing, as an interpreter's
    /// lazily opened handles (ipcperl). Such a handler must close what it
    /// does not keep.
    pub fn keep_descriptors(&mut self) {
        self.keep_descriptors = true;
    }

    /// Makes the server create its children with `fork` rather than
    /// [`runtime::fork`]: a program that links a C library (ipcperl) must
    /// fork through it, so that the library's state is right in the child.
    ///
    /// # Safety
    /// `fork` must create a process as fork(2) does, returning in both, and
    /// be sound to call from this single-threaded program.
    pub unsafe fn fork_with(&mut self, fork: ForkFn) {
        self.fork = fork;
    }

    /// Starts the children and keeps them running until SIGTERM. Each child
    /// calls `init` once with the operands after PATH (after the privilege
    /// drop, before its first connection) for its handler.
    pub fn run<H: Handler>(self, mut init: impl FnMut(CStrArray<'static>) -> H) -> ! {
        // SIGHUP, a reload, is ignored if our launcher ignored it (nohup).
        let handled = children::heeded(SigSet::EMPTY.with(Signal::HUP)).with(Signal::CHILD).with(Signal::TERM);
        let signals = Signals::new(handled, SigSet::EMPTY.with(Signal::PIPE));
        let count = self.o.maxconn.map_or(CHILDREN_DEFAULT, |c| c.value as usize);
        let slots = Slots::map(count);
        let mut children = Children::take(count);
        // Children wait for the end of this pipe before their first accept,
        // so that every start-up line comes before any connection's.
        let (gate_read, gate_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .unwrap_or_else(|e| log::die_sys(e, &[b"create pipe"]));
        let gate = Some((gate_read.as_raw_fd(), gate_write.as_raw_fd()));
        let parent = Parent { pid: rustix::process::getpid(), signals: signals.fd().as_raw_fd(), gate };
        children::log_status(0, children.max());
        for slot in 0..children.max() {
            self.start_child(slot, &slots, &mut children, &parent, &mut init);
        }
        drop(gate_write);
        drop(gate_read);
        let parent = Parent { gate: None, ..parent };
        if self.o.ready {
            socket::notify_ready(self.local);
            // Let go of the notification pipe.
            // SAFETY: descriptor 1 is replaced, not used, from here on.
            let _ = unsafe { io::dup_to(self.listener.as_fd(), 1) };
        }
        let retry = rustix::event::Timespec { tv_sec: 0, tv_nsec: FORK_RETRY_MS * 1_000_000 };
        loop {
            // A slot left free by a failed fork is retried after a pause.
            let short = children.len() < children.max();
            signals.wait(short.then_some(&retry));
            let mut stop = None;
            signals.drain(|s| match s {
                Signal::TERM => stop = Some(0),
                Signal::HUP => children.kill_all(&[Signal::TERM, Signal::CONT]),
                _ => {}
            });
            children.reap(|child, status| {
                let slot = child.tag as usize;
                // A child that ends before serving failed its set-up, unless
                // SIGTERM (ours, on SIGHUP) stopped it.
                let stopped = status.terminating_signal() == Some(Signal::TERM.as_raw());
                if slots.state(slot) == SLOT_STARTING && !stopped && stop.is_none() {
                    Line::new().str(b"fatal: a child exited before serving: stopping").emit();
                    stop = Some(log::EXIT_TEMP);
                }
                slots.set_state(slot, SLOT_FREE);
                slots.served(slot);
            });
            if let Some(code) = stop {
                children.kill_all(&[Signal::TERM, Signal::CONT]);
                children.wait_all(|_, _| {});
                runtime::exit(code);
            }
            for slot in 0..children.max() {
                if slots.state(slot) == SLOT_FREE {
                    self.start_child(slot, &slots, &mut children, &parent, &mut init);
                }
            }
        }
    }

    /// Forks the child for `slot`; the child never returns from here.
    fn start_child<H: Handler>(
        &self,
        slot: usize,
        slots: &Slots,
        children: &mut Children,
        parent: &Parent,
        init: &mut impl FnMut(CStrArray<'static>) -> H,
    ) {
        children::log_status(children.len() + 1, children.max());
        slots.set_state(slot, SLOT_STARTING);
        // SAFETY: `self.fork` is runtime::fork unless the program vouched
        // for another (fork_with); this program is single-threaded.
        match unsafe { (self.fork)() } {
            Ok(Forked::Child) => self.child(slot, slots, parent, init),
            Ok(Forked::Parent(pid)) => {
                children.add(pid, slot as u32);
            }
            Err(e) => {
                slots.set_state(slot, SLOT_FREE);
                log::warn_sys(e, &[b"fork"]);
            }
        }
    }

    /// A child's life: set up, then serve connections until it is killed
    /// or its handler exits.
    fn child<H: Handler>(
        &self,
        slot: usize,
        slots: &Slots,
        parent: &Parent,
        init: &mut impl FnMut(CStrArray<'static>) -> H,
    ) -> ! {
        // A child outliving its parent (killed by SIGKILL, say) would go on
        // serving an unsupervised socket: it gets SIGTERM then, and checks
        // that the parent did not die before it asked.
        let _ = rustix::process::set_parent_process_death_signal(Some(Signal::TERM));
        if rustix::process::getppid() != Some(parent.pid) {
            runtime::exit(0);
        }
        // SAFETY: the parent's signalfd belongs to the parent's frames,
        // which never run again in this process.
        unsafe { io::close(parent.signals) };
        if let Some((read, write)) = parent.gate {
            // SAFETY: as above, for the gate's ends; the read end is
            // borrowed only until it is closed.
            unsafe {
                io::close(write);
                let mut b = [0u8; 1];
                let read = rustix::fd::BorrowedFd::borrow_raw(read);
                while matches!(rustix::io::read(read, &mut b), Ok(1) | Err(Errno::INTR)) {}
                io::close(read.as_raw_fd());
            }
        }
        let _ = runtime::set_disposition(Signal::PIPE, Some(Disposition::Ignore));
        if let Err(e) = runtime::set_signal_mask(SigSet::EMPTY) {
            log::die_sys(e, &[b"clear the signal mask"]);
        }
        let lock = self.o.connection.lockfile.map(|path| LockFile::open(path, None));
        // During the set-up, 0 and 1 are /dev/null: a file it opens cannot
        // land there, where the first connection would take its place, and
        // an interpreter finds standard descriptors that are really there.
        let null = rustix::fs::open(c"/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| log::die_sys(e, &[b"open /dev/null"]));
        // SAFETY: descriptors 0 and 1 are where each connection goes;
        // nothing in this process owns them.
        if let Err(e) = unsafe { io::install(null, &[0, 1]) } {
            log::die_sys(e, &[b"open /dev/null"]);
        }
        let mut handler = init(self.args);
        // SAFETY: as above; whatever the set-up made of them is left.
        unsafe {
            io::close(0);
            io::close(1);
        }
        let kept = (!self.keep_descriptors).then(Kept::now);
        let Some(record) = RECORD.take() else { runtime::exit(log::EXIT_TEMP) };
        let groups = GroupsBuf::take();
        slots.set_state(slot, SLOT_SERVING);
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        // Out of descriptors or memory: said once per shortage.
        let mut short = false;
        loop {
            if let Some(remote) = self.accept(lock.as_ref(), &mut short) {
                self.serve(Me { slot, slots, pid }, &remote, record, groups, &mut handler);
            }
            // Before the client can see the end of its connection: once it
            // has, its next connection must not count this one.
            slots.served(slot);
            // SAFETY: after a connection, nothing of it is used: 0 and 1 are
            // the connection, and `kept` lists every descriptor in use
            // before the first one.
            unsafe {
                io::close(0);
                io::close(1);
                if let Some(kept) = &kept {
                    kept.close_others();
                }
            }
            let _ = runtime::set_signal_mask(SigSet::EMPTY);
        }
    }

    /// Accepts a connection onto descriptors 0 and 1 (under the lock, if
    /// any) and returns the client's path; `None` when none came. `short`:
    /// whether the last accept failed for a shortage (already logged).
    #[inline(never)]
    fn accept(&self, lock: Option<&LockFile>, short: &mut bool) -> Option<SockPath> {
        if let Some(lock) = lock {
            lock.lock();
        }
        let accepted = socket::accept_inheritable(&self.listener);
        if let Some(lock) = lock {
            lock.unlock();
        }
        match accepted {
            Ok((conn, remote)) => {
                *short = false;
                // It is on 0, the lowest free descriptor, unless the
                // process started without a descriptor 2.
                let on_stdio = if conn.as_raw_fd() == 0 {
                    let conn = core::mem::ManuallyDrop::new(conn);
                    // SAFETY: 1 is closed between connections; it becomes
                    // this connection's, as 0 already is.
                    unsafe { io::dup_to(conn.as_fd(), 1) }
                } else {
                    // SAFETY: as above, for 0 and 1.
                    unsafe { io::install(conn, &[0, 1]) }
                };
                match on_stdio {
                    Ok(()) => Some(remote),
                    Err(e) => {
                        log::warn_dropping_sys(e, &[b"move the connection to descriptors 0 and 1"]);
                        None
                    }
                }
            }
            Err(Errno::INTR | Errno::CONNABORTED) => None,
            Err(e @ (Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) => {
                if !core::mem::replace(short, true) {
                    log::warn_sys(e, &[b"accept"]);
                }
                let pause = rustix::event::Timespec { tv_sec: 0, tv_nsec: BACKOFF_MS * 1_000_000 };
                let _ = rustix::thread::nanosleep(&pause);
                None
            }
            Err(e) => log::die_sys(e, &[b"accept"]),
        }
    }

    /// Serves the connection on descriptors 0 and 1. Not inlined (nor is
    /// `accept`): inlined into the child's loop, they made ipcprint 240
    /// bytes larger on 32-bit ARM.
    #[inline(never)]
    fn serve<H: Handler>(&self, me: Me<'_>, remote: &[u8], record: &mut [u8], groups: &mut GroupsBuf, handler: &mut H) {
        let Me { slot, slots, pid } = me;
        let o = &self.o.connection;
        let peer = match Peer::of(io::stdin(), remote, o.peercred, groups) {
            Ok(peer) => peer,
            Err(e) => return log::warn_dropping_sys(e, &[b"obtain client eid"]),
        };
        let others = slots.serve(slot, peer.uid_tag()) - 1;
        if let Some(max) = self.o.localmax.map(|m| m.value as usize) {
            if connection::over_local_limit(others, max) {
                return connection::refuse(&peer, max);
            }
        }
        if log::verbosity() >= 2 {
            connection::log_pid_from(pid, remote);
        }
        let mut env = Env::new();
        if let Err(e) = env.inherit(self.base).and_then(|()| peer.push_env(&mut env, Some(others))) {
            return log::warn_dropping_sys(e, &[b"build the environment"]);
        }
        let access = Access { name: b"ipcserver", pid, local: self.local };
        if let Ok(true) = connection::admit(o.banner(), o.rules_file(), &peer, access, record, &mut env) {
            handler.handle(&Connection { env: env.finish(), args: self.args });
            if log::verbosity() >= 2 {
                connection::log_done(pid);
            }
        }
    }
}

/// A child, as its connections know it.
#[derive(Clone, Copy)]
struct Me<'s> {
    slot: usize,
    slots: &'s Slots,
    pid: u32,
}

/// What a new child knows of its parent: its pid, and the descriptors it
/// must close.
struct Parent {
    pid: rustix::process::Pid,
    signals: RawFd,
    /// The start-up gate's ends (read, write), while the first children
    /// are forked.
    gate: Option<(RawFd, RawFd)>,
}

/// The descriptors a child had open once set up (its handler's included):
/// after each connection every other one is closed.
struct Kept {
    /// The first descriptor above every kept one.
    end: u32,
    /// Runs of descriptors below `end` (and above 2) that were closed, as
    /// (first, last): the first [`Kept::HOLES`] of them.
    holes: ArrayVec<(u32, u32), { Kept::HOLES }>,
}

impl Kept {
    /// Most descriptors looked at: set-ups do not open thousands.
    const SCAN: u32 = 4096;
    /// Most runs of holes remembered.
    const HOLES: usize = 64;

    fn now() -> Kept {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(1024);
        let scan = limit.min(Self::SCAN as u64) as u32;
        let end = (3..scan).rev().find(|&fd| runtime::is_open(fd)).map_or(3, |fd| fd + 1);
        let mut holes: ArrayVec<(u32, u32), { Kept::HOLES }> = ArrayVec::new();
        for fd in 3..end {
            if runtime::is_open(fd) {
                continue;
            }
            match holes.last_mut() {
                Some((_, last)) if *last + 1 == fd => *last = fd,
                _ => {
                    if holes.try_push((fd, fd)).is_err() {
                        // Not silent: a descriptor opened in a run not
                        // remembered would outlive its connection.
                        log::warn(&[b"too many gaps among the descriptors set up: some may outlive connections"]);
                        break;
                    }
                }
            }
        }
        Kept { end, holes }
    }

    /// Closes every descriptor from 3 up that was not open at set-up.
    ///
    /// # Safety
    /// Nothing in the process may use a descriptor opened since
    /// [`Kept::now`] afterwards.
    unsafe fn close_others(&self) {
        for &(first, last) in &self.holes {
            // SAFETY: the caller gives up descriptors opened since.
            unsafe { runtime::close_range(first, last) };
        }
        // SAFETY: as above.
        unsafe { runtime::close_from(self.end) };
    }
}
