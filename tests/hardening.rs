//! The programs are hardened executables, as the Debian packages of their
//! peers are: static position-independent executables (ET_DYN, no
//! interpreter, no library) whose only relocations are the RELATIVE ones
//! the runtime applies at start-up, with full RELRO (a GNU_RELRO segment,
//! bound now), a stack that is not executable, and no segment both
//! writable and executable. Read from the files themselves (ELF64 and
//! ELF32, for every architecture we build); and at run time: each run is
//! loaded at another address and still serves, the relocated data is
//! read-only, and a relocation the runtime does not apply stops the
//! program with exit 111 and a line, not a crash.
use crate::common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The programs built without a Cargo feature (package/modes lists every
/// program; `optional` ones, ipcperl, link libc and are not ours to start).
fn programs() -> Vec<String> {
    let modes = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("package/modes")).unwrap();
    modes
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.ends_with("optional"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_REL: u64 = 17;
const DT_RELSZ: u64 = 18;
const DT_DEBUG: u64 = 21;
const DT_TEXTREL: u64 = 22;
const DT_JMPREL: u64 = 23;
const DT_FLAGS: u64 = 30;
const DT_RELR: u64 = 36;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DF_TEXTREL: u64 = 4;
const DF_BIND_NOW: u64 = 8;
const DF_1_NOW: u64 = 1;
const DF_1_PIE: u64 = 0x0800_0000;

/// A program header.
#[derive(Debug)]
struct Segment {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// An entry of the dynamic section, where it is in the file.
struct Dynamic {
    tag: u64,
    value: u64,
    at: usize,
}

/// An entry of the relocation table, where it is in the file.
struct Relocation {
    offset: u64,
    kind: u64,
    at: usize,
}

/// A little-endian ELF file of either class, as far as these tests read it.
struct Elf {
    bytes: Vec<u8>,
    wide: bool,
}

impl Elf {
    fn read(path: &Path) -> Elf {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&bytes[..4], b"\x7fELF", "{}", path.display());
        assert_eq!(bytes[5], 1, "{}: not little-endian", path.display());
        let wide = bytes[4] == 2;
        Elf { bytes, wide }
    }

    fn uint(&self, at: usize, size: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&self.bytes[at..at + size]);
        u64::from_le_bytes(b)
    }

    /// A word of the file's class: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, at: usize) -> u64 {
        self.uint(at, self.word_size())
    }

    fn word_size(&self) -> usize {
        if self.wide {
            8
        } else {
            4
        }
    }

    fn kind(&self) -> u16 {
        self.uint(16, 2) as u16
    }

    fn machine(&self) -> u16 {
        self.uint(18, 2) as u16
    }

    fn segments(&self) -> Vec<Segment> {
        let (phoff, phentsize, phnum) = if self.wide { (32, 54, 56) } else { (28, 42, 44) };
        let (first, size, count) = (self.word(phoff) as usize, self.uint(phentsize, 2), self.uint(phnum, 2));
        (0..count as usize)
            .map(|i| {
                let at = first + i * size as usize;
                if self.wide {
                    Segment {
                        kind: self.uint(at, 4) as u32,
                        flags: self.uint(at + 4, 4) as u32,
                        offset: self.uint(at + 8, 8),
                        vaddr: self.uint(at + 16, 8),
                        filesz: self.uint(at + 32, 8),
                        memsz: self.uint(at + 40, 8),
                    }
                } else {
                    Segment {
                        kind: self.uint(at, 4) as u32,
                        offset: self.uint(at + 4, 4),
                        vaddr: self.uint(at + 8, 4),
                        filesz: self.uint(at + 16, 4),
                        memsz: self.uint(at + 20, 4),
                        flags: self.uint(at + 24, 4) as u32,
                    }
                }
            })
            .collect()
    }

    /// Where the byte the program sees at `vaddr` is in the file.
    fn file_offset(&self, vaddr: u64) -> usize {
        let s =
            self.segments().into_iter().find(|s| s.kind == PT_LOAD && (s.vaddr..s.vaddr + s.filesz).contains(&vaddr));
        let s = s.unwrap_or_else(|| panic!("no loaded file bytes at {vaddr:#x}"));
        (vaddr - s.vaddr + s.offset) as usize
    }

    /// The dynamic section, up to DT_NULL; empty if there is none.
    fn dynamic(&self) -> Vec<Dynamic> {
        let Some(d) = self.segments().into_iter().find(|s| s.kind == PT_DYNAMIC) else { return Vec::new() };
        let w = self.word_size();
        (d.offset as usize..)
            .step_by(2 * w)
            .map(|at| Dynamic { tag: self.word(at), value: self.word(at + w), at })
            .take_while(|e| e.tag != DT_NULL)
            .collect()
    }

    fn dynamic_value(&self, tag: u64) -> Option<u64> {
        self.dynamic().iter().find(|e| e.tag == tag).map(|e| e.value)
    }

    /// The entries of the table DT_RELA (ELF64) or DT_REL (ELF32) names:
    /// its address and size tags, the size of an entry, and where the
    /// type is in the info word.
    fn relocations(&self) -> Vec<Relocation> {
        let (table, size, entry, type_bits) =
            if self.wide { (DT_RELA, DT_RELASZ, 24, 32) } else { (DT_REL, DT_RELSZ, 8, 8) };
        let Some(start) = self.dynamic_value(table) else { return Vec::new() };
        let start = self.file_offset(start);
        let w = self.word_size();
        (start..start + self.dynamic_value(size).unwrap() as usize)
            .step_by(entry)
            .map(|at| Relocation { offset: self.word(at), kind: self.word(at + w) & ((1 << type_bits) - 1), at })
            .collect()
    }

    /// The machine's R_*_RELATIVE, the one relocation the runtime applies.
    fn relative(&self) -> u64 {
        match self.machine() {
            62 => 8,     // EM_X86_64: R_X86_64_RELATIVE
            183 => 1027, // EM_AARCH64: R_AARCH64_RELATIVE
            40 => 23,    // EM_ARM: R_ARM_RELATIVE
            243 => 3,    // EM_RISCV: R_RISCV_RELATIVE
            m => panic!("unknown machine {m}"),
        }
    }
}

/// What `readelf -h -l -d -r` would be read for, for every program.
#[test]
fn every_program_is_a_hardened_static_pie() {
    for name in programs() {
        let path = bin(&name);
        let elf = Elf::read(&path);
        let segments = elf.segments();
        let has = |kind| segments.iter().any(|s| s.kind == kind);
        assert_eq!(elf.kind(), ET_DYN, "{name}: not position-independent (ET_DYN)");
        assert!(!has(PT_INTERP), "{name}: has an interpreter (a dynamic loader)");
        assert!(has(PT_GNU_RELRO), "{name}: no GNU_RELRO segment");
        let stack = segments.iter().find(|s| s.kind == PT_GNU_STACK);
        assert_eq!(
            stack.map(|s| s.flags),
            Some(PF_R | PF_W),
            "{name}: the stack is not RW (no GNU_STACK, or executable)"
        );
        for s in segments.iter().filter(|s| s.kind == PT_LOAD) {
            assert_ne!(s.flags & (PF_W | PF_X), PF_W | PF_X, "{name}: a writable and executable segment: {s:?}");
        }
        // The runtime takes the ELF header's run-time address for the load
        // bias: it must be linked at 0.
        let first = segments.iter().find(|s| s.kind == PT_LOAD && s.offset == 0);
        assert_eq!(first.map(|s| s.vaddr), Some(0), "{name}: the ELF header is not linked at address 0");

        let dynamic = elf.dynamic();
        assert!(!dynamic.is_empty(), "{name}: no dynamic section");
        for tag in [DT_NEEDED, DT_TEXTREL, DT_JMPREL, DT_RELR, if elf.wide { DT_REL } else { DT_RELA }] {
            assert!(dynamic.iter().all(|e| e.tag != tag), "{name}: has dynamic tag {tag}");
        }
        let flags = elf.dynamic_value(DT_FLAGS).unwrap_or(0);
        assert_eq!(flags & (DF_BIND_NOW | DF_TEXTREL), DF_BIND_NOW, "{name}: DT_FLAGS {flags:#x}");
        let flags_1 = elf.dynamic_value(DT_FLAGS_1).unwrap_or(0);
        assert_eq!(flags_1 & (DF_1_NOW | DF_1_PIE), DF_1_NOW | DF_1_PIE, "{name}: DT_FLAGS_1 {flags_1:#x}");

        // Only RELATIVE relocations, and only of writable data.
        for r in elf.relocations() {
            assert_eq!(r.kind, elf.relative(), "{name}: relocation type {} at {:#x}", r.kind, r.offset);
            let writable = segments
                .iter()
                .any(|s| s.kind == PT_LOAD && s.flags & PF_W != 0 && (s.vaddr..s.vaddr + s.memsz).contains(&r.offset));
            assert!(writable, "{name}: relocation of read-only memory at {:#x}", r.offset);
        }
    }
}

/// The kernel's page size, from our own auxiliary vector (AT_PAGESZ): pairs
/// of words of this architecture's size (4 bytes on 32-bit ARM).
fn page_size() -> u64 {
    const WORD: usize = std::mem::size_of::<usize>();
    let auxv = std::fs::read("/proc/self/auxv").unwrap();
    let pairs = auxv.chunks_exact(2 * WORD).map(|c| {
        let word = |i: usize| usize::from_ne_bytes(c[i * WORD..(i + 1) * WORD].try_into().unwrap()) as u64;
        (word(0), word(1))
    });
    pairs.into_iter().find(|&(key, _)| key == 6).expect("AT_PAGESZ").1
}

/// The mappings of `pid` of the file `path`: (start, end, permissions,
/// offset in the file).
fn mappings(pid: i32, path: &Path) -> Vec<(u64, u64, String, u64)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
    maps.lines()
        .filter(|l| l.ends_with(&*path.to_string_lossy()))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (start, end) = f[0].split_once('-').unwrap();
            (hex(start), hex(end), f[1].to_string(), hex(f[2]))
        })
        .collect()
}

/// Two servers, two load addresses, both serving; and in each, the
/// GNU_RELRO pages mapped read-only. Natively: under qemu-user,
/// /proc/PID/maps shows the emulator's memory, where qemu places the
/// program (at the same address each run on some architectures).
#[test]
fn each_run_is_loaded_elsewhere_serves_and_keeps_relocated_data_read_only() {
    let daemon = bin("ipcserverd");
    let relro = Elf::read(&daemon).segments().into_iter().find(|s| s.kind == PT_GNU_RELRO).unwrap();
    let page = page_size();
    let mut biases = Vec::new();
    for run in 0..2 {
        let dir = TempDir::new();
        let sock = dir.join("s");
        let server = Server::start(cmd("ipcserver").arg(&sock).args(["echo", "served"]), &sock);
        assert_eq!(fetch(&sock).unwrap(), b"served\n", "run {run}");
        if emulated() {
            continue;
        }
        // The server's pid runs ipcserverd once the chain is through.
        let mut maps = Vec::new();
        assert!(wait_until(10, || {
            maps = mappings(server.pid(), &daemon);
            !maps.is_empty()
        }));
        let bias = maps.iter().find(|m| m.3 == 0).expect("the mapping of the ELF header").0;
        let start = (bias + relro.vaddr) & !(page - 1);
        let end = (bias + relro.vaddr + relro.memsz) & !(page - 1);
        if start < end {
            let read_only = maps.iter().any(|m| m.0 <= start && end <= m.1 && m.2 == "r--p");
            assert!(read_only, "run {run}: RELRO {start:#x}-{end:#x} not read-only: {maps:x?}");
        }
        biases.push(bias);
    }
    if emulated() {
        skip("qemu-user: the load address and protections are the emulator's (the servers served)");
    } else if std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").is_ok_and(|v| v.trim() == "0") {
        skip("address space randomisation is off (kernel.randomize_va_space = 0)");
    } else {
        assert_ne!(biases[0], biases[1], "both runs at {:#x}", biases[0]);
    }
}

/// Runs a copy of ipcserver changed by `patch`: it must exit 111 with the
/// runtime's line, before doing anything else.
fn refused(patch: impl FnOnce(&mut Elf)) {
    let dir = TempDir::new();
    let mut elf = Elf::read(&bin("ipcserver"));
    patch(&mut elf);
    let copy = dir.join("ipcserver");
    std::fs::write(&copy, &elf.bytes).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another test's fork may hold the file open for writing a moment
    // longer (ETXTBSY): try again.
    let mut o = None;
    assert!(wait_until(10, || {
        match std::process::Command::new(&copy).arg("-h").output() {
            Ok(out) => o = Some(out),
            Err(e) if e.raw_os_error() == Some(26) => return false,
            Err(e) => panic!("{}: {e}", copy.display()),
        }
        true
    }));
    let o = o.unwrap();
    assert_eq!(o.status.code(), Some(111), "{o:?}");
    assert_eq!(stderr(&o), "ucspi-ipc: fatal: unable to relocate the program: unsupported relocation\n");
    assert!(o.stdout.is_empty());
}

#[test]
fn a_relocation_of_another_type_is_refused() {
    refused(|elf| {
        let relocations = elf.relocations();
        let first = relocations.first().expect("ipcserver has relocations");
        // Its type becomes R_*_NONE (0 on every architecture).
        let type_at = first.at + elf.word_size();
        elf.bytes[type_at] = 0;
        if elf.wide {
            elf.bytes[type_at + 1..type_at + 4].fill(0);
        }
    });
}

#[test]
fn a_table_of_packed_relocations_is_refused() {
    refused(|elf| {
        // DT_DEBUG, which both linkers write and nothing reads here,
        // becomes DT_RELR (what `-z pack-relative-relocs` would add).
        let at = elf.dynamic().iter().find(|e| e.tag == DT_DEBUG).expect("a DT_DEBUG entry").at;
        elf.bytes[at] = DT_RELR as u8;
    });
}
