//! ipcapplyuidgid [ -z ] [ -u uid ] [ -g gid ] [ -G gidlist ] [ -U ] [ -v verbosity ] [ -N name ] prog...:
//! drop privileges (supplementary groups, then gid, then uid) and execute
//! into prog.... `-U` takes the ids from `$UID`, `$GID`, `$GIDLIST`; a later
//! option overrides an earlier one; a uid without a gid takes the user's
//! primary gid from /etc/passwd; `-z` removes UID, GID and GIDLIST from the
//! environment passed on. Everything is checked before anything changes;
//! any failure is fatal before prog runs.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use ucspi_ipc::runtime::Start;
use ucspi_ipc::uidgid::IdOptions;
use ucspi_ipc::{args::Getopt, env::Env, exec, log};

ucspi_ipc::program!(main);

fn main(start: Start) -> ! {
    log::init(
        c"ipcapplyuidgid",
        c"[ -z ] [ -u uid ] [ -g gid ] [ -G gidlist ] [ -U ] [ -v verbosity ] [ -N name ] prog...",
    );
    let mut ids = IdOptions::default();
    let mut unexport = false;
    let mut opts = Getopt::new(start.argv, b"zu:g:G:Uv:N:");
    for o in opts.by_ref() {
        match o.letter {
            b'z' => unexport = true,
            b'v' => log::set_verbosity(o.number(0, 255) as u8),
            b'N' => log::set_name(o.arg),
            _ if ids.read(&o, start.envp) => {}
            _ => log::usage(),
        }
    }
    // Once the whole command line (and so -v) is read.
    let target = ids.target();
    if opts.operand_count() == 0 {
        log::usage();
    }
    target.complete().unwrap_or_else(|e| e.die());
    if let Err((what, e)) = target.apply() {
        log::die_sys(e, &[what]);
    }
    let prog = opts.operands();
    if !unexport {
        exec::exec_or_die(prog, start.envp);
    }
    let env = Env::take();
    if let Err(e) = env.inherit(start.envp) {
        log::die_sys(e, &[b"build the environment"]);
    }
    env.retain(|name| !matches!(name, b"UID" | b"GID" | b"GIDLIST"));
    exec::exec_or_die(prog, env.finish())
}
