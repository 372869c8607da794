//! The ipcexec request parser and the netstrings it is made of, against
//! references. The input is two control bytes, MODE and CHUNKS, then the
//! bytes a client sends (a request and what follows it); shorter inputs
//! are no bytes at all. MODE bit 7 makes long requests out of short
//! inputs: each 0xFF byte of the bytes stands for 4096 `a`, each 0xFE for
//! 64 (while the whole stays under [`EXPANDED_MAX`]), so that requests at
//! the [`ARGS_MAX`] bound are reachable.
//!
//! - `netstring::parse`, at the start of the bytes and of every run of
//!   digits in them, with limits from 0 to `usize::MAX` and LEN itself,
//!   gives what [`reference_netstring`] gives.
//! - `request::parse`, on the bytes and on every prefix of them up to the
//!   end of the request (a sample of a long one's middle), gives what
//!   [`reference_parse`] gives: more needed, the same refusal, or a whole
//!   request with the same uid, marker, arguments (through `args()`, the
//!   first being `program()`) and length. A whole request is not whole on
//!   any shorter prefix, and stays the same request on longer ones and
//!   whatever is appended; a refusal stays the same refusal.
//! - `request::header` writes exactly the header the format says, and a
//!   header followed by arguments and `,` parses back to the request: for
//!   every whole request, and for one made of the bytes themselves.
//! - `request::read`, from a socketpair (MODE bit 0: a pipe) on which a
//!   thread writes the bytes in chunks (their lengths drawn from CHUNKS'
//!   low nibble, at most [`CHUNKS_MOST`] of them) and then hangs up, with
//!   the client's descriptors attached to the chunk numbered by CHUNKS'
//!   high nibble when MODE bit 1 says so, returns what the reference says
//!   of all the bytes (more needed being `Truncated`: its buffer of
//!   `request::BUFFER` bytes "holds any request"), refuses `1:F,` without
//!   the descriptors and descriptors without `1:F,`, and leaves everything
//!   after the request on the connection.

use super::connection;
use super::support::{show, Text};
use rustix::fd::{AsFd, OwnedFd};
use std::cell::RefCell;
use std::sync::OnceLock;
use ucspi_ipc::request::{self, Bad, Request};
use ucspi_ipc::{netstring, num, socket};

/// The format's bounds, as the request module has them: the most bytes of
/// arguments, the most arguments.
const ARGS_MAX: usize = 131072;
const COUNT_MAX: u64 = 1024;
/// The most bytes of the uid and the count (the module's literal 10).
const NUMBER_DIGITS: usize = 10;
/// The uid that is no uid, `(uid_t)-1`.
const NO_UID: u64 = 4294967295;
/// The most digits of a netstring's LEN: a u64 in decimal.
const LEN_DIGITS: usize = 20;
/// The netstring that announces descriptors.
const WITH_FDS: &[u8] = b"1:F,";
/// What 0xFF and 0xFE stand for under MODE bit 7, and the most bytes that
/// expansion makes.
const EXPAND_BIG: usize = 4096;
const EXPAND_SMALL: usize = 64;
const EXPANDED_MAX: usize = request::BUFFER + 2 * EXPAND_BIG;
/// Prefixes checked: all of the first [`DENSE`] and the last
/// [`DENSE`], and one in [`STRIDE`] between.
const DENSE: usize = 1024;
const STRIDE: usize = 1009;
/// How many of the prefixes longer than a whole request are checked.
const LONGER: usize = 16;
/// The most chunks the bytes are written in, and the longest input read
/// through a pipe (a byte at a time).
const CHUNKS_MOST: usize = 64;
const PIPE_MOST: usize = 8192;
/// Milliseconds `read` is given: only a hang takes that long, as the writer
/// always hangs up.
const DEADLINE_SECS: u64 = 5;
/// Limits `netstring::parse` is tried with (besides LEN and LEN - 1), and
/// the most places in the input it is tried at.
const LIMITS: [usize; 4] = [0, 10, ARGS_MAX, usize::MAX];
const STARTS_MOST: usize = 4096;

/// What the front of a buffer is, as a netstring.
#[derive(Debug, PartialEq, Eq)]
pub enum Netstring<'b> {
    /// A valid beginning: more is needed.
    More,
    /// Never a netstring.
    Syntax,
    /// LEN over the limit, or longer than [`LEN_DIGITS`].
    TooLong,
    /// DATA, and the bytes the netstring takes.
    Whole(Bytes<'b>, usize),
}

/// Borrowed bytes, shown escaped.
#[derive(PartialEq, Eq)]
pub struct Bytes<'b>(pub &'b [u8]);

impl std::fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&show(self.0))
    }
}

/// `LEN:DATA,` as netstring.rs describes it: LEN is decimal digits (leading
/// zeros allowed, at most [`LEN_DIGITS`] of them: more is too long at
/// once), then `:`, LEN bytes of DATA and `,`. LEN over `max` is too long as
/// soon as the `:` shows it complete; anything else out of place is a
/// syntax error as soon as it is seen; a buffer that ends before that is a
/// valid beginning.
pub fn reference_netstring(buf: &[u8], max: usize) -> Netstring<'_> {
    // Counting no further than one digit too many.
    let digits = buf.iter().take(LEN_DIGITS + 1).take_while(|c| c.is_ascii_digit()).count();
    if digits > LEN_DIGITS {
        return Netstring::TooLong;
    }
    if digits == buf.len() {
        return Netstring::More;
    }
    if digits == 0 || buf[digits] != b':' {
        return Netstring::Syntax;
    }
    let len = buf[..digits].iter().fold(0u128, |n, &c| n * 10 + u128::from(c - b'0'));
    if len > max as u128 {
        return Netstring::TooLong;
    }
    let data = &buf[digits + 1..];
    // DATA and the comma after it.
    if data.len() as u128 <= len {
        return Netstring::More;
    }
    let len = len as usize;
    if data[len] == b',' {
        Netstring::Whole(Bytes(&data[..len]), digits + 1 + len + 1)
    } else {
        Netstring::Syntax
    }
}

/// A whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whole {
    pub with_fds: bool,
    pub uid: u32,
    /// The arguments, without their NULs.
    pub args: Vec<Text>,
    /// The bytes the request takes.
    pub used: usize,
}

/// What the front of a buffer is, as a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    More,
    Bad(Bad),
    Whole(Whole),
}

/// The next netstring from `at` on, with LEN over `max` refused as
/// `too_long`; `at` moves past it.
fn next<'b>(buf: &'b [u8], at: &mut usize, max: usize, too_long: Bad) -> Result<&'b [u8], Outcome> {
    match reference_netstring(&buf[*at..], max) {
        Netstring::Whole(Bytes(data), used) => {
            *at += used;
            Ok(data)
        }
        Netstring::More => Err(Outcome::More),
        Netstring::Syntax => Err(Outcome::Bad(Bad::Syntax)),
        Netstring::TooLong => Err(Outcome::Bad(too_long)),
    }
}

/// Decimal digits, at least one, at most [`NUMBER_DIGITS`].
fn decimal(s: &[u8]) -> Option<u64> {
    let ok = (1..=NUMBER_DIGITS).contains(&s.len()) && s.iter().all(u8::is_ascii_digit);
    ok.then(|| s.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')))
}

/// A request as request.rs describes it, read left to right, each field
/// judged as soon as its netstring is whole: optionally the netstring `F`
/// (the marker), then netstrings UID (at most 10 bytes, else a bad uid),
/// COUNT (at most 10 bytes, else a bad count) and ARGS (at most
/// [`ARGS_MAX`], else too long). UID is decimal and not 4294967295; COUNT
/// is decimal from 1 to [`COUNT_MAX`]; ARGS ends with NUL and has COUNT of
/// them. A netstring's syntax error is a syntax error.
pub fn reference_parse(buf: &[u8]) -> Outcome {
    match fields(buf) {
        Ok(whole) => Outcome::Whole(whole),
        Err(o) => o,
    }
}

fn fields(buf: &[u8]) -> Result<Whole, Outcome> {
    let at = &mut 0;
    let first = next(buf, at, NUMBER_DIGITS, Bad::Uid)?;
    let with_fds = first == b"F";
    let uid = if with_fds { next(buf, at, NUMBER_DIGITS, Bad::Uid)? } else { first };
    let uid = decimal(uid).filter(|&n| n < NO_UID).ok_or(Outcome::Bad(Bad::Uid))?;
    let count = next(buf, at, NUMBER_DIGITS, Bad::Count)?;
    let count = decimal(count).filter(|n| (1..=COUNT_MAX).contains(n)).ok_or(Outcome::Bad(Bad::Count))?;
    let args = next(buf, at, ARGS_MAX, Bad::TooLong)?;
    let Some((0, args)) = args.split_last() else { return Err(Outcome::Bad(Bad::Arguments)) };
    let args: Vec<Text> = args.split(|&c| c == 0).map(Text::from).collect();
    if args.len() as u64 != count {
        return Err(Outcome::Bad(Bad::Arguments));
    }
    Ok(Whole { with_fds, uid: uid as u32, args, used: *at })
}

/// The header a request for `uid` with `count` arguments of `args_len`
/// bytes starts with: the marker if wanted, the netstrings UID and COUNT
/// (COUNT in canonical decimal), then ARGS' `LEN:`.
pub fn reference_header(with_fds: bool, uid: &[u8], count: usize, args_len: usize) -> Vec<u8> {
    let count = count.to_string();
    let mut h = if with_fds { WITH_FDS.to_vec() } else { Vec::new() };
    h.extend_from_slice(format!("{}:", uid.len()).as_bytes());
    h.extend_from_slice(uid);
    h.extend_from_slice(format!(",{}:{count},{args_len}:", count.len()).as_bytes());
    h
}

/// The code's answer, as an [`Outcome`]; `program()` must be the first
/// argument.
pub fn outcome(r: Result<Option<(Request<'_>, usize)>, Bad>) -> Outcome {
    match r {
        Err(bad) => Outcome::Bad(bad),
        Ok(None) => Outcome::More,
        Ok(Some((req, used))) => {
            let args: Vec<Text> = req.args().map(|a| Text::from(a.to_bytes())).collect();
            assert_eq!(Some(Text::from(req.program())), args.first().cloned(), "program() of {args:?}");
            Outcome::Whole(Whole { with_fds: req.with_fds, uid: req.uid, args, used })
        }
    }
}

fn netstring_outcome(r: Result<Option<(&[u8], usize)>, netstring::Error>) -> Netstring<'_> {
    match r {
        Ok(None) => Netstring::More,
        Ok(Some((data, used))) => Netstring::Whole(Bytes(data), used),
        Err(netstring::Error::Syntax) => Netstring::Syntax,
        Err(netstring::Error::TooLong) => Netstring::TooLong,
    }
}

/// Which of `0..=n` are checked: all near the ends, a sample between.
fn positions(n: usize) -> impl Iterator<Item = usize> {
    let head = (n + 1).min(DENSE);
    let tail = (n + 1).saturating_sub(DENSE).max(head);
    (0..head).chain((head..tail).step_by(STRIDE)).chain(tail..n + 1)
}

/// The bytes of the input, long runs of `a` made of 0xFF and 0xFE under
/// MODE bit 7.
fn expand(body: &[u8], expand: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for &c in body {
        let run = match c {
            0xFF if expand => EXPAND_BIG,
            0xFE if expand => EXPAND_SMALL,
            _ => 0,
        };
        if run > 0 && out.len() + run <= EXPANDED_MAX {
            out.resize(out.len() + run, b'a');
        } else {
            out.push(c);
        }
    }
    out
}

/// Where a netstring may start: at the start, at the end, and at every
/// run of digits.
fn starts(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let runs = (1..bytes.len()).filter(|&i| bytes[i].is_ascii_digit() && !bytes[i - 1].is_ascii_digit());
    [0].into_iter().chain(runs).chain([bytes.len()])
}

fn check_netstrings(bytes: &[u8]) {
    for at in starts(bytes).take(STARTS_MOST) {
        let buf = &bytes[at..];
        // LEN itself, and one less, as limits too: the bound exactly.
        let digits = buf.iter().take(LEN_DIGITS).take_while(|c| c.is_ascii_digit());
        let len = digits.fold(0u128, |n, &c| n * 10 + u128::from(c - b'0')).min(usize::MAX as u128) as usize;
        for max in LIMITS.into_iter().chain([len, len.saturating_sub(1)]) {
            let got = netstring_outcome(netstring::parse(buf, max));
            assert_eq!(got, reference_netstring(buf, max), "netstring::parse({}, {max})", show(buf));
        }
    }
}

/// `header()` against the reference, and what it makes parsed back.
fn check_round_trip(with_fds: bool, uid: &[u8], args: &[Text]) {
    let mut args_bytes = Vec::new();
    for a in args {
        args_bytes.extend_from_slice(&a.0);
        args_bytes.push(0);
    }
    let h = request::header(with_fds, uid, args.len(), args_bytes.len());
    let expected = reference_header(with_fds, uid, args.len(), args_bytes.len());
    assert_eq!(
        Text::from(&h[..]),
        Text(expected),
        "header({with_fds}, {}, {}, {})",
        show(uid),
        args.len(),
        args_bytes.len()
    );
    let bytes = [&h[..], &args_bytes, b","].concat();
    let Outcome::Whole(w) = outcome(request::parse(&bytes)) else { panic!("{} does not parse back", show(&bytes)) };
    let uid = decimal(uid).unwrap() as u32;
    assert_eq!(w, Whole { with_fds, uid, args: args.to_vec(), used: bytes.len() }, "{} parsed back", show(&bytes));
}

fn check_parse(bytes: &[u8], expected: &Outcome, mode: u8, chunks: u8) {
    // Every prefix up to the end of a whole request (or a sample of the
    // long ones' middles), against the reference; a whole one must be
    // incomplete on every shorter prefix, and the same request on a sample
    // of the longer ones.
    let end = if let Outcome::Whole(w) = expected { w.used } else { bytes.len() };
    for n in positions(end) {
        let prefix = &bytes[..n];
        let want = if n == bytes.len() { expected.clone() } else { reference_parse(prefix) };
        assert_eq!(outcome(request::parse(prefix)), want, "parse({})", show(prefix));
        if n < end && matches!(expected, Outcome::Whole(_)) {
            assert_eq!(want, Outcome::More, "a prefix of {} is not incomplete", show(bytes));
        }
    }
    let longer = (end + 1..bytes.len()).step_by(((bytes.len() - end) / LONGER).max(1)).chain([bytes.len()]);
    for n in longer.filter(|&n| n > end) {
        let prefix = &bytes[..n];
        assert_eq!(&outcome(request::parse(prefix)), expected, "parse({}) after a whole request", show(prefix));
    }
    // Whatever comes after.
    for extra in [&b","[..], b"\0", b"1:0,", b"x", b"0", b"1:", bytes] {
        let longer = [bytes, extra].concat();
        let got = outcome(request::parse(&longer));
        assert_eq!(got, reference_parse(&longer), "parse({})", show(&longer));
        if *expected != Outcome::More {
            assert_eq!(&got, expected, "{} then {}", show(bytes), show(extra));
        }
    }
    if let Outcome::Whole(w) = expected {
        check_round_trip(w.with_fds, w.uid.to_string().as_bytes(), &w.args);
        check_round_trip(!w.with_fds, format!("{:010}", w.uid).as_bytes(), &w.args);
    }
    // A request made of the bytes themselves, split at NULs.
    let mut args: Vec<Text> = bytes.split(|&c| c == 0).map(Text::from).collect();
    if bytes.last().is_none_or(|&c| c == 0) {
        args.pop();
    }
    let len: usize = args.iter().map(|a| a.0.len() + 1).sum();
    if (1..=COUNT_MAX as usize).contains(&args.len()) && len <= ARGS_MAX {
        let uid =
            ((u32::from(mode) << 24) | (u32::from(chunks) << 16) | (bytes.len() as u32 & 0xFFFF)) % (NO_UID as u32);
        check_round_trip(mode & 1 != 0, uid.to_string().as_bytes(), &args);
    }
}

/// What `read` gives, or what it should.
#[derive(Debug, PartialEq, Eq)]
enum ReadOutcome {
    Bad(Bad),
    /// The request, how many descriptors came with it, and what was left
    /// on the connection.
    Read(Whole, usize, Text),
}

/// A file to send as the client's descriptors.
fn descriptor() -> &'static OwnedFd {
    static FILE: OnceLock<OwnedFd> = OnceLock::new();
    FILE.get_or_init(super::support::empty_file)
}

/// The chunks the bytes are written in: lengths from 1 to 2^(CHUNKS & 15),
/// pseudo-random, the last one taking the rest.
fn split(bytes: &[u8], chunks: u8) -> Vec<&[u8]> {
    let most = 1usize << (chunks & 15);
    let mut x = u32::from(chunks) | 0x9E37_7900;
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = if out.len() + 1 == CHUNKS_MOST { rest.len() } else { 1 + x as usize % most };
        let (chunk, r) = rest.split_at(n.min(rest.len()));
        out.push(chunk);
        rest = r;
    }
    out
}

/// Writes `pieces` on `to` one at a time, the descriptors with piece
/// `fds_with`, then hangs up.
fn write_pieces(to: OwnedFd, pieces: Vec<Vec<u8>>, fds_with: Option<usize>, pipe: bool) {
    for (i, piece) in pieces.iter().enumerate() {
        let mut piece = &piece[..];
        if fds_with == Some(i) {
            let d = descriptor().as_fd();
            let sent = socket::send_with_fds(&to, piece, &[d, d, d]).expect("sending descriptors");
            piece = &piece[sent..];
        }
        connection::write_all(&to, piece, pipe);
        std::thread::yield_now();
    }
}

/// What `read` makes of a connection on which the writer thread writes
/// `pieces` (see [`write_pieces`]), and what it leaves on it.
fn read_from(pieces: Vec<Vec<u8>>, fds_with: Option<usize>, pipe: bool) -> ReadOutcome {
    let (reader, writer) = connection::pair(pipe);
    connection::in_background(Box::new(move || write_pieces(writer, pieces, fds_with, pipe)));
    with_buffer(|buf| {
        let got =
            match request::read(reader.as_fd(), buf, &request::Deadline::after(DEADLINE_SECS, 0).expect("a timer")) {
                Ok((req, fds)) => Ok((outcome(Ok(Some((req, 0)))), fds.len())),
                Err(bad) => Err(bad),
            };
        // All the rest, up to the hangup: the writer is done with this
        // connection then.
        let rest = connection::rest(&reader, buf);
        match got {
            Ok((Outcome::Whole(w), fds)) => ReadOutcome::Read(w, fds, Text(rest)),
            Ok(other) => unreachable!("{other:?}"),
            Err(bad) => ReadOutcome::Bad(bad),
        }
    })
}

/// Runs `f` with this thread's buffer of `request::BUFFER` bytes.
pub fn with_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; request::BUFFER]);
    }
    BUF.with_borrow_mut(|buf| f(buf))
}

fn check_read(bytes: &[u8], expected: &Outcome, mode: u8, chunks: u8) {
    let pipe = mode & 1 != 0 && bytes.len() <= PIPE_MOST;
    let pieces = split(bytes, chunks);
    let with = usize::from(chunks >> 4);
    let fds_with = (mode & 2 != 0 && !pipe && with < pieces.len()).then_some(with);
    let fds_at = fds_with.map(|with| pieces[..with].iter().map(|p| p.len()).sum::<usize>());
    let got = read_from(pieces.iter().map(|p| p.to_vec()).collect(), fds_with, pipe);
    // The bytes are all there is to go by (the buffer holds any request),
    // and the descriptors come with the bytes they were sent with.
    let want = match expected {
        Outcome::More => ReadOutcome::Bad(Bad::Truncated),
        Outcome::Bad(bad) => ReadOutcome::Bad(*bad),
        Outcome::Whole(w) => {
            let fds_came = fds_at.is_some_and(|at| at < w.used);
            if w.with_fds != fds_came {
                ReadOutcome::Bad(Bad::Descriptors)
            } else {
                let rest = Text::from(&bytes[w.used..]);
                ReadOutcome::Read(Whole { used: 0, ..w.clone() }, if fds_came { socket::FDS_MAX } else { 0 }, rest)
            }
        }
    };
    let how = if pipe { "a pipe".to_string() } else { format!("a socket, descriptors at {fds_at:?}") };
    assert_eq!(got, want, "read({}) from {how}", show(bytes));
}

pub fn check(data: &[u8]) {
    assert_eq!((ARGS_MAX, COUNT_MAX as usize, WITH_FDS), (request::ARGS_MAX, request::COUNT_MAX, request::WITH_FDS));
    assert_eq!((LEN_DIGITS, NO_UID), (num::U64_DIGITS, u64::from(u32::MAX)));
    let (mode, chunks, body) = match data {
        [mode, chunks, body @ ..] => (*mode, *chunks, body),
        _ => (0, 0, &[][..]),
    };
    let bytes = expand(body, mode & 0x80 != 0);
    check_netstrings(&bytes);
    let expected = reference_parse(&bytes);
    check_parse(&bytes, &expected, mode, chunks);
    check_read(&bytes, &expected, mode, chunks);
}
