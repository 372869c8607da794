//! Links the programs as static, non-PIE executables with our own entry point
//! (see doc/design in the spec: no libc start files). The `-bins` form leaves
//! the test harness and integration tests linking normally.
fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
