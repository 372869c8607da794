//! The user database, read from `/etc/passwd` directly: a user's uid and
//! primary gid, found by uid or by name.
//!
//! There is no libc here, so no NSS: users that exist only in LDAP, NIS or
//! systemd's dynamic users are not found. Lines that are malformed (fewer
//! than four fields, non-numeric ids) or longer than 4 KiB are skipped, as
//! getpwent skips them. It does not read /etc/group or the shadow file.

use crate::io;
use crate::lines::{LineError, Lines};
use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// The file read.
pub const PASSWD: &CStr = c"/etc/passwd";

/// Who to look for.
#[derive(Clone, Copy, Debug)]
pub enum Query<'a> {
    /// The first entry with this uid.
    Uid(u32),
    /// The entry with this login name.
    Name(&'a [u8]),
}

/// What an entry says about a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
}

/// Parses `name:password:uid:gid:...`; `None` for a malformed line.
fn parse(line: &[u8]) -> Option<(&[u8], User)> {
    let mut fields = line.split(|&c| c == b':');
    let name = fields.next()?;
    let _password = fields.next()?;
    let uid = crate::num::parse_u32(fields.next()?)?;
    let gid = crate::num::parse_u32(fields.next()?)?;
    Some((name, User { uid, gid }))
}

/// Looks `query` up in the passwd-format file open on `file`.
pub fn find_in(file: BorrowedFd<'_>, query: Query<'_>) -> Result<Option<User>, Errno> {
    let mut buf = [0u8; 4096];
    let mut lines = Lines::new(&mut buf);
    loop {
        match lines.advance(file) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(LineError::Read(e)) => return Err(e),
            Err(LineError::TooLong) => {
                lines.skip_rest(file)?;
                continue;
            }
        }
        let Some((name, user)) = parse(lines.last()) else { continue };
        let hit = match query {
            Query::Uid(u) => user.uid == u,
            Query::Name(n) => name == n && !n.is_empty(),
        };
        if hit {
            return Ok(Some(user));
        }
    }
}

/// Looks `query` up in `/etc/passwd`.
pub fn find(query: Query<'_>) -> Result<Option<User>, Errno> {
    let fd = rustix::fs::open(PASSWD, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let fd = io::above_stdio(fd)?;
    find_in(fd.as_fd(), query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn db(text: &str) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("passwd.{}.{}", std::process::id(), text.len()));
        std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn finds_by_uid_and_name_and_skips_bad_lines() {
        let long = format!("{}:x:7:7::/:/bin/sh\n", "l".repeat(5000));
        let text = format!(
            "root:x:0:0:root:/root:/bin/sh\nbad line\n{long}noid:x:abc:1::/:\ndaemon:x:1:2::/:/bin/false\n\
             alice:x:1000:1001:Alice:/home/alice:/bin/sh\nalias:x:1000:5::/:"
        );
        let q = |query| find_in(crate::io::borrow_std(&db(&text)), query).unwrap();
        assert_eq!(q(Query::Uid(0)), Some(User { uid: 0, gid: 0 }));
        assert_eq!(q(Query::Uid(1000)), Some(User { uid: 1000, gid: 1001 }));
        assert_eq!(q(Query::Name(b"alias")), Some(User { uid: 1000, gid: 5 }));
        assert_eq!(q(Query::Name(b"daemon")), Some(User { uid: 1, gid: 2 }));
        assert_eq!(q(Query::Uid(7)), None);
        assert_eq!(q(Query::Name(b"noid")), None);
        assert_eq!(q(Query::Name(b"")), None);
        assert_eq!(q(Query::Uid(4242)), None);
    }
}
