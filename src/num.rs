//! Numbers on the command line, in the environment and in files: strict
//! parsing (digits only, no sign, no overflow) and formatting into fixed
//! buffers, without `core::fmt`.

/// Parses a non-empty string of decimal digits that fits in a u32.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_radix(s, 10).and_then(|n| u32::try_from(n).ok())
}

/// Parses a non-empty string of decimal digits that fits in a u64.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    parse_radix(s, 10)
}

/// Parses a non-empty string of octal digits that fits in a u32.
pub fn parse_octal(s: &[u8]) -> Option<u32> {
    parse_radix(s, 8).and_then(|n| u32::try_from(n).ok())
}

fn parse_radix(s: &[u8], radix: u64) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        let d = c.wrapping_sub(b'0') as u64;
        if d >= radix {
            return None;
        }
        n = n.checked_mul(radix)?.checked_add(d)?;
    }
    Some(n)
}

/// Room for any u64 in decimal.
pub const U64_DIGITS: usize = 20;

/// Formats `n` in decimal at the end of `buf`; returns the digits.
pub fn fmt_u64(n: u64, buf: &mut [u8; U64_DIGITS]) -> &[u8] {
    let mut i = U64_DIGITS;
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"12a"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b"+1"), None);
        assert_eq!(parse_u32(b" 1"), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_octal(b"0777"), Some(0o777));
        assert_eq!(parse_octal(b"8"), None);
    }

    #[test]
    fn formats() {
        let mut b = [0; U64_DIGITS];
        assert_eq!(fmt_u64(0, &mut b), b"0");
        assert_eq!(fmt_u64(25600, &mut b), b"25600");
        assert_eq!(fmt_u64(u64::MAX, &mut b), b"18446744073709551615");
    }
}
