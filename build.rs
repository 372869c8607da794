//! Links the programs (and the examples, which are programs too) as static,
//! non-PIE executables with our own entry point (see doc/design.md: no libc
//! start files). The test harness and integration tests link normally.
//!
//! The exception is ipcperl, which embeds libperl and so links libc the
//! usual way: it gets none of these arguments (its own are added when the
//! `perl` feature builds it).
const STATIC_NO_LIBC: [&str; 4] = ["-nostartfiles", "-nostdlib", "-static", "-no-pie"];
const LINKS_LIBC: [&str; 1] = ["ipcperl"];

fn main() {
    let manifest = std::fs::read_to_string("Cargo.toml").expect("Cargo.toml");
    for name in bin_names(&manifest).iter().filter(|n| !LINKS_LIBC.contains(&n.as_str())) {
        for arg in STATIC_NO_LIBC {
            println!("cargo:rustc-link-arg-bin={name}={arg}");
        }
    }
    for arg in STATIC_NO_LIBC {
        println!("cargo:rustc-link-arg-examples={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
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
