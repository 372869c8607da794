//! ipcserver [ -1UXShHoOdDqQvpP ] [ -c limit ] [ -C locallimit ] [ -x rules.cdb ]
//!   [ -B banner ] [ -g gid ] [ -u uid ] [ -G gidlist ] [ -b backlog ] [ -a perms ]
//!   [ -l localname ] PATH prog...
//!
//! The ucspi-ipc command line as a front end: it checks every option (and
//! resolves the privilege drop, user database included) before anything is
//! bound, then executes into the chain
//!   ipcserver-socketbinder PATH [ipcapplyuidgid] ipcserverd [ipcserver-access] prog...
//! leaving out ipcapplyuidgid when no privilege change is asked and
//! ipcserver-access when none of -x -B -l is given. Every link is run with
//! `-N ipcserver`, so that the chain logs as the original does, and with the
//! verbosity asked for. The siblings are taken from the directory of this
//! executable (found through /proc, or else the kernel's AT_EXECFN), not
//! from PATH.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use core::ffi::CStr;
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use ucspi_ipc::cdb::{CdbError, Reader};
use ucspi_ipc::runtime::{self, CStrArray, Start};
use ucspi_ipc::server_options::{ConnectionOptions, Number, ServerOptions};
use ucspi_ipc::strvec::StrVec;
use ucspi_ipc::uidgid::Target;
use ucspi_ipc::{args::Getopt, exec, log, num, socket};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(
        c"ipcserver",
        c"[ -1UXShHoOdDqQvpP ] [ -c limit ] [ -C locallimit ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] \
[ -G gidlist ] [ -b backlog ] [ -a perms ] [ -l localname ] path program",
    );
    // Numbers are checked here (so that nothing is bound for a command
    // line that will fail) and passed on as written.
    let mut o = ServerOptions::default();
    let mut opts = Getopt::new(start.argv, b"1UXShHoOdDqQvpPc:C:x:B:g:u:G:b:a:l:");
    for opt in opts.by_ref() {
        if !o.read(&opt, start.envp) {
            log::usage();
        }
    }
    log::set_verbosity(o.connection.verbosity);
    // Once the whole command line (and so -q) is read: the privilege
    // drop, resolved in command-line order.
    let mut target = core::mem::take(o.ids.target());
    if opts.operand_count() < 2 {
        log::usage();
    }
    socket::server_path(opts.operands(), o.file_option);
    // Before anything is bound: a uid without a gid needs the user
    // database, and a change of ids needs root.
    target.complete().unwrap_or_else(|e| e.die());
    target.refuse_without_privilege();
    warn_of_unreadable_rules(&o.connection);
    let mut dir = exec::own_directory(start);
    let argv = StrVec::take();
    if let Err(e) = build_chain(&o, &target, &dir, opts.operands(), argv) {
        log::die_sys(e, &[b"build the command line"]);
    }
    // The first link is executed by its path, under the name "ipcserver".
    if dir.try_extend_from_slice(b"/ipcserver-socketbinder\0").is_err() {
        log::die_sys(Errno::NAMETOOLONG, &[b"run ", &dir, b"/ipcserver-socketbinder"]);
    }
    // Cannot fail: `dir` came from a path, which holds no NUL.
    let first = runtime::cstr_with_nul(&dir).unwrap_or(c"/");
    let err = runtime::execve(first, argv.finish(), start.envp);
    log::die_sys(err, &[b"run ", first.to_bytes()])
}

/// The rules are read at each connection, and rules that cannot be read
/// drop every connection: say so once at start (the server starts
/// anyway, as the original's does, so that rules can come later). A
/// missing file with `-X` is an allow, and no news.
fn warn_of_unreadable_rules(o: &ConnectionOptions) {
    let Some(rules) = o.rules else { return };
    match Reader::open(rules) {
        Ok(_) => {}
        Err(CdbError::Open(Errno::NOENT)) if o.rules_optional => {}
        Err(e) => log::warn(&[
            b"unable to read ",
            rules.to_bytes(),
            b": ",
            e.reason(),
            b" (every connection is dropped until it can be read)",
        ]),
    }
}

/// Appends the command line of the chain after `ipcserver-socketbinder`
/// (which is executed directly): each link is `dir/LINK -N ipcserver
/// -vN options --`, then prog.
fn build_chain(
    o: &ServerOptions,
    t: &Target,
    dir: &[u8],
    operands: CStrArray<'static>,
    argv: &mut StrVec<'static>,
) -> Result<(), rustix::io::Errno> {
    let c = &o.connection;
    let access = c.rules.is_some() || c.banner.is_some() || c.localname.is_some();
    // Each link's -v: the front end's (0 to 3, -vv), but ipcserverd's
    // levels from the access line on are one above the others' (it writes
    // that line, at 3, only when no link after it will; at 4 with the
    // client's pid and groups, as ipcserver-access at 3), and the links
    // that write no access line have nothing above 2.
    const LEVELS: [&CStr; 5] = [c"-v0", c"-v1", c"-v2", c"-v3", c"-v4"];
    let v = (c.verbosity as usize).min(3);
    let plain = LEVELS[v.min(2)];
    let daemon = match v {
        // With -v the original logs an access line for every connection:
        // ipcserverd writes it when no link after it will.
        2.. if !access => LEVELS[v + 1],
        _ => plain,
    };
    let link = |argv: &mut StrVec<'static>, name: &[u8], v: &'static CStr| {
        argv.push_concat(&[dir, b"/", name])?;
        argv.push_borrowed(c"-N")?;
        argv.push_borrowed(c"ipcserver")?;
        argv.push_borrowed(v)
    };
    let flag = |argv: &mut StrVec<'static>, on: bool, f: &'static CStr| if on { argv.push_borrowed(f) } else { Ok(()) };
    let option = |argv: &mut StrVec<'static>, value: Option<&'static CStr>, f: &'static CStr| match value {
        Some(v) => argv.push_borrowed(f).and_then(|()| argv.push_borrowed(v)),
        None => Ok(()),
    };
    let text = |n: Option<Number>| n.map(|n| n.text);
    let number = |argv: &mut StrVec<'static>, value: Option<u32>, f: &[u8]| match value {
        Some(n) => {
            let mut digits = [0; num::U64_DIGITS];
            argv.push_concat(&[f, num::fmt_u64(n as u64, &mut digits)])
        }
        None => Ok(()),
    };
    let Some(path) = operands.first() else { log::usage() };

    // argv[0] of the first link: what `ps` shows for the chain.
    argv.push_borrowed(c"ipcserver")?;
    argv.push_borrowed(c"-N")?;
    argv.push_borrowed(c"ipcserver")?;
    argv.push_borrowed(plain)?;
    flag(argv, o.keep_existing, c"-D")?;
    option(argv, text(o.backlog), c"-b")?;
    option(argv, text(o.perms), c"-a")?;
    argv.push_borrowed(c"--")?;
    argv.push_borrowed(path)?;

    if t.uid.is_some() || t.gid.is_some() || t.groups.is_some() {
        link(argv, b"ipcapplyuidgid", plain)?;
        number(argv, t.uid.map(Uid::as_raw), b"-u")?;
        number(argv, t.gid.map(Gid::as_raw), b"-g")?;
        if let Some(groups) = t.groups {
            // Two arguments: an empty list ("-G ''", as s6-envuidgid sets
            // GIDLIST for a user without other groups) is one too.
            argv.push_borrowed(c"-G")?;
            argv.push_concat(&[groups.as_bytes()])?;
        }
        argv.push_borrowed(c"--")?;
    }

    link(argv, b"ipcserverd", daemon)?;
    flag(argv, o.ready, c"-1")?;
    flag(argv, !c.peercred, c"-P")?;
    option(argv, text(o.maxconn), c"-c")?;
    option(argv, text(o.localmax), c"-C")?;
    argv.push_borrowed(c"--")?;

    if access {
        link(argv, b"ipcserver-access", LEVELS[v])?;
        option(argv, c.rules, c"-x")?;
        flag(argv, c.rules_optional, c"-X")?;
        flag(argv, c.supplementary, c"-S")?;
        option(argv, c.banner, c"-B")?;
        option(argv, c.localname, c"-l")?;
        argv.push_borrowed(c"--")?;
    }
    argv.push_all(operands.skip(1))
}
