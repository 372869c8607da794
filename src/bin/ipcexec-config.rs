//! ipcexec-config user loguser dir
//!
//! Creates dir, a service directory for s6-supervise (under s6-svscan),
//! runit's runsv or daemontools' supervise, that runs ipcexec under
//! ipcserver on the socket dir/s, with a logger. The layout is the
//! original's:
//!
//! - `run`: sets the variables of `env/` (each file's first line, as
//!   envdir does), compiles `rules/data` into `rules/data.cdb` when the
//!   latter is missing or older, then runs `ipcserver -v dir/s ipcexec
//!   dir/rules/data.cdb` as root, or with `-u UID -g GID` when user is not
//!   root (so that ipcexec runs as user, as the original's manual says);
//! - `env/IPCERROUT` (`1`), `rules/data` (`:deny`), `rules/Makefile`;
//! - `log/run`: s6-log, svlogd or multilog, the first one installed, as
//!   loguser, with timestamps, into `log/main`; `log/main` and an empty
//!   `log/status` belong to loguser.
//!
//! The scripts need only /bin/sh and our programs, which they run by
//! absolute path from the directory of this executable. Accounts are
//! names in /etc/passwd, or uids it has; their ids are written into the
//! scripts. Everything is checked before anything is created; a failure
//! after dir was created removes what was made.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use arrayvec::ArrayVec;
use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{self, Access, AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use ucspi_ipc::runtime::{self, Start};
use ucspi_ipc::userdb::{self, Query, User};
use ucspi_ipc::{args, bounded, exec, io, log, num, socket, uidgid};

ucspi_ipc::program!(main);

/// The programs the service runs (ipcserver runs the next four), all
/// from this executable's directory.
const PROGRAMS: [&[u8]; 6] =
    [b"ipcserver", b"ipcserver-socketbinder", b"ipcapplyuidgid", b"ipcserverd", b"ipcexec", b"ipcexecrules"];
/// Room for the path of one of [`PROGRAMS`] and its NUL, in our own
/// directory: a file's path, a slash and the name.
const PROGRAM_PATH_MAX: usize = exec::FILE_PATH_MAX + 32;
const _: () = {
    let mut i = 0;
    while i < PROGRAMS.len() {
        assert!(PROGRAMS[i].len() + "/\0".len() <= PROGRAM_PATH_MAX - exec::FILE_PATH_MAX);
        i += 1;
    }
};

/// Room for a script: its fixed text and two quoted paths (a quoted byte
/// takes at most four), dir (the socket path limits it) and the
/// directory of the programs.
const SCRIPT_MAX: usize = 2048 + 4 * (socket::SOCKET_PATH_MAX + exec::FILE_PATH_MAX);

type Script = ArrayVec<u8, SCRIPT_MAX>;

/// The run script, the log's run script and the Makefile, in `.bss`: on
/// the stack, the probes of their 57 KiB frame would touch every page.
static SCRIPTS: runtime::Table<[Script; 3]> = runtime::Table::new([const { Script::new_const() }; 3]);

/// What the original puts in the files it writes.
const IPCERROUT: &[u8] = b"1";
const RULES: &[u8] = b":deny\n";

/// What an entry of the service directory is.
enum Node<'a> {
    Dir,
    File(&'a [u8]),
}

/// One entry, relative to dir, created in order.
struct Entry<'a> {
    name: &'static CStr,
    node: Node<'a>,
    mode: u32,
    owner: Option<User>,
}

/// A failed step: the verb of `unable to VERB PATH: REASON`, the entry
/// (`None`: dir itself), the reason.
type Failure<'a> = (&'static [u8], Option<&'a Entry<'a>>, Errno);

fn main(start: Start) -> ! {
    log::init(c"ipcexec-config", c"user loguser dir");
    let [user, loguser, dir] = args::exact_operands(start.argv);
    if dir.to_bytes().first() != Some(&b'/') {
        // The original prints the usage line alone: say why.
        log::option_error(&[b"the directory must be an absolute path: ", dir.to_bytes()]);
    }
    // In the original's order: the logger's account first.
    let loguser = account(loguser.to_bytes());
    let user = account(user.to_bytes());

    // dir without trailing slashes ("/" stays "/"), for the paths written.
    let given = dir.to_bytes();
    let dir = match given.iter().rposition(|&c| c != b'/') {
        Some(i) => &given[..=i],
        None => &b"/"[..],
    };
    if dir.len() + 2 > socket::SOCKET_PATH_MAX {
        log::die(log::EXIT_PERMANENT, &[b"socket path longer than 108 bytes: ", dir, b"/s"]);
    }
    let bin = exec::own_directory(start);
    if bin.first() != Some(&b'/') {
        log::die(log::EXIT_TEMP, &[b"unable to find the absolute path of my directory: ", &bin]);
    }
    for name in PROGRAMS {
        // Fits: a file's path, a slash, a name of PROGRAMS and a NUL,
        // which PROGRAM_PATH_MAX holds (asserted there).
        let mut path = ArrayVec::<u8, PROGRAM_PATH_MAX>::new();
        for piece in [&bin[..], b"/", name, b"\0"] {
            bounded::append(&mut path, piece);
        }
        let found = runtime::cstr_with_nul(&path)
            .ok_or(Errno::NAMETOOLONG)
            .and_then(|p| fs::accessat(CWD, p, Access::EXEC_OK, AtFlags::empty()));
        if let Err(e) = found {
            log::die_sys(e, &[b"find ", &bin, b"/", name]);
        }
    }

    let Some([run, log_run, makefile]) = SCRIPTS.take() else { runtime::exit(log::EXIT_TEMP) };
    let written = write_run(run, dir, &bin, user)
        .and_then(|()| write_log_run(log_run, &bin, loguser))
        .and_then(|()| write_makefile(makefile, &bin));
    if let Err(e) = written {
        log::die_sys(e, &[b"write the scripts for ", dir]);
    }
    let dir_entry = |name: &'static CStr, owner| Entry { name, node: Node::Dir, mode: 0o2755, owner };
    let file = |name: &'static CStr, text, mode, owner| Entry { name, node: Node::File(text), mode, owner };
    let entries = [
        dir_entry(c"log", None),
        dir_entry(c"log/main", Some(loguser)),
        file(c"log/status", b"", 0o644, Some(loguser)),
        file(c"log/run", log_run, 0o755, None),
        file(c"run", run, 0o755, None),
        dir_entry(c"env", None),
        file(c"env/IPCERROUT", IPCERROUT, 0o644, None),
        dir_entry(c"rules", None),
        file(c"rules/data", RULES, 0o644, None),
        file(c"rules/Makefile", makefile, 0o644, None),
    ];

    // Fits: dir is shorter than a socket path (checked above).
    let mut path = ArrayVec::<u8, { socket::SOCKET_PATH_MAX + 1 }>::new();
    bounded::append(&mut path, dir);
    bounded::push(&mut path, 0);
    // Cannot fail: one NUL, at the end (dir came from a C string).
    let path = runtime::cstr_with_nul(&path).unwrap_or(c"/");
    if let Err((verb, entry, e)) = create(path, &entries) {
        let (slash, name) = entry.map_or((&b""[..], &b""[..]), |en| (&b"/"[..], en.name.to_bytes()));
        log::die_sys(e, &[verb, b" ", dir, slash, name]);
    }
    runtime::exit(0)
}

/// The account `name`: a login name in /etc/passwd or, failing that, a
/// uid it has. Unknown is fatal (111), as in the original.
fn account(name: &[u8]) -> User {
    let found = match userdb::find(Query::Name(name)) {
        Ok(None) => uidgid::parse_id(name).map_or(Ok(None), |uid| userdb::find(Query::Uid(uid))),
        other => other,
    };
    match found {
        Ok(Some(user)) => user,
        Ok(None) => log::die(log::EXIT_TEMP, &[b"unknown account ", name]),
        Err(e) => log::die_sys(e, &[b"read /etc/passwd"]),
    }
}

/// Creates dir and its entries; on failure removes what it made.
fn create<'a>(dir: &CStr, entries: &'a [Entry<'a>]) -> Result<(), Failure<'a>> {
    fs::mkdirat(CWD, dir, Mode::from_raw_mode(0o700)).map_err(|e| (&b"create"[..], None, e))?;
    let opened =
        fs::openat(CWD, dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .and_then(io::above_stdio);
    let at = match opened {
        Ok(at) => at,
        Err(e) => {
            let _ = fs::unlinkat(CWD, dir, AtFlags::REMOVEDIR);
            return Err((b"open", None, e));
        }
    };
    let mut made = 0;
    let mut result = fs::fchmod(&at, Mode::from_raw_mode(0o3755)).map_err(|e| (&b"set mode of"[..], None, e));
    for entry in entries {
        if result.is_err() {
            break;
        }
        result = make(at.as_fd(), entry, &mut made).map_err(|(verb, e)| (verb, Some(entry), e));
    }
    if result.is_err() {
        for entry in entries[..made].iter().rev() {
            let flags = if matches!(entry.node, Node::Dir) { AtFlags::REMOVEDIR } else { AtFlags::empty() };
            let _ = fs::unlinkat(&at, entry.name, flags);
        }
        drop(at);
        let _ = fs::unlinkat(CWD, dir, AtFlags::REMOVEDIR);
    }
    result
}

/// Creates one entry in `at` (counting it in `made` as soon as it
/// exists), with its contents, owner and mode.
fn make(at: BorrowedFd<'_>, entry: &Entry<'_>, made: &mut usize) -> Result<(), (&'static [u8], Errno)> {
    let owner = entry.owner.map(|u| (Some(Uid::from_raw(u.uid)), Some(Gid::from_raw(u.gid))));
    let mode = Mode::from_raw_mode(entry.mode);
    match entry.node {
        Node::Dir => {
            fs::mkdirat(at, entry.name, Mode::from_raw_mode(0o700)).map_err(|e| (&b"create"[..], e))?;
            *made += 1;
            if let Some((uid, gid)) = owner {
                fs::chownat(at, entry.name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| (&b"set owner of"[..], e))?;
            }
            fs::chmodat(at, entry.name, mode, AtFlags::empty()).map_err(|e| (&b"set mode of"[..], e))
        }
        Node::File(text) => {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = fs::openat(at, entry.name, flags, Mode::from_raw_mode(0o600)).map_err(|e| (&b"create"[..], e))?;
            *made += 1;
            let fd = io::above_stdio(fd).map_err(|e| (&b"create"[..], e))?;
            io::write_all(fd.as_fd(), text).and_then(|()| fs::fsync(&fd)).map_err(|e| (&b"write"[..], e))?;
            if let Some((uid, gid)) = owner {
                fs::fchown(&fd, uid, gid).map_err(|e| (&b"set owner of"[..], e))?;
            }
            fs::fchmod(&fd, mode).map_err(|e| (&b"set mode of"[..], e))
        }
    }
}

/// Appends `pieces` to `s`.
fn put(s: &mut Script, pieces: &[&[u8]]) -> Result<(), Errno> {
    for p in pieces {
        s.try_extend_from_slice(p).map_err(|_| Errno::NAMETOOLONG)?;
    }
    Ok(())
}

/// Appends `text` in single quotes for sh (a quote is `'\''`); for a
/// Makefile's recipe (`make`), `$` is doubled too.
fn quoted(s: &mut Script, text: &[u8], make: bool) -> Result<(), Errno> {
    put(s, &[b"'"])?;
    for c in text {
        let piece: &[u8] = match c {
            b'\'' => b"'\\''",
            b'$' if make => b"$$",
            _ => core::slice::from_ref(c),
        };
        put(s, &[piece])?;
    }
    put(s, &[b"'"])
}

/// Appends ` -u UID -g GID`.
fn ids(s: &mut Script, user: User) -> Result<(), Errno> {
    let (mut u, mut g) = ([0; num::U64_DIGITS], [0; num::U64_DIGITS]);
    put(s, &[b" -u ", num::fmt_u64(user.uid as u64, &mut u), b" -g ", num::fmt_u64(user.gid as u64, &mut g)])
}

/// dir/run.
fn write_run(s: &mut Script, dir: &[u8], bin: &[u8], user: User) -> Result<(), Errno> {
    put(s, &[b"#!/bin/sh\nexec 2>&1\nd="])?;
    quoted(s, dir, false)?;
    put(s, &[b" b="])?;
    quoted(s, bin, false)?;
    put(
        s,
        &[b"\n\
# env/: each file's first line (without trailing blanks) is a variable; an
# empty file unsets it.
for f in \"$d\"/env/*; do
  n=${f##*/}
  case $n in *[!A-Za-z0-9_]* | [0-9]*) continue ;; esac
  test -f \"$f\" || continue
  if test -s \"$f\"; then IFS= read -r v <\"$f\"; export \"$n=${v%\"${v##*[! \t]}\"}\"; else unset \"$n\"; fi
done
# rules/data.cdb: compiled from rules/data when missing or older.
r=$d/rules
if test ! -f \"$r\"/data.cdb || test \"$r\"/data -nt \"$r\"/data.cdb; then
  \"$b\"/ipcexecrules \"$r\"/data.cdb \"$r\"/data.tmp <\"$r\"/data || exit 111
fi
# At most 40 requests at once, 4 of them from any one uid: no client can
# hold every slot, root's requests included.
exec \"$b\"/ipcserver -v -c 40 -C 4"],
    )?;
    if user.uid != 0 {
        ids(s, user)?;
    }
    put(s, &[b" \"$d\"/s \"$b\"/ipcexec \"$r\"/data.cdb\n"])
}

/// dir/log/run.
fn write_log_run(s: &mut Script, bin: &[u8], loguser: User) -> Result<(), Errno> {
    put(
        s,
        &[b"#!/bin/sh\nfor l in 's6-log t' 'svlogd -t' 'multilog t'; do\n  command -v \"${l% *}\" >/dev/null && exec "],
    )?;
    quoted(s, bin, false)?;
    put(s, &[b"/ipcapplyuidgid"])?;
    ids(s, loguser)?;
    put(
        s,
        &[b" $l ./main\ndone\n\
echo 'log/run: no logger found: install s6 (s6-log), runit (svlogd) or daemontools (multilog)' >&2\n\
exit 111\n"],
    )
}

/// dir/rules/Makefile.
fn write_makefile(s: &mut Script, bin: &[u8]) -> Result<(), Errno> {
    put(s, &[b"data.cdb: data\n\t"])?;
    quoted(s, bin, true)?;
    put(s, &[b"/ipcexecrules data.cdb data.tmp <data\n"])
}
