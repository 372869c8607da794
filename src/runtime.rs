//! The runtime: what a C library would give our programs, and we do not link.
//!
//! It provides the process entry point (argv, envp and the auxiliary vector
//! read off the initial stack), the self-relocation a static
//! position-independent executable needs before anything else runs (see
//! [`Start::from_entry`]), the handful of system calls that rustix does
//! not expose publicly (`exit_group`, `execve`, a vfork-style `clone` and a
//! fork, `rt_sigprocmask`, `rt_sigaction`, `signalfd4`, `close_range`,
//! `getgroups`, which rustix has only with an allocator; `fstatat64` on
//! 32-bit machines, where rustix's stat converts a whole `statx`), the
//! memory functions the
//! compiler emits calls to, and the panic handler. Everything that differs
//! between architectures (system call numbers and instructions, the entry
//! point and the relocation loop, `struct sigaction`, the memory
//! functions) is in one file per
//! architecture, `runtime/<arch>.rs`; an architecture without one does not
//! build.
//!
//! It does not provide an allocator, threads, stdio buffering, locale or
//! anything else of libc: programs use rustix for every other system call.
//! Binaries hook into it with [`crate::program!`].
#![allow(unsafe_code)]

use core::ffi::{c_char, CStr};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

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
            jmprel = const crate::runtime::elf::DT_JMPREL,
            relr = const crate::runtime::DT_RELR,
            write = const crate::runtime::nr::WRITE,
            exit_group = const crate::runtime::nr::EXIT_GROUP,
            line = sym crate::runtime::RELOCATION_REFUSED,
            line_len = const crate::runtime::RELOCATION_REFUSED.len(),
            $($($own)*)?
        );
    };
}

#[cfg(target_arch = "x86_64")]
#[path = "runtime/x86_64.rs"]
mod arch;
#[cfg(target_arch = "aarch64")]
#[path = "runtime/aarch64.rs"]
mod arch;
#[cfg(target_arch = "arm")]
#[path = "runtime/arm.rs"]
mod arch;
#[cfg(target_arch = "riscv64")]
#[path = "runtime/riscv64.rs"]
mod arch;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm", target_arch = "riscv64")))]
compile_error!(
    "ucspi-ipc's runtime has no support for this architecture: it needs a src/runtime/<arch>.rs \
     (entry point, system call instructions, clone on a new stack, memory functions)"
);

/// The numbers of the system calls the runtime makes itself, and of
/// SIGCHLD, for the architecture being built: the kernel's own headers,
/// as linux-raw-sys (rustix's) carries them.
mod nr {
    use linux_raw_sys::general as k;
    pub const EXIT_GROUP: usize = k::__NR_exit_group as usize;
    pub const EXECVE: usize = k::__NR_execve as usize;
    pub const RT_SIGPROCMASK: usize = k::__NR_rt_sigprocmask as usize;
    pub const RT_SIGACTION: usize = k::__NR_rt_sigaction as usize;
    pub const SIGNALFD4: usize = k::__NR_signalfd4 as usize;
    pub const CLONE: usize = k::__NR_clone as usize;
    pub const FCNTL: usize = k::__NR_fcntl as usize;
    pub const CLOSE_RANGE: usize = k::__NR_close_range as usize;
    #[cfg(target_pointer_width = "32")]
    pub const FSTATAT64: usize = k::__NR_fstatat64 as usize;
    // The 32-bit ARM call of 16-bit gids is getgroups; of 32-bit ones,
    // getgroups32.
    #[cfg(target_arch = "arm")]
    pub const GETGROUPS: usize = k::__NR_getgroups32 as usize;
    #[cfg(not(target_arch = "arm"))]
    pub const GETGROUPS: usize = k::__NR_getgroups as usize;
    pub const WRITE: usize = k::__NR_write as usize;
    pub const GETRUSAGE: usize = k::__NR_getrusage as usize;
    pub const SIGCHLD: usize = k::SIGCHLD as usize;
}

use arch::{syscall1, syscall3, syscall4, syscall5};

/// `bytes` as a C string, if its only NUL is its last byte: what
/// `CStr::from_bytes_with_nul` does, with the `memchr` every program has
/// (core's own search adds 300 bytes to a 32-bit ARM program).
pub fn cstr_with_nul(bytes: &[u8]) -> Option<&CStr> {
    let nul = memchr::memchr(0, bytes)?;
    // SAFETY: the first NUL is the last byte, so the only one.
    (nul + 1 == bytes.len()).then(|| unsafe { CStr::from_bytes_with_nul_unchecked(bytes) })
}

/// A null-terminated array of pointers to NUL-terminated strings, as the
/// kernel lays out argv and envp and as `execve` wants them, borrowed for
/// `'a` from whatever holds the strings (the initial stack, a
/// [`crate::strvec::StrVec`]).
#[derive(Clone, Copy)]
pub struct CStrArray<'a> {
    ptr: NonNull<*const c_char>,
    _strings: PhantomData<&'a [&'a CStr]>,
}

impl<'a> CStrArray<'a> {
    /// Wraps a raw array.
    ///
    /// # Safety
    /// `ptr` must point to a null-terminated array of pointers to
    /// NUL-terminated strings, array and strings valid and unchanged for
    /// `'a`.
    pub const unsafe fn from_ptr(ptr: NonNull<*const c_char>) -> CStrArray<'a> {
        CStrArray { ptr, _strings: PhantomData }
    }

    /// The raw pointer, as `execve` wants it.
    pub fn as_ptr(self) -> *const *const c_char {
        self.ptr.as_ptr()
    }

    fn raw(self, i: usize) -> *const c_char {
        // SAFETY: callers only read indexes up to the terminator (they stop
        // at the first null), which the constructor's contract makes valid.
        unsafe { *self.ptr.as_ptr().add(i) }
    }

    /// How many strings there are (the pointers before the null).
    pub fn len(self) -> usize {
        let mut n = 0;
        while !self.raw(n).is_null() {
            n += 1;
        }
        n
    }

    /// Whether there are no strings.
    pub fn is_empty(self) -> bool {
        self.raw(0).is_null()
    }

    /// The array without its first `i` strings. Panics if there are fewer
    /// than `i` (checked in every build: a pointer past the terminator
    /// would make every later read undefined).
    pub fn skip(self, i: usize) -> CStrArray<'a> {
        assert!(i <= self.len(), "CStrArray::skip past the end");
        // SAFETY: `i` is at most the index of the terminator, so the result
        // is a suffix of the same null-terminated array.
        CStrArray { ptr: unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(i)) }, _strings: PhantomData }
    }

    /// The first string, if any.
    pub fn first(self) -> Option<&'a CStr> {
        self.iter().next()
    }

    /// The strings, in order.
    pub fn iter(self) -> CStrs<'a> {
        CStrs { array: self, next: 0 }
    }
}

/// The strings of a [`CStrArray`].
pub struct CStrs<'a> {
    array: CStrArray<'a>,
    next: usize,
}

impl<'a> Iterator for CStrs<'a> {
    type Item = &'a CStr;

    fn next(&mut self) -> Option<&'a CStr> {
        let p = self.array.raw(self.next);
        if p.is_null() {
            return None;
        }
        self.next += 1;
        // SAFETY: a non-null element is a NUL-terminated string valid for
        // 'a (constructor contract).
        Some(unsafe { CStr::from_ptr(p) })
    }
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
    /// vtable faults instead of taking control of the program.
    ///
    /// # Safety
    /// Only from `_start`, once, after `__ucspi_relocate`: `sp` the stack
    /// pointer the kernel gave `_start`, `load_bias` what
    /// `__ucspi_relocate` returned.
    pub unsafe fn from_entry(sp: *const usize, load_bias: usize) -> Start {
        // SAFETY: forwarded contract.
        let start = unsafe { Start::from_stack(sp) };
        // SAFETY: relocation is done, and nothing has written into the
        // RELRO region since nor will.
        if let Err(e) = unsafe { start.protect_relro(load_bias) } {
            crate::log::fatal_sys(e, &[b"make the relocated data read-only"]);
        }
        start
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
use linux_raw_sys::elf_uapi as elf;

/// A program header of the architecture's ELF class.
#[cfg(target_pointer_width = "64")]
type ProgramHeader = elf::Elf64_Phdr;
#[cfg(target_pointer_width = "32")]
type ProgramHeader = elf::Elf32_Phdr;

/// The dynamic tag of a table of packed relative relocations (SHT_RELR),
/// which `__ucspi_relocate` refuses; newer than the kernel's headers.
const DT_RELR: u32 = 36;

/// The relocation table an architecture's linkers write into a static PIE,
/// as its `__ucspi_relocate` reads it.
struct RelocationTable {
    /// The dynamic tag of the table: DT_RELA (each entry holds its addend)
    /// or DT_REL (the relocated word does).
    tag: u32,
    /// The dynamic tag of its size in bytes (DT_RELASZ, DT_RELSZ).
    size_tag: u32,
    /// The tag of a table of the other form, which it refuses.
    other_tag: u32,
    /// The one relocation type it applies: the architecture's RELATIVE.
    relative: u32,
}

/// What `__ucspi_relocate` writes on stderr before it exits 111, when the
/// program has a relocation it does not apply. The program's name cannot
/// be found without reading a pointer, so the line names the suite, as
/// every line does before a program sets its name.
static RELOCATION_REFUSED: [u8; 73] = *b"ucspi-ipc: fatal: unable to relocate the program: unsupported relocation\n";

/// Ends the process (every thread of it) with `code`.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes an int and does not return.
    unsafe { syscall1(nr::EXIT_GROUP, code as usize) };
    // SAFETY: exit_group cannot fail and never returns.
    unsafe { core::hint::unreachable_unchecked() }
}

fn result(ret: usize) -> Result<usize, Errno> {
    if ret > (-4096isize) as usize {
        Err(Errno::from_raw_os_error(-(ret as isize) as i32))
    } else {
        Ok(ret)
    }
}

/// Replaces the process image. Returns only on failure.
pub fn execve(path: &CStr, argv: CStrArray<'_>, envp: CStrArray<'_>) -> Errno {
    // SAFETY: all three pointers are NUL/null-terminated as execve requires
    // (CStr and CStrArray invariants).
    let ret = unsafe { syscall3(nr::EXECVE, path.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize) };
    match result(ret) {
        Err(e) => e,
        Ok(_) => Errno::INVAL,
    }
}

/// A set of signals, as the kernel's `sigset_t` (64 bits on Linux).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SigSet(pub u64);

impl SigSet {
    /// No signal.
    pub const EMPTY: SigSet = SigSet(0);

    /// This set and `sig`.
    pub const fn with(self, sig: Signal) -> SigSet {
        SigSet(self.0 | 1u64 << (sig.as_raw() - 1))
    }
}

/// The size of the kernel's signal set, which rt_sigaction,
/// rt_sigprocmask and signalfd4 are told: 64 signals on every architecture
/// we build for, whatever its word size.
const SIGSET_SIZE: usize = core::mem::size_of::<SigSet>();
const _: () = assert!(SIGSET_SIZE == core::mem::size_of::<linux_raw_sys::general::kernel_sigset_t>());

const SIG_BLOCK: usize = 0;
const SIG_UNBLOCK: usize = 1;
const SIG_SETMASK: usize = 2;

fn sigprocmask(how: usize, set: &SigSet) -> Result<SigSet, Errno> {
    let mut old = SigSet(0);
    // SAFETY: both pointers are to valid sigsets of SIGSET_SIZE bytes.
    let ret = unsafe {
        syscall4(nr::RT_SIGPROCMASK, how, set as *const _ as usize, &mut old as *mut _ as usize, SIGSET_SIZE)
    };
    result(ret).map(|_| old)
}

/// Adds `set` to the blocked signals; returns the previous mask.
pub fn block_signals(set: SigSet) -> Result<SigSet, Errno> {
    sigprocmask(SIG_BLOCK, &set)
}

/// Removes `set` from the blocked signals; returns the previous mask.
pub fn unblock_signals(set: SigSet) -> Result<SigSet, Errno> {
    sigprocmask(SIG_UNBLOCK, &set)
}

/// Sets the blocked signals to exactly `set`.
pub fn set_signal_mask(set: SigSet) -> Result<(), Errno> {
    sigprocmask(SIG_SETMASK, &set).map(|_| ())
}

/// A signal's disposition, as far as our programs care: they never
/// install handlers of their own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Disposition {
    /// SIG_DFL.
    Default,
    /// SIG_IGN.
    Ignore,
    /// A handler (only seen when inherited from a parent that exec'd us
    /// while catching it; execve resets handlers, so never in practice).
    Handler,
}

/// The kernel's `struct sigaction` for the architecture being built (its
/// layout differs: riscv64 has no restorer field, arm's mask is two words),
/// holding SIG_DFL or SIG_IGN: neither needs flags or a restorer.
struct KernelSigaction(linux_raw_sys::general::kernel_sigaction);

impl KernelSigaction {
    /// A disposition with this handler value (0 SIG_DFL, 1 SIG_IGN), no
    /// flags, empty mask.
    fn with_handler(handler: usize) -> KernelSigaction {
        // SAFETY: every field is an integer, an array of integers or an
        // optional function pointer, for which all-zero bytes are valid
        // (no handler, no flags, no restorer, empty mask).
        let mut action: linux_raw_sys::general::kernel_sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: the handler field is the size of a pointer; 0 is None and
        // 1 (SIG_IGN) a non-null value, which is all a function pointer
        // must be: nothing in this process ever calls it.
        action.sa_handler_kernel =
            unsafe { core::mem::transmute::<usize, linux_raw_sys::general::__kernel_sighandler_t>(handler) };
        KernelSigaction(action)
    }

    /// The handler value (0 SIG_DFL, 1 SIG_IGN, else a function).
    fn handler(&self) -> usize {
        self.0.sa_handler_kernel.map_or(0, |f| f as usize)
    }
}

/// Sets the disposition of `sig` to `to` (Default or Ignore) and returns
/// the previous one; `None` only queries.
pub fn set_disposition(sig: Signal, to: Option<Disposition>) -> Result<Disposition, Errno> {
    let new = to.map(|d| KernelSigaction::with_handler(usize::from(d == Disposition::Ignore)));
    let mut old = KernelSigaction::with_handler(0);
    let newp = new.as_ref().map_or(0, |n| n as *const _ as usize);
    // SAFETY: both pointers are to valid kernel sigaction structs (or null
    // for "no change"); SIG_DFL/SIG_IGN need no restorer; the kernel's sigset size.
    let ret =
        unsafe { syscall4(nr::RT_SIGACTION, sig.as_raw() as usize, newp, &mut old as *mut _ as usize, SIGSET_SIZE) };
    result(ret)?;
    Ok(match old.handler() {
        0 => Disposition::Default,
        1 => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

/// The signals of `set` whose disposition is "ignore" (left so by our
/// launcher: `nohup`, or a shell's `&`).
pub fn ignored_signals(set: SigSet) -> Result<SigSet, Errno> {
    let mut ignored = SigSet::EMPTY;
    for signo in 1..=64usize {
        let bit = 1u64 << (signo - 1);
        if set.0 & bit == 0 {
            continue;
        }
        let mut old = KernelSigaction::with_handler(0);
        // SAFETY: a null new action (a query) and a valid kernel sigaction
        // struct for the old one; the kernel's sigset size.
        let ret = unsafe { syscall4(nr::RT_SIGACTION, signo, 0, &mut old as *mut _ as usize, SIGSET_SIZE) };
        result(ret)?;
        if old.handler() == 1 {
            ignored.0 |= bit;
        }
    }
    Ok(ignored)
}

/// Sets each signal of `set` to its default disposition. A server calls
/// it for the signals it uses itself, so that its children start with
/// those at default whatever the launcher left ignored (SIGPIPE,
/// SIGCHLD...); the signals it does not use keep the launcher's
/// disposition, as with the original and s6 (a server started with `&`
/// from a script keeps SIGINT and SIGQUIT ignored, and so do its children).
pub fn default_dispositions(set: SigSet) -> Result<(), Errno> {
    for signo in 1..=64usize {
        if set.0 & 1u64 << (signo - 1) == 0 {
            continue;
        }
        let dfl = KernelSigaction::with_handler(0);
        // SAFETY: a valid kernel sigaction struct (SIG_DFL), no old value
        // asked for; the kernel's sigset size.
        let ret = unsafe { syscall4(nr::RT_SIGACTION, signo, &dfl as *const _ as usize, 0, SIGSET_SIZE) };
        result(ret)?;
    }
    Ok(())
}

/// Creates a signalfd for `set` (non-blocking, close-on-exec, never on
/// descriptors 0 to 2).
pub fn signalfd(set: SigSet) -> Result<OwnedFd, Errno> {
    // signalfd's flags are the open flags of the architecture.
    let flags = (rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NONBLOCK).bits() as usize;
    // SAFETY: -1 asks for a new descriptor; the set pointer is valid for
    // SIGSET_SIZE bytes.
    let ret = unsafe { syscall4(nr::SIGNALFD4, usize::MAX, &set as *const _ as usize, SIGSET_SIZE, flags) };
    // SAFETY: on success the kernel returned a new descriptor that we own.
    let fd = result(ret).map(|fd| unsafe { rustix::fd::FromRawFd::from_raw_fd(fd as i32) })?;
    crate::io::above_stdio(fd)
}

/// What a function that never returns is declared to return (`!` is not
/// stable as a type).
pub type Never = core::convert::Infallible;

/// Usable size of the stack [`spawn`] runs children on.
pub const CHILD_STACK: usize = 64 * 1024;
/// Inaccessible memory below the child's stack: an overrun faults there
/// (the child dies of SIGSEGV) instead of writing over other memory. As
/// large as the largest page size Linux uses, so that it is whole pages.
const GUARD: usize = 64 * 1024;

/// The child stack's mapping (0 until the first [`spawn`]), and whether a
/// child is running on it.
static CHILD_STACK_BASE: AtomicUsize = AtomicUsize::new(0);
static CHILD_STACK_BUSY: AtomicBool = AtomicBool::new(false);

/// The top of the child stack, mapped on first use: [`GUARD`] bytes of
/// inaccessible memory, then [`CHILD_STACK`] bytes of stack.
fn child_stack_top() -> Result<*mut u8, Errno> {
    use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
    let mut base = CHILD_STACK_BASE.load(Ordering::Acquire);
    if base == 0 {
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // chooses touches no existing memory.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                GUARD + CHILD_STACK,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )?
        };
        // SAFETY: the first GUARD bytes of our own new mapping, which
        // nothing references yet.
        unsafe { rustix::mm::mprotect(p, GUARD, MprotectFlags::empty())? };
        base = p as usize;
        // Only the thread holding CHILD_STACK_BUSY maps: no race.
        CHILD_STACK_BASE.store(base, Ordering::Release);
    }
    Ok((base + GUARD + CHILD_STACK) as *mut u8)
}

/// Runs `child` in a new process that shares our memory until it calls
/// `execve` or exits, as `vfork` does, on a stack of its own: one mapping of
/// [`CHILD_STACK`] bytes above an inaccessible guard region, made once and
/// reused (the caller is suspended until the child has exec'd or exited,
/// so one child at a time uses it). A child that needs more stack dies of
/// SIGSEGV; it cannot write over the caller's memory.
///
/// `child` may read anything the caller prepared; it must end by exec or
/// [`exit`] (its type says it cannot return), and what it writes into
/// shared memory is seen by the caller afterwards, as if it had been called.
/// Signal handlers the caller installed may run in the child until it
/// execs. Returns the child's pid; `Errno::BUSY` if another thread of this
/// process is spawning at the same moment.
pub fn spawn(child: &mut dyn FnMut() -> Never) -> Result<Pid, Errno> {
    const CLONE_VM: usize = 0x100;
    const CLONE_VFORK: usize = 0x4000;
    if CHILD_STACK_BUSY.swap(true, Ordering::Acquire) {
        return Err(Errno::BUSY);
    }
    let spawned = child_stack_top().and_then(|top| {
        let mut closure: &mut dyn FnMut() -> Never = child;
        // SAFETY: `top` is the top of a mapping that only this child uses
        // (CHILD_STACK_BUSY) and that stays mapped for the whole process;
        // CLONE_VFORK keeps this frame (and `closure`) alive until the child
        // has exec'd or exited; `trampoline` never returns.
        let ret = unsafe {
            __ucspi_clone_on_stack(
                CLONE_VM | CLONE_VFORK | nr::SIGCHLD,
                top,
                trampoline,
                &mut closure as *mut &mut dyn FnMut() -> Never as *mut u8,
            )
        };
        result(ret)
    });
    CHILD_STACK_BUSY.store(false, Ordering::Release);
    // SAFETY: a positive return of clone is the child's pid.
    Ok(unsafe { Pid::from_raw_unchecked(spawned? as i32) })
}

extern "C" {
    /// clone(flags) with the child on `stack`, running `entry(arg)`;
    /// returns the raw result (a pid, or a negated errno). In assembly, in
    /// each architecture's file: the child must not touch the caller's
    /// stack, which a function call would.
    ///
    /// Safety: `stack` must be the top of memory the child may use as its
    /// stack for as long as it runs in our address space; `entry` must
    /// never return.
    fn __ucspi_clone_on_stack(flags: usize, stack: *mut u8, entry: extern "C" fn(*mut u8) -> !, arg: *mut u8) -> usize;
}

extern "C" fn trampoline(arg: *mut u8) -> ! {
    // SAFETY: `spawn` passes a pointer to a live `&mut dyn FnMut() -> Never`.
    let f = unsafe { &mut *(arg as *mut &mut dyn FnMut() -> Never) };
    match f() {}
}

/// Which side of a [`fork`] we are on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Forked {
    /// The new process.
    Child,
    /// The caller, with the child's pid.
    Parent(Pid),
}

/// Creates a process with a copy of ours, as fork(2) does: both return
/// from this call, the child with [`Forked::Child`]. Unlike [`spawn`], the
/// child may live on and return to its caller (a preforking server's
/// children run their whole life in it).
///
/// # Safety
/// The child inherits our memory as it is: a lock another thread holds
/// stays held, and a C library's own per-process state (its cached thread
/// id, its `atfork` handlers) is not fixed up as its `fork()` would. So in
/// a process with other threads, or that uses a C library, the child must
/// make only system calls (through rustix or this runtime) until it execs
/// or exits; such a process should fork through its C library instead.
pub unsafe fn fork() -> Result<Forked, Errno> {
    const CLONE_ARGS: usize = 0;
    // SAFETY: clone with only an exit signal and no new stack is fork: the
    // child continues on its own copy of this stack; the caller vouches
    // for the process's state (above).
    let ret = unsafe { syscall5(nr::CLONE, nr::SIGCHLD, CLONE_ARGS, CLONE_ARGS, CLONE_ARGS, CLONE_ARGS) };
    match result(ret)? {
        0 => Ok(Forked::Child),
        // SAFETY: a positive return of clone is the child's pid.
        pid => Ok(Forked::Parent(unsafe { Pid::from_raw_unchecked(pid as i32) })),
    }
}

/// Whether `fd` is an open descriptor (fcntl F_GETFD succeeds): a
/// question about a number, which needs no borrow of it.
pub fn is_open(fd: u32) -> bool {
    const F_GETFD: usize = 1;
    // SAFETY: F_GETFD only reads the descriptor's flags, if it exists.
    let ret = unsafe { syscall3(nr::FCNTL, fd as usize, F_GETFD, 0) };
    result(ret).is_ok()
}

/// The calling thread's supplementary groups, written into `buf`: how
/// many there are (`EINVAL` when `buf` cannot hold them all).
pub fn getgroups(buf: &mut [u32]) -> Result<usize, Errno> {
    let len = buf.len().min(i32::MAX as usize);
    // SAFETY: the kernel writes at most `len` gids into `buf`, which has
    // room for `len`.
    let ret = unsafe { syscall3(nr::GETGROUPS, len, buf.as_mut_ptr() as usize, 0) };
    result(ret)
}

/// The mode of the file `path` names, relative to `dir`, as fstatat64(2)
/// with `flags` says, for [`crate::io::file_type`] and
/// [`crate::io::link_type`] on 32-bit machines. rustix's stat there
/// converts a whole statx (for its 64-bit times, which we do not read),
/// with the old calls behind it for Linux before 4.11: ~600 bytes in each
/// program that asks, up to 1.4 KB in one that asks twice. The old call
/// alone says the mode, on every kernel.
#[cfg(target_pointer_width = "32")]
pub fn stat_mode(dir: rustix::fd::BorrowedFd<'_>, path: &CStr, flags: rustix::fs::AtFlags) -> Result<u32, Errno> {
    use rustix::fd::AsRawFd;
    let mut st = core::mem::MaybeUninit::<linux_raw_sys::general::stat64>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` has room for the kernel's
    // struct stat64, which it fills on success; `dir` is open (borrowed)
    // or AT_FDCWD.
    let ret = unsafe {
        syscall4(
            nr::FSTATAT64,
            dir.as_raw_fd() as usize,
            path.as_ptr() as usize,
            st.as_mut_ptr() as usize,
            flags.bits() as usize,
        )
    };
    result(ret)?;
    // SAFETY: the call succeeded, so the kernel filled `st`.
    Ok(unsafe { st.assume_init() }.st_mode)
}

/// How many times this process has been preempted so far: its
/// involuntary context switches (getrusage's `ru_nivcsw`, which rustix
/// does not ask for); 0 if the kernel does not say.
pub fn preemptions() -> u64 {
    let mut usage = core::mem::MaybeUninit::<linux_raw_sys::general::rusage>::uninit();
    // SAFETY: RUSAGE_SELF, and room for the kernel's struct rusage, which
    // it fills on success (getrusage takes two arguments: the third is
    // not read).
    let ret = unsafe {
        syscall3(nr::GETRUSAGE, linux_raw_sys::general::RUSAGE_SELF as usize, usage.as_mut_ptr() as usize, 0)
    };
    match result(ret) {
        // SAFETY: the call succeeded, so the kernel filled `usage`.
        Ok(_) => unsafe { usage.assume_init() }.ru_nivcsw as u64,
        Err(_) => 0,
    }
}

/// Closes every descriptor from `first` up (close_range(2)); on kernels
/// older than 5.9, which lack it, closes them one by one up to the
/// descriptor limit.
///
/// # Safety
/// Nothing in the program may own a descriptor numbered `first` or above,
/// or use a borrow of one, afterwards.
pub unsafe fn close_from(first: u32) {
    // SAFETY: forwarded contract.
    unsafe { close_range(first, u32::MAX) }
}

/// Closes descriptors `first` to `last`, as [`close_from`] does.
///
/// # Safety
/// Nothing in the program may own a descriptor of the range, or use a
/// borrow of one, afterwards.
pub unsafe fn close_range(first: u32, last: u32) {
    // SAFETY: close_range takes two descriptor numbers and flags; the
    // caller gave up every descriptor in the range.
    let ret = unsafe { syscall3(nr::CLOSE_RANGE, first as usize, last as usize, 0) };
    if result(ret) == Err(Errno::NOSYS) {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(1 << 20);
        for fd in first as u64..=(last as u64).min(limit.min(1 << 20)) {
            // SAFETY: as above, for each descriptor of the range.
            unsafe { crate::io::close(fd as i32) };
        }
    }
}

/// A large table that lives in `.bss` and is handed out once, as a
/// `&'static mut`. Without an allocator, big fixed-capacity tables would
/// otherwise live on the stack, where stack probes touch (and so make
/// resident) every page of them; in `.bss` only the pages used count.
pub struct Table<T> {
    taken: AtomicBool,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY: the value is reachable only through the one `&mut` that `take`
// hands out, guarded by an atomic flag, to whichever thread asks first:
// that moves the value to that thread, which is sound for `T: Send`.
unsafe impl<T: Send> Sync for Table<T> {}

impl<T> Table<T> {
    /// A table holding `value`. For the table to go to `.bss` (and cost
    /// nothing until used), `value` should be all zero bytes, e.g. an empty
    /// `ArrayVec`; any value is correct.
    pub const fn new(value: T) -> Table<T> {
        Table { taken: AtomicBool::new(false), value: core::cell::UnsafeCell::new(value) }
    }

    /// The table, the first time; `None` afterwards.
    // A `&mut` from `&self` is the point: the flag makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the flag was false, so no other reference exists, and
        // none will be made: this is the only `&mut` ever handed out.
        Some(unsafe { &mut *self.value.get() })
    }
}

/// The symbols the compiler may call and a libc would define.
pub mod mem {
    pub use super::arch::{memcmp, memcpy, memset, strlen};

    /// C's memmove: forwards (memcpy) unless the destination starts
    /// inside the source, then backwards.
    ///
    /// # Safety
    /// As C's memmove.
    #[inline]
    pub unsafe fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
        if (d as usize).wrapping_sub(s as usize) >= n {
            // SAFETY: as memcpy: the destination does not start inside the
            // source, so a forward copy reads each byte before writing it.
            return unsafe { memcpy(d, s, n) };
        }
        // SAFETY: n > 0 (else the test above holds) and d above s.
        unsafe { super::arch::copy_backward(d, s, n) };
        d
    }
}

/// Writes one line for a panic and exits 111, the suite's code for a
/// temporary or system error. No formatting machinery is pulled in.
pub fn panic_exit(info: &core::panic::PanicInfo) -> ! {
    let _ = info;
    let mut line = crate::log::Line::new();
    line.str(b"fatal: internal error (panic)");
    line.emit();
    exit(111)
}

/// Turns a binary into a program on this runtime: defines `_start` (which
/// relocates the program, see [`Start::from_entry`]), the memory functions
/// and the panic handler, and calls `$main(Start) -> !`.
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
            $crate::runtime::panic_exit(info)
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

        #[cfg(not(test))]
        #[no_mangle]
        #[allow(unsafe_code)]
        extern "C" fn __ucspi_main(sp: *const usize, load_bias: usize) -> ! {
            // SAFETY: called only from `_start`, once, with the kernel's
            // stack pointer and the bias `__ucspi_relocate` returned.
            let start = unsafe { $crate::runtime::Start::from_entry(sp, load_bias) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_count_skip_and_iterate() {
        let strings = [c"a".as_ptr(), c"bc".as_ptr(), core::ptr::null()];
        // SAFETY: a null-terminated array of string literals.
        let a = unsafe { CStrArray::from_ptr(NonNull::new(strings.as_ptr() as *mut _).unwrap()) };
        assert_eq!(a.len(), 2);
        assert_eq!(a.first(), Some(c"a"));
        assert_eq!(a.skip(1).iter().collect::<Vec<_>>(), vec![c"bc"]);
        assert!(a.skip(2).is_empty());
        assert!(std::panic::catch_unwind(|| a.skip(3)).is_err());
    }

    /// Our memory functions (the test harness itself uses libc's) against
    /// the slice operations, for every size around the short-size paths.
    #[test]
    fn memory_functions_agree_with_slices() {
        let src: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        for n in 0..40 {
            for off in 0..3 {
                let mut dst = vec![0xAAu8; 48];
                // SAFETY: both buffers hold off + n bytes.
                unsafe { mem::memcpy(dst.as_mut_ptr().add(off), src.as_ptr().add(off), n) };
                assert_eq!(&dst[off..off + n], &src[off..off + n], "memcpy n={n}");
                assert!(dst[..off].iter().chain(&dst[off + n..]).all(|&b| b == 0xAA), "memcpy n={n} overran");
            }
            let a = &src[..n];
            for at in 0..n {
                for delta in [1u8, 0x80, 0xFF] {
                    let mut b = a.to_vec();
                    b[at] = b[at].wrapping_add(delta);
                    // SAFETY: both hold n bytes.
                    let got = unsafe { mem::memcmp(a.as_ptr(), b.as_ptr(), n) }.signum();
                    assert_eq!(got, a.cmp(&b[..]) as i32, "memcmp n={n} at={at}");
                    // SAFETY: as above.
                    let back = unsafe { mem::memcmp(b.as_ptr(), a.as_ptr(), n) }.signum();
                    assert_eq!(back, -got, "memcmp n={n} at={at} reversed");
                }
            }
            // SAFETY: both hold n bytes.
            assert_eq!(unsafe { mem::memcmp(a.as_ptr(), src.as_ptr(), n) }, 0);
            // Overlapping moves, each way, against copy_within.
            for (from, to) in [(0, 3), (3, 0), (5, 5)] {
                let mut ours = src.clone();
                let mut model = src.clone();
                let p = ours.as_mut_ptr();
                // SAFETY: both ranges lie within the 64 bytes of `ours`.
                unsafe { mem::memmove(p.add(to), p.add(from), n) };
                model.copy_within(from..from + n, to);
                assert_eq!(ours, model, "memmove n={n} {from}->{to}");
            }
        }
    }

    #[test]
    fn forked_children_return_and_exit() {
        for code in [0, 7] {
            // SAFETY: the child makes only raw system calls (exit_group).
            match unsafe { fork() }.unwrap() {
                Forked::Child => exit(code),
                Forked::Parent(pid) => {
                    let (_, status) =
                        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap().unwrap();
                    assert_eq!(status.exit_status(), Some(code));
                }
            }
        }
    }

    /// One test for everything `spawn` does: tests run on parallel
    /// threads, and a second simultaneous `spawn` is refused with BUSY.
    #[test]
    fn spawned_children_exit_and_stack_overruns_fault() {
        for code in [0, 3, 111] {
            let pid = spawn(&mut || exit(code)).unwrap();
            let (_, status) =
                rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap().unwrap();
            assert_eq!(status.exit_status(), Some(code));
        }
        #[inline(never)]
        fn deep(n: usize) -> usize {
            let buf = core::hint::black_box([n as u8; 4096]);
            if n == 0 {
                return buf[0] as usize;
            }
            deep(n - 1) + core::hint::black_box(buf[n % 4096]) as usize
        }
        let pid = spawn(&mut || exit(deep(CHILD_STACK / 4096 + 4) as i32)).unwrap();
        let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap().unwrap();
        assert_eq!(status.terminating_signal(), Some(Signal::SEGV.as_raw()));
    }
}
