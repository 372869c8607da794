//! Fuzz target: the properties of checks/request_socket.rs on every input.
#![no_main]

#[allow(dead_code)]
#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::request_socket::check(data));
