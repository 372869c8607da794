//! D. J. Bernstein's constant database (cdb) format: reading one key, and
//! writing a whole database, compatible with every cdb tool (tinycdb's
//! `cdb`, cdbget/cdbmake).
//!
//! Layout: a 2048-byte header of 256 (position, slot count) pairs, the
//! records (`klen`, `dlen`, key, data), then 256 hash tables of (hash,
//! record position) slots, each table twice as long as its record count;
//! every number is a little-endian u32, so a file is at most 4 GiB.
//!
//! The [`Reader`] is for servers that look up a few keys per connection:
//! it reads with `pread` into the caller's fixed buffer (no mmap, no
//! allocation), caches the header, and checks every offset and length it
//! reads against what the file really holds, so a truncated or corrupt
//! file is an error, never a crash or an endless loop. The [`Writer`]
//! streams records through a fixed buffer and keeps its index in a
//! [`MappedVec`]; [`write_atomic`] wraps it in the tmp-file-and-rename
//! dance. This module knows nothing of what keys and values mean.

use crate::io;
use crate::mapped_vec::MappedVec;
use crate::num;
use core::ffi::CStr;
use core::ops::Range;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

const HEADER: usize = 2048;
/// Slots read per `pread` while probing a hash table.
const SLOTS_PER_READ: usize = 32;
/// Bytes read at first for a record: its header, key and value in one
/// `pread` for all but big records, which take a second one.
const RECORD_FIRST_READ: usize = 512;
/// Table space a record costs: two 8-byte slots.
const SLOTS_PER_RECORD_BYTES: u64 = 16;
/// Largest cdb file: every position is a u32.
const FILE_MAX: u64 = u32::MAX as u64;

/// Why a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdbError {
    /// The file could not be opened.
    Open(Errno),
    /// Reading it failed.
    Read(Errno),
    /// An offset or length points outside the file, or past its end.
    Corrupt,
    /// The record (or the key asked for) does not fit the buffer.
    TooBig,
    /// The path names something other than a regular file (a FIFO, a
    /// device, a socket): never read, since reading could block.
    NotAFile,
}

impl CdbError {
    /// The verb for `unable to VERB FILE: REASON`.
    pub fn verb(self) -> &'static [u8] {
        match self {
            CdbError::Open(_) => b"open",
            _ => b"read",
        }
    }

    /// The reason for `unable to VERB FILE: REASON`.
    pub fn reason(self) -> &'static [u8] {
        match self {
            CdbError::Open(e) | CdbError::Read(e) => crate::log::errno_text(e),
            CdbError::Corrupt => b"corrupt cdb file",
            CdbError::TooBig => b"record too large",
            CdbError::NotAFile => b"not a regular file",
        }
    }
}

/// The cdb hash of `key`.
pub fn hash(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &c| (h << 5).wrapping_add(h) ^ c as u32)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// An open cdb, ready for lookups.
pub struct Reader {
    fd: OwnedFd,
    header: [u8; HEADER],
}

impl Reader {
    /// Opens `path` (close-on-exec) and reads its header.
    ///
    /// The open does not block and nothing but a regular file is read: a
    /// FIFO put at a rules path would otherwise hold a server's
    /// connection (and, for ipcexec, a root process) for ever.
    pub fn open(path: &CStr) -> Result<Reader, CdbError> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(CdbError::Open)?;
        match io::file_type(fd.as_fd()).map_err(CdbError::Read)? {
            rustix::fs::FileType::RegularFile => Reader::from_fd(fd),
            rustix::fs::FileType::Directory => Err(CdbError::Read(Errno::ISDIR)),
            _ => Err(CdbError::NotAFile),
        }
    }

    /// Takes an open descriptor and reads the header.
    pub fn from_fd(fd: OwnedFd) -> Result<Reader, CdbError> {
        let mut r = Reader { fd, header: [0; HEADER] };
        let n = rustix::io::pread(&r.fd, &mut r.header, 0).map_err(CdbError::Read)?;
        if n < HEADER {
            return Err(CdbError::Corrupt);
        }
        Ok(r)
    }

    /// Reads at `pos` into `buf`; returns how many bytes the file had
    /// there. One `pread` only: on a regular file a short count means end
    /// of file, which is how every bound is checked.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<usize, CdbError> {
        rustix::io::pread(&self.fd, buf, pos).map_err(CdbError::Read)
    }

    /// The first record for `key`: where its value is in `buf`. `buf`
    /// must hold the record's 8-byte header, the key and the value; a
    /// bigger record is [`CdbError::TooBig`]. Only the record's bytes are
    /// read, whatever the size of `buf`.
    pub fn find(&self, key: &[u8], buf: &mut [u8]) -> Result<Option<Range<usize>>, CdbError> {
        if key.len() + 8 > buf.len() {
            return Err(CdbError::TooBig);
        }
        let h = hash(key);
        let t = (h & 255) as usize * 8;
        let table = u32_at(&self.header, t) as u64;
        // No 64-bit remainder: it would bring the compiler's 64-bit
        // division (1.7 KB) into 32-bit ARM programs (see `num::rem_u32`).
        let slots = u32_at(&self.header, t + 4);
        if slots == 0 {
            return Ok(None);
        }
        let mut chunk = [0u8; SLOTS_PER_READ * 8];
        let mut slot = num::rem_u32(h >> 8, slots);
        let mut probed = 0u32;
        // Each slot is looked at once at most: a full table of a corrupt
        // file cannot make this loop forever.
        while probed < slots {
            let n = (SLOTS_PER_READ as u32).min(slots - slot).min(slots - probed) as usize;
            let got = self.read_at(&mut chunk[..n * 8], table + slot as u64 * 8)?;
            if got < n * 8 {
                return Err(CdbError::Corrupt);
            }
            for s in chunk[..n * 8].chunks_exact(8) {
                let pos = u32_at(s, 4);
                if pos == 0 {
                    return Ok(None);
                }
                if u32_at(s, 0) == h {
                    if let Some(r) = self.record(pos as u64, key, buf)? {
                        return Ok(Some(r));
                    }
                }
            }
            probed += n as u32;
            // At most `slots`, which wraps to the first slot.
            slot += n as u32;
            if slot == slots {
                slot = 0;
            }
        }
        Ok(None)
    }

    /// Reads the record at `pos`; the value's place in `buf` if its key is
    /// `key` (which, with the 8-byte header, fits `buf`: checked by
    /// `find`).
    fn record(&self, pos: u64, key: &[u8], buf: &mut [u8]) -> Result<Option<Range<usize>>, CdbError> {
        let first = buf.len().min(RECORD_FIRST_READ);
        let got = self.read_at(&mut buf[..first], pos)?;
        if got < 8 {
            return Err(CdbError::Corrupt);
        }
        let klen = u32_at(buf, 0) as usize;
        let dlen = u32_at(buf, 4) as usize;
        if klen != key.len() {
            return Ok(None);
        }
        // At most 8 + 2 * u32::MAX: no overflow in usize on 64 bits, and
        // on 32 bits a record that large cannot fit `buf` anyway.
        let end = 8usize.saturating_add(klen).saturating_add(dlen);
        let want = end.min(buf.len());
        if want > got {
            let more = self.read_at(&mut buf[got..want], pos + got as u64)?;
            if got + more < want {
                return Err(CdbError::Corrupt);
            }
        }
        if &buf[8..8 + klen] != key {
            return Ok(None);
        }
        if end > buf.len() {
            return Err(CdbError::TooBig);
        }
        Ok(Some(8 + klen..end))
    }
}

/// Size of the [`Writer`]'s output buffer.
const WRITE_BUFFER: usize = 65536;

/// One slot of a hash table: a record's hash and position.
#[derive(Clone, Copy, Default)]
struct Slot {
    hash: u32,
    pos: u32,
}

// SAFETY: two integers: all-zero bytes are a valid (empty) slot.
#[allow(unsafe_code)]
unsafe impl crate::mapped_vec::Zeroable for Slot {}

/// Writes a cdb to a new, empty file: records with [`Writer::add`], then
/// the tables and header with [`Writer::finish`].
pub struct Writer<'f> {
    fd: BorrowedFd<'f>,
    buf: [u8; WRITE_BUFFER],
    used: usize,
    /// Where the next record goes.
    pos: u64,
    slots: MappedVec<Slot>,
}

/// The position after `n` more bytes at `pos`, if the file stays within
/// the format's 4 GiB.
fn advance(pos: u64, n: usize) -> Result<u64, Errno> {
    let end = pos.checked_add(n as u64).ok_or(Errno::FBIG)?;
    if end > FILE_MAX {
        return Err(Errno::FBIG);
    }
    Ok(end)
}

impl<'f> Writer<'f> {
    /// A writer to `fd`, which must be an empty file opened for writing.
    pub fn new(fd: BorrowedFd<'f>) -> Writer<'f> {
        // The header is written last, with pwrite: its place is zeros now.
        Writer { fd, buf: [0; WRITE_BUFFER], used: HEADER, pos: HEADER as u64, slots: MappedVec::new() }
    }

    fn flush(&mut self) -> Result<(), Errno> {
        io::write_all(self.fd, &self.buf[..self.used])?;
        self.used = 0;
        Ok(())
    }

    fn put(&mut self, mut bytes: &[u8]) -> Result<(), Errno> {
        while !bytes.is_empty() {
            if self.used == WRITE_BUFFER {
                self.flush()?;
            }
            let n = bytes.len().min(WRITE_BUFFER - self.used);
            self.buf[self.used..self.used + n].copy_from_slice(&bytes[..n]);
            self.used += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// `put` for the 8-byte numbers pairs of the format: a fixed-size copy
    /// the compiler inlines, where `put` calls memcpy.
    fn put8(&mut self, a: u32, b: u32) -> Result<(), Errno> {
        if WRITE_BUFFER - self.used < 8 {
            self.flush()?;
        }
        let at = &mut self.buf[self.used..self.used + 8];
        at[..4].copy_from_slice(&a.to_le_bytes());
        at[4..].copy_from_slice(&b.to_le_bytes());
        self.used += 8;
        Ok(())
    }

    /// How many more bytes of records (each with its 8-byte header) fit,
    /// counting the hash table space every record will need: a caller
    /// about to add `n` records of `len` bytes each can check `n * (len +
    /// 16)` against it and refuse up front instead of failing gigabytes
    /// later.
    pub fn room(&self) -> u64 {
        let tables = (self.slots.len() as u64) * SLOTS_PER_RECORD_BYTES;
        FILE_MAX.saturating_sub(self.pos).saturating_sub(tables)
    }

    /// What a record with a key of `klen` bytes and `dlen` bytes of data
    /// takes of [`Writer::room`].
    pub const fn record_cost(klen: usize, dlen: usize) -> u64 {
        8 + klen as u64 + dlen as u64 + SLOTS_PER_RECORD_BYTES
    }

    /// Adds a record. Keys may repeat: readers find the first one.
    pub fn add(&mut self, key: &[u8], data: &[u8]) -> Result<(), Errno> {
        let klen = u32::try_from(key.len()).map_err(|_| Errno::FBIG)?;
        let dlen = u32::try_from(data.len()).map_err(|_| Errno::FBIG)?;
        if Self::record_cost(key.len(), data.len()) > self.room() {
            return Err(Errno::FBIG);
        }
        let end = advance(self.pos, 8 + key.len() + data.len())?;
        self.slots.push(Slot { hash: hash(key), pos: self.pos as u32 })?;
        self.put8(klen, dlen)?;
        self.put(key)?;
        self.put(data)?;
        self.pos = end;
        Ok(())
    }

    /// Writes the hash tables and the header. The file is complete (but
    /// not synced) when this returns Ok.
    pub fn finish(mut self) -> Result<(), Errno> {
        let mut count = [0usize; 256];
        for s in self.slots.as_slice() {
            count[(s.hash & 255) as usize] += 1;
        }
        // Group the slots by table (a counting sort into `by_table`).
        let mut start = [0usize; 256];
        let mut next = 0;
        for (t, &c) in count.iter().enumerate() {
            start[t] = next;
            next += c;
        }
        let mut by_table = MappedVec::<Slot>::new();
        by_table.fill(self.slots.len(), Slot::default())?;
        let mut fill_at = start;
        for &s in self.slots.as_slice() {
            let t = (s.hash & 255) as usize;
            by_table.as_mut_slice()[fill_at[t]] = s;
            fill_at[t] += 1;
        }
        let mut header = [0u8; HEADER];
        let mut table = MappedVec::<Slot>::new();
        for t in 0..256 {
            let len = count[t] * 2;
            header[t * 8..t * 8 + 4].copy_from_slice(&(self.pos as u32).to_le_bytes());
            header[t * 8 + 4..t * 8 + 8].copy_from_slice(&(len as u32).to_le_bytes());
            self.pos = advance(self.pos, len * 8)?;
            table.fill(len, Slot::default())?;
            let slots = table.as_mut_slice();
            for &s in &by_table.as_slice()[start[t]..start[t] + count[t]] {
                let mut i = (s.hash >> 8) as usize % len;
                while slots[i].pos != 0 {
                    i = if i + 1 == len { 0 } else { i + 1 };
                }
                slots[i] = s;
            }
            for s in table.as_slice() {
                self.put8(s.hash, s.pos)?;
            }
        }
        self.flush()?;
        let mut done = 0;
        while done < HEADER {
            match rustix::io::pwrite(self.fd, &header[done..], done as u64) {
                Ok(0) => return Err(Errno::IO),
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What [`write_atomic`] was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the temporary file.
    Create,
    /// Writing it.
    Write,
    /// fsync.
    Sync,
    /// Renaming it over the target.
    Rename,
}

/// Why [`write_atomic`] failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AtomicError<E> {
    /// The caller's `fill` failed.
    Fill(E),
    /// A step of the file handling failed.
    Sys(Step, Errno),
}

/// Builds a cdb in `tmp` (created or truncated, mode 0644 less the umask,
/// close-on-exec) with `fill`, then finishes, fsyncs and renames it over
/// `target`. On any error `tmp` is removed and `target` is untouched.
pub fn write_atomic<E>(
    target: &CStr,
    tmp: &CStr,
    fill: impl FnOnce(&mut Writer<'_>) -> Result<(), E>,
) -> Result<(), AtomicError<E>> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
    let fd =
        rustix::fs::open(tmp, flags, Mode::from_bits_truncate(0o644)).map_err(|e| AtomicError::Sys(Step::Create, e))?;
    let result = build(fd.as_fd(), target, tmp, fill);
    drop(fd);
    if result.is_err() {
        let _ = rustix::fs::unlink(tmp);
    }
    result
}

fn build<E>(
    fd: BorrowedFd<'_>,
    target: &CStr,
    tmp: &CStr,
    fill: impl FnOnce(&mut Writer<'_>) -> Result<(), E>,
) -> Result<(), AtomicError<E>> {
    let mut w = Writer::new(fd);
    fill(&mut w).map_err(AtomicError::Fill)?;
    w.finish().map_err(|e| AtomicError::Sys(Step::Write, e))?;
    rustix::fs::fsync(fd).map_err(|e| AtomicError::Sys(Step::Sync, e))?;
    rustix::fs::rename(tmp, target).map_err(|e| AtomicError::Sys(Step::Rename, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::path::{Path, PathBuf};

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("cdbtest.{}.{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        fn c(&self, name: &str) -> CString {
            CString::new(self.0.join(name).to_str().unwrap()).unwrap()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn make(d: &Dir, name: &str, records: &[(&[u8], &[u8])]) -> CString {
        let target = d.c(name);
        let tmp = d.c("tmp");
        write_atomic::<()>(&target, &tmp, |w| {
            for (k, v) in records {
                w.add(k, v).unwrap();
            }
            Ok(())
        })
        .unwrap();
        target
    }

    /// A buffer like a rules reader's: 8 KiB.
    const BUF: usize = 8192;

    fn get(r: &Reader, key: &[u8]) -> Result<Option<Vec<u8>>, CdbError> {
        let mut buf = vec![0u8; BUF];
        r.find(key, &mut buf).map(|v| v.map(|r| buf[r].to_vec()))
    }

    #[test]
    fn hash_is_djb() {
        assert_eq!(hash(b""), 5381);
        assert_eq!(hash(b"a"), (5381u32 * 33) ^ b'a' as u32);
    }

    #[test]
    fn round_trip_first_record_wins() {
        let d = Dir::new("rt");
        let p = make(&d, "a.cdb", &[(b"one", b"1"), (b"", b"empty key"), (b"one", b"second"), (b"two", b"")]);
        let r = Reader::open(&p).unwrap();
        assert_eq!(get(&r, b"one").unwrap(), Some(b"1".to_vec()));
        assert_eq!(get(&r, b"").unwrap(), Some(b"empty key".to_vec()));
        assert_eq!(get(&r, b"two").unwrap(), Some(b"".to_vec()));
        assert_eq!(get(&r, b"three").unwrap(), None);
        assert!(!Path::new(d.c("tmp").to_str().unwrap()).exists());
    }

    #[test]
    fn many_records_all_found() {
        let d = Dir::new("many");
        let keys: Vec<String> = (0..20000).map(|i| i.to_string()).collect();
        let target = d.c("m.cdb");
        write_atomic::<()>(&target, &d.c("tmp"), |w| {
            for k in &keys {
                w.add(k.as_bytes(), format!("v{k}").as_bytes()).unwrap();
            }
            Ok(())
        })
        .unwrap();
        let r = Reader::open(&target).unwrap();
        for k in keys.iter().step_by(7) {
            assert_eq!(get(&r, k.as_bytes()).unwrap(), Some(format!("v{k}").into_bytes()));
        }
        assert_eq!(get(&r, b"x").unwrap(), None);
    }

    #[test]
    fn empty_database() {
        let d = Dir::new("empty");
        let p = make(&d, "e.cdb", &[]);
        assert_eq!(std::fs::metadata(p.to_str().unwrap()).unwrap().len(), 2048);
        assert_eq!(get(&Reader::open(&p).unwrap(), b"k").unwrap(), None);
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let d = Dir::new("missing");
        assert_eq!(Reader::open(&d.c("none")).err(), Some(CdbError::Open(Errno::NOENT)));
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        let d = Dir::new("trunc");
        let p = make(&d, "t.cdb", &[(b"k", b"value"), (b"k2", b"v2")]);
        let whole = std::fs::read(p.to_str().unwrap()).unwrap();
        for cut in 0..whole.len() {
            std::fs::write(p.to_str().unwrap(), &whole[..cut]).unwrap();
            match Reader::open(&p) {
                Err(e) => assert_eq!(e, CdbError::Corrupt, "cut at {cut}"),
                Ok(r) => {
                    // Past the header: a lookup fails, finds nothing, or
                    // finds the record if the cut spared it, never garbage.
                    match get(&r, b"k") {
                        Ok(Some(v)) => assert_eq!(v, b"value", "cut at {cut}"),
                        Ok(None) | Err(CdbError::Corrupt) => {}
                        Err(e) => panic!("cut at {cut}: {e:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn corrupt_headers_and_tables_are_errors() {
        let d = Dir::new("corrupt");
        let p = make(&d, "c.cdb", &[(b"k", b"value")]);
        let path = p.to_str().unwrap();
        let whole = std::fs::read(path).unwrap();
        let t = (hash(b"k") & 255) as usize * 8;
        let patch = |at: usize, v: u32| {
            let mut b = whole.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            std::fs::write(path, &b).unwrap();
            get(&Reader::open(&p).unwrap(), b"k")
        };
        // Table beyond the end of the file; huge table length.
        assert_eq!(patch(t, u32::MAX - 8), Err(CdbError::Corrupt));
        assert_eq!(patch(t + 4, u32::MAX), Err(CdbError::Corrupt));
        // The record claims a value longer than the file.
        assert_eq!(patch(2048 + 4, 100), Err(CdbError::Corrupt));
        // A value longer than the buffer, in a file that has it; values that
        // need a second read.
        let big = vec![b'x'; BUF];
        let fits = vec![b'y'; BUF - 8 - 1];
        let p2 = make(&d, "big.cdb", &[(b"k", &big), (b"f", &fits)]);
        assert_eq!(get(&Reader::open(&p2).unwrap(), b"k"), Err(CdbError::TooBig));
        assert_eq!(get(&Reader::open(&p2).unwrap(), b"f"), Ok(Some(fits)));
        let long_key = vec![b'k'; BUF];
        assert_eq!(get(&Reader::open(&p2).unwrap(), &long_key), Err(CdbError::TooBig));
    }

    #[test]
    fn full_table_of_a_corrupt_file_ends() {
        // Every slot taken, none matching: the probe must stop.
        let d = Dir::new("full");
        let path = d.0.join("f.cdb");
        let mut b = vec![0u8; 2048];
        let t = (hash(b"k") & 255) as usize * 8;
        b[t..t + 4].copy_from_slice(&2048u32.to_le_bytes());
        b[t + 4..t + 8].copy_from_slice(&4u32.to_le_bytes());
        for _ in 0..4 {
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&9u32.to_le_bytes());
        }
        std::fs::write(&path, &b).unwrap();
        let p = CString::new(path.to_str().unwrap()).unwrap();
        assert_eq!(get(&Reader::open(&p).unwrap(), b"k"), Ok(None));
    }

    #[test]
    fn fill_error_leaves_target_untouched() {
        let d = Dir::new("fail");
        let p = make(&d, "r.cdb", &[(b"old", b"1")]);
        let r = write_atomic(&p, &d.c("tmp"), |w| {
            w.add(b"new", b"2").unwrap();
            Err("stop")
        });
        assert_eq!(r, Err(AtomicError::Fill("stop")));
        assert!(!d.0.join("tmp").exists());
        assert_eq!(get(&Reader::open(&p).unwrap(), b"old").unwrap(), Some(b"1".to_vec()));
        let r = write_atomic::<()>(&p, &d.c("nodir/tmp"), |_| Ok(()));
        assert_eq!(r, Err(AtomicError::Sys(Step::Create, Errno::NOENT)));
    }

    #[test]
    fn room_counts_records_and_tables() {
        let d = Dir::new("room");
        let f = std::fs::File::create(d.0.join("r")).unwrap();
        let mut w = Writer::new(crate::io::borrow_std(&f));
        let start = w.room();
        assert_eq!(start, FILE_MAX - 2048);
        w.add(b"key", b"value").unwrap();
        assert_eq!(w.room(), start - Writer::record_cost(3, 5));
    }

    #[test]
    fn four_gib_limit() {
        assert_eq!(advance(2048, 10), Ok(2058));
        assert_eq!(advance(u32::MAX as u64 - 10, 10), Ok(u32::MAX as u64));
        assert_eq!(advance(u32::MAX as u64 - 10, 11), Err(Errno::FBIG));
        assert_eq!(advance(u64::MAX, 1), Err(Errno::FBIG));
    }
}
