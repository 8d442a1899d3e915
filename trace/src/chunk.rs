//! Chunk framing of the event stream.
//!
//! ```text
//! 0   magic "RWEV"
//! 4   u32 LE  compressed payload length
//! 8   u32 LE  uncompressed payload length
//! 12  u32 LE  number of events in the chunk
//! 16  u64 LE  index of the chunk's first event
//! 24  u32 LE  CRC-32 of bytes 0..24 followed by the payload
//! 28  u32 LE  binding: the first 4 bytes of the SHA-256 of the trace's header file
//! 32  payload: zstd(bincode(Event) ‖ bincode(Event) ‖ …)
//! ```
//!
//! Every length in a frame is checked against a limit before anything is allocated or
//! decompressed: at most [`MAX_CHUNK_EVENTS`] events and [`MAX_CHUNK_RAW`] uncompressed
//! bytes per chunk, a compressed length no larger than zstd's bound for the raw length,
//! and at least [`MIN_EVENT_BYTES`] raw bytes per event. The writer never makes a chunk
//! outside these limits, so a frame outside them is damage or a crafted file.

use crate::event::Event;
use crate::version::{bincode_config, CHUNK_MAGIC};

/// Size of the fixed frame before each payload.
pub const FRAME_LEN: usize = 32;

/// Most events in one chunk; the writer cuts a chunk when it holds this many.
pub const MAX_CHUNK_EVENTS: u32 = 4096;

/// Most uncompressed payload bytes in one chunk. The writer cuts a chunk once it holds
/// 256 KiB, so a real chunk exceeds that by at most one event; an event is at most a few
/// MiB (inline memory writes are each below the recorder's 4 KiB blob threshold).
pub const MAX_CHUNK_RAW: u32 = 16 << 20;

/// The fewest bytes one bincode-encoded event takes (`Aborted` with an empty reason: a
/// variant tag and a length), so `count` events need at least this many raw bytes each.
pub const MIN_EVENT_BYTES: u32 = 2;

/// The largest compressed payload a raw payload of `raw_len` bytes can have (zstd's
/// worst case for incompressible input).
pub fn max_compressed(raw_len: u32) -> u64 {
    zstd::zstd_safe::compress_bound(raw_len as usize) as u64
}

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
    /// The header binding (see [`binding_of`]).
    pub binding: u32,
}

/// The binding a chunk carries for a header file whose SHA-256 is `header_sha256`.
pub fn binding_of(header_sha256: &[u8; 32]) -> u32 {
    u32::from_le_bytes([
        header_sha256[0],
        header_sha256[1],
        header_sha256[2],
        header_sha256[3],
    ])
}

fn crc_of(frame_head: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(frame_head);
    h.update(payload);
    h.finalize()
}

/// Encodes `raw` (concatenated bincode events) as one chunk, frame included, bound to the
/// header whose binding is `binding`.
pub fn encode(raw: &[u8], count: u32, first_event: u64, binding: u32) -> std::io::Result<Vec<u8>> {
    let too_big = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let raw_len = u32::try_from(raw.len())
        .ok()
        .filter(|&n| n <= MAX_CHUNK_RAW)
        .ok_or_else(|| {
            too_big(format!(
                "chunk of {} bytes exceeds the {MAX_CHUNK_RAW}-byte limit",
                raw.len()
            ))
        })?;
    if count == 0 || count > MAX_CHUNK_EVENTS {
        return Err(too_big(format!(
            "chunk of {count} events (1..={MAX_CHUNK_EVENTS})"
        )));
    }
    let payload = zstd::bulk::compress(raw, 3)?;
    // Below the raw limit, so zstd's bound keeps it well inside a u32; checked anyway,
    // since a cut length would make the frame lie about its payload.
    let compressed_len = u32::try_from(payload.len()).map_err(|_| {
        too_big(format!(
            "chunk compressed to {} bytes, beyond a u32 frame length",
            payload.len()
        ))
    })?;
    let mut out = Vec::with_capacity(FRAME_LEN + payload.len());
    out.extend_from_slice(&CHUNK_MAGIC);
    out.extend_from_slice(&compressed_len.to_le_bytes());
    out.extend_from_slice(&raw_len.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&first_event.to_le_bytes());
    let crc = crc_of(&out[..24], &payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&binding.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Parses a frame and checks its lengths against the limits; the error says what is wrong
/// with it.
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
        binding: u32_at(28),
    };
    if frame.raw_len > MAX_CHUNK_RAW {
        return Err(format!(
            "chunk claims {} uncompressed bytes, more than the {MAX_CHUNK_RAW}-byte limit",
            frame.raw_len
        ));
    }
    if u64::from(frame.compressed_len) > max_compressed(frame.raw_len) {
        return Err(format!(
            "chunk claims {} compressed bytes for {} uncompressed, more than zstd can produce \
             ({})",
            frame.compressed_len,
            frame.raw_len,
            max_compressed(frame.raw_len)
        ));
    }
    if frame.count == 0 || frame.count > MAX_CHUNK_EVENTS {
        return Err(format!(
            "chunk claims {} events (a chunk holds 1 to {MAX_CHUNK_EVENTS})",
            frame.count
        ));
    }
    if u64::from(frame.count) * u64::from(MIN_EVENT_BYTES) > u64::from(frame.raw_len) {
        return Err(format!(
            "chunk claims {} events in {} bytes (an event takes at least {MIN_EVENT_BYTES})",
            frame.count, frame.raw_len
        ));
    }
    Ok(frame)
}

/// Checks the checksum and decodes the events of one chunk. Decompression stops at the
/// frame's raw length, so a payload cannot expand past it.
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
    let raw = zstd::bulk::decompress(payload, frame.raw_len as usize).map_err(|e| {
        format!(
            "zstd payload does not decompress within {} bytes: {e}",
            frame.raw_len
        )
    })?;
    if raw.len() != frame.raw_len as usize {
        return Err(format!(
            "payload decompresses to {} bytes, frame says {}",
            raw.len(),
            frame.raw_len
        ));
    }
    let mut events = Vec::with_capacity(frame.count as usize);
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
