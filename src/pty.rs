//! A pseudo-terminal between a program and its caller's terminal, as sudo's
//! `use_pty`: what ipcexec gives a program it runs for another user than
//! the caller, when the caller passed it a terminal (`-F`).
//!
//! Handing the caller's terminal itself to a less privileged user would let
//! any process of that user take it (pidfd_getfd, or a child the program
//! leaves behind) and read what the caller types afterwards. Instead the
//! program gets a terminal of its own, in a session of its own, set up as
//! the caller's (modes, window size); this process keeps the caller's
//! terminal, puts it in raw mode, relays both ways until the program
//! exits, then restores it and lets go of it. What the program leaves
//! behind holds only its own terminal.
//!
//! The caller's terminal is not ours, so no job-control signal and no
//! SIGWINCH reach us. So the relay reads the caller's keys (and keeps its
//! terminal in raw mode) only while the caller's process group is the
//! terminal's foreground one, as a program run in the caller's own job
//! would: a caller started in the background (`ipcdo -F ... &`) leaves
//! the terminal to the shell until it is brought to the foreground. That
//! and the window size are looked at again after a quiet
//! [`RESIZE_CHECK_MS`], or every few dozen wake-ups while busy. It
//! prints nothing: callers say what failed.

use crate::relay::Buffers;
use arrayvec::ArrayVec;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};
use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, Termios};

/// How often the caller's window size, and whether the caller is in the
/// foreground, are looked at again when nothing happens.
pub const RESIZE_CHECK_MS: i64 = 200;

/// While the relay is busy, they are looked at again every this many
/// wake-ups (a wake-up relays up to 4 KiB).
const CHECK_EVERY_WAKE_UPS: u32 = 64;

/// How much of the program's terminal output is relayed once it has
/// exited.
pub const LEFT_OVER_MAX: usize = 1 << 20;

/// Which step failed, for `unable to STEP: REASON`.
pub type Failure = (&'static [u8], Errno);

/// The program's side of a new pseudo-terminal, and ours.
pub struct Pty {
    master: OwnedFd,
    terminal: OwnedFd,
}

impl Pty {
    /// A new pseudo-terminal with the modes and window size of `caller`
    /// (a terminal).
    pub fn like(caller: BorrowedFd<'_>) -> Result<Pty, Failure> {
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = rustix::pty::openpt(flags).map_err(|e| (&b"open a pseudo-terminal"[..], e))?;
        rustix::pty::unlockpt(&master).map_err(|e| (&b"unlock a pseudo-terminal"[..], e))?;
        let terminal =
            rustix::pty::ioctl_tiocgptpeer(&master, flags).map_err(|e| (&b"open a pseudo-terminal"[..], e))?;
        let modes = rustix::termios::tcgetattr(caller).map_err(|e| (&b"read the terminal's modes"[..], e))?;
        rustix::termios::tcsetattr(&terminal, OptionalActions::Now, &modes)
            .map_err(|e| (&b"set the pseudo-terminal's modes"[..], e))?;
        if let Ok(size) = rustix::termios::tcgetwinsize(caller) {
            let _ = rustix::termios::tcsetwinsize(&terminal, size);
        }
        Ok(Pty { master, terminal })
    }

    /// The program's terminal, to put on its descriptors.
    pub fn terminal(&self) -> BorrowedFd<'_> {
        self.terminal.as_fd()
    }

    /// In the program's child, after setsid: makes the terminal its
    /// controlling terminal, owned by `uid` as a login's is.
    pub fn become_controlling(&self, uid: rustix::process::Uid) -> Result<(), Failure> {
        rustix::process::ioctl_tiocsctty(&self.terminal).map_err(|e| (&b"take the pseudo-terminal"[..], e))?;
        rustix::fs::fchown(&self.terminal, Some(uid), None).map_err(|e| (&b"give the pseudo-terminal"[..], e))
    }

    /// Relays between the caller's terminal (`input`, if the caller's
    /// standard input is one; `output`) and the program's until the
    /// `program` has exited and its output
    /// is written out. Meanwhile a hang-up of the caller's terminal is a
    /// SIGHUP to the program, and the end of `connection` (the client
    /// gone) a SIGTERM and SIGCONT. The caller's terminal is in raw mode
    /// while `client` (the caller's process, if known) is in the
    /// foreground, and as it was when this returns.
    pub fn relay(
        self,
        input: Option<BorrowedFd<'_>>,
        output: BorrowedFd<'_>,
        program: Program<'_>,
        connection: BorrowedFd<'_>,
        client: Option<Pid>,
        buffers: &mut Buffers,
    ) -> Result<(), Failure> {
        let Program { pid, pidfd } = program;
        drop(self.terminal);
        let caller = input.unwrap_or(output);
        let saved = rustix::termios::tcgetattr(caller).map_err(|e| (&b"read the terminal's modes"[..], e))?;
        let mut raw: Termios = saved.clone();
        raw.make_raw();
        let modes = Modes { caller, saved, raw, client, raw_now: false };
        let mut relay = Relay { master: self.master.as_fd(), input, output, pid, pidfd, connection, modes };
        let relayed = relay.run(buffers);
        // Whatever happened, the caller gets its terminal back as it was.
        if relay.modes.raw_now {
            let _ = rustix::termios::tcsetattr(caller, OptionalActions::Drain, &relay.modes.saved);
        }
        relayed
    }
}

/// The program a relay serves: its pid, and a pidfd that says when it
/// has exited.
pub struct Program<'a> {
    /// The program's pid.
    pub pid: Pid,
    /// A pidfd of it.
    pub pidfd: BorrowedFd<'a>,
}

/// The caller's terminal modes, raw while the caller is in the foreground.
struct Modes<'a> {
    caller: BorrowedFd<'a>,
    saved: Termios,
    raw: Termios,
    client: Option<Pid>,
    raw_now: bool,
}

impl Modes<'_> {
    /// Puts the terminal in raw mode if the caller is in the foreground,
    /// back as it was if not; whether it is.
    fn follow(&mut self) -> Result<bool, Failure> {
        let foreground = self.client.is_none_or(in_foreground);
        if foreground != self.raw_now {
            let modes = if foreground { &self.raw } else { &self.saved };
            rustix::termios::tcsetattr(self.caller, OptionalActions::Now, modes)
                .map_err(|e| (&b"set the terminal's modes"[..], e))?;
            self.raw_now = foreground;
        }
        Ok(foreground)
    }
}

/// Whether the process `pid`'s process group is the foreground one of its
/// terminal (/proc/PID/stat: pgrp and tpgid). Without /proc, or once the
/// process is gone, it counts as in the foreground.
fn in_foreground(pid: Pid) -> bool {
    let mut path = [0u8; 32];
    let mut digits = [0u8; crate::num::U64_DIGITS];
    let n = crate::num::fmt_u64(pid.as_raw_nonzero().get() as u64, &mut digits);
    let parts: [&[u8]; 3] = [b"/proc/", n, b"/stat\0"];
    let mut at = 0;
    for p in parts {
        path[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    let Some(path) = crate::runtime::cstr_with_nul(&path[..at]) else { return true };
    let Ok(file) =
        rustix::fs::open(path, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
    else {
        return true;
    };
    let mut stat = [0u8; 512];
    let Ok(len) = crate::io::read(file.as_fd(), &mut stat) else { return true };
    // After the command name (in parentheses, which may hold anything):
    // state, ppid, pgrp, session, tty_nr, tpgid.
    let Some(close) = memchr::memrchr(b')', &stat[..len]) else { return true };
    let mut fields = stat[close + 1..len].split(|&b| b == b' ').filter(|f| !f.is_empty());
    // (tpgid is -1 without a terminal: not a number here, so unknown.)
    let pgrp = fields.nth(2).and_then(crate::num::parse_u64);
    let tpgid = fields.nth(2).and_then(crate::num::parse_u64);
    match (pgrp, tpgid) {
        (Some(pgrp), Some(tpgid)) => pgrp == tpgid,
        _ => true,
    }
}

struct Relay<'a> {
    master: BorrowedFd<'a>,
    input: Option<BorrowedFd<'a>>,
    output: BorrowedFd<'a>,
    pid: Pid,
    pidfd: BorrowedFd<'a>,
    connection: BorrowedFd<'a>,
    modes: Modes<'a>,
}

#[derive(Clone, Copy)]
enum Slot {
    Input,
    FromProgram,
    ToProgram,
    Output,
    Exited,
    Connection,
}

impl Relay<'_> {
    fn run(&mut self, buffers: &mut Buffers) -> Result<(), Failure> {
        let Buffers { up, down } = buffers; // up: the caller's keys to the program; down: its output to the caller
        up.clear();
        down.clear();
        let mut input_open = self.input.is_some();
        let mut foreground = self.modes.follow()?;
        let mut program_open = true; // its terminal still open somewhere
        let mut exited = false;
        let mut watching_connection = true;
        let mut size = rustix::termios::tcgetwinsize(self.output).ok();
        let tick = Timespec { tv_sec: 0, tv_nsec: RESIZE_CHECK_MS * 1_000_000 };
        let mut wake_ups = 0u32;
        loop {
            let reading_input = input_open && foreground;
            if exited {
                return self.finish(down.pending(), program_open);
            }
            let mut fds = ArrayVec::<PollFd<'_>, 6>::new();
            let mut slots = ArrayVec::<Slot, 6>::new();
            let mut watch = |fd, events, slot| {
                fds.push(PollFd::from_borrowed_fd(fd, events));
                slots.push(slot);
            };
            if let (Some(input), true, true) = (self.input, reading_input, up.is_empty()) {
                watch(input, PollFlags::IN, Slot::Input);
            }
            if program_open && down.is_empty() {
                watch(self.master, PollFlags::IN, Slot::FromProgram);
            }
            if program_open && !up.is_empty() {
                watch(self.master, PollFlags::OUT, Slot::ToProgram);
            }
            if !down.is_empty() {
                watch(self.output, PollFlags::OUT, Slot::Output);
            }
            if !exited {
                watch(self.pidfd, PollFlags::IN, Slot::Exited);
            }
            if watching_connection {
                watch(self.connection, PollFlags::IN, Slot::Connection);
            }
            let quiet = match rustix::event::poll(&mut fds, Some(&tick)) {
                Ok(n) => n == 0,
                Err(Errno::INTR) => false,
                Err(e) => return Err((b"poll", e)),
            };
            // After a quiet tick, or every so many wake-ups while busy: no
            // clock needed, and no check per piece of output.
            wake_ups += 1;
            if quiet || wake_ups >= CHECK_EVERY_WAKE_UPS {
                wake_ups = 0;
                foreground = self.modes.follow()?;
                let now = rustix::termios::tcgetwinsize(self.output).ok();
                if let (Some(new), true) = (now, now != size) {
                    size = now;
                    // The program's terminal tells its process group (SIGWINCH).
                    let _ = rustix::termios::tcsetwinsize(self.master, new);
                }
            }
            for (fd, slot) in fds.iter().zip(slots.iter()) {
                if fd.revents().is_empty() {
                    continue;
                }
                match slot {
                    Slot::Input => match rustix::io::read(self.input.unwrap_or(self.output), up.space()) {
                        Ok(n) if n > 0 => up.filled(n),
                        Err(Errno::INTR | Errno::AGAIN) => {}
                        // The caller's terminal hung up.
                        Ok(_) | Err(_) => {
                            input_open = false;
                            let _ = rustix::process::kill_process(self.pid, Signal::HUP);
                        }
                    },
                    Slot::ToProgram => match rustix::io::write(self.master, up.pending()) {
                        Ok(n) => up.consumed(n),
                        Err(Errno::INTR | Errno::AGAIN) => {}
                        Err(_) => up.clear(),
                    },
                    Slot::FromProgram => match rustix::io::read(self.master, down.space()) {
                        Ok(n) if n > 0 => down.filled(n),
                        Err(Errno::INTR | Errno::AGAIN) => {}
                        // EIO: no process has the program's terminal open.
                        Ok(_) | Err(_) => program_open = false,
                    },
                    Slot::Output => match rustix::io::write(self.output, down.pending()) {
                        Ok(n) => down.consumed(n),
                        Err(Errno::INTR | Errno::AGAIN) => {}
                        Err(e) => return Err((b"write to the terminal", e)),
                    },
                    Slot::Exited => exited = true,
                    Slot::Connection => {
                        let mut scratch = [0u8; 256];
                        if matches!(crate::io::read(self.connection, &mut scratch), Ok(0) | Err(_)) {
                            watching_connection = false;
                            let _ = rustix::process::kill_process(self.pid, Signal::TERM);
                            let _ = rustix::process::kill_process(self.pid, Signal::CONT);
                        }
                    }
                }
            }
        }
    }

    /// Once the program has exited: writes out `pending`, then what is
    /// left on its terminal, without waiting (what it wrote before it
    /// exited is there already; a process it left behind, which may write
    /// for ever, gets at most [`LEFT_OVER_MAX`] bytes through).
    fn finish(&self, pending: &[u8], program_open: bool) -> Result<(), Failure> {
        let out =
            |bytes: &[u8]| crate::io::write_all(self.output, bytes).map_err(|e| (&b"write to the terminal"[..], e));
        out(pending)?;
        if !program_open {
            return Ok(());
        }
        let flags = rustix::fs::fcntl_getfl(self.master).map_err(|e| (&b"read the terminal's flags"[..], e))?;
        rustix::fs::fcntl_setfl(self.master, flags | rustix::fs::OFlags::NONBLOCK)
            .map_err(|e| (&b"set the terminal's flags"[..], e))?;
        let mut buf = [0u8; 4096];
        let mut left = LEFT_OVER_MAX;
        while left > 0 {
            match rustix::io::read(self.master, &mut buf[..left.min(4096)]) {
                Ok(n) if n > 0 => {
                    out(&buf[..n])?;
                    left -= n;
                }
                Err(Errno::INTR) => {}
                _ => break,
            }
        }
        Ok(())
    }
}
