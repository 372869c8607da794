//! The option parser and the number parsers against references. The input
//! is split at NUL bytes: the first piece is the option spec, the others
//! are the command line after argv[0]. `Getopt::next_checked`, run to the
//! end, must give the options (and errors) of [`reference_getopt`], then
//! the same operands; every piece and every option argument must parse
//! (or not) as the references of `parse_u32`, `parse_octal`, `parse_id`
//! and `parse_gidlist` say.

use super::support::{show, texts, Text};
use std::ffi::{c_char, CString};
use ucspi_ipc::args::{Getopt, OptError};
use ucspi_ipc::runtime::CStrArray;
use ucspi_ipc::{num, uidgid};

/// An option, or an error, as the reference sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A letter from the spec, with its argument (empty for a flag).
    Opt(char, Text),
    /// A letter not in the spec.
    Unknown(char),
    /// A letter that takes an argument, last on the command line.
    Missing(char),
}

/// POSIX getopt, as args.rs describes it: words after argv[0] are option
/// words while they start with `-` and have more after it; `--` ends them
/// and is dropped; a letter followed by `:` in the spec takes the rest of
/// its word, or else the next word, as its argument (`:` itself is never a
/// letter); an unknown letter is reported and parsing goes on. Returns
/// the items and the index of the first operand.
pub fn reference_getopt(words: &[Vec<u8>], spec: &[u8]) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        if w == b"--" {
            i += 1;
            break;
        }
        if w.len() < 2 || w[0] != b'-' {
            break;
        }
        let mut j = 1;
        while j < w.len() {
            let letter = w[j];
            j += 1;
            let place = if letter == b':' { None } else { spec.iter().position(|&c| c == letter) };
            match place {
                None => items.push(Item::Unknown(letter.into())),
                Some(p) if spec.get(p + 1) != Some(&b':') => items.push(Item::Opt(letter.into(), Text::default())),
                Some(_) if j < w.len() => {
                    items.push(Item::Opt(letter.into(), w[j..].into()));
                    break;
                }
                Some(_) if i + 1 < words.len() => {
                    i += 1;
                    items.push(Item::Opt(letter.into(), Text(words[i].clone())));
                    break;
                }
                Some(_) => {
                    items.push(Item::Missing(letter.into()));
                    break;
                }
            }
        }
        i += 1;
    }
    (items, i.min(words.len()))
}

/// Digits only (at least one), no sign, no blanks, no overflow; leading
/// zeros allowed.
pub fn reference_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<u32>().ok()
}

/// The same in octal.
pub fn reference_octal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(s).ok()?, 8).ok()
}

/// A uid or gid: a number that is not 4294967295, `(uid_t)-1`.
pub fn reference_id(s: &[u8]) -> Option<u32> {
    reference_u32(s).filter(|&n| n != u32::MAX)
}

/// Comma-separated ids, at most 1024; the empty string is the empty list.
pub fn reference_gidlist(s: &[u8]) -> Option<Vec<u32>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    let list = s.split(|&c| c == b',').map(reference_id).collect::<Option<Vec<u32>>>()?;
    (list.len() <= 1024).then_some(list)
}

fn check_numbers(s: &[u8]) {
    assert_eq!(num::parse_u32(s), reference_u32(s), "parse_u32 {}", show(s));
    assert_eq!(num::parse_octal(s), reference_octal(s), "parse_octal {}", show(s));
    assert_eq!(uidgid::parse_id(s), reference_id(s), "parse_id {}", show(s));
    let mut buf = [rustix::process::Gid::ROOT; uidgid::GIDLIST_MAX];
    let list = uidgid::read_gidlist(s, &mut buf).map(|n| buf[..n].iter().map(|g| g.as_raw()).collect::<Vec<u32>>());
    assert_eq!(list, reference_gidlist(s), "parse_gidlist {}", show(s));
}

/// Runs `Getopt` over `words` (argv[0] included): its items, its operands
/// and its operand count.
fn getopt(words: &[Vec<u8>], spec: &[u8]) -> (Vec<Item>, Vec<Vec<u8>>, usize) {
    let owned: Vec<CString> = words.iter().map(|w| CString::new(w.clone()).expect("no NUL in a word")).collect();
    let mut pointers: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    pointers.push(std::ptr::null());
    // SAFETY: a null-terminated array of pointers to NUL-terminated
    // strings; `pointers` and `owned` outlive every use of the array, all
    // of which is in this function.
    let argv = unsafe { CStrArray::from_ptr(std::ptr::NonNull::new(pointers.as_mut_ptr()).expect("non-null")) };
    // SAFETY: `Getopt::new` wants a static spec; `spec` outlives the
    // parser, which is dropped at the end of this function, and the items
    // copy what they keep (an option's argument borrows argv, not spec).
    let spec: &'static [u8] = unsafe { std::slice::from_raw_parts(spec.as_ptr(), spec.len()) };
    let mut g = Getopt::new(argv, spec);
    let mut items = Vec::new();
    // Each call moves on by a letter at least: more calls than bytes means
    // the parser is stuck.
    let limit = words.iter().map(|w| w.len() + 1).sum::<usize>() + 1;
    while let Some(item) = g.next_checked() {
        items.push(match item {
            Ok(o) => Item::Opt(o.letter.into(), o.arg_bytes().into()),
            Err(OptError::Unknown(c)) => Item::Unknown(c.into()),
            Err(OptError::MissingArgument(c)) => Item::Missing(c.into()),
        });
        assert!(items.len() <= limit, "next_checked does not end: {items:?}");
    }
    let operands = g.operands().iter().map(|c| c.to_bytes().to_vec()).collect();
    (items, operands, g.operand_count())
}

pub fn check(data: &[u8]) {
    let mut pieces = data.split(|&c| c == 0);
    let spec = pieces.next().unwrap_or(b"");
    let mut words = vec![b"prog".to_vec()];
    words.extend(pieces.map(<[u8]>::to_vec));
    let (items, operands, count) = getopt(&words, spec);
    let (expected, first) = reference_getopt(&words, spec);
    let what = || format!("{:?} with spec {}", texts(&words), show(spec));
    assert_eq!(items, expected, "options of {}", what());
    assert_eq!(texts(&operands), texts(&words[first..]), "operands of {}", what());
    assert_eq!(count, words.len() - first, "operand count of {}", what());
    check_numbers(spec);
    for w in &words[1..] {
        check_numbers(w);
    }
    for item in &items {
        if let Item::Opt(_, arg) = item {
            check_numbers(&arg.0);
        }
    }
}
