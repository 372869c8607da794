//! Fuzz target: the properties of checks/s6rules_cdb.rs on every input.
#![no_main]

#[allow(dead_code)]
#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::s6rules_cdb::check(data));
