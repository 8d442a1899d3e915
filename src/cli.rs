//! The command line: every subcommand and global flag, the version line, the exit codes
//! and the examples `--help` shows. `completions` and `man` generate from this same
//! definition, so they can never disagree with it.

use std::sync::LazyLock;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;

/// `rewind --version`: the program's version and the trace formats it writes and reads.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (trace format {}, reads {}..={})",
        env!("CARGO_PKG_VERSION"),
        trace::FORMAT_VERSION,
        trace::OLDEST_READABLE_VERSION,
        trace::FORMAT_VERSION
    )
});

/// The command line as clap builds it, with [`VERSION`]: what main parses and what
/// completions and man pages are generated from.
pub fn command() -> clap::Command {
    Cli::command().version(VERSION.as_str())
}

/// Exit status when rewind itself fails (the message says why).
pub const EXIT_ERROR: u8 = 1;

const EXAMPLES: &str = "\
Examples:
  rewind demo                                   the workbench end to end on umk's ABBA deadlock
  rewind record -- ./prog arg                   record into ~/.local/share/rewind/prog-N
  rewind record --chaos 1 --until crash -- umk …  re-record with chaos until it crashes
  rewind ls                                     the recordings, newest last
  rewind info                                   what the latest recording ran and how it ended
  rewind replay                                 replay the latest recording exactly
  rewind replay -i TRACE                        timeline prompt: goto e120+t4567, rs, rc, where
  rewind gdb TRACE                              gdb with reverse execution, guest tasks as threads
  rewind ps TRACE                               the recording's processes (pids for -p)
  rewind replay TRACE | rewind decode TRACE     the guest's reports with file:line for each address
  rewind gdb -p 4242 TRACE                      gdb on one process of a recording that forked
  rewind analyze report TRACE -o report/        lock order, use-after-free, provenance, timeline
  rewind pack TRACE                             one file holding the trace and its binary

Exit status:
  0    success (replay, record: the program exited 0)
  1    rewind failed; the message says why and, when known, what to do
  2    a usage error; or `replay` of a recording that has no ending (stopped, cut short)
  N    record, replay: the program's own exit status, or 128 + the signal that killed it
  124  record: the program ran past --timeout and was stopped (the trace is kept)

Environment:
  REWIND_BACKTRACE=1   print a backtrace with an error (as -v does); RUST_BACKTRACE is ignored
  REWIND_UMK=PATH      the umk binary `demo` and `corpus` run (default: build it)
  XDG_DATA_HOME        traces go to $XDG_DATA_HOME/rewind (default ~/.local/share/rewind)";

#[derive(Parser)]
#[command(
    name = "rewind",
    about = "Deterministic record/replay for kernels that run as Linux processes",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// More detail: summaries on stderr, and a backtrace with any error.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The workbench end to end: record umk's ABBA deadlock with chaos until it happens,
    /// pack it, replay it, and write the lock-order diagram and report.
    Demo(cmd::demo::DemoArgs),
    /// Record a run of PROGRAM under ptrace into a trace directory.
    Record(cmd::record::RecordArgs),
    /// List the recordings in the trace directory (program, date, events, size, state).
    Ls(cmd::traces::LsArgs),
    /// Delete recordings from the trace directory.
    Rm(cmd::traces::RmArgs),
    /// What a recording ran and how it ended (program, argv, binaries, CPU, chaos seed).
    Info(cmd::traces::InfoArgs),
    /// The processes of a recording: pid, parent, exit, threads, events, program.
    Ps(cmd::traces::PsArgs),
    /// Print a trace's events one a line (`--json` for tools).
    Dump(cmd::dump::DumpArgs),
    /// Pack a trace and its guest binary into one self-contained file (or `--unpack` it).
    Pack(cmd::pack::PackArgs),
    /// Re-execute a recording exactly (console output as recorded; `-i` for the timeline).
    Replay(cmd::replay::ReplayArgs),
    /// Debug a recording with gdb: reverse execution, guest tasks as threads.
    Gdb(cmd::gdb::GdbArgs),
    /// Symbolize the code addresses in a guest's own reports (a hung-task report, an
    /// oops, a lockdep splat), as Linux's decode_stacktrace.sh does.
    Decode(cmd::decode::DecodeArgs),
    /// Analyze a recording on a replay: lock order, use-after-free, provenance, timeline.
    Analyze(cmd::analyze::AnalyzeArgs),
    /// The shipped recordings of umk's bug scenarios: list them, or re-record one.
    Corpus(cmd::corpus::CorpusArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::CompletionsArgs),
    /// Write man pages for rewind and every subcommand into a directory.
    Man(cmd::completions::ManArgs),
}
