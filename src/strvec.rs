//! A string vector for `execve`: the argv or envp of the next program,
//! built without allocation. Strings are either borrowed (from our own
//! argv/envp, alive for the whole process) or copied into a fixed byte
//! buffer; [`StrVec::finish`] lays out the null-terminated pointer array.
//!
//! It knows nothing of `NAME=VALUE` (that is [`crate::env`]) or of option
//! syntax; it only holds strings in order.

use crate::runtime::CStrArray;
use arrayvec::ArrayVec;
use core::ffi::{c_char, CStr};
use rustix::io::Errno;

/// Most strings a vector may hold.
pub const ITEMS_MAX: usize = 2048;
/// Most bytes of copied strings (with their NULs).
pub const BYTES_MAX: usize = 32768;

#[derive(Clone, Copy)]
enum Item {
    /// A string alive for the whole process.
    Borrowed(*const c_char),
    /// A copied string, at this offset of `bytes`.
    Copied(u32),
}

/// A vector of C strings under construction.
pub struct StrVec {
    items: ArrayVec<Item, ITEMS_MAX>,
    bytes: ArrayVec<u8, BYTES_MAX>,
    out: ArrayVec<*const c_char, { ITEMS_MAX + 1 }>,
}

/// The program's command line under construction; see [`StrVec::take`].
static PROGRAM_ARGV: crate::runtime::Table<StrVec> = crate::runtime::Table::new(StrVec::new());

/// A length to come back to with [`StrVec::truncate`].
#[derive(Clone, Copy)]
pub struct Mark(usize, usize);

impl StrVec {
    pub const fn new() -> StrVec {
        StrVec { items: ArrayVec::new_const(), bytes: ArrayVec::new_const(), out: ArrayVec::new_const() }
    }

    /// The program's one argv under construction, in `.bss` (as
    /// [`crate::env::Env::take`], for the same reason). A second call is an
    /// internal error (exit 111).
    pub fn take() -> &'static mut StrVec {
        PROGRAM_ARGV
            .take()
            .unwrap_or_else(|| crate::log::fatal(crate::log::EXIT_TEMP, &[b"internal error: command line taken twice"]))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends a string that lives for the whole process.
    pub fn push_static(&mut self, s: &'static CStr) -> Result<(), Errno> {
        self.items.try_push(Item::Borrowed(s.as_ptr())).map_err(|_| Errno::TOOBIG)
    }

    /// Appends every string of `a`.
    pub fn push_all(&mut self, a: CStrArray) -> Result<(), Errno> {
        for &p in a.as_slice() {
            self.items.try_push(Item::Borrowed(p)).map_err(|_| Errno::TOOBIG)?;
        }
        Ok(())
    }

    /// Appends the concatenation of `parts` as one copied string.
    pub fn push_concat(&mut self, parts: &[&[u8]]) -> Result<(), Errno> {
        let need = parts.iter().map(|p| p.len()).sum::<usize>() + 1;
        if self.bytes.remaining_capacity() < need || self.items.is_full() {
            return Err(Errno::TOOBIG);
        }
        let off = self.bytes.len() as u32;
        for p in parts {
            // Cannot fail: capacity checked above.
            let _ = self.bytes.try_extend_from_slice(p);
        }
        let _ = self.bytes.try_push(0);
        self.items.push(Item::Copied(off));
        Ok(())
    }

    /// The string at `i`, without its NUL.
    pub fn get(&self, i: usize) -> &[u8] {
        match self.items[i] {
            // SAFETY: borrowed strings are NUL-terminated for the whole run.
            Item::Borrowed(p) => unsafe { CStr::from_ptr(p) }.to_bytes(),
            Item::Copied(off) => {
                let s = &self.bytes[off as usize..];
                &s[..memchr::memchr(0, s).unwrap_or(s.len())]
            }
        }
    }

    /// Removes the string at `i`, keeping the order of the others.
    pub fn remove(&mut self, i: usize) {
        self.items.remove(i);
    }

    pub fn mark(&self) -> Mark {
        Mark(self.items.len(), self.bytes.len())
    }

    /// Forgets everything appended since `m` (valid only if nothing before
    /// `m` was removed since).
    pub fn truncate(&mut self, m: Mark) {
        self.items.truncate(m.0);
        self.bytes.truncate(m.1);
    }

    /// The null-terminated pointer array. Valid until `self` is changed or
    /// moved.
    pub fn finish(&mut self) -> CStrArray {
        self.out.clear();
        let base = self.bytes.as_ptr() as *const c_char;
        for &it in &self.items {
            self.out.push(match it {
                Item::Borrowed(p) => p,
                // SAFETY: offsets are within `bytes`.
                Item::Copied(off) => unsafe { base.add(off as usize) },
            });
        }
        self.out.push(core::ptr::null());
        // SAFETY: every pointer is to a NUL-terminated string that lives as
        // long as `self` is unchanged; the array ends with null.
        unsafe { CStrArray::from_ptr(self.out.as_ptr()) }
    }
}

impl Default for StrVec {
    fn default() -> Self {
        StrVec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_borrowed_and_copied_strings() {
        let mut v = StrVec::new();
        v.push_static(c"prog").unwrap();
        v.push_concat(&[b"-c", b"40"]).unwrap();
        let m = v.mark();
        v.push_concat(&[b"x"]).unwrap();
        v.truncate(m);
        v.push_concat(&[b"/dir", b"/", b"name"]).unwrap();
        let got: Vec<String> = v.finish().iter().map(|c| c.to_str().unwrap().into()).collect();
        assert_eq!(got, ["prog", "-c40", "/dir/name"]);
        assert_eq!(v.get(1), b"-c40");
        v.remove(0);
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn overflow_is_an_error() {
        let mut v = StrVec::new();
        assert_eq!(v.push_concat(&[&vec![b'a'; BYTES_MAX]]), Err(Errno::TOOBIG));
    }
}
