//! What the checks share: files in memory (memfd) to compile into and read
//! from, with rustix's descriptor types, which the library uses.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{MemfdFlags, SeekFrom};

/// A new, empty file in memory.
pub fn empty_file() -> OwnedFd {
    rustix::fs::memfd_create(c"ucspi-ipc-fuzz", MemfdFlags::CLOEXEC).expect("memfd_create")
}

/// A file in memory holding `data`, its offset at the start.
pub fn file_with(data: &[u8]) -> OwnedFd {
    let fd = empty_file();
    let mut rest = data;
    while !rest.is_empty() {
        let n = rustix::io::write(&fd, rest).expect("write to memfd");
        rest = &rest[n..];
    }
    rustix::fs::seek(&fd, SeekFrom::Start(0)).expect("seek memfd");
    fd
}

/// Everything a file holds, read with pread (the offset is left alone).
pub fn contents(fd: impl AsFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = rustix::io::pread(&fd, &mut chunk, out.len() as u64).expect("pread");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// A second descriptor for the same file, for a reader that takes
/// ownership; close-on-exec, as the first (no program that a test started
/// meanwhile inherits it).
pub fn dup(fd: impl AsFd) -> OwnedFd {
    rustix::io::fcntl_dupfd_cloexec(fd, 0).expect("dup")
}

/// Bytes that show as an escaped string in messages (`b"1:deny\n"`),
/// long ones cut short.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(pub Vec<u8>);

impl From<&[u8]> for Text {
    fn from(b: &[u8]) -> Text {
        Text(b.to_vec())
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&show(&self.0))
    }
}

/// `b"..."`, escaped, at most 300 bytes of it.
pub fn show(b: &[u8]) -> String {
    const SHOWN: usize = 300;
    if b.len() > SHOWN {
        format!("b\"{}\"... ({} bytes)", b[..SHOWN].escape_ascii(), b.len())
    } else {
        format!("b\"{}\"", b.escape_ascii())
    }
}

/// Each of a list of byte strings, as [`Text`].
pub fn texts<B: AsRef<[u8]>>(list: &[B]) -> Vec<Text> {
    list.iter().map(|b| Text::from(b.as_ref())).collect()
}
