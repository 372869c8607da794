//! The rules parser and compiler against a reference. The input is a rules
//! file. Each line is parsed with `parse_line` in both syntaxes and must
//! give what [`reference_parse`] gives: the same refusal, or the same
//! address, command part, encoded value (which `records` must decode back
//! into the rule's instructions) and keys. Then the whole file is compiled
//! three times (access and exec syntax, and access syntax through a 64-byte
//! line buffer, so that lines too long for it are exercised): `compile`
//! must refuse the line [`reference_compile`] refuses, for the same reason,
//! or write exactly the cdb file [`cdb_model::write`] makes of the
//! reference's records, in which every key is found with its first value
//! and `lookup` finds, for clients made of the file's ids, the rule the
//! reference's key order picks.

use super::cdb_model;
use super::options::reference_u32 as number;
use super::support::{self, show, texts, Text};
use rustix::fd::AsFd;
use std::cell::RefCell;
use std::collections::HashMap;
use ucspi_ipc::cdb::{CdbError, Reader, Writer};
use ucspi_ipc::client::Client;
use ucspi_ipc::lines::Lines;
use ucspi_ipc::rules::{self, Address, CompileError, ParseError, Record, Syntax, Value};
use ucspi_ipc::uidgid;

/// The format's limits, as the rules module documents them: the longest
/// key, `NAME=VALUE` and encoded rule.
const RULES_KEY_MAX: usize = 4096;
const ASSIGNMENT_MAX: usize = 131071;
const VALUE_MAX: usize = 1 << 20;
/// The longest `EUID.EGID` and the longest `,UID.`: a pattern's keys may
/// take that much room besides the command's name.
const IDS_LONGEST: usize = 21;
const COMMAND_PREFIX_LONGEST: usize = 12;
/// The largest cdb file.
const FILE_MAX: u64 = u32::MAX as u64;
/// Inputs whose rules expand to more keys than this are not compiled.
const KEYS_CHECKED: usize = 1024;
/// The small line buffer of the third compilation.
const SMALL_BUFFER: usize = 64;

/// Who a rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Anyone,
    Uid(u32),
    Gid(u32),
    UidGid(u32, u32),
    Range(u32, u32),
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Deny,
    Set(Text, Text),
    Exec(Text),
}

/// A parsed rule line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub who: Who,
    /// The command part: uid and program name.
    pub command: Option<(u32, Text)>,
    pub instructions: Vec<Instruction>,
}

/// How an instruction is stored: `D`, `+NAME=VALUE` or `=PATH`, then a NUL.
fn encoded(i: &Instruction) -> Vec<u8> {
    match i {
        Instruction::Deny => b"D\0".to_vec(),
        Instruction::Set(name, text) => [&b"+"[..], &name.0, b"=", &text.0, b"\0"].concat(),
        Instruction::Exec(path) => [&b"="[..], &path.0, b"\0"].concat(),
    }
}

impl Rule {
    /// How many keys the rule is stored under.
    pub fn count(&self) -> u64 {
        match self.who {
            Who::Range(first, last) => u64::from(last) - u64::from(first) + 1,
            _ => 1,
        }
    }

    /// What every key ends with: `,UID.CMD`, or nothing.
    fn suffix(&self) -> Vec<u8> {
        self.command.as_ref().map_or(Vec::new(), |(uid, cmd)| [format!(",{uid}.").as_bytes(), &cmd.0].concat())
    }

    /// The keys, in order: the ids in canonical decimal, then the suffix.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let ids: Vec<String> = match self.who {
            Who::Anyone => vec![String::new()],
            Who::Uid(u) => vec![u.to_string()],
            Who::Gid(g) => vec![format!(".{g}")],
            Who::UidGid(u, g) => vec![format!("{u}.{g}")],
            Who::Range(first, last) => (first..=last).map(|u| u.to_string()).collect(),
        };
        let suffix = self.suffix();
        ids.into_iter().map(|i| [i.as_bytes(), &suffix].concat()).collect()
    }

    /// The encoded value: the instructions' records in order.
    pub fn value(&self) -> Vec<u8> {
        self.instructions.iter().flat_map(encoded).collect()
    }

    /// The length of the shortest key.
    fn shortest_key(&self) -> usize {
        match self.who {
            Who::Range(first, _) => first.to_string().len() + self.suffix().len(),
            _ => self.keys()[0].len(),
        }
    }
}

fn split_once(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&x| x == c)?;
    Some((&s[..i], &s[i + 1..]))
}

/// `XtextXrest`, X any byte: (text, rest).
fn quoted(s: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    let (&quote, s) = s.split_first().ok_or(ParseError::Syntax)?;
    split_once(s, quote).ok_or(ParseError::Syntax)
}

fn id(s: &[u8]) -> Result<u32, ParseError> {
    number(s).ok_or(ParseError::Syntax)
}

/// The address grammar: `A-B` (A <= B), empty, `EUID`, `.EGID`,
/// `EUID.EGID`; numbers are decimal digits, leading zeros allowed.
fn who(a: &[u8]) -> Result<Who, ParseError> {
    match (split_once(a, b'-'), split_once(a, b'.')) {
        (Some((first, last)), _) => {
            let (first, last) = (id(first)?, id(last)?);
            if first <= last {
                Ok(Who::Range(first, last))
            } else {
                Err(ParseError::Syntax)
            }
        }
        (None, None) if a.is_empty() => Ok(Who::Anyone),
        (None, None) => Ok(Who::Uid(id(a)?)),
        (None, Some((b"", g))) => Ok(Who::Gid(id(g)?)),
        (None, Some((u, g))) => Ok(Who::UidGid(id(u)?, id(g)?)),
    }
}

/// Parses a line as the rules module's documentation describes it.
/// Trailing blanks go; then an empty line or one starting with `#` is
/// nothing. A NUL anywhere is refused. `PATTERN:INSTRUCTIONS` at the first
/// colon; PATTERN is ADDRESS or `ADDRESS,UID.CMD` (at the first comma, CMD
/// non-empty, and short enough for the longest key it could make to fit).
/// INSTRUCTIONS: `allow` or `deny`, in exec syntax `allow=XpathX`, then
/// `,NAME=XvalueX` as many times as wanted (NAME up to the first `=`).
/// Refusals come left to right: the first thing wrong decides the reason.
pub fn reference_parse(line: &[u8], exec: bool) -> Result<Option<Rule>, ParseError> {
    let end = line.iter().rposition(|&c| c != b' ' && c != b'\t').map_or(0, |i| i + 1);
    let line = &line[..end];
    if line.first().is_none_or(|&c| c == b'#') {
        return Ok(None);
    }
    if line.contains(&0) {
        return Err(ParseError::Syntax);
    }
    let (pattern, mut rest) = split_once(line, b':').ok_or(ParseError::Syntax)?;
    let (address, command) = match split_once(pattern, b',') {
        None => (pattern, None),
        Some((address, command)) => {
            let (uid, cmd) = split_once(command, b'.').ok_or(ParseError::Syntax)?;
            if cmd.is_empty() {
                return Err(ParseError::Syntax);
            }
            let uid = id(uid)?;
            // No request names a program with a blank or a control character.
            if cmd.iter().any(|&b| b <= b' ' || b == 0x7f) {
                return Err(ParseError::Syntax);
            }
            (address, Some((uid, Text::from(cmd))))
        }
    };
    let who = who(address)?;
    if command.as_ref().is_some_and(|(_, cmd)| IDS_LONGEST + COMMAND_PREFIX_LONGEST + cmd.0.len() > RULES_KEY_MAX) {
        return Err(ParseError::Syntax);
    }
    let mut instructions = Vec::new();
    let mut size = 0;
    let mut add = |i: Instruction| {
        size += encoded(&i).len();
        instructions.push(i);
        if size > VALUE_MAX {
            Err(ParseError::RuleTooLong)
        } else {
            Ok(())
        }
    };
    if let Some(r) = rest.strip_prefix(b"deny") {
        add(Instruction::Deny)?;
        rest = r;
    } else if let Some(r) = rest.strip_prefix(b"allow=").filter(|_| exec) {
        let (path, r) = quoted(r)?;
        add(Instruction::Exec(path.into()))?;
        rest = r;
    } else {
        rest = rest.strip_prefix(b"allow").ok_or(ParseError::Syntax)?;
    }
    while !rest.is_empty() {
        let r = rest.strip_prefix(b",").ok_or(ParseError::Syntax)?;
        let (name, r) = split_once(r, b'=').ok_or(ParseError::Syntax)?;
        let (text, r) = quoted(r)?;
        if name.len() + 1 + text.len() > ASSIGNMENT_MAX {
            return Err(ParseError::AssignmentTooLong);
        }
        add(Instruction::Set(name.into(), text.into()))?;
        rest = r;
    }
    Ok(Some(Rule { who, command, instructions }))
}

/// The lines of a file: split at newlines, the last one needing none.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
    if data.is_empty() || data.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

/// Why a compilation stops: the reason and the line as the compiler
/// reports it.
pub type Refusal = (ParseError, Vec<u8>);

/// A cdb's records, in the order they are added.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Compiles a file through a line buffer of `buffer` bytes: a line that
/// does not fit is skipped if it starts with `#` and refused otherwise,
/// reported by its first `buffer` bytes. A line fits if it is shorter
/// than the buffer: that is what `Lines` does, although its documentation
/// ("a line longer than the buffer") and `RULES_LINE_MAX`'s ("longest rule
/// line") say that a line exactly as long as the buffer fits too. Other
/// lines are parsed; a rule adds one record per key, in order, with the
/// rule's value. A range whose records could not fit a cdb file (4 GiB,
/// with 16 bytes of hash table per record) is refused before any of them
/// is added. `None` when the rules expand to too many keys to check, or
/// when a range is so large that whether the compiler may refuse it
/// depends on how it bounds key lengths.
pub fn reference_compile(data: &[u8], exec: bool, buffer: usize) -> Option<(Result<(), Refusal>, Records)> {
    let mut records = Records::new();
    let mut size = cdb_model::HEADER as u64;
    for line in lines(data) {
        if line.len() >= buffer {
            if line[0] == b'#' {
                continue;
            }
            return Some((Err((ParseError::LineTooLong, line[..buffer].to_vec())), records));
        }
        let rule = match reference_parse(line, exec) {
            Err(e) => return Some((Err((e, line.to_vec())), records)),
            Ok(None) => continue,
            Ok(Some(rule)) => rule,
        };
        let value = rule.value();
        let room = FILE_MAX - size - 16 * records.len() as u64;
        let cost = |key: usize| rule.count() * (8 + key as u64 + value.len() as u64 + 16);
        if cost(rule.shortest_key()) > room {
            return Some((Err((ParseError::RangeTooLarge, line.to_vec())), records));
        }
        let longest_possible = IDS_LONGEST + rule.command.as_ref().map_or(0, |c| COMMAND_PREFIX_LONGEST + c.1 .0.len());
        if cost(longest_possible) > room || records.len() as u64 + rule.count() > KEYS_CHECKED as u64 {
            return None;
        }
        for key in rule.keys() {
            size += (8 + key.len() + value.len()) as u64;
            records.push((key, value.clone()));
        }
    }
    Some((Ok(()), records))
}

thread_local! {
    /// A rule's value, for `parse_line`: a megabyte, kept off the stack.
    static VALUE: RefCell<Box<Value>> = RefCell::new(Box::new(Value::new()));
    /// The compiler's line buffer, as big as the programs'.
    static LINE: RefCell<Vec<u8>> = RefCell::new(vec![0; rules::RULES_LINE_MAX]);
    /// A lookup buffer, as big as a server's.
    static RECORD: RefCell<Vec<u8>> = RefCell::new(vec![0; rules::RULES_RECORD_MAX]);
}

fn who_of(a: Address) -> Who {
    match a {
        Address::Anyone => Who::Anyone,
        Address::Uid(u) => Who::Uid(u),
        Address::Gid(g) => Who::Gid(g),
        Address::UidGid(u, g) => Who::UidGid(u, g),
        Address::Range(first, last) => Who::Range(first, last),
    }
}

fn check_line(line: &[u8], syntax: Syntax) {
    let expected = reference_parse(line, syntax == Syntax::Exec);
    VALUE.with(|v| {
        let value = &mut **v.borrow_mut();
        let got = rules::parse_line(line, syntax, value);
        let (pattern, rule) = match (got, &expected) {
            (Ok(Some(p)), Ok(Some(rule))) => (p, rule),
            (Ok(None), Ok(None)) => return,
            (Err(e), Err(x)) if e == *x => return,
            (got, _) => panic!("line {} ({syntax:?}): parse_line {got:?}, reference {expected:?}", show(line)),
        };
        let what = format!("line {} ({syntax:?})", show(line));
        assert_eq!(who_of(pattern.address), rule.who, "{what}: address");
        assert_eq!(pattern.command.map(|c| (c.uid, Text::from(c.cmd))), rule.command, "{what}: command");
        assert_eq!(pattern.address.count(), rule.count(), "{what}: count");
        assert_eq!(Text::from(&value[..]), Text(rule.value()), "{what}: value");
        let decoded: Vec<Instruction> = rules::records(value)
            .map(|r| match r {
                Ok(Record::Deny) => Instruction::Deny,
                Ok(Record::Set(a)) => {
                    assert_eq!(
                        Text::from(a.entry().to_bytes()),
                        Text([a.name(), b"=", a.value()].concat()),
                        "{what}: entry"
                    );
                    Instruction::Set(a.name().into(), a.value().into())
                }
                Ok(Record::Exec(path)) => Instruction::Exec(path.to_bytes().into()),
                Err(e) => panic!("{what}: the value does not decode: {e:?}"),
            })
            .collect();
        assert_eq!(decoded, rule.instructions, "{what}: decoded value");
        if rule.count() <= KEYS_CHECKED as u64 {
            let mut keys = Vec::new();
            let r = pattern.for_each_key::<()>(|k| {
                keys.push(k.to_vec());
                Ok(())
            });
            assert_eq!(r, Ok(()));
            assert_eq!(texts(&keys), texts(&rule.keys()), "{what}: keys");
        }
        // An error from the callback stops the keys at once.
        let mut calls = 0;
        assert_eq!(
            pattern.for_each_key(|_| {
                calls += 1;
                Err(())
            }),
            Err(()),
            "{what}: for_each_key's error"
        );
        assert_eq!(calls, 1, "{what}: keys after an error");
    });
}

/// The lookup keys for a client, in order (rules module doc): `U.G`, then
/// `U.Gn` for each supplementary group, `U`, `.G`, `.Gn` for each, the
/// empty ids, each followed by the suffix; with a suffix, the bare empty
/// key last. Keys needing an unknown id are left out.
fn lookup_keys(client: Client, suffix: &[u8]) -> Vec<Vec<u8>> {
    let gids: Vec<u32> = client.egid.into_iter().chain(client.groups.gids()).collect();
    let mut ids = Vec::new();
    if let Some(u) = client.euid {
        ids.extend(gids.iter().map(|g| format!("{u}.{g}")));
        ids.push(u.to_string());
    }
    ids.extend(gids.iter().map(|g| format!(".{g}")));
    ids.push(String::new());
    let mut keys: Vec<Vec<u8>> = ids.into_iter().map(|i| [i.as_bytes(), suffix].concat()).collect();
    if !suffix.is_empty() {
        keys.push(Vec::new());
    }
    keys
}

fn check_compile(data: &[u8], syntax: Syntax, buffer: usize) {
    let Some((expected, records)) = reference_compile(data, syntax == Syntax::Exec, buffer) else { return };
    let what = format!("compiling ({syntax:?}, {buffer}-byte lines)");
    let input = support::file_with(data);
    let out = support::empty_file();
    let refused = LINE.with(|b| {
        let mut b = b.borrow_mut();
        let mut lines = Lines::new(&mut b[..buffer]);
        let mut w = Writer::new(out.as_fd());
        let got = rules::compile(input.as_fd(), syntax, &mut lines, &mut w);
        match (got, &expected) {
            (Ok(()), Ok(())) => {
                w.finish().expect("finish");
                false
            }
            (Err(CompileError::Parse(e)), Err((x, line))) if e.error == *x => {
                assert_eq!(Text::from(lines.last()), Text(line.clone()), "{what}: the refused line");
                true
            }
            (got, _) => {
                panic!("{what}: compile {got:?}, reference {:?}", expected.as_ref().map_err(|(e, l)| (e, show(l))))
            }
        }
    });
    if refused {
        return;
    }
    let file = support::contents(&out);
    assert!(file == cdb_model::write(&records), "{what}: the file differs from the reference's");
    let reader = Reader::from_fd(support::dup(&out)).expect("open the compiled file");
    let mut first: HashMap<&[u8], &[u8]> = HashMap::new();
    for (k, v) in &records {
        first.entry(k).or_insert(v);
    }
    RECORD.with(|b| {
        let buf = &mut b.borrow_mut()[..];
        let step = records.len() / 256 + 1;
        for (k, _) in records.iter().step_by(step) {
            let found = reader.find(k, buf).expect("find").map(|r| Text::from(&buf[r]));
            assert_eq!(found, Some(Text::from(first[&k[..]])), "{what}: key {}", show(k));
        }
        // Clients made of the file's ids, and one that is in no rule.
        let (mut uids, mut gids) = (vec![None, Some(4_000_000_000)], vec![None, Some(4_000_000_000)]);
        let mut suffixes: Vec<Vec<u8>> = vec![Vec::new()];
        for line in lines(data) {
            let Ok(Some(rule)) = reference_parse(line, syntax == Syntax::Exec) else { continue };
            let (u, g) = match rule.who {
                Who::Uid(u) | Who::Range(u, _) => (Some(u), None),
                Who::Gid(g) => (None, Some(g)),
                Who::UidGid(u, g) => (Some(u), Some(g)),
                Who::Anyone => (None, None),
            };
            for (list, id) in [(&mut uids, u), (&mut gids, g)] {
                if id.is_some() && !list.contains(&id) && list.len() < 5 {
                    list.push(id);
                }
            }
            if rule.command.is_some() && !suffixes.contains(&rule.suffix()) && suffixes.len() < 3 {
                suffixes.push(rule.suffix());
            }
        }
        // Without supplementary groups (the original's lookups), and with
        // the file's gids as the client's supplementary groups (-S).
        // (4294967295 is no gid: a list leaves it out.)
        let listed: Vec<String> = gids.iter().flatten().filter(|&&g| g != u32::MAX).map(|g| g.to_string()).collect();
        let listed = listed.join(",");
        let lists = [uidgid::GidList::default(), uidgid::parse_gidlist(listed.as_bytes()).expect("a list")];
        for &euid in &uids {
            for (&egid, groups) in gids.iter().flat_map(|g| lists.iter().map(move |l| (g, *l))) {
                for suffix in &suffixes {
                    let client = Client { euid, egid, groups };
                    let expected = lookup_keys(client, suffix)
                        .into_iter()
                        .find_map(|k| first.get(&k[..]).map(|v| (Text(k.clone()), Text::from(*v))));
                    let mut key = rules::Key::new();
                    let got = rules::lookup(&reader, client, suffix, buf, &mut key);
                    let got = got.map(|f| f.map(|v| (Text::from(&key[..]), Text::from(&buf[v]))));
                    if suffix.len() + IDS_LONGEST > RULES_KEY_MAX {
                        assert_eq!(got, Err(CdbError::TooBig), "{what}: lookup {client:?} {}", show(suffix));
                    } else {
                        assert_eq!(got, Ok(expected), "{what}: lookup {client:?} {}", show(suffix));
                    }
                }
            }
        }
    });
}

pub fn check(data: &[u8]) {
    assert_eq!(
        (RULES_KEY_MAX, ASSIGNMENT_MAX, VALUE_MAX),
        (rules::RULES_KEY_MAX, rules::ASSIGNMENT_MAX, rules::VALUE_MAX)
    );
    for line in lines(data) {
        check_line(line, Syntax::Access);
        check_line(line, Syntax::Exec);
    }
    check_compile(data, Syntax::Access, rules::RULES_LINE_MAX);
    check_compile(data, Syntax::Exec, rules::RULES_LINE_MAX);
    check_compile(data, Syntax::Access, SMALL_BUFFER);
}
