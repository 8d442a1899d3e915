//! umk's lock header and lock class (kernel/PROBES.md): the header is the first field of
//! every `SpinLock` and `Mutex` (`class` pointer @0, `locked` @8, `owner` pid @12, `kind`
//! @16); the class holds the name and the source line of its `lock_class!`.

use crate::error::Result;
use crate::memory::{self, le_u32, le_u64, Memory};

const CLASS: usize = 0;
const OWNER: usize = 12;
const KIND: usize = 16;
const HEADER_SIZE: usize = 20;
/// `LockClass`: name_ptr, name_len, file_ptr, file_len (u64 each), line (u32).
const CLASS_SIZE: usize = 36;
/// Class names and files are short; a huge length is a corrupt class.
const MAX_TEXT: u64 = 4096;

/// A lock header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHeader {
    /// Address of its `LockClass`.
    pub class: u64,
    /// Pid of the holder (0 when free).
    pub owner: u32,
    /// 1 spinlock, 2 mutex (anything else as the guest wrote it).
    pub kind: u32,
}

/// A lock class: the name and where `lock_class!` defined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInfo {
    /// The class name.
    pub name: String,
    /// The source file, as the guest recorded it.
    pub file: String,
    /// The source line.
    pub line: u32,
}

/// The header of the lock at `addr`.
pub fn header(mem: &dyn Memory, addr: u64) -> Result<LockHeader> {
    // The whole header in one read: the analyzer reads one at every lock probe.
    let h = memory::bytes(mem, addr, HEADER_SIZE, "a lock header")?;
    Ok(LockHeader {
        class: le_u64(&h, CLASS),
        owner: le_u32(&h, OWNER),
        kind: le_u32(&h, KIND),
    })
}

/// The holder of the lock at `addr` (0 when free).
pub fn owner(mem: &dyn Memory, addr: u64) -> Result<u32> {
    memory::u32_at(
        mem,
        addr.wrapping_add(OWNER as u64),
        "a lock header's owner",
    )
}

/// The lock class at `addr`.
pub fn class(mem: &dyn Memory, addr: u64) -> Result<ClassInfo> {
    let c = memory::bytes(mem, addr, CLASS_SIZE, "a lock class")?;
    let text = |ptr: usize, len: usize, what| -> Result<String> {
        let len = usize::try_from(le_u64(&c, len).min(MAX_TEXT)).unwrap_or(0);
        let b = memory::bytes(mem, le_u64(&c, ptr), len, what)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    };
    Ok(ClassInfo {
        name: text(0, 8, "a lock class name")?,
        file: text(16, 24, "a lock class file")?,
        line: le_u32(&c, 32),
    })
}
