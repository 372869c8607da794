//! ipcapplyuidgid [ -z ] [ -u uid ] [ -g gid ] [ -G gidlist ] [ -U ] prog...:
//! drop privileges (supplementary groups, then gid, then uid) and execute
//! into prog.... `-U` takes the ids from `$UID`, `$GID`, `$GIDLIST`; a later
//! option overrides an earlier one; `-z` removes those three variables from
//! the environment passed on. Any failure is fatal before prog runs.
#![no_std]
#![no_main]

use rustix::process::{Gid, Uid};
use ucspi_ipc::runtime::Start;
use ucspi_ipc::uidgid::{self, Target};
use ucspi_ipc::{args::Getopt, env::Env, exec, log};

ucspi_ipc::program!(main);

const USAGE: &[u8] = b"[ -z ] [ -u uid ] [ -g gid ] [ -G gidlist ] [ -U ] prog...";

fn main(start: Start) -> ! {
    log::set_name(b"ipcapplyuidgid");
    let mut target = Target::default();
    let mut unexport = false;
    let mut opts = Getopt::new(start.argv, b"zu:g:G:U");
    for o in opts.by_ref() {
        match o.letter {
            b'z' => unexport = true,
            b'u' => target.uid = Uid::from_raw(id(o.arg_bytes())),
            b'g' => target.gid = Gid::from_raw(id(o.arg_bytes())),
            b'G' => target.groups = Some(uidgid::parse_gidlist(o.arg_bytes()).unwrap_or_else(|| log::usage(USAGE))),
            b'U' => target.read_env(start.envp).unwrap_or_else(|msg| log::fatal(log::EXIT_USAGE, &[msg])),
            _ => log::usage(USAGE),
        }
    }
    if opts.operand_count() == 0 {
        log::usage(USAGE);
    }
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

fn id(s: &[u8]) -> u32 {
    uidgid::parse_id(s).unwrap_or_else(|| log::usage(USAGE))
}
