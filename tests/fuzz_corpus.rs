//! Replays the fuzz corpora (fuzz/corpus/TARGET/, every file) through the
//! fuzz targets' own checks (fuzz/checks/), on stable: what fuzzing found
//! once stays checked by `cargo test`. Says how many files each target
//! replayed; fails naming every file whose check fails. Running the fuzzers
//! themselves takes nightly and cargo-fuzz: see README.md.
//!
//! The checks build an argv for `Getopt` and an envp for `Env` from raw
//! pointers, hence unsafe code (each block says why it is sound).
#![allow(unsafe_code)]

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::io::Write;
use std::path::Path;

/// Runs `check` on every file of the target's corpus, each in a thread of
/// its own (with room for the rules checks' megabyte buffers) so that a
/// failing file is reported and the others still run.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no corpus", dir.display());
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let run = std::thread::Builder::new().stack_size(64 << 20).spawn(move || check(&data)).unwrap();
        if run.join().is_err() {
            failed.push(file.display().to_string());
        }
    }
    // Written to stderr directly: the harness captures eprintln!.
    let _ = writeln!(std::io::stderr().lock(), "fuzz corpus {target}: replayed {} files", files.len());
    assert!(failed.is_empty(), "{target}: {} corpus files fail their check:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn rules_corpus() {
    replay("rules", checks::rules::check);
}

#[test]
fn cdb_reader_corpus() {
    replay("cdb_reader", checks::cdb_reader::check);
}

#[test]
fn cdb_writer_corpus() {
    replay("cdb_writer", checks::cdb_writer::check);
}

#[test]
fn options_corpus() {
    replay("options", checks::options::check);
}

#[test]
fn request_corpus() {
    replay("request", checks::request::check);
}

#[test]
fn request_socket_corpus() {
    // Built for another architecture than the build's: run by qemu-user.
    #[allow(clippy::eq_op)]
    let emulated = env!("UCSPI_IPC_TARGET") != env!("UCSPI_IPC_HOST");
    let check = if emulated { checks::request_socket::check_under_qemu_user } else { checks::request_socket::check };
    replay("request_socket", check);
}

#[test]
fn s6rules_cdb_corpus() {
    replay("s6rules_cdb", checks::s6rules_cdb::check);
}
