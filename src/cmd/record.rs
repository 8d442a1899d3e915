//! `rewind record [-o DIR] [--chaos SEED] [--until GOAL [--max-runs N]] [--timeout SECS]
//! -- PROGRAM ARGS…`: record a run; exits with the program's status (or 128 + signal).
//! With `--until`, re-records with successive chaos seeds until the run ends as asked.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use recorder::until::{self, Goal, UntilOptions};

/// Default `--timeout` under `--until`.
const UNTIL_TIMEOUT_SECS: u64 = 60;

/// Arguments of `rewind record`.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// Trace directory to create (default: a new PROGRAM-N under $XDG_DATA_HOME/rewind,
    /// or ~/.local/share/rewind, with a `latest` link).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Let rdtsc run untrapped (the trace is then not replayable if the program reads the TSC).
    #[arg(long)]
    pub no_tsc_trap: bool,
    /// Move where tasks switch (threads, processes), and interrupts and preemptions to
    /// ticks (a guest with the execution-point ABI, such as umk), as this seed chooses;
    /// the trace replays like any other.
    #[arg(long, value_name = "SEED")]
    pub chaos: Option<u64>,
    /// Under chaos: mean distance in ticks between added timer interrupts (0: none).
    #[arg(long, value_name = "TICKS", default_value_t = recorder::chaos::DEFAULT_MEAN_GAP)]
    pub chaos_gap: u64,
    /// Under chaos: most ticks a real interrupt is delayed.
    #[arg(long, value_name = "TICKS", default_value_t = recorder::chaos::DEFAULT_MAX_DELAY)]
    pub chaos_delay: u64,
    /// Re-record with seeds SEED, SEED+1, … (default seed 1) until the program crashes
    /// (dies by a signal), hangs (runs past --timeout) or exits non-zero; keep that trace.
    #[arg(long, value_name = "crash|hang|exit-nonzero")]
    pub until: Option<Goal>,
    /// With --until: give up after this many runs.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "until")]
    pub max_runs: u32,
    /// Stop the program after this many seconds and close the trace as aborted-by-timeout
    /// (default: none, or 60 with --until).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Record every system call with a ptrace stop: do not preload the syscall buffer
    /// (librewind_preload.so), which makes a dynamically linked program's reads and
    /// writes of files, clock reads and getpid-like calls without one.
    #[arg(long)]
    pub no_syscall_buffer: bool,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM ARGS"
    )]
    pub command: Vec<OsString>,
}

/// The one line `record` prints when it is done; `-v` adds how CPUID was handled.
fn summary(rec: &recorder::Recording, verbose: bool) -> String {
    format!(
        "rewind: recorded {} events ({} bytes) in {:.3} s; program {}; trace {}{}",
        rec.stats.events,
        rec.stats.total_bytes(),
        rec.elapsed.as_secs_f64(),
        rec.exit,
        rec.dir.display(),
        match (verbose, rec.cpuid_faulting) {
            (false, _) => "",
            (true, true) => " (cpuid trapped)",
            (true, false) => " (no CPUID faulting on this host: cpuid ran natively)",
        }
    )
}

/// Runs `rewind record`.
pub fn run(args: RecordArgs, verbose: bool) -> anyhow::Result<()> {
    let mut command = args.command.into_iter();
    let program = command.next().context("no program given")?;
    let mut opts = recorder::RecordOptions::new(program, command);
    opts.out_dir = args.output;
    opts.trap_tsc = !args.no_tsc_trap;
    if !args.no_syscall_buffer {
        // Without the library a recording is slower, never wrong: say so and go on (a
        // statically linked program, umk, never uses it anyway).
        match super::preload::locate() {
            Ok(lib) => opts.syscall_buffer = Some(lib),
            Err(e) => eprintln!("rewind: recording without the syscall buffer: {e:#}"),
        }
    }
    let chaos_seed = args.chaos.or(args.until.map(|_| 1));
    opts.chaos = chaos_seed.map(|seed| recorder::ChaosOptions {
        seed,
        max_delay: args.chaos_delay,
        mean_gap: args.chaos_gap,
    });
    opts.timeout = args
        .timeout
        .or(args.until.map(|_| UNTIL_TIMEOUT_SECS))
        .map(Duration::from_secs);
    if let (Some(goal), Some(seed)) = (args.until, chaos_seed) {
        return run_until(&opts, goal, seed, args.max_runs);
    }
    let rec = recorder::record(&opts)?;
    if rec.timed_out {
        eprintln!(
            "rewind: the program did not finish within {} s; stopped it, trace closed as \
             aborted-by-timeout in {}",
            opts.timeout.map_or(0, |t| t.as_secs()),
            rec.dir.display()
        );
        std::process::exit(124);
    }
    eprintln!("{}", summary(&rec, verbose));
    std::process::exit(rec.exit.code());
}

fn run_until(
    opts: &recorder::RecordOptions,
    goal: Goal,
    first_seed: u64,
    max_runs: u32,
) -> anyhow::Result<()> {
    let until = UntilOptions {
        goal,
        first_seed,
        max_runs,
    };
    let found = until::record_until(opts, until, |run, _| {
        eprintln!(
            "rewind: run {} (seed {}): {}",
            run.run, run.seed, run.outcome
        );
    })?;
    let last = found.last();
    eprintln!(
        "rewind: bug reproduced on run {} (seed {}): {}; trace at {}",
        last.run,
        last.seed,
        last.outcome,
        found.recording.dir.display()
    );
    Ok(())
}
