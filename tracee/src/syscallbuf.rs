//! Reading the syscall buffer (the preload library's log of the calls it made without a
//! stop, see `syscallbuf_abi`) out of a stopped tracee: the records the recorder has not
//! seen yet, each checked against the layout and against the calls the library may
//! buffer, and the memory each record carries served to the syscall tables as a
//! [`Peek`], so a buffered call becomes the same event a traced one would.

use syscallbuf_abi::{self as abi, header};

use crate::syscalls::Peek;
use crate::{Addr, Result, Stopped};

pub use syscallbuf_abi::{FLUSH_NR, UNTRACED_RIP};

/// One call the library made from the untraced entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset in the records area, to name it.
    pub offset: u64,
    /// System call number.
    pub nr: u64,
    /// Its six arguments.
    pub args: [u64; 6],
    /// Its raw result.
    pub ret: i64,
    /// The memory it read or wrote, as the library copied it after the call.
    pub chunks: Vec<(u64, Vec<u8>)>,
}

impl Peek for Record {
    fn peek(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self.chunks.iter().find_map(|(at, bytes)| {
            let start = usize::try_from(addr.checked_sub(*at)?).ok()?;
            bytes
                .get(start..start.checked_add(len)?)
                .map(<[u8]>::to_vec)
        })
    }
}

/// Why the buffer cannot be read: the program wrote over it, or the library is not ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// The records written since the last drain, marked drained; `Ok(None)` when this
/// address space has no buffer (no library, or it could not map its pages).
pub fn drain(s: &Stopped) -> Result<std::result::Result<Option<Vec<Record>>, Malformed>> {
    // At every stop of a buffered recording: one process_vm_readv (the library maps its
    // buffer readable), not the /proc/PID/mem fallback, for address spaces without one.
    let mut head = [0u8; 32];
    if s.read_readable(Addr::new(abi::BUFFER), &mut head)? < head.len() {
        return Ok(Ok(None));
    }
    let word = |off: u64| word_at(&head, off).unwrap_or(0);
    if word(header::MAGIC) != abi::MAGIC {
        return Ok(Ok(None));
    }
    let (used, drained) = (word(header::USED), word(header::DRAINED));
    let capacity = abi::BUFFER_SIZE - header::SIZE;
    if used > capacity || drained > used || drained % 8 != 0 {
        return Ok(Err(Malformed(format!(
            "its header says {used} bytes used and {drained} drained of {capacity}"
        ))));
    }
    if used == drained {
        return Ok(Ok(Some(Vec::new())));
    }
    // `used - drained` is at most the buffer's size (checked above).
    let len = usize::try_from(used - drained).unwrap_or(0);
    let bytes = s.read_vec(Addr::new(abi::BUFFER + header::SIZE + drained), len)?;
    let records = match parse(&bytes, drained) {
        Ok(r) => r,
        Err(m) => return Ok(Err(m)),
    };
    s.write_u64(Addr::new(abi::BUFFER + header::DRAINED), used)?;
    Ok(Ok(Some(records)))
}

/// `len` bytes of `bytes` from `at`, if there are.
fn part(bytes: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let from = usize::try_from(at).ok()?;
    bytes.get(from..from.checked_add(usize::try_from(len).ok()?)?)
}

/// The little-endian word at `at`.
fn word_at(bytes: &[u8], at: u64) -> Option<u64> {
    Some(u64::from_le_bytes(part(bytes, at, 8)?.try_into().ok()?))
}

/// The records in `bytes`, which start at offset `base` of the records area.
pub fn parse(bytes: &[u8], base: u64) -> std::result::Result<Vec<Record>, Malformed> {
    let mut out = Vec::new();
    let total = bytes.len() as u64;
    let mut at = 0u64;
    while at < total {
        let offset = base + at;
        let bad = |why: String| Malformed(format!("record at offset {offset}: {why}"));
        let first = word_at(bytes, at).ok_or_else(|| bad("truncated".into()))?;
        let (size, chunks) = (first & 0xffff_ffff, first >> 32);
        let rest = total - at;
        if size < abi::RECORD_HEAD || size % 8 != 0 || size > rest || chunks > 1 {
            return Err(bad(format!(
                "size {size} with {chunks} chunks ({rest} bytes left)"
            )));
        }
        let word = |k: u64| word_at(bytes, at + 8 * k).unwrap_or(0);
        let nr = word(1);
        if !abi::BUFFERABLE.contains(&nr) {
            return Err(bad(format!(
                "system call {nr} is not one the library buffers"
            )));
        }
        let args = [word(2), word(3), word(4), word(5), word(6), word(7)];
        let ret = word(8) as i64;
        let mut chunk_list = Vec::new();
        if chunks == 1 {
            let (addr, len) = (word(9), word(10));
            let room = size.saturating_sub(abi::RECORD_HEAD + abi::CHUNK_HEAD);
            let data = (size >= abi::RECORD_HEAD + abi::CHUNK_HEAD
                && len <= room
                && len <= abi::MAX_TRANSFER)
                .then(|| part(bytes, at + abi::RECORD_HEAD + abi::CHUNK_HEAD, len))
                .flatten()
                .ok_or_else(|| bad(format!("a chunk of {len} bytes in a record of {size}")))?;
            chunk_list.push((addr, data.to_vec()));
        }
        out.push(Record {
            offset,
            nr,
            args,
            ret,
            chunks: chunk_list,
        });
        at += size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nr: u64, ret: i64, chunk: Option<(u64, &[u8])>) -> Vec<u8> {
        let mut v = Vec::new();
        let size = abi::RECORD_HEAD
            + chunk.map_or(0, |(_, b)| abi::CHUNK_HEAD + abi::align8(b.len() as u64));
        v.extend((size | (u64::from(chunk.is_some()) << 32)).to_le_bytes());
        v.extend(nr.to_le_bytes());
        for a in [3u64, 0x1000, 5, 0, 0, 0] {
            v.extend(a.to_le_bytes());
        }
        v.extend(ret.to_le_bytes());
        if let Some((addr, b)) = chunk {
            v.extend(addr.to_le_bytes());
            v.extend((b.len() as u64).to_le_bytes());
            v.extend(b);
            v.resize(usize::try_from(size).unwrap(), 0);
        }
        v
    }

    #[test]
    fn reads_records_and_serves_their_memory() {
        let mut bytes = record(0, 5, Some((0x1000, b"hello")));
        bytes.extend(record(39, 1234, None));
        let r = parse(&bytes, 64).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].offset, r[0].nr, r[0].ret), (64, 0, 5));
        assert_eq!(r[0].peek(0x1001, 3).as_deref(), Some(&b"ell"[..]));
        assert_eq!(r[0].peek(0x1003, 3), None, "past the chunk");
        assert_eq!((r[1].nr, r[1].ret, r[1].chunks.len()), (39, 1234, 0));
    }

    #[test]
    fn refuses_what_the_library_never_writes() {
        let open = record(2, 3, None);
        assert!(parse(&open, 0)
            .unwrap_err()
            .0
            .contains("not one the library buffers"));
        let mut short = record(0, 5, Some((0x1000, b"hello")));
        short.truncate(72);
        assert!(parse(&short, 0).is_err());
        let mut lying = record(0, 5, Some((0x1000, b"hello")));
        lying[80..88].copy_from_slice(&1000u64.to_le_bytes());
        assert!(parse(&lying, 0).unwrap_err().0.contains("chunk of 1000"));
        let mut zero = record(39, 1, None);
        zero[0..8].copy_from_slice(&0u64.to_le_bytes());
        assert!(parse(&zero, 0).is_err(), "a zero size would loop forever");
    }
}
