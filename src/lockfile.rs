//! Lock files (`-f lockfile`): processes that accept on one socket take
//! turns by holding an exclusive `flock` on a file while they accept, so
//! that one connection wakes one of them. Each process opens the file
//! itself: a lock belongs to an open file description, and processes that
//! shared one would all hold it at once.
//!
//! The file is opened read-only (flock needs no more, so processes that
//! dropped privileges can use a file root created), close-on-exec and
//! above descriptor 2. Failures are fatal, with the original's `unable to
//! open FILE: REASON` (111): a server that cannot take its turn cannot
//! serve.

use crate::log;
use core::ffi::CStr;
use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

/// An open lock file.
pub struct LockFile {
    fd: OwnedFd,
    path: &'static CStr,
}

impl LockFile {
    /// Opens `path`, creating it with permissions `create` when given and
    /// it does not exist; `fatal: unable to open PATH: REASON`, exit 111,
    /// on failure.
    pub fn open(path: &'static CStr, create: Option<Mode>) -> LockFile {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | create.map_or(OFlags::empty(), |_| OFlags::CREATE);
        let fd = rustix::fs::open(path, flags, create.unwrap_or(Mode::empty()))
            .and_then(crate::io::above_stdio)
            .unwrap_or_else(|e| log::die_sys(e, &[b"open ", path.to_bytes()]));
        LockFile { fd, path }
    }

    /// Waits for the exclusive lock; `fatal: unable to lock PATH: REASON`,
    /// exit 111, on failure.
    pub fn lock(&self) {
        loop {
            match rustix::fs::flock(&self.fd, FlockOperation::LockExclusive) {
                Ok(()) => return,
                Err(Errno::INTR) => {}
                Err(e) => log::die_sys(e, &[b"lock ", self.path.to_bytes()]),
            }
        }
    }

    /// Lets the lock go.
    pub fn unlock(&self) {
        let _ = rustix::fs::flock(&self.fd, FlockOperation::Unlock);
    }
}
