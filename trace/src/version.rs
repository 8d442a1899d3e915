//! Format version and the trace directory's life cycle (file names).

/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;

/// Present while the recorder is writing; holds the version in decimal.
pub const INCOMPLETE_FILE: &str = "incomplete";
/// `INCOMPLETE_FILE` renamed when the trace is closed.
pub const VERSION_FILE: &str = "version";
/// The header file.
pub const HEADER_FILE: &str = "header";
/// The chunked event stream.
pub const EVENTS_FILE: &str = "events";
/// Directory of blobs named by hash.
pub const BLOBS_DIR: &str = "blobs";

/// Magic at the start of the header file.
pub const HEADER_MAGIC: [u8; 4] = *b"RWHD";
/// Magic at the start of every event chunk.
pub const CHUNK_MAGIC: [u8; 4] = *b"RWEV";

/// Bincode configuration shared by writer and reader. The limit bounds what a corrupt
/// length field can make the reader allocate.
pub(crate) fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 256 << 20 }>()
}
