//! The start of a process: [`Start`] (argv, envp and the auxiliary vector
//! read off the kernel's initial stack), what `_start` needs to relocate
//! the program before any Rust runs (the `relocation_asm!` template of each
//! architecture's `__ucspi_relocate`, the table it reads, the line it
//! writes when it refuses one), and the read-only RELRO region after it.
//!
//! It does not hold the entry point or the relocation loop (each
//! architecture's file does), and writes no message of its own but the
//! refusal: a failure to protect RELRO is returned to the program's
//! `__ucspi_main` (see [`crate::program!`]), which logs it.

use super::cstr::CStrArray;
use core::ffi::{c_char, CStr};
use core::ptr::NonNull;
use rustix::io::Errno;

/// `global_asm!` for an architecture's `__ucspi_relocate` (see
/// [`Start::from_entry`]): its template, given the operands every
/// architecture's names, from its [`RelocationTable`] and the runtime (the
/// dynamic tags it reads or refuses, the system calls and the line of a
/// refusal), then any of its own.
macro_rules! relocation_asm {
    ($relocations:expr, [$($template:expr),+ $(,)?] $(, $($own:tt)*)?) => {
        core::arch::global_asm!(
            $($template),+,
            table = const $relocations.tag,
            table_size = const $relocations.size_tag,
            other_table = const $relocations.other_tag,
            relative = const $relocations.relative,
            jmprel = const crate::runtime::start::elf::DT_JMPREL,
            relr = const crate::runtime::start::DT_RELR,
            write = const crate::runtime::nr::WRITE,
            exit_group = const crate::runtime::nr::EXIT_GROUP,
            line = sym crate::runtime::start::RELOCATION_REFUSED,
            line_len = const crate::runtime::start::RELOCATION_REFUSED.len(),
            $($($own)*)?
        );
    };
}

/// What the kernel hands a new process: its arguments, its environment and
/// the auxiliary vector behind them.
#[derive(Clone, Copy)]
pub struct Start {
    /// The command line.
    pub argv: CStrArray<'static>,
    /// The environment.
    pub envp: CStrArray<'static>,
}

impl Start {
    /// Reads argc, argv and envp from the initial stack, and makes the
    /// data `_start` has just relocated read-only (see below).
    ///
    /// The programs are static position-independent executables: the
    /// kernel maps them at a random address, and no dynamic loader runs
    /// to fix up the pointers their data holds (vtables, tables of
    /// strings, the GOT), which the linker wrote for address 0. So
    /// `_start` first calls `__ucspi_relocate` (assembly, in each
    /// architecture's file), which applies the program's relocation table
    /// with nothing but registers: before it returns, no pointer stored in
    /// the program's data may be read, and Rust code could read one
    /// anywhere (a vtable, a table of strings, a call through the GOT), so
    /// none runs. The load bias is the run-time address of the ELF header,
    /// which is linked at address 0 (as glibc's static-pie start-up
    /// assumes too; tests/hardening.rs checks it for every program); the
    /// table is the one the dynamic section (`_DYNAMIC`) names: DT_RELA
    /// (DT_REL on 32-bit ARM, whose relocations keep their addend in the
    /// word they relocate), every entry of which must be the
    /// architecture's RELATIVE type (the word becomes the bias plus the
    /// addend). Anything else (another type, a table of another kind:
    /// DT_REL or DT_RELA, DT_JMPREL, DT_RELR) is refused: the program
    /// writes one line (`RELOCATION_REFUSED`) and exits 111 before any of
    /// its own code runs, rather than run half relocated. The linker makes
    /// nothing else for our programs (`tests/hardening.rs` checks that
    /// too), so that path is for a program linked some other way.
    ///
    /// Then the region the linker marked PT_GNU_RELRO (relocated data
    /// that is never written afterwards) is made read-only, as a dynamic
    /// loader does after relocating ("full RELRO"): a stray write into a
    /// vtable faults instead of taking control of the program. If that
    /// fails, the error is returned: the caller writes the line and exits
    /// ([`crate::program!`]: `NAME: fatal: unable to make the relocated
    /// data read-only: REASON`, exit 111).
    ///
    /// # Safety
    /// Only from `_start`, once, after `__ucspi_relocate`: `sp` the stack
    /// pointer the kernel gave `_start`, `load_bias` what
    /// `__ucspi_relocate` returned.
    pub unsafe fn from_entry(sp: *const usize, load_bias: usize) -> Result<Start, Errno> {
        // SAFETY: forwarded contract.
        let start = unsafe { Start::from_stack(sp) };
        // SAFETY: relocation is done, and nothing has written into the
        // RELRO region since nor will.
        unsafe { start.protect_relro(load_bias) }?;
        Ok(start)
    }

    /// Reads argc, argv and envp from the initial stack.
    ///
    /// # Safety
    /// `sp` must be the stack pointer the kernel gave `_start`.
    unsafe fn from_stack(sp: *const usize) -> Start {
        // SAFETY: the kernel's layout is argc, argv[argc], NULL, envp...,
        // NULL, then the auxiliary vector; all of it lives as long as the
        // process and is never written by us.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1) as *mut *const c_char;
            Start {
                argv: CStrArray::from_ptr(NonNull::new_unchecked(argv)),
                envp: CStrArray::from_ptr(NonNull::new_unchecked(argv.add(argc + 1))),
            }
        }
    }

    /// The auxiliary vector's (type, value) pairs, up to AT_NULL.
    fn auxv(&self) -> impl Iterator<Item = (usize, usize)> {
        // The auxiliary vector follows the environment's null pointer.
        // SAFETY: the initial stack (see `from_stack`) holds (type, value)
        // pairs there, ending with type 0 (AT_NULL).
        let mut aux = unsafe { self.envp.as_ptr().add(self.envp.len() + 1) } as *const usize;
        core::iter::from_fn(move || {
            // SAFETY: `aux` points at a pair until AT_NULL, where this stops.
            let (key, value) = unsafe { (*aux, *aux.add(1)) };
            if key == 0 {
                return None;
            }
            // SAFETY: not past AT_NULL, which follows.
            aux = unsafe { aux.add(2) };
            Some((key, value))
        })
    }

    /// The file name this program was executed as (the kernel's
    /// `AT_EXECFN`: the path given to `execve`, relative to the directory
    /// we started in), when the auxiliary vector has it. Needs no /proc.
    pub fn exec_path(&self) -> Option<&'static CStr> {
        let (_, path) = self.auxv().find(|&(key, _)| key == auxvec::AT_EXECFN as usize)?;
        // SAFETY: the AT_EXECFN value is a pointer to a NUL-terminated
        // string on the initial stack, which lives as long as the process.
        Some(unsafe { CStr::from_ptr(path as *const c_char) })
    }

    /// Makes the program's PT_GNU_RELRO region read-only, in whole pages:
    /// its program headers and the page size are the kernel's auxiliary
    /// vector's (AT_PHDR, AT_PHNUM, AT_PAGESZ), its addresses the link's
    /// plus `load_bias`.
    ///
    /// # Safety
    /// After relocation, with the bias it used; nothing may write into the
    /// region afterwards (nothing does: the linker puts there only what is
    /// written by relocation alone).
    unsafe fn protect_relro(&self, load_bias: usize) -> Result<(), Errno> {
        let (mut headers, mut count, mut page) = (0, 0, 0);
        for (key, value) in self.auxv() {
            match u32::try_from(key) {
                Ok(auxvec::AT_PHDR) => headers = value,
                Ok(auxvec::AT_PHNUM) => count = value,
                Ok(auxvec::AT_PAGESZ) => page = value,
                _ => {}
            }
        }
        if headers == 0 || !page.is_power_of_two() {
            return Err(Errno::NOEXEC);
        }
        // SAFETY: the kernel's AT_PHDR and AT_PHNUM describe the program
        // headers of this executable, mapped for as long as it runs.
        let headers = unsafe { core::slice::from_raw_parts(headers as *const ProgramHeader, count) };
        for relro in headers.iter().filter(|h| h.p_type == elf::PT_GNU_RELRO) {
            // Whole pages only. The region's last page may hold data that
            // is written later: that page stays writable. Its first page
            // starts the mapping of its segment (both linkers put RELRO at
            // the start of the writable segment): below it in that page is
            // nothing of the program's.
            let start = (load_bias + relro.p_vaddr as usize) & !(page - 1);
            let end = (load_bias + relro.p_vaddr as usize + relro.p_memsz as usize) & !(page - 1);
            if start < end {
                // SAFETY: the pages are this program's own relocated data,
                // which nothing writes any more (the caller's contract).
                unsafe {
                    rustix::mm::mprotect(start as *mut core::ffi::c_void, end - start, rustix::mm::MprotectFlags::READ)?
                };
            }
        }
        Ok(())
    }
}

use linux_raw_sys::auxvec;
pub(super) use linux_raw_sys::elf_uapi as elf;

/// A program header of the architecture's ELF class.
#[cfg(target_pointer_width = "64")]
type ProgramHeader = elf::Elf64_Phdr;
#[cfg(target_pointer_width = "32")]
type ProgramHeader = elf::Elf32_Phdr;

/// The dynamic tag of a table of packed relative relocations (SHT_RELR),
/// which `__ucspi_relocate` refuses; newer than the kernel's headers.
pub(super) const DT_RELR: u32 = 36;

/// The relocation table an architecture's linkers write into a static PIE,
/// as its `__ucspi_relocate` reads it.
pub(super) struct RelocationTable {
    /// The dynamic tag of the table: DT_RELA (each entry holds its addend)
    /// or DT_REL (the relocated word does).
    pub(super) tag: u32,
    /// The dynamic tag of its size in bytes (DT_RELASZ, DT_RELSZ).
    pub(super) size_tag: u32,
    /// The tag of a table of the other form, which it refuses.
    pub(super) other_tag: u32,
    /// The one relocation type it applies: the architecture's RELATIVE.
    pub(super) relative: u32,
}

/// What `__ucspi_relocate` writes on stderr before it exits 111, when the
/// program has a relocation it does not apply. The program's name cannot
/// be found without reading a pointer, so the line names the suite, as
/// every line does before a program sets its name.
pub(super) static RELOCATION_REFUSED: [u8; 73] =
    *b"ucspi-ipc: fatal: unable to relocate the program: unsupported relocation\n";
