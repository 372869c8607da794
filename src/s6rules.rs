//! s6's access rules for connections, as `s6-ipcserver-access` reads them:
//! a rules directory (its `-i rulesdir`), read afresh at each lookup, and
//! the cdb that `s6-accessrules-cdb-from-fs` compiles from one (its `-x
//! rulesfile`).
//!
//! A client with effective ids U and G is looked up under the keys
//! `uid/self` (if U is our own effective uid), `uid/U`, `gid/self` (if G is
//! our own effective gid), `gid/G`, then `uid/default`; keys that need an id
//! the client does not have are skipped. Looked up with its supplementary
//! groups (`-S`, ours), `gid/Gn` for each of them, in order, comes after
//! `gid/G`; without them the keys are s6's, one for one. The first key that holds a rule
//! decides, and no rule means deny.
//!
//! In a directory, the rule for a key is the subdirectory of that name
//! holding a file `allow` or `deny` (allow wins; with neither there is no
//! rule). An allow may come with `env/`, applied as `s6-envdir` without
//! options would (one variable per file; the first line of at most 4095
//! bytes, trailing blanks removed, NULs made newlines; an empty file
//! unsets; names starting with `.` or holding `=` are ignored), and with
//! `exec`, an execline script of at most 4096 bytes to run instead of the
//! program. In the cdb, the value under a key is `D` (deny), or `A`, a
//! 16-bit big-endian length, the environment changes (`NAME=VALUE\0` sets,
//! `NAME\0` unsets), another 16-bit big-endian length and the script.
//!
//! Everything a rule brings is read into the caller's buffer and the
//! environment borrows it from there: nothing is allocated, and a rule
//! bigger than the buffer, or than the environment holds, is an error.
//! Files are opened without blocking, so a FIFO cannot hang a connection.
//!
//! This module does not run the script, log, or decide what a missing
//! rules file means, and it knows none of s6's other keys (`ip4`, `ip6`,
//! `reversedns`: TCP's).
// An error carries the name of the file it is about (up to 255 bytes)
// back to the one place that reports it, just before exit; there is no
// allocator to box it.
#![allow(clippy::result_large_err)]

use crate::bounded;
use crate::cdb::{CdbError, Reader};
use crate::client::{Client, Verdict};
use crate::env::Env;
use crate::num;
use crate::uidgid::Gids;
use arrayvec::ArrayVec;
use core::ffi::CStr;
use core::mem::MaybeUninit;
use core::ops::Range;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use rustix::io::Errno;

/// Longest variable value taken from an env file: what s6-envdir reads.
pub const ENV_VALUE_MAX: usize = 4095;
/// Longest exec script.
pub const EXEC_MAX: usize = 4096;
/// Longest key of s6's rules (`uid/4294967295`); ucspi-ipc's rules have
/// longer ones (`rules::RULES_KEY_MAX`).
pub const S6_KEY_MAX: usize = 16;
/// A buffer that holds any record of an s6 rules cdb (its 8-byte header,
/// a key, the largest value the format can say, and the NUL put after
/// it); a rules directory's rule takes what its variables take.
pub const S6_RECORD_MAX: usize = 8 + S6_KEY_MAX + 5 + 2 * 0xffff + 1;
/// Longest path, under the rules directory, of the file an [`Error`]
/// names: `/uid/4294967295/env/` and a file name.
const RULE_PATH_MAX: usize = 32 + 256;
/// The longest name of a file in a directory (Linux's NAME_MAX): the
/// longest variable of an `env/`.
const FILE_NAME_MAX: usize = 255;
// The longest key, a variable's file under it, and the longest `KEY/FILE`
// of a rule (`FILE` one of ours, `allow` the longest) with its NUL: what
// the paths built below can be, so that they always fit.
const _: () = assert!(S6_KEY_MAX >= "uid/".len() + num::U32_DIGITS && "default".len() <= num::U32_DIGITS);
const _: () = assert!(RULE_PATH_MAX >= "/".len() + S6_KEY_MAX + "/env/".len() + FILE_NAME_MAX);
const _: () = assert!(KEY_FILE_MAX >= S6_KEY_MAX + "/allow\0".len());

/// A lookup key, such as `uid/1000`.
pub type Key = ArrayVec<u8, S6_KEY_MAX>;

/// The keys to look a client up under, in s6's order, with its
/// supplementary groups (`-S`) after `gid/G`.
pub struct S6Keys<'g> {
    client: Client<'g>,
    own: (u32, u32),
    step: u8,
    /// The supplementary groups still to try.
    groups: Gids<'g>,
}

/// The keys for `client`, for a process whose effective uid and gid are
/// `own`.
pub fn keys(client: Client<'_>, own: (u32, u32)) -> S6Keys<'_> {
    S6Keys { client, own, step: 0, groups: client.groups.gids() }
}

enum Name {
    Own,
    Id(u32),
    Default,
}

impl Iterator for S6Keys<'_> {
    type Item = Key;

    fn next(&mut self) -> Option<Key> {
        let Client { euid, egid, .. } = self.client;
        loop {
            let step = self.step;
            // Step 4 (`gid/Gn`) takes one group at a time, and stays until
            // there is none left.
            let group = if step == 4 { self.groups.next() } else { None };
            if group.is_none() {
                self.step = self.step.saturating_add(1);
            }
            let (class, name): (&[u8], Name) = match (step, euid, egid, group) {
                (0, Some(u), _, _) if u == self.own.0 => (b"uid/", Name::Own),
                (1, Some(u), _, _) => (b"uid/", Name::Id(u)),
                (2, _, Some(g), _) if g == self.own.1 => (b"gid/", Name::Own),
                (3, _, Some(g), _) => (b"gid/", Name::Id(g)),
                (4, _, _, Some(g)) => (b"gid/", Name::Id(g)),
                (5, ..) => (b"uid/", Name::Default),
                (0..=4, ..) => continue,
                _ => return None,
            };
            let mut digits = [0; num::U64_DIGITS];
            let name: &[u8] = match name {
                Name::Own => b"self",
                Name::Id(id) => num::fmt_u64(id.into(), &mut digits),
                Name::Default => b"default",
            };
            // Fits: "uid/" and ten digits at most (asserted with S6_KEY_MAX).
            return Some(bounded::join([class, name]));
        }
    }
}

/// Why a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A system call on the rules directory, or on one of its files.
    Sys(Errno),
    /// Reading the cdb.
    Cdb(CdbError),
    /// A cdb value that s6-accessrules-cdb-from-fs does not write.
    Malformed,
    /// An exec file longer than [`EXEC_MAX`].
    ExecTooLong,
    /// The environment (or the buffer) has no room for the variable.
    Env(Errno),
}

/// A failed lookup: why, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The file, under the rules directory (`/uid/1000/env/NAME`); empty
    /// for the directory or cdb itself. For [`Reason::Env`], the variable.
    pub path: ArrayVec<u8, RULE_PATH_MAX>,
    /// Why.
    pub reason: Reason,
}

impl Error {
    /// The error at `path`, in pieces: a key and file names of ours, or a
    /// variable's file name, which RULE_PATH_MAX holds (asserted above);
    /// or a variable's name from a cdb, which may be longer (up to 64 KiB)
    /// and is shown cut to RULE_PATH_MAX bytes, as a log line is cut.
    fn new(path: &[&[u8]], reason: Reason) -> Error {
        let mut p = ArrayVec::new();
        for piece in path {
            bounded::append(&mut p, piece);
        }
        Error { path: p, reason }
    }

    /// Whether the rules directory or cdb does not exist.
    pub fn is_missing(&self) -> bool {
        self.path.is_empty()
            && matches!(self.reason, Reason::Sys(Errno::NOENT) | Reason::Cdb(CdbError::Open(Errno::NOENT)))
    }

    /// What to say after `unable to `, for rules at `rules`: `read
    /// RULES/uid/1000/env/NAME: REASON`, or `set environment variable
    /// NAME: REASON`.
    pub fn message<'a>(&'a self, rules: &'a [u8]) -> [&'a [u8]; 5] {
        let reason = match self.reason {
            Reason::Sys(e) | Reason::Env(e) => crate::log::errno_text(e),
            Reason::Cdb(e) => e.reason(),
            Reason::Malformed => crate::rules::MALFORMED,
            Reason::ExecTooLong => b"longer than 4096 bytes",
        };
        match self.reason {
            Reason::Env(_) => [b"set environment variable ", &self.path, b": ", reason, b""],
            _ => [b"read ", rules, &self.path, b": ", reason],
        }
    }
}

/// A set of s6 rules, open.
// One per process, made once: the cdb's 2 KiB header is no waste.
#[allow(clippy::large_enum_variant)]
pub enum Rules {
    /// A rules directory.
    Dir(OwnedFd),
    /// A cdb from s6-accessrules-cdb-from-fs.
    Cdb(Reader),
}

impl Rules {
    /// Opens a rules directory.
    pub fn open_dir(path: &CStr) -> Result<Rules, Error> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty()) {
            Ok(fd) => Ok(Rules::Dir(fd)),
            Err(e) => Err(Error::new(&[], Reason::Sys(e))),
        }
    }

    /// Opens a rules cdb.
    pub fn open_cdb(path: &CStr) -> Result<Rules, Error> {
        Reader::open(path).map(Rules::Cdb).map_err(|e| Error::new(&[], Reason::Cdb(e)))
    }

    /// Decides for `client` (we being `own`, our effective uid and gid)
    /// and applies an allow's environment changes to `env`, which borrows
    /// them from `buf`. [`S6_RECORD_MAX`] bytes hold any cdb rule.
    pub fn check<'b>(
        &self,
        client: Client<'_>,
        own: (u32, u32),
        buf: &'b mut [u8],
        env: &mut Env<'b>,
    ) -> Result<Verdict<'b>, Error> {
        match self {
            Rules::Dir(dir) => check_dir(dir.as_fd(), keys(client, own), buf, env),
            Rules::Cdb(cdb) => check_cdb(cdb, keys(client, own), buf, env),
        }
    }
}

/// Room for `KEY/FILE` and its NUL, `FILE` one of a rule's own (asserted
/// above).
const KEY_FILE_MAX: usize = 32;

/// `KEY/FILE` as a C string, relative to the rules directory.
fn rule_path(key: &[u8], file: &[u8]) -> ArrayVec<u8, KEY_FILE_MAX> {
    bounded::join([key, b"/", file, b"\0"])
}

/// The C string at the start of `s`, up to its first NUL (None without
/// one). Lighter than `CStr::from_bytes_until_nul`, which would be one
/// more function in every program.
fn until_nul(s: &[u8]) -> Option<&CStr> {
    let end = memchr::memchr(0, s)?;
    crate::runtime::cstr_with_nul(&s[..end + 1])
}

fn c_str(p: &[u8]) -> &CStr {
    // Built by `rule_path`: one NUL, at the end. An empty string otherwise,
    // which no open accepts.
    crate::runtime::cstr_with_nul(p).unwrap_or(c"")
}

/// Whether `KEY/FILE` exists (following symbolic links, as s6 does). Only
/// "no such file" means no: any other failure is an error, where s6 would
/// take an unreadable `deny` for no rule at all.
fn exists(dir: BorrowedFd<'_>, key: &[u8], file: &[u8]) -> Result<bool, Error> {
    match rustix::fs::statat(dir, c_str(&rule_path(key, file)), AtFlags::empty()) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(Error::new(&[b"/", key, b"/", file], Reason::Sys(e))),
    }
}

/// Opens `name` under `dir` for reading, without waiting (a FIFO) and
/// without taking a terminal, and reads it into `buf` until end of file or
/// a full buffer: how much it read.
fn read_file(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let mut got = 0;
    while got < buf.len() {
        match crate::io::read(fd.as_fd(), &mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn check_dir<'b>(
    dir: BorrowedFd<'_>,
    keys: S6Keys<'_>,
    buf: &'b mut [u8],
    env: &mut Env<'b>,
) -> Result<Verdict<'b>, Error> {
    for key in keys {
        if exists(dir, &key, b"allow")? {
            let rest = apply_env_dir(dir, &key, buf, env)?;
            return Ok(Verdict::Allow(read_exec(dir, &key, rest)?));
        }
        if exists(dir, &key, b"deny")? {
            return Ok(Verdict::Deny);
        }
    }
    Ok(Verdict::Deny)
}

/// What s6-envdir makes of the start of a file: its first line, without
/// trailing spaces, tabs and carriage returns, NULs turned into newlines.
/// Returns the value's length (the value being the start of `v`).
pub fn envdir_value(v: &mut [u8]) -> usize {
    let mut len = memchr::memchr(b'\n', v).unwrap_or(v.len());
    while len > 0 && matches!(v[len - 1], b' ' | b'\t' | b'\r') {
        len -= 1;
    }
    for b in &mut v[..len] {
        if *b == 0 {
            *b = b'\n';
        }
    }
    len
}

/// Applies `KEY/env/` to `env`, each `NAME=VALUE` laid out in `buf` and
/// borrowed from it; returns what is left of `buf`.
fn apply_env_dir<'b>(
    dir: BorrowedFd<'_>,
    key: &[u8],
    mut buf: &'b mut [u8],
    env: &mut Env<'b>,
) -> Result<&'b mut [u8], Error> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let envdir = match rustix::fs::openat(dir, c_str(&rule_path(key, b"env")), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(buf),
        Err(e) => return Err(Error::new(&[b"/", key, b"/env"], Reason::Sys(e))),
    };
    // Room for a few entries of the longest name; more is read as needed.
    let mut dents = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(envdir.as_fd(), &mut dents);
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(|e| Error::new(&[b"/", key, b"/env"], Reason::Sys(e)))?;
        let file = entry.file_name();
        let name = file.to_bytes();
        if name.first() == Some(&b'.') || memchr::memchr(b'=', name).is_some() {
            continue;
        }
        let at = |reason| Error::new(&[b"/", key, b"/env/", name], reason);
        let space = core::mem::take(&mut buf);
        let start = name.len() + 1;
        if space.len() < start + ENV_VALUE_MAX + 1 {
            return Err(Error::new(&[name], Reason::Env(Errno::TOOBIG)));
        }
        let got = read_file(envdir.as_fd(), file, &mut space[start..start + ENV_VALUE_MAX])
            .map_err(|e| at(Reason::Sys(e)))?;
        if got == 0 {
            env.unset(name);
            buf = space;
            continue;
        }
        let end = start + envdir_value(&mut space[start..start + got]);
        space[..name.len()].copy_from_slice(name);
        space[name.len()] = b'=';
        space[end] = 0;
        let (assignment, rest) = space.split_at_mut(end + 1);
        buf = rest;
        let assignment: &'b [u8] = assignment;
        // Cannot fail: the name comes from a C string and the value's
        // NULs were made newlines.
        let assignment = crate::runtime::cstr_with_nul(assignment).ok_or_else(|| at(Reason::Malformed))?;
        env.set_entry(assignment).map_err(|e| Error::new(&[name], Reason::Env(e)))?;
    }
    Ok(buf)
}

/// Reads `KEY/exec` into `buf`: the script up to its first NUL, or None
/// if the file is missing or empty (as s6 has it).
fn read_exec<'b>(dir: BorrowedFd<'_>, key: &[u8], buf: &'b mut [u8]) -> Result<Option<&'b CStr>, Error> {
    let at = |reason| Error::new(&[b"/", key, b"/exec"], reason);
    if buf.len() < EXEC_MAX + 2 {
        return Err(at(Reason::Sys(Errno::TOOBIG)));
    }
    let n = match read_file(dir, c_str(&rule_path(key, b"exec")), &mut buf[..EXEC_MAX + 1]) {
        Ok(0) | Err(Errno::NOENT) => return Ok(None),
        Ok(n) if n > EXEC_MAX => return Err(at(Reason::ExecTooLong)),
        Ok(n) => n,
        Err(e) => return Err(at(Reason::Sys(e))),
    };
    buf[n] = 0;
    let buf: &'b [u8] = buf;
    Ok(until_nul(buf))
}

/// A cdb value, decoded: where its parts are in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `D`.
    Deny,
    /// `A`: the environment changes and the script.
    Allow {
        /// `NAME=VALUE\0` and `NAME\0` entries.
        env: Range<usize>,
        /// The script (no NUL), empty for none.
        exec: Range<usize>,
    },
}

fn u16_at(v: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_be_bytes([*v.get(at)?, *v.get(at + 1)?]).into())
}

/// Decodes a value as s6-accessrules-cdb-from-fs writes it; None for
/// anything else (a missing or extra byte, an environment entry that is
/// not NUL-terminated or has no name). s6 reads a value starting with
/// neither `A` nor `D` as no rule; it is refused here, since passing over
/// it could let a later, wider rule allow.
pub fn decode(v: &[u8]) -> Option<Value> {
    match v.first()? {
        b'D' => return Some(Value::Deny),
        b'A' => {}
        _ => return None,
    }
    let env_len = u16_at(v, 1)?;
    let env = 3..3 + env_len;
    let exec_len = u16_at(v, env.end)?;
    let exec = env.end + 2..env.end + 2 + exec_len;
    if exec.end != v.len() {
        return None;
    }
    // Entries end with a NUL, and each has a name.
    match v[env.clone()].split_last() {
        None => {}
        Some((0, entries)) if !entries.split(|&b| b == 0).any(|e| e.first().is_none_or(|&c| c == b'=')) => {}
        Some(_) => return None,
    }
    Some(Value::Allow { env, exec })
}

fn check_cdb<'b>(rules: &Reader, keys: S6Keys<'_>, buf: &'b mut [u8], env: &mut Env<'b>) -> Result<Verdict<'b>, Error> {
    for key in keys {
        let found = rules.find(&key, buf).map_err(|e| Error::new(&[], Reason::Cdb(e)))?;
        if let Some(value) = found {
            return apply_cdb(value, buf, env);
        }
    }
    Ok(Verdict::Deny)
}

/// Applies the value at `value` in `buf`.
fn apply_cdb<'b>(value: Range<usize>, buf: &'b mut [u8], env: &mut Env<'b>) -> Result<Verdict<'b>, Error> {
    let malformed = || Error::new(&[], Reason::Malformed);
    let (changes, exec) = match decode(&buf[value.clone()]).ok_or_else(malformed)? {
        Value::Deny => return Ok(Verdict::Deny),
        Value::Allow { env, exec } => (env, exec),
    };
    // The script is not NUL-terminated in the file: end it in the buffer.
    if value.end >= buf.len() {
        return Err(Error::new(&[], Reason::Cdb(CdbError::TooBig)));
    }
    buf[value.end] = 0;
    let buf: &'b [u8] = buf;
    let changes = &buf[value.start + changes.start..value.start + changes.end];
    let mut rest = changes;
    while let Some(end) = memchr::memchr(0, rest) {
        let (entry, after) = rest.split_at(end + 1);
        rest = after;
        let name = &entry[..end];
        match memchr::memchr(b'=', name) {
            Some(eq) => {
                // Cannot fail: one NUL, at the end.
                let assignment = crate::runtime::cstr_with_nul(entry).ok_or_else(malformed)?;
                env.set_entry(assignment).map_err(|e| Error::new(&[&name[..eq]], Reason::Env(e)))?;
            }
            None => env.unset(name),
        }
    }
    if exec.is_empty() {
        return Ok(Verdict::Allow(None));
    }
    Ok(Verdict::Allow(until_nul(&buf[value.start + exec.start..])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs;
    use std::path::PathBuf;

    const OWN: (u32, u32) = (500, 600);

    fn keys_of(euid: Option<u32>, egid: Option<u32>) -> Vec<String> {
        keys(Client { euid, egid, ..Client::default() }, OWN).map(|k| String::from_utf8(k.to_vec()).unwrap()).collect()
    }

    #[test]
    fn keys_in_s6_order() {
        assert_eq!(keys_of(Some(500), Some(600)), ["uid/self", "uid/500", "gid/self", "gid/600", "uid/default"]);
        assert_eq!(keys_of(Some(500), Some(7)), ["uid/self", "uid/500", "gid/7", "uid/default"]);
        assert_eq!(keys_of(Some(4294967295), Some(600)), ["uid/4294967295", "gid/self", "gid/600", "uid/default"]);
        assert_eq!(keys_of(Some(0), Some(0)), ["uid/0", "gid/0", "uid/default"]);
        // Unknown ids: their keys are skipped, `self` above all.
        assert_eq!(keys_of(None, Some(600)), ["gid/self", "gid/600", "uid/default"]);
        assert_eq!(keys_of(Some(1), None), ["uid/1", "uid/default"]);
        assert_eq!(keys_of(None, None), ["uid/default"]);
    }

    #[test]
    fn supplementary_groups_come_after_the_primary_gid() {
        let groups = crate::uidgid::parse_gidlist(b"27,600,1000").unwrap();
        let keys_with = |euid, egid| -> Vec<String> {
            keys(Client { euid, egid, groups }, OWN).map(|k| String::from_utf8(k.to_vec()).unwrap()).collect()
        };
        // Numbers only: `gid/self` is for the primary gid, as s6 has it.
        assert_eq!(keys_with(Some(1), Some(7)), ["uid/1", "gid/7", "gid/27", "gid/600", "gid/1000", "uid/default"]);
        assert_eq!(
            keys_with(Some(500), Some(600)),
            ["uid/self", "uid/500", "gid/self", "gid/600", "gid/27", "gid/600", "gid/1000", "uid/default"]
        );
        assert_eq!(keys_with(None, None), ["gid/27", "gid/600", "gid/1000", "uid/default"]);
    }

    fn value(file: &[u8]) -> Vec<u8> {
        let mut v = file[..file.len().min(ENV_VALUE_MAX)].to_vec();
        let n = envdir_value(&mut v);
        v.truncate(n);
        v
    }

    #[test]
    fn envdir_values_as_s6_envdir() {
        // Each case was checked against Debian's s6-envdir (2.11).
        assert_eq!(value(b"hello\n"), b"hello");
        assert_eq!(value(b"a b  \t\nsecond\n"), b"a b");
        assert_eq!(value(b"a\r"), b"a");
        assert_eq!(value(b"a\x0b\x0c"), b"a\x0b\x0c");
        assert_eq!(value(b"a\0b\n"), b"a\nb");
        assert_eq!(value(b"a\0"), b"a\n");
        assert_eq!(value(b"a b\0 \n"), b"a b\n");
        assert_eq!(value(b"  lead"), b"  lead");
        assert_eq!(value(b"\n"), b"");
        assert_eq!(value(b" "), b"");
        assert_eq!(value(b"\na"), b"");
        assert_eq!(value(&[b'x'; 5000]), vec![b'x'; 4095]);
    }

    #[test]
    fn decodes_what_the_compiler_writes_and_nothing_else() {
        assert_eq!(decode(b"D"), Some(Value::Deny));
        assert_eq!(decode(b"Dxyz"), Some(Value::Deny));
        assert_eq!(decode(b"A\0\0\0\0"), Some(Value::Allow { env: 3..3, exec: 5..5 }));
        assert_eq!(decode(b"A\0\x09X=1\0Y\0Z=\0\0\x02hi"), Some(Value::Allow { env: 3..12, exec: 14..16 }));
        for bad in [
            &b""[..],
            b"Z",
            b"A",
            b"A\0\0\0",
            b"A\0\0\0\0x",
            b"A\0\x03X=1\0\0",
            b"A\0\x04=ab\0\0\0",
            b"A\0\x01\0\0\0",
            b"A\0\x04X\0\0Y\0\0",
            b"A\xff\xff\0\0",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    /// A rules directory in a temporary place, removed when dropped.
    struct Tree(PathBuf);

    impl Tree {
        fn new(tag: &str) -> Tree {
            let p = std::env::temp_dir().join(format!("s6rules.{}.{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Tree(p)
        }
        fn file(&self, path: &str, content: &[u8]) -> &Tree {
            let p = self.0.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
            self
        }
        fn c(&self, name: &str) -> CString {
            CString::new(self.0.join(name).to_str().unwrap()).unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// What the rules decide for (euid, egid): the decision (the script
    /// for an allow with one) and the environment they make from `A=old`,
    /// `B=old`, sorted.
    type Outcome = Result<(Option<String>, Vec<String>), Reason>;

    fn decide(rules: &Rules, euid: u32, egid: u32) -> Outcome {
        let mut buf = vec![0u8; S6_RECORD_MAX];
        let mut env = Env::new();
        env.set(b"A", b"old").unwrap();
        env.set(b"B", b"old").unwrap();
        let client = Client { euid: Some(euid), egid: Some(egid), ..Client::default() };
        let script = match rules.check(client, OWN, &mut buf, &mut env).map_err(|e| e.reason)? {
            Verdict::Deny => None,
            Verdict::Allow(s) => Some(s.map_or(String::new(), |s| s.to_str().unwrap().to_string())),
        };
        let mut vars: Vec<String> = env.finish().iter().map(|c| c.to_str().unwrap().to_string()).collect();
        vars.sort();
        Ok((script, vars))
    }

    fn allow(script: &str, vars: &[&str]) -> Outcome {
        Ok((Some(script.to_string()), vars.iter().map(|s| s.to_string()).collect()))
    }

    fn deny() -> Outcome {
        Ok((None, vec!["A=old".into(), "B=old".into()]))
    }

    /// A rule set exercising every kind of rule.
    fn sample(tag: &str) -> Tree {
        let t = Tree::new(tag);
        t.file("uid/self/allow", b"")
            .file("uid/self/env/WHO", b"self\n")
            .file("uid/1000/allow", b"")
            .file("uid/1000/env/WHO", b"uid 1000  \nignored\n")
            .file("uid/1000/env/A", b"")
            .file("uid/1000/env/.hidden", b"x")
            .file("uid/1000/env/C=D", b"x")
            .file("uid/1001/deny", b"")
            .file("uid/1002/allow", b"")
            .file("uid/1002/deny", b"")
            .file("uid/1003/allow", b"")
            .file("uid/1003/exec", b"echo hi\n")
            .file("uid/1004/neither", b"")
            .file("gid/self/allow", b"")
            .file("gid/self/env/WHO", b"gself")
            .file("gid/27/deny", b"")
            .file("gid/28/allow", b"")
            .file("gid/28/env/B", b"\n")
            .file("uid/default/allow", b"")
            .file("uid/default/env/WHO", b"default");
        t
    }

    fn check_sample(rules: &Rules) {
        assert_eq!(decide(rules, 500, 1), allow("", &["A=old", "B=old", "WHO=self"]));
        assert_eq!(decide(rules, 1000, 600), allow("", &["B=old", "WHO=uid 1000"]));
        assert_eq!(decide(rules, 1001, 28), deny());
        assert_eq!(decide(rules, 1002, 28), allow("", &["A=old", "B=old"]));
        assert_eq!(decide(rules, 1003, 1), allow("echo hi\n", &["A=old", "B=old"]));
        assert_eq!(decide(rules, 1004, 600), allow("", &["A=old", "B=old", "WHO=gself"]));
        assert_eq!(decide(rules, 1005, 27), deny());
        assert_eq!(decide(rules, 1005, 28), allow("", &["A=old", "B="]));
        assert_eq!(decide(rules, 1005, 29), allow("", &["A=old", "B=old", "WHO=default"]));
    }

    #[test]
    fn a_rules_directory() {
        let t = sample("dir");
        check_sample(&Rules::open_dir(&t.c("")).unwrap());
        // No default: no rule means deny.
        fs::remove_dir_all(t.0.join("uid/default")).unwrap();
        assert_eq!(decide(&Rules::open_dir(&t.c("")).unwrap(), 1005, 29), deny());
    }

    /// Compiles a tree as s6-accessrules-cdb-from-fs would (the encoding
    /// the integration tests check against the real tool).
    fn compile(t: &Tree, target: &CStr) {
        let mut records = Vec::new();
        for class in ["uid", "gid"] {
            let Ok(rules) = fs::read_dir(t.0.join(class)) else { continue };
            for rule in rules.flatten() {
                let p = rule.path();
                let key = format!("{class}/{}", rule.file_name().to_str().unwrap());
                if p.join("allow").exists() {
                    let mut env = Vec::new();
                    if let Ok(files) = fs::read_dir(p.join("env")) {
                        for f in files.flatten() {
                            let name = f.file_name().to_str().unwrap().to_string();
                            if name.starts_with('.') || name.contains('=') {
                                continue;
                            }
                            let v = value(&fs::read(f.path()).unwrap());
                            env.extend_from_slice(name.as_bytes());
                            if !fs::read(f.path()).unwrap().is_empty() {
                                env.push(b'=');
                                env.extend_from_slice(&v);
                            }
                            env.push(0);
                        }
                    }
                    let exec = fs::read(p.join("exec")).unwrap_or_default();
                    let mut v = vec![b'A'];
                    v.extend_from_slice(&(env.len() as u16).to_be_bytes());
                    v.extend_from_slice(&env);
                    v.extend_from_slice(&(exec.len() as u16).to_be_bytes());
                    v.extend_from_slice(&exec);
                    records.push((key, v));
                } else if p.join("deny").exists() {
                    records.push((key, b"D".to_vec()));
                }
            }
        }
        let tmp = CString::new(format!("{}.tmp", target.to_str().unwrap())).unwrap();
        crate::cdb::write_atomic::<()>(target, &tmp, |w| {
            for (k, v) in &records {
                w.add(k.as_bytes(), v).unwrap();
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_rules_cdb() {
        let t = sample("cdb");
        let out = Tree::new("cdb-out");
        compile(&t, &out.c("rules.cdb"));
        check_sample(&Rules::open_cdb(&out.c("rules.cdb")).unwrap());
    }

    fn cdb_with(out: &Tree, value: &[u8]) -> Rules {
        let target = out.c("one.cdb");
        crate::cdb::write_atomic::<()>(&target, &out.c("tmp"), |w| {
            w.add(b"uid/7", value).unwrap();
            w.add(b"uid/default", b"A\0\0\0\0").unwrap();
            Ok(())
        })
        .unwrap();
        Rules::open_cdb(&target).unwrap()
    }

    #[test]
    fn cdb_values_s6_would_refuse_or_misread() {
        let out = Tree::new("cdb-values");
        // Longer than s6's reader takes (4096): what its compiler writes
        // for a big env/ directory, read here as it was meant.
        let big = format!("BIG={}\0", "x".repeat(5000));
        let mut v = vec![b'A'];
        v.extend_from_slice(&(big.len() as u16).to_be_bytes());
        v.extend_from_slice(big.as_bytes());
        v.extend_from_slice(b"\0\x03a\0b");
        let got = decide(&cdb_with(&out, &v), 7, 1).unwrap();
        assert_eq!(got.0.as_deref(), Some("a"), "the script ends at its first NUL");
        assert!(got.1.contains(&format!("BIG={}", "x".repeat(5000))));
        // Unknown kinds and broken values are errors, not "no rule".
        assert_eq!(decide(&cdb_with(&out, b"Z"), 7, 1), Err(Reason::Malformed));
        assert_eq!(decide(&cdb_with(&out, b"A\0\x03X=1\0\0"), 7, 1), Err(Reason::Malformed));
        assert_eq!(decide(&cdb_with(&out, b""), 7, 1), Err(Reason::Malformed));
        // A corrupt file.
        fs::write(out.0.join("one.cdb"), b"short").unwrap();
        assert_eq!(Rules::open_cdb(&out.c("one.cdb")).err().map(|e| e.reason), Some(Reason::Cdb(CdbError::Corrupt)));
    }

    fn dir_error(t: &Tree, euid: u32) -> (String, Reason) {
        let e = match Rules::open_dir(&t.c("")) {
            Err(e) => e,
            Ok(rules) => {
                let mut buf = vec![0u8; S6_RECORD_MAX];
                let mut env = Env::new();
                rules
                    .check(Client { euid: Some(euid), egid: Some(1), ..Client::default() }, OWN, &mut buf, &mut env)
                    .unwrap_err()
            }
        };
        (String::from_utf8(e.path.to_vec()).unwrap(), e.reason)
    }

    #[test]
    fn directory_errors() {
        let t = Tree::new("errors");
        t.file("uid/1/allow", b"")
            .file("uid/1/env/SUB/x", b"")
            .file("uid/2", b"a file, not a rule directory")
            .file("uid/3/allow", b"")
            .file("uid/3/exec", &[b'e'; EXEC_MAX + 1])
            .file("uid/4/allow", b"")
            .file("uid/4/env", b"not a directory")
            .file("uid/5/allow", b"")
            .file("uid/5/exec", &[b'e'; EXEC_MAX]);
        std::os::unix::fs::symlink("/nonexistent", t.0.join("uid/6")).unwrap();
        fs::create_dir_all(t.0.join("uid/7/env")).unwrap();
        fs::write(t.0.join("uid/7/allow"), b"").unwrap();
        std::os::unix::fs::symlink("/nonexistent", t.0.join("uid/7/env/DANGLING")).unwrap();
        assert_eq!(dir_error(&t, 1), ("/uid/1/env/SUB".into(), Reason::Sys(Errno::ISDIR)));
        assert_eq!(dir_error(&t, 2), ("/uid/2/allow".into(), Reason::Sys(Errno::NOTDIR)));
        assert_eq!(dir_error(&t, 3), ("/uid/3/exec".into(), Reason::ExecTooLong));
        assert_eq!(dir_error(&t, 4), ("/uid/4/env".into(), Reason::Sys(Errno::NOTDIR)));
        assert_eq!(dir_error(&t, 7), ("/uid/7/env/DANGLING".into(), Reason::Sys(Errno::NOENT)));
        // The longest script is fine; a dangling rule is no rule.
        let rules = Rules::open_dir(&t.c("")).unwrap();
        assert_eq!(decide(&rules, 5, 1).unwrap().0.map(|s| s.len()), Some(EXEC_MAX));
        assert_eq!(decide(&rules, 6, 1), deny());

        let missing = Rules::open_dir(&t.c("nowhere")).err().unwrap();
        assert!(missing.is_missing());
        assert_eq!(missing.message(b"R"), [&b"read "[..], b"R", b"", b": ", b"no such file or directory"]);
        let not_dir = Rules::open_dir(&t.c("uid/2")).err().unwrap();
        assert!(!not_dir.is_missing());
        assert_eq!(Rules::open_cdb(&t.c("nowhere")).err().map(|e| e.is_missing()), Some(true));
    }

    #[test]
    fn a_fifo_does_not_hang() {
        let t = Tree::new("fifo");
        t.file("uid/1/allow", b"");
        fs::create_dir_all(t.0.join("uid/1/env")).unwrap();
        let fifo = CString::new(t.0.join("uid/1/env/F").to_str().unwrap()).unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, &*fifo, rustix::fs::FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .unwrap();
        // No writer: read as empty, which unsets.
        assert_eq!(decide(&Rules::open_dir(&t.c("")).unwrap(), 1, 1), deny().map(|(_, v)| (Some(String::new()), v)));
    }

    #[test]
    fn bounded_by_the_buffer_and_the_environment() {
        let t = Tree::new("big");
        t.file("uid/1/allow", b"");
        for i in 0..30 {
            t.file(&format!("uid/1/env/V{i}"), &[b'v'; 4000]);
        }
        let rules = Rules::open_dir(&t.c("")).unwrap();
        // 30 values of 4000 bytes fit a buffer of S6_RECORD_MAX...
        assert_eq!(decide(&rules, 1, 1).map(|(_, v)| v.len()), Ok(32));
        // ...but not a smaller one: a clear error.
        let mut buf = vec![0u8; 64 * 1024];
        let mut env = Env::new();
        let e = rules
            .check(Client { euid: Some(1), egid: Some(1), ..Client::default() }, OWN, &mut buf, &mut env)
            .unwrap_err();
        assert_eq!(e.reason, Reason::Env(Errno::TOOBIG));
        assert!(e.message(b"R")[0].starts_with(b"set environment variable"));
        assert!(e.path.starts_with(b"V"), "names the variable");
    }
}
