//! The end record of a closed trace (`end`): written by `TraceWriter::finish` just before
//! `incomplete` is renamed to `version`, it says how many events the trace holds and the
//! digests of its events and header files, so that a complete trace cut short (even at a
//! chunk boundary, or emptied) or given another trace's header is refused rather than
//! replayed as a prefix.
//!
//! ```text
//! 0   magic "RWEN"
//! 4   u32 LE  format version
//! 8   u64 LE  number of events
//! 16  u64 LE  number of chunks
//! 24  u64 LE  length of the events file in bytes
//! 32  [32]    SHA-256 of the events file
//! 64  [32]    SHA-256 of the header file
//! 96  u32 LE  CRC-32 of bytes 0..96
//! ```

use std::path::Path;

use crate::error::{io, Error, Result};

/// Magic at the start of the end record.
pub const END_MAGIC: [u8; 4] = *b"RWEN";
/// Size of the end record file.
pub const END_LEN: usize = 100;

/// What a closed trace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRecord {
    /// Events in the events file.
    pub events: u64,
    /// Chunks in the events file.
    pub chunks: u64,
    /// Length of the events file.
    pub events_bytes: u64,
    /// SHA-256 of the events file.
    pub events_sha256: [u8; 32],
    /// SHA-256 of the header file.
    pub header_sha256: [u8; 32],
}

impl EndRecord {
    /// The file's bytes for a trace of format `version`.
    pub fn encode(&self, version: u32) -> [u8; END_LEN] {
        let mut out = [0u8; END_LEN];
        out[..4].copy_from_slice(&END_MAGIC);
        out[4..8].copy_from_slice(&version.to_le_bytes());
        out[8..16].copy_from_slice(&self.events.to_le_bytes());
        out[16..24].copy_from_slice(&self.chunks.to_le_bytes());
        out[24..32].copy_from_slice(&self.events_bytes.to_le_bytes());
        out[32..64].copy_from_slice(&self.events_sha256);
        out[64..96].copy_from_slice(&self.header_sha256);
        let crc = crc32fast::hash(&out[..96]);
        out[96..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads and checks the end record at `path` of a trace of format `version`.
    pub fn read(path: &Path, version: u32) -> Result<EndRecord> {
        let corrupt = |offset: u64, what: String| Error::Corrupt {
            path: path.to_path_buf(),
            offset,
            what,
        };
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(corrupt(
                    0,
                    "the end record is missing: the trace is marked complete, and a closed \
                     trace records how it ended"
                        .into(),
                ))
            }
            Err(e) => return Err(io("stat", path)(e)),
        };
        if len != END_LEN as u64 {
            return Err(corrupt(
                0,
                format!("end record is {len} bytes, not {END_LEN}"),
            ));
        }
        let bytes = std::fs::read(path).map_err(io("read", path))?;
        if bytes.len() != END_LEN {
            return Err(corrupt(
                0,
                format!("end record is {} bytes, not {END_LEN}", bytes.len()),
            ));
        }
        if bytes[..4] != END_MAGIC {
            return Err(corrupt(
                0,
                format!("bad end record magic {:02x?}", &bytes[..4]),
            ));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
        let crc = crc32fast::hash(&bytes[..96]);
        if crc != u32_at(96) {
            return Err(corrupt(
                96,
                format!(
                    "end record checksum mismatch (stored {:#010x}, computed {crc:#010x})",
                    u32_at(96)
                ),
            ));
        }
        if u32_at(4) != version {
            return Err(corrupt(
                4,
                format!(
                    "end record is of format version {}, the trace of {version}",
                    u32_at(4)
                ),
            ));
        }
        let mut events_sha256 = [0u8; 32];
        events_sha256.copy_from_slice(&bytes[32..64]);
        let mut header_sha256 = [0u8; 32];
        header_sha256.copy_from_slice(&bytes[64..96]);
        Ok(EndRecord {
            events: u64_at(8),
            chunks: u64_at(16),
            events_bytes: u64_at(24),
            events_sha256,
            header_sha256,
        })
    }
}
