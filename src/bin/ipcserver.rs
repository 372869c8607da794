//! ipcserver [ -qQv ] [ -1 ] [ -dD ] [ -pP ] [ -c limit ] [ -C locallimit ]
//!   [ -x rules.cdb ] [ -X ] [ -B banner ] [ -l localname ] [ -b backlog ]
//!   [ -a perms ] [ -g gid ] [ -u uid ] [ -G gidlist ] [ -U ] PATH prog...
//!
//! The ucspi-ipc command line as a front end: it checks the options, then
//! executes into the chain
//!   ipcserver-socketbinder PATH [ipcapplyuidgid] ipcserverd [ipcserver-access] prog...
//! leaving out ipcapplyuidgid when no privilege change is asked and
//! ipcserver-access when none of -x -B -l is given. The siblings are taken
//! from the directory of this executable, not from PATH.
#![no_std]
#![no_main]

use arrayvec::ArrayVec;
use core::ffi::CStr;
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::strvec::StrVec;
use ucspi_ipc::{args::Getopt, log, num, uidgid};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"[ -qQv ] [ -1 ] [ -dD ] [ -pP ] [ -c limit ] [ -C locallimit ] [ -x rules.cdb ] [ -X ] \
[ -B banner ] [ -l localname ] [ -b backlog ] [ -a perms ] [ -g gid ] [ -u uid ] [ -G gidlist ] [ -U ] path prog...";

/// The options, as the strings to pass on (checked, not converted).
#[derive(Default)]
struct Options {
    verbosity: u8,
    ready: bool,
    keep_existing: bool,
    no_peercred: bool,
    maxconn: Option<&'static CStr>,
    localmax: Option<&'static CStr>,
    rules: Option<&'static CStr>,
    rules_optional: bool,
    banner: Option<&'static CStr>,
    localname: Option<&'static CStr>,
    backlog: Option<&'static CStr>,
    perms: Option<&'static CStr>,
    gid: Option<&'static CStr>,
    uid: Option<&'static CStr>,
    gidlist: Option<&'static CStr>,
    from_env: bool,
}

fn main(start: Start) -> ! {
    log::set_name(b"ipcserver");
    let mut o = Options { verbosity: 1, ..Options::default() };
    let mut opts = Getopt::new(start.argv, b"qQv1dDpPc:C:x:XB:l:b:a:g:u:G:UoO");
    for opt in opts.by_ref() {
        let arg = Some(opt.arg);
        match opt.letter {
            b'q' => o.verbosity = 0,
            b'Q' => o.verbosity = 1,
            b'v' => o.verbosity = 2,
            b'1' => o.ready = true,
            b'd' => o.keep_existing = false,
            b'D' => o.keep_existing = true,
            b'p' => o.no_peercred = false,
            b'P' => o.no_peercred = true,
            b'c' => o.maxconn = checked(arg, connection_limit),
            b'C' => o.localmax = checked(arg, connection_limit),
            b'x' => o.rules = arg,
            b'X' => o.rules_optional = true,
            b'B' => o.banner = arg,
            b'l' => o.localname = arg,
            b'b' => o.backlog = checked(arg, num::parse_u32),
            b'a' => o.perms = checked(arg, num::parse_octal),
            b'g' => o.gid = checked(arg, num::parse_u32),
            b'u' => o.uid = checked(arg, num::parse_u32),
            b'G' => o.gidlist = checked(arg, uidgid::parse_gidlist),
            b'U' => o.from_env = true,
            // ucspi-ipc compatibility: accepted, without effect.
            b'o' | b'O' => {}
            _ => log::usage(USAGE),
        }
    }
    log::set_verbosity(o.verbosity);
    if opts.operand_count() < 2 {
        log::usage(USAGE);
    }
    let mut dir = ArrayVec::<u8, 4096>::new();
    own_directory(start, &mut dir);
    let argv = StrVec::take();
    if let Err(e) = build_chain(&o, &dir, opts.operands(), argv) {
        log::fatal_sys(e, &[b"build the command line"]);
    }
    let argv = argv.finish();
    let Some(first) = argv.iter().next() else { log::usage(USAGE) };
    let err = runtime::execve(first, argv, start.envp);
    log::fatal_sys(err, &[b"run ", first.to_bytes()])
}

/// A limit ipcserverd accepts: 1 to 16384 (the size of its child table),
/// checked here so that nothing is bound for a command line that will fail.
fn connection_limit(s: &[u8]) -> Option<u32> {
    num::parse_u32(s).filter(|n| (1..=16384).contains(n))
}

/// `arg` if `valid` accepts it, else a usage error.
fn checked<T>(arg: Option<&'static CStr>, valid: impl Fn(&[u8]) -> Option<T>) -> Option<&'static CStr> {
    match arg {
        Some(a) if valid(a.to_bytes()).is_some() => arg,
        _ => log::usage(USAGE),
    }
}

/// The directory of our own executable: /proc/self/exe, or else argv[0]
/// when it has a slash (for systems without /proc).
fn own_directory(start: Start, dir: &mut ArrayVec<u8, 4096>) {
    let mut buf = [0u8; 4096];
    let exe: &[u8] = match rustix::fs::readlinkat_raw(rustix::fs::CWD, c"/proc/self/exe", &mut buf[..]) {
        Ok(n) if n > 0 && n < buf.len() => &buf[..n],
        _ => start.argv.iter().next().map_or(&b""[..], |a| a.to_bytes()),
    };
    match memchr::memrchr(b'/', exe) {
        Some(0) => {
            let _ = dir.try_push(b'/');
        }
        Some(i) => {
            let _ = dir.try_extend_from_slice(&exe[..i]);
        }
        None => log::fatal(log::EXIT_TEMP, &[b"unable to find the directory of ipcserver"]),
    }
}

fn build_chain(
    o: &Options,
    dir: &[u8],
    operands: ucspi_ipc::runtime::CStrArray,
    argv: &mut StrVec,
) -> Result<(), rustix::io::Errno> {
    let verbosity: &'static CStr = match o.verbosity {
        0 => c"-v0",
        1 => c"-v1",
        _ => c"-v2",
    };
    let program = |argv: &mut StrVec, name: &[u8]| argv.push_concat(&[dir, b"/", name]);
    let flag = |argv: &mut StrVec, on: bool, f: &'static CStr| if on { argv.push_static(f) } else { Ok(()) };
    let option = |argv: &mut StrVec, value: Option<&'static CStr>, f: &'static CStr| match value {
        Some(v) => argv.push_static(f).and_then(|()| argv.push_static(v)),
        None => Ok(()),
    };
    let Some(path) = operands.iter().next() else { log::usage(USAGE) };

    program(argv, b"ipcserver-socketbinder")?;
    flag(argv, o.keep_existing, c"-D")?;
    option(argv, o.backlog, c"-b")?;
    option(argv, o.perms, c"-a")?;
    argv.push_static(c"--")?;
    argv.push_static(path)?;

    if o.uid.is_some() || o.gid.is_some() || o.gidlist.is_some() || o.from_env {
        program(argv, b"ipcapplyuidgid")?;
        // -U first, so that explicit -u/-g/-G override the environment.
        flag(argv, o.from_env, c"-U")?;
        option(argv, o.uid, c"-u")?;
        option(argv, o.gid, c"-g")?;
        option(argv, o.gidlist, c"-G")?;
        argv.push_static(c"--")?;
    }

    program(argv, b"ipcserverd")?;
    argv.push_static(verbosity)?;
    flag(argv, o.ready, c"-1")?;
    flag(argv, o.no_peercred, c"-P")?;
    option(argv, o.maxconn, c"-c")?;
    option(argv, o.localmax, c"-C")?;
    argv.push_static(c"--")?;

    if o.rules.is_some() || o.banner.is_some() || o.localname.is_some() {
        program(argv, b"ipcserver-access")?;
        argv.push_static(verbosity)?;
        option(argv, o.rules, c"-x")?;
        flag(argv, o.rules_optional, c"-X")?;
        option(argv, o.banner, c"-B")?;
        option(argv, o.localname, c"-l")?;
        argv.push_static(c"--")?;
    }
    argv.push_all(operands.skip(1))
}
