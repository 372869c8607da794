//! Links the programs as static position-independent executables
//! (static-pie: loaded at a random address, relocated by our own entry
//! point, see src/runtime.rs and doc/design.md: no libc start files, no
//! dynamic loader), hardened (RELRO, bound now, no executable stack) and
//! without unwinding tables (src/runtime/link.ld). The test harness and
//! integration tests link normally.
//!
//! The arguments depend on the linker: a C compiler driver (`cc`, the
//! default, or a cross gcc) wants `-nostartfiles -nostdlib` and `-Wl,`
//! before what it hands to the linker; a linker run directly (`rust-lld`,
//! which .cargo/config.toml names for the cross targets, so that building
//! the programs needs no C toolchain) takes them as they are. Programs
//! built on the library in crates of their own (preforking servers) get
//! the same arguments from `DEP_UCSPI_IPC_LINK_ARGS` (see doc/ipchandle.md).
//!
//! The exception is ipcperl, which embeds libperl and so links libc the
//! usual way: it gets none of these arguments. With the `perl` feature
//! (which alone builds it), its C shim over Perl's embedding macros,
//! src/perl/shim.c, is compiled with the flags `perl -MExtUtils::Embed`
//! gives, and linked, with libperl, into ipcperl only.
const LINKS_LIBC: [&str; 1] = ["ipcperl"];

/// What separates the arguments in `DEP_UCSPI_IPC_LINK_ARGS`: a path may
/// hold spaces, hardly a tab.
const SEPARATOR: char = '\t';

fn main() {
    let target = std::env::var("TARGET").expect("TARGET");
    // 32-bit ARM targets whose code is Thumb-2 (thumbv7neon-...): the
    // runtime's system calls cannot name r7 there. (The target feature is
    // unstable, so `cfg(target_feature = "thumb-mode")` is not set.)
    println!("cargo::rustc-check-cfg=cfg(thumb_mode)");
    if target.starts_with("thumb") {
        println!("cargo:rustc-cfg=thumb_mode");
    }
    // ipcserverd's way of starting children, fixed at build time for
    // measuring each way alone (tools/bench.sh builds both): RUSTFLAGS
    // '--cfg ipcserverd_spawn="fork"' (or "vfork"). Unset: the policy.
    println!("cargo::rustc-check-cfg=cfg(ipcserverd_spawn, values(\"fork\", \"vfork\"))");
    // The target and the host, for tests: they build crates of their own
    // (the prefork fixture) for the architecture they run on, and know
    // when they run under an emulator (a target that is not the host).
    println!("cargo:rustc-env=UCSPI_IPC_TARGET={target}");
    println!("cargo:rustc-env=UCSPI_IPC_HOST={}", std::env::var("HOST").expect("HOST"));
    let args = link_args();
    let manifest = std::fs::read_to_string("Cargo.toml").expect("Cargo.toml");
    for name in bin_names(&manifest).iter().filter(|n| !LINKS_LIBC.contains(&n.as_str())) {
        for arg in &args {
            println!("cargo:rustc-link-arg-bin={name}={arg}");
        }
    }
    println!("cargo:link-args={}", args.join(&SEPARATOR.to_string()));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=src/runtime/link.ld");
    // The linker decides the arguments: run again when it may have changed.
    let variable = target.to_uppercase().replace(['-', '.'], "_");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_{variable}_LINKER");
    println!("cargo:rerun-if-changed=.cargo/config.toml");
    #[cfg(feature = "perl")]
    perl::link_ipcperl();
}

/// The arguments that link a program on our runtime, for the linker
/// Cargo will use for the target being built.
fn link_args() -> Vec<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let script = format!("{dir}/src/runtime/link.ld");
    assert!(!script.contains(SEPARATOR), "a tab in the path of ucspi-ipc's source: {script}");
    // What the linker is told, one option with its value each. A static
    // position-independent executable, with no dynamic loader and no
    // relocation in its code: what gcc's -static-pie hands the linker,
    // spelled out, because Debian's arm and riscv64 cross compilers accept
    // -static-pie but still ask for a dynamic loader, which would relocate
    // the program before our runtime does it again. No index of the
    // unwinding tables, and the script that drops them. Then the
    // hardening, which rustc asks for too on our targets but which must
    // not depend on a target's defaults: the relocated data marked to be
    // made read-only once relocated (RELRO, which the runtime applies
    // itself: there is no dynamic loader), nothing bound lazily, a stack
    // that is not executable.
    let options: [&[&str]; 9] = [
        &["-static"],
        &["-pie"],
        &["--no-dynamic-linker"],
        &["-z", "text"],
        &["--no-eh-frame-hdr"],
        &[&format!("--script={script}")],
        &["-z", "relro"],
        &["-z", "now"],
        &["-z", "noexecstack"],
    ];
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_string());
    if runs_the_linker_directly(&linker) {
        options.into_iter().flatten().map(|a| a.to_string()).collect()
    } else {
        let driver = ["-nostartfiles", "-nostdlib"].map(String::from);
        driver.into_iter().chain(options.map(|option| format!("-Wl,{}", option.join(",")))).collect()
    }
}

/// Whether rustc runs `linker` as a linker rather than as a C compiler
/// driver: its own rule, by the file's name (`ld`, `*-ld`, `ld.lld`,
/// `lld`, `rust-lld`).
fn runs_the_linker_directly(linker: &str) -> bool {
    let name = std::path::Path::new(linker).file_stem().and_then(|s| s.to_str()).unwrap_or("");
    name == "ld" || name.ends_with("-ld") || name == "lld" || name == "rust-lld"
}

#[cfg(feature = "perl")]
mod perl {
    use std::process::Command;

    const SHIM: &str = "src/perl/shim.c";

    /// Compiles the shim and links it and libperl into ipcperl (and
    /// nothing else: no `rustc-link-lib`, which would reach every program).
    pub fn link_ipcperl() {
        let mut build = cc::Build::new();
        build.file(SHIM).cargo_metadata(false).warnings(true);
        for flag in embed("ccopts") {
            build.flag(&flag);
        }
        build.compile("ipcperl_shim");
        let out = std::env::var("OUT_DIR").expect("OUT_DIR");
        println!("cargo:rustc-link-arg-bin=ipcperl={out}/libipcperl_shim.a");
        for flag in embed("ldopts") {
            println!("cargo:rustc-link-arg-bin=ipcperl={flag}");
        }
        println!("cargo:rerun-if-changed={SHIM}");
        println!("cargo:rerun-if-env-changed=PERL");
    }

    /// The words of `perl -MExtUtils::Embed -e WHAT` (ccopts or ldopts):
    /// the flags this machine's perl was built to be embedded with.
    fn embed(what: &str) -> Vec<String> {
        let perl = std::env::var("PERL").unwrap_or_else(|_| "perl".to_string());
        let out = Command::new(&perl)
            .args(["-MExtUtils::Embed", "-e", what])
            .output()
            .unwrap_or_else(|e| panic!("the perl feature needs perl ({perl}): {e}"));
        assert!(
            out.status.success(),
            "`{perl} -MExtUtils::Embed -e {what}` failed (is libperl-dev installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("perl's flags").split_whitespace().map(str::to_string).collect()
    }
}

/// The `name = "..."` of every `[[bin]]` section.
fn bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) = line.strip_prefix("name = ").filter(|_| in_bin) {
            names.push(value.trim_matches('"').to_string());
        }
    }
    names
}
