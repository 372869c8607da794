//! The manual pages committed in man/: they must be what tools/man.sh
//! writes from the doc/ pages now (a doc page changed without running it
//! fails here), and man must render every one of them without a warning.
use crate::common;

use common::TempDir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every page under `dir` (`dir/manN/NAME.N`), links included, as paths
/// relative to `dir`, sorted.
fn pages_in(dir: &Path) -> Vec<PathBuf> {
    let mut pages = Vec::new();
    for section in std::fs::read_dir(dir).unwrap() {
        let section = section.unwrap().path();
        for page in std::fs::read_dir(&section).unwrap() {
            pages.push(page.unwrap().path().strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    pages.sort();
    pages
}

/// What a page is: the target of a link, or the bytes of a file.
fn contents(path: &Path) -> Result<PathBuf, Vec<u8>> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(target),
        Err(_) => Err(std::fs::read(path).unwrap()),
    }
}

/// The pages were made with Debian 12's lowdown (1.0.0); another version
/// may write other roff from the same Markdown, and this test then says so.
#[test]
fn the_committed_pages_are_those_tools_man_sh_writes() {
    if !common::have("lowdown") {
        return;
    }
    let tmp = TempDir::new();
    let fresh = tmp.join("man");
    let out = common::run(Command::new(top().join("tools/man.sh")).arg(&fresh), 60);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let committed = top().join("man");
    let stale = "man/ is not what tools/man.sh writes from doc/ now: run tools/man.sh and commit man/ \
                 (with Debian 12's lowdown 1.0.0)";
    assert_eq!(pages_in(&fresh), pages_in(&committed), "{stale}");
    for page in pages_in(&committed) {
        assert!(contents(&fresh.join(&page)) == contents(&committed.join(&page)), "{}: {stale}", page.display());
    }
}

/// `man --warnings -l` on every page, in a UTF-8 locale and in the C
/// locale: nothing on stderr, and a page on stdout that starts as a page
/// of its name and section does, with the NAME line of its doc page.
#[test]
fn every_page_renders_without_warnings() {
    if !common::have("man") {
        return;
    }
    let man = top().join("man");
    let pages = pages_in(&man);
    assert!(pages.len() >= 21, "{pages:?}");
    for page in &pages {
        // A link renders as the page it names (ipcrun.1 as ipcdo.1).
        let shown = man.join(page).canonicalize().unwrap();
        let (name, section) = shown.file_name().unwrap().to_str().unwrap().rsplit_once('.').unwrap();
        let header = format!("{}({section})", name.to_uppercase());
        // The NAME line is the title of the doc page the page comes from.
        let source = std::fs::read_to_string(&shown).unwrap();
        let doc = source.lines().find_map(|l| l.strip_prefix(".\\\" Generated from ")).unwrap();
        let doc = doc.split_whitespace().next().unwrap();
        let markdown = std::fs::read_to_string(top().join(doc)).unwrap();
        let title = markdown.lines().next().unwrap().strip_prefix("# ").unwrap();
        for locale in ["C.UTF-8", "C"] {
            let out = common::run(
                Command::new("man")
                    .args(["--warnings", "-l"])
                    .arg(man.join(page))
                    .env("MANWIDTH", "80")
                    .env("LC_ALL", locale)
                    .env_remove("MAN_KEEP_FORMATTING"),
                30,
            );
            let what = format!("{} in {locale}", page.display());
            assert_eq!(out.status.code(), Some(0), "{what}: {}", common::stderr(&out));
            assert_eq!(common::stderr(&out), "", "{what}");
            let text = common::stdout(&out);
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines[0].starts_with(&header) && lines[0].ends_with(&header), "{what}: {}", lines[0]);
            let at = lines.iter().position(|l| *l == "NAME").unwrap_or_else(|| panic!("{what}: no NAME"));
            let name_line: Vec<&str> =
                lines[at + 1..].iter().take_while(|l| !l.is_empty()).flat_map(|l| l.split_whitespace()).collect();
            assert_eq!(name_line.join(" "), title, "{what}");
            assert!(lines.contains(&"DESCRIPTION"), "{what}");
        }
    }
}
