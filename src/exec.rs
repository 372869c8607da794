//! Chain-loading: execute into `prog...` with execvp semantics (a name
//! containing `/` is used as is, otherwise each `$PATH` directory is tried
//! in order), building each candidate path in a fixed buffer.
//!
//! It never forks and does not fall back to `/bin/sh` on ENOEXEC.

use crate::log;
use crate::runtime::{self, CStrArray};
use arrayvec::ArrayVec;
use core::ffi::CStr;
use rustix::io::Errno;

/// PATH when the environment has none.
const DEFAULT_PATH: &[u8] = b"/usr/bin:/bin";
/// Longest path of a file, with its NUL: the kernel's PATH_MAX, which
/// bounds each candidate of a PATH search and the path of our own
/// executable (a socket's path is far shorter: `socket::SOCKET_PATH_MAX`).
pub const FILE_PATH_MAX: usize = 4096;

/// Executes `argv[0]` with arguments `argv` and environment `envp`,
/// searching `search_path` (a `$PATH` value; `None` means the default).
/// Returns only on failure, with the most telling error.
pub fn exec_search(argv: CStrArray<'_>, envp: CStrArray<'_>, search_path: Option<&[u8]>) -> Errno {
    let Some(prog) = argv.first() else { return Errno::INVAL };
    exec_file_search(prog, argv, envp, search_path)
}

/// As [`exec_search`], executing `file` (searched for in the same way)
/// with `argv` as its command line: for running one program under
/// another's name.
pub fn exec_file_search(prog: &CStr, argv: CStrArray<'_>, envp: CStrArray<'_>, search_path: Option<&[u8]>) -> Errno {
    let name = prog.to_bytes();
    if name.is_empty() {
        return Errno::NOENT;
    }
    if memchr::memchr(b'/', name).is_some() {
        return runtime::execve(prog, argv, envp);
    }
    let mut err = Errno::NOENT;
    for dir in search_path.unwrap_or(DEFAULT_PATH).split(|&c| c == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let mut buf = ArrayVec::<u8, FILE_PATH_MAX>::new();
        if buf.try_extend_from_slice(dir).is_err()
            || buf.try_push(b'/').is_err()
            || buf.try_extend_from_slice(name).is_err()
            || buf.try_push(0).is_err()
        {
            err = Errno::NAMETOOLONG;
            continue;
        }
        // Cannot fail: exactly one NUL, at the end.
        let Some(path) = crate::runtime::cstr_with_nul(&buf) else { continue };
        match runtime::execve(path, argv, envp) {
            // Not here, or not usable here: try the next directory, but
            // remember that something was found and refused.
            Errno::NOENT | Errno::NOTDIR => {}
            Errno::ACCESS => err = Errno::ACCESS,
            e => return e,
        }
    }
    err
}

/// Executes into `argv` with `envp`, the PATH coming from `envp`; on
/// failure prints `fatal: unable to run PROG: REASON` and exits 111.
pub fn exec_or_die(argv: CStrArray<'_>, envp: CStrArray<'_>) -> ! {
    let err = exec_search(argv, envp, crate::env::get(envp, b"PATH"));
    log::die_sys(err, &[b"run ", program_name(argv)])
}

/// As [`exec_or_die`], for a program run once per connection: the message
/// is the original server's `warning: dropping connection, unable to run
/// PROG: REASON` (exit 111).
pub fn exec_or_drop(argv: CStrArray<'_>, envp: CStrArray<'_>) -> ! {
    let err = exec_search(argv, envp, crate::env::get(envp, b"PATH"));
    log::die_dropping_sys(err, &[b"run ", program_name(argv)])
}

fn program_name(argv: CStrArray<'_>) -> &[u8] {
    argv.first().map_or(&b""[..], |p| p.to_bytes())
}

/// The directory of the running program's executable: /proc/self/exe, or
/// else the path the kernel says it was executed as (AT_EXECFN), which
/// needs no /proc; relative to where it started. Programs that run their
/// siblings (ipcserver, ipcdo, ipcrun) find them there, never through PATH.
/// Fatal (111) if neither says.
pub fn own_directory(start: crate::runtime::Start) -> ArrayVec<u8, FILE_PATH_MAX> {
    // Read where the result goes: one page of stack, not two.
    let mut dir = ArrayVec::from([0u8; FILE_PATH_MAX]);
    let len = match rustix::fs::readlinkat_raw(rustix::fs::CWD, c"/proc/self/exe", &mut dir[..]) {
        Ok(n) if n > 0 && n < FILE_PATH_MAX => n,
        _ => {
            let path = start.exec_path().map_or(&b""[..], |p| p.to_bytes());
            // The kernel takes no longer path than FILE_PATH_MAX with its NUL.
            let len = path.len().min(FILE_PATH_MAX);
            dir[..len].copy_from_slice(&path[..len]);
            len
        }
    };
    match memchr::memrchr(b'/', &dir[..len]) {
        Some(0) => dir.truncate(1),
        Some(i) => dir.truncate(i),
        // Executed by a bare name: relative to where we started.
        None if len > 0 => {
            dir.truncate(1);
            dir[0] = b'.';
        }
        None => log::die(log::EXIT_TEMP, &[b"unable to find the directory of my executable"]),
    }
    dir
}
