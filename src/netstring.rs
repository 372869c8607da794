//! Netstrings (D. J. Bernstein's `LEN:DATA,`, LEN in decimal): reading one
//! from the front of a buffer, bounded, and the `LEN:` header for writing
//! one.
//!
//! Reading distinguishes a netstring not all there yet (more bytes may
//! come) from one that never will be (a byte that cannot be in a
//! netstring, or a length over the caller's limit, known as soon as the
//! length is read). Leading zeros in LEN are accepted, as djb's readers
//! accept them. It knows nothing of what the data means.

use crate::num;
use arrayvec::ArrayVec;

/// Why the front of a buffer is not a netstring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not the syntax (no digits, no `:`, no `,` after the data).
    Syntax,
    /// LEN is over the caller's limit.
    TooLong,
}

/// Longest LEN read (a u64 in decimal).
const LEN_DIGITS_MAX: usize = num::U64_DIGITS;
/// Longest `LEN:` [`header`] writes.
pub const HEADER_MAX: usize = LEN_DIGITS_MAX + 1;

/// The netstring at the front of `buf`, if it is all there: its data and
/// the bytes it takes. `Ok(None)`: so far a valid beginning, more is
/// needed. LEN over `max` is an error at once.
pub fn parse(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, Error> {
    let digits = buf.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > LEN_DIGITS_MAX {
        return Err(Error::TooLong);
    }
    let Some(&after) = buf.get(digits) else { return Ok(None) };
    if digits == 0 || after != b':' {
        return Err(Error::Syntax);
    }
    // Cannot fail for 20 digits or less... except above u64: too long.
    let len = num::parse_u64(&buf[..digits]).ok_or(Error::TooLong)?;
    if len > max as u64 {
        return Err(Error::TooLong);
    }
    let start = digits + 1;
    // A length no buffer can hold (with max near usize::MAX) is, like any
    // other, waiting for more bytes.
    let Some(end) = start.checked_add(len as usize) else { return Ok(None) };
    match buf.get(end) {
        None => Ok(None),
        Some(b',') => Ok(Some((&buf[start..end], end + 1))),
        Some(_) => Err(Error::Syntax),
    }
}

/// The `LEN:` that starts a netstring of `len` bytes.
pub fn header(len: usize) -> ArrayVec<u8, HEADER_MAX> {
    let mut digits = [0; num::U64_DIGITS];
    let mut h = ArrayVec::new();
    // Fits: a u64's digits and a colon (HEADER_MAX).
    for piece in [num::fmt_u64(len as u64, &mut digits), b":"] {
        crate::bounded::append(&mut h, piece);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_partial_and_bad() {
        assert_eq!(parse(b"5:hello,rest", 10), Ok(Some((&b"hello"[..], 8))));
        assert_eq!(parse(b"0:,", 10), Ok(Some((&b""[..], 3))));
        assert_eq!(parse(b"05:hello,", 10), Ok(Some((&b"hello"[..], 9))));
        for partial in [&b""[..], b"5", b"12", b"5:", b"5:hel", b"5:hello"] {
            assert_eq!(parse(partial, 10), Ok(None), "{partial:?}");
        }
        for bad in [&b":x,"[..], b"x:", b"5;hello,", b"5:hello;", b"-1:x,", b" 1:x,", b"5:helloo,"] {
            assert_eq!(parse(bad, 10), Err(Error::Syntax), "{bad:?}");
        }
        assert_eq!(parse(b"11:", 10), Err(Error::TooLong));
        assert_eq!(parse(b"99999999999999999999999:", 10), Err(Error::TooLong));
        assert_eq!(parse(b"18446744073709551616:", usize::MAX), Err(Error::TooLong));
        // The largest limit there is, whatever the word size.
        let largest = format!("{}:", usize::MAX);
        assert_eq!(parse(largest.as_bytes(), usize::MAX), Ok(None));
        let over = format!("{}:", usize::MAX as u128 + 1);
        assert_eq!(parse(over.as_bytes(), usize::MAX), Err(Error::TooLong));
    }

    #[test]
    fn headers() {
        assert_eq!(&header(0)[..], b"0:");
        assert_eq!(&header(131072)[..], b"131072:");
    }
}
