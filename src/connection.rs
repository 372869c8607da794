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
//!   ([`Peer::push_env`]: `IPCREMOTEPATH`, `IPCREMOTEEUID` and
//!   `IPCREMOTEEGID` when known, `IPCCONNNUM` where the server counts);
//!   the rule's assignments come after them ([`verdict`]);
//! - the client's credentials ([`Peer::of`]) and the ids rules and logs
//!   use for a client without them ([`Peer::ids_or_own`]);
//! - the banner ([`send_banner`]), the verdict of ucspi-ipc rules
//!   ([`verdict`]; [`admit`] does the three in the order ipcaccept and
//!   the preforking servers share);
//! - the per-uid limit and its refusal line ([`over_local_limit`],
//!   [`refuse`]);
//! - the log lines of one connection: `pid PID from REMOTE`
//!   ([`log_pid_from`]), the access line ([`log_access`]), `done PID`
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
use crate::env::Env;
use crate::log::{self, Line};
use crate::rules::{self, Dropped};
use crate::runtime::CStrArray;
use crate::{io, socket, uidgid};
use core::ffi::CStr;
use rustix::fd::AsFd;
use rustix::io::Errno;

/// A client's effective uid and gid.
pub type Ids = (u32, u32);

/// The variables a server sets for each connection (UCSPI-IPC's, and
/// s6's IPCCONNNUM); values inherited from the server's own environment
/// are dropped.
pub const SERVER_VARS: [&[u8]; 6] =
    [b"PROTO", b"IPCLOCALPATH", b"IPCREMOTEPATH", b"IPCREMOTEEUID", b"IPCREMOTEEGID", b"IPCCONNNUM"];

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
}

impl<'a> Peer<'a> {
    /// The client on `conn`, whose socket's path is `remote`; its ids are
    /// asked of the kernel unless `peercred` is false (`-P`).
    #[inline]
    pub fn of(conn: impl AsFd, remote: &'a [u8], peercred: bool) -> Result<Peer<'a>, Errno> {
        let ids = if peercred { Some(socket::peer_ids(conn)?) } else { None };
        Ok(Peer { remote, ids })
    }

    /// [`Peer::of`] for a server that accepts on after a failure: on one,
    /// `warning: unable to get the credentials of a client, dropping it:
    /// REASON`, and `None`.
    #[inline]
    pub fn accepted(conn: impl AsFd, remote: &'a [u8], peercred: bool) -> Option<Peer<'a>> {
        Peer::of(conn, remote, peercred)
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

    /// Appends its variables to a server's environment: `IPCREMOTEPATH`,
    /// then `IPCREMOTEEUID` and `IPCREMOTEEGID` when its ids are known,
    /// then, for a server that counts connections, `IPCCONNNUM=others`:
    /// how many other connections of its uid ([`Peer::uid_tag`]) are
    /// being served, this one not counted (s6's meaning).
    #[inline]
    pub fn push_env(&self, env: &mut Env<'_>, others: Option<usize>) -> Result<(), Errno> {
        env.push(b"IPCREMOTEPATH", self.remote)?;
        if let Some((uid, gid)) = self.ids {
            env.push_num(b"IPCREMOTEEUID", uid as u64)?;
            env.push_num(b"IPCREMOTEEGID", gid as u64)?;
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

/// A ucspi-ipc rules file for connections: `-x path`, and `-X` (a missing
/// file allows).
#[derive(Clone, Copy)]
pub struct RulesFile {
    /// The cdb, as `ipcrules` compiles it.
    pub path: &'static CStr,
    /// Whether a missing file allows every client.
    pub optional: bool,
}

/// The verdict of `rules` (none: allow) on a client with `ids`: whether
/// it is allowed; the rule's assignments go into `env`, borrowed from
/// `record`. [`Dropped`] when the rules cannot be used (the warning is
/// written): see [`rules::apply_file`].
pub fn verdict<'b>(
    rules: Option<RulesFile>,
    ids: Ids,
    record: &'b mut [u8],
    env: &mut Env<'b>,
) -> Result<bool, Dropped> {
    match rules {
        None => Ok(true),
        Some(r) => rules::apply_file(r.path, r.optional, ids, record, env),
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
    let ids = peer.ids_or_own();
    let allowed = verdict(rules, ids, record, env)?;
    if log::verbosity() >= 2 {
        log_access(access, allowed, peer.remote, ids);
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
/// it.
pub fn log_access(access: Access<'_>, allowed: bool, remote: &[u8], (euid, egid): Ids) {
    let mut l = Line::named(access.name);
    l.str(if allowed { b"ok " } else { b"deny " }).num(access.pid as u64).str(b" ");
    l.sanitised(access.local).str(b" ").sanitised(remote).str(b":");
    l.num(euid as u64).str(b",").num(egid as u64);
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
        for v in [c"PATH=/bin", c"IPCREMOTEEUID=7", c"IPCCONNNUM=5", c"PROTO=TCP", c"HOME=/"] {
            launcher.set_entry(v).unwrap();
        }
        let envp = launcher.finish();
        let mut e = Env::new();
        server_env(&mut e, envp, b"/run/s").unwrap();
        Peer { remote: b"/tmp/c", ids: Some((1000, 100)) }.push_env(&mut e, None).unwrap();
        let with_ids = ["IPCREMOTEPATH=/tmp/c", "IPCREMOTEEUID=1000", "IPCREMOTEEGID=100"];
        let base = ["PATH=/bin", "HOME=/", "PROTO=IPC", "IPCLOCALPATH=/run/s"];
        assert_eq!(list(&mut e), [&base[..], &with_ids[..]].concat());
        let mut e = Env::new();
        server_env(&mut e, envp, b"/run/s").unwrap();
        Peer { remote: b"", ids: None }.push_env(&mut e, None).unwrap();
        assert_eq!(list(&mut e), [&base[..], &["IPCREMOTEPATH="][..]].concat());
    }

    #[test]
    fn a_counting_server_adds_the_other_connections_of_the_uid() {
        let mut e = Env::new();
        Peer { remote: b"/tmp/c", ids: None }.push_env(&mut e, Some(2)).unwrap();
        assert_eq!(list(&mut e), ["IPCREMOTEPATH=/tmp/c", "IPCCONNNUM=2"]);
        assert!(!over_local_limit(1, 2));
        assert!(over_local_limit(2, 2));
    }
}
