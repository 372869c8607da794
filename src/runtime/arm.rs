//! 32-bit ARM Linux (EABI, ARMv7 and later, in ARM or Thumb-2 code): the
//! entry point, system call instructions, a clone on a new stack, and the
//! memory functions.
//!
//! Everything here is what differs between architectures in instructions;
//! the generic runtime (`runtime.rs` and the other files of `runtime/`)
//! only uses the names below, and takes system call numbers and the
//! kernel's structures from linux-raw-sys.
//!
//! System calls: `svc 0`, the number in r7, arguments in r0 to r5, the
//! result in r0; the kernel preserves every other register. In Thumb code
//! r7 is the frame pointer, which inline assembly may not name: it is
//! saved in another register around the call instead.

use core::arch::{asm, global_asm};

/// The instruction set of the program's own code, for the assembly below,
/// which defines functions: Thumb-2 on thumbv7 targets, else ARM. The
/// assembler is told, as it does not follow the compiler's choice, and
/// each definition sets it anew: one may follow another's in a module.
#[cfg(thumb_mode)]
#[macro_export]
#[doc(hidden)]
macro_rules! code_mode {
    () => {
        ".thumb\n.thumb_func"
    };
}
#[cfg(not(thumb_mode))]
#[macro_export]
#[doc(hidden)]
macro_rules! code_mode {
    () => {
        ".arm"
    };
}

/// `_start`: relocate the program (`__ucspi_relocate`, below), clear the
/// frame pointers (r7 in Thumb code, r11 in ARM code) and the link
/// register (the end of the frame chain), pass the kernel's stack pointer
/// and the load bias to the program's `__ucspi_main`, with the stack
/// aligned to 16 bytes (the ABI asks for 8).
#[macro_export]
#[doc(hidden)]
macro_rules! runtime_entry {
    () => {
        core::arch::global_asm!(
            ".globl _start",
            ".type _start, %function",
            $crate::code_mode!(),
            "_start:",
            "bl __ucspi_relocate",
            "mov r1, r0",
            "mov r7, #0",
            "mov r11, #0",
            "mov lr, #0",
            "mov r0, sp",
            "bic r2, r0, #15",
            "mov sp, r2",
            "bl __ucspi_main",
            "udf #0",
        );
    };
}

/// Runs `svc 0` with the system call number in r7, in ARM or Thumb code.
macro_rules! svc {
    ($n:expr, $($operands:tt)*) => {
        #[cfg(not(thumb_mode))]
        asm!("svc 0", in("r7") $n, $($operands)*);
        #[cfg(thumb_mode)]
        asm!("mov {saved}, r7", "mov r7, {n}", "svc 0", "mov r7, {saved}",
             n = in(reg) $n, saved = out(reg) _, $($operands)*);
    };
}

/// A system call with one argument.
///
/// # Safety
/// The caller guarantees the system call's own contract.
#[inline]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let ret;
    // SAFETY: a raw syscall; the kernel changes only r0.
    unsafe {
        svc!(n, inlateout("r0") a => ret, options(nostack));
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
        svc!(n, inlateout("r0") a => ret, in("r1") b, in("r2") c, options(nostack));
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
        svc!(n, inlateout("r0") a => ret, in("r1") b, in("r2") c, in("r3") d, options(nostack));
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
        svc!(n, inlateout("r0") a => ret, in("r1") b, in("r2") c, in("r3") d, in("r4") e, options(nostack));
    }
    ret
}

global_asm!(
    ".globl __ucspi_clone_on_stack",
    ".type __ucspi_clone_on_stack, %function",
    crate::code_mode!(),
    "__ucspi_clone_on_stack:",
    // r0 = flags, r1 = new stack top, r2 = entry fn, r3 = its argument.
    // r4, r5 and r7 are the caller's: saved on its stack, restored in the
    // parent. The child finds r5 and r12 as they were: the kernel
    // preserves them.
    "push {{r4, r5, r7, lr}}",
    "mov r12, r2",
    "mov r5, r3",
    "bic r1, r1, #15",
    "mov r2, #0",
    "mov r3, #0",
    "mov r4, #0",
    "mov r7, #{nr}",
    "svc 0",
    "cmp r0, #0",
    "bne 2f",
    // Child: on its own stack; call entry(arg), which never returns.
    "mov r7, #0",
    "mov r11, #0",
    "mov lr, #0",
    "mov r0, r5",
    "blx r12",
    "udf #0",
    "2:",
    "pop {{r4, r5, r7, pc}}",
    nr = const super::nr::CLONE,
);

/// The relocation table `__ucspi_relocate` applies: DT_REL (the addend
/// in the word relocated), every entry R_ARM_RELATIVE (the psABI's number).
const RELOCATIONS: super::start::RelocationTable = super::start::RelocationTable {
    tag: super::start::elf::DT_REL,
    size_tag: super::start::elf::DT_RELSZ,
    other_tag: super::start::elf::DT_RELA,
    relative: 23,
};

/// How far ahead of an instruction the program counter reads, as an
/// operand of that instruction: two instructions, of 4 bytes in ARM code
/// and (for this purpose) 2 in Thumb code.
#[cfg(not(thumb_mode))]
const PC_AHEAD: usize = 8;
#[cfg(thumb_mode)]
const PC_AHEAD: usize = 4;

// __ucspi_relocate() -> load bias: applies the program's relocations, as
// `Start::from_entry` describes, before anything reads a pointer from the
// program's data. Registers only (and the words it relocates), but for
// saving the caller's r4 to r6 on the stack: no call, no memory of the
// program's but the dynamic section and the table, every address
// PC-relative (a word at the end holds each one's distance from an `add
// rX, pc`). Returns the load bias in r0; on a relocation it does not
// apply, writes a line and exits 111.
relocation_asm!(
    RELOCATIONS,
    [
        ".globl __ucspi_relocate",
        ".type __ucspi_relocate, %function",
        crate::code_mode!(),
        "__ucspi_relocate:",
        "push {{r4, r5, r6, lr}}",
        // r0: the load bias, the run-time address of the ELF header (linked
        // at 0); r1: the dynamic section.
        "ldr r0, 20f",
        "ldr r1, 21f",
        "22:",
        "add r0, pc",
        "23:",
        "add r1, pc",
        // Its (tag, value) pairs up to DT_NULL: r2 the table's link-time
        // address, r3 its size in bytes (both 0 if there is none).
        "mov r2, #0",
        "mov r3, #0",
        "2:",
        "ldr r4, [r1, #4]",
        "ldr r12, [r1], #8",
        "cmp r12, #{table}",
        "bne 3f",
        "mov r2, r4",
        "3:",
        "cmp r12, #{table_size}",
        "bne 3f",
        "mov r3, r4",
        "3:",
        "cmp r12, #{other_table}",
        "beq 9f",
        "cmp r12, #{jmprel}",
        "beq 9f",
        "cmp r12, #{relr}",
        "beq 9f",
        "cmp r12, #0",
        "bne 2b",
        // Each Elf32_Rel from r2 to r3: offset, info (the type in its low 8
        // bits); the addend is the word relocated.
        "add r2, r2, r0",
        "add r3, r3, r2",
        "b 5f",
        "4:",
        "ldr r5, [r2, #4]",
        "ldr r4, [r2], #8",
        "and r5, r5, #255",
        "cmp r5, #{relative}",
        "bne 9f",
        "ldr r6, [r0, r4]",
        "add r6, r6, r0",
        "str r6, [r0, r4]",
        "5:",
        "cmp r2, r3",
        "blo 4b",
        "pop {{r4, r5, r6, pc}}",
        // Refused: write(2, line), exit_group(111).
        "9:",
        "ldr r1, 24f",
        "25:",
        "add r1, pc",
        "mov r0, #2",
        "mov r2, #{line_len}",
        "mov r7, #{write}",
        "svc 0",
        "mov r0, #111",
        "mov r7, #{exit_group}",
        "svc 0",
        "udf #0",
        ".p2align 2",
        "20:",
        ".word __ehdr_start - (22b + {pc_ahead})",
        "21:",
        ".word _DYNAMIC - (23b + {pc_ahead})",
        "24:",
        ".word {line} - (25b + {pc_ahead})",
    ],
    pc_ahead = const PC_AHEAD
);

// The memory functions are loops in assembly: the same loops in Rust could
// be compiled back into calls to the very functions they implement. A
// byte at a time: our programs copy and compare short strings.

/// C's memcpy.
///
/// # Safety
/// As C's memcpy.
#[inline]
pub unsafe fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: copies n bytes forwards; buffers valid by contract.
    unsafe {
        asm!(
            "cmp {n}, #0",
            "beq 3f",
            "2:",
            "ldrb {t}, [{s}], #1",
            "strb {t}, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 2b",
            "3:",
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
            "ldrb {t}, [{s}, {n}]",
            "strb {t}, [{d}, {n}]",
            "bne 2b",
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
    // SAFETY: stores n bytes forwards; buffer valid by contract.
    unsafe {
        asm!(
            "cmp {n}, #0",
            "beq 3f",
            "2:",
            "strb {c}, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 2b",
            "3:",
            d = inout(reg) d => _, n = inout(reg) n => _, c = in(reg) c,
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
    let diff: i32;
    // SAFETY: reads at most n bytes of each buffer, stopping at the first
    // difference; both valid for n bytes by contract.
    unsafe {
        asm!(
            "movs {r}, #0",
            "cmp {n}, #0",
            "beq 3f",
            "2:",
            "ldrb {x}, [{a}], #1",
            "ldrb {y}, [{b}], #1",
            "subs {r}, {x}, {y}",
            "bne 3f",
            "subs {n}, {n}, #1",
            "bne 2b",
            "3:",
            a = inout(reg) a => _, b = inout(reg) b => _, n = inout(reg) n => _, r = out(reg) diff,
            x = out(reg) _, y = out(reg) _,
            options(nostack, readonly),
        );
    }
    diff
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
            "ldrb {t}, [{p}], #1",
            "cmp {t}, #0",
            "bne 2b",
            p = inout(reg) s => end, t = out(reg) _,
            options(nostack, readonly),
        );
    }
    // `end` is one past the NUL.
    end as usize - s as usize - 1
}
