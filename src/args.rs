//! Command-line options, getopt style (behaviour.md §0): bundled flags
//! (`-Pp`), attached or separate option arguments (`-c2`, `-c 2`), `--`
//! ends the options, so does the first non-option (a lone `-` is one).
//!
//! It only splits the command line; what an option means, and whether a
//! later one overrides an earlier one, is up to the program.

use crate::runtime::CStrArray;
use core::ffi::{c_char, CStr};

/// One parsed option.
pub struct Opt {
    /// The option letter; `b'?'` for an unknown option or a missing argument.
    pub letter: u8,
    /// The option's argument; empty for flags.
    pub arg: &'static CStr,
}

impl Opt {
    pub fn arg_bytes(&self) -> &'static [u8] {
        self.arg.to_bytes()
    }
}

/// Iterates over the options of argv (argv[0] is skipped).
pub struct Getopt {
    argv: CStrArray,
    args: &'static [*const c_char],
    spec: &'static [u8],
    index: usize,
    pos: usize,
}

impl Getopt {
    /// `spec` lists the option letters; a letter followed by `:` takes an
    /// argument.
    pub fn new(argv: CStrArray, spec: &'static [u8]) -> Getopt {
        Getopt { argv, args: argv.as_slice(), spec, index: 1, pos: 0 }
    }

    fn arg(&self, i: usize) -> &'static CStr {
        // SAFETY: argv elements are NUL-terminated strings for the whole run.
        unsafe { CStr::from_ptr(self.args[i]) }
    }

    /// The operands: everything after the options.
    pub fn operands(&self) -> CStrArray {
        self.argv.skip(self.index.min(self.args.len()))
    }

    /// How many operands there are.
    pub fn operand_count(&self) -> usize {
        self.args.len().saturating_sub(self.index)
    }
}

impl Iterator for Getopt {
    type Item = Opt;

    fn next(&mut self) -> Option<Opt> {
        if self.pos == 0 {
            if self.index >= self.args.len() {
                return None;
            }
            let a = self.arg(self.index).to_bytes();
            if a == b"--" {
                self.index += 1;
                return None;
            }
            if a.len() < 2 || a[0] != b'-' {
                return None;
            }
            self.pos = 1;
        }
        let word = self.arg(self.index);
        let bytes = word.to_bytes();
        let letter = bytes[self.pos];
        self.pos += 1;
        let at_end = self.pos >= bytes.len();
        let bad = Opt { letter: b'?', arg: c"" };
        let Some(i) = self.spec.iter().position(|&c| c == letter && c != b':') else {
            if at_end {
                self.index += 1;
                self.pos = 0;
            }
            return Some(bad);
        };
        if self.spec.get(i + 1) != Some(&b':') {
            if at_end {
                self.index += 1;
                self.pos = 0;
            }
            return Some(Opt { letter, arg: c"" });
        }
        // The option takes an argument: the rest of this word, or the next.
        let start = self.pos;
        self.index += 1;
        self.pos = 0;
        if !at_end {
            // SAFETY: a suffix of a NUL-terminated string is NUL-terminated.
            let rest = unsafe { CStr::from_ptr(word.as_ptr().add(start)) };
            return Some(Opt { letter, arg: rest });
        }
        if self.index >= self.args.len() {
            return Some(bad);
        }
        let arg = self.arg(self.index);
        self.index += 1;
        Some(Opt { letter, arg })
    }
}

/// The operands of a program that takes no options and exactly `N`
/// operands (`--` is allowed first); anything else is a usage error.
pub fn exact_operands<const N: usize>(argv: CStrArray, usage: &[u8]) -> [&'static CStr; N] {
    let mut opts = Getopt::new(argv, b"");
    if opts.next().is_some() || opts.operand_count() != N {
        crate::log::usage(usage);
    }
    let mut it = opts.operands().iter();
    core::array::from_fn(|_| it.next().unwrap_or(c""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn run(words: &[&str], spec: &'static [u8]) -> (Vec<(char, String)>, Vec<String>) {
        let owned: Vec<CString> = words.iter().map(|w| CString::new(*w).unwrap()).collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(core::ptr::null());
        let owned = Box::leak(Box::new(owned));
        let ptrs = Box::leak(ptrs.into_boxed_slice());
        let _ = owned;
        // SAFETY: leaked, null-terminated array of leaked C strings.
        let argv = unsafe { CStrArray::from_ptr(ptrs.as_ptr()) };
        let mut g = Getopt::new(argv, spec);
        let opts = g.by_ref().map(|o| (o.letter as char, o.arg.to_str().unwrap().to_string())).collect();
        let rest = g.operands().iter().map(|c| c.to_str().unwrap().to_string()).collect();
        (opts, rest)
    }

    #[test]
    fn bundles_attached_and_separate_arguments() {
        let (o, r) = run(&["p", "-Pp", "-c2", "-C", "3", "-Xxrules.cdb", "path", "-v"], b"PpXc:C:x:v");
        assert_eq!(
            o,
            vec![
                ('P', "".into()),
                ('p', "".into()),
                ('c', "2".into()),
                ('C', "3".into()),
                ('X', "".into()),
                ('x', "rules.cdb".into())
            ]
        );
        assert_eq!(r, vec!["path", "-v"]);
    }

    #[test]
    fn double_dash_and_lone_dash_end_options() {
        let (o, r) = run(&["p", "-v", "--", "-v"], b"v");
        assert_eq!(o.len(), 1);
        assert_eq!(r, vec!["-v"]);
        let (o, r) = run(&["p", "-", "x"], b"v");
        assert!(o.is_empty());
        assert_eq!(r, vec!["-", "x"]);
    }

    #[test]
    fn unknown_option_and_missing_argument() {
        let (o, _) = run(&["p", "-z"], b"v");
        assert_eq!(o[0].0, '?');
        let (o, r) = run(&["p", "-c"], b"c:");
        assert_eq!(o[0].0, '?');
        assert!(r.is_empty());
        let (o, _) = run(&["p", "-:"], b"c:");
        assert_eq!(o[0].0, '?');
    }
}
