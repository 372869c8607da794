//! The cdb reader on files of any content: the input is the file. Opening
//! it succeeds exactly when it holds a whole header; looking up keys drawn
//! from it (those its slots and records name, near misses, the empty key)
//! with buffers of several sizes must end, without a panic, in an answer
//! that [`cdb_model::find`] gives too, or in an error the file deserves:
//! `Corrupt` only if the file is not well formed, `TooBig` only if the
//! key or its record does not fit the buffer.

use super::cdb_model::{self, Find};
use super::support::{self, show};
use ucspi_ipc::cdb::{CdbError, Reader};

/// How many keys are looked up at most.
const KEYS: usize = 24;

pub fn check(data: &[u8]) {
    let reader = Reader::from_fd(support::file_with(data));
    let reader = match reader {
        Err(CdbError::Corrupt) if data.len() < cdb_model::HEADER => return,
        Ok(r) if data.len() >= cdb_model::HEADER => r,
        Err(e) => panic!("opening a file of {} bytes: {e:?}", data.len()),
        Ok(_) => panic!("a file of {} bytes, shorter than the header, opened", data.len()),
    };
    let sound = cdb_model::well_formed(data);
    let mut keys = cdb_model::keys_in(data, KEYS, 600);
    for k in keys.clone() {
        let mut miss = k.clone();
        match miss.last_mut() {
            Some(b) => *b ^= 1,
            None => miss.push(0),
        }
        keys.push(miss);
    }
    keys.push(Vec::new());
    for key in &keys {
        let expected = cdb_model::find(data, key);
        for size in [key.len() + 8, 40, 520, 8192] {
            let mut buf = vec![0u8; size];
            let got = reader.find(key, &mut buf);
            let fits = |record: u64| record <= size as u64;
            let ok = match (&got, &expected) {
                (Ok(Some(r)), Find::Found(v)) => r.end <= size && r.start <= r.end && buf[r.clone()] == v.0[..],
                (Ok(None), Find::Absent) => true,
                (Err(CdbError::TooBig), _) if key.len() + 8 > size => true,
                (Err(CdbError::TooBig), Find::Found(v)) => !fits((8 + key.len() + v.0.len()) as u64),
                (Err(CdbError::TooBig), Find::Truncated { size }) => !fits(*size),
                (Err(CdbError::Corrupt), _) => !sound,
                _ => false,
            };
            assert!(
                ok,
                "key {}, buffer {size}: reader {got:?}, reference {expected:?}, well formed: {sound}",
                show(key)
            );
        }
    }
}
