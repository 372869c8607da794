//! A string vector for `execve`: the argv or envp of the next program,
//! built without allocation. Strings are either borrowed for `'a` (from our
//! own argv/envp, or a buffer that outlives the vector) or copied into a
//! fixed byte buffer; [`StrVec::finish`] lays out the null-terminated
//! pointer array, which borrows the vector.
//!
//! It knows nothing of `NAME=VALUE` (that is [`crate::env`]) or of option
//! syntax; it only holds strings in order.
#![allow(unsafe_code)]

use crate::runtime::CStrArray;
use arrayvec::ArrayVec;
use core::ffi::{c_char, CStr};
use core::marker::PhantomData;
use core::ptr::NonNull;
use rustix::io::Errno;

/// Most strings a vector may hold.
pub const ITEMS_MAX: usize = 2048;
/// Most bytes of copied strings (with their NULs).
pub const BYTES_MAX: usize = 32768;

/// A borrowed C string as one pointer (a `&'a CStr` is two words and
/// costs a `strlen` to make).
#[derive(Clone, Copy)]
struct Thin<'a>(NonNull<c_char>, PhantomData<&'a CStr>);

// SAFETY: a `Thin<'a>` is a `&'a CStr` without its length; `&CStr` is Send
// and Sync.
unsafe impl Send for Thin<'_> {}
// SAFETY: as above.
unsafe impl Sync for Thin<'_> {}

impl<'a> Thin<'a> {
    fn new(s: &'a CStr) -> Thin<'a> {
        // SAFETY: a CStr's pointer is never null.
        Thin(unsafe { NonNull::new_unchecked(s.as_ptr() as *mut c_char) }, PhantomData)
    }

    fn get(self) -> &'a CStr {
        // SAFETY: made from a `&'a CStr` (or a NUL-terminated string of a
        // CStrArray<'a>), so valid for 'a.
        unsafe { CStr::from_ptr(self.0.as_ptr()) }
    }
}

#[derive(Clone, Copy)]
enum Item<'a> {
    /// A string that lives for `'a`.
    Borrowed(Thin<'a>),
    /// A copied string, at this offset of `bytes`.
    Copied(u32),
}

/// The pointer array handed to `execve`, rebuilt by every
/// [`StrVec::finish`].
struct Pointers(ArrayVec<*const c_char, { ITEMS_MAX + 1 }>);

// SAFETY: the pointers are only ever read through the CStrArray that
// `finish` returns, which borrows the StrVec they point into (and the
// strings it borrows are Send and Sync); moving them between threads moves
// no access.
unsafe impl Send for Pointers {}

/// A vector of C strings under construction.
pub struct StrVec<'a> {
    items: ArrayVec<Item<'a>, ITEMS_MAX>,
    bytes: ArrayVec<u8, BYTES_MAX>,
    out: Pointers,
}

/// The program's command line under construction; see [`StrVec::take`].
static PROGRAM_ARGV: crate::runtime::Table<StrVec<'static>> = crate::runtime::Table::new(StrVec::new());

/// A length to come back to with [`StrVec::truncate`].
#[derive(Clone, Copy)]
pub struct Mark(usize, usize);

impl<'a> StrVec<'a> {
    /// An empty vector.
    pub const fn new() -> StrVec<'a> {
        StrVec { items: ArrayVec::new_const(), bytes: ArrayVec::new_const(), out: Pointers(ArrayVec::new_const()) }
    }

    /// The program's one argv under construction, in `.bss` (as
    /// [`crate::env::Env::take`], for the same reason). A second call is an
    /// internal error (exit 111).
    pub fn take() -> &'static mut StrVec<'static> {
        PROGRAM_ARGV
            .take()
            .unwrap_or_else(|| crate::log::die(crate::log::EXIT_TEMP, &[b"internal error: command line taken twice"]))
    }

    /// How many strings there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends a string that lives at least as long as the vector's `'a`.
    pub fn push_borrowed(&mut self, s: &'a CStr) -> Result<(), Errno> {
        self.items.try_push(Item::Borrowed(Thin::new(s))).map_err(|_| Errno::TOOBIG)
    }

    /// Appends every string of `a`.
    pub fn push_all(&mut self, a: CStrArray<'a>) -> Result<(), Errno> {
        for s in a.iter() {
            self.push_borrowed(s)?;
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
        // Checked above, so that nothing is added unless all of it fits.
        for p in parts.iter().copied().chain([&b"\0"[..]]) {
            self.bytes.try_extend_from_slice(p).map_err(|_| Errno::TOOBIG)?;
        }
        self.items.push(Item::Copied(off));
        Ok(())
    }

    /// The string at `i`, without its NUL.
    pub fn get(&self, i: usize) -> &[u8] {
        match self.items[i] {
            Item::Borrowed(s) => s.get().to_bytes(),
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

    /// Where the vector is now, for [`StrVec::truncate`].
    pub fn mark(&self) -> Mark {
        Mark(self.items.len(), self.bytes.len())
    }

    /// Forgets everything appended since `m` (valid only if nothing before
    /// `m` was removed since).
    pub fn truncate(&mut self, m: Mark) {
        self.items.truncate(m.0);
        self.bytes.truncate(m.1);
    }

    /// The null-terminated pointer array, for as long as the vector is
    /// borrowed.
    pub fn finish(&mut self) -> CStrArray<'_> {
        self.out.0.clear();
        let base = self.bytes.as_ptr() as *const c_char;
        for &it in &self.items {
            self.out.0.push(match it {
                Item::Borrowed(s) => s.0.as_ptr(),
                // SAFETY: offsets are within `bytes`.
                Item::Copied(off) => unsafe { base.add(off as usize) },
            });
        }
        self.out.0.push(core::ptr::null());
        // SAFETY: every pointer is to a NUL-terminated string that lives as
        // long as `self` is borrowed (copied ones are in `self.bytes`,
        // borrowed ones live for 'a, which outlives `self`); the array ends
        // with null and is in `self.out`, which the borrow keeps unchanged.
        unsafe { CStrArray::from_ptr(NonNull::new_unchecked(self.out.0.as_mut_ptr())) }
    }
}

impl Default for StrVec<'_> {
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
        v.push_borrowed(c"prog").unwrap();
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
    fn borrows_strings_that_outlive_it() {
        let owned = std::ffi::CString::new("borrowed").unwrap();
        let mut v = StrVec::new();
        v.push_borrowed(&owned).unwrap();
        assert_eq!(v.finish().first(), Some(owned.as_c_str()));
    }

    #[test]
    fn overflow_is_an_error() {
        let mut v = StrVec::new();
        assert_eq!(v.push_concat(&[&vec![b'a'; BYTES_MAX]]), Err(Errno::TOOBIG));
    }
}
