//! x86_64 Linux: the entry point, system call instructions, a clone on a
//! new stack, and the memory functions, in the fewest instructions.
//!
//! Everything here is what differs between architectures in instructions;
//! the generic runtime (`runtime.rs` and the other files of `runtime/`)
//! only uses the names below, and takes system call numbers and the
//! kernel's structures from linux-raw-sys.

use core::arch::{asm, global_asm};

/// `_start`: clear the frame pointer, relocate the program
/// (`__ucspi_relocate`, below), then pass the kernel's stack pointer and
/// the load bias to the program's `__ucspi_main`, with the stack aligned
/// as the ABI wants.
#[macro_export]
#[doc(hidden)]
macro_rules! runtime_entry {
    () => {
        core::arch::global_asm!(
            ".globl _start",
            "_start:",
            "xor ebp, ebp",
            "call __ucspi_relocate",
            "mov rdi, rsp",
            "mov rsi, rax",
            "and rsp, -16",
            "call __ucspi_main",
            "ud2",
        );
    };
}

/// The relocation table `__ucspi_relocate` applies: DT_RELA (the addend
/// in each entry), every entry R_X86_64_RELATIVE (the psABI's number).
const RELOCATIONS: super::start::RelocationTable = super::start::RelocationTable {
    tag: super::start::elf::DT_RELA,
    size_tag: super::start::elf::DT_RELASZ,
    other_tag: super::start::elf::DT_REL,
    relative: 8,
};

// __ucspi_relocate() -> load bias: applies the program's relocations, as
// `Start::from_entry` describes, before anything reads a pointer from the
// program's data. Registers only (and the words it relocates): no call, no
// memory of the program's but the dynamic section and the table, every
// address PC-relative. Returns the load bias in rax; on a relocation it
// does not apply, writes a line and exits 111.
relocation_asm!(
    RELOCATIONS,
    [
        ".globl __ucspi_relocate",
        ".type __ucspi_relocate, @function",
        "__ucspi_relocate:",
        // rsi: the load bias, the run-time address of the ELF header (linked
        // at 0); rdi: the dynamic section.
        "lea rsi, [rip + __ehdr_start]",
        "lea rdi, [rip + _DYNAMIC]",
        // Its (tag, value) pairs up to DT_NULL: rcx the table's link-time
        // address, rdx its size in bytes (both 0 if there is none).
        "xor ecx, ecx",
        "xor edx, edx",
        "2:",
        "mov rax, [rdi]",
        "mov r8, [rdi + 8]",
        "add rdi, 16",
        "cmp rax, {table}",
        "cmove rcx, r8",
        "cmp rax, {table_size}",
        "cmove rdx, r8",
        "cmp rax, {other_table}",
        "je 9f",
        "cmp rax, {jmprel}",
        "je 9f",
        "cmp rax, {relr}",
        "je 9f",
        "test rax, rax",
        "jnz 2b",
        // Each Elf64_Rela from rcx to rdx: offset, info (the type in its low
        // 32 bits), addend.
        "add rcx, rsi",
        "add rdx, rcx",
        "jmp 4f",
        "3:",
        "cmp dword ptr [rcx + 8], {relative}",
        "jne 9f",
        "mov rax, [rcx + 16]",
        "add rax, rsi",
        "mov r8, [rcx]",
        "mov [rsi + r8], rax",
        "add rcx, 24",
        "4:",
        "cmp rcx, rdx",
        "jb 3b",
        "mov rax, rsi",
        "ret",
        // Refused: write(2, line), exit_group(111).
        "9:",
        "mov eax, {write}",
        "mov edi, 2",
        "lea rsi, [rip + {line}]",
        "mov edx, {line_len}",
        "syscall",
        "mov eax, {exit_group}",
        "mov edi, 111",
        "syscall",
        "ud2",
    ]
);

/// A system call with one argument.
///
/// # Safety
/// The caller guarantees the system call's own contract.
#[inline]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let ret;
    // SAFETY: a raw syscall; rcx and r11 are clobbered by the instruction.
    unsafe {
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a,
             lateout("rcx") _, lateout("r11") _, options(nostack));
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
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack));
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
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, in("r8") e, lateout("rcx") _, lateout("r11") _, options(nostack));
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
        asm!("syscall", inlateout("rax") n => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

global_asm!(
    ".globl __ucspi_clone_on_stack",
    "__ucspi_clone_on_stack:",
    // rdi = flags, rsi = new stack top, rdx = entry fn, rcx = its argument.
    "mov r9, rcx",
    "mov r8, rdx",
    "and rsi, -16",
    "xor edx, edx",
    "xor r10d, r10d",
    "mov eax, {nr}",
    "syscall",
    "test rax, rax",
    "jnz 2f",
    // Child: on its own stack; call entry(arg), which never returns.
    "xor ebp, ebp",
    "mov rdi, r9",
    "call r8",
    "ud2",
    "2:",
    "ret",
    nr = const super::nr::CLONE,
);

/// C's memcpy.
///
/// # Safety
/// As C's memcpy.
#[inline]
pub unsafe fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // Most copies are a few bytes (a dot, some digits, a short name), where
    // `rep movsb`'s start-up costs more than the copy: two overlapping loads
    // and stores of the largest size that fits do it. Fixed-size unaligned
    // accesses are not turned back into a memcpy call.
    if n <= 16 {
        // SAFETY: every access is within the first n bytes of each buffer
        // (the second of each pair ends exactly at n); read before written,
        // which is all memcpy promises for non-overlapping buffers.
        unsafe {
            use core::ptr::{read_unaligned as rd, write_unaligned as wr};
            if n >= 8 {
                let (a, b) = (rd(s as *const u64), rd(s.add(n - 8) as *const u64));
                wr(d as *mut u64, a);
                wr(d.add(n - 8) as *mut u64, b);
            } else if n >= 4 {
                let (a, b) = (rd(s as *const u32), rd(s.add(n - 4) as *const u32));
                wr(d as *mut u32, a);
                wr(d.add(n - 4) as *mut u32, b);
            } else if n > 0 {
                let (a, b, c) = (*s, *s.add(n / 2), *s.add(n - 1));
                *d = a;
                *d.add(n / 2) = b;
                *d.add(n - 1) = c;
            }
        }
        return d;
    }
    // SAFETY: rep movsb copies n bytes forward; buffers valid by contract.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _,
             options(nostack, preserves_flags));
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
    // SAFETY: copy backwards with the direction flag set, then clear it.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") d.add(n).wrapping_sub(1) => _,
             inout("rsi") s.add(n).wrapping_sub(1) => _, options(nostack));
    }
}

/// C's memset.
///
/// # Safety
/// As C's memset.
#[inline]
pub unsafe fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: rep stosb stores n bytes; buffer valid by contract.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    d
}

/// C's memcmp.
///
/// # Safety
/// As C's memcmp.
#[inline]
pub unsafe fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    // Short comparisons (a keyword, a key) as for memcpy: big-endian
    // loads compare in memcmp's order; `repe cmpsb` starts too slowly.
    if n <= 16 {
        // SAFETY: every load is within the first n bytes of each buffer.
        unsafe {
            use core::ptr::read_unaligned as rd;
            let cmp = |a: u64, b: u64| (a > b) as i32 - (a < b) as i32;
            if n >= 8 {
                let head = cmp(rd(a as *const u64).to_be(), rd(b as *const u64).to_be());
                if head != 0 {
                    return head;
                }
                return cmp(rd(a.add(n - 8) as *const u64).to_be(), rd(b.add(n - 8) as *const u64).to_be());
            }
            if n >= 4 {
                let head = cmp(rd(a as *const u32).to_be() as u64, rd(b as *const u32).to_be() as u64);
                if head != 0 {
                    return head;
                }
                return cmp(
                    rd(a.add(n - 4) as *const u32).to_be() as u64,
                    rd(b.add(n - 4) as *const u32).to_be() as u64,
                );
            }
            let mut i = 0;
            while i < n {
                let (x, y) = (*a.add(i), *b.add(i));
                if x != y {
                    return x as i32 - y as i32;
                }
                i += 1;
            }
            return 0;
        }
    }
    let (x, y): (*const u8, *const u8);
    // SAFETY: repe cmpsb stops at the first difference or after n bytes;
    // both buffers are valid for n bytes by contract. A plain loop could be
    // turned back into a call to memcmp by the optimiser.
    unsafe {
        asm!("repe cmpsb", inout("rcx") n => _, inout("rsi") a => x, inout("rdi") b => y,
             options(nostack, readonly));
        // Both pointers are one past the last compared byte.
        *x.sub(1) as i32 - *y.sub(1) as i32
    }
}

/// C's strlen.
///
/// # Safety
/// As C's strlen.
#[inline]
pub unsafe fn strlen(s: *const u8) -> usize {
    let left: usize;
    // SAFETY: repne scasb scans for the NUL that the contract guarantees.
    // A plain loop could be turned back into a call to strlen.
    unsafe {
        asm!("repne scasb", inout("rcx") usize::MAX => left, inout("rdi") s => _, in("al") 0u8,
             options(nostack, readonly));
    }
    !left - 1
}
