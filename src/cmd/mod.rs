//! One module per `rewind` subcommand.

pub mod analyze;
pub mod completions;
pub mod corpus;
pub mod decode;
pub mod demo;
pub mod dump;
pub mod gdb;
pub mod interactive;
pub mod pack;
pub mod preload;
pub mod record;
pub mod replay;
pub mod traces;
pub mod umk;

use std::path::{Path, PathBuf};

/// The trace a command means: `given`, or the latest recording; an error that says what to
/// do when there is none.
pub fn trace_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = recorder::tracedir::resolve(given);
    if path.exists() {
        return Ok(path);
    }
    match given {
        Some(p) => anyhow::bail!(
            "{}: no such trace or pack (`rewind ls` lists the recordings)",
            p.display()
        ),
        None => anyhow::bail!(
            "no latest recording ({} does not exist): make one with `rewind record -- PROGRAM`, \
             or name a trace",
            path.display()
        ),
    }
}
