//! Unix stream sockets: binding and listening, connecting, accepting, the
//! local and remote paths, the peer's credentials and groups, and the length rule for
//! socket paths (at most 108 bytes on Linux, the last one without a
//! terminating NUL: longer is `file name too long`, never truncated).
//!
//! A path that starts with `@` names a socket in Linux's abstract
//! namespace, as ss, socat and systemd write it: `@name` is the address
//! whose `sun_path` is a NUL then `name`, of exactly that length (no
//! padding NULs), so a name holds at most 107 bytes and `@name` at most
//! 108, the rule for paths. Nothing is made in, or removed from, a file
//! system for it, and the options about the socket's file (`-d -D -a`)
//! are refused with one ([`server_path`]). Addresses the kernel reports
//! are written back the same way ([`path_of`]); `./@name` is a file.
//!
//! Addresses the kernel reports (`accept`, `getsockname`) are decoded here,
//! bounded by the buffer the kernel filled, whatever length it claims: a
//! client bound to a 108-byte path makes the kernel report 111 bytes, and
//! that must not crash a server.
//!
//! Every descriptor it creates is close-on-exec and numbered 3 or above
//! (see [`crate::io::above_stdio`]); putting a socket on the descriptors a
//! successor expects is the caller's business.
#![allow(unsafe_code)]

use crate::io::above_stdio;
use arrayvec::ArrayVec;
use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrAny, SocketFlags, SocketType};

/// Longest usable socket path, in bytes, without the NUL: the size of
/// `sun_path` in a Unix socket address, far less than a file's path may
/// be (`exec::FILE_PATH_MAX`).
pub const SOCKET_PATH_MAX: usize = 108;

/// A socket path as the kernel reported it (may be empty).
pub type SockPath = ArrayVec<u8, SOCKET_PATH_MAX>;

/// What failed, for the caller's `unable to VERB` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// socket(2).
    Create,
    /// bind(2), or removing the old socket file before it.
    Bind,
    /// Binding, where a file that is not a socket is in the way (only a
    /// socket is removed).
    NotASocket,
    /// listen(2).
    Listen,
    /// connect(2).
    Connect,
}

impl Step {
    /// The verb for `unable to VERB ...`.
    pub fn verb(self) -> &'static [u8] {
        match self {
            Step::Create => b"create socket",
            Step::Bind | Step::NotASocket => b"bind",
            Step::Listen => b"listen",
            Step::Connect => b"connect to",
        }
    }
}

/// A failed step and its reason.
pub type Failure = (Step, Errno);

/// The REASON of `unable to VERB PATH: REASON` for a failure.
pub fn reason((step, e): Failure) -> &'static [u8] {
    match step {
        Step::NotASocket => b"file exists and is not a socket",
        _ => crate::log::errno_text(e),
    }
}

/// Whether `path` names a socket in the abstract namespace (`@name`).
pub fn is_abstract(path: &CStr) -> bool {
    path.to_bytes().first() == Some(&b'@')
}

/// A Unix socket address as the kernel reads it (`struct sockaddr_un`),
/// and its length: what [`address`] makes of a path or an abstract name.
#[repr(C)]
pub struct Address {
    family: u16,
    path: [u8; SOCKET_PATH_MAX],
    len: u32,
}

// SAFETY: `with_sockaddr` passes a pointer to a `struct sockaddr_un` (the
// first two fields, `repr(C)`, as the kernel lays it out) and a length
// [`address`] made at most its size, valid for the call.
unsafe impl net::addr::SocketAddrArg for Address {
    unsafe fn with_sockaddr<R>(&self, f: impl FnOnce(*const net::addr::SocketAddrOpaque, u32) -> R) -> R {
        f((self as *const Address).cast(), self.len)
    }
}

/// The address for `path`, refusing paths and names the kernel would
/// truncate. A file path's length counts its terminating NUL where there
/// is room for one (as rustix and libc count it); an abstract name's
/// (`@name`: a NUL, then at most 107 bytes) is exact, without padding
/// NULs, as ss, socat and systemd make it.
pub fn address(path: &CStr) -> Result<Address, Errno> {
    let bytes = path.to_bytes();
    if bytes.len() > SOCKET_PATH_MAX {
        return Err(Errno::NAMETOOLONG);
    }
    if bytes.is_empty() {
        return Err(Errno::NOENT);
    }
    let mut a = Address { family: AddressFamily::UNIX.as_raw(), path: [0; SOCKET_PATH_MAX], len: 0 };
    a.path[..bytes.len()].copy_from_slice(bytes);
    let nul = match &mut a.path[0] {
        at @ b'@' => {
            *at = 0;
            0
        }
        _ => (bytes.len() < SOCKET_PATH_MAX) as usize,
    };
    a.len = (SUN_PATH + bytes.len() + nul) as u32;
    Ok(a)
}

fn stream_socket(nonblocking: bool) -> Result<OwnedFd, Errno> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    above_stdio(net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None)?)
}

/// How to bind a listening socket.
pub struct ListenOptions {
    /// Remove an existing PATH first (and set SO_REUSEADDR).
    pub remove_existing: bool,
    /// The listen backlog.
    pub backlog: i32,
    /// Permissions of the socket file; the umask does not apply.
    pub perms: u32,
    /// Whether the socket is non-blocking.
    pub nonblocking: bool,
}

/// Parses a socket file's permissions as `-a` takes them: octal, at most
/// `777`.
pub fn parse_permissions(s: &[u8]) -> Option<u32> {
    crate::num::parse_octal(s).filter(|&p| p <= 0o777)
}

/// What [`parse_permissions`] accepts, for option errors.
pub const PERMISSIONS_EXPECTED: &[u8] = b"octal, at most 777";

/// Removes an old socket at `path` (left by an earlier server), and only
/// a socket: a directory there is `is a directory`, any other file
/// [`Step::NotASocket`], both left as they are. Whatever stops the
/// removal of a socket (a directory we may not write) is left for bind
/// to report, as the original and s6 do.
fn remove_old_socket(path: &CStr) -> Result<(), Failure> {
    use rustix::fs::FileType;
    match crate::io::link_type(path) {
        Ok(FileType::Socket) => {
            let _ = rustix::fs::unlink(path);
            Ok(())
        }
        Ok(FileType::Directory) => Err((Step::Bind, Errno::ISDIR)),
        Ok(_) => Err((Step::NotASocket, Errno::EXIST)),
        // Nothing there, or nothing we can see: bind says what it is.
        Err(_) => Ok(()),
    }
}

/// Creates a socket bound to `path` and listening. For an abstract name
/// nothing is removed first (there is no file: [`server_path`] refuses
/// `-d` and `-D` with one, so `remove_existing` is only their default).
pub fn listen(path: &CStr, o: &ListenOptions) -> Result<OwnedFd, Failure> {
    let addr = address(path).map_err(|e| (Step::Bind, e))?;
    let fd = stream_socket(o.nonblocking).map_err(|e| (Step::Create, e))?;
    if o.remove_existing && !is_abstract(path) {
        remove_old_socket(path)?;
        net::sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| (Step::Bind, e))?;
    }
    // bind creates the file with 0777 & ~umask: set the umask so that the
    // file gets exactly `perms`, then put it back for our successors (an
    // abstract name makes no file, and the umask does nothing).
    let mask = rustix::fs::Mode::from_bits_truncate(!o.perms & 0o777);
    let old = rustix::process::umask(mask);
    let bound = net::bind(&fd, &addr);
    rustix::process::umask(old);
    bound.map_err(|e| (Step::Bind, e))?;
    net::listen(&fd, o.backlog).map_err(|e| (Step::Listen, e))?;
    Ok(fd)
}

/// The socket path operand of a server: the first of `operands`. None, or
/// an empty one (a run script whose `$SOCK` is unset), is a usage error:
/// the usage line, 100, as the original ipcserver says; so is `@` alone
/// (`@$NAME` with `$NAME` unset). An abstract name with `file_option`,
/// the last option given about the socket's file (`-d`, `-D` or `-a`; 0
/// for none), is an option error, exit 100: `option -X does not apply to
/// an abstract socket: @name`, then the usage line.
pub fn server_path(operands: crate::runtime::CStrArray<'_>, file_option: u8) -> &CStr {
    let path = match operands.first() {
        Some(path) if !matches!(path.to_bytes(), b"" | b"@") => path,
        _ => crate::log::usage(),
    };
    if file_option != 0 && is_abstract(path) {
        crate::log::option_error(&[
            b"option -",
            &[file_option],
            b" does not apply to an abstract socket: ",
            path.to_bytes(),
        ]);
    }
    path
}

/// Binds and listens like [`listen`], or exits 111 with `fatal: unable
/// to VERB PATH: REASON`.
pub fn listen_or_die(path: &CStr, o: &ListenOptions) -> OwnedFd {
    listen(path, o).unwrap_or_else(|failure| {
        crate::log::die(
            crate::log::EXIT_TEMP,
            &[b"unable to ", failure.0.verb(), b" ", path.to_bytes(), b": ", reason(failure)],
        )
    })
}

/// Connects to `path`, after binding the client socket to `local` if given.
///
/// An empty `path` names no socket: it is refused as the original and
/// s6-ipcclient report it (`connection refused`, which is what the kernel
/// says for the abstract address they then try), without trying an
/// address. An empty `local` binds nothing, which gives what the original's
/// `-p ''` gives: a client without a path, for the server and for itself.
pub fn connect(path: &CStr, local: Option<&CStr>) -> Result<OwnedFd, Failure> {
    let fd = stream_socket(false).map_err(|e| (Step::Create, e))?;
    if let Some(local) = local.filter(|l| !l.is_empty()) {
        let a = address(local).map_err(|e| (Step::Bind, e))?;
        net::bind(&fd, &a).map_err(|e| (Step::Bind, e))?;
    }
    if path.is_empty() {
        return Err((Step::Connect, Errno::CONNREFUSED));
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

/// Connects like [`connect`], or exits 111 with the original ipcclient's
/// `unable to connect to PATH: REASON` (no `fatal:`), or `fatal: unable to
/// bind LOCAL: REASON` for the local path.
pub fn connect_or_die(path: &CStr, local: Option<&CStr>) -> OwnedFd {
    connect(path, local).unwrap_or_else(|(step, e)| match (step, local) {
        (Step::Connect, _) => crate::log::unable_to(e, &[step.verb(), b" ", path.to_bytes()]),
        (_, Some(local)) if step == Step::Bind => crate::log::die_sys(e, &[step.verb(), b" ", local.to_bytes()]),
        _ => crate::log::die_sys(e, &[step.verb()]),
    })
}

/// The offset of `sun_path` in `struct sockaddr_un`.
const SUN_PATH: usize = 2;

/// The path of a Unix address (empty when it has none, or for a foreign
/// address), read from the bytes the kernel filled in and cut at the
/// first NUL: never more than [`SOCKET_PATH_MAX`] bytes, whatever length
/// the kernel reported. An abstract name is `@name`, cut at its first NUL
/// too (an environment variable cannot hold one: a name padded with NULs
/// to the whole `sun_path`, as some programs bind, shows without them).
pub fn path_of(addr: &SocketAddrAny) -> SockPath {
    let mut out = SockPath::new();
    if addr.address_family() != AddressFamily::UNIX {
        return out;
    }
    let filled = (addr.addr_len() as usize).min(core::mem::size_of::<net::addr::SocketAddrStorage>());
    // SAFETY: a SocketAddrAny's first `addr_len()` bytes are initialised and
    // it holds at most a whole SocketAddrStorage (its invariants); we read
    // no more than the smaller of the two.
    let bytes = unsafe { core::slice::from_raw_parts(addr.as_ptr() as *const u8, filled) };
    let path = bytes.get(SUN_PATH..).unwrap_or(&[]);
    // Cut, as this function says, where the kernel reported more.
    crate::bounded::append(&mut out, path);
    // The leading NUL of an abstract name is written `@`, in its room.
    if let Some(first @ 0) = out.first_mut() {
        *first = b'@';
    }
    out.truncate(memchr::memchr(0, &out).unwrap_or(out.len()));
    out
}

/// The path the socket is bound to (empty when none).
pub fn local_path(fd: impl AsFd) -> Result<SockPath, Errno> {
    net::getsockname(fd).map(|a| path_of(&a))
}

/// Writes a server's readiness line (its `-1`) on stdout, in one write:
/// `local`, the path it serves or the name `-l` gave it, and a newline. A
/// name longer than a socket path is left out (the newline alone still
/// says the server is ready) and reported as a failure: a warning, `unable
/// to write readiness notification: REASON`, after which the server
/// serves on.
pub fn notify_ready(local: &[u8]) {
    let mut line = ArrayVec::<u8, { SOCKET_PATH_MAX + 1 }>::new();
    let named = line.try_extend_from_slice(local).map_err(|_| Errno::NAMETOOLONG);
    // Fits: the line holds at most a socket path.
    crate::bounded::push(&mut line, b'\n');
    if let Err(e) = named.and(crate::io::write_all(crate::io::stdout(), &line)) {
        crate::log::warn_sys(e, &[b"write readiness notification"]);
    }
}

/// Accepts a connection (close-on-exec, blocking) and returns it with the
/// path the client bound (empty when none).
pub fn accept(listener: impl AsFd) -> Result<(OwnedFd, SockPath), Errno> {
    let (fd, addr) = net::acceptfrom_with(listener, SocketFlags::CLOEXEC)?;
    Ok((above_stdio(fd)?, addr.as_ref().map(path_of).unwrap_or_default()))
}

/// Accepts a connection onto the lowest free descriptor, not
/// close-on-exec, for a caller that has freed the descriptor it wants it
/// on (a preforking server's child, 0).
pub fn accept_inheritable(listener: impl AsFd) -> Result<(OwnedFd, SockPath), Errno> {
    let (fd, addr) = net::acceptfrom_with(listener, SocketFlags::empty())?;
    Ok((fd, addr.as_ref().map(path_of).unwrap_or_default()))
}

/// What the kernel says of the process that connected, as it was when it
/// connected (SO_PEERCRED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
    /// Its pid; `None` when the kernel says 0: the process is in a pid
    /// namespace ours cannot see (a client on the host of a server in a
    /// container).
    pub pid: Option<u32>,
}

/// The credentials of the process that connected (SO_PEERCRED), read
/// with [`runtime::getsockopt`](crate::runtime::getsockopt): rustix's own
/// answer holds the pid as a number that cannot be 0, which the kernel
/// may say.
pub fn peer_cred(fd: impl AsFd) -> Result<PeerCred, Errno> {
    use linux_raw_sys::net::{SOL_SOCKET, SO_PEERCRED};
    // struct ucred: pid, uid, gid, each 32 bits.
    let mut c = [0u32; 3];
    if crate::runtime::getsockopt(fd.as_fd(), SOL_SOCKET, SO_PEERCRED, &mut c)? != core::mem::size_of_val(&c) {
        return Err(Errno::INVAL);
    }
    Ok(PeerCred { uid: c[1], gid: c[2], pid: (c[0] as i32 > 0).then_some(c[0]) })
}

/// The supplementary groups of the process that connected, as it had
/// them when it connected (SO_PEERGROUPS, Linux 4.13 and later), in the
/// kernel's order (ascending), read into `buf`. More than `buf` holds is
/// `ERANGE`; a kernel that does not tell them says `ENOPROTOOPT`.
pub fn peer_groups(fd: impl AsFd, buf: &mut [u32]) -> Result<&[u32], Errno> {
    use linux_raw_sys::net::{SOL_SOCKET, SO_PEERGROUPS};
    let bytes = crate::runtime::getsockopt(fd.as_fd(), SOL_SOCKET, SO_PEERGROUPS, buf)?;
    Ok(&buf[..(bytes / 4).min(buf.len())])
}

/// Most descriptors passed in one message (SCM_RIGHTS).
pub const FDS_MAX: usize = 3;

/// Room for descriptors when receiving: one more than [`FDS_MAX`], so that
/// a peer that sent more is seen to have done so.
pub const FDS_ROOM: usize = FDS_MAX + 1;

/// Sends `data` with `fds` attached (SCM_RIGHTS), in one `sendmsg`, never
/// raising SIGPIPE; returns how much of `data` went out.
pub fn send_with_fds(sock: impl AsFd, data: &[u8], fds: &[rustix::fd::BorrowedFd<'_>]) -> Result<usize, Errno> {
    use core::mem::MaybeUninit;
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_MAX))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if fds.len() > FDS_MAX || !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::INVAL);
    }
    let iov = [rustix::io::IoSlice::new(data)];
    loop {
        match net::sendmsg(&sock, &iov, &mut control, SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => {}
            r => return r,
        }
    }
}

/// Receives into `buf` (`peek`: without taking the data off the socket,
/// and without descriptors), adding any descriptors that come with it to
/// `fds` (close-on-exec; ones beyond its room, [`FDS_ROOM`], are closed,
/// as are those beyond the room of one message: `fds` is then full). `Ok(0)` is end
/// of file. A stream socket hands descriptors over with the first byte of
/// the message they were sent with, and a receive (peek or not) stops at
/// the end of such a message.
pub fn recv_with_fds(
    sock: impl AsFd,
    buf: &mut [u8],
    peek: bool,
    fds: &mut ArrayVec<OwnedFd, FDS_ROOM>,
) -> Result<usize, Errno> {
    use core::mem::MaybeUninit;
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_ROOM))];
    let mut control = RecvAncillaryBuffer::new(if peek { &mut space[..0] } else { &mut space[..] });
    let flags = if peek { RecvFlags::PEEK } else { RecvFlags::CMSG_CLOEXEC };
    let mut iov = [rustix::io::IoSliceMut::new(buf)];
    let got = loop {
        match net::recvmsg(&sock, &mut iov, &mut control, flags) {
            Err(Errno::INTR) => {}
            r => break r?,
        }
    };
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            for fd in received {
                // Beyond our room: dropped, which closes it.
                let _ = fds.try_push(fd);
            }
        }
    }
    // A message with more than the room (the kernel closed the rest, and
    // says MSG_CTRUNC) has filled it: the caller sees too many. A peek
    // has no room at all: the kernel says MSG_CTRUNC whenever it passes
    // over descriptors.
    debug_assert!(peek || !got.flags.contains(ReturnFlags::CTRUNC) || fds.is_full());
    Ok(got.bytes)
}

/// Whether `fd` is a listening Unix stream socket.
pub fn is_unix_listener(fd: impl AsFd) -> bool {
    let fd = fd.as_fd();
    net::sockopt::socket_domain(fd) == Ok(AddressFamily::UNIX)
        && net::sockopt::socket_type(fd) == Ok(SocketType::STREAM)
        && net::sockopt::socket_acceptconn(fd) == Ok(true)
}

/// The listening socket a server finds on descriptor 0, put there by
/// whatever bound it (a socket binder, ipclisten, systemd), and what the
/// server needs to know of it.
pub struct Inherited {
    /// Descriptor 0.
    pub fd: BorrowedFd<'static>,
    /// Whether it is non-blocking: accept may then say EAGAIN (socket
    /// binders make it so by default; ipclisten does not).
    pub nonblocking: bool,
    /// The path it is bound to (empty when none).
    pub local: SockPath,
}

impl Inherited {
    /// Descriptor 0, checked: `fatal: stdin is not a socket` (s6's
    /// words) or `fatal: standard input is not a listening Unix stream
    /// socket`, exit 100; `fatal: unable to ...`, 111, when it cannot be
    /// looked at or its flags or path cannot be read.
    pub fn stdin() -> Inherited {
        use crate::log;
        let fd = crate::io::stdin();
        // Misused outside a server: s6-ipcserverd's words, under our name.
        match crate::io::file_type(fd) {
            Err(e) => log::die_sys(e, &[b"fstat stdin"]),
            Ok(t) if t != rustix::fs::FileType::Socket => log::die(log::EXIT_PERMANENT, &[b"stdin is not a socket"]),
            Ok(_) => {}
        }
        if !is_unix_listener(fd) {
            log::die(log::EXIT_PERMANENT, &[b"standard input is not a listening Unix stream socket"]);
        }
        let nonblocking = rustix::fs::fcntl_getfl(fd)
            .map(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
            .unwrap_or_else(|e| log::die_sys(e, &[b"read the flags of standard input"]));
        let local = local_path(fd).unwrap_or_else(|e| log::die_sys(e, &[b"get the local path of standard input"]));
        Inherited { fd, nonblocking, local }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn path_length_limit() {
        let ok = CString::new("a".repeat(108)).unwrap();
        assert!(address(&ok).is_ok());
        let long = CString::new("a".repeat(109)).unwrap();
        assert_eq!(address(&long).err(), Some(Errno::NAMETOOLONG));
    }

    #[test]
    fn an_abstract_name_has_its_exact_length() {
        let a = address(c"@x").unwrap();
        assert_eq!((a.len, &a.path[..3]), (4, &b"\0x\0"[..]));
        // A file path counts its NUL, where it has room for one.
        let a = address(c"x").unwrap();
        assert_eq!((a.len, &a.path[..2]), (4, &b"x\0"[..]));
        let whole = CString::new("a".repeat(108)).unwrap();
        assert_eq!(address(&whole).unwrap().len, 110);
        // `@` and 107 bytes fill sun_path; one more is too long.
        let name = CString::new(format!("@{}", "n".repeat(107))).unwrap();
        let a = address(&name).unwrap();
        assert_eq!((a.len, a.path[0], a.path[107]), (110, 0, b'n'));
        let long = CString::new(format!("@{}", "n".repeat(108))).unwrap();
        assert_eq!(address(&long).err(), Some(Errno::NAMETOOLONG));
    }

    #[test]
    fn abstract_names_are_served_reached_and_reported_with_an_at() {
        let name = |what: &str| CString::new(format!("@ucspi-ipc-unit.{}.{what}", std::process::id())).unwrap();
        let (server, client) = (name("server"), name("client"));
        let o = ListenOptions { remove_existing: true, backlog: 1, perms: 0o700, nonblocking: false };
        let l = listen(&server, &o).unwrap();
        assert_eq!(&local_path(&l).unwrap()[..], server.to_bytes());
        let c = connect(&server, Some(&client)).unwrap();
        assert_eq!(&local_path(&c).unwrap()[..], client.to_bytes());
        let (_conn, remote) = accept(&l).unwrap();
        assert_eq!(&remote[..], client.to_bytes());
        // A client without a name is still one without a path.
        let _c = connect(&server, None).unwrap();
        assert_eq!(&accept(&l).unwrap().1[..], b"");
        // A name padded with NULs (as some programs bind) shows without
        // them; an environment variable could not hold them.
        let padded = net::SocketAddrUnix::new_abstract_name(b"ucspi-ipc-unit-padded\0\0\0").unwrap();
        let fd = stream_socket(false).unwrap();
        net::bind(&fd, &padded).unwrap();
        assert_eq!(&local_path(&fd).unwrap()[..], b"@ucspi-ipc-unit-padded");
        // The same name is taken while the first socket lives.
        assert_eq!(listen(&server, &o).err(), Some((Step::Bind, Errno::ADDRINUSE)));
    }

    #[test]
    fn a_108_byte_client_path_is_decoded_whole() {
        let dir = std::env::temp_dir().join(format!("sock.{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = format!("{}/", dir.display());
        let server = CString::new(format!("{base}s")).unwrap();
        let client = CString::new(format!("{base}{}", "c".repeat(108 - base.len()))).unwrap();
        let o = ListenOptions { remove_existing: true, backlog: 1, perms: 0o700, nonblocking: false };
        let l = listen(&server, &o).unwrap();
        assert_eq!(&local_path(&l).unwrap()[..], server.to_bytes());
        let c = connect(&server, Some(&client)).unwrap();
        let (conn, remote) = accept(&l).unwrap();
        assert_eq!(&remote[..], client.to_bytes());
        let me = peer_cred(&conn).unwrap();
        assert_eq!(me.pid, Some(std::process::id()));
        assert_eq!((me.uid, me.gid), crate::uidgid::own_ids());
        let mut groups = [0u32; 65536];
        let mine = peer_groups(&conn, &mut groups).unwrap().to_vec();
        let mut own = [0u32; 65536];
        let n = crate::runtime::getgroups(&mut own).unwrap();
        let mut own = own[..n].to_vec();
        own.sort_unstable();
        assert_eq!(mine, own);
        assert!(mine.is_empty() || peer_groups(&conn, &mut groups[..mine.len() - 1]) == Err(Errno::RANGE));
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn descriptors_travel_with_the_first_byte() {
        let (a, b) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
        let (r, w) = rustix::pipe::pipe().unwrap();
        assert_eq!(send_with_fds(&a, b"head", &[w.as_fd()]), Ok(4));
        rustix::io::write(&a, b"tail").unwrap();
        drop(w);
        let mut fds = ArrayVec::new();
        let mut buf = [0u8; 16];
        // A peek sees the data, takes nothing, and installs no descriptor;
        // like a read, it stops after the message that carried some.
        assert_eq!(recv_with_fds(&b, &mut buf, true, &mut fds), Ok(4));
        assert_eq!(recv_with_fds(&b, &mut buf, true, &mut fds), Ok(4));
        assert!(fds.is_empty());
        // A read stops after the message that carried descriptors.
        assert_eq!(recv_with_fds(&b, &mut buf, false, &mut fds), Ok(4));
        assert_eq!(&buf[..4], b"head");
        assert_eq!(fds.len(), 1);
        rustix::io::write(&fds[0], b"through").unwrap();
        let mut got = [0u8; 7];
        assert_eq!(rustix::io::read(&r, &mut got), Ok(7));
        assert_eq!(&got, b"through");
        assert_eq!(recv_with_fds(&b, &mut buf, false, &mut fds), Ok(4));
        assert_eq!(&buf[..4], b"tail");
    }
}
