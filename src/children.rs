//! A server's children, seen from the parent: the table of running
//! children (each with a tag the server chooses: ipcserverd the client's
//! uid, a preforking server the child's slot), reaping them with the
//! original's `end PID status S` and `status: N/MAX` lines, signalling them
//! all, and the signals the parent waits for, read from a signalfd.
//!
//! It does not start children (that is [`crate::runtime::spawn`] or
//! [`crate::runtime::fork`]) nor decide what a signal means: the server's
//! loop does.

use crate::log::{self, Line};
use crate::runtime::{self, SigSet, Table};
use arrayvec::ArrayVec;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

/// Most children a server keeps (its `-c`).
pub const MAX: usize = 65535;

/// The tag for a client without credentials (servers run with -P), by
/// which all such clients count as one for a per-uid limit: `(uid_t)-1`,
/// which no client has.
pub const NO_UID: u32 = u32::MAX;

/// A running child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child {
    /// Its pid.
    pub pid: Pid,
    /// What the server keeps with it.
    pub tag: u32,
}

static TABLE: Table<ArrayVec<Child, MAX>> = Table::new(ArrayVec::new_const());

/// The running children, at most `max` of them (the table is in `.bss`,
/// see [`Table`]: only the pages used cost memory).
pub struct Children {
    list: &'static mut ArrayVec<Child, MAX>,
    max: usize,
    /// Whether an exit is followed by a `status: N/MAX` line.
    status_lines: bool,
}

impl Children {
    /// The program's one table, for at most `max` (≤ [`MAX`]) children. A
    /// second call is an internal error (exit 111).
    pub fn take(max: usize) -> Children {
        let list =
            TABLE.take().unwrap_or_else(|| log::die(log::EXIT_TEMP, &[b"internal error: child table taken twice"]));
        Children { list, max: max.min(MAX), status_lines: true }
    }

    /// Leaves out the `status: N/MAX` line after each `end` line, for a
    /// server that serves one connection at a time and logs no count
    /// (ipcaccept, as the original).
    pub fn without_status_lines(mut self) -> Children {
        self.status_lines = false;
        self
    }

    /// How many are running.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `max` are running.
    pub fn is_full(&self) -> bool {
        self.list.len() >= self.max
    }

    /// The most that may run.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Records a new child; false (and nothing recorded) when full.
    pub fn add(&mut self, pid: Pid, tag: u32) -> bool {
        !self.is_full() && self.list.try_push(Child { pid, tag }).is_ok()
    }

    /// How many running children carry `tag`.
    pub fn count(&self, tag: u32) -> usize {
        self.list.iter().filter(|c| c.tag == tag).count()
    }

    /// Collects every child that has exited, without waiting: for each,
    /// logs `end PID status S` and `status: N/MAX` (verbosity 2), then
    /// calls `exited`.
    pub fn reap(&mut self, exited: impl FnMut(Child, WaitStatus)) {
        self.collect(WaitOptions::NOHANG, exited)
    }

    /// Waits until every child has exited, collecting each as [`reap`]
    /// does.
    ///
    /// [`reap`]: Children::reap
    pub fn wait_all(&mut self, exited: impl FnMut(Child, WaitStatus)) {
        self.collect(WaitOptions::empty(), exited)
    }

    fn collect(&mut self, how: WaitOptions, mut exited: impl FnMut(Child, WaitStatus)) {
        // All our children are in the table: once it is empty there is
        // nothing left to wait for.
        while !self.list.is_empty() {
            // Any child (-1), not only those of our process group (which
            // waitpid(None) asks for): a handler may start a session or a
            // group of its own (setsid, a shell with job control, ipcexec).
            let (pid, status) = match rustix::process::wait(how) {
                Ok(Some(w)) => w,
                Err(Errno::INTR) => continue,
                Ok(None) | Err(_) => return,
            };
            let Some(i) = self.list.iter().position(|c| c.pid == pid) else { continue };
            let child = self.list.swap_remove(i);
            if log::verbosity() >= 2 {
                log_end(pid, status);
                if self.status_lines {
                    log_status(self.list.len(), self.max);
                }
            }
            exited(child, status);
        }
    }

    /// Sends each of `signals` to every child (errors ignored: a child may
    /// have exited since).
    pub fn kill_all(&self, signals: &[Signal]) {
        for c in self.list.iter() {
            for &s in signals {
                let _ = rustix::process::kill_process(c.pid, s);
            }
        }
    }
}

/// `status: N/MAX`, at verbosity 2.
pub fn log_status(n: usize, max: usize) {
    if log::verbosity() >= 2 {
        Line::new().str(b"status: ").num(n as u64).str(b"/").num(max as u64).emit();
    }
}

/// `end PID status S`, S being the raw wait status as the original prints
/// it (exit code times 256, or the signal number).
fn log_end(pid: Pid, status: WaitStatus) {
    Line::new()
        .str(b"end ")
        .num(pid.as_raw_nonzero().get() as u64)
        .str(b" status ")
        .num(status.as_raw() as u32 as u64)
        .emit();
}

/// Of `requests`, the signals that ask a server for something it may go
/// without (SIGHUP, SIGQUIT...), those our launcher did not leave ignored.
/// A server started under `nohup`, or with `&` from a script (SIGINT and
/// SIGQUIT), keeps ignoring what it was told to ignore, as the original
/// does, and its children start with those still ignored, as the
/// original's and s6's. (A blocked signal is not discarded even when
/// ignored: a server that handled an ignored signal through its signalfd
/// would act on it.)
pub fn heeded(requests: SigSet) -> SigSet {
    let ignored =
        runtime::ignored_signals(requests).unwrap_or_else(|e| log::die_sys(e, &[b"read signal dispositions"]));
    SigSet(requests.0 & !ignored.0)
}

/// The signals a parent handles, blocked and delivered through a
/// signalfd (non-blocking, close-on-exec).
pub struct Signals(OwnedFd);

impl Signals {
    /// Blocks `handled` and `blocked`, and reads `handled` from now on.
    /// Both sets are first put back at their default dispositions, so that
    /// children start with the signals the server uses at default whatever
    /// our launcher left ignored; every other signal keeps the launcher's
    /// disposition (see [`runtime::default_dispositions`]).
    pub fn new(handled: SigSet, blocked: SigSet) -> Signals {
        let used = SigSet(handled.0 | blocked.0);
        runtime::default_dispositions(used).unwrap_or_else(|e| log::die_sys(e, &[b"reset signal dispositions"]));
        runtime::block_signals(used).unwrap_or_else(|e| log::die_sys(e, &[b"block signals"]));
        Signals::apart(handled)
    }

    /// A reader of its own for some of the signals that [`Signals::new`]
    /// blocked without reading (its `blocked`): for a server that polls
    /// for those only at times. (Signals that are not blocked are never
    /// read: they take their disposition.)
    pub fn apart(set: SigSet) -> Signals {
        Signals(runtime::signalfd(set).unwrap_or_else(|e| log::die_sys(e, &[b"create signalfd"])))
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Waits until a signal is pending, or `timeout` has passed.
    pub fn wait(&self, timeout: Option<&rustix::event::Timespec>) {
        let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => log::die_sys(e, &[b"poll"]),
        }
    }

    /// Calls `handle` for each pending signal, in order, until none is.
    pub fn drain(&self, mut handle: impl FnMut(Signal)) {
        // struct signalfd_siginfo is 128 bytes, the signal number its first
        // u32. A short read means the queue is empty: no read for EAGAIN.
        const INFO: usize = 128;
        let mut buf = [0u8; 8 * INFO];
        loop {
            let n = match rustix::io::read(&self.0, &mut buf) {
                Ok(n) => n,
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => continue,
                Err(e) => log::die_sys(e, &[b"read signalfd"]),
            };
            for info in buf[..n].chunks_exact(INFO) {
                let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32;
                if let Some(s) = Signal::from_named_raw(signo) {
                    handle(s);
                }
            }
            if n < buf.len() {
                return;
            }
        }
    }
}
