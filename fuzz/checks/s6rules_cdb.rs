//! s6 access rules from a cdb: decoding the values
//! s6-accessrules-cdb-from-fs writes, and applying them, against a
//! reference written from s6rules.rs's description of the format. The
//! input is a control byte CTRL, then a value (no CTRL: an empty value).
//!
//! - `s6rules::decode` on the value gives what [`reference_decode`] gives:
//!   no rule, `D`, or `A` with its environment changes and script, whose
//!   ranges lie inside the value, where the format puts them.
//! - A rule made of the value's bytes (see [`described`]; `D` when CTRL
//!   bit 1 says so) and written by [`encode`] decodes to that rule.
//! - Both values, put in a cdb under `uid/default` (another record after
//!   them, so that a reader running past a value reads something), looked
//!   up through `Rules::check` with buffers one byte short of the record,
//!   just the record's size, one byte more and `s6rules::S6_RECORD_MAX`,
//!   each first filled with junk: the decision and the environment are
//!   what [`reference_check`] makes of the value alone, or the same error,
//!   with the same file or variable named. The environment starts with
//!   `A=old` and `B=old`; under CTRL bit 0, with so many more variables
//!   that two new names fill it.
//!
//! A decoder that reads beyond the value panics on the buffer that holds
//! just the record, or sees the junk or the next record on the others and
//! answers other than the reference.

use super::support::{self, show, texts, Text};
use rustix::fd::AsFd;
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::sync::OnceLock;
use ucspi_ipc::cdb::{CdbError, Reader, Writer};
use ucspi_ipc::client::{Client, Verdict};
use ucspi_ipc::env::Env;
use ucspi_ipc::runtime::CStrArray;
use ucspi_ipc::s6rules::{self, Reason, Rules, Value};
use ucspi_ipc::uidgid;

/// The most variables an environment holds (env.rs's `VARS_MAX`).
const VARS_MAX: usize = 2048;
/// The key the value is put under: the last one any client is looked up
/// under.
const KEY: &[u8] = b"uid/default";
/// Who is looked up, and who we are.
const CLIENT: Client = Client { euid: Some(1000), egid: Some(1000), groups: uidgid::GidList::EMPTY };
const OWN: (u32, u32) = (0, 0);
/// What fills the buffers, and the record after the value.
const JUNK: u8 = b'Z';

/// A rule as the format says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Deny,
    /// The environment changes, each without its NUL (`NAME=VALUE` sets,
    /// `NAME` unsets), and the script.
    Allow {
        env: Vec<Text>,
        exec: Text,
    },
}

/// The big-endian 16-bit number at the front of `v`, and what follows.
fn length(v: &[u8]) -> Option<(usize, &[u8])> {
    let (n, rest) = v.split_first_chunk::<2>()?;
    Some((usize::from(u16::from_be_bytes(*n)), rest))
}

/// The part of `len` bytes at the front of `v` (after its length), and
/// what follows.
fn part(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = length(v)?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// A value as s6rules.rs describes it: `D` (whatever follows: s6 reads the
/// first byte only), or `A`, a 16-bit big-endian length, the environment
/// changes, another length and the script, and nothing after. The changes
/// are entries each ending with NUL, each with a name (not empty, not
/// starting with `=`). None for anything else.
pub fn reference_decode(v: &[u8]) -> Option<Rule> {
    match v.split_first()? {
        (b'D', _) => Some(Rule::Deny),
        (b'A', rest) => {
            let (env, rest) = part(rest)?;
            let (exec, rest) = part(rest)?;
            if !rest.is_empty() {
                return None;
            }
            let entries = match env.split_last() {
                None => Vec::new(),
                Some((0, entries)) => entries.split(|&b| b == 0).map(Text::from).collect(),
                Some(_) => return None,
            };
            if entries.iter().any(|e| e.0.first().is_none_or(|&c| c == b'=')) {
                return None;
            }
            Some(Rule::Allow { env: entries, exec: exec.into() })
        }
        _ => None,
    }
}

/// The value for `rule`; None if a part is longer than a length says.
pub fn encode(rule: &Rule) -> Option<Vec<u8>> {
    let Rule::Allow { env, exec } = rule else { return Some(b"D".to_vec()) };
    let env: Vec<u8> = env.iter().flat_map(|e| e.0.iter().copied().chain([0])).collect();
    let mut v = b"A".to_vec();
    for p in [&env, &exec.0] {
        v.extend_from_slice(&u16::try_from(p.len()).ok()?.to_be_bytes());
        v.extend_from_slice(p);
    }
    Some(v)
}

/// A rule made of `bytes`: entries up to the first 0xFF, split at NULs
/// (those the format has no room for left out), and after it the script.
pub fn described(bytes: &[u8], deny: bool) -> Rule {
    if deny {
        return Rule::Deny;
    }
    let (env, exec) = match bytes.iter().position(|&b| b == 0xff) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[][..]),
    };
    let env = env.split(|&b| b == 0).filter(|e| e.first().is_some_and(|&c| c != b'=')).map(Text::from).collect();
    Rule::Allow { env, exec: exec.into() }
}

/// What a lookup comes to: allowed (with the script, if any) or denied,
/// and the environment after (its strings, in order); or why not, and the
/// file or variable named.
pub type Checked = Result<(Option<Option<Text>>, Vec<Cow<'static, [u8]>>), (Reason, Text)>;

/// The environment a lookup starts from: `A=old`, `B=old`, and when
/// `full` so many more that two new names fill it. Made once: thousands
/// of strings for every lookup would be most of the check's time.
fn start_env(full: bool) -> &'static [CString] {
    static ENVS: OnceLock<[Vec<CString>; 2]> = OnceLock::new();
    let envs = ENVS.get_or_init(|| {
        let small = vec![c"A=old".to_owned(), c"B=old".to_owned()];
        let fillers = (0..VARS_MAX - 4).map(|i| CString::new(format!("F{i}=1")).expect("no NUL"));
        let full = small.iter().cloned().chain(fillers).collect();
        [small, full]
    });
    &envs[usize::from(full)]
}

/// [`start_env`] as an envp, for `Env::inherit`.
fn start_envp(full: bool) -> CStrArray<'static> {
    thread_local! {
        static ENVPS: [CStrArray<'static>; 2] = [false, true].map(|full| {
            let mut pointers: Vec<*const c_char> = start_env(full).iter().map(|c| c.as_ptr()).collect();
            pointers.push(std::ptr::null());
            let pointers = pointers.leak();
            // SAFETY: a null-terminated array of pointers to NUL-terminated
            // strings, both static (the array leaked, the strings in
            // `start_env`'s static) and never changed.
            unsafe { CStrArray::from_ptr(std::ptr::NonNull::new(pointers.as_mut_ptr()).expect("non-null")) }
        });
    }
    ENVPS.with(|e| e[usize::from(full)])
}

fn name(entry: &[u8]) -> &[u8] {
    entry.split(|&c| c == b'=').next().unwrap_or(entry)
}

/// What looking the value up with a buffer of `size` bytes does to
/// `env`: the record (8 bytes, the key, the value) must fit the buffer,
/// and an allow's script one more byte; then a deny leaves the environment
/// alone, and an allow makes its changes in order (an entry replaces any
/// variable of its name, or removes it; a new one with the environment
/// full is refused, naming the variable), and runs its script up to its
/// first NUL, or none for an empty one. A value that is no rule is an
/// error, even if a deny.
pub fn reference_check(value: &[u8], size: usize, full: bool) -> Checked {
    let mut env: Vec<Cow<'static, [u8]>> = start_env(full).iter().map(|c| Cow::Borrowed(c.to_bytes())).collect();
    let too_big = Err((Reason::Cdb(CdbError::TooBig), Text::default()));
    let record = 8 + KEY.len() + value.len();
    if record > size {
        return too_big;
    }
    let (entries, exec) = match reference_decode(value) {
        None => return Err((Reason::Malformed, Text::default())),
        Some(Rule::Deny) => return Ok((None, env)),
        Some(Rule::Allow { env, exec }) => (env, exec),
    };
    if record == size {
        return too_big;
    }
    for e in entries {
        let n = name(&e.0);
        env.retain(|v| name(v) != n);
        if e.0.contains(&b'=') {
            if env.len() == VARS_MAX {
                return Err((Reason::Env(rustix::io::Errno::TOOBIG), Text::from(n)));
            }
            env.push(Cow::Owned(e.0));
        }
    }
    let script = (!exec.0.is_empty()).then(|| Text::from(exec.0.split(|&c| c == 0).next().unwrap_or(&[])));
    Ok((Some(script), env))
}

thread_local! {
    /// A lookup buffer, as big as a server's.
    static RECORD: RefCell<Vec<u8>> = RefCell::new(vec![0; s6rules::S6_RECORD_MAX]);
}

/// The rules in a cdb holding `value` under [`KEY`], and junk after it.
fn rules_with(value: &[u8]) -> Rules {
    let file = support::empty_file();
    let mut w = Writer::new(file.as_fd());
    w.add(KEY, value).expect("add");
    w.add(b"junk", &[JUNK; 600]).expect("add");
    w.finish().expect("finish");
    Rules::Cdb(Reader::from_fd(file).expect("open the cdb"))
}

/// Whether `Rules::check` with a buffer of `size` bytes does what
/// `expected` says; the environment is compared string by string, and
/// copied only to show where it differs.
fn check_lookup(rules: &Rules, size: usize, full: bool, expected: &Checked, value: &[u8]) {
    RECORD.with_borrow_mut(|buf| {
        let buf = &mut buf[..size];
        buf.fill(JUNK);
        let mut env = Env::new();
        env.inherit(start_envp(full)).expect("the environment to start from");
        let got = rules.check(CLIENT, OWN, buf, &mut env).map_err(|e| (e.reason, Text::from(&e.path[..])));
        let got = got.map(|decision| match decision {
            Verdict::Deny => None,
            Verdict::Allow(script) => Some(script.map(|s| Text::from(s.to_bytes()))),
        });
        let env = env.finish();
        let same = match (&got, expected) {
            (Ok(d), Ok((x, vars))) => d == x && env.iter().map(|c| c.to_bytes()).eq(vars.iter().map(|v| &v[..])),
            (Err(e), Err(x)) => e == x,
            _ => false,
        };
        if !same {
            let got = got.map(|d| (d, texts(&env.iter().map(|c| c.to_bytes()).collect::<Vec<_>>())));
            let expected = expected.as_ref().map(|(d, vars)| (d, texts(vars)));
            panic!("{}, buffer {size}: check {got:?}, reference {expected:?}", show(value));
        }
    })
}

/// `s6rules::decode`, as a [`Rule`], its ranges checked.
fn decoded(v: &[u8]) -> Option<Rule> {
    match s6rules::decode(v)? {
        Value::Deny => Some(Rule::Deny),
        Value::Allow { env, exec } => {
            let what = || format!("decode({}): {env:?}, {exec:?}", show(v));
            assert!(env.start == 3 && env.end + 2 == exec.start && exec.end == v.len(), "{}: the ranges", what());
            let entries = match v[env.clone()].split_last() {
                None => Vec::new(),
                Some((0, entries)) => entries.split(|&b| b == 0).map(Text::from).collect(),
                Some(_) => panic!("{}: the entries do not end with NUL", what()),
            };
            Some(Rule::Allow { env: entries, exec: v[exec].into() })
        }
    }
}

fn check_value(value: &[u8], full: bool) {
    let rules = rules_with(value);
    let record = 8 + KEY.len() + value.len();
    for size in [record - 1, record, record + 1, s6rules::S6_RECORD_MAX] {
        let size = size.min(s6rules::S6_RECORD_MAX);
        check_lookup(&rules, size, full, &reference_check(value, size, full), value);
    }
}

pub fn check(data: &[u8]) {
    assert_eq!(VARS_MAX, ucspi_ipc::env::VARS_MAX);
    let (ctrl, value) = data.split_first().map_or((0, &[][..]), |(c, v)| (*c, v));
    let full = ctrl & 1 != 0;
    assert_eq!(decoded(value), reference_decode(value), "decode({})", show(value));
    check_value(value, full);
    let rule = described(value, ctrl & 2 != 0);
    let Some(encoded) = encode(&rule) else { return };
    assert_eq!(decoded(&encoded), Some(rule), "decode({})", show(&encoded));
    check_value(&encoded, full);
}
