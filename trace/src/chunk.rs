//! Chunk framing of the event stream.
//!
//! ```text
//! 0   magic "RWEV"
//! 4   u32 LE  compressed payload length
//! 8   u32 LE  uncompressed payload length
//! 12  u32 LE  number of events in the chunk
//! 16  u64 LE  index of the chunk's first event
//! 24  u32 LE  CRC-32 of bytes 0..24 followed by the payload
//! 28  u32 LE  reserved, zero
//! 32  payload: zstd(bincode(Event) ‖ bincode(Event) ‖ …)
//! ```

use crate::event::Event;
use crate::version::{bincode_config, CHUNK_MAGIC};

/// Size of the fixed frame before each payload.
pub const FRAME_LEN: usize = 32;

/// Upper bound on a payload, so a corrupt length cannot make the reader allocate wildly.
pub const MAX_PAYLOAD: u32 = 256 << 20;

/// The decoded fixed part of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Compressed payload length.
    pub compressed_len: u32,
    /// Uncompressed payload length.
    pub raw_len: u32,
    /// Events in the chunk.
    pub count: u32,
    /// Index of the first event.
    pub first_event: u64,
    /// Stored checksum.
    pub crc: u32,
}

fn crc_of(frame_head: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(frame_head);
    h.update(payload);
    h.finalize()
}

/// Encodes `raw` (concatenated bincode events) as one chunk, frame included.
pub fn encode(raw: &[u8], count: u32, first_event: u64) -> std::io::Result<Vec<u8>> {
    let payload = zstd::bulk::compress(raw, 3)?;
    let too_big = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "chunk too large");
    let compressed_len = u32::try_from(payload.len()).map_err(|_| too_big())?;
    let raw_len = u32::try_from(raw.len()).map_err(|_| too_big())?;
    if raw_len > MAX_PAYLOAD || compressed_len > MAX_PAYLOAD {
        return Err(too_big());
    }
    let mut out = Vec::with_capacity(FRAME_LEN + payload.len());
    out.extend_from_slice(&CHUNK_MAGIC);
    out.extend_from_slice(&compressed_len.to_le_bytes());
    out.extend_from_slice(&raw_len.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&first_event.to_le_bytes());
    let crc = crc_of(&out[..24], &payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Parses a frame; the error says what is wrong with it.
pub fn parse_frame(bytes: &[u8; FRAME_LEN]) -> Result<Frame, String> {
    if bytes[..4] != CHUNK_MAGIC {
        return Err(format!("bad chunk magic {:02x?}", &bytes[..4]));
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[16..24]);
    let frame = Frame {
        compressed_len: u32_at(4),
        raw_len: u32_at(8),
        count: u32_at(12),
        first_event: u64::from_le_bytes(first),
        crc: u32_at(24),
    };
    if frame.compressed_len > MAX_PAYLOAD || frame.raw_len > MAX_PAYLOAD {
        return Err(format!(
            "chunk length {} / {} exceeds the {} byte limit",
            frame.compressed_len, frame.raw_len, MAX_PAYLOAD
        ));
    }
    if u32_at(28) != 0 {
        return Err("reserved chunk field is not zero".into());
    }
    Ok(frame)
}

/// Checks the checksum and decodes the events of one chunk.
pub fn decode(
    frame_bytes: &[u8; FRAME_LEN],
    frame: &Frame,
    payload: &[u8],
) -> Result<Vec<Event>, String> {
    let crc = crc_of(&frame_bytes[..24], payload);
    if crc != frame.crc {
        return Err(format!(
            "checksum mismatch (stored {:#010x}, computed {crc:#010x})",
            frame.crc
        ));
    }
    let raw = zstd::bulk::decompress(payload, frame.raw_len as usize)
        .map_err(|e| format!("zstd payload does not decompress: {e}"))?;
    if raw.len() != frame.raw_len as usize {
        return Err(format!(
            "payload decompresses to {} bytes, frame says {}",
            raw.len(),
            frame.raw_len
        ));
    }
    let mut events = Vec::with_capacity(frame.count.min(1 << 16) as usize);
    let mut at = 0usize;
    for i in 0..frame.count {
        let (event, used): (Event, usize) =
            bincode::serde::decode_from_slice(&raw[at..], bincode_config())
                .map_err(|e| format!("event {} of the chunk does not decode: {e}", i))?;
        events.push(event);
        at += used;
    }
    if at != raw.len() {
        return Err(format!(
            "{} stray bytes after the chunk's {} events",
            raw.len() - at,
            frame.count
        ));
    }
    Ok(events)
}
