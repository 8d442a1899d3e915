//! Guest memory as the readers see it: a function from an address and a length to the
//! bytes that are there (possibly fewer, where the mapping ends), and the checked,
//! little-endian reads every structure reader is built from.

use crate::error::{Error, Result};

/// Readable guest memory: a replay's timeline, a test's table of bytes.
pub trait Memory {
    /// Up to `len` bytes at `addr`; `None` when nothing there is readable.
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>>;
}

impl<F: Fn(u64, usize) -> Option<Vec<u8>>> Memory for F {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self(addr, len)
    }
}

/// Exactly `len` bytes at `addr`, or an error naming `what`.
pub fn bytes(mem: &dyn Memory, addr: u64, len: usize, what: &'static str) -> Result<Vec<u8>> {
    match mem.read(addr, len) {
        Some(b) if b.len() == len => Ok(b),
        _ => Err(Error::Memory { what, addr, len }),
    }
}

/// The little-endian u64 at `addr`.
pub fn u64_at(mem: &dyn Memory, addr: u64, what: &'static str) -> Result<u64> {
    Ok(le_u64(&bytes(mem, addr, 8, what)?, 0))
}

/// The little-endian u32 at `addr`.
pub fn u32_at(mem: &dyn Memory, addr: u64, what: &'static str) -> Result<u32> {
    Ok(le_u32(&bytes(mem, addr, 4, what)?, 0))
}

/// The little-endian u64 at byte `at` of `b` (0 where `b` is too short: callers read
/// whole structures first and check their length).
pub fn le_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The little-endian u32 at byte `at` of `b` (0 where `b` is too short).
pub fn le_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The NUL-terminated (or NUL-padded) string in `b[at..at + len]`.
pub fn c_str(b: &[u8], at: usize, len: usize) -> String {
    let s = b.get(at..at + len).unwrap_or(&[]);
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

#[cfg(test)]
pub(crate) mod fake {
    use std::collections::BTreeMap;

    /// Sparse memory: bytes at addresses; a read stops at the first missing byte.
    #[derive(Default)]
    pub struct Fake(BTreeMap<u64, u8>);

    impl Fake {
        pub fn put(&mut self, addr: u64, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                self.0.insert(addr + i as u64, *b);
            }
        }
    }

    impl super::Memory for Fake {
        fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
            Some(
                (0..len as u64)
                    .map_while(|i| self.0.get(&(addr + i)).copied())
                    .collect(),
            )
        }
    }
}
