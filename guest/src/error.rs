//! Errors of reading a guest: its binary, or a structure in its memory.

use std::path::PathBuf;

/// A guest that cannot be read, saying what and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binary cannot be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The guest binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The binary is not an ELF file this crate can parse.
    #[error("parsing {} as ELF: {why}", path.display())]
    NotElf {
        /// The guest binary.
        path: PathBuf,
        /// The parser's reason.
        why: String,
    },
    /// The binary lacks a symbol a reader needs.
    #[error("symbol `{name}` not found in {}", path.display())]
    NoSymbol {
        /// The symbol.
        name: String,
        /// The guest binary.
        path: PathBuf,
    },
    /// The name is several symbols (a generic function's instantiations demangle alike):
    /// picking one would be a guess.
    #[error(
        "symbol `{name}` names {count} functions in {} (a generic's instantiations); use \
         the mangled name or an address",
        path.display()
    )]
    AmbiguousSymbol {
        /// The symbol.
        name: String,
        /// How many distinct addresses it has.
        count: usize,
        /// The guest binary.
        path: PathBuf,
    },
    /// Guest memory a reader needs is unreadable (or shorter than the structure).
    #[error("guest memory: {what} at {addr:#x} ({len} bytes) is unreadable")]
    Memory {
        /// What was being read.
        what: &'static str,
        /// Its address.
        addr: u64,
        /// Its length.
        len: usize,
    },
    /// The binary's DWARF lacks a structure or member a reader needs, or is malformed.
    #[error("DWARF: {0}")]
    Dwarf(String),
    /// A guest structure is not the one this reader knows, or holds an impossible value.
    #[error("{guest}: {what}")]
    Layout {
        /// The guest kernel.
        guest: &'static str,
        /// What is wrong with it.
        what: String,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
