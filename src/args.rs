//! Command-line options, getopt style (behaviour.md §0): bundled flags
//! (`-Pp`), attached or separate option arguments (`-c2`, `-c 2`), `--`
//! ends the options, so does the first non-option (a lone `-` is one).
//!
//! Errors are reported as getopt and the original ucspi-ipc report them,
//! then the usage line, exit 100: `NAME: illegal option -- X`, `NAME:
//! option requires an argument -- X`, and for a value that does not parse
//! `NAME: illegal value for option -X: VALUE (what was expected)`.
//!
//! It only splits the command line and checks values; what an option
//! means, and whether a later one overrides an earlier one, is up to the
//! program.

use crate::log;
use crate::num;
use crate::runtime::CStrArray;
use arrayvec::ArrayVec;
use core::ffi::CStr;

/// Room for what [`Opt::number`] says it expected: `a number from MIN to
/// MAX`, two u32s (asserted to fit).
const EXPECTED_RANGE_MAX: usize = 64;
const _: () = assert!(EXPECTED_RANGE_MAX >= "a number from  to ".len() + 2 * num::U32_DIGITS);

/// One parsed option.
pub struct Opt<'a> {
    /// The option letter.
    pub letter: u8,
    /// The option's argument; empty for flags.
    pub arg: &'a CStr,
}

impl<'a> Opt<'a> {
    /// The argument's bytes.
    pub fn arg_bytes(&self) -> &'a [u8] {
        self.arg.to_bytes()
    }

    /// The argument as `parse` reads it; if it cannot, an option error
    /// saying what was `expected`.
    pub fn value<T>(&self, parse: impl Fn(&'a [u8]) -> Option<T>, expected: &[u8]) -> T {
        parse(self.arg_bytes()).unwrap_or_else(|| {
            log::option_error(&[
                b"illegal value for option -",
                &[self.letter],
                b": ",
                self.arg_bytes(),
                b" (",
                expected,
                b")",
            ])
        })
    }

    /// The argument as a decimal number from `min` to `max`, or an option
    /// error naming the range.
    pub fn number(&self, min: u32, max: u32) -> u32 {
        match num::parse_u32(self.arg_bytes()).filter(|n| (min..=max).contains(n)) {
            Some(n) => n,
            None => {
                let (mut lo, mut hi) = ([0; num::U64_DIGITS], [0; num::U64_DIGITS]);
                let lo = num::fmt_u64(min as u64, &mut lo);
                let hi = num::fmt_u64(max as u64, &mut hi);
                let mut expected = ArrayVec::<u8, EXPECTED_RANGE_MAX>::new();
                for piece in [&b"a number from "[..], lo, b" to ", hi] {
                    crate::bounded::append(&mut expected, piece);
                }
                self.value(|_| None::<u32>, &expected)
            }
        }
    }
}

/// An option [`Getopt::next_checked`] cannot accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptError {
    /// A letter not in the spec.
    Unknown(u8),
    /// A letter that takes an argument, at the end of the command line.
    MissingArgument(u8),
}

impl OptError {
    /// Reports the error as getopt does, then the usage line; exit 100.
    pub fn die(self) -> ! {
        match self {
            OptError::Unknown(letter) => log::option_error(&[b"illegal option -- ", &[letter]]),
            OptError::MissingArgument(letter) => log::option_error(&[b"option requires an argument -- ", &[letter]]),
        }
    }
}

/// Iterates over the options of argv (argv[0] is skipped). As an
/// iterator, an unknown option or a missing argument is reported and ends
/// the program (100); [`Getopt::next_checked`] returns them instead.
pub struct Getopt<'a> {
    argv: CStrArray<'a>,
    count: usize,
    spec: &'static [u8],
    index: usize,
    pos: usize,
}

impl<'a> Getopt<'a> {
    /// `spec` lists the option letters; a letter followed by `:` takes an
    /// argument.
    pub fn new(argv: CStrArray<'a>, spec: &'static [u8]) -> Getopt<'a> {
        Getopt { argv, count: argv.len(), spec, index: 1, pos: 0 }
    }

    fn arg(&self, i: usize) -> &'a CStr {
        // In bounds: callers check against `count`.
        self.argv.iter().nth(i).unwrap_or(c"")
    }

    /// The operands: everything after the options.
    pub fn operands(&self) -> CStrArray<'a> {
        self.argv.skip(self.index.min(self.count))
    }

    /// How many operands there are.
    pub fn operand_count(&self) -> usize {
        self.count.saturating_sub(self.index)
    }
}

impl<'a> Iterator for Getopt<'a> {
    type Item = Opt<'a>;

    fn next(&mut self) -> Option<Opt<'a>> {
        self.next_checked().map(|o| o.unwrap_or_else(|e| e.die()))
    }
}

impl<'a> Getopt<'a> {
    /// The next option, or why it is not one; `None` when the options end.
    pub fn next_checked(&mut self) -> Option<Result<Opt<'a>, OptError>> {
        if self.pos == 0 {
            if self.index >= self.count {
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
        let Some(i) = self.spec.iter().position(|&c| c == letter && c != b':') else {
            if at_end {
                self.index += 1;
                self.pos = 0;
            }
            return Some(Err(OptError::Unknown(letter)));
        };
        if self.spec.get(i + 1) != Some(&b':') {
            if at_end {
                self.index += 1;
                self.pos = 0;
            }
            return Some(Ok(Opt { letter, arg: c"" }));
        }
        // The option takes an argument: the rest of this word, or the next.
        let start = self.pos;
        self.index += 1;
        self.pos = 0;
        if !at_end {
            let rest = crate::runtime::cstr_with_nul(&word.to_bytes_with_nul()[start..]).unwrap_or(c"");
            return Some(Ok(Opt { letter, arg: rest }));
        }
        if self.index >= self.count {
            return Some(Err(OptError::MissingArgument(letter)));
        }
        let arg = self.arg(self.index);
        self.index += 1;
        Some(Ok(Opt { letter, arg }))
    }
}

/// Reads the options of a program whose only option is one flag (`spec`
/// is that letter, or empty): whether it was given, and the rest.
fn flag<'a>(argv: CStrArray<'a>, spec: &'static [u8]) -> (bool, Getopt<'a>) {
    let mut opts = Getopt::new(argv, spec);
    (opts.by_ref().count() > 0, opts)
}

/// The options of a program whose only option is one flag (`spec` is that
/// letter): whether it was given, and the operands, at least `min` of them
/// (else a usage error).
pub fn flag_and_operands<'a>(argv: CStrArray<'a>, spec: &'static [u8], min: usize) -> (bool, CStrArray<'a>) {
    let (flag, opts) = flag(argv, spec);
    if opts.operand_count() < min {
        log::usage();
    }
    (flag, opts.operands())
}

/// The operands of a program that takes no options and exactly `N`
/// operands (`--` is allowed first); anything else is a usage error.
pub fn exact_operands<const N: usize>(argv: CStrArray<'_>) -> [&CStr; N] {
    flag_and_exact_operands(argv, b"").1
}

/// The options of a program whose only option is one flag (`spec` is that
/// letter, or empty for none): whether it was given, and exactly `N`
/// operands (else a usage error).
pub fn flag_and_exact_operands<'a, const N: usize>(argv: CStrArray<'a>, spec: &'static [u8]) -> (bool, [&'a CStr; N]) {
    let (flag, opts) = flag(argv, spec);
    if opts.operand_count() != N {
        log::usage();
    }
    let mut it = opts.operands().iter();
    (flag, core::array::from_fn(|_| it.next().unwrap_or(c"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> CStrArray<'static> {
        crate::runtime::leaked_array(words)
    }

    fn run(words: &[&str], spec: &'static [u8]) -> (Vec<(char, String)>, Vec<String>) {
        let mut g = Getopt::new(argv(words), spec);
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
    fn errors_are_returned_by_next_checked() {
        let mut g = Getopt::new(argv(&["p", "-vz", "-c"]), b"vc:");
        assert_eq!(g.next_checked().map(|o| o.map(|o| o.letter)), Some(Ok(b'v')));
        assert_eq!(g.next_checked().map(|o| o.map(|o| o.letter)), Some(Err(OptError::Unknown(b'z'))));
        assert_eq!(g.next_checked().map(|o| o.map(|o| o.letter)), Some(Err(OptError::MissingArgument(b'c'))));
        assert_eq!(g.operand_count(), 0);
    }

    #[test]
    fn double_dash_and_lone_dash_end_options() {
        let (o, r) = run(&["p", "-v", "--", "-v"], b"v");
        assert_eq!(o.len(), 1);
        assert_eq!(r, vec!["-v"]);
        let (o, r) = run(&["p", "-", "x"], b"v");
        assert!(o.is_empty());
        assert_eq!(r, vec!["-", "x"]);
        let (o, r) = run(&["p"], b"v");
        assert!(o.is_empty() && r.is_empty());
    }
}
