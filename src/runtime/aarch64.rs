//! aarch64 Linux: the entry point, system call instructions, a clone on a
//! new stack, and the memory functions.
//!
//! Everything here is what differs between architectures in instructions;
//! the generic runtime (`runtime.rs` and the other files of `runtime/`)
//! only uses the names below, and takes system call numbers and the
//! kernel's structures from linux-raw-sys.
//!
//! System calls: `svc 0`, the number in x8, arguments in x0 to x5, the
//! result in x0; the kernel preserves every other register.

use core::arch::{asm, global_asm};

/// `_start`: relocate the program (`__ucspi_relocate`, below), clear the
/// frame pointer and link register (the end of the frame chain), pass the
/// kernel's stack pointer and the load bias to the program's
/// `__ucspi_main`, with the stack aligned to 16 bytes as the ABI wants
/// (the kernel already does; this costs one instruction).
///
/// Also `getauxval`, which compiler-builtins' outline atomics and CPU
/// feature detection call from constructors: nothing runs constructors in
/// our programs (there is no C start-up), so it is never called, but the
/// linker wants it. It answers 0 (no optional feature), with which the
/// atomics take the path every aarch64 has.
#[macro_export]
#[doc(hidden)]
macro_rules! runtime_entry {
    () => {
        core::arch::global_asm!(
            ".globl _start",
            ".type _start, %function",
            "_start:",
            "bl __ucspi_relocate",
            "mov x1, x0",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, sp",
            "and x2, x0, #-16",
            "mov sp, x2",
            "bl __ucspi_main",
            "udf #0",
        );

        #[no_mangle]
        #[allow(unsafe_code)]
        extern "C" fn getauxval(_type: core::ffi::c_ulong) -> core::ffi::c_ulong {
            0
        }
    };
}

/// A system call with one argument.
///
/// # Safety
/// The caller guarantees the system call's own contract.
#[inline]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let ret;
    // SAFETY: a raw syscall; the kernel changes only x0.
    unsafe {
        asm!("svc 0", in("x8") n, inlateout("x0") a => ret, options(nostack));
    }
    ret
}

/// A system call with three arguments.
///
/// # Safety
/// The caller guarantees the system call's own contract.
#[inline]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let ret;
    // SAFETY: as in syscall1.
    unsafe {
        asm!("svc 0", in("x8") n, inlateout("x0") a => ret, in("x1") b, in("x2") c, options(nostack));
    }
    ret
}

/// A system call with four arguments.
///
/// # Safety
/// The caller guarantees the system call's own contract.
#[inline]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let ret;
    // SAFETY: as in syscall1.
    unsafe {
        asm!("svc 0", in("x8") n, inlateout("x0") a => ret, in("x1") b, in("x2") c, in("x3") d,
             options(nostack));
    }
    ret
}

/// A system call with five arguments.
///
/// # Safety
/// The caller guarantees the system call's own contract.
#[inline]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let ret;
    // SAFETY: as in syscall1.
    unsafe {
        asm!("svc 0", in("x8") n, inlateout("x0") a => ret, in("x1") b, in("x2") c, in("x3") d,
             in("x4") e, options(nostack));
    }
    ret
}

global_asm!(
    ".globl __ucspi_clone_on_stack",
    ".type __ucspi_clone_on_stack, %function",
    "__ucspi_clone_on_stack:",
    // x0 = flags, x1 = new stack top, x2 = entry fn, x3 = its argument.
    // The child finds x9 and x10 as they were: the kernel preserves them.
    "mov x9, x2",
    "mov x10, x3",
    "and x1, x1, #-16",
    "mov x2, xzr",
    "mov x3, xzr",
    "mov x4, xzr",
    "mov x8, {nr}",
    "svc 0",
    "cbnz x0, 2f",
    // Child: on its own stack; call entry(arg), which never returns.
    "mov x29, xzr",
    "mov x30, xzr",
    "mov x0, x10",
    "blr x9",
    "udf #0",
    "2:",
    "ret",
    nr = const super::nr::CLONE,
);

/// The relocation table `__ucspi_relocate` applies: DT_RELA (the addend
/// in each entry), every entry R_AARCH64_RELATIVE (the psABI's number).
const RELOCATIONS: super::start::RelocationTable = super::start::RelocationTable {
    tag: super::start::elf::DT_RELA,
    size_tag: super::start::elf::DT_RELASZ,
    other_tag: super::start::elf::DT_REL,
    relative: 1027,
};

// __ucspi_relocate() -> load bias: applies the program's relocations, as
// `Start::from_entry` describes, before anything reads a pointer from the
// program's data. Registers only (and the words it relocates): no call, no
// memory of the program's but the dynamic section and the table, every
// address PC-relative. Returns the load bias in x0; on a relocation it
// does not apply, writes a line and exits 111.
relocation_asm!(
    RELOCATIONS,
    [
        ".globl __ucspi_relocate",
        ".type __ucspi_relocate, %function",
        "__ucspi_relocate:",
        // x9: the load bias, the run-time address of the ELF header (linked
        // at 0); x10: the dynamic section.
        "adrp x9, __ehdr_start",
        "add x9, x9, :lo12:__ehdr_start",
        "adrp x10, _DYNAMIC",
        "add x10, x10, :lo12:_DYNAMIC",
        // Its (tag, value) pairs up to DT_NULL: x11 the table's link-time
        // address, x12 its size in bytes (both 0 if there is none).
        "mov x11, xzr",
        "mov x12, xzr",
        "2:",
        "ldp x13, x14, [x10], #16",
        "cmp x13, #{table}",
        "csel x11, x14, x11, eq",
        "cmp x13, #{table_size}",
        "csel x12, x14, x12, eq",
        "cmp x13, #{other_table}",
        "b.eq 9f",
        "cmp x13, #{jmprel}",
        "b.eq 9f",
        "cmp x13, #{relr}",
        "b.eq 9f",
        "cbnz x13, 2b",
        // Each Elf64_Rela from x11 to x12: offset, info (the type in its low
        // 32 bits), addend.
        "add x11, x11, x9",
        "add x12, x12, x11",
        "b 4f",
        "3:",
        "ldp x13, x14, [x11]",
        "ldr x15, [x11, #16]",
        "add x11, x11, #24",
        "cmp w14, #{relative}",
        "b.ne 9f",
        "add x15, x15, x9",
        "str x15, [x9, x13]",
        "4:",
        "cmp x11, x12",
        "b.lo 3b",
        "mov x0, x9",
        "ret",
        // Refused: write(2, line), exit_group(111).
        "9:",
        "mov x0, #2",
        "adrp x1, {line}",
        "add x1, x1, :lo12:{line}",
        "mov x2, #{line_len}",
        "mov x8, #{write}",
        "svc 0",
        "mov x0, #111",
        "mov x8, #{exit_group}",
        "svc 0",
        "udf #0",
    ]
);

// The memory functions are loops in assembly: the same loops in Rust could
// be compiled back into calls to the very functions they implement. They
// go eight bytes at a time where that is simple (the copy and fill
// forwards), a byte at a time elsewhere: our programs copy and compare
// short strings.

/// C's memcpy.
///
/// # Safety
/// As C's memcpy.
#[inline]
pub unsafe fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: copies n bytes forwards, eight at a time (unaligned accesses
    // are allowed on normal memory) then one at a time; buffers valid by
    // contract.
    unsafe {
        asm!(
            "cmp {n}, #8",
            "b.lo 3f",
            "2:",
            "ldr {t}, [{s}], #8",
            "str {t}, [{d}], #8",
            "sub {n}, {n}, #8",
            "cmp {n}, #8",
            "b.hs 2b",
            "3:",
            "cbz {n}, 5f",
            "4:",
            "ldrb {t:w}, [{s}], #1",
            "strb {t:w}, [{d}], #1",
            "subs {n}, {n}, #1",
            "b.ne 4b",
            "5:",
            d = inout(reg) d => _, s = inout(reg) s => _, n = inout(reg) n => _, t = out(reg) _,
            options(nostack),
        );
    }
    d
}

/// Copies `n` bytes from `s` to `d` backwards, from the last: what
/// memmove does when `d` starts inside the source.
///
/// # Safety
/// Both buffers valid for `n` bytes, `n` at least 1, `d` above `s`.
#[inline]
pub unsafe fn copy_backward(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: copies n bytes backwards, from the last; buffers valid by
    // contract, n > 0 by contract.
    unsafe {
        asm!(
            "2:",
            "subs {n}, {n}, #1",
            "ldrb {t:w}, [{s}, {n}]",
            "strb {t:w}, [{d}, {n}]",
            "b.ne 2b",
            d = in(reg) d, s = in(reg) s, n = inout(reg) n => _, t = out(reg) _,
            options(nostack),
        );
    }
}

/// C's memset.
///
/// # Safety
/// As C's memset.
#[inline]
pub unsafe fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    // The byte in each of the eight bytes of a word.
    let word = (c as u8 as u64).wrapping_mul(0x0101_0101_0101_0101);
    // SAFETY: stores n bytes forwards, as memcpy; buffer valid by contract.
    unsafe {
        asm!(
            "cmp {n}, #8",
            "b.lo 3f",
            "2:",
            "str {w}, [{d}], #8",
            "sub {n}, {n}, #8",
            "cmp {n}, #8",
            "b.hs 2b",
            "3:",
            "cbz {n}, 5f",
            "4:",
            "strb {w:w}, [{d}], #1",
            "subs {n}, {n}, #1",
            "b.ne 4b",
            "5:",
            d = inout(reg) d => _, n = inout(reg) n => _, w = in(reg) word,
            options(nostack),
        );
    }
    d
}

/// C's memcmp.
///
/// # Safety
/// As C's memcmp.
#[inline]
pub unsafe fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let diff: usize;
    // SAFETY: reads at most n bytes of each buffer, stopping at the first
    // difference; both valid for n bytes by contract.
    unsafe {
        asm!(
            "mov {r}, xzr",
            "cbz {n}, 3f",
            "2:",
            "ldrb {x:w}, [{a}], #1",
            "ldrb {y:w}, [{b}], #1",
            "subs {r}, {x}, {y}",
            "b.ne 3f",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            "3:",
            a = inout(reg) a => _, b = inout(reg) b => _, n = inout(reg) n => _, r = out(reg) diff,
            x = out(reg) _, y = out(reg) _,
            options(nostack, readonly),
        );
    }
    diff as i32
}

/// C's strlen.
///
/// # Safety
/// As C's strlen.
#[inline]
pub unsafe fn strlen(s: *const u8) -> usize {
    let end: *const u8;
    // SAFETY: scans for the NUL that the contract guarantees.
    unsafe {
        asm!(
            "2:",
            "ldrb {t:w}, [{p}], #1",
            "cbnz {t:w}, 2b",
            p = inout(reg) s => end, t = out(reg) _,
            options(nostack, readonly),
        );
    }
    // `end` is one past the NUL.
    end as usize - s as usize - 1
}
