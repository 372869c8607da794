//! Unix stream sockets: binding and listening, connecting, accepting, the
//! local and remote paths, the peer's credentials, and the length rule for
//! socket paths (at most 107 bytes on Linux: longer is `file name too
//! long`, never truncated).
//!
//! Every descriptor it creates is close-on-exec; putting a socket on the
//! descriptors a successor expects is the caller's business.

use arrayvec::ArrayVec;
use core::ffi::CStr;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

/// Longest usable socket path, in bytes, without the NUL.
pub const PATH_MAX: usize = 107;

/// A socket path as the kernel reported it (may be empty).
pub type SockPath = ArrayVec<u8, { PATH_MAX + 1 }>;

/// What failed, for the caller's `unable to VERB` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Bind,
    Listen,
    Connect,
    Chmod,
}

impl Step {
    /// The verb for `unable to VERB ...`.
    pub fn verb(self) -> &'static [u8] {
        match self {
            Step::Create => b"create socket",
            Step::Bind => b"bind",
            Step::Listen => b"listen",
            Step::Connect => b"connect to",
            Step::Chmod => b"set permissions of",
        }
    }
}

pub type Failure = (Step, Errno);

/// The address for `path`, refusing paths the kernel would truncate.
pub fn address(path: &CStr) -> Result<SocketAddrUnix, Errno> {
    let len = path.to_bytes().len();
    if len > PATH_MAX {
        return Err(Errno::NAMETOOLONG);
    }
    if len == 0 {
        return Err(Errno::NOENT);
    }
    SocketAddrUnix::new(path)
}

fn stream_socket(nonblocking: bool) -> Result<OwnedFd, Errno> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None)
}

/// How to bind a listening socket.
pub struct ListenOptions {
    /// Remove an existing PATH first (and set SO_REUSEADDR).
    pub remove_existing: bool,
    pub backlog: i32,
    /// Permissions of the socket file; the umask does not apply.
    pub perms: u32,
    pub nonblocking: bool,
}

/// Creates a socket bound to `path` and listening.
pub fn listen(path: &CStr, o: &ListenOptions) -> Result<OwnedFd, Failure> {
    let addr = address(path).map_err(|e| (Step::Bind, e))?;
    let fd = stream_socket(o.nonblocking).map_err(|e| (Step::Create, e))?;
    if o.remove_existing {
        match rustix::fs::unlink(path) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err((Step::Bind, e)),
        }
        net::sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| (Step::Bind, e))?;
    }
    // bind creates the file with 0777 & ~umask: set the umask so that the
    // file gets exactly `perms`, then put it back for our successors.
    let mask = rustix::fs::Mode::from_bits_truncate(!o.perms & 0o777);
    let old = rustix::process::umask(mask);
    let bound = net::bind(&fd, &addr);
    rustix::process::umask(old);
    bound.map_err(|e| (Step::Bind, e))?;
    net::listen(&fd, o.backlog).map_err(|e| (Step::Listen, e))?;
    Ok(fd)
}

/// Connects to `path`, after binding the client socket to `local` if given.
pub fn connect(path: &CStr, local: Option<&CStr>) -> Result<OwnedFd, Failure> {
    let fd = stream_socket(false).map_err(|e| (Step::Create, e))?;
    if let Some(local) = local {
        let a = address(local).map_err(|e| (Step::Bind, e))?;
        net::bind(&fd, &a).map_err(|e| (Step::Bind, e))?;
    }
    let addr = address(path).map_err(|e| (Step::Connect, e))?;
    loop {
        match net::connect(&fd, &addr) {
            Ok(()) => return Ok(fd),
            Err(Errno::INTR) => {}
            Err(e) => return Err((Step::Connect, e)),
        }
    }
}

/// Connects like [`connect`], or exits 111 with `unable to connect to
/// PATH: REASON` (or `unable to bind LOCAL: REASON` for the local path).
pub fn connect_or_die(path: &CStr, local: Option<&CStr>) -> OwnedFd {
    connect(path, local).unwrap_or_else(|(step, e)| {
        let object = match (step, local) {
            (Step::Bind, Some(local)) => local,
            _ => path,
        };
        crate::log::fatal_sys(e, &[step.verb(), b" ", object.to_bytes()])
    })
}

fn path_of(addr: Option<net::SocketAddrAny>) -> SockPath {
    let mut out = SockPath::new();
    if let Some(a) = addr.and_then(|a| SocketAddrUnix::try_from(a).ok()) {
        if let Some(p) = a.path_bytes() {
            let _ = out.try_extend_from_slice(&p[..p.len().min(PATH_MAX + 1)]);
        }
    }
    out
}

/// The path the socket is bound to (empty when none).
pub fn local_path(fd: impl AsFd) -> Result<SockPath, Errno> {
    net::getsockname(fd).map(|a| path_of(Some(a)))
}

/// Accepts a connection (close-on-exec, blocking) and returns it with the
/// path the client bound (empty when none).
pub fn accept(listener: impl AsFd) -> Result<(OwnedFd, SockPath), Errno> {
    let (fd, addr) = net::acceptfrom_with(listener, SocketFlags::CLOEXEC)?;
    Ok((fd, path_of(addr)))
}

/// The effective uid and gid of the process that connected (SO_PEERCRED).
pub fn peer_ids(fd: impl AsFd) -> Result<(u32, u32), Errno> {
    let c = net::sockopt::socket_peercred(fd)?;
    Ok((c.uid.as_raw(), c.gid.as_raw()))
}

/// Whether `fd` is a listening Unix stream socket.
pub fn is_unix_listener(fd: impl AsFd) -> bool {
    let fd = fd.as_fd();
    net::sockopt::socket_domain(fd) == Ok(AddressFamily::UNIX)
        && net::sockopt::socket_type(fd) == Ok(SocketType::STREAM)
        && net::sockopt::socket_acceptconn(fd) == Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_length_limit() {
        let ok = std::ffi::CString::new("a".repeat(107)).unwrap();
        assert!(address(&ok).is_ok());
        let long = std::ffi::CString::new("a".repeat(108)).unwrap();
        assert_eq!(address(&long).err(), Some(Errno::NAMETOOLONG));
    }
}
