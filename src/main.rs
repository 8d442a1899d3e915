//! The `rewind` command: argument parsing and dispatch only. Each subcommand lives in
//! its own module under `cmd/` and calls into the library crates.

#![forbid(unsafe_code)]

mod cmd;
mod scenario;
mod signals;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rewind",
    version,
    about = "Deterministic record/replay for kernels that run as Linux processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The workbench end to end: record umk's ABBA deadlock with chaos until it happens,
    /// pack it, replay it, and write the lock-order diagram and report.
    Demo(cmd::demo::DemoArgs),
    /// Record a run of PROGRAM under ptrace into a trace directory.
    Record(cmd::record::RecordArgs),
    /// Print a trace's events one a line (`--json` for tools).
    Dump(cmd::dump::DumpArgs),
    /// Pack a trace and its guest binary into one self-contained file (or `--unpack` it).
    Pack(cmd::pack::PackArgs),
    /// Re-execute a recording exactly (console output as recorded; `-i` for the timeline).
    Replay(cmd::replay::ReplayArgs),
    /// Debug a recording with gdb: reverse execution, guest tasks as threads.
    Gdb(cmd::gdb::GdbArgs),
    /// Analyze a recording on a replay: lock order, use-after-free, provenance, timeline.
    Analyze(cmd::analyze::AnalyzeArgs),
    /// The shipped recordings of umk's bug scenarios: list them, or re-record one.
    Corpus(cmd::corpus::CorpusArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    signals::install()?;
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Record(args) => cmd::record::run(args),
        Command::Dump(args) => cmd::dump::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Gdb(args) => cmd::gdb::run(args),
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Pack(args) => cmd::pack::run(args),
        Command::Corpus(args) => cmd::corpus::run(args),
    }
}
