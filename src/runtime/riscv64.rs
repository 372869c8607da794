//! riscv64 Linux: the entry point, system call instructions, a clone on a
//! new stack, and the memory functions.
//!
//! Everything here is what differs between architectures in instructions;
//! the generic runtime (`runtime.rs` and the other files of `runtime/`)
//! only uses the names below, and takes system call numbers and the
//! kernel's structures from linux-raw-sys.
//!
//! System calls: `ecall`, the number in a7, arguments in a0 to a5, the
//! result in a0; the kernel preserves every other register.

use core::arch::{asm, global_asm};

/// `_start`: set the global pointer (a linker may have turned accesses
/// near `__global_pointer$` into gp-relative ones; this must not itself be
/// relaxed), relocate the program (`__ucspi_relocate`, below), clear the
/// frame pointer and return address (the end of the frame chain), pass the
/// kernel's stack pointer and the load bias to the program's
/// `__ucspi_main`, with the stack aligned to 16 bytes as the ABI wants.
#[macro_export]
#[doc(hidden)]
macro_rules! runtime_entry {
    () => {
        core::arch::global_asm!(
            ".globl _start",
            ".type _start, @function",
            "_start:",
            ".option push",
            ".option norelax",
            "lla gp, __global_pointer$",
            ".option pop",
            "call __ucspi_relocate",
            "mv a1, a0",
            "mv s0, zero",
            "mv ra, zero",
            "mv a0, sp",
            "andi sp, sp, -16",
            "call __ucspi_main",
            "unimp",
        );
    };
}

/// A system call with one argument.
///
/// # Safety
/// The caller guarantees the system call's own contract.
#[inline]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let ret;
    // SAFETY: a raw syscall; the kernel changes only a0.
    unsafe {
        asm!("ecall", in("a7") n, inlateout("a0") a => ret, options(nostack));
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
        asm!("ecall", in("a7") n, inlateout("a0") a => ret, in("a1") b, in("a2") c, options(nostack));
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
        asm!("ecall", in("a7") n, inlateout("a0") a => ret, in("a1") b, in("a2") c, in("a3") d,
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
        asm!("ecall", in("a7") n, inlateout("a0") a => ret, in("a1") b, in("a2") c, in("a3") d,
             in("a4") e, options(nostack));
    }
    ret
}

global_asm!(
    ".globl __ucspi_clone_on_stack",
    ".type __ucspi_clone_on_stack, @function",
    "__ucspi_clone_on_stack:",
    // a0 = flags, a1 = new stack top, a2 = entry fn, a3 = its argument.
    // The child finds t0 and t1 as they were: the kernel preserves them.
    "mv t0, a2",
    "mv t1, a3",
    "andi a1, a1, -16",
    "li a2, 0",
    "li a3, 0",
    "li a4, 0",
    "li a7, {nr}",
    "ecall",
    "bnez a0, 2f",
    // Child: on its own stack; call entry(arg), which never returns.
    "mv s0, zero",
    "mv ra, zero",
    "mv a0, t1",
    "jalr t0",
    "unimp",
    "2:",
    "ret",
    nr = const super::nr::CLONE,
);

/// The relocation table `__ucspi_relocate` applies: DT_RELA (the addend
/// in each entry), every entry R_RISCV_RELATIVE (the psABI's number).
const RELOCATIONS: super::start::RelocationTable = super::start::RelocationTable {
    tag: super::start::elf::DT_RELA,
    size_tag: super::start::elf::DT_RELASZ,
    other_tag: super::start::elf::DT_REL,
    relative: 3,
};

// __ucspi_relocate() -> load bias: applies the program's relocations, as
// `Start::from_entry` describes, before anything reads a pointer from the
// program's data. Registers only (and the words it relocates): no call, no
// memory of the program's but the dynamic section and the table, every
// address PC-relative (or relative to gp, which `_start` has set
// PC-relative). Returns the load bias in a0; on a relocation it does not
// apply, writes a line and exits 111.
relocation_asm!(
    RELOCATIONS,
    [
        ".globl __ucspi_relocate",
        ".type __ucspi_relocate, @function",
        "__ucspi_relocate:",
        // t0: the load bias, the run-time address of the ELF header (linked
        // at 0); t1: the dynamic section.
        "lla t0, __ehdr_start",
        "lla t1, _DYNAMIC",
        // Its (tag, value) pairs up to DT_NULL: t2 the table's link-time
        // address, t3 its size in bytes (both 0 if there is none).
        "li t2, 0",
        "li t3, 0",
        "2:",
        "ld t4, 0(t1)",
        "ld t5, 8(t1)",
        "addi t1, t1, 16",
        "li t6, {table}",
        "bne t4, t6, 3f",
        "mv t2, t5",
        "3:",
        "li t6, {table_size}",
        "bne t4, t6, 3f",
        "mv t3, t5",
        "3:",
        "li t6, {other_table}",
        "beq t4, t6, 9f",
        "li t6, {jmprel}",
        "beq t4, t6, 9f",
        "li t6, {relr}",
        "beq t4, t6, 9f",
        "bnez t4, 2b",
        // Each Elf64_Rela from t2 to t3: offset, info (the type in its low 32
        // bits), addend.
        "add t2, t2, t0",
        "add t3, t3, t2",
        "li a2, {relative}",
        "j 5f",
        "4:",
        "ld t4, 0(t2)",
        "lwu t5, 8(t2)",
        "ld t6, 16(t2)",
        "addi t2, t2, 24",
        "bne t5, a2, 9f",
        "add t6, t6, t0",
        "add t4, t4, t0",
        "sd t6, 0(t4)",
        "5:",
        "bltu t2, t3, 4b",
        "mv a0, t0",
        "ret",
        // Refused: write(2, line), exit_group(111).
        "9:",
        "li a0, 2",
        "lla a1, {line}",
        "li a2, {line_len}",
        "li a7, {write}",
        "ecall",
        "li a0, 111",
        "li a7, {exit_group}",
        "ecall",
        "unimp",
    ]
);

// The memory functions are loops in assembly: the same loops in Rust could
// be compiled back into calls to the very functions they implement. A
// byte at a time: unaligned word accesses may trap to the kernel on
// RISC-V, and our programs copy and compare short strings.

/// C's memcpy.
///
/// # Safety
/// As C's memcpy.
#[inline]
pub unsafe fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: copies n bytes forwards; buffers valid by contract.
    unsafe {
        asm!(
            "beqz {n}, 3f",
            "2:",
            "lbu {t}, 0({s})",
            "sb {t}, 0({d})",
            "addi {s}, {s}, 1",
            "addi {d}, {d}, 1",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
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
            "add {s}, {s}, {n}",
            "add {e}, {d}, {n}",
            "2:",
            "addi {s}, {s}, -1",
            "addi {e}, {e}, -1",
            "lbu {t}, 0({s})",
            "sb {t}, 0({e})",
            "bne {e}, {d}, 2b",
            d = in(reg) d, s = inout(reg) s => _, n = in(reg) n, e = out(reg) _, t = out(reg) _,
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
            "beqz {n}, 3f",
            "2:",
            "sb {c}, 0({d})",
            "addi {d}, {d}, 1",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
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
    let diff: isize;
    // SAFETY: reads at most n bytes of each buffer, stopping at the first
    // difference; both valid for n bytes by contract.
    unsafe {
        asm!(
            "li {r}, 0",
            "beqz {n}, 3f",
            "2:",
            "lbu {x}, 0({a})",
            "lbu {y}, 0({b})",
            "sub {r}, {x}, {y}",
            "bnez {r}, 3f",
            "addi {a}, {a}, 1",
            "addi {b}, {b}, 1",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
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
            "lbu {t}, 0({p})",
            "addi {p}, {p}, 1",
            "bnez {t}, 2b",
            p = inout(reg) s => end, t = out(reg) _,
            options(nostack, readonly),
        );
    }
    // `end` is one past the NUL.
    end as usize - s as usize - 1
}
