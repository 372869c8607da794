//! ipclisten [ -UdDqQv ] [ -c limit ] [ -g gid ] [ -u uid ] [ -b backlog ] path program...
//!
//! ucspi-ipc 0.70's listener: binds a Unix stream socket to path and
//! listens (an old path removed first unless -D), drops privileges, then
//! keeps `limit` instances of program running (default 1), each with the
//! listening socket on descriptors 0 and 1, blocking as the original's
//! (program is typically ipcaccept, or ipcserverd). It sets no variable.
//!
//! An instance that exits is started again: at once, or, when it lived
//! less than a second, one second after it started, so that a program
//! that cannot start is not forked in a tight loop. SIGTERM stops the
//! instances (SIGTERM, SIGCONT) and exits 0 once they have exited; SIGHUP
//! stops them, which starts them again; an instance gets SIGTERM if
//! ipclisten dies. With -v, the original's lines: `status: N/LIMIT` before
//! each start, `end PID status WSTAT` then `status: N/LIMIT` after each
//! exit.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use rustix::event::Timespec;
use rustix::process::Signal;
use ucspi_ipc::children::{self, Children, Signals};
use ucspi_ipc::io::Std;
use ucspi_ipc::runtime::{self, CStrArray, SigSet, Start};
use ucspi_ipc::socket::{self, ListenOptions};
use ucspi_ipc::uidgid::IdOptions;
use ucspi_ipc::{args::Getopt, exec, io, log};

ucspi_ipc::program!(main);

/// An instance that lived less than this many milliseconds is started
/// again only this long after it started (s6-supervise's pause).
const RESTART_MS: u64 = 1000;

fn main(start: Start) -> ! {
    log::init(c"ipclisten", c"[ -UdDqQv ] [ -c limit ] [ -g gid ] [ -u uid ] [ -b backlog ] path program");
    let mut listen = ListenOptions { remove_existing: true, backlog: i32::MAX, perms: 0o777, nonblocking: false };
    let mut limit = 1;
    let mut ids = IdOptions::default();
    // The last of -d -D, which an abstract socket refuses.
    let mut file_option = 0;
    let mut opts = Getopt::new(start.argv, b"UdDqQvc:g:u:b:");
    for opt in opts.by_ref() {
        match opt.letter {
            b'd' | b'D' => {
                listen.remove_existing = opt.letter == b'd';
                file_option = opt.letter;
            }
            b'q' => log::set_verbosity(0),
            b'Q' => log::set_verbosity(1),
            b'v' => log::set_verbosity(2),
            b'c' => limit = opt.number(1, children::MAX as u32) as usize,
            b'b' => listen.backlog = opt.number(0, i32::MAX as u32) as i32,
            _ if ids.read(&opt, start.envp) => {}
            _ => log::usage(),
        }
    }
    // Once the whole command line (and so -q) is read.
    let target = ids.target();
    if opts.operand_count() < 2 {
        log::usage();
    }
    let path = socket::server_path(opts.operands(), file_option);
    // Before anything is bound: a uid without a gid needs the user
    // database, and a change of ids needs root.
    target.complete().unwrap_or_else(|e| e.die());
    target.refuse_without_privilege();
    let sock = socket::listen_or_die(path, &listen);
    // After binding, so that the socket may live in a directory only root
    // may write.
    if let Err((what, e)) = target.apply() {
        log::die_sys(e, &[what]);
    }
    if let Err(e) = io::install_std(sock, &[Std::In, Std::Out]) {
        log::die_sys(e, &[b"move the socket to descriptors 0 and 1"]);
    }

    // Instances start with these at default and an empty mask; what our
    // launcher ignored otherwise stays ignored (SIGHUP under nohup too).
    let handled = children::heeded(SigSet::EMPTY.with(Signal::HUP)).with(Signal::CHILD).with(Signal::TERM);
    let signals = Signals::new(handled, SigSet::EMPTY.with(Signal::PIPE));
    let mut instances = Children::take(limit);
    let prog = opts.operands().skip(1);
    children::log_status(0, limit);
    // When instances may be started again, after one that did not last.
    let mut not_before = 0;
    loop {
        let now = now_ms();
        while now >= not_before && !instances.is_full() {
            if !start_instance(&mut instances, prog, start.envp) {
                not_before = now + RESTART_MS;
            }
        }
        let pause = (!instances.is_full()).then(|| timespec(not_before.saturating_sub(now)));
        signals.wait(pause.as_ref());
        let mut stop = false;
        signals.drain(|s| match s {
            Signal::TERM => stop = true,
            Signal::HUP => instances.kill_all(&[Signal::TERM, Signal::CONT]),
            _ => {}
        });
        instances.reap(|instance, _| {
            // The tag is when it started (the clock's low 32 bits).
            let lived = (now_ms() as u32).wrapping_sub(instance.tag) as u64;
            if lived < RESTART_MS {
                not_before = not_before.max(now_ms() + RESTART_MS - lived);
            }
        });
        if stop {
            instances.kill_all(&[Signal::TERM, Signal::CONT]);
            instances.wait_all(|_, _| {});
            runtime::exit(0)
        }
    }
}

/// Starts one instance, with `status: N/LIMIT` first; false when it could
/// not (a warning says why).
fn start_instance(instances: &mut Children, prog: CStrArray<'static>, envp: CStrArray<'static>) -> bool {
    children::log_status(instances.len() + 1, instances.max());
    let started = now_ms() as u32;
    let spawned = runtime::spawn(&mut || {
        // No instance serves on unsupervised: it gets SIGTERM when we die
        // (we are suspended until it execs, so we cannot have died yet).
        let _ = rustix::process::set_parent_process_death_signal(Some(Signal::TERM));
        if let Err(e) = runtime::set_signal_mask(SigSet::EMPTY) {
            log::die_dropping_sys(e, &[b"clear the signal mask"]);
        }
        // `warning: dropping connection, unable to run PROG: REASON`: the
        // original's words, for an instance too.
        exec::exec_or_drop(prog, envp)
    });
    match spawned {
        Ok(pid) => instances.add(pid, started),
        Err(e) => {
            log::warn_sys(e, &[b"fork"]);
            false
        }
    }
}

/// The monotonic clock, in milliseconds.
fn now_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000
}

fn timespec(ms: u64) -> Timespec {
    Timespec { tv_sec: (ms / 1000) as _, tv_nsec: ((ms % 1000) * 1_000_000) as _ }
}
