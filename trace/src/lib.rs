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
//! ```
//!
//! or the same files and the guest binary packed into one file (see `pack`); [`open`]
//! takes either.
//!
//! Every chunk is written with one `write` after its frame is complete, so a recorder
//! killed at any moment leaves a prefix of whole chunks followed by at most one partial
//! chunk; the reader stops there and reports the trace incomplete.

pub mod blob;
pub mod chaos;
pub mod chunk;
pub mod dump;
pub mod error;
pub mod event;
pub mod header;
pub mod names;
pub mod pack;
pub mod reader;
pub mod sysno;
pub mod version;
pub mod writer;

pub use blob::BlobHash;
pub use chaos::ChaosInfo;
pub use error::{Error, Result};
pub use event::{
    CpuidEvent, Data, Event, ExitStatus, FileMapping, Gprs, MemWrite, Output, Placement,
    RdtscEvent, RemoteAddr, SignalEvent, Stream, SyscallEvent, OUTPUT_INLINE,
};
pub use header::{
    BinaryId, CpuidInfo, CpuidRecord, Header, InheritedSignals, InitialMapping, Script, TickAbi,
};
pub use reader::{EventIter, TraceReader};
pub use version::FORMAT_VERSION;

/// Opens a trace directory or a packed trace; see [`TraceReader::open_any`].
pub fn open(path: impl AsRef<std::path::Path>) -> Result<TraceReader> {
    TraceReader::open_any(path)
}
pub use writer::{TraceStats, TraceWriter};
