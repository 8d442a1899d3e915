//! `rewind record [-o DIR] -- PROGRAM ARGS…`: record a run; exits with the program's
//! status (or 128 + signal).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context;

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
    /// Print where the trace went and its size on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM ARGS"
    )]
    pub command: Vec<OsString>,
}

/// Runs `rewind record`.
pub fn run(args: RecordArgs) -> anyhow::Result<()> {
    let mut command = args.command.into_iter();
    let program = command.next().context("no program given")?;
    let mut opts = recorder::RecordOptions::new(program, command);
    opts.out_dir = args.output;
    opts.trap_tsc = !args.no_tsc_trap;
    let rec = recorder::record(&opts)?;
    if args.verbose {
        eprintln!(
            "rewind: trace {} — {} events, {} bytes, {:.3} s{}",
            rec.dir.display(),
            rec.stats.events,
            rec.stats.total_bytes(),
            rec.elapsed.as_secs_f64(),
            if rec.cpuid_faulting {
                ""
            } else {
                " (no CPUID faulting on this host: cpuid ran natively)"
            }
        );
    }
    std::process::exit(rec.exit.code());
}
