//! Errors of tracee operations: each names the operation and the pid, and a tracee that
//! disappeared (ESRCH) is its own variant rather than an OS error.

use nix::errno::Errno;

/// Errors from ptrace, tracee memory and process control.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tracee no longer exists (killed, or exited under us).
    #[error("tracee {pid} died during {op}")]
    Died {
        /// Its pid.
        pid: i32,
        /// What was being done.
        op: &'static str,
    },
    /// A system call on behalf of the tracee failed.
    #[error("{op} failed for tracee {pid}: {source}")]
    Os {
        /// What was being done.
        op: &'static str,
        /// The tracee's pid (0 before it exists).
        pid: i32,
        /// The error.
        source: Errno,
    },
    /// Starting the program failed.
    #[error("cannot start {program}: {why}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        why: String,
    },
    /// A memory access reached fewer bytes than asked.
    #[error("{op} at {addr:#x} for tracee {pid}: only {done} of {len} bytes are accessible")]
    ShortAccess {
        /// Read or write.
        op: &'static str,
        /// The tracee.
        pid: i32,
        /// Start address.
        addr: u64,
        /// Bytes asked for.
        len: usize,
        /// Bytes done.
        done: usize,
    },
    /// The tracee stopped in a way the operation cannot handle.
    #[error("tracee {pid}: unexpected {what} during {op}")]
    Unexpected {
        /// The tracee.
        pid: i32,
        /// What was being done.
        op: &'static str,
        /// What happened.
        what: String,
    },
}

/// Result with the tracee [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Maps an errno from an operation on `pid`, turning ESRCH into `Died`.
    pub(crate) fn os(op: &'static str, pid: nix::unistd::Pid) -> impl FnOnce(Errno) -> Error {
        move |e| {
            if e == Errno::ESRCH {
                Error::Died {
                    pid: pid.as_raw(),
                    op,
                }
            } else {
                Error::Os {
                    op,
                    pid: pid.as_raw(),
                    source: e,
                }
            }
        }
    }
}
