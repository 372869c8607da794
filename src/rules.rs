//! Access rules (behaviour.md §3): the text format that `ipcrules` (and
//! `ipcexecrules`) compile, the cdb value encoding, and the lookup a
//! server makes for a client.
//!
//! A rule line is `PATTERN:INSTRUCTIONS`. For access rules the pattern is
//! an ADDRESS: `EUID.EGID`, `EUID`, `.EGID`, empty, or a range `A-B` of
//! euids. For exec rules ([`Syntax::Exec`]) it is `ADDRESS,UID.CMD` (or
//! empty), and `allow="path"` may name a program to run instead of CMD.
//! The value stored under each key is a sequence of NUL-terminated
//! records: `D` (deny), `+NAME=VALUE` (set a variable), `=PATH` (exec
//! override); an empty value is a plain allow.
//!
//! Lookup tries the keys `U.G`, `U`, `.G` then the empty key, each followed
//! by an optional suffix (`,UID.CMD` for ipcexec, which then also tries
//! `,UID.CMD` alone before the empty key). Keys that need an id the client
//! does not have are skipped.
//!
//! This module does not apply rules (setting variables, refusing a
//! connection, running a program is the caller's business) and does not
//! handle files beyond reading lines and handing records to a
//! [`cdb::Writer`].

use crate::cdb::{self, CdbError, Reader, KEY_MAX, VALUE_MAX};
use crate::runtime::CStrArray;
use crate::{io, num};
use arrayvec::ArrayVec;
use core::ops::Range;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Which rules language a line is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Syntax {
    /// ipcrules: `ADDRESS:allow|deny[,NAME=XvalueX]...`
    Access,
    /// ipcexecrules: `ADDRESS,UID.CMD:allow[=XpathX]|deny[,NAME=XvalueX]...`
    Exec,
}

/// A cdb key.
pub type Key = ArrayVec<u8, KEY_MAX>;
/// An encoded rule.
pub type Value = ArrayVec<u8, VALUE_MAX>;

/// A line that is not a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError;

/// The addresses a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address<'l> {
    /// `EUID.EGID`, `EUID`, `.EGID` or empty, as written.
    One(&'l [u8]),
    /// Every euid from the first to the second, inclusive.
    Range(u32, u32),
}

/// The left side of a rule line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern<'l> {
    pub address: Address<'l>,
    /// What follows the address in every key (`,UID.CMD`; empty for
    /// access rules).
    pub suffix: &'l [u8],
}

impl Pattern<'_> {
    /// Calls `f` with each key the rule is stored under.
    pub fn for_each_key<E>(&self, mut f: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        match self.address {
            Address::One(a) if self.suffix.is_empty() => f(a),
            Address::One(a) => {
                let mut k = Key::new();
                // Cannot fail: the parser checked the pattern's length.
                let _ = k.try_extend_from_slice(a);
                let _ = k.try_extend_from_slice(self.suffix);
                f(&k)
            }
            Address::Range(first, last) => {
                for uid in first..=last {
                    let mut digits = [0; num::U64_DIGITS];
                    let mut k = Key::new();
                    // Cannot fail: a number is no longer than `A-B`.
                    let _ = k.try_extend_from_slice(num::fmt_u64(uid as u64, &mut digits));
                    let _ = k.try_extend_from_slice(self.suffix);
                    f(&k)?;
                }
                Ok(())
            }
        }
    }
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses one line (without its newline). `Ok(None)` for comments and
/// blank lines; otherwise the pattern, with the encoded value in `value`.
pub fn parse_line<'l>(line: &'l [u8], syntax: Syntax, value: &mut Value) -> Result<Option<Pattern<'l>>, ParseError> {
    let line = trim_end(line);
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    if memchr::memchr(0, line).is_some() {
        return Err(ParseError);
    }
    let colon = memchr::memchr(b':', line).ok_or(ParseError)?;
    let (pattern, instructions) = (&line[..colon], &line[colon + 1..]);
    if pattern.len() > KEY_MAX {
        return Err(ParseError);
    }
    let (address, suffix) = match syntax {
        Syntax::Access => (pattern, &b""[..]),
        Syntax::Exec => match memchr::memchr(b',', pattern) {
            Some(i) if i + 1 < pattern.len() => (&pattern[..i], &pattern[i..]),
            None if pattern.is_empty() => (pattern, &b""[..]),
            _ => return Err(ParseError),
        },
    };
    let address = parse_address(address)?;
    encode(instructions, syntax, value)?;
    Ok(Some(Pattern { address, suffix }))
}

fn parse_address(a: &[u8]) -> Result<Address<'_>, ParseError> {
    if let Some(dash) = memchr::memchr(b'-', a) {
        let first = num::parse_u32(&a[..dash]).ok_or(ParseError)?;
        let last = num::parse_u32(&a[dash + 1..]).ok_or(ParseError)?;
        return if first <= last { Ok(Address::Range(first, last)) } else { Err(ParseError) };
    }
    let ids_ok = match memchr::memchr(b'.', a) {
        None => a.is_empty() || num::parse_u32(a).is_some(),
        Some(0) => num::parse_u32(&a[1..]).is_some(),
        Some(dot) => num::parse_u32(&a[..dot]).is_some() && num::parse_u32(&a[dot + 1..]).is_some(),
    };
    if ids_ok {
        Ok(Address::One(a))
    } else {
        Err(ParseError)
    }
}

fn put(value: &mut Value, pieces: &[&[u8]]) -> Result<(), ParseError> {
    for p in pieces {
        // Single bytes pushed as such: cheaper than a call to memcpy.
        let added = match p {
            [c] => value.try_push(*c).map_err(|_| ()),
            _ => value.try_extend_from_slice(p).map_err(|_| ()),
        };
        added.map_err(|_| ParseError)?;
    }
    Ok(())
}

/// Splits `XtextXrest` into `text` and `rest`, X being any byte.
fn quoted(s: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    let (&quote, body) = s.split_first().ok_or(ParseError)?;
    let end = memchr::memchr(quote, body).ok_or(ParseError)?;
    Ok((&body[..end], &body[end + 1..]))
}

fn encode(instructions: &[u8], syntax: Syntax, value: &mut Value) -> Result<(), ParseError> {
    value.clear();
    let mut rest = if let Some(r) = instructions.strip_prefix(b"allow") {
        match r.strip_prefix(b"=") {
            Some(q) if syntax == Syntax::Exec => {
                let (path, r) = quoted(q)?;
                if path.is_empty() {
                    return Err(ParseError);
                }
                put(value, &[b"=", path, b"\0"])?;
                r
            }
            _ => r,
        }
    } else if let Some(r) = instructions.strip_prefix(b"deny") {
        put(value, &[b"D\0"])?;
        r
    } else {
        return Err(ParseError);
    };
    while !rest.is_empty() {
        let r = rest.strip_prefix(b",").ok_or(ParseError)?;
        let eq = memchr::memchr(b'=', r).ok_or(ParseError)?;
        let name = &r[..eq];
        if name.is_empty() || memchr::memchr(b',', name).is_some() {
            return Err(ParseError);
        }
        let (text, r) = quoted(&r[eq + 1..])?;
        put(value, &[b"+", name, b"=", text, b"\0"])?;
        rest = r;
    }
    Ok(())
}

/// One instruction of an encoded rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'v> {
    Deny,
    /// Set variable NAME to VALUE.
    Set(&'v [u8], &'v [u8]),
    /// Run PATH instead of the requested program (ipcexec only).
    Exec(&'v [u8]),
}

/// The reason for `unable to read FILE: REASON` on a [`Malformed`] value.
pub const MALFORMED: &[u8] = b"malformed rule";

/// A value that no rules compiler would write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The records of an encoded rule, in order.
pub struct Records<'v>(&'v [u8]);

/// Decodes a rule's value.
pub fn records(value: &[u8]) -> Records<'_> {
    Records(value)
}

impl<'v> Iterator for Records<'v> {
    type Item = Result<Record<'v>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let record = match memchr::memchr(0, self.0) {
            Some(end) => {
                let r = &self.0[..end];
                self.0 = &self.0[end + 1..];
                decode(r)
            }
            None => Err(Malformed),
        };
        if record.is_err() {
            self.0 = &[];
        }
        Some(record)
    }
}

fn decode(r: &[u8]) -> Result<Record<'_>, Malformed> {
    match r.split_first() {
        Some((b'D', [])) => Ok(Record::Deny),
        Some((b'+', set)) => match memchr::memchr(b'=', set) {
            Some(eq) if eq > 0 => Ok(Record::Set(&set[..eq], &set[eq + 1..])),
            _ => Err(Malformed),
        },
        Some((b'=', path)) if !path.is_empty() => Ok(Record::Exec(path)),
        _ => Err(Malformed),
    }
}

/// Who is asking: the client's effective ids, either of which may be
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Client {
    pub euid: Option<u32>,
    pub egid: Option<u32>,
}

/// An environment variable that should hold an id and does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadId {
    pub name: &'static [u8],
    pub value: &'static [u8],
}

impl BadId {
    /// `NAME: fatal: invalid VAR: VALUE` (value sanitised), exit 100: a
    /// set but unusable id is refused rather than ignored, since ignoring
    /// it could make a default rule apply.
    pub fn die(self) -> ! {
        if crate::log::verbosity() >= 1 {
            let mut l = crate::log::Line::new();
            l.str(b"fatal: invalid ").str(self.name).str(b": ").sanitised(self.value).emit();
        }
        crate::runtime::exit(crate::log::EXIT_USAGE)
    }
}

fn id_from_env(envp: CStrArray, name: &'static [u8]) -> Result<Option<u32>, BadId> {
    match crate::env::get(envp, name) {
        None => Ok(None),
        Some(v) => num::parse_u32(v).map(Some).ok_or(BadId { name, value: v }),
    }
}

impl Client {
    /// The client named by `$IPCREMOTEEUID` and `$IPCREMOTEEGID` (unset
    /// variables leave the id unknown).
    pub fn from_env(envp: CStrArray) -> Result<Client, BadId> {
        Ok(Client { euid: id_from_env(envp, b"IPCREMOTEEUID")?, egid: id_from_env(envp, b"IPCREMOTEEGID")? })
    }
}

/// The keys to try for `client`, in order, each ending with `suffix`.
pub struct Keys<'s> {
    client: Client,
    suffix: &'s [u8],
    step: u8,
}

/// Iterates over the lookup keys. `suffix` must leave room in a [`Key`]
/// for `EUID.EGID` (21 bytes); [`lookup`] checks it.
pub fn keys(client: Client, suffix: &[u8]) -> Keys<'_> {
    Keys { client, suffix, step: 0 }
}

/// Longest `EUID.EGID`.
const IDS_MAX: usize = 21;

impl Iterator for Keys<'_> {
    type Item = Key;

    fn next(&mut self) -> Option<Key> {
        loop {
            let step = self.step;
            self.step += 1;
            let (uid, gid, with_suffix) = match (step, self.client.euid, self.client.egid) {
                (0, Some(u), Some(g)) => (Some(u), Some(g), true),
                (1, Some(u), _) => (Some(u), None, true),
                (2, _, Some(g)) => (None, Some(g), true),
                (3, _, _) => (None, None, true),
                // The bare empty key; for access rules step 3 was it.
                (4, _, _) if !self.suffix.is_empty() => (None, None, false),
                (0..=3, _, _) => continue,
                _ => return None,
            };
            let mut k = Key::new();
            let mut digits = [0; num::U64_DIGITS];
            // Cannot fail: the suffix leaves room for the ids (see `keys`).
            if let Some(u) = uid {
                let _ = k.try_extend_from_slice(num::fmt_u64(u as u64, &mut digits));
            }
            if let Some(g) = gid {
                let _ = k.try_push(b'.');
                let _ = k.try_extend_from_slice(num::fmt_u64(g as u64, &mut digits));
            }
            if with_suffix {
                let _ = k.try_extend_from_slice(self.suffix);
            }
            return Some(k);
        }
    }
}

/// The rule that applies: the key it is stored under and where its value
/// is in the caller's buffer.
#[derive(Debug)]
pub struct Found {
    pub key: Key,
    pub value: Range<usize>,
}

/// Finds the rule for `client` (keys ending in `suffix`), reading into
/// `buf` (at least [`cdb::RECORD_MAX`] bytes). `Ok(None)`: no rule, which
/// means allow with no changes.
pub fn lookup(rules: &Reader, client: Client, suffix: &[u8], buf: &mut [u8]) -> Result<Option<Found>, CdbError> {
    if suffix.len() + IDS_MAX > KEY_MAX {
        return Err(CdbError::TooBig);
    }
    for key in keys(client, suffix) {
        if let Some(value) = rules.find(&key, buf)? {
            return Ok(Some(Found { key, value }));
        }
    }
    Ok(None)
}

/// Longest rule line; a longer one is an unparseable line.
pub const LINE_MAX: usize = 8192;
const INPUT_BUFFER: usize = 65536;

/// Lines read from a descriptor in fixed blocks.
pub struct Lines {
    buf: [u8; INPUT_BUFFER],
    start: usize,
    end: usize,
    eof: bool,
    /// The line handed out last (cut at `LINE_MAX` if it was too long).
    line: Range<usize>,
}

/// Why a line could not be had.
#[derive(Debug, PartialEq, Eq)]
enum LineError {
    Read(Errno),
    TooLong,
}

impl Lines {
    pub fn new() -> Lines {
        Lines { buf: [0; INPUT_BUFFER], start: 0, end: 0, eof: false, line: 0..0 }
    }

    /// The line handed out last, without its newline (for messages).
    pub fn current(&self) -> &[u8] {
        &self.buf[self.line.clone()]
    }

    /// The next line's place in the buffer, without its newline; the last
    /// line needs no newline.
    fn next(&mut self, from: BorrowedFd<'_>) -> Result<Option<Range<usize>>, LineError> {
        loop {
            let pending = &self.buf[self.start..self.end];
            let found = match memchr::memchr(b'\n', pending) {
                Some(i) => Some((i, i + 1)),
                None if self.eof && pending.is_empty() => return Ok(None),
                None if self.eof => Some((pending.len(), pending.len())),
                None => None,
            };
            if found.map_or(pending.len(), |(len, _)| len) > LINE_MAX {
                self.line = self.start..self.start + LINE_MAX;
                return Err(LineError::TooLong);
            }
            if let Some((len, skip)) = found {
                self.line = self.start..self.start + len;
                self.start += skip;
                return Ok(Some(self.line.clone()));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let n = io::read(from, &mut self.buf[self.end..]).map_err(LineError::Read)?;
            self.end += n;
            self.eof = n == 0;
        }
    }
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}

/// Why [`compile`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum CompileError {
    /// Reading the rules failed.
    Read(Errno),
    /// Adding a record failed.
    Write(Errno),
    /// [`Lines::current`] is not a rule.
    Parse,
}

/// Reads rules in `syntax` from `input` through `lines` and adds one record
/// per key to `out`.
pub fn compile(
    input: BorrowedFd<'_>,
    syntax: Syntax,
    lines: &mut Lines,
    out: &mut cdb::Writer<'_>,
) -> Result<(), CompileError> {
    let mut value = Value::new();
    loop {
        let range = match lines.next(input) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(LineError::Read(e)) => return Err(CompileError::Read(e)),
            Err(LineError::TooLong) => return Err(CompileError::Parse),
        };
        let line = &lines.buf[range];
        let Some(pattern) = parse_line(line, syntax, &mut value).map_err(|_| CompileError::Parse)? else {
            continue;
        };
        pattern.for_each_key(|k| out.add(k, &value)).map_err(CompileError::Write)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys and the value of a parsed line.
    type Parsed = Result<Option<(Vec<Vec<u8>>, Vec<u8>)>, ParseError>;

    fn parse(line: &str) -> Parsed {
        parse_as(line, Syntax::Access)
    }

    fn parse_as(line: &str, syntax: Syntax) -> Parsed {
        let mut v = Value::new();
        Ok(parse_line(line.as_bytes(), syntax, &mut v)?.map(|p| {
            let mut keys = Vec::new();
            p.for_each_key::<()>(|k| {
                keys.push(k.to_vec());
                Ok(())
            })
            .unwrap();
            (keys, v.to_vec())
        }))
    }

    fn one(line: &str) -> (String, Vec<u8>) {
        let (keys, v) = parse(line).unwrap().unwrap();
        assert_eq!(keys.len(), 1);
        (String::from_utf8(keys[0].clone()).unwrap(), v)
    }

    #[test]
    fn every_address_form() {
        assert_eq!(one("1001.1010:allow"), ("1001.1010".into(), b"".to_vec()));
        assert_eq!(one("1002:deny"), ("1002".into(), b"D\0".to_vec()));
        assert_eq!(one(".1010:allow"), (".1010".into(), b"".to_vec()));
        assert_eq!(one(":deny"), ("".into(), b"D\0".to_vec()));
        assert_eq!(one("4294967295.4294967295:allow").0, "4294967295.4294967295");
    }

    #[test]
    fn ranges_expand_per_uid() {
        let (keys, v) = parse("1001-1003:allow,A=\"x\"").unwrap().unwrap();
        assert_eq!(keys, vec![b"1001".to_vec(), b"1002".to_vec(), b"1003".to_vec()]);
        assert_eq!(v, b"+A=x\0");
        assert_eq!(parse("7-7:deny").unwrap().unwrap().0, vec![b"7".to_vec()]);
        let (keys, _) = parse("4294967294-4294967295:deny").unwrap().unwrap();
        assert_eq!(keys, vec![b"4294967294".to_vec(), b"4294967295".to_vec()]);
        for bad in [
            "5-4:allow",
            "a-4:allow",
            "1-b:allow",
            "-4:allow",
            "4-:allow",
            "1-2.3:allow",
            "1.2-3:allow",
            "1-2-3:allow",
            "1-4294967296:allow",
        ] {
            assert_eq!(parse(bad), Err(ParseError), "{bad}");
        }
    }

    #[test]
    fn bad_addresses() {
        for bad in [
            "abc:allow",
            "1.:allow",
            ".:allow",
            "1.x:allow",
            "x.1:allow",
            "1.2.3:allow",
            " 1:allow",
            "+1:allow",
            "4294967296:allow",
            "1001.1010 :allow",
        ] {
            assert_eq!(parse(bad), Err(ParseError), "{bad}");
        }
    }

    #[test]
    fn assignments_with_any_quote() {
        let (_, v) = one(r#"1001:allow,ACCESS="special",SECRETWORD=/mudshark/,P=+a,b+,Q==x=,E="""#);
        assert_eq!(v, b"+ACCESS=special\0+SECRETWORD=mudshark\0+P=a,b\0+Q=x\0+E=\0");
        let (_, v) = one("1:deny,WHY='no'");
        assert_eq!(v, b"D\0+WHY=no\0");
        let (_, v) = one("1:allow,A=\"sp ace\ttab\"");
        assert_eq!(v, b"+A=sp ace\ttab\0");
    }

    #[test]
    fn comments_blank_lines_and_trailing_blanks() {
        assert_eq!(parse("# comment"), Ok(None));
        assert_eq!(parse("#1:deny"), Ok(None));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse(" \t "), Ok(None));
        assert_eq!(one("1:allow \t  ").1, b"");
        assert_eq!(one("1:allow,A=\"x\"\t").1, b"+A=x\0");
        // Blanks inside a quoted value are kept; only trailing ones go.
        assert_eq!(one("1:allow,A=\"x \" ").1, b"+A=x \0");
    }

    #[test]
    fn bad_lines() {
        for bad in [
            "1001",
            "1001:",
            "1001:allo",
            "1001:allowed",
            "1001:Allow",
            "1001:deny,",
            "1001:allow,A",
            "1001:allow,A=",
            "1001:allow,A=\"x",
            "1001:allow,=\"x\"",
            "1001:allow,A=\"x\"y",
            "1001:allow A=\"x\"",
            "1001:allow,A,B=\"x\"",
            " # not a comment",
            "1:allow=\"/bin/sh\"",
            "1:allow\0",
        ] {
            assert_eq!(parse(bad), Err(ParseError), "{bad:?}");
        }
    }

    #[test]
    fn values_over_the_limit_are_refused() {
        let fits = format!("1:allow,A=\"{}\"", "v".repeat(VALUE_MAX - 4));
        assert_eq!(one(&fits).1.len(), VALUE_MAX);
        let over = format!("1:allow,A=\"{}\"", "v".repeat(VALUE_MAX - 3));
        assert_eq!(parse(&over), Err(ParseError));
    }

    #[test]
    fn exec_syntax() {
        let (keys, v) =
            parse_as(r#"1001.1010,0.echo:allow="/bin/echo",ACCESS="special""#, Syntax::Exec).unwrap().unwrap();
        assert_eq!(keys, vec![b"1001.1010,0.echo".to_vec()]);
        assert_eq!(v, b"=/bin/echo\0+ACCESS=special\0");
        let (keys, _) = parse_as("1-2,0.ls:allow", Syntax::Exec).unwrap().unwrap();
        assert_eq!(keys, vec![b"1,0.ls".to_vec(), b"2,0.ls".to_vec()]);
        assert_eq!(parse_as(",0.ls:deny", Syntax::Exec).unwrap().unwrap().0, vec![b",0.ls".to_vec()]);
        assert_eq!(parse_as(":deny", Syntax::Exec).unwrap().unwrap().0, vec![b"".to_vec()]);
        for bad in ["1001:allow", "1001,:allow", "1:allow=\"\"", "1,0.ls:deny=\"/x\"", "x,0.ls:allow"] {
            assert_eq!(parse_as(bad, Syntax::Exec), Err(ParseError), "{bad}");
        }
    }

    #[test]
    fn decode_round_trip_and_malformed_values() {
        let all: Vec<_> = records(b"D\0+A=x=y\0+E=\0=/bin/sh\0").collect();
        assert_eq!(
            all,
            vec![
                Ok(Record::Deny),
                Ok(Record::Set(b"A", b"x=y")),
                Ok(Record::Set(b"E", b"")),
                Ok(Record::Exec(b"/bin/sh"))
            ]
        );
        assert_eq!(records(b"").count(), 0);
        for bad in [&b"D"[..], b"+A=x", b"X\0", b"\0", b"Dx\0", b"+=x\0", b"+A\0", b"=\0"] {
            let got: Vec<_> = records(bad).collect();
            assert_eq!(got.last(), Some(&Err(Malformed)), "{bad:?}");
        }
        // Decoding stops at the first bad record.
        assert_eq!(records(b"?\0+A=1\0").count(), 1);
    }

    fn key_list(c: Client, suffix: &str) -> Vec<String> {
        keys(c, suffix.as_bytes()).map(|k| String::from_utf8(k.to_vec()).unwrap()).collect()
    }

    #[test]
    fn lookup_key_order() {
        let both = Client { euid: Some(5), egid: Some(10) };
        assert_eq!(key_list(both, ""), vec!["5.10", "5", ".10", ""]);
        assert_eq!(key_list(Client { euid: Some(5), egid: None }, ""), vec!["5", ""]);
        assert_eq!(key_list(Client { euid: None, egid: Some(10) }, ""), vec![".10", ""]);
        assert_eq!(key_list(Client::default(), ""), vec![""]);
        assert_eq!(key_list(both, ",0.echo"), vec!["5.10,0.echo", "5,0.echo", ".10,0.echo", ",0.echo", ""]);
        assert_eq!(key_list(Client::default(), ",0.echo"), vec![",0.echo", ""]);
    }

    fn rules_file(dir: &std::path::Path, text: &str, syntax: Syntax) -> Reader {
        use std::os::fd::AsRawFd;
        let input = dir.join("in");
        std::fs::write(&input, text).unwrap();
        let f = std::fs::File::open(&input).unwrap();
        let target = std::ffi::CString::new(dir.join("r.cdb").to_str().unwrap()).unwrap();
        let tmp = std::ffi::CString::new(dir.join("r.tmp").to_str().unwrap()).unwrap();
        let mut lines = Lines::new();
        // SAFETY: `f` stays open for the whole call.
        let fd = unsafe { BorrowedFd::borrow_raw(f.as_raw_fd()) };
        cdb::write_atomic(&target, &tmp, |w| compile(fd, syntax, &mut lines, w)).unwrap();
        Reader::open(&target).unwrap()
    }

    fn tmp_dir(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("rulestest.{}.{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn check(r: &Reader, euid: Option<u32>, egid: Option<u32>) -> Option<(String, Vec<u8>)> {
        let mut buf = [0u8; cdb::RECORD_MAX];
        lookup(r, Client { euid, egid }, b"", &mut buf)
            .unwrap()
            .map(|f| (String::from_utf8(f.key.to_vec()).unwrap(), buf[f.value].to_vec()))
    }

    #[test]
    fn compiled_rules_follow_the_manual_example() {
        let d = tmp_dir("example");
        let r = rules_file(
            &d,
            "1001.1010:allow,which=\"first\"\n1002:allow,which=/second/\n\
                                :allow,which=+third+\n.1010:allow,which==fourth=\n1002:deny\n",
            Syntax::Access,
        );
        let which = |u, g| check(&r, u, g).map(|(k, v)| (k, String::from_utf8(v).unwrap()));
        assert_eq!(which(Some(5), Some(10)), Some(("".into(), "+which=third\0".into())));
        assert_eq!(which(Some(1002), Some(10)), Some(("1002".into(), "+which=second\0".into())));
        assert_eq!(which(Some(5), Some(1010)), Some((".1010".into(), "+which=fourth\0".into())));
        assert_eq!(which(Some(1001), Some(1010)), Some(("1001.1010".into(), "+which=first\0".into())));
        assert_eq!(which(Some(1001), None), Some(("".into(), "+which=third\0".into())));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn no_rule_and_long_lines() {
        let d = tmp_dir("none");
        let r = rules_file(&d, "# nothing but\n\n1-3:deny", Syntax::Access);
        assert_eq!(check(&r, Some(9), Some(9)), None);
        assert_eq!(check(&r, Some(3), None), Some(("3".into(), b"D\0".to_vec())));
        let mut lines = Lines::new();
        let long = format!("1:allow,A=\"{}\"\n", "x".repeat(LINE_MAX));
        let input = d.join("long");
        std::fs::write(&input, &long).unwrap();
        let f = std::fs::File::open(&input).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: `f` stays open while the descriptor is used.
        let fd = unsafe { BorrowedFd::borrow_raw(f.as_raw_fd()) };
        assert_eq!(lines.next(fd), Err(LineError::TooLong));
        assert_eq!(lines.current(), &long.as_bytes()[..LINE_MAX]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn oversized_suffix_is_an_error() {
        let d = tmp_dir("suffix");
        let r = rules_file(&d, ":deny\n", Syntax::Access);
        let mut buf = [0u8; cdb::RECORD_MAX];
        let long = vec![b'x'; KEY_MAX];
        assert_eq!(lookup(&r, Client::default(), &long, &mut buf).err(), Some(CdbError::TooBig));
        let _ = std::fs::remove_dir_all(&d);
    }
}
