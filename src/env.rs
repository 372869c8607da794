//! The environment handed to the next program, built without allocation:
//! the inherited `envp` pointers are kept as they are, new `NAME=VALUE`
//! strings go into a fixed byte buffer, and [`Env::finish`] lays out the
//! null-terminated pointer array that `execve` wants. A later assignment
//! replaces an earlier one.
//!
//! It does not touch the process's own environment (there is no global
//! `environ` here); reading a variable is [`get`] on an envp.

use crate::runtime::CStrArray;
use arrayvec::ArrayVec;
use core::ffi::{c_char, CStr};
use rustix::io::Errno;

/// Most variables an environment may hold.
pub const VARS_MAX: usize = 2048;
/// Most bytes of new `NAME=VALUE\0` strings per program.
pub const STRINGS_MAX: usize = 32768;

#[derive(Clone, Copy)]
enum Var {
    /// An inherited string, alive for the whole process.
    Inherited(*const c_char),
    /// A string of ours, at this offset of `strings`.
    Own(u32),
}

/// An environment under construction.
pub struct Env {
    vars: ArrayVec<Var, VARS_MAX>,
    strings: ArrayVec<u8, STRINGS_MAX>,
    out: ArrayVec<*const c_char, { VARS_MAX + 1 }>,
}

/// A point to come back to with [`Env::truncate`].
#[derive(Clone, Copy)]
pub struct Mark(usize, usize);

/// Reads variable `name` from an envp.
pub fn get(envp: CStrArray, name: &[u8]) -> Option<&'static [u8]> {
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

impl Env {
    /// An empty environment.
    pub fn new() -> Env {
        Env { vars: ArrayVec::new(), strings: ArrayVec::new(), out: ArrayVec::new() }
    }

    /// Starts from an inherited envp.
    pub fn inherit(&mut self, envp: CStrArray) -> Result<(), Errno> {
        for &p in envp.as_slice() {
            self.vars.try_push(Var::Inherited(p)).map_err(|_| Errno::TOOBIG)?;
        }
        Ok(())
    }

    fn entry(&self, v: Var) -> &[u8] {
        match v {
            // SAFETY: inherited pointers are NUL-terminated for the whole run.
            Var::Inherited(p) => unsafe { CStr::from_ptr(p) }.to_bytes(),
            Var::Own(off) => {
                let s = &self.strings[off as usize..];
                &s[..memchr::memchr(0, s).unwrap_or(s.len())]
            }
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.vars.iter().rev().find_map(|&v| value_of(self.entry(v), name))
    }

    /// Removes every variable for which `keep(name)` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let mut i = 0;
        while i < self.vars.len() {
            if keep(name_of(self.entry(self.vars[i]))) {
                i += 1;
            } else {
                self.vars.remove(i);
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
        let off = self.strings.len();
        let need = name.len() + 1 + value.len() + 1;
        if self.strings.remaining_capacity() < need || self.vars.is_full() {
            return Err(Errno::TOOBIG);
        }
        // Cannot fail: capacity checked above.
        let _ = self.strings.try_extend_from_slice(name);
        let _ = self.strings.try_push(b'=');
        let _ = self.strings.try_extend_from_slice(value);
        let _ = self.strings.try_push(0);
        self.vars.push(Var::Own(off as u32));
        Ok(())
    }

    /// Sets `NAME=VALUE`, replacing any earlier value.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), Errno> {
        self.unset(name);
        self.push(name, value)
    }

    /// Sets `NAME` to a decimal number.
    pub fn set_num(&mut self, name: &[u8], n: u64) -> Result<(), Errno> {
        let mut b = [0; crate::num::U64_DIGITS];
        self.set(name, crate::num::fmt_u64(n, &mut b))
    }

    /// Where the environment is now.
    pub fn mark(&self) -> Mark {
        Mark(self.vars.len(), self.strings.len())
    }

    /// Forgets everything added since `m` (for per-connection reuse of a
    /// prepared base; only valid if nothing before `m` was removed since).
    pub fn truncate(&mut self, m: Mark) {
        self.vars.truncate(m.0);
        self.strings.truncate(m.1);
    }

    /// The null-terminated pointer array for `execve`. Valid until `self`
    /// is changed or moved.
    pub fn finish(&mut self) -> CStrArray {
        self.out.clear();
        let base = self.strings.as_ptr() as *const c_char;
        for &v in &self.vars {
            let p = match v {
                Var::Inherited(p) => p,
                // SAFETY: offsets are within `strings`.
                Var::Own(off) => unsafe { base.add(off as usize) },
            };
            self.out.push(p);
        }
        self.out.push(core::ptr::null());
        // SAFETY: every pointer is to a NUL-terminated string that lives as
        // long as `self` is unchanged; the array ends with null.
        unsafe { CStrArray::from_ptr(self.out.as_ptr()) }
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(e: &mut Env) -> Vec<String> {
        e.finish().iter().map(|c| c.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn set_replaces_and_unset_removes() {
        let mut e = Env::new();
        e.set(b"A", b"1").unwrap();
        e.set(b"B", b"2").unwrap();
        e.set(b"A", b"3").unwrap();
        e.set_num(b"N", 25600).unwrap();
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
    fn overflow_is_an_error_not_a_crash() {
        let mut e = Env::new();
        let big = vec![b'v'; STRINGS_MAX];
        assert_eq!(e.set(b"X", &big), Err(Errno::TOOBIG));
    }
}
