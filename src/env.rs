//! The environment handed to the next program, built without allocation
//! on a [`StrVec`]: inherited `envp` strings and `NAME=VALUE` strings that
//! outlive the environment (`'a`) are borrowed as they are, new ones are
//! copied, and [`Env::finish`] lays out the pointer array that `execve`
//! wants. A later assignment replaces an earlier one.
//!
//! It does not touch the process's own environment (there is no global
//! `environ` here); reading a variable is [`get`] on an envp.

use crate::runtime::CStrArray;
use crate::strvec::{self, StrVec};
use core::ffi::CStr;
use rustix::io::Errno;

/// Most variables an environment may hold.
pub const VARS_MAX: usize = strvec::ITEMS_MAX;
/// Most bytes of new `NAME=VALUE\0` strings per program.
pub const STRINGS_MAX: usize = strvec::BYTES_MAX;

/// An environment under construction, borrowing strings for `'a`.
pub struct Env<'a>(StrVec<'a>);

/// The program's environment; see [`Env::take`].
static PROGRAM_ENV: crate::runtime::Table<Env<'static>> = crate::runtime::Table::new(Env::new());

pub use strvec::Mark;

/// Reads variable `name` from an envp.
pub fn get<'a>(envp: CStrArray<'a>, name: &[u8]) -> Option<&'a [u8]> {
    envp.iter().find_map(|s| value_of(s.to_bytes(), name))
}

fn value_of<'a>(entry: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    if entry.len() > name.len() && entry[name.len()] == b'=' && entry.starts_with(name) {
        Some(&entry[name.len() + 1..])
    } else {
        None
    }
}

fn name_of(entry: &[u8]) -> &[u8] {
    match memchr::memchr(b'=', entry) {
        Some(i) => &entry[..i],
        None => entry,
    }
}

impl<'a> Env<'a> {
    /// An empty environment.
    pub const fn new() -> Env<'a> {
        Env(StrVec::new())
    }

    /// The program's one environment under construction, in `.bss`: on the
    /// stack its fixed capacity would be faulted in page by page (stack
    /// probes) at every start, which costs more than the program's work.
    /// A second call is an internal error (exit 111).
    pub fn take() -> &'static mut Env<'static> {
        PROGRAM_ENV
            .take()
            .unwrap_or_else(|| crate::log::die(crate::log::EXIT_TEMP, &[b"internal error: environment taken twice"]))
    }

    /// Starts from an inherited envp.
    pub fn inherit(&mut self, envp: CStrArray<'a>) -> Result<(), Errno> {
        self.0.push_all(envp)
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        (0..self.0.len()).rev().find_map(|i| value_of(self.0.get(i), name))
    }

    /// Removes every variable for which `keep(name)` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let mut i = 0;
        while i < self.0.len() {
            if keep(name_of(self.0.get(i))) {
                i += 1;
            } else {
                self.0.remove(i);
            }
        }
    }

    /// Removes `name`.
    pub fn unset(&mut self, name: &[u8]) {
        self.retain(|n| n != name);
    }

    /// Appends `NAME=VALUE` without looking for an earlier `NAME`: for
    /// callers that know it is absent (after [`Env::unset`]).
    pub fn push(&mut self, name: &[u8], value: &[u8]) -> Result<(), Errno> {
        self.0.push_concat(&[name, b"=", value])
    }

    /// Sets `NAME=VALUE`, replacing any earlier value.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), Errno> {
        self.unset(name);
        self.push(name, value)
    }

    /// Sets `entry`, a `NAME=VALUE` string that outlives the environment,
    /// replacing any earlier value of NAME; it is borrowed, not copied (so
    /// values too large for the copy buffer still fit).
    pub fn set_entry(&mut self, entry: &'a CStr) -> Result<(), Errno> {
        self.unset(name_of(entry.to_bytes()));
        self.0.push_borrowed(entry)
    }

    /// Appends `NAME` as a decimal number, like [`Env::push`].
    pub fn push_num(&mut self, name: &[u8], n: u64) -> Result<(), Errno> {
        let mut b = [0; crate::num::U64_DIGITS];
        self.push(name, crate::num::fmt_u64(n, &mut b))
    }

    /// Where the environment is now.
    pub fn mark(&self) -> Mark {
        self.0.mark()
    }

    /// Forgets everything added since `m` (for per-connection reuse of a
    /// prepared base; only valid if nothing before `m` was removed since).
    pub fn truncate(&mut self, m: Mark) {
        self.0.truncate(m)
    }

    /// The null-terminated pointer array for `execve`, for as long as the
    /// environment is borrowed.
    pub fn finish(&mut self) -> CStrArray<'_> {
        self.0.finish()
    }
}

impl Default for Env<'_> {
    fn default() -> Self {
        Env::new()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The environment's strings, in order.
    pub(crate) fn list(e: &mut Env) -> Vec<String> {
        e.finish().iter().map(|c| c.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn set_replaces_and_unset_removes() {
        let mut e = Env::new();
        e.set(b"A", b"1").unwrap();
        e.set(b"B", b"2").unwrap();
        e.set(b"A", b"3").unwrap();
        e.push_num(b"N", 25600).unwrap();
        assert_eq!(list(&mut e), vec!["B=2", "A=3", "N=25600"]);
        assert_eq!(e.get(b"A"), Some(&b"3"[..]));
        e.unset(b"B");
        e.retain(|n| !n.starts_with(b"N"));
        assert_eq!(list(&mut e), vec!["A=3"]);
    }

    #[test]
    fn mark_and_truncate() {
        let mut e = Env::new();
        e.set(b"BASE", b"x").unwrap();
        let m = e.mark();
        e.push(b"C", b"1").unwrap();
        e.truncate(m);
        e.push(b"C", b"2").unwrap();
        assert_eq!(list(&mut e), vec!["BASE=x", "C=2"]);
    }

    #[test]
    fn values_may_be_empty_or_contain_equals() {
        let mut e = Env::new();
        e.set(b"E", b"").unwrap();
        e.set(b"F", b"a=b").unwrap();
        assert_eq!(e.get(b"E"), Some(&b""[..]));
        assert_eq!(e.get(b"F"), Some(&b"a=b"[..]));
        assert_eq!(e.get(b"FF"), None);
    }

    #[test]
    fn entries_are_borrowed_and_replace() {
        let big = std::ffi::CString::new(format!("BIG={}", "v".repeat(STRINGS_MAX * 2))).unwrap();
        let mut e = Env::new();
        e.set(b"BIG", b"small").unwrap();
        e.set_entry(&big).unwrap();
        e.set_entry(c"=nameless").unwrap();
        assert_eq!(e.get(b"BIG").map(|v| v.len()), Some(STRINGS_MAX * 2));
        assert_eq!(list(&mut e).len(), 2);
    }

    #[test]
    fn overflow_is_an_error_not_a_crash() {
        let mut e = Env::new();
        let big = vec![b'v'; STRINGS_MAX];
        assert_eq!(e.set(b"X", &big), Err(Errno::TOOBIG));
    }
}
