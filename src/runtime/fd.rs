//! Calls on descriptors that rustix lacks or makes dear: whether a number
//! is an open descriptor, closing every descriptor of a range
//! (`close_range`, one by one on kernels without it), a socket option
//! read into words (`getsockopt`: rustix has no `SO_PEERGROUPS`, and its
//! `SO_PEERCRED` makes a pid that cannot be 0 of one the kernel says is),
//! and on 32-bit machines a file's mode from `fstatat64`.
//!
//! And the two descriptor steps the runtime itself takes, which
//! [`crate::io`] re-exports for everyone: closing a descriptor by number,
//! and keeping a new one off 0, 1 and 2.
//!
//! It does not own descriptors or wrap them: the rest of the descriptor
//! work is [`crate::io`]'s.

use super::arch::syscall3;
#[cfg(target_pointer_width = "32")]
use super::arch::syscall4;
use super::arch::syscall5;
use super::{nr, result};
#[cfg(target_pointer_width = "32")]
use core::ffi::CStr;
use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use rustix::io::Errno;

/// Whether `fd` is an open descriptor (fcntl F_GETFD succeeds): a
/// question about a number, which needs no borrow of it.
pub fn is_open(fd: u32) -> bool {
    const F_GETFD: usize = 1;
    // SAFETY: F_GETFD only reads the descriptor's flags, if it exists.
    let ret = unsafe { syscall3(nr::FCNTL, fd as usize, F_GETFD, 0) };
    result(ret).is_ok()
}

/// Reads socket option `name` of `level` on `fd` into `buf`, as
/// getsockopt(2) does: how many bytes the kernel wrote (the options read
/// this way, `SO_PEERCRED` and `SO_PEERGROUPS`, are made of 32-bit words,
/// which any bytes make). A `buf` too small for `SO_PEERGROUPS` is
/// `ERANGE`.
pub fn getsockopt(fd: BorrowedFd<'_>, level: u32, name: u32, buf: &mut [u32]) -> Result<usize, Errno> {
    let mut len = core::mem::size_of_val(buf).min(i32::MAX as usize) as u32;
    // SAFETY: the kernel writes at most `len` bytes into `buf`, which has
    // room for them, and the length it wrote into `len`, a socklen_t; `fd`
    // is borrowed, so open.
    let ret = unsafe {
        syscall5(
            nr::GETSOCKOPT,
            fd.as_raw_fd() as usize,
            level as usize,
            name as usize,
            buf.as_mut_ptr() as usize,
            &mut len as *mut u32 as usize,
        )
    };
    result(ret)?;
    Ok(len as usize)
}

/// The mode of the file `path` names, relative to `dir`, as fstatat64(2)
/// with `flags` says, for [`crate::io::file_type`] and
/// [`crate::io::link_type`] on 32-bit machines. rustix's stat there
/// converts a whole statx (for its 64-bit times, which we do not read),
/// with the old calls behind it for Linux before 4.11: ~600 bytes in each
/// program that asks, up to 1.4 KB in one that asks twice. The old call
/// alone says the mode, on every kernel.
#[cfg(target_pointer_width = "32")]
pub fn stat_mode(dir: rustix::fd::BorrowedFd<'_>, path: &CStr, flags: rustix::fs::AtFlags) -> Result<u32, Errno> {
    use rustix::fd::AsRawFd;
    let mut st = core::mem::MaybeUninit::<linux_raw_sys::general::stat64>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` has room for the kernel's
    // struct stat64, which it fills on success; `dir` is open (borrowed)
    // or AT_FDCWD.
    let ret = unsafe {
        syscall4(
            nr::FSTATAT64,
            dir.as_raw_fd() as usize,
            path.as_ptr() as usize,
            st.as_mut_ptr() as usize,
            flags.bits() as usize,
        )
    };
    result(ret)?;
    // SAFETY: the call succeeded, so the kernel filled `st`.
    Ok(unsafe { st.assume_init() }.st_mode)
}

/// Closes every descriptor from `first` up (close_range(2)); on kernels
/// older than 5.9, which lack it, closes them one by one up to the
/// descriptor limit.
///
/// # Safety
/// Nothing in the program may own a descriptor numbered `first` or above,
/// or use a borrow of one, afterwards.
pub unsafe fn close_from(first: u32) {
    // SAFETY: forwarded contract.
    unsafe { close_range(first, u32::MAX) }
}

/// Closes descriptors `first` to `last`, as [`close_from`] does.
///
/// # Safety
/// Nothing in the program may own a descriptor of the range, or use a
/// borrow of one, afterwards.
pub unsafe fn close_range(first: u32, last: u32) {
    // SAFETY: close_range takes two descriptor numbers and flags; the
    // caller gave up every descriptor in the range.
    let ret = unsafe { syscall3(nr::CLOSE_RANGE, first as usize, last as usize, 0) };
    if result(ret) == Err(Errno::NOSYS) {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(1 << 20);
        for fd in first as u64..=(last as u64).min(limit.min(1 << 20)) {
            // SAFETY: as above, for each descriptor of the range.
            unsafe { close(fd as i32) };
        }
    }
}

/// Moves `fd` to descriptor 3 or above if it landed on 0, 1 or 2 (which
/// happens only when the program started with one of them closed); costs
/// nothing otherwise. The new descriptor is close-on-exec.
pub fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, 3)
}

/// Closes descriptor `n` (errors ignored: it may not be open).
///
/// # Safety
/// Nothing in the program may own descriptor `n` or use a borrow of it
/// afterwards.
pub unsafe fn close(n: RawFd) {
    // SAFETY: the caller gave up descriptor `n`; dropping the OwnedFd
    // closes it once.
    drop(unsafe { OwnedFd::from_raw_fd(n) });
}
