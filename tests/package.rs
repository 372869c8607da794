//! package/install and package/modes: every program the crate builds is
//! installed, with its mode, and a partial build installs nothing; a
//! program only a Cargo feature builds (ipcperl) is installed when built.
//! Every program has a manual page, installed where man finds it.
use crate::common;

use common::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The programs Cargo.toml builds, in its order, each with whether it
/// needs a feature (`required-features`).
fn built_programs() -> Vec<(String, bool)> {
    let manifest = std::fs::read_to_string(top().join("Cargo.toml")).unwrap();
    let mut programs: Vec<(String, bool)> = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) = line.strip_prefix("name = ").filter(|_| in_bin) {
            programs.push((value.trim_matches('"').to_string(), false));
        } else if line.starts_with("required-features = ") && in_bin {
            programs.last_mut().unwrap().1 = true;
        }
    }
    programs
}

/// A line of package/modes: NAME MODE [optional].
struct Listed {
    name: String,
    mode: String,
    optional: bool,
}

/// The lines of package/modes.
fn listed_programs() -> Vec<Listed> {
    let modes = std::fs::read_to_string(top().join("package/modes")).unwrap();
    modes
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            assert!(matches!(fields[..], [_, _] | [_, _, "optional"]), "package/modes: {l}");
            Listed { name: fields[0].to_string(), mode: fields[1].to_string(), optional: fields.len() == 3 }
        })
        .collect()
}

/// The directory that holds `release/` with our built programs.
fn target_dir() -> std::path::PathBuf {
    common::bin("ipcserver").parent().unwrap().parent().unwrap().to_path_buf()
}

/// Every program, and `optional` exactly for those a feature builds.
#[test]
fn modes_lists_every_program_the_crate_builds() {
    let mut built = built_programs();
    let mut listed: Vec<(String, bool)> = listed_programs().into_iter().map(|l| (l.name, l.optional)).collect();
    assert!(built.len() >= 17, "{built:?}");
    assert!(built.contains(&("ipcperl".to_string(), true)), "{built:?}");
    built.sort();
    listed.sort();
    assert_eq!(listed, built);
}

#[test]
fn install_copies_every_program_with_its_mode() {
    if !common::bin("ipcserver").ends_with("release/ipcserver") {
        common::skip("package/install takes release builds (cargo test --release)");
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
    // An optional program is installed if this build made it.
    let release = target_dir().join("release");
    let expected_programs: Vec<Listed> =
        listed_programs().into_iter().filter(|l| !l.optional || release.join(&l.name).is_file()).collect();
    let mut expected: Vec<String> = expected_programs.iter().map(|l| l.name.clone()).collect();
    expected.sort();
    assert_eq!(installed, expected, "no leftover NAME.tmp, nothing missing");
    for Listed { name, mode, .. } in expected_programs {
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

/// A release directory of stand-ins for the listed programs (the
/// optional ones only if `with_optional`), without `leave_out`.
fn stand_ins(with_optional: bool, leave_out: &str) -> TempDir {
    let dir = TempDir::new();
    std::fs::create_dir(dir.join("release")).unwrap();
    for l in listed_programs() {
        if (with_optional || !l.optional) && l.name != leave_out {
            std::fs::write(dir.join("release").join(&l.name), format!("#!/bin/sh\n# {}\n", l.name)).unwrap();
        }
    }
    dir
}

fn install_from(built: &TempDir, dest: &TempDir) -> std::process::Output {
    install_command(built, dest).output().unwrap()
}

/// `package/install --destdir DEST` from a stand-in build, with no PREFIX,
/// DESTDIR or MANDIR from our environment.
fn install_command(built: &TempDir, dest: &TempDir) -> Command {
    let mut c = Command::new(top().join("package/install"));
    c.arg("--destdir").arg(dest.path()).env("CARGO_TARGET_DIR", built.path());
    c.env_remove("PREFIX").env_remove("DESTDIR").env_remove("MANDIR");
    c
}

/// A program that only a feature builds is installed when it was built,
/// skipped without a word when it was not; a required one that is
/// missing still stops everything.
#[test]
fn install_skips_a_missing_optional_program_only() {
    let optional: Vec<String> = listed_programs().into_iter().filter(|l| l.optional).map(|l| l.name).collect();
    assert_eq!(optional, ["ipcperl"]);
    let installed = |dest: &TempDir| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dest.join("usr/local/bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let required = {
        let mut v: Vec<String> = listed_programs().into_iter().filter(|l| !l.optional).map(|l| l.name).collect();
        v.sort();
        v
    };

    let dest = TempDir::new();
    let out = install_from(&stand_ins(false, ""), &dest);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ipcperl"));
    assert_eq!(installed(&dest), required);

    let dest = TempDir::new();
    let out = install_from(&stand_ins(true, ""), &dest);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/usr/local/bin/ipcperl (0755)\n"));
    assert!(installed(&dest).contains(&"ipcperl".to_string()));

    for with_optional in [false, true] {
        let dest = TempDir::new();
        let out = install_from(&stand_ins(with_optional, "ipcserverd"), &dest);
        assert_eq!(out.status.code(), Some(100));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("package/install: fatal: missing in "), "{err}");
        assert!(err.contains(": ipcserverd (run cargo build --release first)\n"), "only ipcserverd: {err}");
        assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0, "nothing created");
    }
}

#[test]
fn an_unknown_option_is_a_usage_error() {
    let out = Command::new(top().join("package/install")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "package/install: usage: package/install [ --prefix DIR ] [ --destdir DIR ] [ --mandir DIR ] [ --target TRIPLE ]\n"
    );
}

/// `--target TRIPLE` takes the programs of a cross build, from
/// TRIPLE/release in the target directory, and names the build to run
/// when one is missing.
#[test]
fn target_takes_a_cross_build() {
    let cross = TempDir::new();
    let built = stand_ins(false, "");
    std::fs::create_dir(cross.join("aarch64-unknown-linux-gnu")).unwrap();
    std::fs::rename(built.join("release"), cross.join("aarch64-unknown-linux-gnu/release")).unwrap();
    let dest = TempDir::new();
    let install = |target: &str| {
        Command::new(top().join("package/install"))
            .args(["--target", target, "--destdir"])
            .arg(dest.path())
            .env("CARGO_TARGET_DIR", cross.path())
            .output()
            .unwrap()
    };
    let out = install("aarch64-unknown-linux-gnu");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let script = std::fs::read_to_string(dest.join("usr/local/bin/ipcserverd")).unwrap();
    assert_eq!(script, "#!/bin/sh\n# ipcserverd\n");
    let out = install("riscv64gc-unknown-linux-gnu");
    assert_eq!(out.status.code(), Some(100));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/riscv64gc-unknown-linux-gnu/release: ipcserver "), "{err}");
    assert!(err.ends_with(" (run cargo build --release --target riscv64gc-unknown-linux-gnu first)\n"), "{err}");
}

/// The manual pages under `mandir`, as paths relative to it
/// (`man1/ipcserver.1`), sorted.
fn pages_under(mandir: &Path) -> Vec<String> {
    let mut pages = Vec::new();
    for section in std::fs::read_dir(mandir).unwrap() {
        let section = section.unwrap();
        for page in std::fs::read_dir(section.path()).unwrap() {
            let page = page.unwrap().file_name().into_string().unwrap();
            pages.push(format!("{}/{page}", section.file_name().into_string().unwrap()));
        }
    }
    pages.sort();
    pages
}

/// Every program in package/modes has its page in section 1, and the
/// rules format and the environment have theirs (tests/man.rs checks
/// that the pages are up to date and render).
#[test]
fn every_program_has_a_manual_page() {
    let pages = committed_pages();
    for l in listed_programs() {
        assert!(pages.contains(&format!("man1/{}.1", l.name)), "no man/man1/{}.1: {pages:?}", l.name);
    }
    for page in ["man5/ucspi-ipc-rules.5", "man7/ucspi-ipc-environ.7"] {
        assert!(pages.contains(&page.to_string()), "no man/{page}: {pages:?}");
    }
}

/// The manual pages committed in man/.
fn committed_pages() -> Vec<String> {
    pages_under(&top().join("man"))
}

/// The pages go to PREFIX/share/man/manN, or to --mandir (or $MANDIR)
/// under DESTDIR, mode 0644, the link ipcrun.1 as a link, ipcperl's page
/// only with ipcperl.
#[test]
fn install_puts_the_pages_in_mandir() {
    let dest = TempDir::new();
    let out = install_command(&stand_ins(false, ""), &dest).args(["--prefix", "/usr"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mandir = dest.join("usr/share/man");
    let without_ipcperl: Vec<String> = committed_pages().into_iter().filter(|p| p != "man1/ipcperl.1").collect();
    assert_eq!(pages_under(&mandir), without_ipcperl, "no leftover NAME.tmp, no page of a program not built");
    for page in &without_ipcperl {
        let (installed, committed) = (mandir.join(page), top().join("man").join(page));
        match std::fs::read_link(&committed) {
            Ok(target) => {
                assert_eq!(std::fs::read_link(&installed).unwrap(), target, "{page}");
                let line = format!("installed {}/{page} (link to {})\n", mandir.display(), target.display());
                assert!(String::from_utf8_lossy(&out.stdout).contains(&line), "{line}");
            }
            Err(_) => {
                assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&committed).unwrap(), "{page}");
                let mode = std::fs::symlink_metadata(&installed).unwrap().permissions().mode() & 0o7777;
                assert_eq!(mode, 0o644, "{page}");
                let line = format!("installed {}/{page} (0644)\n", mandir.display());
                assert!(String::from_utf8_lossy(&out.stdout).contains(&line), "{line}");
            }
        }
    }
    assert_eq!(std::fs::read_link(mandir.join("man1/ipcrun.1")).unwrap(), Path::new("ipcdo.1"));

    let dest = TempDir::new();
    let out = install_command(&stand_ins(true, ""), &dest).args(["--mandir", "/opt/man"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(pages_under(&dest.join("opt/man")), committed_pages(), "ipcperl's page with ipcperl");
    assert!(!dest.join("usr/local/share").exists());

    let dest = TempDir::new();
    let out = install_command(&stand_ins(false, ""), &dest).env("MANDIR", "/srv/man").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dest.join("srv/man/man1/ipcserver.1").is_file());
}

/// After `package/install --prefix /usr/local`, man finds every page by
/// its name: here under a DESTDIR given to `man -M`; the next test checks
/// that /usr/local/share/man is where man looks by default.
#[test]
fn man_finds_the_installed_pages() {
    if !common::have("man") {
        return;
    }
    let dest = TempDir::new();
    let out = install_command(&stand_ins(true, ""), &dest).args(["--prefix", "/usr/local"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mandir = dest.join("usr/local/share/man");
    for (name, header) in [
        ("ipcserver", "IPCSERVER(1)"),
        ("ipcperl", "IPCPERL(1)"),
        ("ipcrun", "IPCDO(1)"),
        ("ucspi-ipc-rules", "UCSPI-IPC-RULES(5)"),
        ("ucspi-ipc-environ", "UCSPI-IPC-ENVIRON(7)"),
    ] {
        let out = common::run(
            Command::new("man").arg("-M").arg(&mandir).arg(name).env("MANWIDTH", "80").env_remove("MANPATH"),
            30,
        );
        assert_eq!(out.status.code(), Some(0), "man {name}: {}", common::stderr(&out));
        let text = common::stdout(&out);
        assert!(text.starts_with(header), "man {name}: {}", text.lines().next().unwrap_or(""));
        assert!(text.contains(&format!("       {name}")), "man {name}: {text}");
    }
}

/// The default MANDIR of `--prefix /usr/local` is on man's search path
/// (on Debian, /etc/manpath.config has it), so that `man ipcserver` works
/// after a plain `package/install`.
#[test]
fn the_default_mandir_is_on_mans_search_path() {
    if !common::have("manpath") {
        return;
    }
    let out = common::run(Command::new("manpath").arg("-g"), 30);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let same = |p: &Path| -> bool {
        let wanted = Path::new("/usr/local/share/man");
        p == wanted || matches!((p.canonicalize(), wanted.canonicalize()), (Ok(a), Ok(b)) if a == b)
    };
    let path = common::stdout(&out);
    assert!(path.trim_end().split(':').any(|p| same(Path::new(p))), "manpath -g: {path}");
}
