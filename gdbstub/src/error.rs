//! Errors of the gdb stub, each naming the operation and the place it failed, so a
//! message in gdb's console or the CLI's report says what to look at.

/// Everything that can go wrong in the stub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The replay's timeline refused or failed an operation.
    #[error("{op} at {at}: {source}")]
    Timeline {
        op: &'static str,
        at: String,
        #[source]
        source: Box<replayer::Error>,
    },
    /// The listening socket or a connection failed.
    #[error("{op} on {addr}: {source}")]
    Socket {
        op: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The gdb protocol session ended with a fatal error.
    #[error("gdb session with {peer}: {why}")]
    Session { peer: String, why: String },
    /// A `monitor` command could not be understood.
    #[error("monitor {cmd:?}: {why}")]
    Monitor { cmd: String, why: String },
}

/// The stub's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps a timeline error with the operation and the position it was tried at.
    pub(crate) fn timeline(op: &'static str, at: impl ToString, source: replayer::Error) -> Error {
        Error::Timeline {
            op,
            at: at.to_string(),
            source: Box::new(source),
        }
    }
}
