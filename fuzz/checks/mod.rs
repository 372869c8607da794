//! The properties the fuzz targets check, one module per target, each with
//! `check(data)`, which panics when the code under test and the module's
//! reference model disagree on `data`. Compiled into the fuzz targets
//! (fuzz_targets/) and into the replay test tests/fuzz_corpus.rs, so that
//! every corpus file is checked on stable by `cargo test`.
//!
//! The references are small std implementations written from the formats'
//! descriptions (allocation allowed, speed no concern); they never call the
//! code under test.

pub mod cdb_model;
pub mod cdb_reader;
pub mod cdb_writer;
pub mod connection;
pub mod options;
pub mod request;
pub mod request_socket;
pub mod rules;
pub mod s6rules_cdb;
pub mod support;
