//! One accepted connection, as every server serves it: the one place that
//! knows what a connection's program or handler is told, and what the
//! log says of it. ipcserverd, ipcserver-access, ipcaccept and the
//! preforking servers ([`crate::prefork`]) all serve through it, so that
//! a new fact about clients is added here once and every server passes
//! it on.
//!
//! It owns:
//! - the UCSPI environment: the server's base ([`server_env`]: its own
//!   environment without [`SERVER_VARS`], then `PROTO=IPC` and
//!   `IPCLOCALPATH`), and per connection the client's variables
//!   ([`Peer::push_env`]: `IPCREMOTEPATH`; `IPCREMOTEEUID`,
//!   `IPCREMOTEEGID`, `IPCREMOTEPID` and `IPCREMOTEGIDLIST` when known,
//!   `IPCCONNNUM` where the server counts); the rule's assignments come
//!   after them ([`verdict`]);
//! - the client's credentials, pid and supplementary groups ([`Peer::of`],
//!   the groups read into a [`GroupsBuf`], bounded by
//!   [`uidgid::GIDLIST_MAX`]; whether the kernel tells them at all,
//!   [`probe_groups`]), and the client its rules see ([`Peer::client`]:
//!   the server's own ids for a client without them, its groups under
//!   `-S`);
//! - the banner ([`send_banner`]), the verdict of ucspi-ipc rules
//!   ([`verdict`]; [`admit`] does the three in the order ipcaccept and
//!   the preforking servers share);
//! - the per-uid limit and its refusal line ([`over_local_limit`],
//!   [`refuse`]);
//! - the log lines of one connection: `pid PID from REMOTE`
//!   ([`log_pid_from`]), the access line ([`log_access`], with the
//!   client's pid and groups at a higher verbosity: [`Facts`]), `done PID`
//!   ([`log_done`]).
//!
//! It does not accept, fork, move descriptors or run anything (the
//! servers differ there: ipcserverd spawns a child per connection,
//! ipcaccept forks and waits, a preforking child calls its handler), and
//! it does not write the server's own lines (`status`, `end`: see
//! [`crate::children`]). What a rules format means is
//! [`crate::rules`]'s and [`crate::s6rules`]'s; how an environment is
//! built is [`crate::env`]'s.

use crate::children;
use crate::client::Client;
use crate::env::Env;
use crate::log::{self, Line};
use crate::rules::{self, Dropped};
use crate::runtime::{CStrArray, Table};
use crate::uidgid::{self, GidList, GIDLIST_MAX};
use crate::{io, num, socket};
use arrayvec::ArrayVec;
use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, Ordering};
use rustix::fd::AsFd;
use rustix::io::Errno;

/// A client's effective uid and gid.
pub type Ids = (u32, u32);

/// The variables a server sets for each connection (UCSPI-IPC's, s6's
/// IPCCONNNUM, and ours: IPCREMOTEPID, IPCREMOTEGIDLIST); values
/// inherited from the server's own environment are dropped.
pub const SERVER_VARS: [&[u8]; 8] = [
    b"PROTO",
    b"IPCLOCALPATH",
    b"IPCREMOTEPATH",
    b"IPCREMOTEEUID",
    b"IPCREMOTEEGID",
    b"IPCREMOTEPID",
    b"IPCREMOTEGIDLIST",
    b"IPCCONNNUM",
];

/// Longest `IPCREMOTEGIDLIST` value: [`GIDLIST_MAX`] gids of ten digits,
/// with their commas (11 KiB).
pub const GIDLIST_TEXT_MAX: usize = GIDLIST_MAX * (num::U32_DIGITS + ",".len());
// With the rest of a connection's variables (a socket path, numbers), it
// fits the environment's copies.
const _: () = assert!(GIDLIST_TEXT_MAX + 1024 <= crate::env::STRINGS_MAX);

/// Room for one client's supplementary groups at a time: the kernel's
/// list, and its text for `IPCREMOTEGIDLIST` and the lookups, which a
/// [`Peer`] borrows. 15 KiB, in `.bss` ([`GroupsBuf::take`]): a
/// connection touches the pages its client's groups fill.
pub struct GroupsBuf {
    gids: [u32; GIDLIST_MAX],
    text: ArrayVec<u8, GIDLIST_TEXT_MAX>,
}

/// The server's one [`GroupsBuf`].
static GROUPS: Table<GroupsBuf> = Table::new(GroupsBuf { gids: [0; GIDLIST_MAX], text: ArrayVec::new_const() });

/// Set when the kernel does not tell a client's groups ([`probe_groups`]):
/// no connection asks.
static GROUPS_UNTOLD: AtomicBool = AtomicBool::new(false);

impl GroupsBuf {
    /// The server's buffer, taken once (a second call is an internal
    /// error: exit 111).
    pub fn take() -> &'static mut GroupsBuf {
        GROUPS.take().unwrap_or_else(|| crate::runtime::exit(log::EXIT_TEMP))
    }

    /// The supplementary groups of the client on `conn`: `None` when the
    /// kernel does not tell them, or when there are more than
    /// [`GIDLIST_MAX`] (a lookup under `-S` then denies the client, and
    /// says why: [`Client::with_groups`]). Not inlined: a preforking
    /// server is 32 bytes smaller so, and no other larger.
    #[inline(never)]
    fn read(&mut self, conn: impl AsFd) -> Result<Option<GidList<'_>>, Errno> {
        if GROUPS_UNTOLD.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let gids = match socket::peer_groups(conn, &mut self.gids) {
            Ok(gids) => gids,
            // Not told, or too many: unknown.
            Err(Errno::NOPROTOOPT | Errno::RANGE) => return Ok(None),
            Err(e) => return Err(e),
        };
        // Fits: at most GIDLIST_MAX gids.
        Ok(Some(GidList::write(gids, &mut self.text)))
    }
}

/// Asks the kernel once, as a server starts, whether it tells a client's
/// supplementary groups (SO_PEERGROUPS, Linux 4.13 and later), on the
/// listening socket (whose peer is the server itself). If it does not:
/// `warning: the kernel does not tell the groups of clients:
/// IPCREMOTEGIDLIST is not set`, and no connection asks again.
pub fn probe_groups(listener: impl AsFd) {
    if socket::peer_groups(listener, &mut []) == Err(Errno::NOPROTOOPT) {
        GROUPS_UNTOLD.store(true, Ordering::Relaxed);
        log::warn(&[b"the kernel does not tell the groups of clients: IPCREMOTEGIDLIST is not set"]);
    }
}

/// Starts a server's environment for its connections from the server's
/// own `envp`: without the [`SERVER_VARS`] it may hold (they describe
/// some other connection), then `PROTO=IPC` and `IPCLOCALPATH=local`.
/// Each connection's variables follow ([`Peer::push_env`]).
pub fn server_env<'a>(env: &mut Env<'a>, envp: CStrArray<'a>, local: &[u8]) -> Result<(), Errno> {
    env.inherit(envp)?;
    env.retain(|name| !SERVER_VARS.contains(&name));
    env.push(b"PROTO", b"IPC")?;
    env.push(b"IPCLOCALPATH", local)
}

/// The client of one connection, as the server learns it when it
/// accepts.
#[derive(Clone, Copy)]
pub struct Peer<'a> {
    /// The path of the client's socket (empty for an unnamed one).
    pub remote: &'a [u8],
    /// Its effective uid and gid; `None` for a server run with `-P`.
    pub ids: Option<Ids>,
    /// The pid of the process that connected, as it was then (it may have
    /// exited since, and the number gone to another: for logs, never for
    /// a decision); `None` with `-P`, or when the kernel says 0 (a process
    /// in a pid namespace the server cannot see).
    pub pid: Option<u32>,
    /// Its supplementary groups when it connected, ascending; `None` with
    /// `-P`, when the kernel does not tell them, or beyond
    /// [`GIDLIST_MAX`].
    pub groups: Option<GidList<'a>>,
}

impl<'a> Peer<'a> {
    /// The client on `conn`, whose socket's path is `remote`; its
    /// credentials and groups (read into `groups`) are asked of the kernel
    /// unless `peercred` is false (`-P`).
    #[inline]
    pub fn of(conn: impl AsFd, remote: &'a [u8], peercred: bool, groups: &'a mut GroupsBuf) -> Result<Peer<'a>, Errno> {
        if !peercred {
            return Ok(Peer { remote, ids: None, pid: None, groups: None });
        }
        let cred = socket::peer_cred(&conn)?;
        let groups = groups.read(&conn)?;
        Ok(Peer { remote, ids: Some((cred.uid, cred.gid)), pid: cred.pid, groups })
    }

    /// [`Peer::of`] for a server that accepts on after a failure: on one,
    /// `warning: unable to get the credentials of a client, dropping it:
    /// REASON`, and `None`.
    #[inline]
    pub fn accepted(conn: impl AsFd, remote: &'a [u8], peercred: bool, groups: &'a mut GroupsBuf) -> Option<Peer<'a>> {
        Peer::of(conn, remote, peercred, groups)
            .map_err(|e| log::warn_sys(e, &[b"get the credentials of a client, dropping it"]))
            .ok()
    }

    /// Its uid, as a per-uid count tags it: clients without ids (`-P`)
    /// count as one uid, [`children::NO_UID`].
    #[inline]
    pub fn uid_tag(&self) -> u32 {
        self.ids.map_or(children::NO_UID, |(uid, _)| uid)
    }

    /// The ids its rules are looked up with and its access line shows:
    /// the server's own for a client it does not know (`-P`), as the
    /// original does.
    pub fn ids_or_own(&self) -> Ids {
        let (euid, egid) = self.ids.unzip();
        uidgid::known_or_own(euid, egid)
    }

    /// The client as its rules see it: its ids, or the server's own
    /// ([`Peer::ids_or_own`]), and with `supplementary` (`-S`) its
    /// groups. `None` when they are asked for and not known: the client
    /// is denied (the warning is written, see [`Client::with_groups`]).
    pub fn client(&self, supplementary: bool) -> Option<Client<'a>> {
        let (euid, egid) = self.ids_or_own();
        let client = Client { euid: Some(euid), egid: Some(egid), groups: GidList::EMPTY };
        // A client the server knows nothing of (-P) has no groups to try.
        match supplementary && self.ids.is_some() {
            true => client.with_groups(self.groups),
            false => Some(client),
        }
    }

    /// What its access line says of it at a higher verbosity.
    pub fn facts(&self) -> Facts<'a> {
        Facts { pid: self.pid, groups: self.groups }
    }

    /// Appends its variables to a server's environment: `IPCREMOTEPATH`,
    /// then `IPCREMOTEEUID`, `IPCREMOTEEGID`, `IPCREMOTEPID` and
    /// `IPCREMOTEGIDLIST` when known, then, for a server that counts
    /// connections, `IPCCONNNUM=others`: how many other connections of its
    /// uid ([`Peer::uid_tag`]) are being served, this one not counted
    /// (s6's meaning).
    #[inline]
    pub fn push_env(&self, env: &mut Env<'_>, others: Option<usize>) -> Result<(), Errno> {
        env.push(b"IPCREMOTEPATH", self.remote)?;
        if let Some((uid, gid)) = self.ids {
            env.push_num(b"IPCREMOTEEUID", uid as u64)?;
            env.push_num(b"IPCREMOTEEGID", gid as u64)?;
        }
        if let Some(pid) = self.pid {
            env.push_num(b"IPCREMOTEPID", pid as u64)?;
        }
        if let Some(groups) = self.groups {
            env.push(b"IPCREMOTEGIDLIST", groups.as_bytes())?;
        }
        match others {
            Some(n) => env.push_num(b"IPCCONNNUM", n as u64),
            None => Ok(()),
        }
    }

    /// [`Peer::push_env`] for a server that accepts on after a failure:
    /// whether it succeeded; if not, `warning: unable to build the
    /// environment of a client, dropping it: REASON`.
    #[inline]
    pub fn pushed_env(&self, env: &mut Env<'_>, others: Option<usize>) -> bool {
        self.push_env(env, others)
            .map_err(|e| log::warn_sys(e, &[b"build the environment of a client, dropping it"]))
            .is_ok()
    }
}

/// What an access line says of a client beyond the original's line, at
/// a higher verbosity (3; ipcserverd's 4): `pid=PID` and `gids=LIST`,
/// each when known.
#[derive(Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The pid of the process that connected.
    pub pid: Option<u32>,
    /// Its supplementary groups.
    pub groups: Option<GidList<'a>>,
}

/// The verbosity at which an access line has the client's [`Facts`]:
/// one above the original's `-v`.
pub const FACTS_VERBOSITY: u8 = 3;

/// Whether a connection that finds `others` connections of its uid being
/// served (as [`Peer::push_env`] counts them) is over a per-uid limit of
/// `localmax` (`-C`).
#[inline]
pub fn over_local_limit(others: usize, localmax: usize) -> bool {
    others >= localmax
}

/// `warning: dropping a connection from uid UID: local limit of N
/// reached` (`from a client` for one without ids), at verbosity 1 and
/// more: the connection is closed without anything run for it.
pub fn refuse(peer: &Peer<'_>, localmax: usize) {
    if log::verbosity() >= 1 {
        let mut l = Line::new();
        l.str(b"warning: dropping a connection from ");
        match peer.ids {
            Some((uid, _)) => l.str(b"uid ").num(uid as u64),
            None => l.str(b"a client"),
        };
        l.str(b": local limit of ").num(localmax as u64).str(b" reached").emit();
    }
}

/// Writes the banner to the client, on descriptor 1; when it cannot,
/// `warning: dropping connection, unable to write banner: REASON` and
/// [`Dropped`].
pub fn send_banner(banner: &[u8]) -> Result<(), Dropped> {
    io::send_all(io::stdout(), banner).map_err(|e| {
        log::warn_dropping_sys(e, &[b"write banner"]);
        Dropped
    })
}

/// A ucspi-ipc rules file for connections: `-x path`, `-X` (a missing
/// file allows), and `-S` (the client's supplementary groups tried).
#[derive(Clone, Copy)]
pub struct RulesFile {
    /// The cdb, as `ipcrules` compiles it.
    pub path: &'static CStr,
    /// Whether a missing file allows every client.
    pub optional: bool,
    /// Whether lookups try the client's supplementary groups.
    pub supplementary: bool,
}

/// The verdict of `rules` (none: allow) on `client` (`None`: a client
/// whose groups `-S` asked for and are not known, denied): whether it is
/// allowed; the rule's assignments go into `env`, borrowed from `record`.
/// [`Dropped`] when the rules cannot be used (the warning is written):
/// see [`rules::apply_file`].
pub fn verdict<'b>(
    rules: Option<RulesFile>,
    client: Option<Client<'_>>,
    record: &'b mut [u8],
    env: &mut Env<'b>,
) -> Result<bool, Dropped> {
    match (rules, client) {
        (None, _) => Ok(true),
        (Some(_), None) => Ok(false),
        (Some(r), Some(client)) => rules::apply_file(r.path, r.optional, client, record, env),
    }
}

/// Who writes a connection's access line, and about which socket.
#[derive(Clone, Copy)]
pub struct Access<'s> {
    /// The name the line starts with.
    pub name: &'s [u8],
    /// The process that serves the connection.
    pub pid: u32,
    /// The server's local path.
    pub local: &'s [u8],
}

/// Admits a connection as ipcaccept and the preforking servers do: the
/// banner, if any, then the verdict of `rules` (assignments into `env`),
/// then at verbosity 2 the access line. Whether the client is allowed;
/// [`Dropped`] when the banner or the rules failed (the warning is
/// written).
pub fn admit<'b>(
    banner: Option<&[u8]>,
    rules: Option<RulesFile>,
    peer: &Peer<'_>,
    access: Access<'_>,
    record: &'b mut [u8],
    env: &mut Env<'b>,
) -> Result<bool, Dropped> {
    if let Some(banner) = banner {
        send_banner(banner)?;
    }
    let client = rules.and_then(|r| peer.client(r.supplementary));
    let allowed = verdict(rules, client, record, env)?;
    if log::verbosity() >= 2 {
        let facts = (log::verbosity() >= FACTS_VERBOSITY).then(|| peer.facts());
        log_access(access, allowed, peer.remote, peer.ids_or_own(), facts);
    }
    Ok(allowed)
}

/// The first line of a connection: `pid PID from REMOTEPATH` (sanitised),
/// PID being the process that serves it, as the original server logs it.
pub fn log_pid_from(pid: u32, remote: &[u8]) {
    Line::new().str(b"pid ").num(pid as u64).str(b" from ").sanitised(remote).emit();
}

/// The access line of a connection: `NAME: ok|deny PID LOCALPATH
/// REMOTEPATH:EUID,EGID` (paths sanitised), as the original server logs
/// it; with `facts`, then ` pid=PID` and ` gids=LIST` for those known
/// (a long list is cut with the line, at [`log::LINE_MAX`] bytes).
pub fn log_access(access: Access<'_>, allowed: bool, remote: &[u8], (euid, egid): Ids, facts: Option<Facts<'_>>) {
    let mut l = Line::named(access.name);
    l.str(if allowed { b"ok " } else { b"deny " }).num(access.pid as u64).str(b" ");
    l.sanitised(access.local).str(b" ").sanitised(remote).str(b":");
    l.num(euid as u64).str(b",").num(egid as u64);
    let Facts { pid, groups } = facts.unwrap_or_default();
    if let Some(pid) = pid {
        l.str(b" pid=").num(pid as u64);
    }
    if let Some(groups) = groups {
        l.str(b" gids=").str(groups.as_bytes());
    }
    l.emit();
}

/// The last line of a connection a preforking child served: `done PID`.
pub fn log_done(pid: u32) {
    Line::new().str(b"done ").num(pid as u64).emit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::tests::list;

    #[test]
    fn a_server_environment_drops_inherited_connection_variables() {
        let mut launcher = Env::new();
        for v in [
            c"PATH=/bin",
            c"IPCREMOTEEUID=7",
            c"IPCREMOTEPID=9",
            c"IPCCONNNUM=5",
            c"IPCREMOTEGIDLIST=1,2",
            c"PROTO=TCP",
            c"HOME=/",
        ] {
            launcher.set_entry(v).unwrap();
        }
        let envp = launcher.finish();
        let mut e = Env::new();
        server_env(&mut e, envp, b"/run/s").unwrap();
        let groups = uidgid::parse_gidlist(b"4,24,27");
        Peer { remote: b"/tmp/c", ids: Some((1000, 100)), pid: Some(4242), groups }.push_env(&mut e, None).unwrap();
        let with_ids = [
            "IPCREMOTEPATH=/tmp/c",
            "IPCREMOTEEUID=1000",
            "IPCREMOTEEGID=100",
            "IPCREMOTEPID=4242",
            "IPCREMOTEGIDLIST=4,24,27",
        ];
        let base = ["PATH=/bin", "HOME=/", "PROTO=IPC", "IPCLOCALPATH=/run/s"];
        assert_eq!(list(&mut e), [&base[..], &with_ids[..]].concat());
        let mut e = Env::new();
        server_env(&mut e, envp, b"/run/s").unwrap();
        Peer { remote: b"", ids: None, pid: None, groups: None }.push_env(&mut e, None).unwrap();
        assert_eq!(list(&mut e), [&base[..], &["IPCREMOTEPATH="][..]].concat());
        // A client without supplementary groups has an empty list.
        let mut e = Env::new();
        let empty = uidgid::parse_gidlist(b"");
        Peer { remote: b"", ids: Some((1, 1)), pid: None, groups: empty }.push_env(&mut e, None).unwrap();
        assert_eq!(list(&mut e), ["IPCREMOTEPATH=", "IPCREMOTEEUID=1", "IPCREMOTEEGID=1", "IPCREMOTEGIDLIST="]);
    }

    #[test]
    fn a_counting_server_adds_the_other_connections_of_the_uid() {
        let mut e = Env::new();
        Peer { remote: b"/tmp/c", ids: None, pid: None, groups: None }.push_env(&mut e, Some(2)).unwrap();
        assert_eq!(list(&mut e), ["IPCREMOTEPATH=/tmp/c", "IPCCONNNUM=2"]);
        assert!(!over_local_limit(1, 2));
        assert!(over_local_limit(2, 2));
    }

    #[test]
    fn the_client_rules_see() {
        let groups = uidgid::parse_gidlist(b"4,24");
        let peer = Peer { remote: b"", ids: Some((1000, 100)), pid: Some(7), groups };
        let client = peer.client(false).unwrap();
        assert_eq!((client.euid, client.egid, client.groups.as_bytes()), (Some(1000), Some(100), &b""[..]));
        assert_eq!(peer.client(true).unwrap().groups.as_bytes(), b"4,24");
        // Groups asked for and not known: no client to look up (a deny).
        assert!(Peer { groups: None, ..peer }.client(true).is_none());
        // A client the server knows nothing of (-P) has the server's ids
        // and no groups, with -S too.
        let unknown = Peer { remote: b"", ids: None, pid: None, groups: None };
        let own = uidgid::own_ids();
        let client = unknown.client(true).unwrap();
        assert_eq!((client.euid, client.egid, client.groups.as_bytes()), (Some(own.0), Some(own.1), &b""[..]));
    }

    #[test]
    fn a_client_s_groups_as_the_kernel_says_them() {
        // This process's own connection: its groups, as getgroups says them.
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let mut own = [0u32; GIDLIST_MAX];
        let n = crate::runtime::getgroups(&mut own).unwrap();
        let mut own: Vec<u32> = own[..n].to_vec();
        own.sort_unstable();
        let text: Vec<String> = own.iter().map(|g| g.to_string()).collect();
        let mut buf = Box::new(GroupsBuf { gids: [0; GIDLIST_MAX], text: ArrayVec::new() });
        let peer = Peer::of(&a, b"", true, &mut buf).unwrap();
        assert_eq!(peer.groups.map(|g| g.as_bytes().to_vec()), Some(text.join(",").into_bytes()));
        assert_eq!(peer.pid, Some(std::process::id()));
        drop(b);
    }
}
