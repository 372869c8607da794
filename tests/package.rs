//! package/install and package/modes: every program the crate builds is
//! installed, with its mode, and a partial build installs nothing; a
//! program only a Cargo feature builds (ipcperl) is installed when built.
//! Every program has a manual page, installed where man finds it. The C
//! interface to the preforking servers (library, header, pkg-config
//! file) is installed when it was built, where pkg-config and a C
//! compiler find it.
use crate::common;
use crate::ipchandle_c;

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
        "package/install: usage: package/install [ --prefix DIR ] [ --destdir DIR ] [ --mandir DIR ] \
[ --libdir DIR ] [ --includedir DIR ] [ --target TRIPLE ]\n"
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
    assert!(!dest.join("usr/local/lib").exists() && !dest.join("usr/local/include").exists(), "no C interface built");
}

/// Stand-ins for the programs, and the C interface's library as built
/// (tests/ipchandle_c.rs builds it).
fn stand_ins_with_the_c_library() -> TempDir {
    let built = stand_ins(false, "");
    std::fs::copy(ipchandle_c::library(), built.join("release/libucspi_ipc_ipchandle.a")).unwrap();
    built
}

/// The pkg-config file package/install writes for these directories.
fn pc_file(prefix: &str, libdir: &str, includedir: &str) -> String {
    let template = std::fs::read_to_string(top().join("ipchandle/ucspi-ipc-ipchandle.pc.in")).unwrap();
    let manifest = std::fs::read_to_string(top().join("Cargo.toml")).unwrap();
    let version = manifest.lines().find_map(|l| l.strip_prefix("version = \"")).unwrap().trim_end_matches('"');
    let mut pc = String::new();
    for line in template.lines().filter(|l| !l.starts_with('#')) {
        let line = line
            .replace("@prefix@", prefix)
            .replace("@libdir@", libdir)
            .replace("@includedir@", includedir)
            .replace("@version@", version);
        pc.push_str(&line);
        pc.push('\n');
    }
    assert!(!pc.contains('@'), "{pc}");
    pc
}

/// When the C interface was built: the library in LIBDIR (PREFIX/lib),
/// its header in INCLUDEDIR/ucspi-ipc (INCLUDEDIR: PREFIX/include), the
/// pkg-config file in LIBDIR/pkgconfig naming both, all 0644, under
/// DESTDIR; --libdir and --includedir (or LIBDIR and INCLUDEDIR) move them.
#[test]
fn install_puts_the_c_interface_where_pkg_config_finds_it() {
    let built = stand_ins_with_the_c_library();
    for (args, env, prefix, libdir, includedir) in [
        (vec!["--prefix", "/usr"], None, "/usr", "/usr/lib", "/usr/include"),
        (
            vec!["--libdir", "/usr/lib/x86_64-linux-gnu", "--includedir=/opt/c&d|e"],
            None,
            "/usr/local",
            "/usr/lib/x86_64-linux-gnu",
            "/opt/c&d|e",
        ),
        (vec![], Some(("LIBDIR", "/srv/lib")), "/usr/local", "/srv/lib", "/usr/local/include"),
    ] {
        let dest = TempDir::new();
        let mut c = install_command(&built, &dest);
        c.env_remove("LIBDIR").env_remove("INCLUDEDIR").args(&args);
        if let Some((name, value)) = env {
            c.env(name, value);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let under = |dir: &str, name: &str| dest.path().join(dir.trim_start_matches('/')).join(name);
        let files = [
            (under(libdir, "libucspi_ipc_ipchandle.a"), std::fs::read(built.join("release/libucspi_ipc_ipchandle.a"))),
            (under(includedir, "ucspi-ipc/ipchandle.h"), std::fs::read(top().join("ipchandle/ipchandle.h"))),
            (under(libdir, "pkgconfig/ucspi-ipc-ipchandle.pc"), Ok(pc_file(prefix, libdir, includedir).into_bytes())),
        ];
        for (file, contents) in files {
            assert_eq!(std::fs::read(&file).ok(), contents.ok(), "{args:?}: {}", file.display());
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777, 0o644, "{}", file.display());
            assert!(stdout.contains(&format!("package/install: installed {} (0644)\n", file.display())), "{stdout}");
        }
        let leftovers: Vec<_> = walk(dest.path()).into_iter().filter(|p| p.ends_with(".tmp")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

/// Every file under `dir`, as text.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

/// The C block of doc/ipchandle.md's "From C": greet.c.
fn documented_c_server() -> String {
    let page = std::fs::read_to_string(top().join("doc/ipchandle.md")).unwrap();
    let from_c = page.split("\n## From C\n").nth(1).expect("doc/ipchandle.md has a section \"From C\"");
    let block = from_c.split("```c\n").nth(1).expect("a ```c block in \"From C\"");
    block.split("\n```\n").next().unwrap().to_string() + "\n"
}

/// The page's greet.c, compiled as the page says against what
/// package/install installed (found through pkg-config, in a DESTDIR),
/// serves as the page shows.
#[test]
fn the_documented_c_server_builds_with_pkg_config_and_serves() {
    if !common::have("pkg-config") {
        return;
    }
    let Some(cc) = ipchandle_c::c_compiler() else {
        common::skip(ipchandle_c::NO_C_COMPILER);
        return;
    };
    let built = stand_ins_with_the_c_library();
    let dest = TempDir::new();
    let out = install_command(&built, &dest).env_remove("LIBDIR").env_remove("INCLUDEDIR").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let pkg_config = common::run(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "ucspi-ipc-ipchandle"])
            .env("PKG_CONFIG_PATH", dest.join("usr/local/lib/pkgconfig"))
            .env("PKG_CONFIG_SYSROOT_DIR", dest.path())
            .env_remove("PKG_CONFIG_LIBDIR"),
        30,
    );
    assert_eq!(pkg_config.status.code(), Some(0), "{}", common::stderr(&pkg_config));
    let flags = common::stdout(&pkg_config);
    let source = dest.join("greet.c");
    std::fs::write(&source, documented_c_server()).unwrap();
    let greet = dest.join("greet");
    let o = common::run(
        Command::new(cc)
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(&greet)
            .arg(&source)
            .args(flags.split_whitespace()),
        120,
    );
    assert!(o.status.success(), "cc greet.c {flags}: {}", common::stderr(&o));
    let sock = dest.join("s");
    let mut c = Command::new(&greet);
    c.args(["-c", "2"]).arg(&sock).arg("hi");
    let mut server = common::Server::start(&mut c, &sock);
    let (uid, _) = common::own_ids();
    let answer = common::fetch(&sock).unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), format!("hi, uid {uid}: you are client 1 of this child\n"));
    common::stop_with_children(&mut server);
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
