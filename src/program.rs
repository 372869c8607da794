//! [`crate::program!`], which makes a binary a program on
//! [`crate::runtime`]: the glue between the runtime and [`crate::log`],
//! the one place where they meet (a panic, and a failure to protect the
//! relocated data at start-up, are logged there), so that the runtime
//! does not use the log, which uses it.
//!
//! It holds nothing but the macro: the entry point's assembly is each
//! architecture's (`runtime_entry!`), the start-up
//! [`crate::runtime::Start`]'s.

/// Turns a binary into a program on this runtime: defines `_start` (which
/// relocates the program, see
/// [`Start::from_entry`](crate::runtime::Start::from_entry)), the memory
/// functions and the panic handler ([`crate::log::panic_exit`]), and calls
/// `$main(Start) -> !`.
///
/// Under `cfg(test)` (as `cargo clippy --all-targets` builds every binary)
/// it defines nothing and only refers to `$main`, so that a binary also
/// compiles as an ordinary test crate on std.
#[macro_export]
macro_rules! program {
    ($main:path) => {
        #[cfg(test)]
        const _: fn($crate::runtime::Start) -> ! = $main;

        #[cfg(not(test))]
        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::log::panic_exit(info)
        }

        #[cfg(not(test))]
        $crate::runtime_entry!();

        // The precompiled libcore's unwinding tables name this personality
        // routine; the release profile's LTO drops them, an unoptimised
        // build (`cargo build`) links them and needs the symbol. Nothing
        // unwinds here (panic = "abort", no unwinder linked): never called.
        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        extern "C" fn rust_eh_personality() {}

        /// The program's entry, once relocated: its arguments off the
        /// initial stack, its relocated data made read-only (or `NAME:
        /// fatal: unable to make the relocated data read-only: REASON`,
        /// exit 111), then `$main`.
        ///
        /// # Safety
        /// Only from `_start`, once, with the kernel's stack pointer and
        /// the bias `__ucspi_relocate` returned.
        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        unsafe extern "C" fn __ucspi_main(sp: *const usize, load_bias: usize) -> ! {
            // SAFETY: this function's contract, which is `from_entry`'s:
            // called only from `_start`, once, with the kernel's stack
            // pointer and the bias `__ucspi_relocate` returned.
            let start = match unsafe { $crate::runtime::Start::from_entry(sp, load_bias) } {
                Ok(start) => start,
                Err(e) => $crate::log::die_sys(e, &[b"make the relocated data read-only"]),
            };
            $main(start)
        }

        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: same contract as C's memcpy.
            unsafe { $crate::runtime::mem::memcpy(d, s, n) }
        }
        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: same contract as C's memmove.
            unsafe { $crate::runtime::mem::memmove(d, s, n) }
        }
        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: same contract as C's memset.
            unsafe { $crate::runtime::mem::memset(d, c, n) }
        }
        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: same contract as C's memcmp.
            unsafe { $crate::runtime::mem::memcmp(a, b, n) }
        }
        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: same contract as C's bcmp.
            unsafe { $crate::runtime::mem::memcmp(a, b, n) }
        }
        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        unsafe extern "C" fn strlen(s: *const u8) -> usize {
            // SAFETY: same contract as C's strlen.
            unsafe { $crate::runtime::mem::strlen(s) }
        }
    };
}
