//! A reference cdb, written from D. J. Bernstein's description of the
//! format (https://cr.yp.to/cdb/cdb.txt) over bytes in memory: the file a
//! writer must produce for a list of records, the textbook lookup, and
//! what makes a file well formed. Shared by the cdb and rules checks.

use super::support::Text;

/// Size of the header: 256 (position, length) pairs.
pub const HEADER: usize = 2048;

/// The cdb hash: h = ((h << 5) + h) ^ c from 5381, i.e. h * 33 ^ c.
pub fn hash(key: &[u8]) -> u32 {
    let mut h: u32 = 5381;
    for &c in key {
        h = h.wrapping_mul(33) ^ u32::from(c);
    }
    h
}

fn le(n: usize) -> [u8; 4] {
    u32::try_from(n).expect("reference cdb over 4 GiB").to_le_bytes()
}

/// The whole file for `records`, in order: the header, the records, then
/// table t (for t = 0..255) of twice as many slots as it has records,
/// each record in the first free slot from (hash / 256) mod length on,
/// in the order the records were added. An empty table's header entry
/// holds the position where it would start.
pub fn write(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    let mut slots: Vec<(u32, usize)> = Vec::new();
    for (k, v) in records {
        slots.push((hash(k), out.len()));
        out.extend_from_slice(&le(k.len()));
        out.extend_from_slice(&le(v.len()));
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    let mut tables: Vec<Vec<(u32, usize)>> = vec![Vec::new(); 256];
    for s in slots {
        tables[(s.0 % 256) as usize].push(s);
    }
    let mut header = Vec::new();
    for mine in tables {
        let len = 2 * mine.len();
        header.extend_from_slice(&le(out.len()));
        header.extend_from_slice(&le(len));
        let mut table = vec![(0u32, 0usize); len];
        for (h, pos) in mine {
            let mut i = (h / 256) as usize % len;
            while table[i].1 != 0 {
                i = (i + 1) % len;
            }
            table[i] = (h, pos);
        }
        for (h, pos) in table {
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&le(pos));
        }
    }
    out[..HEADER].copy_from_slice(&header);
    out
}

/// The little-endian number at `at`, if the file has its four bytes.
fn word(file: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let b = file.get(at..at.checked_add(4)?)?;
    Some(u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
}

/// The bytes from `at`, `len` of them, if the file has them all.
fn bytes(file: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(at).ok()?;
    let end = usize::try_from(at.checked_add(len)?).ok()?;
    file.get(start..end)
}

/// What the textbook lookup finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Find {
    /// The value of the first record for the key along the probe sequence.
    Found(Text),
    /// No record for the key: an empty slot, or every slot looked at.
    Absent,
    /// A record with the key whose value runs past the end of the file;
    /// `size` is the record's claimed size, header included.
    Truncated {
        /// 8 + key length + value length.
        size: u64,
    },
    /// A slot, or the header or key of a record whose hash matches, lies
    /// past the end of the file.
    Bad,
}

/// Looks `key` up in `file` (at least [`HEADER`] bytes): table hash mod
/// 256; probe from slot (hash / 256) mod length, wrapping, each slot once;
/// an empty slot (position 0) ends the search; a slot with the same hash
/// whose record has the same key is the answer.
pub fn find(file: &[u8], key: &[u8]) -> Find {
    let h = hash(key);
    let entry = 8 * u64::from(h % 256);
    let (Some(table), Some(len)) = (word(file, entry), word(file, entry + 4)) else { return Find::Bad };
    if len == 0 {
        return Find::Absent;
    }
    let start = u64::from(h / 256) % len;
    for i in 0..len {
        let at = table + 8 * ((start + i) % len);
        let (Some(slot_hash), Some(pos)) = (word(file, at), word(file, at + 4)) else { return Find::Bad };
        if pos == 0 {
            return Find::Absent;
        }
        if slot_hash != u64::from(h) {
            continue;
        }
        let (Some(klen), Some(dlen)) = (word(file, pos), word(file, pos + 4)) else { return Find::Bad };
        if klen != key.len() as u64 {
            continue;
        }
        match bytes(file, pos + 8, klen) {
            None => return Find::Bad,
            Some(k) if k != key => continue,
            Some(_) => {}
        }
        return match bytes(file, pos + 8 + klen, dlen) {
            Some(v) => Find::Found(v.into()),
            None => Find::Truncated { size: 8 + klen + dlen },
        };
    }
    Find::Absent
}

/// Whether every table lies inside the file and every record a slot
/// points to (header, key and value) does too: what a reader may call a
/// sound file, on which it must never report corruption.
pub fn well_formed(file: &[u8]) -> bool {
    if file.len() < HEADER {
        return false;
    }
    (0..256u64).all(|t| {
        let (Some(table), Some(len)) = (word(file, 8 * t), word(file, 8 * t + 4)) else { return false };
        if len > 0 && bytes(file, table, 8 * len).is_none() {
            return false;
        }
        (0..len).all(|s| {
            let pos = word(file, table + 8 * s + 4).unwrap_or(0);
            pos == 0
                || match (word(file, pos), word(file, pos + 4)) {
                    (Some(klen), Some(dlen)) => bytes(file, pos + 8, klen + dlen).is_some(),
                    _ => false,
                }
        })
    })
}

/// The keys of the records a file's slots point to (at most `max`, none
/// longer than `longest`), then of the records laid end to end after the
/// header: keys worth looking up in a file of unknown origin.
pub fn keys_in(file: &[u8], max: usize, longest: u64) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let add = |pos: u64, keys: &mut Vec<Vec<u8>>| -> Option<u64> {
        let (klen, dlen) = (word(file, pos)?, word(file, pos + 4)?);
        if klen <= longest {
            let k = bytes(file, pos + 8, klen)?;
            if !keys.iter().any(|x| x == k) {
                keys.push(k.to_vec());
            }
        }
        Some(pos + 8 + klen + dlen)
    };
    let mut looked = 0;
    'tables: for t in 0..256u64 {
        let (Some(table), Some(len)) = (word(file, 8 * t), word(file, 8 * t + 4)) else { break };
        for s in 0..len {
            looked += 1;
            if keys.len() >= max || looked > 4096 {
                break 'tables;
            }
            match word(file, table + 8 * s + 4) {
                None => break,
                Some(0) => {}
                Some(pos) => {
                    add(pos, &mut keys);
                }
            }
        }
    }
    let mut pos = HEADER as u64;
    while keys.len() < max {
        match add(pos, &mut keys) {
            Some(next) => pos = next,
            None => break,
        }
    }
    keys.truncate(max);
    keys
}
