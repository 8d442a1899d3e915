//! `rewind decode [TRACE] [FILE]`: a guest's own reports with their code addresses
//! symbolized against the recording's binary, as Linux's scripts/decode_stacktrace.sh
//! does: `rewind replay | rewind decode`, or a saved console log.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `rewind decode`.
#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// The trace directory or packed trace whose binary the addresses are in (default:
    /// the latest recording).
    pub trace: Option<PathBuf>,
    /// The log to decode (default: standard input).
    pub file: Option<PathBuf>,
}

/// Runs `rewind decode`.
pub fn run(args: DecodeArgs) -> anyhow::Result<()> {
    let dir = super::trace_path(args.trace.as_deref())?;
    let data = replayer::open_trace(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let bin = data
        .load_binary()
        .with_context(|| format!("reading the symbols of {}", data.binary().display()))?;
    let mut text = Vec::new();
    match &args.file {
        Some(f) => {
            text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut text)
                .context("reading standard input")?;
        }
    }
    let decoded = guest::decode::decode(&bin, &String::from_utf8_lossy(&text));
    std::io::stdout().write_all(decoded.as_bytes())?;
    Ok(())
}
