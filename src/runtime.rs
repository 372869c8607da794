//! The runtime: what a C library would give our programs, and we do not link.
//!
//! It provides the process entry point (argv and envp read off the initial
//! stack), the handful of system calls that rustix does not expose publicly
//! (`exit_group`, `execve`, a vfork-style `clone`, `rt_sigprocmask`, `rt_sigaction`,
//! `signalfd4`), the memory functions the compiler emits calls to, and the
//! panic handler. Everything architecture-specific is in one small file per
//! architecture (`runtime/x86_64.rs`).
//!
//! It does not provide an allocator, threads, stdio buffering, locale or
//! anything else of libc: programs use rustix for every other system call.
//! Binaries hook into it with [`crate::program!`].

use core::ffi::{c_char, CStr};
use rustix::io::Errno;

#[cfg(target_arch = "x86_64")]
#[path = "runtime/x86_64.rs"]
mod arch;

use arch::{syscall1, syscall3, syscall4};

/// A NUL-terminated array of pointers to NUL-terminated strings, as the
/// kernel lays out argv and envp; the array ends with a null pointer.
#[derive(Clone, Copy)]
pub struct CStrArray(*const *const c_char);

impl CStrArray {
    /// # Safety
    /// `ptr` must point to a null-terminated array of pointers to
    /// NUL-terminated strings that live for the rest of the process.
    pub const unsafe fn from_ptr(ptr: *const *const c_char) -> Self {
        CStrArray(ptr)
    }

    /// The raw pointer, as `execve` wants it.
    pub fn as_ptr(self) -> *const *const c_char {
        self.0
    }

    /// The pointers as a slice, without the final null.
    pub fn as_slice(self) -> &'static [*const c_char] {
        let mut n = 0;
        // SAFETY: the array is null-terminated (constructor contract), so
        // every index read before the terminator is in bounds.
        unsafe {
            while !(*self.0.add(n)).is_null() {
                n += 1;
            }
            core::slice::from_raw_parts(self.0, n)
        }
    }

    /// The array starting at element `i` (which must be at most the count).
    pub fn skip(self, i: usize) -> Self {
        debug_assert!(i <= self.as_slice().len());
        // SAFETY: `i` is within the array including its terminator.
        CStrArray(unsafe { self.0.add(i) })
    }

    /// Iterates over the strings.
    pub fn iter(self) -> impl Iterator<Item = &'static CStr> {
        // SAFETY: each element is a NUL-terminated string living for the
        // whole process (constructor contract).
        self.as_slice().iter().map(|&p| unsafe { CStr::from_ptr(p) })
    }
}

/// What the kernel hands a new process: its arguments and environment.
#[derive(Clone, Copy)]
pub struct Start {
    pub argv: CStrArray,
    pub envp: CStrArray,
}

impl Start {
    /// Reads argc, argv and envp from the initial stack.
    ///
    /// # Safety
    /// `sp` must be the stack pointer the kernel gave `_start`.
    pub unsafe fn from_stack(sp: *const usize) -> Start {
        // SAFETY: the kernel's layout is argc, argv[argc], NULL, envp..., NULL.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1) as *const *const c_char;
            Start { argv: CStrArray(argv), envp: CStrArray(argv.add(argc + 1)) }
        }
    }
}

/// Ends the process (every thread of it) with `code`.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes an int and does not return.
    unsafe { syscall1(arch::SYS_EXIT_GROUP, code as usize) };
    // SAFETY: exit_group cannot fail and never returns.
    unsafe { core::hint::unreachable_unchecked() }
}

fn result(ret: usize) -> Result<usize, Errno> {
    if ret > (-4096isize) as usize {
        Err(Errno::from_raw_os_error(-(ret as isize) as i32))
    } else {
        Ok(ret)
    }
}

/// Replaces the process image. Returns only on failure.
pub fn execve(path: &CStr, argv: CStrArray, envp: CStrArray) -> Errno {
    // SAFETY: all three pointers are NUL/null-terminated as execve requires
    // (CStr and CStrArray invariants).
    let ret = unsafe { syscall3(arch::SYS_EXECVE, path.as_ptr() as usize, argv.0 as usize, envp.0 as usize) };
    match result(ret) {
        Err(e) => e,
        Ok(_) => Errno::INVAL,
    }
}

/// A set of signals, as the kernel's `sigset_t` (64 bits on Linux).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const fn with(self, sig: rustix::process::Signal) -> SigSet {
        SigSet(self.0 | 1u64 << (sig.as_raw() - 1))
    }
}

const SIG_BLOCK: usize = 0;
const SIG_SETMASK: usize = 2;

fn sigprocmask(how: usize, set: &SigSet) -> Result<SigSet, Errno> {
    let mut old = SigSet(0);
    // SAFETY: both pointers are to valid 8-byte sigsets; size is 8.
    let ret =
        unsafe { syscall4(arch::SYS_RT_SIGPROCMASK, how, set as *const _ as usize, &mut old as *mut _ as usize, 8) };
    result(ret).map(|_| old)
}

/// Adds `set` to the blocked signals; returns the previous mask.
pub fn block_signals(set: SigSet) -> Result<SigSet, Errno> {
    sigprocmask(SIG_BLOCK, &set)
}

/// Sets the blocked signals to exactly `set`.
pub fn set_signal_mask(set: SigSet) -> Result<(), Errno> {
    sigprocmask(SIG_SETMASK, &set).map(|_| ())
}

/// A signal's disposition, as far as our programs care: they never
/// install handlers of their own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Disposition {
    Default,
    Ignore,
    /// A handler (only seen when inherited from a parent that exec'd us
    /// while catching it; execve resets handlers, so never in practice).
    Handler,
}

/// The kernel's `struct sigaction` on Linux.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Sets the disposition of `sig` to `to` (Default or Ignore) and returns
/// the previous one; `None` only queries.
pub fn set_disposition(sig: rustix::process::Signal, to: Option<Disposition>) -> Result<Disposition, Errno> {
    let new = to.map(|d| KernelSigaction {
        handler: if d == Disposition::Ignore { 1 } else { 0 },
        flags: 0,
        restorer: 0,
        mask: 0,
    });
    let mut old = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    let newp = new.as_ref().map_or(0, |n| n as *const _ as usize);
    // SAFETY: both pointers are to valid kernel sigaction structs (or null
    // for "no change"); SIG_DFL/SIG_IGN need no restorer; size is 8.
    let ret = unsafe { syscall4(arch::SYS_RT_SIGACTION, sig.as_raw() as usize, newp, &mut old as *mut _ as usize, 8) };
    result(ret)?;
    Ok(match old.handler {
        0 => Disposition::Default,
        1 => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

/// Creates a signalfd for `set` (non-blocking, close-on-exec).
pub fn signalfd(set: SigSet) -> Result<rustix::fd::OwnedFd, Errno> {
    const SFD_CLOEXEC: usize = 0o2000000;
    const SFD_NONBLOCK: usize = 0o4000;
    // SAFETY: -1 asks for a new descriptor; the set pointer is valid for 8 bytes.
    let ret =
        unsafe { syscall4(arch::SYS_SIGNALFD4, usize::MAX, &set as *const _ as usize, 8, SFD_CLOEXEC | SFD_NONBLOCK) };
    // SAFETY: on success the kernel returned a new descriptor that we own.
    result(ret).map(|fd| unsafe { rustix::fd::FromRawFd::from_raw_fd(fd as i32) })
}

/// What a function that never returns is declared to return (`!` is not
/// stable as a type).
pub type Never = core::convert::Infallible;

/// Runs `child` in a new process that shares our memory and stack-less
/// state until it calls `execve` or exits, as `vfork` does, but on a stack
/// of its own (so it cannot corrupt ours). The caller is suspended until
/// then, so `child` may read anything the caller prepared. `child` must end
/// by exec or [`exit`] and must not touch the caller's mutable state except
/// through what it was given. Returns the child's pid.
pub fn spawn(child: &mut dyn FnMut() -> Never) -> Result<rustix::process::Pid, Errno> {
    const CLONE_VM: usize = 0x100;
    const CLONE_VFORK: usize = 0x4000;
    const SIGCHLD: usize = 17;
    // The child runs only a few syscalls; 16 KiB leaves room for message
    // formatting. It lives in our frame, which stays valid while we are
    // suspended.
    let mut stack = core::mem::MaybeUninit::<[u8; 16384]>::uninit();
    let mut closure: &mut dyn FnMut() -> Never = child;
    // SAFETY: the top of `stack` is a valid, exclusively owned stack for the
    // child; CLONE_VFORK keeps this frame (and `closure`) alive until the
    // child has exec'd or exited; `trampoline` never returns.
    let ret = unsafe {
        let top = (stack.as_mut_ptr() as *mut u8).add(16384);
        arch::clone_on_stack(
            CLONE_VM | CLONE_VFORK | SIGCHLD,
            top,
            trampoline,
            &mut closure as *mut &mut dyn FnMut() -> Never as *mut u8,
        )
    };
    let pid = result(ret)?;
    // SAFETY: a positive return is the child's pid.
    Ok(unsafe { rustix::process::Pid::from_raw_unchecked(pid as i32) })
}

extern "C" fn trampoline(arg: *mut u8) -> ! {
    // SAFETY: `spawn` passes a pointer to a live `&mut dyn FnMut() -> Never`.
    let f = unsafe { &mut *(arg as *mut &mut dyn FnMut() -> Never) };
    match f() {}
}

/// A large table that lives in `.bss` and is handed out once, as a
/// `&'static mut`. Without an allocator, big fixed-capacity tables would
/// otherwise live on the stack, where stack probes touch (and so make
/// resident) every page of them; in `.bss` only the pages used count.
pub struct Table<T> {
    taken: core::sync::atomic::AtomicBool,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY: the value is reachable only through the one `&mut` that `take`
// hands out, guarded by an atomic flag.
unsafe impl<T> Sync for Table<T> {}

impl<T> Table<T> {
    /// `value` should be all zeroes (e.g. an empty `ArrayVec`) so that the
    /// table goes to `.bss`.
    pub const fn new(value: T) -> Table<T> {
        Table { taken: core::sync::atomic::AtomicBool::new(false), value: core::cell::UnsafeCell::new(value) }
    }

    /// The table, the first time; `None` afterwards.
    // A `&mut` from `&self` is the point: the flag makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if self.taken.swap(true, core::sync::atomic::Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the flag was false, so no other reference exists, and
        // none will be made: this is the only `&mut` ever handed out.
        Some(unsafe { &mut *self.value.get() })
    }
}

/// The symbols the compiler may call and a libc would define.
pub mod mem {
    pub use super::arch::{memcmp, memcpy, memmove, memset, strlen};
}

/// Writes one line for a panic and exits 111, the suite's code for a
/// temporary or system error. No formatting machinery is pulled in.
pub fn panic_exit(info: &core::panic::PanicInfo) -> ! {
    let _ = info;
    let msg = b"fatal: internal error (panic)\n";
    let _ = rustix::io::write(unsafe { rustix::stdio::stderr() }, msg);
    exit(111)
}

/// Turns a binary into a program on this runtime: defines `_start`, the
/// memory functions and the panic handler, and calls `$main(Start) -> !`.
#[macro_export]
macro_rules! program {
    ($main:path) => {
        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::runtime::panic_exit(info)
        }

        $crate::runtime_entry!();

        #[no_mangle]
        extern "C" fn __ucspi_main(sp: *const usize) -> ! {
            // SAFETY: called only from `_start` with the kernel's stack pointer.
            let start = unsafe { $crate::runtime::Start::from_stack(sp) };
            $main(start)
        }

        #[no_mangle]
        unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: same contract as C's memcpy.
            unsafe { $crate::runtime::mem::memcpy(d, s, n) }
        }
        #[no_mangle]
        unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: same contract as C's memmove.
            unsafe { $crate::runtime::mem::memmove(d, s, n) }
        }
        #[no_mangle]
        unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: same contract as C's memset.
            unsafe { $crate::runtime::mem::memset(d, c, n) }
        }
        #[no_mangle]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: same contract as C's memcmp.
            unsafe { $crate::runtime::mem::memcmp(a, b, n) }
        }
        #[no_mangle]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: same contract as C's bcmp.
            unsafe { $crate::runtime::mem::memcmp(a, b, n) }
        }
        #[no_mangle]
        unsafe extern "C" fn strlen(s: *const u8) -> usize {
            // SAFETY: same contract as C's strlen.
            unsafe { $crate::runtime::mem::strlen(s) }
        }
    };
}
