//! The analyzer's one error type: every variant names the operation and the place (file,
//! address, program) so a failed analysis says what to fix.

use std::path::PathBuf;

/// Errors of the analyzer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file (the guest binary, a golden file) failed.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The guest binary is not an ELF file the analyzer can parse.
    #[error("parsing {path} as ELF: {why}")]
    BadElf { path: PathBuf, why: String },
    /// The guest binary has no DWARF, so stacks cannot be given files and lines.
    #[error(
        "{path} has no debug info (.debug_info is missing): rebuild the guest with debug = true"
    )]
    NoDebugInfo { path: PathBuf },
    /// A symbol the probes need is not in the binary.
    #[error("symbol `{name}` not found in {path}")]
    NoSymbol { name: String, path: PathBuf },
    /// Two probe functions share one address (the compiler or linker merged their
    /// identical bodies), so a breakpoint cannot tell them apart.
    #[error("probe functions `{first}` and `{second}` share address {addr:#x} in {path} (identical code folded): give each probe a distinct body")]
    ProbesFolded {
        first: String,
        second: String,
        addr: u64,
        path: PathBuf,
    },
    /// capstone failed to set up or to disassemble.
    #[error("disassembling at {addr:#x}: {why}")]
    Disassemble { addr: u64, why: String },
    /// The graph is larger than the built-in renderer draws.
    #[error(
        "the diagram has {nodes} nodes and {edges} edges, more than the built-in renderer \
         draws ({} nodes, {} edges): draw it with --graphviz, or render the DOT file yourself",
        crate::graph::MAX_BUILTIN_NODES,
        crate::graph::MAX_BUILTIN_EDGES
    )]
    GraphTooLarge { nodes: usize, edges: usize },
    /// Graphviz could not be run or failed.
    #[error("running graphviz `{program}` to render SVG: {why}")]
    Graphviz { program: String, why: String },
    /// Reading the trace itself (its header) failed.
    #[error("{op} trace {}: {why}", trace.display())]
    Trace {
        op: &'static str,
        trace: PathBuf,
        why: String,
    },
    /// The replay failed while the analyzer drove it.
    #[error("{op} trace {}: {source}", trace.display())]
    Replay {
        op: &'static str,
        trace: PathBuf,
        #[source]
        source: Box<replayer::Error>,
    },
    /// Guest memory the collector needs could not be read in full.
    #[error("reading {what} at {addr:#x} ({len} bytes) in the guest: memory not readable")]
    GuestMemory {
        what: &'static str,
        addr: u64,
        len: usize,
    },
    /// A guest structure is not the one the readers know (kernel/TASKS.md), or holds an
    /// impossible value.
    #[error("guest layout mismatch: {0}")]
    GuestLayout(String),
    /// A symbol the analysis needs names several functions.
    #[error("{0}")]
    AmbiguousSymbol(String),
    /// Writing an output file failed.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serializing an export failed.
    #[error("serializing {what}: {why}")]
    Serialize { what: &'static str, why: String },
}

/// The analyzer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<guest::Error> for Error {
    fn from(e: guest::Error) -> Error {
        match e {
            guest::Error::Read { path, source } => Error::Read { path, source },
            guest::Error::NotElf { path, why } => Error::BadElf { path, why },
            guest::Error::NoSymbol { name, path } => Error::NoSymbol { name, path },
            guest::Error::Memory { what, addr, len } => Error::GuestMemory { what, addr, len },
            e @ (guest::Error::Layout { .. } | guest::Error::Dwarf(_)) => {
                Error::GuestLayout(e.to_string())
            }
            e @ guest::Error::AmbiguousSymbol { .. } => Error::AmbiguousSymbol(e.to_string()),
        }
    }
}
