//! The runtime: what a C library would give our programs, and we do not link.
//!
//! It provides the process entry point (argv, envp and the auxiliary vector
//! read off the initial stack), the self-relocation a static
//! position-independent executable needs before anything else runs (see
//! [`Start::from_entry`]), the handful of system calls that rustix does
//! not expose publicly (`exit_group`, `execve`, a vfork-style `clone` and a
//! fork, `rt_sigprocmask`, `rt_sigaction`, `signalfd4`, `close_range`,
//! `getgroups`, which rustix has only with an allocator; `getsockopt`,
//! for the peer's groups, which rustix does not ask; `fstatat64` on
//! 32-bit machines, where rustix's stat converts a whole `statx`), and the
//! memory functions the compiler emits calls to. Everything that differs
//! between architectures (system call numbers and instructions, the entry
//! point and the relocation loop, `struct sigaction`, the memory
//! functions) is in one file per architecture, `runtime/<arch>.rs`; an
//! architecture without one does not build.
//!
//! The rest is a file per concern under `runtime/`: `start` (the initial
//! stack, relocation and RELRO), `cstr` (C strings, argv-like arrays),
//! `process` (exit, execve, spawn, fork), `signal`, `fd` (descriptor
//! calls), `table` (`.bss` tables) and `mem`. This file holds the system
//! call numbers and the architecture's selection, and re-exports every
//! public item as `runtime::NAME`.
//!
//! It does not provide an allocator, threads, stdio buffering, locale or
//! anything else of libc: programs use rustix for every other system call.
//! Nor does it write messages (but the one line of a refused relocation,
//! before any Rust runs) or use [`crate::log`], which uses it: the two
//! meet only in [`crate::program!`] (`src/program.rs`), with which
//! binaries hook into the runtime.
#![allow(unsafe_code)]

use rustix::io::Errno;

// `start` first: it defines `relocation_asm!`, which each architecture's
// file uses.
#[macro_use]
mod start;

mod cstr;
mod fd;
pub mod mem;
mod process;
mod signal;
mod table;

#[cfg(target_arch = "x86_64")]
#[path = "runtime/x86_64.rs"]
mod arch;
#[cfg(target_arch = "aarch64")]
#[path = "runtime/aarch64.rs"]
mod arch;
#[cfg(target_arch = "arm")]
#[path = "runtime/arm.rs"]
mod arch;
#[cfg(target_arch = "riscv64")]
#[path = "runtime/riscv64.rs"]
mod arch;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm", target_arch = "riscv64")))]
compile_error!(
    "ucspi-ipc's runtime has no support for this architecture: it needs a src/runtime/<arch>.rs \
     (entry point, system call instructions, clone on a new stack, memory functions)"
);

/// The numbers of the system calls the runtime makes itself, and of
/// SIGCHLD, for the architecture being built: the kernel's own headers,
/// as linux-raw-sys (rustix's) carries them.
mod nr {
    use linux_raw_sys::general as k;
    pub const EXIT_GROUP: usize = k::__NR_exit_group as usize;
    pub const EXECVE: usize = k::__NR_execve as usize;
    pub const RT_SIGPROCMASK: usize = k::__NR_rt_sigprocmask as usize;
    pub const RT_SIGACTION: usize = k::__NR_rt_sigaction as usize;
    pub const SIGNALFD4: usize = k::__NR_signalfd4 as usize;
    pub const CLONE: usize = k::__NR_clone as usize;
    pub const FCNTL: usize = k::__NR_fcntl as usize;
    pub const CLOSE_RANGE: usize = k::__NR_close_range as usize;
    #[cfg(target_pointer_width = "32")]
    pub const FSTATAT64: usize = k::__NR_fstatat64 as usize;
    // The 32-bit ARM call of 16-bit gids is getgroups; of 32-bit ones,
    // getgroups32.
    #[cfg(target_arch = "arm")]
    pub const GETGROUPS: usize = k::__NR_getgroups32 as usize;
    #[cfg(not(target_arch = "arm"))]
    pub const GETGROUPS: usize = k::__NR_getgroups as usize;
    pub const WRITE: usize = k::__NR_write as usize;
    pub const GETRUSAGE: usize = k::__NR_getrusage as usize;
    pub const GETSOCKOPT: usize = k::__NR_getsockopt as usize;
    pub const SIGCHLD: usize = k::SIGCHLD as usize;
}

fn result(ret: usize) -> Result<usize, Errno> {
    if ret > (-4096isize) as usize {
        Err(Errno::from_raw_os_error(-(ret as isize) as i32))
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
pub(crate) use cstr::leaked_array;
pub use cstr::{cstr_with_nul, CStrArray, CStrs};
#[cfg(target_pointer_width = "32")]
pub use fd::stat_mode;
pub use fd::{above_stdio, close, close_from, close_range, getsockopt, is_open};
pub use process::{execve, exit, fork, getgroups, preemptions, spawn, Forked, Never, CHILD_STACK};
pub use signal::{
    block_signals, default_dispositions, ignored_signals, set_disposition, set_signal_mask, signalfd, unblock_signals,
    Disposition, SigSet,
};
pub use start::Start;
pub use table::Table;
