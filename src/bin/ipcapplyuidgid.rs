//! ipcapplyuidgid [ -z ] [ -u uid ] [ -g gid ] [ -G gidlist ] [ -U ] [ -v verbosity ] [ -N name ] prog...:
//! drop privileges (supplementary groups, then gid, then uid) and execute
//! into prog.... `-U` takes the ids from `$UID`, `$GID`, `$GIDLIST`; a later
//! option overrides an earlier one; a uid without a gid takes the user's
//! primary gid from /etc/passwd; `-z` removes UID, GID and GIDLIST from the
//! environment passed on. Everything is checked before anything changes;
//! any failure is fatal before prog runs.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use rustix::process::{Gid, Uid};
use ucspi_ipc::runtime::Start;
use ucspi_ipc::uidgid::{self, Target};
use ucspi_ipc::{args::Getopt, env::Env, exec, log};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(
        c"ipcapplyuidgid",
        c"[ -z ] [ -u uid ] [ -g gid ] [ -G gidlist ] [ -U ] [ -v verbosity ] [ -N name ] prog...",
    );
    let mut target = Target::default();
    let mut unexport = false;
    // Reported once the whole command line (and so -v) is read.
    let mut env_error = None;
    let mut opts = Getopt::new(start.argv, b"zu:g:G:Uv:N:");
    for o in opts.by_ref() {
        match o.letter {
            b'z' => unexport = true,
            b'u' => target.uid = Some(Uid::from_raw(o.value(uidgid::parse_id, uidgid::ID_EXPECTED))),
            b'g' => target.gid = Some(Gid::from_raw(o.value(uidgid::parse_id, uidgid::ID_EXPECTED))),
            b'G' => target.groups = Some(o.value(uidgid::parse_gidlist, uidgid::GIDLIST_EXPECTED)),
            b'U' => {
                if let Err(msg) = target.read_env(start.envp) {
                    env_error.get_or_insert(msg);
                }
            }
            b'v' => log::set_verbosity(o.number(0, 255) as u8),
            b'N' => log::set_name(o.arg),
            _ => log::usage(),
        }
    }
    if let Some(msg) = env_error {
        log::fatal(log::EXIT_USAGE, &[msg]);
    }
    if opts.operand_count() == 0 {
        log::usage();
    }
    target.complete().unwrap_or_else(|e| e.die());
    if let Err((what, e)) = target.apply() {
        log::fatal_sys(e, &[what]);
    }
    let prog = opts.operands();
    if !unexport {
        exec::exec_or_die(prog, start.envp);
    }
    let env = Env::take();
    if let Err(e) = env.inherit(start.envp) {
        log::fatal_sys(e, &[b"build the environment"]);
    }
    env.retain(|name| !matches!(name, b"UID" | b"GID" | b"GIDLIST"));
    exec::exec_or_die(prog, env.finish())
}
