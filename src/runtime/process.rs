//! The process's own system calls that rustix does not expose: ending it
//! (`exit_group`), replacing its image (`execve`), starting children (a
//! vfork-style [`spawn`] on a stack of its own with a guard, and a real
//! [`fork`]), and two questions about it (its supplementary groups, how
//! often it was preempted).
//!
//! It does not wait for children or keep track of them: that is
//! [`crate::children`].

use super::arch::{syscall1, syscall3, syscall5};
use super::cstr::CStrArray;
use super::{nr, result};
use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use rustix::io::Errno;
use rustix::process::Pid;

/// Ends the process (every thread of it) with `code`.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes an int and does not return.
    unsafe { syscall1(nr::EXIT_GROUP, code as usize) };
    // SAFETY: exit_group cannot fail and never returns.
    unsafe { core::hint::unreachable_unchecked() }
}

/// Replaces the process image. Returns only on failure.
pub fn execve(path: &CStr, argv: CStrArray<'_>, envp: CStrArray<'_>) -> Errno {
    // SAFETY: all three pointers are NUL/null-terminated as execve requires
    // (CStr and CStrArray invariants).
    let ret = unsafe { syscall3(nr::EXECVE, path.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize) };
    match result(ret) {
        Err(e) => e,
        Ok(_) => Errno::INVAL,
    }
}

/// What a function that never returns is declared to return (`!` is not
/// stable as a type).
pub type Never = core::convert::Infallible;

/// Usable size of the stack [`spawn`] runs children on.
pub const CHILD_STACK: usize = 64 * 1024;
/// Inaccessible memory below the child's stack: an overrun faults there
/// (the child dies of SIGSEGV) instead of writing over other memory. As
/// large as the largest page size Linux uses, so that it is whole pages.
const GUARD: usize = 64 * 1024;

/// The child stack's mapping (0 until the first [`spawn`]), and whether a
/// child is running on it.
static CHILD_STACK_BASE: AtomicUsize = AtomicUsize::new(0);
static CHILD_STACK_BUSY: AtomicBool = AtomicBool::new(false);

/// The top of the child stack, mapped on first use: [`GUARD`] bytes of
/// inaccessible memory, then [`CHILD_STACK`] bytes of stack.
fn child_stack_top() -> Result<*mut u8, Errno> {
    use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
    let mut base = CHILD_STACK_BASE.load(Ordering::Acquire);
    if base == 0 {
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // chooses touches no existing memory.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                GUARD + CHILD_STACK,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )?
        };
        // SAFETY: the first GUARD bytes of our own new mapping, which
        // nothing references yet.
        unsafe { rustix::mm::mprotect(p, GUARD, MprotectFlags::empty())? };
        base = p as usize;
        // Only the thread holding CHILD_STACK_BUSY maps: no race.
        CHILD_STACK_BASE.store(base, Ordering::Release);
    }
    Ok((base + GUARD + CHILD_STACK) as *mut u8)
}

/// Runs `child` in a new process that shares our memory until it calls
/// `execve` or exits, as `vfork` does, on a stack of its own: one mapping of
/// [`CHILD_STACK`] bytes above an inaccessible guard region, made once and
/// reused (the caller is suspended until the child has exec'd or exited,
/// so one child at a time uses it). A child that needs more stack dies of
/// SIGSEGV; it cannot write over the caller's memory.
///
/// `child` may read anything the caller prepared; it must end by exec or
/// [`exit`] (its type says it cannot return), and what it writes into
/// shared memory is seen by the caller afterwards, as if it had been called.
/// Signal handlers the caller installed may run in the child until it
/// execs. Returns the child's pid; `Errno::BUSY` if another thread of this
/// process is spawning at the same moment.
pub fn spawn(child: &mut dyn FnMut() -> Never) -> Result<Pid, Errno> {
    const CLONE_VM: usize = 0x100;
    const CLONE_VFORK: usize = 0x4000;
    if CHILD_STACK_BUSY.swap(true, Ordering::Acquire) {
        return Err(Errno::BUSY);
    }
    let spawned = child_stack_top().and_then(|top| {
        let mut closure: &mut dyn FnMut() -> Never = child;
        // SAFETY: `top` is the top of a mapping that only this child uses
        // (CHILD_STACK_BUSY) and that stays mapped for the whole process;
        // CLONE_VFORK keeps this frame (and `closure`) alive until the child
        // has exec'd or exited; `trampoline` never returns.
        let ret = unsafe {
            __ucspi_clone_on_stack(
                CLONE_VM | CLONE_VFORK | nr::SIGCHLD,
                top,
                trampoline,
                &mut closure as *mut &mut dyn FnMut() -> Never as *mut u8,
            )
        };
        result(ret)
    });
    CHILD_STACK_BUSY.store(false, Ordering::Release);
    // SAFETY: a positive return of clone is the child's pid.
    Ok(unsafe { Pid::from_raw_unchecked(spawned? as i32) })
}

extern "C" {
    /// clone(flags) with the child on `stack`, running `entry(arg)`;
    /// returns the raw result (a pid, or a negated errno). In assembly, in
    /// each architecture's file: the child must not touch the caller's
    /// stack, which a function call would.
    ///
    /// Safety: `stack` must be the top of memory the child may use as its
    /// stack for as long as it runs in our address space; `entry` must
    /// never return.
    fn __ucspi_clone_on_stack(flags: usize, stack: *mut u8, entry: extern "C" fn(*mut u8) -> !, arg: *mut u8) -> usize;
}

extern "C" fn trampoline(arg: *mut u8) -> ! {
    // SAFETY: `spawn` passes a pointer to a live `&mut dyn FnMut() -> Never`.
    let f = unsafe { &mut *(arg as *mut &mut dyn FnMut() -> Never) };
    match f() {}
}

/// Which side of a [`fork`] we are on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Forked {
    /// The new process.
    Child,
    /// The caller, with the child's pid.
    Parent(Pid),
}

/// Creates a process with a copy of ours, as fork(2) does: both return
/// from this call, the child with [`Forked::Child`]. Unlike [`spawn`], the
/// child may live on and return to its caller (a preforking server's
/// children run their whole life in it).
///
/// # Safety
/// The child inherits our memory as it is: a lock another thread holds
/// stays held, and a C library's own per-process state (its cached thread
/// id, its `atfork` handlers) is not fixed up as its `fork()` would. So in
/// a process with other threads, or that uses a C library, the child must
/// make only system calls (through rustix or this runtime) until it execs
/// or exits; such a process should fork through its C library instead.
pub unsafe fn fork() -> Result<Forked, Errno> {
    const CLONE_ARGS: usize = 0;
    // SAFETY: clone with only an exit signal and no new stack is fork: the
    // child continues on its own copy of this stack; the caller vouches
    // for the process's state (above).
    let ret = unsafe { syscall5(nr::CLONE, nr::SIGCHLD, CLONE_ARGS, CLONE_ARGS, CLONE_ARGS, CLONE_ARGS) };
    match result(ret)? {
        0 => Ok(Forked::Child),
        // SAFETY: a positive return of clone is the child's pid.
        pid => Ok(Forked::Parent(unsafe { Pid::from_raw_unchecked(pid as i32) })),
    }
}

/// The calling thread's supplementary groups, written into `buf`: how
/// many there are (`EINVAL` when `buf` cannot hold them all).
pub fn getgroups(buf: &mut [u32]) -> Result<usize, Errno> {
    let len = buf.len().min(i32::MAX as usize);
    // SAFETY: the kernel writes at most `len` gids into `buf`, which has
    // room for `len`.
    let ret = unsafe { syscall3(nr::GETGROUPS, len, buf.as_mut_ptr() as usize, 0) };
    result(ret)
}

/// How many times this process has been preempted so far: its
/// involuntary context switches (getrusage's `ru_nivcsw`, which rustix
/// does not ask for); 0 if the kernel does not say.
pub fn preemptions() -> u64 {
    let mut usage = core::mem::MaybeUninit::<linux_raw_sys::general::rusage>::uninit();
    // SAFETY: RUSAGE_SELF, and room for the kernel's struct rusage, which
    // it fills on success (getrusage takes two arguments: the third is
    // not read).
    let ret = unsafe {
        syscall3(nr::GETRUSAGE, linux_raw_sys::general::RUSAGE_SELF as usize, usage.as_mut_ptr() as usize, 0)
    };
    match result(ret) {
        // SAFETY: the call succeeded, so the kernel filled `usage`.
        Ok(_) => unsafe { usage.assume_init() }.ru_nivcsw as u64,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::process::Signal;

    #[test]
    fn forked_children_return_and_exit() {
        for code in [0, 7] {
            // SAFETY: the child makes only raw system calls (exit_group).
            match unsafe { fork() }.unwrap() {
                Forked::Child => exit(code),
                Forked::Parent(pid) => {
                    let (_, status) =
                        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap().unwrap();
                    assert_eq!(status.exit_status(), Some(code));
                }
            }
        }
    }

    /// One test for everything `spawn` does: tests run on parallel
    /// threads, and a second simultaneous `spawn` is refused with BUSY.
    #[test]
    fn spawned_children_exit_and_stack_overruns_fault() {
        for code in [0, 3, 111] {
            let pid = spawn(&mut || exit(code)).unwrap();
            let (_, status) =
                rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap().unwrap();
            assert_eq!(status.exit_status(), Some(code));
        }
        #[inline(never)]
        fn deep(n: usize) -> usize {
            let buf = core::hint::black_box([n as u8; 4096]);
            if n == 0 {
                return buf[0] as usize;
            }
            deep(n - 1) + core::hint::black_box(buf[n % 4096]) as usize
        }
        let pid = spawn(&mut || exit(deep(CHILD_STACK / 4096 + 4) as i32)).unwrap();
        let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap().unwrap();
        assert_eq!(status.terminating_signal(), Some(Signal::SEGV.as_raw()));
    }
}
