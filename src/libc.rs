//! What the programs that link libc share: ipcperl, and the preforking
//! servers whose handler is a C function (`ipchandle/`, the C interface
//! to [`crate::prefork`]). Built only with the `libc` feature, which they
//! enable: the other programs link no libc, and nothing here may reach
//! them.
//!
//! Such a program starts from libc's `main`, not from our entry point, and
//! its children are forked through libc ([`fork`], for
//! [`Server::fork_with`](crate::prefork::Server::fork_with)), so that
//! libc's own state (its atfork handlers, its locks, its cached pid) is
//! right in them. Its handler may change libc's `environ`, which the
//! original's servers check after each call: [`environ`],
//! [`set_environ`], [`drop_for_changed_environ`].
#![allow(unsafe_code)]

use crate::log;
use crate::runtime::{self, CStrArray, Forked};
use core::ffi::{c_char, c_int};
use core::ptr::NonNull;
use rustix::io::Errno;
use rustix::process::Pid;

extern "C" {
    /// libc's fork.
    #[link_name = "fork"]
    fn libc_fork() -> c_int;
    /// libc's: where errno is, for this thread.
    fn __errno_location() -> *mut c_int;
    /// libc's: the process's environment, which getenv reads and setenv
    /// (or Perl's %ENV) writes.
    #[link_name = "environ"]
    static mut ENVIRON: *const *const c_char;
}

/// fork(2) through libc, which runs its `atfork` handlers and resets its
/// own per-process state in the child.
///
/// # Safety
/// As fork(2) in a program with one thread: always.
pub unsafe fn fork() -> Result<Forked, Errno> {
    // SAFETY: libc's fork takes nothing and returns -1, 0 or a pid.
    match unsafe { libc_fork() } {
        // SAFETY: errno is this thread's, set by the failed fork.
        -1 => Err(Errno::from_raw_os_error(unsafe { *__errno_location() })),
        0 => Ok(Forked::Child),
        // SAFETY: a positive return of fork is the child's pid.
        pid => Ok(Forked::Parent(unsafe { Pid::from_raw_unchecked(pid) })),
    }
}

/// libc's `environ` now: null (after clearenv) or a null-terminated array
/// of NUL-terminated strings.
pub fn environ() -> *const *const c_char {
    // SAFETY: a plain read of libc's variable, on the only thread.
    unsafe { core::ptr::addr_of!(ENVIRON).read() }
}

/// Makes `env` libc's `environ`, which getenv then reads.
///
/// # Safety
/// `env` must be a null-terminated array of NUL-terminated strings that
/// stays valid (and unchanged, but by libc) for as long as it is
/// `environ`; the program has one thread.
pub unsafe fn set_environ(env: *const *const c_char) {
    // SAFETY: a plain write of libc's variable, on the only thread; the
    // caller vouches for what it points to.
    unsafe { core::ptr::addr_of_mut!(ENVIRON).write(env) }
}

/// `NAME: warning: dropping connection, environ changed`, exit 111: the
/// original's servers' answer to a handler that left the environment
/// other than it found it. The child ends (the server replaces it): its
/// environment is no longer the one its connections must start from.
pub fn drop_for_changed_environ() -> ! {
    log::warn(&[b"dropping connection, environ changed"]);
    runtime::exit(log::EXIT_TEMP)
}

/// The program's [`Start`](runtime::Start), from what libc's start files
/// hand `main`; exits 111 if either is null.
///
/// # Safety
/// `argv` and `envp` must be main's (null-terminated arrays of
/// NUL-terminated strings, on the initial stack, which live as long as the
/// process), and nothing may change them while the program runs: libc's
/// setenv copies the initial environment before it adds to it, but
/// replaces a variable in place, in whatever array `environ` is then.
pub unsafe fn start(argv: *const *const c_char, envp: *const *const c_char) -> runtime::Start {
    let (Some(args), Some(env)) = (NonNull::new(argv.cast_mut()), NonNull::new(envp.cast_mut())) else {
        runtime::exit(log::EXIT_TEMP)
    };
    // SAFETY: the caller's word.
    unsafe { runtime::Start { argv: CStrArray::from_ptr(args), envp: CStrArray::from_ptr(env) } }
}
