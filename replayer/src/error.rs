//! The replayer's error type: each variant says what failed and where (event index, pid,
//! address, file). A divergence names the event, what the trace expected and what the
//! tracee did.

use std::path::PathBuf;

/// Errors of a replay or a timeline operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tracee did not do what the recording says.
    #[error("replay diverged at event {event}: expected {expected}; found {found}")]
    Divergence {
        /// Index of the event being replayed.
        event: u64,
        /// What the trace says.
        expected: String,
        /// What the tracee did.
        found: String,
    },
    /// The binary at hand is not the one recorded.
    #[error(
        "trace {} was recorded with {} (sha256 {expected_sha}); {} {why}: refusing to replay \
         against a different binary",
        trace.display(), expected.display(), found.display()
    )]
    BinaryMismatch {
        /// The trace.
        trace: PathBuf,
        /// The binary the recording ran.
        expected: PathBuf,
        /// Its hash.
        expected_sha: String,
        /// The file found where it should be.
        found: PathBuf,
        /// How it differs.
        why: String,
    },
    /// This host's CPU cannot replay the recording: it ran `cpuid` natively on another
    /// CPU model (refused before the replay starts), or this CPU builds signal frames of
    /// another size (refused where a handler would be entered, naming the event).
    #[error("cannot replay {} on this host: {why}", trace.display())]
    HostMismatch {
        /// The trace.
        trace: PathBuf,
        /// What differs.
        why: String,
    },
    /// The replay cannot be set up (missing CPU feature, working directory, …).
    #[error("cannot replay {}: {why}", trace.display())]
    Setup {
        /// The trace.
        trace: PathBuf,
        /// Why.
        why: String,
    },
    /// A ptrace or tracee-memory operation failed.
    #[error("at event {event}: {source}")]
    Tracee {
        /// Event index when it happened.
        event: u64,
        /// The error.
        source: tracee::Error,
    },
    /// Making, sizing or filling the memory file behind a shared file failed.
    #[error("at event {event}: {op} the memory file behind shared file {file}: {source}")]
    SharedFile {
        event: u64,
        file: u32,
        op: &'static str,
        source: std::io::Error,
    },
    /// Reading the trace failed.
    #[error("reading trace: {0}")]
    Trace(#[from] trace::Error),
    /// A position that cannot be parsed.
    #[error("bad position {text:?}: {why} (syntax: eN, eN+tK, eN+sJ, eN+tK+sJ)")]
    BadPosition {
        /// What was typed.
        text: String,
        /// What is wrong.
        why: String,
    },
    /// A position past the end of the recording (or before its start).
    #[error("position {position} is outside the recording: {why}")]
    OutOfHistory {
        /// The position asked for.
        position: String,
        /// Why it cannot be reached.
        why: String,
    },
    /// A change to the replayed program's memory or registers, which would make what
    /// follows something the recording never did.
    #[error(
        "the replay is read-only: {0} would make it differ from the recording (to try a \
         change, edit the program and record it again)"
    )]
    ReadOnly(String),
    /// An operation that is not possible here (no free debug register, no symbol, …).
    #[error("{0}")]
    Invalid(String),
}

/// Result with the replayer [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
