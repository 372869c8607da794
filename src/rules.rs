//! Access and exec rules (behaviour.md §3, §4): the text format that
//! `ipcrules` and `ipcexecrules` compile, the cdb value encoding, and the
//! lookup a server makes for a client.
//!
//! A rule line is `PATTERN:INSTRUCTIONS`. The pattern is an ADDRESS
//! (`EUID.EGID`, `EUID`, `.EGID`, empty, or a range `A-B` of euids),
//! optionally followed by a command part `,UID.CMD` (ipcexec's keys; both
//! compilers accept both forms, as the original's do). Numbers are stored in
//! canonical decimal, so `01001` is the key `1001` (the original stores the
//! text, which can never match). INSTRUCTIONS are `allow` or `deny`, then
//! any number of `,NAME=XvalueX` assignments (X any byte, the quote); for
//! exec rules ([`Syntax::Exec`]) `allow=XpathX` names a program to run
//! instead of CMD. The value stored under each key is a sequence of
//! NUL-terminated records: `D` (deny), `+NAME=VALUE` (set a variable),
//! `=PATH` (exec override); an empty value is a plain allow.
//!
//! Limits, so that everything a compiler accepts a reader honours: an
//! assignment `NAME=VALUE` is at most [`ASSIGNMENT_MAX`] bytes (the most
//! `execve` accepts in one string), a rule's value at most [`VALUE_MAX`],
//! a key at most [`RULES_KEY_MAX`]. A range whose records would not fit in a cdb
//! file is refused before anything is written.
//!
//! Lookup tries the keys `U.G`, `U`, `.G` then the empty key, each followed
//! by an optional suffix (`,UID.CMD` for ipcexec, which then also tries the
//! bare empty key last). Keys that need an id the client does not have are
//! skipped. A client looked up with its supplementary groups (`-S`) has
//! `U.Gn` tried after `U.G`, and `.Gn` after `.G`, for each of them in
//! order; without them the keys are the original's, one for one.
//!
//! [`apply_file`] is what a server does with a rules file for one
//! connection: the lookup, the rule's variables set, the verdict, and the
//! original's warning when the file cannot be read. Refusing the
//! connection and running a program are the caller's business; files are
//! handled only as far as reading lines, looking keys up in a
//! [`cdb::Reader`] and handing records to a [`cdb::Writer`].
//!
//! It prints nothing and never exits: what the rules programs print and
//! how they exit is `rules_programs`'; who the client is and what a rule
//! decides for it ([`Client`], [`Verdict`]) are `client`'s, shared with
//! s6's rules.

use crate::bounded;
use crate::cdb::{self, CdbError, Reader};
use crate::client::{Client, ClientGids, Verdict};
use crate::lines::{LineError, Lines};
use crate::num;
use arrayvec::ArrayVec;
use core::ffi::CStr;
use core::ops::Range;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// Longest key a ucspi-ipc rules file holds or a lookup builds (ids and,
/// for ipcexec, a command); s6's rules have shorter ones
/// (`s6rules::S6_KEY_MAX`).
pub const RULES_KEY_MAX: usize = 4096;
/// Longest `NAME=VALUE` of an assignment: `execve`'s limit for one string
/// (MAX_ARG_STRLEN, 131072 bytes) without the NUL.
pub const ASSIGNMENT_MAX: usize = 131071;
/// Longest encoded rule.
pub const VALUE_MAX: usize = 1 << 20;
/// A buffer that holds any record of a rules file: its 8-byte header, the
/// key and the value.
pub const RULES_RECORD_MAX: usize = 8 + RULES_KEY_MAX + VALUE_MAX;
/// Longest rule line: a key, its colon, and instructions, whose text is at
/// most twice the encoded value. Comments may be longer.
pub const RULES_LINE_MAX: usize = RULES_KEY_MAX + 1 + 2 * VALUE_MAX;

/// Which rules language a line is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Syntax {
    /// ipcrules: `PATTERN:allow|deny[,NAME=XvalueX]...`
    Access,
    /// ipcexecrules: the same, and `allow=XpathX`.
    Exec,
}

/// A cdb key.
pub type Key = ArrayVec<u8, RULES_KEY_MAX>;
/// An encoded rule.
pub type Value = ArrayVec<u8, VALUE_MAX>;

/// Why a line is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a rule (the original's `unable to parse this line`).
    Syntax,
    /// An assignment longer than [`ASSIGNMENT_MAX`].
    AssignmentTooLong,
    /// An encoded rule longer than [`VALUE_MAX`].
    RuleTooLong,
    /// A line longer than [`RULES_LINE_MAX`] that is not a comment.
    LineTooLong,
    /// A range whose records would make the cdb file larger than 4 GiB.
    RangeTooLarge,
}

impl ParseError {
    /// What the compiler says before the line: `unable to parse this
    /// line: `, or why it is too big.
    pub fn message(self) -> &'static [u8] {
        match self {
            ParseError::Syntax => b"unable to parse this line: ",
            ParseError::AssignmentTooLong => b"assignment longer than 131071 bytes in this line: ",
            ParseError::RuleTooLong => b"rule longer than 1048576 bytes in this line: ",
            ParseError::LineTooLong => b"line longer than 2101249 bytes: ",
            ParseError::RangeTooLarge => b"range too large for a cdb file (4 GiB) in this line: ",
        }
    }
}

/// What a refused line should have had where it went wrong, for the line
/// after `unable to parse this line: LINE`: `line N: expected ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The line has a NUL byte.
    NoNul,
    /// No colon.
    Colon,
    /// Before the colon, something that is no address.
    Address,
    /// A number over 4294967295.
    Id,
    /// A range without its first number (`-5`).
    RangeStart,
    /// A range without its last number (`5-`).
    RangeEnd,
    /// A range whose first number is over its last.
    RangeOrder,
    /// After the comma of the pattern, no `UID.PROGRAM`.
    Command,
    /// A program name with a blank or a control character in it, which no
    /// request can name (`65534,0.id :deny` would never match `id`).
    ProgramName,
    /// A program name that makes a key over [`RULES_KEY_MAX`] bytes.
    ShorterProgram,
    /// Neither `allow` nor `deny` after the colon.
    AllowOrDeny,
    /// `allow="path"` given to ipcrules.
    NoExecPath,
    /// After the instruction or an assignment, something else than
    /// `,NAME=...` or the end of the line.
    Comma,
    /// An assignment without `=`.
    Equals,
    /// Nothing after `=` to quote a value with.
    Value,
    /// A quoted value without its closing quote, this byte.
    ClosingQuote(u8),
    /// An assignment over [`ASSIGNMENT_MAX`] bytes.
    ShorterAssignment,
    /// An encoded rule over [`VALUE_MAX`] bytes.
    ShorterRule,
    /// A line over [`RULES_LINE_MAX`] bytes.
    ShorterLine,
    /// A range whose records would not fit a cdb file.
    SmallerRange,
}

impl Expected {
    /// Appends what was expected to `l` (after `expected `).
    pub fn describe(self, l: &mut crate::log::Line) {
        let text: &[u8] = match self {
            Expected::NoNul => b"text without a NUL byte",
            Expected::Colon => b"a colon after the address (ADDRESS:allow or ADDRESS:deny)",
            Expected::Address => {
                b"an address at the start of the line: UID, UID.GID, .GID, FIRST-LAST (decimal numbers), or nothing for anyone"
            }
            Expected::Id => b"a uid or gid from 0 to 4294967295",
            Expected::RangeStart => b"the first uid of the range before '-' (0-5, not -5)",
            Expected::RangeEnd => b"the last uid of the range after '-'",
            Expected::RangeOrder => b"a range FIRST-LAST with FIRST at most LAST",
            Expected::Command => b"UID.PROGRAM after the comma of the address",
            Expected::ProgramName => b"a program name without blanks or control characters",
            Expected::ShorterProgram => b"a shorter program name (a key is at most 4096 bytes)",
            Expected::AllowOrDeny => b"'allow' or 'deny' after the colon",
            Expected::NoExecPath => b"no path after 'allow' (allow=\"path\" is for ipcexecrules)",
            Expected::Comma => b"',NAME=\"value\"' or the end of the line",
            Expected::Equals => b"'=' after the name of the variable",
            Expected::Value => b"a quoted value after '=', such as \"value\"",
            Expected::ClosingQuote(q) => {
                l.str(b"the closing ").sanitised(&[q]).str(b" of the quoted value");
                return;
            }
            Expected::ShorterAssignment => b"an assignment of at most 131071 bytes",
            Expected::ShorterRule => b"a rule of at most 1048576 bytes once compiled",
            Expected::ShorterLine => b"a line of at most 2101249 bytes (only a comment may be longer)",
            Expected::SmallerRange => b"a range whose rules fit a cdb file (4 GiB)",
        };
        l.str(text);
    }
}

/// Why a line is refused, and what it should have had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The kind of refusal, which says the first line of the message.
    pub error: ParseError,
    /// What was expected where the line went wrong.
    pub expected: Expected,
}

/// A line that is no rule, for want of `expected`.
fn syntax(expected: Expected) -> Refusal {
    Refusal { error: ParseError::Syntax, expected }
}

/// The addresses a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// The empty address: everyone.
    Anyone,
    /// `EUID`.
    Uid(u32),
    /// `.EGID`.
    Gid(u32),
    /// `EUID.EGID`.
    UidGid(u32, u32),
    /// `A-B`: every euid from the first to the second, inclusive.
    Range(u32, u32),
}

impl Address {
    /// How many keys the address stands for.
    pub fn count(self) -> u64 {
        match self {
            Address::Range(first, last) => u64::from(last - first) + 1,
            _ => 1,
        }
    }
}

/// The command part of a pattern: `,UID.CMD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'l> {
    /// The target uid.
    pub uid: u32,
    /// The program name, as the client asks for it.
    pub cmd: &'l [u8],
}

/// The left side of a rule line. [`parse_line`] makes one only if each of
/// its keys fits a [`Key`]; one made by hand with a longer command would
/// have its keys cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern<'l> {
    /// Who.
    pub address: Address,
    /// For exec rules: what.
    pub command: Option<Command<'l>>,
}

// Every key is built by the functions below, after a check that the whole
// of it fits a `Key`: a pattern's longest key (`key_len_max`, checked by
// `parse_line`), a lookup's suffix (`SUFFIX_MAX`, checked by `lookup`).
// The ids and the punctuation are bounded by their types.

fn push_num(k: &mut Key, n: u32) {
    let mut digits = [0; num::U64_DIGITS];
    bounded::append(k, num::fmt_u64(n as u64, &mut digits));
}

/// Appends the ids part of a key (`U.G`, `U`, `.G` or nothing).
fn push_ids(k: &mut Key, uid: Option<u32>, gid: Option<u32>) {
    if let Some(u) = uid {
        push_num(k, u);
    }
    if let Some(g) = gid {
        bounded::push(k, b'.');
        push_num(k, g);
    }
}

/// Longest `EUID.EGID`.
const IDS_MAX: usize = num::U32_DIGITS + ".".len() + num::U32_DIGITS;
/// Longest suffix a lookup accepts (`,UID.CMD` of an ipcexec request):
/// what leaves room for `EUID.EGID` in a key.
pub const SUFFIX_MAX: usize = RULES_KEY_MAX - IDS_MAX;
/// Longest `,UID.` of a command part.
const COMMAND_PREFIX_MAX: usize = ",".len() + num::U32_DIGITS + ".".len();

impl Pattern<'_> {
    /// The longest key the pattern makes.
    fn key_len_max(&self) -> usize {
        IDS_MAX + self.command.map_or(0, |c| COMMAND_PREFIX_MAX + c.cmd.len())
    }

    /// Writes the key for these ids into `k` (reused from key to key: a
    /// `Key` is 4 KiB, too big to return by value a million times). It
    /// fits: [`parse_line`] refuses a pattern whose keys would not.
    fn key(&self, uid: Option<u32>, gid: Option<u32>, k: &mut Key) {
        k.clear();
        push_ids(k, uid, gid);
        if let Some(c) = self.command {
            bounded::push(k, b',');
            push_num(k, c.uid);
            bounded::push(k, b'.');
            bounded::append(k, c.cmd);
        }
    }

    /// Calls `f` with each key the rule is stored under.
    pub fn for_each_key<E>(&self, mut f: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut k = Key::new();
        let (first, last, gid) = match self.address {
            Address::Anyone => return f(self.with_key(None, None, &mut k)),
            Address::Uid(u) => (u, u, None),
            Address::Gid(g) => return f(self.with_key(None, Some(g), &mut k)),
            Address::UidGid(u, g) => (u, u, Some(g)),
            Address::Range(first, last) => (first, last, None),
        };
        for uid in first..=last {
            f(self.with_key(Some(uid), gid, &mut k))?;
        }
        Ok(())
    }

    fn with_key<'k>(&self, uid: Option<u32>, gid: Option<u32>, k: &'k mut Key) -> &'k [u8] {
        self.key(uid, gid, k);
        k
    }
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A refused line as the compilers show it, as the original does: its
/// trailing blanks cut, then ending at its first NUL byte (so that no
/// message carries a raw NUL).
pub fn shown(line: &[u8]) -> &[u8] {
    let line = trim_end(line);
    &line[..memchr::memchr(0, line).unwrap_or(line.len())]
}

/// Whether a line is a comment or blank (ignored whatever its length).
pub fn is_ignored(line: &[u8]) -> bool {
    let line = trim_end(line);
    line.is_empty() || line[0] == b'#'
}

/// Parses one line (without its newline). `Ok(None)` for comments and
/// blank lines; otherwise the pattern, with the encoded value in `value`.
pub fn parse_line<'l>(line: &'l [u8], syntax: Syntax, value: &mut Value) -> Result<Option<Pattern<'l>>, ParseError> {
    parse_line_explained(line, syntax, value).map_err(|r| r.error)
}

/// [`parse_line`], saying also what a refused line should have had.
pub fn parse_line_explained<'l>(
    line: &'l [u8],
    syntax: Syntax,
    value: &mut Value,
) -> Result<Option<Pattern<'l>>, Refusal> {
    if is_ignored(line) {
        return Ok(None);
    }
    let line = trim_end(line);
    if memchr::memchr(0, line).is_some() {
        return Err(self::syntax(Expected::NoNul));
    }
    let colon = memchr::memchr(b':', line).ok_or(self::syntax(Expected::Colon))?;
    let (pattern, instructions) = (&line[..colon], &line[colon + 1..]);
    let (address, command) = match memchr::memchr(b',', pattern) {
        Some(i) => (&pattern[..i], Some(parse_command(&pattern[i + 1..])?)),
        None => (pattern, None),
    };
    let pattern = Pattern { address: parse_address(address)?, command };
    if pattern.key_len_max() > RULES_KEY_MAX {
        return Err(self::syntax(Expected::ShorterProgram));
    }
    encode(instructions, syntax, value)?;
    Ok(Some(pattern))
}

/// A uid or gid in decimal; leading zeros are allowed (and dropped).
/// Anything but digits is refused for want of `what`.
fn parse_id(s: &[u8], what: Expected) -> Result<u32, Refusal> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(syntax(what));
    }
    num::parse_u32(s).ok_or(syntax(Expected::Id))
}

fn parse_address(a: &[u8]) -> Result<Address, Refusal> {
    if let Some(dash) = memchr::memchr(b'-', a) {
        let first = parse_id(&a[..dash], if dash == 0 { Expected::RangeStart } else { Expected::Address })?;
        let last = parse_id(&a[dash + 1..], if dash + 1 == a.len() { Expected::RangeEnd } else { Expected::Address })?;
        return if first <= last { Ok(Address::Range(first, last)) } else { Err(syntax(Expected::RangeOrder)) };
    }
    let id = |s| parse_id(s, Expected::Address);
    Ok(match memchr::memchr(b'.', a) {
        None if a.is_empty() => Address::Anyone,
        None => Address::Uid(id(a)?),
        Some(0) => Address::Gid(id(&a[1..])?),
        Some(dot) => Address::UidGid(id(&a[..dot])?, id(&a[dot + 1..])?),
    })
}

/// `UID.CMD` (after the comma): a uid, a dot, a non-empty program name
/// without blanks or control characters (the original takes them, and
/// makes a key no request names: a deny that never applies).
fn parse_command(c: &[u8]) -> Result<Command<'_>, Refusal> {
    let dot = memchr::memchr(b'.', c).ok_or(syntax(Expected::Command))?;
    let cmd = &c[dot + 1..];
    if cmd.is_empty() {
        return Err(syntax(Expected::Command));
    }
    let uid = parse_id(&c[..dot], Expected::Command)?;
    if cmd.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(syntax(Expected::ProgramName));
    }
    Ok(Command { uid, cmd })
}

fn put(value: &mut Value, pieces: &[&[u8]]) -> Result<(), Refusal> {
    for p in pieces {
        value
            .try_extend_from_slice(p)
            .map_err(|_| Refusal { error: ParseError::RuleTooLong, expected: Expected::ShorterRule })?;
    }
    Ok(())
}

/// Splits `XtextXrest` into `text` and `rest`, X being any byte.
fn quoted(s: &[u8]) -> Result<(&[u8], &[u8]), Refusal> {
    let (&quote, body) = s.split_first().ok_or(syntax(Expected::Value))?;
    let end = memchr::memchr(quote, body).ok_or(syntax(Expected::ClosingQuote(quote)))?;
    Ok((&body[..end], &body[end + 1..]))
}

fn encode(instructions: &[u8], syntax: Syntax, value: &mut Value) -> Result<(), Refusal> {
    value.clear();
    let mut rest = if let Some(r) = instructions.strip_prefix(b"allow") {
        match r.strip_prefix(b"=") {
            Some(q) if syntax == Syntax::Exec => {
                let (path, r) = quoted(q)?;
                put(value, &[b"=", path, b"\0"])?;
                r
            }
            Some(_) => return Err(self::syntax(Expected::NoExecPath)),
            None => r,
        }
    } else if let Some(r) = instructions.strip_prefix(b"deny") {
        put(value, &[b"D\0"])?;
        r
    } else {
        return Err(self::syntax(Expected::AllowOrDeny));
    };
    while !rest.is_empty() {
        // `,NAME=XvalueX`: the name is everything up to the first `=` (it
        // may be empty, as the original allows; a reader then ignores it).
        let r = rest.strip_prefix(b",").ok_or(self::syntax(Expected::Comma))?;
        let eq = memchr::memchr(b'=', r).ok_or(self::syntax(Expected::Equals))?;
        let name = &r[..eq];
        let (text, r) = quoted(&r[eq + 1..])?;
        if name.len() + 1 + text.len() > ASSIGNMENT_MAX {
            return Err(Refusal { error: ParseError::AssignmentTooLong, expected: Expected::ShorterAssignment });
        }
        put(value, &[b"+", name, b"=", text, b"\0"])?;
        rest = r;
    }
    Ok(())
}

/// One instruction of an encoded rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'v> {
    /// Refuse.
    Deny,
    /// Set a variable.
    Set(Assignment<'v>),
    /// Run PATH instead of the requested program (ipcexec only; the path
    /// may be empty, as the original's compiler allows).
    Exec(&'v CStr),
}

/// A `NAME=VALUE` record, borrowed from the buffer it was read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment<'v>(&'v CStr);

impl<'v> Assignment<'v> {
    /// The `NAME=VALUE` string, as an environment entry.
    pub fn entry(self) -> &'v CStr {
        self.0
    }

    /// The variable's name; empty in files the original's compiler wrote
    /// from `,="value"` (readers skip such an assignment, as it does).
    pub fn name(self) -> &'v [u8] {
        let e = self.0.to_bytes();
        &e[..memchr::memchr(b'=', e).unwrap_or(e.len())]
    }

    /// The value.
    pub fn value(self) -> &'v [u8] {
        let e = self.0.to_bytes();
        e.get(self.name().len() + 1..).unwrap_or(b"")
    }
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
                let r = &self.0[..=end];
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

/// Decodes one record, its NUL included.
fn decode(r: &[u8]) -> Result<Record<'_>, Malformed> {
    match r {
        [b'D', 0] => Ok(Record::Deny),
        // Cannot fail: the record ends with its NUL and has no other.
        [b'=', path @ ..] => crate::runtime::cstr_with_nul(path).map(Record::Exec).ok_or(Malformed),
        [b'+', set @ ..] if memchr::memchr(b'=', set).is_some() => {
            // Cannot fail: `set` ends with the record's NUL and has no other.
            crate::runtime::cstr_with_nul(set).map(|e| Record::Set(Assignment(e))).ok_or(Malformed)
        }
        _ => Err(Malformed),
    }
}

/// Why a rule could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyError<'v> {
    /// A value no rules compiler writes ([`MALFORMED`]); nothing applied.
    Malformed,
    /// The environment has no room for this variable.
    Env(&'v [u8], Errno),
}

/// Applies an encoded rule: its assignments go into `env`, borrowed from
/// `value` (nameless ones, which the original's compiler writes for
/// `,="value"`, set nothing, as in the original), and its verdict is
/// returned. A deny stops there. Nothing is applied unless the whole value
/// decodes.
pub fn apply<'v>(value: &'v [u8], env: &mut crate::env::Env<'v>) -> Result<Verdict<'v>, ApplyError<'v>> {
    if records(value).any(|r| r.is_err()) {
        return Err(ApplyError::Malformed);
    }
    let mut instead = None;
    for r in records(value).flatten() {
        match r {
            Record::Deny => return Ok(Verdict::Deny),
            Record::Set(a) if a.name().is_empty() => {}
            Record::Set(a) => env.set_entry(a.entry()).map_err(|e| ApplyError::Env(a.name(), e))?,
            Record::Exec(p) => instead = Some(p),
        }
    }
    Ok(Verdict::Allow(instead))
}

/// The keys to try for `client`, in order, each ending with `suffix`:
/// `U.G`, `U.G1`, `U.G2`..., `U`, `.G`, `.G1`, `.G2`..., the empty key
/// (then, after a suffix, the bare empty key), where G1, G2... are its
/// supplementary groups (none unless looked up with `-S`; then a lookup
/// costs at most twice [`uidgid::GIDLIST_MAX`](crate::uidgid::GIDLIST_MAX)
/// keys more). Keys that need an id the client lacks are skipped.
struct RulesKeys<'s> {
    client: Client<'s>,
    suffix: &'s [u8],
    step: u8,
    /// The gids still to try at the step that tries them.
    gids: ClientGids<'s>,
}

/// The lookup keys for `client`. `suffix` must leave room in a [`Key`]
/// for `EUID.EGID` (21 bytes): only [`lookup`] makes them, once it has
/// checked that.
fn keys<'s>(client: Client<'s>, suffix: &'s [u8]) -> RulesKeys<'s> {
    RulesKeys { client, suffix, step: 0, gids: client.gids() }
}

impl RulesKeys<'_> {
    /// Writes the next key into `out` (a `Key` is 4 KiB: one buffer serves
    /// every key); false when there is none left.
    fn next_into(&mut self, out: &mut Key) -> bool {
        loop {
            let step = self.step;
            let euid = self.client.euid;
            // Steps 0 (`U.G`) and 2 (`.G`) take one gid at a time, the
            // primary one first, and stay until there is none left.
            let gid = match step {
                0 if euid.is_some() => self.gids.next(),
                2 => self.gids.next(),
                _ => None,
            };
            if gid.is_none() {
                self.step = self.step.saturating_add(1);
                self.gids = self.client.gids();
            }
            let (uid, with_suffix) = match (step, gid) {
                (0, Some(_)) => (euid, true),
                (1, _) if euid.is_some() => (euid, true),
                (2, Some(_)) | (3, _) => (None, true),
                // The bare empty key; for access rules step 3 was it.
                (4, _) if !self.suffix.is_empty() => (None, false),
                (0..=3, _) => continue,
                _ => return false,
            };
            out.clear();
            push_ids(out, uid, gid);
            if with_suffix {
                // Fits: the suffix leaves room for the ids (see `keys`).
                bounded::append(out, self.suffix);
            }
            return true;
        }
    }
}

/// Finds the rule for `client` (keys ending in `suffix`), reading into
/// `buf` (at least [`RULES_RECORD_MAX`] bytes for any rule a compiler accepts):
/// where its value is in `buf`, the key it is stored under being left in
/// `key`. `Ok(None)`: no rule.
pub fn lookup(
    rules: &Reader,
    client: Client<'_>,
    suffix: &[u8],
    buf: &mut [u8],
    key: &mut Key,
) -> Result<Option<Range<usize>>, CdbError> {
    if suffix.len() > SUFFIX_MAX {
        return Err(CdbError::TooBig);
    }
    let mut keys = keys(client, suffix);
    while keys.next_into(key) {
        if let Some(value) = rules.find(key, buf)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// A connection given up because its rules could not be read or applied:
/// [`apply_file`] has written the warning, and the caller drops the
/// connection (exit 111, or the next connection for a preforking child).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped;

/// Applies the ucspi-ipc rules file `path` (as `ipcrules` compiles it) to
/// the connection of `client` (its ids the server's own where it does
/// not know them, as the original's; its groups tried under `-S`): the rule's
/// variables go into `env`, borrowed from `buf` (at least [`RULES_RECORD_MAX`]
/// bytes), and the verdict is returned: `true` allow (also when no rule
/// matches, or when the file does not exist and `optional`), `false` deny.
/// An exec override is ipcexec's business and ignored here. A file that
/// cannot be read, a malformed rule or a full environment: the original's
/// `warning: dropping connection, unable to read FILE: REASON` (or
/// `unable to set environment variable NAME: REASON`), and [`Dropped`].
pub fn apply_file<'b>(
    path: &CStr,
    optional: bool,
    client: Client<'_>,
    buf: &'b mut [u8],
    env: &mut crate::env::Env<'b>,
) -> Result<bool, Dropped> {
    let unreadable = |reason: &[u8]| {
        crate::log::warn_dropping(&[b"read ", path.to_bytes(), b": ", reason]);
        Dropped
    };
    let rules = match Reader::open(path) {
        Ok(r) => r,
        Err(CdbError::Open(Errno::NOENT)) if optional => return Ok(true),
        Err(e) => return Err(unreadable(e.reason())),
    };
    let mut key = Key::new();
    let Some(found) = lookup(&rules, client, b"", buf, &mut key).map_err(|e| unreadable(e.reason()))? else {
        return Ok(true);
    };
    let value: &'b [u8] = &buf[found];
    match apply(value, env) {
        Ok(Verdict::Allow(_)) => Ok(true),
        Ok(Verdict::Deny) => Ok(false),
        Err(ApplyError::Malformed) => Err(unreadable(MALFORMED)),
        Err(ApplyError::Env(name, e)) => {
            crate::log::warn_dropping_sys(e, &[b"set environment variable ", name]);
            Err(Dropped)
        }
    }
}

/// Why [`compile`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum CompileError {
    /// Reading the rules failed.
    Read(Errno),
    /// Adding a record failed.
    Write(Errno),
    /// This line (cut at [`RULES_LINE_MAX`] if longer) is refused.
    Parse(Refusal),
}

/// Reads rules in `syntax` from `input` through `lines` (whose buffer
/// should hold [`RULES_LINE_MAX`] + 1 bytes) and adds one record per key to `out`.
/// On a refused line, [`Lines::last`] is that line.
pub fn compile(
    input: BorrowedFd<'_>,
    syntax: Syntax,
    lines: &mut Lines<'_>,
    out: &mut cdb::Writer<'_>,
) -> Result<(), CompileError> {
    let mut value = Value::new();
    loop {
        match lines.advance(input) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(LineError::Read(e)) => return Err(CompileError::Read(e)),
            // Only a comment may be of any length: a long line of blanks
            // could hide a rule behind them.
            Err(LineError::TooLong) if lines.last().first() == Some(&b'#') => {
                lines.skip_rest(input).map_err(CompileError::Read)?;
                continue;
            }
            Err(LineError::TooLong) => {
                return Err(CompileError::Parse(Refusal {
                    error: ParseError::LineTooLong,
                    expected: Expected::ShorterLine,
                }))
            }
        }
        let Some(pattern) = parse_line_explained(lines.last(), syntax, &mut value).map_err(CompileError::Parse)? else {
            continue;
        };
        let cost = cdb::Writer::record_cost(pattern.key_len_max(), value.len());
        if pattern.address.count().saturating_mul(cost) > out.room() {
            return Err(CompileError::Parse(Refusal {
                error: ParseError::RangeTooLarge,
                expected: Expected::SmallerRange,
            }));
        }
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
    fn numbers_are_canonical() {
        assert_eq!(one("01001:deny").0, "1001");
        assert_eq!(one("007.0010:deny").0, "7.10");
        assert_eq!(one(".000:deny").0, ".0");
        let (keys, _) = parse("09-0011:deny").unwrap().unwrap();
        assert_eq!(keys, vec![b"9".to_vec(), b"10".to_vec(), b"11".to_vec()]);
        assert_eq!(parse_as("1,007.ls:deny", Syntax::Exec).unwrap().unwrap().0, vec![b"1,7.ls".to_vec()]);
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
            assert_eq!(parse(bad), Err(ParseError::Syntax), "{bad}");
        }
    }

    #[test]
    fn addresses_that_could_never_match_are_refused() {
        for bad in [
            "abc:allow",
            "1.:allow",
            ".:allow",
            "1.x:allow",
            "x.1:allow",
            "1.2.3:allow",
            "1..2:allow",
            " 1:allow",
            "1 :allow",
            "+1:allow",
            "4294967296:allow",
            "1001.1010 :allow",
        ] {
            assert_eq!(parse(bad), Err(ParseError::Syntax), "{bad}");
        }
    }

    #[test]
    fn command_parts_in_both_syntaxes() {
        for syntax in [Syntax::Access, Syntax::Exec] {
            let (keys, v) = parse_as("1001.1010,0.echo:allow,A=\"x\"", syntax).unwrap().unwrap();
            assert_eq!(keys, vec![b"1001.1010,0.echo".to_vec()]);
            assert_eq!(v, b"+A=x\0");
            let (keys, _) = parse_as("1-2,0.ls:deny", syntax).unwrap().unwrap();
            assert_eq!(keys, vec![b"1,0.ls".to_vec(), b"2,0.ls".to_vec()]);
            assert_eq!(parse_as(",0.ls:deny", syntax).unwrap().unwrap().0, vec![b",0.ls".to_vec()]);
            assert_eq!(
                parse_as("1001,0./bin/a-b_c.d:deny", syntax).unwrap().unwrap().0,
                vec![b"1001,0./bin/a-b_c.d".to_vec()]
            );
            assert_eq!(parse_as("1001:deny", syntax).unwrap().unwrap().0, vec![b"1001".to_vec()]);
            let blanks =
                ["1001,0.ec ho:deny", "65534,0.id :deny", "1,0.id\t:deny", "1,0.i\x7fd:deny", "1,0.i\x01d:deny"];
            for bad in ["1001,:deny", "1001,x:deny", "1001,0.:deny", ",:deny", "1001,a.ls:deny", "1001,0.a:b:deny"]
                .into_iter()
                .chain(blanks)
            {
                assert_eq!(parse_as(bad, syntax), Err(ParseError::Syntax), "{bad}");
            }
        }
    }

    #[test]
    fn exec_overrides_only_in_exec_syntax() {
        let (keys, v) =
            parse_as(r#"1001.1010,0.echo:allow="/bin/echo",ACCESS="special""#, Syntax::Exec).unwrap().unwrap();
        assert_eq!(keys, vec![b"1001.1010,0.echo".to_vec()]);
        assert_eq!(v, b"=/bin/echo\0+ACCESS=special\0");
        // The original's compiler accepts an empty path; so do we.
        assert_eq!(parse_as(r#",0.ls:allow="""#, Syntax::Exec).unwrap().unwrap().1, b"=\0");
        assert_eq!(parse(r#",0.ls:allow="/bin/ls""#), Err(ParseError::Syntax));
        assert_eq!(parse_as("1,0.ls:deny=\"/x\"", Syntax::Exec), Err(ParseError::Syntax));
        assert_eq!(parse_as("1,0.ls:allow=/bin/x/", Syntax::Exec), Err(ParseError::Syntax));
    }

    #[test]
    fn assignments_with_any_quote_and_any_name() {
        let (_, v) = one(r#"1001:allow,ACCESS="special",SECRETWORD=/mudshark/,P=+a,b+,Q==x=,E="""#);
        assert_eq!(v, b"+ACCESS=special\0+SECRETWORD=mudshark\0+P=a,b\0+Q=x\0+E=\0");
        assert_eq!(one("1:deny,WHY='no'").1, b"D\0+WHY=no\0");
        assert_eq!(one("1:allow,A=\"sp ace\ttab\"").1, b"+A=sp ace\ttab\0");
        // What the original's compiler accepts as names, we do too.
        assert_eq!(one(":allow,=\"x\"").1, b"+=x\0");
        assert_eq!(one(":allow,A,B=\"x\"").1, b"+A,B=x\0");
        assert_eq!(one(":allow, A=\"x\"").1, b"+ A=x\0");
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
    fn refusals_say_what_was_expected() {
        let expected = |line: &str, syntax: Syntax| {
            let mut v = Value::new();
            parse_line_explained(line.as_bytes(), syntax, &mut v).err().map(|r| r.expected)
        };
        let access = |line: &str| expected(line, Syntax::Access);
        assert_eq!(access("1002 deny"), Some(Expected::Colon));
        assert_eq!(access("1:de\0ny"), Some(Expected::NoNul));
        assert_eq!(access("abc:allow"), Some(Expected::Address));
        assert_eq!(access("1 :allow"), Some(Expected::Address));
        assert_eq!(access("1.x:allow"), Some(Expected::Address));
        assert_eq!(access("4294967296:allow"), Some(Expected::Id));
        assert_eq!(access("-5:deny"), Some(Expected::RangeStart));
        assert_eq!(access("5-:deny"), Some(Expected::RangeEnd));
        assert_eq!(access("5-3:deny"), Some(Expected::RangeOrder));
        assert_eq!(access("1001,x:deny"), Some(Expected::Command));
        assert_eq!(access("1001,0.:deny"), Some(Expected::Command));
        assert_eq!(expected("65534,0.id :deny", Syntax::Exec), Some(Expected::ProgramName));
        assert_eq!(access("1:permit"), Some(Expected::AllowOrDeny));
        assert_eq!(access(":allow=\"/bin/x\""), Some(Expected::NoExecPath));
        assert_eq!(access("1:allow#comment"), Some(Expected::Comma));
        assert_eq!(access(":allow,A"), Some(Expected::Equals));
        assert_eq!(access(":allow,A="), Some(Expected::Value));
        assert_eq!(access(":allow,A=\"x"), Some(Expected::ClosingQuote(b'"')));
        assert_eq!(expected(",0.ls:allow=+/bin/x", Syntax::Exec), Some(Expected::ClosingQuote(b'+')));
        assert_eq!(expected(",0.ls:allow=", Syntax::Exec), Some(Expected::Value));
        let key = format!("1,0.{}:deny", "c".repeat(RULES_KEY_MAX));
        assert_eq!(expected(&key, Syntax::Exec), Some(Expected::ShorterProgram));
        assert_eq!(access(&format!("1:allow,A=\"{}\"", "v".repeat(ASSIGNMENT_MAX))), Some(Expected::ShorterAssignment));
        assert_eq!(access("1:allow"), None);
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
            "1001:allow,A=\"x\"y",
            "1001:allow A=\"x\"",
            " # not a comment",
            "1:allow=\"/bin/sh\"",
            "1:allow\0",
        ] {
            assert_eq!(parse(bad), Err(ParseError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_what_readers_honour() {
        let fits = format!("1:allow,A=\"{}\"", "v".repeat(ASSIGNMENT_MAX - 2));
        assert_eq!(one(&fits).1.len(), ASSIGNMENT_MAX + 2);
        let over = format!("1:allow,A=\"{}\"", "v".repeat(ASSIGNMENT_MAX - 1));
        assert_eq!(parse(&over), Err(ParseError::AssignmentTooLong));
        let many: Vec<String> = (0..9).map(|i| format!("V{i}=\"{}\"", "v".repeat(ASSIGNMENT_MAX - 3))).collect();
        assert_eq!(parse(&format!("1:allow,{}", many.join(","))), Err(ParseError::RuleTooLong));
        let key = format!("1,0.{}:deny", "c".repeat(RULES_KEY_MAX));
        assert_eq!(parse_as(&key, Syntax::Exec), Err(ParseError::Syntax));
        // The messages name the limits.
        assert!(ParseError::AssignmentTooLong
            .message()
            .starts_with(format!("assignment longer than {ASSIGNMENT_MAX} ").as_bytes()));
        assert!(ParseError::RuleTooLong.message().starts_with(format!("rule longer than {VALUE_MAX} ").as_bytes()));
        assert!(ParseError::LineTooLong
            .message()
            .starts_with(format!("line longer than {RULES_LINE_MAX} ").as_bytes()));
    }

    #[test]
    fn applying_a_rule() {
        use crate::env::Env;
        let mut env = Env::new();
        assert_eq!(apply(b"+A=1\0+=x\0=/bin/sh\0+B=2\0", &mut env), Ok(Verdict::Allow(Some(c"/bin/sh"))));
        assert_eq!((env.get(b"A"), env.get(b"B"), env.get(b"")), (Some(&b"1"[..]), Some(&b"2"[..]), None));
        let mut env = Env::new();
        assert_eq!(apply(b"+A=1\0D\0+B=2\0", &mut env), Ok(Verdict::Deny));
        assert_eq!(env.get(b"B"), None);
        let mut env = Env::new();
        assert_eq!(apply(b"+A=1\0?\0", &mut env), Err(ApplyError::Malformed));
        assert_eq!(env.get(b"A"), None, "nothing applied");
        assert_eq!(apply(b"", &mut env), Ok(Verdict::Allow(None)));
    }

    #[test]
    fn decode_round_trip_and_malformed_values() {
        let all: Vec<_> = records(b"D\0+A=x=y\0+E=\0+=nameless\0=/bin/sh\0=\0")
            .map(|r| match r.unwrap() {
                Record::Deny => "D".to_string(),
                Record::Set(a) => format!(
                    "{}|{}|{}",
                    String::from_utf8_lossy(a.name()),
                    String::from_utf8_lossy(a.value()),
                    a.entry().to_str().unwrap()
                ),
                Record::Exec(p) => format!("exec {}", p.to_str().unwrap()),
            })
            .collect();
        assert_eq!(all, ["D", "A|x=y|A=x=y", "E||E=", "|nameless|=nameless", "exec /bin/sh", "exec "]);
        assert_eq!(records(b"").count(), 0);
        for bad in [&b"D"[..], b"+A=x", b"X\0", b"\0", b"Dx\0", b"+A\0", b"+\0"] {
            let got: Vec<_> = records(bad).collect();
            assert_eq!(got.last(), Some(&Err(Malformed)), "{bad:?}");
        }
        // Decoding stops at the first bad record.
        assert_eq!(records(b"?\0+A=1\0").count(), 1);
    }

    fn key_list(c: Client, suffix: &str) -> Vec<String> {
        let (mut keys, mut k, mut all) = (keys(c, suffix.as_bytes()), Key::new(), Vec::new());
        while keys.next_into(&mut k) {
            all.push(String::from_utf8(k.to_vec()).unwrap());
        }
        all
    }

    #[test]
    fn lookup_key_order() {
        let both = Client { euid: Some(5), egid: Some(10), ..Client::default() };
        assert_eq!(key_list(both, ""), vec!["5.10", "5", ".10", ""]);
        assert_eq!(key_list(Client { euid: Some(5), ..Client::default() }, ""), vec!["5", ""]);
        assert_eq!(key_list(Client { egid: Some(10), ..Client::default() }, ""), vec![".10", ""]);
        assert_eq!(key_list(Client::default(), ""), vec![""]);
        assert_eq!(key_list(both, ",0.echo"), vec!["5.10,0.echo", "5,0.echo", ".10,0.echo", ",0.echo", ""]);
        assert_eq!(key_list(Client::default(), ",0.echo"), vec![",0.echo", ""]);
    }

    #[test]
    fn lookup_key_order_with_supplementary_groups() {
        let groups = crate::uidgid::parse_gidlist(b"3,10,20").unwrap();
        let c = Client { euid: Some(5), egid: Some(10), groups };
        // The primary gid, in the list too, is tried twice: the same key,
        // the same answer.
        let expected = ["5.10", "5.3", "5.10", "5.20", "5", ".10", ".3", ".10", ".20", ""];
        assert_eq!(key_list(c, ""), expected);
        let with_suffix: Vec<String> = expected.iter().map(|k| format!("{k},0.id")).chain(["".into()]).collect();
        assert_eq!(key_list(c, ",0.id"), with_suffix);
        // Without a uid, or a primary gid, their keys are left out.
        assert_eq!(key_list(Client { euid: None, ..c }, ""), [".10", ".3", ".10", ".20", ""]);
        assert_eq!(key_list(Client { egid: None, ..c }, ""), ["5.3", "5.10", "5.20", "5", ".3", ".10", ".20", ""]);
        // An empty list is no list.
        let none = crate::uidgid::parse_gidlist(b"").unwrap();
        assert_eq!(key_list(Client { groups: none, ..c }, ""), ["5.10", "5", ".10", ""]);
    }

    struct Compiled {
        dir: std::path::PathBuf,
        reader: Option<Reader>,
        result: Result<(), CompileError>,
        last: Vec<u8>,
    }

    impl Drop for Compiled {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn compile_text(tag: &str, text: &[u8], syntax: Syntax) -> Compiled {
        let dir = std::env::temp_dir().join(format!("rulestest.{}.{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in");
        std::fs::write(&input, text).unwrap();
        let f = std::fs::File::open(&input).unwrap();
        let target = std::ffi::CString::new(dir.join("r.cdb").to_str().unwrap()).unwrap();
        let tmp = std::ffi::CString::new(dir.join("r.tmp").to_str().unwrap()).unwrap();
        let mut buf = vec![0u8; RULES_LINE_MAX + 1];
        let mut lines = Lines::new(&mut buf);
        let r = cdb::write_atomic(&target, &tmp, |w| compile(crate::io::borrow_std(&f), syntax, &mut lines, w));
        let result = r.map_err(|e| match e {
            cdb::AtomicError::Fill(e) => e,
            cdb::AtomicError::Sys(_, e) => CompileError::Write(e),
        });
        let last = lines.last().to_vec();
        Compiled { reader: Reader::open(&target).ok(), dir, result, last }
    }

    fn check(r: &Reader, euid: Option<u32>, egid: Option<u32>) -> Option<(String, Vec<u8>)> {
        let (mut buf, mut key) = (vec![0u8; RULES_RECORD_MAX], Key::new());
        lookup(r, Client { euid, egid, ..Client::default() }, b"", &mut buf, &mut key)
            .unwrap()
            .map(|v| (String::from_utf8(key.to_vec()).unwrap(), buf[v].to_vec()))
    }

    #[test]
    fn compiled_rules_follow_the_manual_example() {
        let c = compile_text(
            "example",
            b"1001.1010:allow,which=\"first\"\n1002:allow,which=/second/\n\
              :allow,which=+third+\n.1010:allow,which==fourth=\n1002:deny\n",
            Syntax::Access,
        );
        let r = c.reader.as_ref().unwrap();
        let which = |u, g| check(r, u, g).map(|(k, v)| (k, String::from_utf8(v).unwrap()));
        assert_eq!(which(Some(5), Some(10)), Some(("".into(), "+which=third\0".into())));
        assert_eq!(which(Some(1002), Some(10)), Some(("1002".into(), "+which=second\0".into())));
        assert_eq!(which(Some(5), Some(1010)), Some((".1010".into(), "+which=fourth\0".into())));
        assert_eq!(which(Some(1001), Some(1010)), Some(("1001.1010".into(), "+which=first\0".into())));
        assert_eq!(which(Some(1001), None), Some(("".into(), "+which=third\0".into())));
    }

    #[test]
    fn comments_of_any_length_rules_up_to_the_limits() {
        let mut text = format!("#{}\n", "c".repeat(3 * RULES_LINE_MAX)).into_bytes();
        text.extend_from_slice(format!("1:allow,BIG=\"{}\"\n", "b".repeat(ASSIGNMENT_MAX - 4)).as_bytes());
        text.extend_from_slice(b"2:deny");
        let c = compile_text("long", &text, Syntax::Access);
        assert_eq!(c.result, Ok(()));
        let r = c.reader.as_ref().unwrap();
        assert_eq!(check(r, Some(1), None).unwrap().1.len(), ASSIGNMENT_MAX + 2);
        assert_eq!(check(r, Some(2), None).unwrap().1, b"D\0");
        assert_eq!(check(r, Some(9), Some(9)), None);
    }

    #[test]
    fn a_line_of_exactly_line_max_bytes_is_a_rule() {
        let padded = |len: usize| format!("1:deny{}", " ".repeat(len - 6));
        let c = compile_text("exact", format!("{}\n2:deny", padded(RULES_LINE_MAX)).as_bytes(), Syntax::Access);
        assert_eq!(c.result, Ok(()));
        let c = compile_text("over", format!("{}\n2:deny", padded(RULES_LINE_MAX + 1)).as_bytes(), Syntax::Access);
        assert!(matches!(c.result, Err(CompileError::Parse(Refusal { error: ParseError::LineTooLong, .. }))));
    }

    #[test]
    fn a_long_line_that_is_not_a_comment_is_refused_by_name() {
        let text = format!("1:deny\n {}\n", "x".repeat(RULES_LINE_MAX));
        let c = compile_text("toolong", text.as_bytes(), Syntax::Access);
        assert!(matches!(c.result, Err(CompileError::Parse(Refusal { error: ParseError::LineTooLong, .. }))));
        assert!(c.last.starts_with(b" xxx"));
        assert!(c.reader.is_none());
    }

    #[test]
    fn huge_ranges_are_refused_before_anything_is_written() {
        let start = std::time::Instant::now();
        let c = compile_text("huge", b"1:deny\n0-4294967295:deny\n", Syntax::Access);
        assert!(matches!(c.result, Err(CompileError::Parse(Refusal { error: ParseError::RangeTooLarge, .. }))));
        assert_eq!(c.last, b"0-4294967295:deny");
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "refused up front");
        assert!(c.reader.is_none());
    }

    #[test]
    fn oversized_suffix_is_an_error() {
        let c = compile_text("suffix", b":deny\n", Syntax::Access);
        let mut buf = vec![0u8; RULES_RECORD_MAX];
        let long = vec![b'x'; RULES_KEY_MAX];
        assert_eq!(
            lookup(c.reader.as_ref().unwrap(), Client::default(), &long, &mut buf, &mut Key::new()).err(),
            Some(CdbError::TooBig)
        );
    }
}
