//! ipcserver-access [ -v verbosity ] [ -E | -e ] [ -S ] [ -l localname ]
//! [ -B banner ] [ -x rules.cdb | -i rulesdir | -s s6rules.cdb ] [ -X ]
//! [ -N name ] prog...
//!
//! Runs once per connection between the server and the application:
//! writes the banner, sets IPCLOCALPATH, applies the access rules for the
//! client's ids (ucspi-ipc's with `-x`, s6's with `-i` and `-s`; with
//! `-S` its supplementary groups from IPCREMOTEGIDLIST too; a deny exits
//! 100 without running prog), logs (at verbosity 3 with the client's pid
//! and groups), and executes into prog, or into
//! `execlineb -Pc SCRIPT` for an s6 rule's exec file. Every failure drops
//! the connection with the original's `warning: dropping connection,
//! unable to ...` (111).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use core::ffi::CStr;
use ucspi_ipc::client::{self, Client, Verdict};
use ucspi_ipc::connection::{self, Access, Facts, RulesFile};
use ucspi_ipc::env::{self, Env};
use ucspi_ipc::rules::{self, Dropped};
use ucspi_ipc::runtime::{self, CStrArray, Start};
use ucspi_ipc::s6rules;
use ucspi_ipc::strvec::StrVec;
use ucspi_ipc::{args::Getopt, exec, io, log, socket, uidgid};

ucspi_ipc::program!(main);

/// The rule's record, in .bss: only the pages a rule reaches are touched,
/// where a stack buffer would be faulted in whole at every connection (see
/// runtime::Table). Its assignments are passed on from here, not copied.
/// s6 rules are read into it too: their environment changes are borrowed
/// from it.
static RECORD: runtime::Table<[u8; rules::RULES_RECORD_MAX]> = runtime::Table::new([0; rules::RULES_RECORD_MAX]);
const _: () = assert!(s6rules::S6_RECORD_MAX <= rules::RULES_RECORD_MAX);

/// Which rules, in which format.
#[derive(Clone, Copy)]
enum RulesOption {
    /// `-x`: an ipcrules cdb.
    Ucspi(&'static CStr),
    /// `-i`: an s6 rules directory.
    S6Dir(&'static CStr),
    /// `-s`: an s6-accessrules-cdb-from-fs cdb.
    S6Cdb(&'static CStr),
}

struct Options {
    verbosity: u8,
    strip: bool,
    localname: Option<&'static [u8]>,
    banner: Option<&'static [u8]>,
    rules: Option<RulesOption>,
    rules_optional: bool,
    supplementary: bool,
}

fn options(opts: &mut Getopt<'static>) -> Options {
    let mut o = Options {
        verbosity: 1,
        strip: false,
        localname: None,
        banner: None,
        rules: None,
        rules_optional: false,
        supplementary: false,
    };
    for opt in opts.by_ref() {
        match opt.letter {
            b'v' => o.verbosity = opt.number(0, 255) as u8,
            b'E' => o.strip = true,
            b'e' => o.strip = false,
            b'l' => o.localname = Some(opt.arg_bytes()),
            b'B' => o.banner = Some(opt.arg_bytes()),
            // The last of -x, -i and -s counts, as in s6-ipcserver-access.
            b'x' => o.rules = Some(RulesOption::Ucspi(opt.arg)),
            b'i' => o.rules = Some(RulesOption::S6Dir(opt.arg)),
            b's' => o.rules = Some(RulesOption::S6Cdb(opt.arg)),
            b'X' => o.rules_optional = true,
            b'S' => o.supplementary = true,
            b'N' => log::set_name(opt.arg),
            _ => log::usage(),
        }
    }
    o
}

/// The client's ids, the server's own for unknown ones (ucspi-ipc's rules
/// and the log line).
fn or_own(c: Client<'_>) -> (u32, u32) {
    uidgid::known_or_own(c.euid, c.egid)
}

/// The client whose ids are `ids` as its rules see it: with `-S`
/// (`supplementary`) with its groups from the environment; `None` for a
/// client whose groups are not known (denied, see
/// [`Client::with_groups`]). A set but unusable list: `fatal: invalid
/// IPCREMOTEGIDLIST: VALUE`, 100.
fn with_groups(ids: Client<'static>, envp: CStrArray<'static>, supplementary: bool) -> Option<Client<'static>> {
    if !supplementary {
        return Some(ids);
    }
    ids.with_groups(client::groups_from_env(envp).unwrap_or_else(|bad| bad.die()))
}

/// What the access line says of the client at verbosity 3: its pid and
/// groups, as the server set them.
fn facts(envp: CStrArray<'static>) -> Facts<'static> {
    Facts {
        pid: client::pid_from_env(envp).unwrap_or_else(|bad| bad.die()),
        groups: client::groups_from_env(envp).unwrap_or_else(|bad| bad.die()),
    }
}

/// The rule buffer (taken once: one rules format is read per run).
fn record() -> &'static mut [u8; rules::RULES_RECORD_MAX] {
    RECORD.take().unwrap_or_else(|| runtime::exit(log::EXIT_TEMP))
}

/// Applies the s6 rule for the client to `env`: the decision (an allow
/// when the rules are missing and `optional`).
fn apply_s6_rules(
    path: &CStr,
    open: fn(&CStr) -> Result<s6rules::Rules, s6rules::Error>,
    optional: bool,
    client: Option<Client<'static>>,
    env: &mut Env<'static>,
) -> Verdict<'static> {
    let unable = |e: s6rules::Error| {
        if e.is_missing() && optional {
            return Verdict::Allow(None);
        }
        log::die_dropping(&e.message(path.to_bytes()))
    };
    let rules = match open(path) {
        Ok(rules) => rules,
        Err(e) => return unable(e),
    };
    // A client whose groups -S asked for and are not known.
    let Some(client) = client else { return Verdict::Deny };
    let decided = rules.check(client, uidgid::own_ids(), record(), env);
    // Close-on-exec, and we exit or exec soon: leaving it open saves a
    // close per connection.
    core::mem::forget(rules);
    decided.unwrap_or_else(unable)
}

fn main(start: Start) -> ! {
    log::init(
        c"ipcserver-access",
        c"[ -v verbosity ] [ -E | -e ] [ -S ] [ -l localname ] [ -B banner ] [ -x rules.cdb | -i rulesdir | -s s6rules.cdb ] [ -X ] [ -N name ] prog...",
    );
    let mut opts = Getopt::new(start.argv, b"v:EeSl:B:x:i:s:XN:");
    let o = options(&mut opts);
    log::set_verbosity(o.verbosity);
    if opts.operand_count() == 0 {
        log::usage();
    }
    let envp = start.envp;
    // Misused outside a server, which would have set it: s6's words.
    if env::get(envp, b"PROTO").is_none() {
        log::die(log::EXIT_PERMANENT, &[b"PROTO not set"]);
    }
    let logging = o.verbosity >= 2;

    if let Some(banner) = o.banner {
        connection::send_banner(banner).unwrap_or_else(|Dropped| runtime::exit(log::EXIT_TEMP));
    }

    let env = Env::take();
    if let Err(e) = env.inherit(envp) {
        log::die_dropping_sys(e, &[b"read environment"]);
    }
    // The ids are read for the rules and the access line; the groups for
    // -S, once a rule would be looked up.
    let ids = (o.rules.is_some() || logging).then(|| Client::from_env(envp).unwrap_or_else(|bad| bad.die()));
    let client = || ids.and_then(|ids| with_groups(ids, envp, o.supplementary));

    // s6 rules come first, so that what the server sets (IPCLOCALPATH) or
    // removes (-E) wins over a rule's variables, as in s6-ipcserver-access.
    let s6 = match o.rules {
        Some(RulesOption::S6Dir(path)) => {
            Some(apply_s6_rules(path, s6rules::Rules::open_dir, o.rules_optional, client(), env))
        }
        Some(RulesOption::S6Cdb(path)) => {
            Some(apply_s6_rules(path, s6rules::Rules::open_cdb, o.rules_optional, client(), env))
        }
        _ => None,
    };

    let inherited = env::get(envp, b"IPCLOCALPATH");
    let looked_up;
    let local: &[u8] = match (o.localname, inherited) {
        (Some(l), _) => l,
        (None, Some(l)) => l,
        (None, None) if o.strip && !logging => b"",
        (None, None) => {
            looked_up = socket::local_path(io::stdin())
                .unwrap_or_else(|e| log::die_dropping_sys(e, &[b"get local socket path"]));
            &looked_up
        }
    };
    if o.strip {
        env.retain(|name| name != b"PROTO" && !name.starts_with(b"IPC"));
    } else if env.get(b"IPCLOCALPATH") != Some(local) {
        if let Err(e) = env.set(b"IPCLOCALPATH", local) {
            log::die_dropping_sys(e, &[b"set environment variable IPCLOCALPATH"]);
        }
    }

    // ucspi-ipc's rules come after -E's clean-up: their variables are
    // always passed on.
    let allowed = match (o.rules, s6) {
        (Some(RulesOption::Ucspi(path)), _) => {
            let rules = RulesFile { path, optional: o.rules_optional, supplementary: o.supplementary };
            let client = client().map(|c| {
                let (euid, egid) = or_own(c);
                Client { euid: Some(euid), egid: Some(egid), ..c }
            });
            connection::verdict(Some(rules), client, record(), env)
                .unwrap_or_else(|Dropped| runtime::exit(log::EXIT_TEMP))
        }
        (_, Some(Verdict::Deny)) => false,
        _ => true,
    };
    if let (true, Some(c)) = (logging, ids) {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        let remote = env::get(envp, b"IPCREMOTEPATH").unwrap_or(b"");
        let facts = (o.verbosity >= connection::FACTS_VERBOSITY).then(|| facts(envp));
        connection::log_access(Access { name: log::name(), pid, local }, allowed, remote, or_own(c), facts);
    }
    if !allowed {
        runtime::exit(log::EXIT_PERMANENT);
    }
    if let Some(Verdict::Allow(Some(script))) = s6 {
        // s6-ipcserver-access runs its compiled-in execlineb with -P: the
        // script gets no positional parameters.
        let argv = StrVec::take();
        for arg in [c"execlineb", c"-Pc", script] {
            if let Err(e) = argv.push_borrowed(arg) {
                log::die_dropping_sys(e, &[b"run execlineb"]);
            }
        }
        exec::exec_or_drop(argv.finish(), env.finish())
    }
    exec::exec_or_drop(opts.operands(), env.finish())
}
