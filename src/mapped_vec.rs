//! A growable array of plain values kept in anonymous memory mappings:
//! what `ipcrules` needs to hold one (hash, position) pair per record of a
//! cdb under construction, a million of them or more, without a global
//! allocator. It starts empty (no mapping), maps pages on the first push
//! and doubles with `mremap`, which can move the pages instead of copying.
//!
//! It is only for values whose all-zero bytes are a valid value (fresh
//! anonymous pages are zero), which their type says by implementing
//! [`Zeroable`]. It does not shrink, and it is not for small or short-lived
//! arrays (every growth is a system call).
#![allow(unsafe_code)]

use core::ffi::c_void;
use core::marker::PhantomData;
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MremapFlags, ProtFlags};

/// First mapping size, and the granularity of every size.
const PAGE: usize = 4096;

/// Plain values for which all-zero bytes are a valid value, so that they
/// can be read from fresh anonymous memory.
///
/// # Safety
/// An all-zero bit pattern must be a valid `Self` (no references, no
/// `NonZero`, no enum without a zero discriminant...).
pub unsafe trait Zeroable: Copy {}

// SAFETY: zero is a valid integer.
unsafe impl Zeroable for u8 {}
// SAFETY: zero is a valid integer.
unsafe impl Zeroable for u32 {}
// SAFETY: zero is a valid integer.
unsafe impl Zeroable for u64 {}
// SAFETY: zero is a valid integer.
unsafe impl Zeroable for usize {}
// SAFETY: a pair of zeroable values is zeroable.
unsafe impl<A: Zeroable, B: Zeroable> Zeroable for (A, B) {}

/// A growable array in anonymous memory.
pub struct MappedVec<T: Zeroable> {
    ptr: *mut T,
    len: usize,
    /// Bytes mapped (a multiple of `PAGE`; 0 when nothing is mapped).
    mapped: usize,
    _values: PhantomData<T>,
}

impl<T: Zeroable> MappedVec<T> {
    /// An empty array; maps nothing yet.
    pub const fn new() -> MappedVec<T> {
        MappedVec { ptr: core::ptr::null_mut(), len: 0, mapped: 0, _values: PhantomData }
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn capacity(&self) -> usize {
        self.mapped / core::mem::size_of::<T>().max(1)
    }

    /// Makes room for at least `need` values in all.
    fn reserve(&mut self, need: usize) -> Result<(), Errno> {
        if need <= self.capacity() {
            return Ok(());
        }
        let bytes = need.checked_mul(core::mem::size_of::<T>()).ok_or(Errno::NOMEM)?;
        let want = bytes.max(self.mapped.saturating_mul(2)).max(PAGE);
        let want = want.checked_add(PAGE - 1).ok_or(Errno::NOMEM)? & !(PAGE - 1);
        let ptr = if self.mapped == 0 {
            // SAFETY: a fresh private anonymous mapping at an address the
            // kernel chooses touches no existing memory.
            unsafe {
                mm::mmap_anonymous(core::ptr::null_mut(), want, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)?
            }
        } else {
            // SAFETY: `ptr`/`mapped` describe exactly our own mapping, and
            // no reference into it outlives this `&mut self` call.
            unsafe { mm::mremap(self.ptr as *mut c_void, self.mapped, want, MremapFlags::MAYMOVE)? }
        };
        self.ptr = ptr as *mut T;
        self.mapped = want;
        Ok(())
    }

    /// Appends `value`.
    pub fn push(&mut self, value: T) -> Result<(), Errno> {
        self.reserve(self.len + 1)?;
        // SAFETY: `reserve` made `len` a valid index in the mapping.
        unsafe { self.ptr.add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Sets the length to `len`, every value to `value`.
    pub fn fill(&mut self, len: usize, value: T) -> Result<(), Errno> {
        self.reserve(len)?;
        self.len = len;
        self.as_mut_slice().fill(value);
        Ok(())
    }

    /// The values.
    pub fn as_slice(&self) -> &[T] {
        if self.mapped == 0 {
            return &[];
        }
        // SAFETY: the first `len` values are inside the mapping and were
        // written, or are zero bytes, a valid T (`Zeroable`).
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The values, to change them.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        if self.mapped == 0 {
            return &mut [];
        }
        // SAFETY: as in `as_slice`, and `&mut self` makes it exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T: Zeroable> Default for MappedVec<T> {
    fn default() -> Self {
        MappedVec::new()
    }
}

impl<T: Zeroable> Drop for MappedVec<T> {
    fn drop(&mut self) {
        if self.mapped != 0 {
            // SAFETY: our own mapping; no reference into it outlives `self`.
            let _ = unsafe { mm::munmap(self.ptr as *mut c_void, self.mapped) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_across_many_remaps_and_keeps_values() {
        let mut v = MappedVec::<(u32, u32)>::new();
        assert!(v.is_empty());
        assert_eq!(v.as_slice(), &[]);
        for i in 0..300_000u32 {
            v.push((i, !i)).unwrap();
        }
        assert_eq!(v.len(), 300_000);
        assert!(v.as_slice().iter().enumerate().all(|(i, &(a, b))| a == i as u32 && b == !(i as u32)));
    }

    #[test]
    fn fill_sets_length_and_values() {
        let mut v = MappedVec::<u64>::new();
        v.push(9).unwrap();
        v.fill(5000, 7).unwrap();
        assert_eq!(v.len(), 5000);
        assert!(v.as_slice().iter().all(|&x| x == 7));
        v.fill(2, 0).unwrap();
        assert_eq!(v.as_mut_slice(), &mut [0, 0]);
    }

    #[test]
    fn absurd_sizes_are_an_error_not_a_crash() {
        let mut v = MappedVec::<u64>::new();
        assert_eq!(v.fill(usize::MAX / 4, 0), Err(Errno::NOMEM));
    }
}
