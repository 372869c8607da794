//! ucspi-ipc: UCSPI tools for Unix-domain sockets, built as small static
//! programs that chain-load into each other, s6 style.
//!
//! The library holds every mechanism once; each program in `src/bin/` is a
//! short script over it. It is `no_std` and allocation-free so that the
//! programs link without libc (see [`runtime`]); its unit tests run under
//! the normal std harness.
#![cfg_attr(not(test), no_std)]

pub mod args;
pub mod bounded;
pub mod cdb;
pub mod children;
pub mod client;
pub mod connection;
pub mod env;
pub mod exec;
pub mod io;
#[cfg(feature = "libc")]
pub mod libc;
pub mod lines;
pub mod lockfile;
pub mod log;
pub mod mapped_vec;
pub mod netstring;
pub mod num;
pub mod prefork;
mod program;
pub mod pty;
pub mod relay;
pub mod request;
pub mod rules;
pub mod rules_programs;
pub mod runtime;
pub mod s6rules;
pub mod server_options;
pub mod socket;
pub mod spawn_policy;
pub mod strvec;
pub mod uidgid;
pub mod userdb;
