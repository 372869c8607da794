//! Bytes put end to end in fixed buffers ([`ArrayVec`]) by code that
//! knows how long they can be: a caller sizes its buffer from the bounds
//! of what it puts there (a number's digits, a key of ours, a path the
//! kernel bounds), and asserts at compile time that the size holds them;
//! or it means to cut, and says so (a log line, a path as the kernel
//! reported it).
//!
//! It does not report what does not fit: where a piece may be longer than
//! the room, the caller checks first and reports, or uses
//! `try_extend_from_slice` and handles its error.

use arrayvec::ArrayVec;

/// Appends as much of `piece` as `buf` has room for: all of it where the
/// caller sized `buf` for its pieces.
pub fn append<const N: usize>(buf: &mut ArrayVec<u8, N>, piece: &[u8]) {
    let fitting = &piece[..piece.len().min(buf.remaining_capacity())];
    // Cannot fail: cut to the room left.
    let _ = buf.try_extend_from_slice(fitting);
}

/// Appends `byte` if `buf` has room for it, as [`append`] does a piece.
pub fn push<const N: usize>(buf: &mut ArrayVec<u8, N>, byte: u8) {
    // Full only where the caller means to cut.
    let _ = buf.try_push(byte);
}

/// `pieces` end to end, in a buffer of `N` bytes sized for them (each
/// appended as [`append`] does).
pub fn join<const N: usize, const K: usize>(pieces: [&[u8]; K]) -> ArrayVec<u8, N> {
    let mut buf = ArrayVec::new();
    for piece in pieces {
        append(&mut buf, piece);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_what_fits_and_cuts_the_rest() {
        assert_eq!(&join::<8, 3>([b"ab", b"", b"cd"])[..], b"abcd");
        assert_eq!(&join::<4, 2>([b"abc", b"def"])[..], b"abcd");
        let mut buf = join::<4, 1>([b"abcd"]);
        append(&mut buf, b"e");
        push(&mut buf, b'f');
        assert_eq!(&buf[..], b"abcd");
        let mut buf = join::<3, 1>([b"ab"]);
        push(&mut buf, b'c');
        assert_eq!(&buf[..], b"abc");
    }
}
