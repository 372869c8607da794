//! Descriptors and whole-buffer I/O: the standard descriptors, keeping new
//! descriptors off them, putting a descriptor where a successor expects it,
//! writing a buffer completely, reading with EINTR handled, copying one
//! descriptor to another, the type of a file.
//!
//! Descriptors 0, 1 and 2 belong to the process as a whole (and 6 and 7
//! to a UCSPI client program): [`stdin`], [`stdout`], [`stderr`],
//! [`from_server`] and [`to_server`] borrow them freely, and nothing in this
//! library closes or replaces them except the `unsafe` functions here,
//! whose callers promise that no borrow of the replaced descriptor is used
//! afterwards as if it were the old file. Every descriptor the library
//! opens goes to 3 or above ([`above_stdio`]), so that a program started
//! with 0, 1 or 2 closed never reads from or writes to a socket or file of
//! its own by accident (a client with stdout closed must not send the
//! server's data back to the server).
//!
//! It does no buffering (programs write whole lines or blocks themselves)
//! and never allocates.
#![allow(unsafe_code)]

pub use crate::runtime::{above_stdio, close};
use core::ffi::CStr;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use rustix::fs::FileType;
use rustix::io::Errno;

/// Standard input (descriptor 0).
pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: descriptor 0 belongs to the process; the library never closes
    // or replaces it except through this module's unsafe functions (see
    // the module documentation). If it is closed, using it fails with EBADF.
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// Standard output (descriptor 1).
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: as for `stdin`.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// Standard error (descriptor 2).
pub fn stderr() -> BorrowedFd<'static> {
    // SAFETY: as for `stdin`.
    unsafe { BorrowedFd::borrow_raw(2) }
}

/// A UCSPI client's connection, as read (descriptor 6).
pub fn from_server() -> BorrowedFd<'static> {
    // SAFETY: as for `stdin`: descriptor 6 is the protocol's, for the
    // whole process, and the library never closes or replaces it.
    unsafe { BorrowedFd::borrow_raw(6) }
}

/// A UCSPI client's connection, as written (descriptor 7).
pub fn to_server() -> BorrowedFd<'static> {
    // SAFETY: as for `from_server`.
    unsafe { BorrowedFd::borrow_raw(7) }
}

/// Makes descriptor `n` a copy of `from` (dup2), not close-on-exec.
///
/// # Safety
/// Whatever descriptor `n` was is closed: nothing in the program may own
/// it or use a borrow of it afterwards (by convention, `n` is a standard or
/// protocol descriptor the program means to replace for its successor).
pub unsafe fn dup_to(from: BorrowedFd<'_>, n: RawFd) -> Result<(), Errno> {
    if from.as_raw_fd() == n {
        // dup2 onto itself keeps close-on-exec: clear it explicitly.
        return rustix::io::fcntl_setfd(from, rustix::io::FdFlags::empty());
    }
    // SAFETY: the OwnedFd for `n` is only a dup2 target and is never
    // dropped (ManuallyDrop); the caller gave up descriptor `n`.
    let mut target = core::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(n) });
    rustix::io::dup2(from, &mut target)
}

/// Puts `fd` on each descriptor of `at` (not close-on-exec, for the
/// program we execute next), then closes it unless it is one of them.
///
/// # Safety
/// As [`dup_to`], for every descriptor of `at`.
pub unsafe fn install(fd: OwnedFd, at: &[RawFd]) -> Result<(), Errno> {
    // SAFETY: forwarded contract.
    unsafe { install_at(fd, at.iter().copied()) }
}

/// [`install`] over descriptor numbers however the caller holds them.
///
/// # Safety
/// As [`dup_to`], for every descriptor of `at`.
unsafe fn install_at(fd: OwnedFd, at: impl Iterator<Item = RawFd> + Clone) -> Result<(), Errno> {
    for n in at.clone() {
        // SAFETY: forwarded contract.
        unsafe { dup_to(fd.as_fd(), n)? };
    }
    if at.into_iter().any(|n| n == fd.as_raw_fd()) {
        // It is now one of the installed descriptors: do not close it.
        core::mem::forget(fd);
    }
    Ok(())
}

/// A standard descriptor, as a target to replace: 0, 1 or 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Std {
    /// Descriptor 0.
    In = 0,
    /// Descriptor 1.
    Out = 1,
    /// Descriptor 2.
    Err = 2,
}

impl Std {
    /// The three, by number.
    pub const ALL: [Std; 3] = [Std::In, Std::Out, Std::Err];
}

/// Makes standard descriptor `to` a copy of `from` (dup2), not
/// close-on-exec. Safe where [`dup_to`] is not, as rustix's `dup2_stdout`
/// is: the standard descriptors belong to the process as a whole, and
/// nothing owns one (every descriptor this library opens goes to 3 or
/// above, [`above_stdio`]); a borrow of one ([`stdout`]) then sees the new
/// file, which is what replacing it means.
pub fn replace_std(from: BorrowedFd<'_>, to: Std) -> Result<(), Errno> {
    // SAFETY: nothing owns a standard descriptor (above).
    unsafe { dup_to(from, to as RawFd) }
}

/// Puts `fd` on each standard descriptor of `at`, as [`replace_std`]
/// does, then closes it unless it is one of them.
pub fn install_std(fd: OwnedFd, at: &[Std]) -> Result<(), Errno> {
    // SAFETY: nothing owns a standard descriptor (see replace_std).
    unsafe { install_at(fd, at.iter().map(|&n| n as RawFd)) }
}

/// Writes all of `buf`, retrying on EINTR and short writes, and waiting
/// until `to` can take more when it is non-blocking (O_NONBLOCK belongs to
/// an open file, which another process sharing it, a terminal's or a
/// pipe's, may have set): as a write to a blocking descriptor would.
pub fn write_all(to: BorrowedFd<'_>, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::io::write(to, buf) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait_writable(to)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Waits until `fd` can be written to (or is in error, which the next
/// write reports).
fn wait_writable(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::OUT)];
    match rustix::event::poll(&mut fds, None) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sends all of `buf` on the socket `to`, as [`write_all`] writes, but
/// with MSG_NOSIGNAL: a peer that has gone is EPIPE, not SIGPIPE. When
/// `to` is not a socket (a server's banner written to a pipe in a test
/// or an inetd-style set-up), it is written with [`write_all`].
pub fn send_all(to: BorrowedFd<'_>, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::net::send(to, buf, rustix::net::SendFlags::NOSIGNAL) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(Errno::NOTSOCK) => return write_all(to, buf),
            Err(Errno::AGAIN) => wait_writable(to)?,
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

/// The type of the file open at `fd`, as fstat(2) says.
pub fn file_type(fd: BorrowedFd<'_>) -> Result<FileType, Errno> {
    #[cfg(target_pointer_width = "64")]
    let mode = rustix::fs::fstat(fd)?.st_mode;
    #[cfg(target_pointer_width = "32")]
    let mode = crate::runtime::stat_mode(fd, c"", rustix::fs::AtFlags::EMPTY_PATH)?;
    Ok(FileType::from_raw_mode(mode))
}

/// The type of the file `path` names, not following a final symbolic
/// link, as lstat(2) says.
pub fn link_type(path: &CStr) -> Result<FileType, Errno> {
    #[cfg(target_pointer_width = "64")]
    let mode = rustix::fs::lstat(path)?.st_mode;
    #[cfg(target_pointer_width = "32")]
    let mode = crate::runtime::stat_mode(rustix::fs::CWD, path, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(mode))
}

/// Output gathered in a caller's buffer and written in as few `write`s
/// as it takes: for reports of many small pieces.
pub struct Buffered<'b> {
    to: BorrowedFd<'b>,
    buf: &'b mut [u8],
    used: usize,
    /// `to` is a socket, written with [`send_all`].
    socket: bool,
}

impl<'b> Buffered<'b> {
    /// Output to `to` through `buf`.
    pub fn new(to: BorrowedFd<'b>, buf: &'b mut [u8]) -> Buffered<'b> {
        Buffered { to, buf, used: 0, socket: false }
    }

    /// Output to the socket `to` through `buf`, sent as [`send_all`]
    /// does: a peer that has gone is an error (EPIPE), never SIGPIPE.
    pub fn to_socket(to: BorrowedFd<'b>, buf: &'b mut [u8]) -> Buffered<'b> {
        Buffered { to, buf, used: 0, socket: true }
    }

    /// Appends `pieces`, writing out the buffer whenever it fills.
    pub fn put(&mut self, pieces: &[&[u8]]) -> Result<(), Errno> {
        for mut p in pieces.iter().copied() {
            while !p.is_empty() {
                if self.used == self.buf.len() {
                    self.flush()?;
                }
                let n = p.len().min(self.buf.len() - self.used);
                self.buf[self.used..self.used + n].copy_from_slice(&p[..n]);
                self.used += n;
                p = &p[n..];
            }
        }
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> Result<(), Errno> {
        let out = &self.buf[..self.used];
        if self.socket {
            send_all(self.to, out)?;
        } else {
            write_all(self.to, out)?;
        }
        self.used = 0;
        Ok(())
    }
}

/// Which side of a copy failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CopyError {
    /// Reading the source failed.
    Read(Errno),
    /// Writing the destination failed.
    Write(Errno),
}

/// Copies `from` to `to` until end of file, through `buf` (a caller that
/// runs this once keeps it in `.bss`, a [`crate::runtime::Table`], where
/// only the pages a copy fills are touched). Returns the bytes copied.
pub fn copy(from: BorrowedFd<'_>, to: BorrowedFd<'_>, buf: &mut [u8]) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let n = read(from, buf).map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        write_all(to, &buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// For unit tests: a std descriptor as one of rustix's (without its `std`
/// feature, rustix has descriptor types of its own).
#[cfg(test)]
pub fn borrow_std<F: std::os::fd::AsRawFd>(f: &F) -> BorrowedFd<'_> {
    // SAFETY: `f` owns the descriptor for the borrow's lifetime.
    unsafe { BorrowedFd::borrow_raw(f.as_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On 32-bit machines these are our own fstatat64 (CI runs the unit
    /// tests under qemu for armv7), on 64-bit ones rustix's calls.
    #[test]
    fn file_types_of_descriptors_and_paths() {
        use rustix::fs::{FileType, Mode, OFlags};
        let path = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let open = |p: &std::path::Path| rustix::fs::open(&*path(p), OFlags::RDONLY, Mode::empty()).unwrap();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(file_type(r.as_fd()), Ok(FileType::Fifo));
        let dir = std::env::temp_dir().join(format!("ucspi-ipc-file-types-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(file_type(open(&dir).as_fd()), Ok(FileType::Directory));
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(file_type(open(&file).as_fd()), Ok(FileType::RegularFile));
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(link_type(&path(&link)), Ok(FileType::Symlink));
        assert_eq!(link_type(&path(&file)), Ok(FileType::RegularFile));
        assert_eq!(link_type(&path(&dir)), Ok(FileType::Directory));
        assert_eq!(link_type(c"/dev/null"), Ok(FileType::CharacterDevice));
        assert_eq!(link_type(&path(&dir.join("missing"))), Err(Errno::NOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn buffered_output_keeps_everything_in_order() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let mut buf = [0u8; 4];
        let mut out = Buffered::new(w.as_fd(), &mut buf);
        out.put(&[b"ab", b"cdefg", b"", b"h"]).unwrap();
        out.put(&[b"ij"]).unwrap();
        out.flush().unwrap();
        drop(w);
        let mut got = [0u8; 16];
        let n = read(r.as_fd(), &mut got).unwrap();
        assert_eq!(&got[..n], b"abcdefghij");
    }

    /// A non-blocking descriptor that fills up (a pipe of one page, read
    /// by another thread) gets everything, in order, as a blocking one.
    #[test]
    fn everything_is_written_to_a_non_blocking_descriptor() {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
        rustix::pipe::fcntl_setpipe_size(&w, 4096).unwrap();
        // Full before the reader starts: the first write says EAGAIN.
        while rustix::io::write(&w, b"x").is_ok() {}
        let reader = std::thread::spawn(move || {
            rustix::fs::fcntl_setfl(&r, rustix::fs::OFlags::empty()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match read(r.as_fd(), &mut buf).unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        write_all(w.as_fd(), &data).unwrap();
        drop(w);
        let got = reader.join().unwrap();
        assert!(got.iter().take_while(|&&b| b == b'x').count() >= 1);
        assert_eq!(&got[got.len() - data.len()..], &data[..]);
    }

    #[test]
    fn new_descriptors_are_moved_off_stdio() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let r = above_stdio(r).unwrap();
        assert!(r.as_raw_fd() > 2);
        drop(w);
        // A descriptor already above 2 is kept as it is.
        let raw = r.as_raw_fd();
        assert_eq!(above_stdio(r).unwrap().as_raw_fd(), raw);
    }
}
