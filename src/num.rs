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
/// The most digits of a u32 in decimal (4294967295).
pub const U32_DIGITS: usize = 10;

/// `n / 10` and `n % 10`, by shifts and adds (Hacker's Delight, 10-17,
/// carried to 64 bits): where the machine has no 64-bit division (32-bit
/// ARM, x86), `/` would call the compiler's own, 1.7 KB of code in every
/// program; on the others it is about as fast as the multiplication `/`
/// becomes.
fn div_rem_10(n: u64) -> (u64, u8) {
    let mut q = (n >> 1) + (n >> 2);
    q += q >> 4;
    q += q >> 8;
    q += q >> 16;
    q += q >> 32;
    q >>= 3;
    // `q` is n / 10 or one less: the remainder tells.
    let r = n - q * 10;
    if r > 9 {
        (q + 1, (r - 10) as u8)
    } else {
        (q, r as u8)
    }
}

/// `n % d` (`d` not 0), by long division, one bit at a time: on 32-bit
/// ARM, which has no division instruction (before ARMv7VE), `%` calls the
/// compiler's routine, 560 bytes unrolled; this is a few instructions,
/// for a cdb lookup's one remainder.
pub fn rem_u32(n: u32, d: u32) -> u32 {
    let mut r = 0u64;
    for bit in (0..32).rev() {
        r = r << 1 | u64::from(n >> bit & 1);
        if r >= u64::from(d) {
            r -= u64::from(d);
        }
    }
    r as u32
}

/// Formats `n` in decimal at the end of `buf`; returns the digits.
pub fn fmt_u64(n: u64, buf: &mut [u8; U64_DIGITS]) -> &[u8] {
    let mut i = U64_DIGITS;
    let mut n = n;
    loop {
        i -= 1;
        let (q, r) = div_rem_10(n);
        buf[i] = b'0' + r;
        n = q;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainders() {
        let mut x = 0x2545_f491u32;
        let edges = [0, 1, 2, 3, 255, 256, u32::MAX - 1, u32::MAX];
        for n in edges {
            for d in edges.into_iter().filter(|&d| d != 0) {
                assert_eq!(rem_u32(n, d), n % d, "{n} % {d}");
            }
        }
        for _ in 0..1_000_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let (n, d) = (x, (x.rotate_left(11) >> (x % 32)).max(1));
            assert_eq!(rem_u32(n, d), n % d, "{n} % {d}");
        }
    }

    #[test]
    fn divides_by_ten() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let edges = [0, 1, 9, 10, 11, 99, 100, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX - 1, u64::MAX];
        let sweep = (0..100_000u64).chain((0..100_000).map(|i| u64::MAX - i));
        let random = (0..1_000_000).map(|_| {
            // xorshift: values across the whole range.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (x % 64)
        });
        for n in edges.into_iter().chain(sweep).chain(random) {
            assert_eq!(div_rem_10(n), (n / 10, (n % 10) as u8), "{n}");
        }
    }

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
