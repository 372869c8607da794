//! The cdb writer against the reference: the input is a list of records
//! (see [`records`]); written with `Writer`, the file must be byte for
//! byte the one [`cdb_model::write`] makes, every key must be found with
//! the value of its first record (also with a buffer just big enough, and
//! `TooBig` with one byte less), keys that were not added must be absent,
//! and `Writer::room` must shrink by `record_cost` with each record.

use super::cdb_model;
use super::support::{self, show, Text};
use rustix::fd::AsFd;
use ucspi_ipc::cdb::{CdbError, Reader, Writer};

/// Decodes the input as records, each: a control byte C, then if C < 128
/// a key of C bytes, else (once there is a record) the key of record
/// number (C - 128) mod count again; then the value's length in two
/// bytes, little-endian, and the value. Lengths are cut to what is left.
pub fn records(mut data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let take = |n: usize, data: &mut &[u8]| -> Vec<u8> {
        let (a, b) = data.split_at(n.min(data.len()));
        *data = b;
        a.to_vec()
    };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    while let Some((&c, rest)) = data.split_first() {
        data = rest;
        let key = if c >= 128 && !out.is_empty() {
            out[usize::from(c - 128) % out.len()].0.clone()
        } else {
            take(usize::from(c % 128), &mut data)
        };
        let len = take(2, &mut data);
        let len = usize::from(len.first().copied().unwrap_or(0)) | usize::from(len.get(1).copied().unwrap_or(0)) << 8;
        let value = take(len, &mut data);
        out.push((key, value));
    }
    out
}

pub fn check(data: &[u8]) {
    let records = records(data);
    let file = support::empty_file();
    let mut w = Writer::new(file.as_fd());
    for (k, v) in &records {
        let room = w.room();
        w.add(k, v).expect("add");
        assert_eq!(w.room(), room - Writer::record_cost(k.len(), v.len()), "room after adding {}", show(k));
    }
    w.finish().expect("finish");
    let written = support::contents(&file);
    let expected = cdb_model::write(&records);
    if written != expected {
        let at = written.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "written file differs from the reference: {} bytes, {} expected, first difference at {at:?}",
            written.len(),
            expected.len()
        );
    }
    let reader = Reader::from_fd(support::dup(&file)).expect("open the written file");
    let mut keys: Vec<&[u8]> = Vec::new();
    for (k, v) in &records {
        if keys.contains(&&k[..]) {
            continue;
        }
        keys.push(k);
        let size = 8 + k.len() + v.len();
        let mut buf = vec![0u8; size];
        let found = reader.find(k, &mut buf).map(|r| r.map(|r| Text::from(&buf[r])));
        assert_eq!(found, Ok(Some(Text(v.clone()))), "key {}, buffer {size}", show(k));
        let found = reader.find(k, &mut buf[..size - 1]);
        assert_eq!(found, Err(CdbError::TooBig), "key {}, buffer {}", show(k), size - 1);
    }
    let mut buf = vec![0u8; 70000];
    for k in &keys {
        for other in [[k, &b"\0"[..]].concat(), [&b"x"[..], k].concat(), k[..k.len().saturating_sub(1)].to_vec()] {
            let expected = records.iter().find(|r| r.0 == other).map(|r| Text(r.1.clone()));
            let found = reader.find(&other, &mut buf).map(|r| r.map(|r| Text::from(&buf[r])));
            assert_eq!(found, Ok(expected), "key {}", show(&other));
        }
    }
}
