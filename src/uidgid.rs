//! Dropping privileges: the uid, gid and supplementary group list a program
//! should run with, read from the command line (`-u`, `-g`, `-G`) or the
//! environment (`UID`, `GID`, `GIDLIST`, as set by `s6-envuidgid` or
//! daemontools' `envuidgid`), and applying them in the safe order:
//! supplementary groups, then gid, then uid.
//!
//! Rules (behaviour.md §1, ipcapplyuidgid): uid or gid 0 means "leave
//! unchanged"; a uid given without a gid takes the user's primary gid from
//! the user database ([`crate::userdb`]); when the uid or gid changes and no
//! list is given, the supplementary list becomes just the gid, so a
//! dropped program never keeps root's groups. A change that is no change
//! needs no privilege: with the uid and gid the process already has and
//! no list, its groups are left as they are (as s6-applyuidgid leaves
//! them), and a list it may not set is no failure when it would give it
//! the groups it has; so an unprivileged user can run a chain with its own
//! ids. The calls are per-thread, which is right for our single-threaded
//! programs.
//!
//! It does not look up names and prints nothing but the fatal messages of
//! [`CompleteError::die`]: callers turn a failure into their message before
//! executing anything.

use crate::args::Opt;
use crate::env;
use crate::num;
use crate::runtime::CStrArray;
use arrayvec::ArrayVec;
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

/// Most supplementary groups accepted in a list.
pub const GIDLIST_MAX: usize = 1024;

/// A supplementary group list, checked by [`parse_gidlist`] and kept as
/// the text it came in (a command-line argument or an environment
/// variable, which live as long as the process, or a server's account of
/// a client's groups): an array of [`GIDLIST_MAX`] gids would be 4 KiB
/// that every stack frame holding a [`Target`] carries, and that the
/// stack probes of each such frame touch page by page at every start, for
/// a list most command lines never give. The default is the empty list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GidList<'a>(&'a [u8]);

impl<'a> GidList<'a> {
    /// The empty list (also the default).
    pub const EMPTY: GidList<'static> = GidList(b"");

    /// The list as given: comma-separated decimal gids, or empty.
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// The gids, in the list's order.
    pub fn gids(self) -> Gids<'a> {
        Gids(self.0)
    }

    /// The gids, in `buf`.
    fn to_slice(self, buf: &mut [Gid; GIDLIST_MAX]) -> &[Gid] {
        // Checked by `parse_gidlist`: it parses again, the same.
        let n = read_gidlist(self.0, buf).unwrap_or(0);
        &buf[..n]
    }
}

/// The gids of a [`GidList`], in its order, read from its text as they
/// are asked for.
#[derive(Debug, Clone, Copy)]
pub struct Gids<'a>(&'a [u8]);

impl Iterator for Gids<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        let (gid, rest) = match memchr::memchr(b',', self.0) {
            Some(comma) => (&self.0[..comma], &self.0[comma + 1..]),
            None => (self.0, &b""[..]),
        };
        self.0 = rest;
        // Checked by `parse_gidlist`, or written by `GidList::write`:
        // every element is a number.
        num::parse_u32(gid)
    }
}

impl<'a> GidList<'a> {
    /// Writes `gids` into `text` as a list (ten digits and a comma at
    /// most for each: `text` must have room for as many as `gids` has)
    /// and returns it: for a list that comes as numbers (a client's
    /// groups, from the kernel).
    pub fn write<const N: usize>(gids: &[u32], text: &'a mut ArrayVec<u8, N>) -> GidList<'a> {
        text.clear();
        for &gid in gids {
            let mut digits = [0; num::U64_DIGITS];
            // Fits: the caller's bound.
            crate::bounded::append(text, num::fmt_u64(gid as u64, &mut digits));
            crate::bounded::push(text, b',');
        }
        // The last comma.
        text.pop();
        GidList(text)
    }
}

/// What [`parse_id`] accepts, for option errors.
pub const ID_EXPECTED: &[u8] = b"a number from 0 to 4294967294";
/// What [`parse_gidlist`] accepts, for option errors.
pub const GIDLIST_EXPECTED: &[u8] = b"comma-separated gids, at most 1024";

/// Parses a decimal uid or gid (0, root, means "leave unchanged" in a
/// [`Target`]). `4294967295` is `(uid_t)-1`, which the
/// kernel reads as "no change" or refuses: it is not a valid id.
pub fn parse_id(s: &[u8]) -> Option<u32> {
    num::parse_u32(s).filter(|&n| n != u32::MAX)
}

/// Parses a comma-separated list of decimal gids; the empty string is the
/// empty list. An empty or bad element, or more than [`GIDLIST_MAX`]
/// elements, is an error.
pub fn parse_gidlist(s: &[u8]) -> Option<GidList<'_>> {
    read_gidlist(s, &mut [Gid::ROOT; 0]).map(|_| GidList(s))
}

/// Parses a list as [`parse_gidlist`] does, into `out` as far as it goes:
/// how many gids the list has.
pub fn read_gidlist(s: &[u8], out: &mut [Gid]) -> Option<usize> {
    if s.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    for item in s.split(|&c| c == b',') {
        let gid = Gid::from_raw(parse_id(item)?);
        if let Some(slot) = out.get_mut(n) {
            *slot = gid;
        }
        n += 1;
    }
    (n <= GIDLIST_MAX).then_some(n)
}

/// Our own effective uid and gid: the ids a server looks rules up with,
/// and logs, for a client it knows nothing of (run with `-P`), as the
/// original does ([`known_or_own`]).
pub fn own_ids() -> (u32, u32) {
    (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw())
}

/// A client's effective ids as a server uses them, each it does not know
/// replaced by its own ([`own_ids`], looked up only then).
pub fn known_or_own(euid: Option<u32>, egid: Option<u32>) -> (u32, u32) {
    match (euid, egid) {
        (Some(uid), Some(gid)) => (uid, gid),
        _ => {
            let (uid, gid) = own_ids();
            (euid.unwrap_or(uid), egid.unwrap_or(gid))
        }
    }
}

/// Why the environment could not give the ids: the message after `fatal: `.
pub type EnvError = &'static [u8];

/// The ids to run with, as the options give them (`None`: not given; a
/// given 0, root, means "leave unchanged"). Options are applied in
/// command-line order, a later one overriding an earlier one.
#[derive(Debug, PartialEq, Default)]
pub struct Target {
    /// The uid.
    pub uid: Option<Uid>,
    /// The gid.
    pub gid: Option<Gid>,
    /// The supplementary groups; `None`: no list given (then, if anything
    /// changes, the gid becomes the only group).
    pub groups: Option<GidList<'static>>,
}

/// A supplementary group list to set.
#[derive(Debug, PartialEq, Clone, Copy)]
enum Groups {
    /// The list given.
    List(GidList<'static>),
    /// Just this gid.
    Only(Gid),
}

impl Groups {
    /// Sets them as the supplementary groups, unless the process may not
    /// and they would leave it with the groups it has (with `gid`, the
    /// gid it will have, counted): see [`changes_nothing`].
    fn set(self, gid: Gid) -> Result<(), Errno> {
        match self {
            Groups::Only(only) => set_groups(&[only], gid),
            Groups::List(list) => set_list(list, gid),
        }
    }

    /// Whether setting them would change the groups the process has.
    fn change(self, gid: Gid) -> bool {
        match self {
            Groups::Only(only) => !changes_nothing(&[only], gid),
            Groups::List(list) => list_changes(list, gid),
        }
    }
}

fn set_groups(list: &[Gid], gid: Gid) -> Result<(), Errno> {
    match rustix::thread::set_thread_groups(list) {
        Err(Errno::PERM) if changes_nothing(list, gid) => Ok(()),
        r => r,
    }
}

// The two below read a list into 4 KiB of stack, in a frame of their own:
// only a program given a list touches those pages.

#[inline(never)]
fn set_list(list: GidList<'_>, gid: Gid) -> Result<(), Errno> {
    let mut buf = [Gid::ROOT; GIDLIST_MAX];
    set_groups(list.to_slice(&mut buf), gid)
}

#[inline(never)]
fn list_changes(list: GidList<'_>, gid: Gid) -> bool {
    let mut buf = [Gid::ROOT; GIDLIST_MAX];
    !changes_nothing(list.to_slice(&mut buf), gid)
}

/// Why [`Target::complete`] failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CompleteError {
    /// The uid has no entry in the user database.
    NoEntry(u32),
    /// The user database could not be read.
    Read(Errno),
}

impl CompleteError {
    /// `fatal: uid N has no entry in /etc/passwd: give a gid` (100), or
    /// `fatal: unable to read /etc/passwd: REASON` (111).
    pub fn die(self) -> ! {
        match self {
            CompleteError::NoEntry(uid) => {
                let mut digits = [0; num::U64_DIGITS];
                crate::log::die(
                    crate::log::EXIT_PERMANENT,
                    &[b"uid ", num::fmt_u64(uid as u64, &mut digits), b" has no entry in /etc/passwd: give a gid"],
                )
            }
            CompleteError::Read(e) => crate::log::die_sys(e, &[b"read /etc/passwd"]),
        }
    }
}

/// The privilege options of a command line, read into a [`Target`] in
/// command-line order (a later one overrides an earlier one, in both
/// directions): `-u uid`, `-g gid`, `-G gidlist`, and `-U`, which takes
/// all three from the environment ([`Target::read_env`]). A `-U` that
/// cannot read them is reported by [`IdOptions::target`], once the whole
/// command line (and so `-q`) has been read.
#[derive(Debug, Default)]
pub struct IdOptions {
    target: Target,
    env_error: Option<EnvError>,
}

impl IdOptions {
    /// Reads `opt` if it is one of the privilege options (`-U` from
    /// `envp`): whether it was. A value that does not parse is an option
    /// error, exit 100. Which letters reach it is the caller's getopt
    /// spec's business.
    pub fn read(&mut self, opt: &Opt<'static>, envp: CStrArray<'static>) -> bool {
        let t = &mut self.target;
        match opt.letter {
            b'u' => t.uid = Some(Uid::from_raw(opt.value(parse_id, ID_EXPECTED))),
            b'g' => t.gid = Some(Gid::from_raw(opt.value(parse_id, ID_EXPECTED))),
            b'G' => t.groups = Some(opt.value(parse_gidlist, GIDLIST_EXPECTED)),
            b'U' => {
                if let Err(msg) = t.read_env(envp) {
                    self.env_error.get_or_insert(msg);
                }
            }
            _ => return false,
        }
        true
    }

    /// The ids asked for; `fatal: UID not set` (or `GID not set`,
    /// `invalid UID`, ...), exit 100, when a `-U` could not read them.
    pub fn target(&mut self) -> &mut Target {
        if let Some(msg) = self.env_error {
            crate::log::die(crate::log::EXIT_PERMANENT, &[msg]);
        }
        &mut self.target
    }
}

impl Target {
    /// Takes all three from `$UID`, `$GID` and `$GIDLIST`. UID and GID must
    /// be set and valid; a missing GIDLIST means no list was given.
    pub fn read_env(&mut self, envp: CStrArray<'static>) -> Result<(), EnvError> {
        let uid = env::get(envp, b"UID").ok_or(&b"UID not set"[..])?;
        let gid = env::get(envp, b"GID").ok_or(&b"GID not set"[..])?;
        self.uid = Some(Uid::from_raw(parse_id(uid).ok_or(&b"invalid UID"[..])?));
        self.gid = Some(Gid::from_raw(parse_id(gid).ok_or(&b"invalid GID"[..])?));
        self.groups = match env::get(envp, b"GIDLIST") {
            None => None,
            Some(list) => Some(parse_gidlist(list).ok_or(&b"invalid GIDLIST"[..])?),
        };
        Ok(())
    }

    fn changes_uid(&self) -> bool {
        self.uid.is_some_and(|u| !u.is_root())
    }

    /// Fills in what the options leave out: a uid given without a gid
    /// takes that user's primary gid from the user database, so that a
    /// dropped program never keeps gid 0.
    pub fn complete(&mut self) -> Result<(), CompleteError> {
        let Some(uid) = self.uid.filter(|_| self.changes_uid() && self.gid.is_none()) else { return Ok(()) };
        match crate::userdb::find(crate::userdb::Query::Uid(uid.as_raw())) {
            Ok(Some(user)) => {
                self.gid = Some(Gid::from_raw(user.gid));
                Ok(())
            }
            Ok(None) => Err(CompleteError::NoEntry(uid.as_raw())),
            Err(e) => Err(CompleteError::Read(e)),
        }
    }

    /// Whether the uid and gid asked for are those the process has, real
    /// and effective (one not given, or given as 0, is kept).
    fn keeps_ids(&self) -> bool {
        use rustix::process::{getegid, geteuid, getgid, getuid};
        let uid = self.uid.filter(|u| !u.is_root()).is_none_or(|u| u == getuid() && u == geteuid());
        let gid = self.gid.filter(|g| !g.is_root()).is_none_or(|g| g == getgid() && g == getegid());
        uid && gid
    }

    /// The supplementary list to set, if any: the given list, or else,
    /// when the uid or gid changes (`keeps_ids` false), just the gid the
    /// program will run with (`current` when the gid is left unchanged),
    /// so that root's other groups are never kept. With the ids kept and
    /// no list, none: the groups stay as they are.
    fn groups_to_set(&self, current: Gid, keeps_ids: bool) -> Option<Groups> {
        let new_gid = self.gid.filter(|g| !g.is_root());
        match (self.groups, new_gid) {
            (Some(list), _) => Some(Groups::List(list)),
            (None, _) if keeps_ids => None,
            (None, Some(gid)) => Some(Groups::Only(gid)),
            (None, None) if self.changes_uid() => Some(Groups::Only(current)),
            (None, None) => None,
        }
    }

    /// The supplementary list [`Target::apply`] sets, if any.
    fn list_to_set(&self, egid: Gid) -> Option<Groups> {
        self.groups_to_set(egid, self.keeps_ids())
    }

    /// Whether [`Target::apply`] would need a privilege this process lacks:
    /// CAP_SETGID for groups other than those it has (its gid counted) or
    /// for a gid other than its own, CAP_SETUID for a uid other than its
    /// own (root has both). For a server to refuse before it binds.
    pub fn needs_privilege(&self) -> bool {
        use rustix::process::{getegid, geteuid, getgid, getuid};
        use rustix::thread::{capabilities, CapabilitySet};
        // Capabilities that cannot be read: let apply say what fails.
        let have = capabilities(None).map_or(CapabilitySet::all(), |c| c.effective);
        let egid = getegid();
        let gid_after = self.gid.filter(|g| !g.is_root()).unwrap_or(egid);
        let groups = self.list_to_set(egid).is_some_and(|l| l.change(gid_after));
        let gid = self.gid.filter(|g| !g.is_root()).is_some_and(|g| g != getgid() && g != egid);
        let uid = self.uid.filter(|u| !u.is_root()).is_some_and(|u| u != getuid() && u != geteuid());
        ((groups || gid) && !have.contains(CapabilitySet::SETGID)) || (uid && !have.contains(CapabilitySet::SETUID))
    }

    /// For a server, before it binds: `fatal: -u, -g, -G and -U need root,
    /// unless they name the server's own ids` (100) when
    /// [`Target::needs_privilege`], rather than fail once the socket is
    /// bound and leave it behind.
    pub fn refuse_without_privilege(&self) {
        if self.needs_privilege() {
            crate::log::die(
                crate::log::EXIT_PERMANENT,
                &[b"-u, -g, -G and -U need root, unless they name the server's own ids"],
            );
        }
    }

    /// Applies the change: groups, then gid, then uid. On failure returns
    /// what could not be set (`supplementary groups`, `gid`, `uid`) and
    /// why; the caller must then exit without running anything. A list
    /// that the process may not set (it is not root) but that would leave
    /// it with the groups it has is no failure.
    pub fn apply(&self) -> Result<(), SetError> {
        let egid = rustix::process::getegid();
        let gid_after = self.gid.filter(|g| !g.is_root()).unwrap_or(egid);
        if let Some(groups) = self.list_to_set(egid) {
            groups.set(gid_after).map_err(|e| (&b"set supplementary groups"[..], e))?;
        }
        if let Some(gid) = self.gid.filter(|g| !g.is_root()) {
            set_gid(gid)?;
        }
        if let Some(uid) = self.uid.filter(|u| !u.is_root()) {
            set_uid(uid)?;
        }
        Ok(())
    }
}

/// What a privilege change could not set, and why: `set supplementary
/// groups`, `set gid` or `set uid`.
pub type SetError = (&'static [u8], Errno);

fn set_gid(gid: Gid) -> Result<(), SetError> {
    rustix::thread::set_thread_gid(gid).map_err(|e| (&b"set gid"[..], e))
}

fn set_uid(uid: Uid) -> Result<(), SetError> {
    rustix::thread::set_thread_uid(uid).map_err(|e| (&b"set uid"[..], e))
}

/// Becomes exactly `uid`, with `gid` as its gid and only group (in the
/// order of [`Target::apply`]): ipcexec's change, for a program run as
/// the user a rule names. It differs from a [`Target`] on purpose: 0 is
/// root here, not "leave unchanged" (a rule may run a program as root,
/// which then gets gid 0 as its only group, never the server's other
/// groups), and there is no list. A process not run as root can only
/// serve its own ids: asked for them, it changes nothing (its groups
/// included); asked for others, it fails.
pub fn become_user(uid: Uid, gid: Gid) -> Result<(), SetError> {
    let euid = rustix::process::geteuid();
    if !euid.is_root() && euid == uid && rustix::process::getegid() == gid {
        return Ok(());
    }
    rustix::thread::set_thread_groups(&[gid]).map_err(|e| (&b"set supplementary groups"[..], e))?;
    set_gid(gid)?;
    set_uid(uid)
}

/// Whether setting `list` as the supplementary groups would change
/// nothing the kernel checks access with, for a process running with
/// `gid`: the groups it has and `list`, each with `gid` added, are the same
/// set. False when the groups cannot be read (then they are set).
#[inline(never)]
fn changes_nothing(list: &[Gid], gid: Gid) -> bool {
    let mut buf = [0u32; GIDLIST_MAX];
    match crate::runtime::getgroups(&mut buf) {
        Ok(n) => same_groups(list, &buf[..n], gid.as_raw()),
        Err(_) => false,
    }
}

/// Whether `wanted` and `current`, each with `gid` added, are one set.
fn same_groups(wanted: &[Gid], current: &[u32], gid: u32) -> bool {
    let wanted = || wanted.iter().map(|g| g.as_raw());
    wanted().all(|g| g == gid || current.contains(&g)) && current.iter().all(|&g| g == gid || wanted().any(|w| w == g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uid: u32, gid: u32, groups: Option<GidList<'static>>) -> Target {
        Target { uid: Some(Uid::from_raw(uid)), gid: Some(Gid::from_raw(gid)), groups }
    }

    /// The list of `list`'s gids, as a command line would give it.
    fn gids(list: &[u32]) -> GidList<'static> {
        let text: Vec<String> = list.iter().map(|g| g.to_string()).collect();
        GidList(leak(&text.join(",")))
    }

    fn leak(s: &str) -> &'static [u8] {
        Box::leak(s.as_bytes().to_vec().into_boxed_slice())
    }

    fn envp(vars: &[&str]) -> CStrArray<'static> {
        crate::runtime::leaked_array(vars)
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
        let max = leak(&vec!["7"; GIDLIST_MAX].join(","));
        let mut buf = [Gid::ROOT; GIDLIST_MAX];
        assert_eq!(parse_gidlist(max).map(|l| l.to_slice(&mut buf).len()), Some(GIDLIST_MAX));
        let over = leak(&vec!["7"; GIDLIST_MAX + 1].join(","));
        assert_eq!(parse_gidlist(over), None);
        let list = parse_gidlist(b"1,20,300").unwrap();
        assert_eq!(list.to_slice(&mut buf), [1, 20, 300].map(Gid::from_raw));
        assert_eq!(parse_gidlist(b"").unwrap().to_slice(&mut buf), []);
        assert_eq!(parse_gidlist(b"").unwrap().gids().count(), 0);
        assert_eq!(parse_gidlist(b"1,20,300").unwrap().gids().collect::<Vec<_>>(), [1, 20, 300]);
        assert_eq!(parse_gidlist(b"007").unwrap().gids().collect::<Vec<_>>(), [7]);
        assert_eq!(GidList::default(), gids(&[]));
        // Written from numbers, as a server writes a client's groups.
        let mut text = ArrayVec::<u8, 64>::new();
        assert_eq!(GidList::write(&[0, 27, 4294967295], &mut text).as_bytes(), b"0,27,4294967295");
        assert_eq!(GidList::write(&[0, 27, 4294967295], &mut text).gids().collect::<Vec<_>>(), [0, 27, u32::MAX]);
        assert_eq!(GidList::write(&[], &mut text).as_bytes(), b"");
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
        let current = Gid::from_raw(42);
        let only = |g| Some(Groups::Only(Gid::from_raw(g)));
        assert_eq!(target(1, 5, None).groups_to_set(current, false), only(5));
        let list = gids(&[7, 8]);
        assert_eq!(target(1, 5, Some(list)).groups_to_set(current, false), Some(Groups::List(list)));
        // A uid drop with the gid left as it is: that gid, never root's 0.
        assert_eq!(target(1, 0, None).groups_to_set(current, false), only(42));
        let uid_only = Target { uid: Some(Uid::from_raw(1)), ..Target::default() };
        assert_eq!(uid_only.groups_to_set(current, false), only(42));
        assert_eq!(target(0, 0, None).groups_to_set(current, false), None);
        assert_eq!(target(0, 0, Some(gids(&[]))).groups_to_set(current, false), Some(Groups::List(gids(&[]))));
        assert_eq!(Target::default().groups_to_set(current, false), None);
    }

    #[test]
    fn kept_ids_without_a_list_keep_the_groups() {
        let current = Gid::from_raw(42);
        assert_eq!(target(1, 5, None).groups_to_set(current, true), None);
        let list = gids(&[7]);
        assert_eq!(target(1, 5, Some(list)).groups_to_set(current, true), Some(Groups::List(list)));
    }

    #[test]
    fn groups_are_compared_as_sets_with_the_gid() {
        assert!(same_groups(&[].map(Gid::from_raw), &[], 5));
        assert!(same_groups(&[5].map(Gid::from_raw), &[], 5));
        assert!(same_groups(&[].map(Gid::from_raw), &[5], 5));
        assert!(same_groups(&[7, 5, 6].map(Gid::from_raw), &[6, 7], 5));
        assert!(same_groups(&[6, 6].map(Gid::from_raw), &[6, 5], 5));
        assert!(!same_groups(&[7].map(Gid::from_raw), &[], 5));
        assert!(!same_groups(&[].map(Gid::from_raw), &[7], 5));
        assert!(!same_groups(&[5].map(Gid::from_raw), &[0], 5));
    }

    #[test]
    fn a_uid_without_gid_takes_the_primary_gid() {
        // root is in every /etc/passwd, with gid 0.
        let mut t = Target { uid: Some(Uid::from_raw(0)), ..Target::default() };
        t.complete().unwrap();
        assert_eq!(t.gid, None);
        let nobody = crate::userdb::find(crate::userdb::Query::Name(b"nobody")).unwrap();
        if let Some(user) = nobody {
            let mut t = Target { uid: Some(Uid::from_raw(user.uid)), ..Target::default() };
            t.complete().unwrap();
            assert_eq!(t.gid, Some(Gid::from_raw(user.gid)));
        }
        let mut t = Target { uid: Some(Uid::from_raw(4_000_000_000)), ..Target::default() };
        assert_eq!(t.complete(), Err(CompleteError::NoEntry(4_000_000_000)));
    }
}
