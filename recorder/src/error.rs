//! The recorder's error type: each variant says what failed and where (pid, event
//! index, address, file).

use std::path::PathBuf;

/// Errors that stop a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tracee made a system call the recorder has no entry for.
    #[error(
        "unknown system call {name} ({nr}) at rip {rip:#x}, before event {event}, in tracee {pid}: \
         the recorder cannot capture its effects; recording stopped (trace kept in {})",
        trace.display()
    )]
    UnknownSyscall {
        /// Syscall name (or `syscall_N`).
        name: String,
        /// Number.
        nr: u64,
        /// Where.
        rip: u64,
        /// Index the event would have had.
        event: u64,
        /// The tracee.
        pid: i32,
        /// The trace written up to there.
        trace: PathBuf,
    },
    /// The tracee did something the recorder refuses (threads, children, a second exec, …).
    #[error(
        "{what} at rip {rip:#x}, before event {event}, in tracee {pid}: {why}; recording stopped \
         (trace kept in {})",
        trace.display()
    )]
    Unsupported {
        /// What was attempted, e.g. `clone(CLONE_VM|CLONE_THREAD…)`.
        what: String,
        /// Why it is refused.
        why: String,
        /// Where.
        rip: u64,
        /// Index the event would have had.
        event: u64,
        /// The tracee.
        pid: i32,
        /// The trace written up to there.
        trace: PathBuf,
    },
    /// The program ran past `--timeout`; the recorder killed it and closed the trace.
    #[error(
        "tracee {pid} did not finish in time; stopped by the recorder before event {event} \
         (trace closed as aborted-by-timeout in {})",
        trace.display()
    )]
    TimedOut {
        /// Index of the `Aborted` event.
        event: u64,
        /// The tracee.
        pid: i32,
        /// The trace.
        trace: PathBuf,
    },
    /// Starting the program failed.
    #[error("{0}")]
    Start(String),
    /// A ptrace or tracee-memory operation failed.
    #[error("at event {event}: {source}")]
    Tracee {
        /// Event index when it happened.
        event: u64,
        /// The error.
        source: tracee::Error,
    },
    /// Writing the trace failed.
    #[error("writing trace: {0}")]
    Trace(#[from] trace::Error),
    /// A host file the recorder needed could not be read.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Result with the recorder [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
