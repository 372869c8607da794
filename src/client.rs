//! The client as the rules of both formats see it: who is asking
//! ([`Client`], its effective ids, read from the environment by the
//! programs that check rules), and what the rules decide for it
//! ([`Verdict`]). `rules` (ucspi-ipc's rules) and `s6rules` (s6's) both
//! import it, and neither imports the other for it.
//!
//! It does not look anything up, and knows no rules file: the lookups are
//! the two rules modules'.

use crate::num;
use crate::runtime::CStrArray;
use core::ffi::CStr;

/// Who is asking: the client's effective ids, either of which may be
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Client {
    /// The effective uid, if known.
    pub euid: Option<u32>,
    /// The effective gid, if known.
    pub egid: Option<u32>,
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

fn id_from_env<'e>(envp: CStrArray<'e>, name: &'static [u8]) -> Result<Option<u32>, BadId<'e>> {
    match crate::env::get(envp, name) {
        None => Ok(None),
        Some(v) => num::parse_u32(v).map(Some).ok_or(BadId { name, value: v }),
    }
}

impl Client {
    /// The client named by `$IPCREMOTEEUID` and `$IPCREMOTEEGID` (unset
    /// variables leave the id unknown).
    pub fn from_env(envp: CStrArray<'_>) -> Result<Client, BadId<'_>> {
        Ok(Client { euid: id_from_env(envp, b"IPCREMOTEEUID")?, egid: id_from_env(envp, b"IPCREMOTEEGID")? })
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
