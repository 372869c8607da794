//! Signals, as far as the programs handle them: a [`SigSet`], the blocked
//! mask (`rt_sigprocmask`), dispositions set to default or ignore, or
//! queried (`rt_sigaction`), and a signalfd.
//!
//! It does not install handlers (no program has one) nor read the
//! signalfd: its owner does ([`crate::children`]).

use super::arch::syscall4;
use super::{nr, result};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::process::Signal;

/// A set of signals, as the kernel's `sigset_t` (64 bits on Linux).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SigSet(pub u64);

impl SigSet {
    /// No signal.
    pub const EMPTY: SigSet = SigSet(0);

    /// This set and `sig`.
    pub const fn with(self, sig: Signal) -> SigSet {
        SigSet(self.0 | 1u64 << (sig.as_raw() - 1))
    }
}

/// The size of the kernel's signal set, which rt_sigaction,
/// rt_sigprocmask and signalfd4 are told: 64 signals on every architecture
/// we build for, whatever its word size.
const SIGSET_SIZE: usize = core::mem::size_of::<SigSet>();
const _: () = assert!(SIGSET_SIZE == core::mem::size_of::<linux_raw_sys::general::kernel_sigset_t>());

const SIG_BLOCK: usize = 0;
const SIG_UNBLOCK: usize = 1;
const SIG_SETMASK: usize = 2;

fn sigprocmask(how: usize, set: &SigSet) -> Result<SigSet, Errno> {
    let mut old = SigSet(0);
    // SAFETY: both pointers are to valid sigsets of SIGSET_SIZE bytes.
    let ret = unsafe {
        syscall4(nr::RT_SIGPROCMASK, how, set as *const _ as usize, &mut old as *mut _ as usize, SIGSET_SIZE)
    };
    result(ret).map(|_| old)
}

/// Adds `set` to the blocked signals; returns the previous mask.
pub fn block_signals(set: SigSet) -> Result<SigSet, Errno> {
    sigprocmask(SIG_BLOCK, &set)
}

/// Removes `set` from the blocked signals; returns the previous mask.
pub fn unblock_signals(set: SigSet) -> Result<SigSet, Errno> {
    sigprocmask(SIG_UNBLOCK, &set)
}

/// Sets the blocked signals to exactly `set`.
pub fn set_signal_mask(set: SigSet) -> Result<(), Errno> {
    sigprocmask(SIG_SETMASK, &set).map(|_| ())
}

/// A signal's disposition, as far as our programs care: they never
/// install handlers of their own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Disposition {
    /// SIG_DFL.
    Default,
    /// SIG_IGN.
    Ignore,
    /// A handler (only seen when inherited from a parent that exec'd us
    /// while catching it; execve resets handlers, so never in practice).
    Handler,
}

/// The kernel's `struct sigaction` for the architecture being built (its
/// layout differs: riscv64 has no restorer field, arm's mask is two words),
/// holding SIG_DFL or SIG_IGN: neither needs flags or a restorer.
struct KernelSigaction(linux_raw_sys::general::kernel_sigaction);

impl KernelSigaction {
    /// A disposition with this handler value (0 SIG_DFL, 1 SIG_IGN), no
    /// flags, empty mask.
    fn with_handler(handler: usize) -> KernelSigaction {
        // SAFETY: every field is an integer, an array of integers or an
        // optional function pointer, for which all-zero bytes are valid
        // (no handler, no flags, no restorer, empty mask).
        let mut action: linux_raw_sys::general::kernel_sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: the handler field is the size of a pointer; 0 is None and
        // 1 (SIG_IGN) a non-null value, which is all a function pointer
        // must be: nothing in this process ever calls it.
        action.sa_handler_kernel =
            unsafe { core::mem::transmute::<usize, linux_raw_sys::general::__kernel_sighandler_t>(handler) };
        KernelSigaction(action)
    }

    /// The handler value (0 SIG_DFL, 1 SIG_IGN, else a function).
    fn handler(&self) -> usize {
        self.0.sa_handler_kernel.map_or(0, |f| f as usize)
    }
}

/// Sets the disposition of `sig` to `to` (Default or Ignore) and returns
/// the previous one; `None` only queries.
pub fn set_disposition(sig: Signal, to: Option<Disposition>) -> Result<Disposition, Errno> {
    let new = to.map(|d| KernelSigaction::with_handler(usize::from(d == Disposition::Ignore)));
    let mut old = KernelSigaction::with_handler(0);
    let newp = new.as_ref().map_or(0, |n| n as *const _ as usize);
    // SAFETY: both pointers are to valid kernel sigaction structs (or null
    // for "no change"); SIG_DFL/SIG_IGN need no restorer; the kernel's sigset size.
    let ret =
        unsafe { syscall4(nr::RT_SIGACTION, sig.as_raw() as usize, newp, &mut old as *mut _ as usize, SIGSET_SIZE) };
    result(ret)?;
    Ok(match old.handler() {
        0 => Disposition::Default,
        1 => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

/// The signals of `set` whose disposition is "ignore" (left so by our
/// launcher: `nohup`, or a shell's `&`).
pub fn ignored_signals(set: SigSet) -> Result<SigSet, Errno> {
    let mut ignored = SigSet::EMPTY;
    for signo in 1..=64usize {
        let bit = 1u64 << (signo - 1);
        if set.0 & bit == 0 {
            continue;
        }
        let mut old = KernelSigaction::with_handler(0);
        // SAFETY: a null new action (a query) and a valid kernel sigaction
        // struct for the old one; the kernel's sigset size.
        let ret = unsafe { syscall4(nr::RT_SIGACTION, signo, 0, &mut old as *mut _ as usize, SIGSET_SIZE) };
        result(ret)?;
        if old.handler() == 1 {
            ignored.0 |= bit;
        }
    }
    Ok(ignored)
}

/// Sets each signal of `set` to its default disposition. A server calls
/// it for the signals it uses itself, so that its children start with
/// those at default whatever the launcher left ignored (SIGPIPE,
/// SIGCHLD...); the signals it does not use keep the launcher's
/// disposition, as with the original and s6 (a server started with `&`
/// from a script keeps SIGINT and SIGQUIT ignored, and so do its children).
pub fn default_dispositions(set: SigSet) -> Result<(), Errno> {
    for signo in 1..=64usize {
        if set.0 & 1u64 << (signo - 1) == 0 {
            continue;
        }
        let dfl = KernelSigaction::with_handler(0);
        // SAFETY: a valid kernel sigaction struct (SIG_DFL), no old value
        // asked for; the kernel's sigset size.
        let ret = unsafe { syscall4(nr::RT_SIGACTION, signo, &dfl as *const _ as usize, 0, SIGSET_SIZE) };
        result(ret)?;
    }
    Ok(())
}

/// Creates a signalfd for `set` (non-blocking, close-on-exec, never on
/// descriptors 0 to 2).
pub fn signalfd(set: SigSet) -> Result<OwnedFd, Errno> {
    // signalfd's flags are the open flags of the architecture.
    let flags = (rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NONBLOCK).bits() as usize;
    // SAFETY: -1 asks for a new descriptor; the set pointer is valid for
    // SIGSET_SIZE bytes.
    let ret = unsafe { syscall4(nr::SIGNALFD4, usize::MAX, &set as *const _ as usize, SIGSET_SIZE, flags) };
    // SAFETY: on success the kernel returned a new descriptor that we own.
    let fd = result(ret).map(|fd| unsafe { rustix::fd::FromRawFd::from_raw_fd(fd as i32) })?;
    super::above_stdio(fd)
}
