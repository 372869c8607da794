//! Descriptors and whole-buffer I/O: borrowing a descriptor number, writing
//! a buffer completely, reading with EINTR handled, copying one descriptor
//! to another.
//!
//! It does no buffering (programs write whole lines or blocks themselves)
//! and never allocates.

use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Borrows descriptor `n` for the life of the process.
///
/// Our programs are single-threaded and close descriptors only where they
/// say so, so a descriptor number given by the caller (0, 1, 2, 6, 7 by
/// convention) stays valid for as long as it is used.
pub fn fd(n: i32) -> BorrowedFd<'static> {
    // SAFETY: see above; an invalid number only makes the syscalls using it
    // fail with EBADF, which every caller handles.
    unsafe { BorrowedFd::borrow_raw(n) }
}

/// Writes all of `buf`, retrying on EINTR and short writes.
pub fn write_all(to: BorrowedFd<'_>, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::io::write(to, buf) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads once into `buf`, retrying on EINTR. `Ok(0)` is end of file.
pub fn read(from: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::read(from, &mut *buf) {
            Err(Errno::INTR) => {}
            r => return r,
        }
    }
}

/// Which side of a copy failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CopyError {
    Read(Errno),
    Write(Errno),
}

/// Copies `from` to `to` until end of file. Returns the bytes copied.
pub fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<u64, CopyError> {
    let mut buf = [0u8; 16384];
    let mut total = 0u64;
    loop {
        let n = read(from, &mut buf).map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        write_all(to, &buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// Makes descriptor `n` a copy of `from` (dup2), not close-on-exec.
pub fn dup_to(from: BorrowedFd<'_>, n: i32) -> Result<(), Errno> {
    use rustix::fd::FromRawFd;
    // SAFETY: the OwnedFd for `n` is only a dup2 target and is never
    // dropped (ManuallyDrop), so nothing closes a descriptor we do not own.
    let mut target = core::mem::ManuallyDrop::new(unsafe { rustix::fd::OwnedFd::from_raw_fd(n) });
    if rustix::fd::AsRawFd::as_raw_fd(&from) == n {
        // dup2 onto itself keeps close-on-exec: clear it explicitly.
        return rustix::io::fcntl_setfd(from, rustix::io::FdFlags::empty());
    }
    rustix::io::dup2(from, &mut target)
}

/// Closes descriptor `n` (errors ignored: it may not be open).
pub fn close(n: i32) {
    use rustix::fd::FromRawFd;
    // SAFETY: closing a descriptor number the program decided to give up;
    // dropping the OwnedFd closes it once.
    drop(unsafe { rustix::fd::OwnedFd::from_raw_fd(n) });
}
