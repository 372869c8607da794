//! The client as the rules of both formats see it: who is asking
//! ([`Client`], its effective ids and, for lookups under `-S`, its
//! supplementary groups; read from the environment by the programs that
//! check rules), and what the rules decide for it ([`Verdict`]). `rules`
//! (ucspi-ipc's rules) and `s6rules` (s6's) both import it, and neither
//! imports the other for it.
//!
//! It does not look anything up, and knows no rules file: the lookups are
//! the two rules modules'.

use crate::num;
use crate::runtime::CStrArray;
use crate::uidgid::{self, GidList, Gids};
use core::ffi::CStr;

/// Who is asking: the client's effective ids, either of which may be
/// unknown, and the supplementary groups a lookup tries after its primary
/// gid (`-S`; empty otherwise, and then every lookup is the original's
/// and s6's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Client<'g> {
    /// The effective uid, if known.
    pub euid: Option<u32>,
    /// The effective gid, if known.
    pub egid: Option<u32>,
    /// The supplementary groups to try, in order (ascending, as a server
    /// learns them), after the primary gid (which may be among them:
    /// its keys are then tried twice, with the same answer).
    pub groups: GidList<'g>,
}

/// An environment variable that should hold an id and does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadId<'e> {
    /// The variable.
    pub name: &'static [u8],
    /// What it holds.
    pub value: &'e [u8],
}

impl BadId<'_> {
    /// `NAME: fatal: invalid VAR: VALUE` (value sanitised), exit 100: a
    /// set but unusable id is refused rather than ignored, since ignoring
    /// it could make a default rule apply.
    pub fn die(self) -> ! {
        if crate::log::verbosity() >= 1 {
            let mut l = crate::log::Line::new();
            l.str(b"fatal: invalid ").str(self.name).str(b": ").sanitised(self.value).emit();
        }
        crate::runtime::exit(crate::log::EXIT_PERMANENT)
    }
}

/// Variable `name` of `envp` as `parse` reads it: `None` when unset.
fn from_env<'e, T>(
    envp: CStrArray<'e>,
    name: &'static [u8],
    parse: impl FnOnce(&'e [u8]) -> Option<T>,
) -> Result<Option<T>, BadId<'e>> {
    match crate::env::get(envp, name) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or(BadId { name, value: v }),
    }
}

/// `$IPCREMOTEPID`, the pid a server saw connect: for log lines, never
/// for a decision (it may have been reused since).
pub fn pid_from_env(envp: CStrArray<'_>) -> Result<Option<u32>, BadId<'_>> {
    from_env(envp, b"IPCREMOTEPID", num::parse_u32)
}

/// `$IPCREMOTEGIDLIST`, the client's supplementary groups as a server set
/// them (comma-separated decimal gids, at most
/// [`uidgid::GIDLIST_MAX`]).
pub fn groups_from_env(envp: CStrArray<'_>) -> Result<Option<GidList<'_>>, BadId<'_>> {
    from_env(envp, b"IPCREMOTEGIDLIST", uidgid::parse_gidlist)
}

impl<'g> Client<'g> {
    /// The client named by `$IPCREMOTEEUID` and `$IPCREMOTEEGID` (unset
    /// variables leave the id unknown), without groups.
    pub fn from_env(envp: CStrArray<'g>) -> Result<Client<'g>, BadId<'g>> {
        let (euid, egid) =
            (from_env(envp, b"IPCREMOTEEUID", num::parse_u32)?, from_env(envp, b"IPCREMOTEEGID", num::parse_u32)?);
        Ok(Client { euid, egid, groups: GidList::default() })
    }

    /// The client with its supplementary groups, for a lookup that tries
    /// them (`-S`): `groups`, what the server learnt (`None`: nothing).
    /// A client whose ids are known but whose groups are not (a kernel
    /// that does not tell them, more than [`uidgid::GIDLIST_MAX`], a
    /// server that does not set `IPCREMOTEGIDLIST`) cannot be looked up
    /// as asked, and trying without its groups could let a group's deny
    /// rule pass it by: `warning: denying a client whose supplementary
    /// groups are not known`, and `None`, for the caller to deny (its
    /// access line says who). A client of whom nothing is known (`-P`)
    /// has no groups to try.
    pub fn with_groups(self, groups: Option<GidList<'g>>) -> Option<Client<'g>> {
        match groups {
            Some(groups) => Some(Client { groups, ..self }),
            None if self.euid.is_none() && self.egid.is_none() => Some(self),
            None => {
                crate::log::warn(&[b"denying a client whose supplementary groups are not known"]);
                None
            }
        }
    }

    /// The gids a lookup tries, in order: the primary one, if known, then
    /// the supplementary ones.
    pub fn gids(&self) -> ClientGids<'g> {
        ClientGids { primary: self.egid, others: self.groups.gids() }
    }
}

/// The gids a lookup tries for a client ([`Client::gids`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientGids<'g> {
    primary: Option<u32>,
    others: Gids<'g>,
}

impl Iterator for ClientGids<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.primary.take().or_else(|| self.others.next())
    }
}

/// What the rules decide for a client, in either format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'v> {
    /// Refuse: a deny rule (for s6's rules, also no rule at all).
    Deny,
    /// Allow, running this instead of the program asked for, if any: the
    /// path of an ipcexec rule's `allow="path"` (ipcserver-access ignores
    /// one in its rules), or the execline script of an s6 rule.
    Allow(Option<&'v CStr>),
}
