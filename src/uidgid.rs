//! Dropping privileges: the uid, gid and supplementary group list a program
//! should run with, read from the command line (`-u`, `-g`, `-G`) or the
//! environment (`UID`, `GID`, `GIDLIST`, as set by `s6-envuidgid` or
//! daemontools' `envuidgid`), and applying them in the safe order:
//! supplementary groups, then gid, then uid.
//!
//! Rules (behaviour.md §1, ipcapplyuidgid): uid or gid 0 means "leave
//! unchanged"; when a gid is set and no list is given, the supplementary
//! list becomes just that gid, so a dropped program never keeps root's
//! groups. The calls are per-thread, which is right for our single-threaded
//! programs.
//!
//! It does not look up user or group names (that is the user database's
//! business) and does not print anything: callers turn a failure into
//! their fatal message, before executing anything.

use crate::env;
use crate::num;
use crate::runtime::CStrArray;
use arrayvec::ArrayVec;
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

/// Most supplementary groups accepted in a list.
pub const GIDLIST_MAX: usize = 1024;

/// A supplementary group list.
pub type GidList = ArrayVec<Gid, GIDLIST_MAX>;

/// Parses a decimal uid or gid (0, root, means "leave unchanged" in a
/// [`Target`]). `4294967295` is `(uid_t)-1`, which the
/// kernel reads as "no change" or refuses: it is not a valid id.
pub fn parse_id(s: &[u8]) -> Option<u32> {
    num::parse_u32(s).filter(|&n| n != u32::MAX)
}

/// Parses a comma-separated list of decimal gids; the empty string is the
/// empty list. An empty or bad element, or more than [`GIDLIST_MAX`]
/// elements, is an error.
pub fn parse_gidlist(s: &[u8]) -> Option<GidList> {
    let mut list = GidList::new();
    if s.is_empty() {
        return Some(list);
    }
    for item in s.split(|&c| c == b',') {
        let gid = parse_id(item)?;
        list.try_push(Gid::from_raw(gid)).ok()?;
    }
    Some(list)
}

/// Why the environment could not give the ids: the message after `fatal: `.
pub type EnvError = &'static [u8];

/// The ids to run with.
#[derive(Debug, PartialEq)]
pub struct Target {
    /// Root (0): leave unchanged.
    pub uid: Uid,
    /// Root (0): leave unchanged.
    pub gid: Gid,
    /// `None`: no list given (then a set gid becomes the only group).
    pub groups: Option<GidList>,
}

impl Default for Target {
    /// No change at all.
    fn default() -> Target {
        Target { uid: Uid::ROOT, gid: Gid::ROOT, groups: None }
    }
}

impl Target {
    /// Takes all three from `$UID`, `$GID` and `$GIDLIST`. UID and GID must
    /// be set and valid; a missing GIDLIST means no list was given.
    pub fn read_env(&mut self, envp: CStrArray) -> Result<(), EnvError> {
        let uid = env::get(envp, b"UID").ok_or(&b"UID not set"[..])?;
        let gid = env::get(envp, b"GID").ok_or(&b"GID not set"[..])?;
        self.uid = Uid::from_raw(parse_id(uid).ok_or(&b"invalid UID"[..])?);
        self.gid = Gid::from_raw(parse_id(gid).ok_or(&b"invalid GID"[..])?);
        self.groups = match env::get(envp, b"GIDLIST") {
            None => None,
            Some(list) => Some(parse_gidlist(list).ok_or(&b"invalid GIDLIST"[..])?),
        };
        Ok(())
    }

    /// The supplementary list to set, if any: the given list, or else just
    /// the gid when one is set.
    fn groups_to_set(&self) -> Option<&[Gid]> {
        match &self.groups {
            Some(list) => Some(list),
            None if !self.gid.is_root() => Some(core::slice::from_ref(&self.gid)),
            None => None,
        }
    }

    /// Applies the change: groups, then gid, then uid. On failure returns
    /// what could not be set (`supplementary groups`, `gid`, `uid`) and
    /// why; the caller must then exit without running anything.
    pub fn apply(&self) -> Result<(), (&'static [u8], Errno)> {
        if let Some(groups) = self.groups_to_set() {
            rustix::thread::set_thread_groups(groups).map_err(|e| (&b"set supplementary groups"[..], e))?;
        }
        if !self.gid.is_root() {
            rustix::thread::set_thread_gid(self.gid).map_err(|e| (&b"set gid"[..], e))?;
        }
        if !self.uid.is_root() {
            rustix::thread::set_thread_uid(self.uid).map_err(|e| (&b"set uid"[..], e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn target(uid: u32, gid: u32, groups: Option<GidList>) -> Target {
        Target { uid: Uid::from_raw(uid), gid: Gid::from_raw(gid), groups }
    }

    fn gids(list: &[u32]) -> GidList {
        list.iter().map(|&g| Gid::from_raw(g)).collect()
    }

    fn envp(vars: &[&str]) -> CStrArray {
        let owned: Vec<CString> = vars.iter().map(|v| CString::new(*v).unwrap()).collect();
        let mut ptrs: Vec<*const core::ffi::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(core::ptr::null());
        Box::leak(Box::new(owned));
        let ptrs = Box::leak(ptrs.into_boxed_slice());
        // SAFETY: leaked, null-terminated array of leaked C strings.
        unsafe { CStrArray::from_ptr(ptrs.as_ptr()) }
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id(b"0"), Some(0));
        assert_eq!(parse_id(b"65534"), Some(65534));
        assert_eq!(parse_id(b"4294967294"), Some(u32::MAX - 1));
        assert_eq!(parse_id(b"4294967295"), None);
        assert_eq!(parse_id(b""), None);
        assert_eq!(parse_id(b"-1"), None);
        assert_eq!(parse_id(b"1a"), None);
    }

    #[test]
    fn gid_lists() {
        assert_eq!(parse_gidlist(b""), Some(gids(&[])));
        assert_eq!(parse_gidlist(b"5"), Some(gids(&[5])));
        assert_eq!(parse_gidlist(b"1,20,300"), Some(gids(&[1, 20, 300])));
        assert_eq!(parse_gidlist(b"1,,2"), None);
        assert_eq!(parse_gidlist(b"1,"), None);
        assert_eq!(parse_gidlist(b",1"), None);
        assert_eq!(parse_gidlist(b"1, 2"), None);
        assert_eq!(parse_gidlist(b"1,x"), None);
        let max = vec!["7"; GIDLIST_MAX].join(",");
        assert_eq!(parse_gidlist(max.as_bytes()).map(|l| l.len()), Some(GIDLIST_MAX));
        let over = vec!["7"; GIDLIST_MAX + 1].join(",");
        assert_eq!(parse_gidlist(over.as_bytes()), None);
    }

    #[test]
    fn environment() {
        let mut t = Target::default();
        t.read_env(envp(&["UID=10", "GID=20", "GIDLIST=1,2"])).unwrap();
        assert_eq!(t, target(10, 20, Some(gids(&[1, 2]))));
        t.read_env(envp(&["UID=11", "GID=21"])).unwrap();
        assert_eq!(t, target(11, 21, None));
        t.read_env(envp(&["UID=11", "GID=21", "GIDLIST="])).unwrap();
        assert_eq!(t.groups, Some(gids(&[])));
        assert_eq!(Target::default().read_env(envp(&["GID=1"])), Err(&b"UID not set"[..]));
        assert_eq!(Target::default().read_env(envp(&["UID=1"])), Err(&b"GID not set"[..]));
        assert_eq!(Target::default().read_env(envp(&["UID=x", "GID=1"])), Err(&b"invalid UID"[..]));
        assert_eq!(Target::default().read_env(envp(&["UID=1", "GID="])), Err(&b"invalid GID"[..]));
        assert_eq!(Target::default().read_env(envp(&["UID=1", "GID=1", "GIDLIST=1;2"])), Err(&b"invalid GIDLIST"[..]));
    }

    #[test]
    fn a_set_gid_without_list_is_the_only_group() {
        let t = target(1, 5, None);
        assert_eq!(t.groups_to_set(), Some(&gids(&[5])[..]));
        let t = target(1, 5, Some(gids(&[7, 8])));
        assert_eq!(t.groups_to_set(), Some(&gids(&[7, 8])[..]));
        let t = target(1, 0, None);
        assert_eq!(t.groups_to_set(), None);
        let t = target(0, 0, Some(gids(&[])));
        assert_eq!(t.groups_to_set(), Some(&[][..]));
    }
}
