//! Rewind's trace format.
//!
//! A trace is a directory:
//!
//! ```text
//! incomplete | version   format version in decimal; `incomplete` while the recorder runs,
//!                        renamed to `version` when the trace is closed (rr's life cycle)
//! header                 magic, length, CRC-32, bincode(Header)
//! events                 chunks: 32-byte frame + zstd(bincode(Event)…), see `chunk`
//! blobs/SHA256           zstd-compressed file contents and large syscall outputs
//! chaos                  optional: seed and parameters of a `--chaos` recording
//! end                    in a closed trace: event count and digests, see `end`
//! ```
//!
//! or the same files and the guest binary packed into one file (see `pack`); [`open`]
//! takes either.
//!
//! Every chunk is written with one `write` after its frame is complete, so a recorder
//! killed at any moment leaves a prefix of whole chunks followed by at most one partial
//! chunk; the reader stops there and reports the trace incomplete.
//!
//! # A trace is hostile input
//!
//! A trace may come from anyone, so every size read from one is checked against a limit
//! or against the data that backs it before anything is allocated, decompressed or
//! written, and no input makes the reader panic, hang, or exhaust memory or disk:
//!
//! | what | limit |
//! |---|---|
//! | version marker | a decimal number of at most 64 bytes; formats older than [`FORMAT_VERSION`] are refused (re-record) |
//! | header file | [`version::MAX_HEADER_BYTES`] (16 MiB); its frame, body and marker name one format version |
//! | events per chunk | 1 to [`chunk::MAX_CHUNK_EVENTS`] (4096, where the writer cuts) |
//! | uncompressed bytes per chunk | [`chunk::MAX_CHUNK_RAW`] (16 MiB), at least [`chunk::MIN_EVENT_BYTES`] per event; decompression stops there |
//! | compressed bytes per chunk | zstd's bound for the uncompressed length |
//! | events per trace | [`version::MAX_TRACE_EVENTS`] (2^24), and exactly the end record's count in a closed trace |
//! | one event or header decoded | 16 MiB (bincode limit) |
//! | a blob | the length the referring event records, at most [`blob::MAX_BLOB_BYTES`] (1 GiB); decompression is streamed and stops one byte past it |
//! | pack table | see [`pack`]: rows bounded by the table's length, unique names, no shared regions but `binary` with its own blob, unpacked bytes at most the pack's raw bytes plus the header's binary size |
//!
//! A closed trace is bound together: its end record holds the SHA-256 of the header and
//! events files and the event count, and every chunk carries the first four bytes of the
//! header's SHA-256, so a trace cut short (at a chunk boundary too), an emptied events
//! file, or an events file from another recording is refused by every reader.

#![forbid(unsafe_code)]
#![warn(clippy::cast_possible_truncation)]

pub mod blob;
pub mod chaos;
pub mod chunk;
pub mod dump;
pub mod end;
pub mod error;
pub mod event;
pub mod header;
pub mod names;
pub mod pack;
pub mod reader;
pub mod sysno;
pub mod tasks;
pub mod version;
pub mod writer;

pub use blob::BlobHash;
pub use chaos::ChaosInfo;
pub use end::EndRecord;
pub use error::{Error, Result};
pub use event::{
    CpuidEvent, Data, Event, ExecEvent, ExitStatus, FileMapping, Gprs, MemWrite, Output, Placement,
    RdtscEvent, RemoteAddr, SharedMapping, SignalEvent, Stream, SyscallEvent, OUTPUT_INLINE,
};
pub use header::{
    auxv_value, BinaryId, CpuidInfo, CpuidRecord, Header, InheritedSignals, InitialMapping, Script,
    TickAbi,
};
pub use reader::{BlobChecker, EventIter, TraceReader};
pub use tasks::{TaskTree, TaskTreeBuilder};
pub use version::{FAILED_EXECVE_RECORDED, FORMAT_VERSION, OLDEST_READABLE_VERSION};

/// Opens a trace directory or a packed trace; see [`TraceReader::open_any`].
pub fn open(path: impl AsRef<std::path::Path>) -> Result<TraceReader> {
    TraceReader::open_any(path)
}
pub use writer::{TraceStats, TraceWriter};
