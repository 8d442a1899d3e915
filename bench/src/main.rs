//! `rewind-bench [--quick] [--json FILE] [--only SECTION]…`: builds `rewind` and `umk`,
//! runs the benchmark sections, prints the table on stdout and writes the JSON document.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Parser;
use rewind_bench::suite::{self, Section};

/// Rewind against native execution, strace and gdb `record full`: a table on stdout and
/// a JSON document.
#[derive(Parser, Debug)]
#[command(name = "rewind-bench", version)]
struct Args {
    /// Smaller workloads, fewer runs, shorter recordings (2/5/10 s scaling).
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON (default: bench.json in the cargo target directory).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only this section (repeatable).
    #[arg(long, value_enum, value_name = "SECTION")]
    only: Vec<Section>,
    /// Instead of benchmarking: run PROGRAM ARGS under the ptrace floor tracer (two stops
    /// per system call, nothing recorded) and exit with its status.
    #[arg(long, num_args = 1.., value_name = "PROGRAM ARGS", allow_hyphen_values = true)]
    floor: Option<Vec<std::ffi::OsString>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(mut command) = args.floor {
        let program = PathBuf::from(command.remove(0));
        std::process::exit(rewind_bench::floor::run(program, command)?);
    }
    suite::run(&suite::Options {
        quick: args.quick,
        json: args.json,
        only: args.only,
    })
}
