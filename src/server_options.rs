//! ipcserver's command line, read once for every server that takes it:
//! `ipcserver` itself (which passes the values on to its chain as they
//! were written), the preforking servers ([`crate::prefork`], which add
//! `-f lockfile`), and ipcaccept, which takes the per-connection part
//! ([`ConnectionOptions`]).
//!
//! Like [`IdOptions`], each `read` takes one option and says whether it
//! was one of its own; which letters reach it is the caller's getopt
//! spec's business. Values are checked as they are read (an option
//! error, exit 100). It sets nothing: the verbosity, say, is the
//! program's to set when it wants (ipcaccept only once it serves).

use crate::args::Opt;
use crate::children;
use crate::connection::{RulesFile, FACTS_VERBOSITY};
use crate::runtime::CStrArray;
use crate::socket::{self, ListenOptions};
use crate::uidgid::IdOptions;
use core::ffi::CStr;

/// What is done for each connection: `-q -Q -v` (verbosity 0, 1, 2; `-v`
/// twice, 3: access lines with the client's pid and groups), `-p -P` (the
/// client's ids asked for, or not), `-x rules.cdb`, `-X`, `-S`, `-B
/// banner`, `-l localname`, `-f lockfile`; `-h -H -o -O -d -D` are
/// accepted without effect (ucspi-ipc's, for TCP or binding).
pub struct ConnectionOptions {
    /// `-q` 0, `-Q` 1 (the default), `-v` 2, `-vv`
    /// ([`connection::FACTS_VERBOSITY`](crate::connection::FACTS_VERBOSITY)) 3.
    pub verbosity: u8,
    /// Whether the client's ids are asked for (`-p`, the default; `-P`
    /// not).
    pub peercred: bool,
    /// `-x`: the rules file.
    pub rules: Option<&'static CStr>,
    /// `-X`: a missing rules file allows.
    pub rules_optional: bool,
    /// `-S`: rules are looked up with the client's supplementary groups
    /// too.
    pub supplementary: bool,
    /// `-B`: the banner.
    pub banner: Option<&'static CStr>,
    /// `-l`: the local path to report instead of the socket's.
    pub localname: Option<&'static CStr>,
    /// `-f`: the lock file that the acceptors of one socket take turns on.
    pub lockfile: Option<&'static CStr>,
}

impl ConnectionOptions {
    /// The defaults: verbosity 1, ids asked for, nothing else.
    pub const fn new() -> ConnectionOptions {
        ConnectionOptions {
            verbosity: 1,
            peercred: true,
            rules: None,
            rules_optional: false,
            supplementary: false,
            banner: None,
            localname: None,
            lockfile: None,
        }
    }

    /// Reads `opt` if it is one of these options: whether it was.
    pub fn read(&mut self, opt: &Opt<'static>) -> bool {
        match opt.letter {
            b'q' => self.verbosity = 0,
            b'Q' => self.verbosity = 1,
            // A second -v says more (the original takes -vv as -v).
            b'v' => self.verbosity = (self.verbosity + 1).clamp(2, FACTS_VERBOSITY),
            b'p' => self.peercred = true,
            b'P' => self.peercred = false,
            b'x' => self.rules = Some(opt.arg),
            b'X' => self.rules_optional = true,
            b'S' => self.supplementary = true,
            b'B' => self.banner = Some(opt.arg),
            b'l' => self.localname = Some(opt.arg),
            b'f' => self.lockfile = Some(opt.arg),
            // ucspi-ipc compatibility: accepted, without effect (d and D
            // bind, for a server: see ServerOptions). The original
            // ipcaccept lists them in its usage line, though its getopt
            // refuses them.
            b'h' | b'H' | b'o' | b'O' | b'd' | b'D' => {}
            _ => return false,
        }
        true
    }

    /// The rules file, if `-x` gave one.
    pub fn rules_file(&self) -> Option<RulesFile> {
        self.rules.map(|path| RulesFile { path, optional: self.rules_optional, supplementary: self.supplementary })
    }

    /// The banner's bytes, if `-B` gave one.
    pub fn banner(&self) -> Option<&'static [u8]> {
        self.banner.map(CStr::to_bytes)
    }
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions::new()
    }
}

/// A number as the command line wrote it, and its value.
#[derive(Clone, Copy)]
pub struct Number {
    /// As written (ipcserver passes it on so).
    pub text: &'static CStr,
    /// Its value, checked.
    pub value: u32,
}

/// ipcserver's options: the [`ConnectionOptions`], and `-1` (readiness
/// line), `-d -D` (remove an old socket, or not), `-c limit`, `-C
/// locallimit`, `-b backlog`, `-a perms`, and the privilege options `-u
/// -g -G -U` ([`IdOptions`]).
#[derive(Default)]
pub struct ServerOptions {
    /// What is done for each connection.
    pub connection: ConnectionOptions,
    /// `-1`: write the local path to stdout once listening.
    pub ready: bool,
    /// `-D`: keep an existing socket file (fail to bind) rather than
    /// remove it.
    pub keep_existing: bool,
    /// `-c`: the most connections served at once.
    pub maxconn: Option<Number>,
    /// `-C`: the most connections of one uid served at once.
    pub localmax: Option<Number>,
    /// `-b`: the listen backlog.
    pub backlog: Option<Number>,
    /// `-a`: the socket file's permissions.
    pub perms: Option<Number>,
    /// The last of `-d -D -a` given (0: none), which an abstract socket,
    /// having no file, refuses (see [`socket::server_path`]).
    pub file_option: u8,
    /// The privilege drop.
    pub ids: IdOptions,
}

impl ServerOptions {
    /// Reads `opt` if it is one of these options (`-U` from `envp`):
    /// whether it was.
    pub fn read(&mut self, opt: &Opt<'static>, envp: CStrArray<'static>) -> bool {
        let number = |value| Some(Number { text: opt.arg, value });
        match opt.letter {
            b'1' => self.ready = true,
            b'd' | b'D' => {
                self.keep_existing = opt.letter == b'D';
                self.file_option = opt.letter;
            }
            b'c' => self.maxconn = number(opt.number(1, children::MAX as u32)),
            b'C' => self.localmax = number(opt.number(1, children::MAX as u32)),
            b'b' => self.backlog = number(opt.number(0, i32::MAX as u32)),
            b'a' => {
                self.perms = number(opt.value(socket::parse_permissions, socket::PERMISSIONS_EXPECTED));
                self.file_option = b'a';
            }
            _ => return self.connection.read(opt) || self.ids.read(opt, envp),
        }
        true
    }

    /// How to bind and listen (blocking: each accept waits).
    pub fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            remove_existing: !self.keep_existing,
            backlog: self.backlog.map_or(i32::MAX, |b| b.value as i32),
            perms: self.perms.map_or(0o777, |p| p.value),
            nonblocking: false,
        }
    }
}
