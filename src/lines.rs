//! Lines read from a descriptor in blocks, into a buffer the caller
//! provides (on the stack for small files such as /etc/passwd, in `.bss`
//! for rules files): no allocation, one `read` per block.
//!
//! A buffer of N bytes holds lines of up to N - 1 bytes (one byte is room
//! for the newline that ends it). A longer line is reported as such, with
//! its beginning, and can then be skipped whole; the caller decides whether
//! that is an error (a rule) or not (a comment). The last line needs no
//! newline.
//! This module knows nothing of what lines mean.

use crate::io;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Why a line could not be had.
#[derive(Debug, PartialEq, Eq)]
pub enum LineError {
    /// Reading failed.
    Read(Errno),
    /// The line does not fit the buffer; [`Lines::last`] holds its first
    /// bytes and [`Lines::skip_rest`] passes over the rest.
    TooLong,
}

/// Lines from one descriptor.
pub struct Lines<'b> {
    buf: &'b mut [u8],
    start: usize,
    end: usize,
    eof: bool,
    /// The line handed out last, or the beginning of a line too long.
    last: core::ops::Range<usize>,
    /// How many lines were handed out or reported too long.
    number: u64,
}

impl<'b> Lines<'b> {
    /// Lines read through `buf`: lines of up to `buf.len() - 1` bytes.
    pub fn new(buf: &'b mut [u8]) -> Lines<'b> {
        Lines { buf, start: 0, end: 0, eof: false, last: 0..0, number: 0 }
    }

    /// Reads the next line, which [`Lines::last`] then holds, without its
    /// newline; `Ok(false)` at end of file.
    pub fn advance(&mut self, from: BorrowedFd<'_>) -> Result<bool, LineError> {
        loop {
            let pending = &self.buf[self.start..self.end];
            let found = match memchr::memchr(b'\n', pending) {
                Some(i) => Some((i, i + 1)),
                None if self.eof && pending.is_empty() => return Ok(false),
                None if self.eof => Some((pending.len(), pending.len())),
                None => None,
            };
            if let Some((len, skip)) = found {
                self.last = self.start..self.start + len;
                self.start += skip;
                self.number += 1;
                return Ok(true);
            }
            if self.start == 0 && self.end == self.buf.len() {
                self.last = 0..self.end;
                self.number += 1;
                return Err(LineError::TooLong);
            }
            self.fill(from).map_err(LineError::Read)?;
        }
    }

    /// Moves what is pending to the front and reads more after it.
    fn fill(&mut self, from: BorrowedFd<'_>) -> Result<(), Errno> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let n = io::read(from, &mut self.buf[self.end..])?;
        self.end += n;
        self.eof = n == 0;
        Ok(())
    }

    /// The line [`Lines::advance`] read last, or after
    /// [`LineError::TooLong`] the first bytes of the line (the whole
    /// buffer): for messages.
    pub fn last(&self) -> &[u8] {
        &self.buf[self.last.clone()]
    }

    /// The number of the line [`Lines::advance`] read last, or reported
    /// too long, counting from 1 (0 before the first).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// After [`LineError::TooLong`]: passes over the rest of the line,
    /// its newline included.
    pub fn skip_rest(&mut self, from: BorrowedFd<'_>) -> Result<(), Errno> {
        self.last = 0..0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                self.start += i + 1;
                return Ok(());
            }
            self.start = self.end;
            if self.eof {
                return Ok(());
            }
            self.fill(from)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pipe_with(data: &[u8]) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("lines.{}.{}", std::process::id(), data.len()));
        std::fs::File::create(&path).unwrap().write_all(data).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn lines_with_and_without_final_newline() {
        let f = pipe_with(b"one\n\ntwo\nthree");
        let mut buf = [0u8; 8];
        let mut l = Lines::new(&mut buf);
        let mut got = Vec::new();
        while l.advance(crate::io::borrow_std(&f)).unwrap() {
            got.push(l.last().to_vec());
        }
        assert_eq!(got, vec![b"one".to_vec(), b"".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn a_long_line_is_reported_and_can_be_skipped() {
        let f = pipe_with(b"short\n#0123456789abcdef0123456789\nafter\n");
        let mut buf = [0u8; 16];
        let mut l = Lines::new(&mut buf);
        assert_eq!(l.advance(crate::io::borrow_std(&f)), Ok(true));
        assert_eq!(l.last(), b"short");
        assert_eq!(l.advance(crate::io::borrow_std(&f)), Err(LineError::TooLong));
        assert!(l.last().starts_with(b"#0123"));
        l.skip_rest(crate::io::borrow_std(&f)).unwrap();
        assert_eq!(l.advance(crate::io::borrow_std(&f)), Ok(true));
        assert_eq!(l.last(), b"after");
        assert_eq!(l.advance(crate::io::borrow_std(&f)), Ok(false));
    }
}
