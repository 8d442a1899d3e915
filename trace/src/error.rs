//! The trace crate's one error type. Every variant says what went wrong and where: the
//! file and, inside it, the byte offset.

use std::path::PathBuf;

/// Errors reading or writing a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a trace file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The directory is not a trace (no `version` or `incomplete` file).
    #[error("{} is not a rewind trace (no `version` or `incomplete` file)", path.display())]
    NotATrace {
        /// The directory.
        path: PathBuf,
    },
    /// The trace was written by a newer format than this build reads.
    #[error(
        "{}: trace format version {found} is newer than this rewind supports ({supported}); \
         use a newer rewind",
        path.display()
    )]
    FutureVersion {
        /// The file holding the version.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The trace was written by an older format than this build reads.
    #[error(
        "{}: trace format version {found} is older than this rewind reads ({supported}); \
         re-record the program with this rewind",
        path.display()
    )]
    OldVersion {
        /// The file holding the version.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Bytes that do not form what the format says should be there.
    #[error("{}: corrupt at byte offset {offset}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged structure.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The file ends inside a structure in a trace that claims to be complete.
    #[error(
        "{}: truncated at byte offset {offset}: {what} (the trace is marked complete)",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset where the incomplete structure starts.
        offset: u64,
        /// What is missing.
        what: String,
    },
    /// The trace is incomplete in a way that leaves nothing to read.
    #[error("{}: trace is incomplete: {what}", path.display())]
    Incomplete {
        /// The missing or partial file.
        path: PathBuf,
        /// What is missing.
        what: String,
    },
    /// A blob the trace refers to is missing or does not match its hash.
    #[error("blob {hash}: {what}")]
    Blob {
        /// Its hash.
        hash: String,
        /// What is wrong.
        what: String,
    },
    /// A packed trace is damaged, cut short or not one this build reads.
    #[error("{}: packed entry `{entry}` at byte offset {offset}: {what}", path.display())]
    Pack {
        /// The pack file.
        path: PathBuf,
        /// Byte offset of the damaged entry or structure.
        offset: u64,
        /// The entry's name (`events`, `blobs/…`, `binary`) or `table of contents`.
        entry: String,
        /// What is wrong.
        what: String,
    },
    /// The guest binary is not the one the trace was recorded with.
    #[error(
        "{}: not the recorded binary (sha256 {found}, the trace header records {expected})",
        path.display()
    )]
    BinaryMismatch {
        /// The binary found.
        path: PathBuf,
        /// SHA-256 the header records.
        expected: String,
        /// SHA-256 of the file found.
        found: String,
    },
    /// Serializing an event or header failed (a bug, not bad input).
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Bincode's error.
        source: bincode::error::EncodeError,
    },
    /// The writer was used after an earlier failure or out of order.
    #[error("trace writer: {0}")]
    Usage(&'static str),
}

/// Result with the trace [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}
