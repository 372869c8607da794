//! C strings and the arrays of them that the kernel and `execve` use: a
//! byte slice checked as one C string ([`cstr_with_nul`]), and
//! [`CStrArray`], a borrowed null-terminated array of string pointers
//! (argv, envp), with its iterator.
//!
//! It does not own or build strings: an array is borrowed from whatever
//! holds them (the initial stack, a [`crate::strvec::StrVec`]).

use core::ffi::{c_char, CStr};
use core::marker::PhantomData;
use core::ptr::NonNull;

/// `bytes` as a C string, if its only NUL is its last byte: what
/// `CStr::from_bytes_with_nul` does, with the `memchr` every program has
/// (core's own search adds 300 bytes to a 32-bit ARM program).
pub fn cstr_with_nul(bytes: &[u8]) -> Option<&CStr> {
    let nul = memchr::memchr(0, bytes)?;
    // SAFETY: the first NUL is the last byte, so the only one.
    (nul + 1 == bytes.len()).then(|| unsafe { CStr::from_bytes_with_nul_unchecked(bytes) })
}

/// A null-terminated array of pointers to NUL-terminated strings, as the
/// kernel lays out argv and envp and as `execve` wants them, borrowed for
/// `'a` from whatever holds the strings (the initial stack, a
/// [`crate::strvec::StrVec`]).
#[derive(Clone, Copy)]
pub struct CStrArray<'a> {
    ptr: NonNull<*const c_char>,
    _strings: PhantomData<&'a [&'a CStr]>,
}

impl<'a> CStrArray<'a> {
    /// Wraps a raw array.
    ///
    /// # Safety
    /// `ptr` must point to a null-terminated array of pointers to
    /// NUL-terminated strings, array and strings valid and unchanged for
    /// `'a`.
    pub const unsafe fn from_ptr(ptr: NonNull<*const c_char>) -> CStrArray<'a> {
        CStrArray { ptr, _strings: PhantomData }
    }

    /// The raw pointer, as `execve` wants it.
    pub fn as_ptr(self) -> *const *const c_char {
        self.ptr.as_ptr()
    }

    fn raw(self, i: usize) -> *const c_char {
        // SAFETY: callers only read indexes up to the terminator (they stop
        // at the first null), which the constructor's contract makes valid.
        unsafe { *self.ptr.as_ptr().add(i) }
    }

    /// How many strings there are (the pointers before the null).
    pub fn len(self) -> usize {
        let mut n = 0;
        while !self.raw(n).is_null() {
            n += 1;
        }
        n
    }

    /// Whether there are no strings.
    pub fn is_empty(self) -> bool {
        self.raw(0).is_null()
    }

    /// The array without its first `i` strings. Panics if there are fewer
    /// than `i` (checked in every build: a pointer past the terminator
    /// would make every later read undefined).
    pub fn skip(self, i: usize) -> CStrArray<'a> {
        assert!(i <= self.len(), "CStrArray::skip past the end");
        // SAFETY: `i` is at most the index of the terminator, so the result
        // is a suffix of the same null-terminated array.
        CStrArray { ptr: unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(i)) }, _strings: PhantomData }
    }

    /// The first string, if any.
    pub fn first(self) -> Option<&'a CStr> {
        self.iter().next()
    }

    /// The strings, in order.
    pub fn iter(self) -> CStrs<'a> {
        CStrs { array: self, next: 0 }
    }
}

/// The strings of a [`CStrArray`].
pub struct CStrs<'a> {
    array: CStrArray<'a>,
    next: usize,
}

impl<'a> Iterator for CStrs<'a> {
    type Item = &'a CStr;

    fn next(&mut self) -> Option<&'a CStr> {
        let p = self.array.raw(self.next);
        if p.is_null() {
            return None;
        }
        self.next += 1;
        // SAFETY: a non-null element is a NUL-terminated string valid for
        // 'a (constructor contract).
        Some(unsafe { CStr::from_ptr(p) })
    }
}

/// For unit tests: `words` as a `CStrArray`, an argv or envp as the
/// kernel would hand it over, leaked so that it lives as long as the test.
#[cfg(test)]
pub(crate) fn leaked_array(words: &[&str]) -> CStrArray<'static> {
    use std::ffi::CString;
    let owned: Vec<CString> = words.iter().map(|w| CString::new(*w).unwrap()).collect();
    let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(core::ptr::null());
    Box::leak(Box::new(owned));
    let ptrs = Box::leak(ptrs.into_boxed_slice());
    // SAFETY: a leaked, null-terminated array of leaked C strings.
    unsafe { CStrArray::from_ptr(NonNull::new(ptrs.as_mut_ptr()).unwrap()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_count_skip_and_iterate() {
        let strings = [c"a".as_ptr(), c"bc".as_ptr(), core::ptr::null()];
        // SAFETY: a null-terminated array of string literals.
        let a = unsafe { CStrArray::from_ptr(NonNull::new(strings.as_ptr() as *mut _).unwrap()) };
        assert_eq!(a.len(), 2);
        assert_eq!(a.first(), Some(c"a"));
        assert_eq!(a.skip(1).iter().collect::<Vec<_>>(), vec![c"bc"]);
        assert!(a.skip(2).is_empty());
        assert!(std::panic::catch_unwind(|| a.skip(3)).is_err());
    }
}
