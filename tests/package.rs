//! package/install and package/modes: every program the crate builds is
//! installed, with its mode, and a partial build installs nothing.
mod common;

use common::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The programs Cargo.toml builds, in its order.
fn built_programs() -> Vec<String> {
    let manifest = std::fs::read_to_string(top().join("Cargo.toml")).unwrap();
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) = line.strip_prefix("name = ").filter(|_| in_bin) {
            names.push(value.trim_matches('"').to_string());
        }
    }
    names
}

/// The NAME MODE lines of package/modes.
fn listed_programs() -> Vec<(String, String)> {
    let modes = std::fs::read_to_string(top().join("package/modes")).unwrap();
    modes
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut fields = l.split_whitespace();
            (fields.next().unwrap().to_string(), fields.next().unwrap().to_string())
        })
        .collect()
}

/// The directory that holds `release/` with our built programs.
fn target_dir() -> std::path::PathBuf {
    common::bin("ipcserver").parent().unwrap().parent().unwrap().to_path_buf()
}

#[test]
fn modes_lists_every_program_the_crate_builds() {
    let mut built = built_programs();
    let mut listed: Vec<String> = listed_programs().into_iter().map(|(name, _)| name).collect();
    assert!(built.len() >= 17, "{built:?}");
    built.sort();
    listed.sort();
    assert_eq!(listed, built);
}

#[test]
fn install_copies_every_program_with_its_mode() {
    if !common::bin("ipcserver").ends_with("release/ipcserver") {
        common::skip(
            "install_copies_every_program_with_its_mode",
            "package/install takes release builds (cargo test --release)",
        );
        return;
    }
    let dest = TempDir::new();
    let out = Command::new(top().join("package/install"))
        .args(["--prefix", "/usr", "--destdir"])
        .arg(dest.path())
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let bindir = dest.path().join("usr/bin");
    let mut installed: Vec<String> =
        std::fs::read_dir(&bindir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    installed.sort();
    let mut expected: Vec<String> = listed_programs().into_iter().map(|(name, _)| name).collect();
    expected.sort();
    assert_eq!(installed, expected, "no leftover NAME.tmp, nothing missing");
    for (name, mode) in listed_programs() {
        let meta = std::fs::metadata(bindir.join(&name)).unwrap();
        assert_eq!(format!("{:04o}", meta.permissions().mode() & 0o7777), mode, "{name}");
        assert_eq!(std::fs::read(bindir.join(&name)).unwrap(), std::fs::read(common::bin(&name)).unwrap(), "{name}");
        let line = format!("package/install: installed {}/{name} ({mode})\n", bindir.display());
        assert!(String::from_utf8_lossy(&out.stdout).contains(&line), "{line}");
    }
}

#[test]
fn a_partial_build_installs_nothing() {
    let partial = TempDir::new();
    std::fs::create_dir(partial.join("release")).unwrap();
    std::fs::copy(common::bin("ipcserver"), partial.join("release/ipcserver")).unwrap();
    let dest = TempDir::new();
    let out = Command::new(top().join("package/install"))
        .arg("--destdir")
        .arg(dest.path())
        .env("CARGO_TARGET_DIR", partial.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("package/install: fatal: missing in "), "{err}");
    assert!(err.contains(" ipcserverd ") && err.contains(" ipcexec-config "), "{err}");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0, "nothing created");
}

#[test]
fn an_unknown_option_is_a_usage_error() {
    let out = Command::new(top().join("package/install")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "package/install: usage: package/install [ --prefix DIR ] [ --destdir DIR ]\n"
    );
}
