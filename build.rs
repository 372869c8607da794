//! Links the programs as static, non-PIE executables with our own entry point (see doc/design.md: no libc
//! start files). The test harness and integration tests link normally.
//!
//! The exception is ipcperl, which embeds libperl and so links libc the
//! usual way: it gets none of these arguments. With the `perl` feature
//! (which alone builds it), its C shim over Perl's embedding macros,
//! src/perl/shim.c, is compiled with the flags `perl -MExtUtils::Embed`
//! gives, and linked, with libperl, into ipcperl only.
const STATIC_NO_LIBC: [&str; 4] = ["-nostartfiles", "-nostdlib", "-static", "-no-pie"];
const LINKS_LIBC: [&str; 1] = ["ipcperl"];

fn main() {
    let manifest = std::fs::read_to_string("Cargo.toml").expect("Cargo.toml");
    for name in bin_names(&manifest).iter().filter(|n| !LINKS_LIBC.contains(&n.as_str())) {
        for arg in STATIC_NO_LIBC {
            println!("cargo:rustc-link-arg-bin={name}={arg}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    #[cfg(feature = "perl")]
    perl::link_ipcperl();
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
