//! The integration tests, as one test crate: each file of tests/ is a
//! module of it (a program's tests, a peer's interoperability, the
//! documentation's examples, ...), sharing tests/common. One crate links
//! once: as 31 test binaries, each linked with the release profile's fat
//! LTO, linking was nearly all of the time `cargo test --release` took.
//!
//! Every test runs as a thread of this one process, beside the tests of
//! every other file: a test changes nothing that is the process's own
//! (environment, current directory, umask, signal dispositions and masks,
//! resource limits), reaps no child it did not start, and opens every
//! descriptor close-on-exec, so that no other test's child inherits it
//! (tests that look at which descriptors a program received, or wait for
//! the last copy of one to close, would see it).
//!
//! One file's tests: `cargo test --release --test suite ipcserver::`.
//! ipcperl's need the `perl` feature: `cargo test --release --features
//! perl --test suite ipcperl::` (without it they say SKIPPED).

mod common;

mod abstract_sockets;
mod compat_original;
mod docs;
mod fuzz_corpus;
mod hardening;
mod initramfs;
mod interop_s6;
mod ipcaccept;
mod ipcapplyuidgid;
mod ipccat;
mod ipcclient;
mod ipcconnect;
mod ipcexec;
mod ipcexec_config;
mod ipchandle_c;
mod ipclisten;
mod ipcperl;
mod ipcrules;
mod ipcrulescheck;
mod ipcserver;
mod ipcserver_access;
mod ipcserver_socketbinder;
mod ipcserverd;
mod man;
mod package;
mod peer_facts;
mod prefork;
mod readme;
mod recipes;
mod s6_rc;
mod s6_rules;
mod s6_supervise;
mod security;
mod signals;
