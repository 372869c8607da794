//! ipcrules, run for real: options, behaviour and messages.
use crate::common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Compiles `rules` into DIR/rules.cdb.
fn compile(d: &TempDir, rules: &str) -> std::process::Output {
    run_input(cmd("ipcrules").arg(d.join("rules.cdb")).arg(d.join("rules.tmp")), rules.as_bytes(), 60)
}

/// `cdb -q -n 1 FILE KEY`: the first value for KEY, or None when absent.
fn cdb_query(file: &Path, key: &str) -> Option<Vec<u8>> {
    let o = Command::new("cdb").args(["-q", "-n", "1"]).arg(file).arg(key).output().unwrap();
    match o.status.code() {
        Some(0) => Some(o.stdout),
        Some(100) => None,
        c => panic!("cdb -q {key}: exit {c:?}: {}", stderr(&o)),
    }
}

/// `cdb -d FILE` output.
fn cdb_dump(file: &Path) -> Vec<u8> {
    let o = Command::new("cdb").arg("-d").arg(file).output().unwrap();
    assert!(o.status.success(), "cdb -d: {}", stderr(&o));
    o.stdout
}

#[test]
fn usage_errors() {
    let d = TempDir::new();
    let usage = "ipcrules: usage: ipcrules rules.cdb rules.tmp\n";
    for (args, err) in [
        (vec![], usage.to_string()),
        (vec!["a.cdb"], usage.to_string()),
        (vec!["a.cdb", "a.tmp", "extra"], usage.to_string()),
        (vec!["-x", "a.cdb", "a.tmp"], format!("ipcrules: illegal option -- x\n{usage}")),
    ] {
        let o = run(cmd("ipcrules").current_dir(d.path()).args(&args), 10);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert_eq!(stderr(&o), err, "{args:?}");
    }
    assert!(std::fs::read_dir(d.path()).unwrap().next().is_none(), "usage errors create nothing");
    // `--` ends the options.
    let o = run_input(cmd("ipcrules").current_dir(d.path()).args(["--", "a.cdb", "a.tmp"]), b":deny\n", 10);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(d.join("a.cdb").exists());
}

#[test]
fn compiles_every_form_readable_by_tinycdb() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let rules = "# the manual's example\n\
                 1001.1010:allow,which=\"first\"\n\
                 1002:allow,which=/second/\n\
                 \n\
                 :allow,which=+third+\n\
                 .1010:allow,which==fourth=\n\
                 2000-2002:deny\n\
                 3000:allow,A=\"x,y\",B=//,C='sp ace' \t \n\
                 3001:deny,WHY=\"no\"\n\
                 3002:allow";
    let o = compile(&d, rules);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    assert!(!d.join("rules.tmp").exists());
    let cdb = d.join("rules.cdb");
    assert_eq!(std::fs::metadata(&cdb).unwrap().permissions().mode() & 0o777, 0o644);
    let q = |k: &str| cdb_query(&cdb, k);
    assert_eq!(q("1001.1010").unwrap(), b"+which=first\0");
    assert_eq!(q("1002").unwrap(), b"+which=second\0");
    assert_eq!(q("").unwrap(), b"+which=third\0");
    assert_eq!(q(".1010").unwrap(), b"+which=fourth\0");
    for k in ["2000", "2001", "2002"] {
        assert_eq!(q(k).unwrap(), b"D\0");
    }
    assert_eq!(q("1999"), None);
    assert_eq!(q("2003"), None);
    assert_eq!(q("2000-2002"), None);
    assert_eq!(q("3000").unwrap(), b"+A=x,y\0+B=\0+C=sp ace\0");
    assert_eq!(q("3001").unwrap(), b"D\0+WHY=no\0");
    assert_eq!(q("3002").unwrap(), b"");
    // Comments and blank lines make no record.
    let dump = cdb_dump(&cdb);
    assert_eq!(dump.iter().filter(|&&c| c == b'\n').count(), 10 + 1, "{}", String::from_utf8_lossy(&dump));
}

/// What the original compiles and we compile to the same records:
/// ipcexec keys, nameless assignments, names with commas.
#[test]
fn the_original_forms_compile_to_the_same_records() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let o = compile(
        &d,
        "1001,0.echo:allow\n1001.1010,0.echo:allow,A=\"x\"\n,0.ls:deny\n1-2,0.ls:deny\n\
         :allow,=\"nameless\",B=\"x\"\n.5:allow,A,B=\"y\"\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cdb = d.join("rules.cdb");
    let q = |k: &str| cdb_query(&cdb, k);
    assert_eq!(q("1001,0.echo").unwrap(), b"");
    assert_eq!(q("1001.1010,0.echo").unwrap(), b"+A=x\0");
    assert_eq!(q(",0.ls").unwrap(), b"D\0");
    assert_eq!(q("1,0.ls").unwrap(), b"D\0");
    assert_eq!(q("2,0.ls").unwrap(), b"D\0");
    assert_eq!(q("").unwrap(), b"+=nameless\0+B=x\0");
    assert_eq!(q(".5").unwrap(), b"+A,B=y\0");
}

/// Numbers are stored canonically: `01001:deny` denies uid 1001 (the
/// original stores `01001`, which no lookup ever builds).
#[test]
fn leading_zeros_are_canonicalised() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let o = compile(&d, "01001:deny\n007.0010:allow\n.000:deny\n08-010:deny\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cdb = d.join("rules.cdb");
    let dump = String::from_utf8(cdb_dump(&cdb)).unwrap();
    assert_eq!(dump, "+4,2:1001->D\0\n+4,0:7.10->\n+2,2:.0->D\0\n+1,2:8->D\0\n+1,2:9->D\0\n+2,2:10->D\0\n\n");
}

#[test]
fn same_bytes_as_tinycdb_cdb_make() {
    if !have("cdb") {
        return;
    }
    let d = TempDir::new();
    let o = compile(&d, "1:allow,A=\"1\"\n.2:deny\n:allow\n1:deny\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let input = "+1,5:1->+A=1\0\n+2,2:.2->D\0\n+0,0:->\n+1,2:1->D\0\n\n";
    let theirs = d.join("theirs.cdb");
    let mut c = Command::new("cdb");
    c.arg("-c").arg(&theirs);
    let o = run_input(&mut c, input.as_bytes(), 10);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("rules.cdb")).unwrap(), std::fs::read(&theirs).unwrap());
    // Duplicate keys: the first one wins, for tinycdb as for us.
    assert_eq!(cdb_query(&d.join("rules.cdb"), "1").unwrap(), b"+A=1\0");
}

#[test]
fn unparseable_line_leaves_the_old_rules() {
    let d = TempDir::new();
    assert_eq!(compile(&d, "1:deny\n").status.code(), Some(0));
    let before = std::fs::read(d.join("rules.cdb")).unwrap();
    let colon = "a colon after the address (ADDRESS:allow or ADDRESS:deny)";
    let address =
        "an address at the start of the line: UID, UID.GID, .GID, FIRST-LAST (decimal numbers), or nothing for anyone";
    let bad = [
        ("bad line", "bad line", colon),
        ("1:allow,A=\"unterminated", "1:allow,A=\"unterminated", "the closing \" of the quoted value"),
        ("5-4:deny", "5-4:deny", "a range FIRST-LAST with FIRST at most LAST"),
        ("-5:deny", "-5:deny", "the first uid of the range before '-' (0-5, not -5)"),
        ("a-b:deny", "a-b:deny", address),
        ("1:permit", "1:permit", "'allow' or 'deny' after the colon"),
        ("1:allow#x", "1:allow#x", "',NAME=\"value\"' or the end of the line"),
        ("1:allow,A", "1:allow,A", "'=' after the name of the variable"),
        ("1:allow,A=", "1:allow,A=", "a quoted value after '=', such as \"value\""),
        ("1:allow=\"/bin/sh\"", "1:allow=\"/bin/sh\"", "no path after 'allow' (allow=\"path\" is for ipcexecrules)"),
        ("x.1:allow", "x.1:allow", address),
        // Keys that could never match (the original stores them as text).
        ("1 :deny", "1 :deny", address),
        ("4294967296:deny", "4294967296:deny", "a uid or gid from 0 to 4294967295"),
        ("1001,x:deny", "1001,x:deny", "UID.PROGRAM after the comma of the address"),
        // A line the original skips silently (no colon): a deny must not
        // vanish.
        ("1001deny", "1001deny", colon),
        // The line is shown as the original shows it: trailing blanks
        // cut, then ending at a NUL byte (never a raw NUL in a message).
        ("1:allow,A \t", "1:allow,A", "'=' after the name of the variable"),
        ("1:deny\0junk", "1:deny", "text without a NUL byte"),
        (":bogus \0x", ":bogus ", "text without a NUL byte"),
        (":bogus  \0  ", ":bogus  ", "text without a NUL byte"),
        ("\0abc", "", "text without a NUL byte"),
    ];
    for (line, shown, expected) in bad {
        std::fs::write(d.join("rules.tmp"), b"stale").unwrap();
        let o = compile(&d, &format!("# ok\n2:allow\n{line}\n3:deny\n"));
        assert_eq!(o.status.code(), Some(100), "{line}");
        // The original's line, then which line it is and what it lacks.
        assert_eq!(
            stderr(&o),
            format!("ipcrules: fatal: unable to parse this line: {shown}\nipcrules: line 3: expected {expected}\n")
        );
        assert_eq!(std::fs::read(d.join("rules.cdb")).unwrap(), before, "{line}");
        assert!(!d.join("rules.tmp").exists(), "{line}: tmp removed");
    }
    // The last line needs no newline, and is checked too; lines are
    // counted from 1, blank lines and comments included.
    let o = compile(&d, "\n# c\n2:allow\nlast");
    assert_eq!(
        stderr(&o),
        format!("ipcrules: fatal: unable to parse this line: last\nipcrules: line 4: expected {colon}\n")
    );
    assert_eq!(o.status.code(), Some(100));
}

#[test]
fn limits_are_what_readers_honour_with_clear_messages() {
    let d = TempDir::new();
    // The largest assignment execve accepts (NAME=VALUE, 131071 bytes).
    let fits = format!("1:allow,A=\"{}\"\n", "v".repeat(131071 - 2));
    let o = compile(&d, &fits);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let over = format!("1:allow,A=\"{}\"\n", "v".repeat(131071 - 1));
    std::fs::remove_file(d.join("rules.cdb")).unwrap();
    let o = compile(&d, &over);
    assert_eq!(o.status.code(), Some(100));
    assert!(
        stderr(&o).starts_with("ipcrules: fatal: assignment longer than 131071 bytes in this line: 1:allow,A=\"vvv"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("rules.cdb").exists());
    assert!(!d.join("rules.tmp").exists());
    // A whole rule over 1 MiB.
    let many: Vec<String> = (0..9).map(|i| format!("V{i}=\"{}\"", "v".repeat(131000))).collect();
    let o = compile(&d, &format!("1:allow,{}\n", many.join(",")));
    assert_eq!(o.status.code(), Some(100));
    assert!(stderr(&o).starts_with("ipcrules: fatal: rule longer than 1048576 bytes in this line: 1:allow,V0"));
    // A comment may be of any length; a line that is not one may not.
    let o = compile(&d, &format!("#{}\n:deny\n", "c".repeat(3_000_000)));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = compile(&d, &format!("{}:deny\n", "1".repeat(3_000_000)));
    assert_eq!(o.status.code(), Some(100));
    assert!(stderr(&o).starts_with("ipcrules: fatal: line longer than 2101249 bytes: 1111"));
    assert!(
        stderr(&o)
            .ends_with("\nipcrules: line 1: expected a line of at most 2101249 bytes (only a comment may be longer)\n"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn huge_ranges_are_refused_at_once() {
    let d = TempDir::new();
    let start = std::time::Instant::now();
    let o = compile(&d, "1:deny\n0-4294967295:deny\n");
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        stderr(&o),
        "ipcrules: fatal: range too large for a cdb file (4 GiB) in this line: 0-4294967295:deny\n\
         ipcrules: line 2: expected a range whose rules fit a cdb file (4 GiB)\n"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "refused before writing");
    assert!(!d.join("rules.cdb").exists());
    assert!(!d.join("rules.tmp").exists());
}

#[test]
fn existing_tmp_is_replaced() {
    let d = TempDir::new();
    std::fs::write(d.join("rules.tmp"), vec![b'z'; 100_000]).unwrap();
    let o = compile(&d, ":deny\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!d.join("rules.tmp").exists());
    // 2048 header + 8 + 0 + 2 record + 2 slots of 8.
    assert_eq!(std::fs::metadata(d.join("rules.cdb")).unwrap().len(), 2048 + 10 + 16);
}

#[test]
fn system_errors_are_111_with_messages() {
    let d = TempDir::new();
    assert_eq!(compile(&d, "1:deny\n").status.code(), Some(0));
    let before = std::fs::read(d.join("rules.cdb")).unwrap();

    let tmp = d.join("nodir/rules.tmp");
    let o = run_input(cmd("ipcrules").arg(d.join("rules.cdb")).arg(&tmp), b":deny\n", 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), format!("ipcrules: fatal: unable to create {}: no such file or directory\n", tmp.display()));

    // Renaming a file over a directory fails: the tmp file goes away.
    std::fs::create_dir(d.join("adir")).unwrap();
    std::fs::write(d.join("adir/keep"), b"").unwrap();
    let o = run_input(cmd("ipcrules").arg(d.join("adir")).arg(d.join("rules.tmp")), b":deny\n", 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!(
            "ipcrules: fatal: unable to move {} to {}: is a directory\n",
            d.join("rules.tmp").display(),
            d.join("adir").display()
        )
    );
    assert!(!d.join("rules.tmp").exists());

    // Standard input that cannot be read.
    let o = cmd("ipcrules")
        .arg(d.join("rules.cdb"))
        .arg(d.join("rules.tmp"))
        .stdin(Stdio::from(std::fs::File::open(d.path()).unwrap()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(stderr(&o), "ipcrules: fatal: unable to read input: is a directory\n");
    assert!(!d.join("rules.tmp").exists());
    assert_eq!(std::fs::read(d.join("rules.cdb")).unwrap(), before);
}

#[test]
fn full_disk_is_a_write_error() {
    if !Path::new("/dev/full").exists() {
        skip("no /dev/full");
        return;
    }
    let d = TempDir::new();
    std::os::unix::fs::symlink("/dev/full", d.join("full")).unwrap();
    let o = run_input(cmd("ipcrules").arg(d.join("rules.cdb")).arg(d.join("full")), b":deny\n", 10);
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        stderr(&o),
        format!("ipcrules: fatal: unable to write {}: no space left on device\n", d.join("full").display())
    );
    assert!(!d.join("rules.cdb").exists());
}

#[test]
fn a_million_rules() {
    let d = TempDir::new();
    let mut input = String::with_capacity(30_000_000);
    for i in 0..1_000_000u32 {
        input.push_str(&format!("{}.{}:allow,N=\"{}\"\n", 1000 + i, i % 997, i));
    }
    input.push_str("0-99999:deny\n");
    let start = std::time::Instant::now();
    let o = run_input(cmd("ipcrules").arg(d.join("rules.cdb")).arg(d.join("rules.tmp")), input.as_bytes(), 120);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    eprintln!("1.1M records compiled in {:?}", start.elapsed());
    if have_for("tinycdb check", "cdb") {
        let cdb = d.join("rules.cdb");
        for i in [0u32, 1, 499_999, 999_999] {
            let key = format!("{}.{}", 1000 + i, i % 997);
            assert_eq!(cdb_query(&cdb, &key).unwrap(), format!("+N={i}\0").into_bytes());
        }
        assert_eq!(cdb_query(&cdb, "99999").unwrap(), b"D\0");
        assert_eq!(cdb_query(&cdb, "100000"), None);
    }
}
