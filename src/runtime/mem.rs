//! The symbols the compiler may call and a libc would define.
//!
//! memcpy, memset, memcmp and strlen are each architecture's (in
//! `runtime/<arch>.rs`); memmove is built here on them. It does not
//! define the symbols themselves: [`crate::program!`] does, in each
//! program, calling these.

pub use super::arch::{memcmp, memcpy, memset, strlen};

/// C's memmove: forwards (memcpy) unless the destination starts
/// inside the source, then backwards.
///
/// # Safety
/// As C's memmove.
#[inline]
pub unsafe fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize).wrapping_sub(s as usize) >= n {
        // SAFETY: as memcpy: the destination does not start inside the
        // source, so a forward copy reads each byte before writing it.
        return unsafe { memcpy(d, s, n) };
    }
    // SAFETY: n > 0 (else the test above holds) and d above s.
    unsafe { super::arch::copy_backward(d, s, n) };
    d
}

#[cfg(test)]
mod tests {
    use crate::runtime::mem;

    /// Our memory functions (the test harness itself uses libc's) against
    /// the slice operations, for every size around the short-size paths.
    #[test]
    fn memory_functions_agree_with_slices() {
        let src: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        for n in 0..40 {
            for off in 0..3 {
                let mut dst = vec![0xAAu8; 48];
                // SAFETY: both buffers hold off + n bytes.
                unsafe { mem::memcpy(dst.as_mut_ptr().add(off), src.as_ptr().add(off), n) };
                assert_eq!(&dst[off..off + n], &src[off..off + n], "memcpy n={n}");
                assert!(dst[..off].iter().chain(&dst[off + n..]).all(|&b| b == 0xAA), "memcpy n={n} overran");
            }
            let a = &src[..n];
            for at in 0..n {
                for delta in [1u8, 0x80, 0xFF] {
                    let mut b = a.to_vec();
                    b[at] = b[at].wrapping_add(delta);
                    // SAFETY: both hold n bytes.
                    let got = unsafe { mem::memcmp(a.as_ptr(), b.as_ptr(), n) }.signum();
                    assert_eq!(got, a.cmp(&b[..]) as i32, "memcmp n={n} at={at}");
                    // SAFETY: as above.
                    let back = unsafe { mem::memcmp(b.as_ptr(), a.as_ptr(), n) }.signum();
                    assert_eq!(back, -got, "memcmp n={n} at={at} reversed");
                }
            }
            // SAFETY: both hold n bytes.
            assert_eq!(unsafe { mem::memcmp(a.as_ptr(), src.as_ptr(), n) }, 0);
            // Overlapping moves, each way, against copy_within.
            for (from, to) in [(0, 3), (3, 0), (5, 5)] {
                let mut ours = src.clone();
                let mut model = src.clone();
                let p = ours.as_mut_ptr();
                // SAFETY: both ranges lie within the 64 bytes of `ours`.
                unsafe { mem::memmove(p.add(to), p.add(from), n) };
                model.copy_within(from..from + n, to);
                assert_eq!(ours, model, "memmove n={n} {from}->{to}");
            }
        }
    }
}
