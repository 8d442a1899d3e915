//! The `rewind` command: argument parsing and dispatch only. Each subcommand lives in
//! its own module under `cmd/` and calls into the library crates; `errors` prints what
//! fails.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod errors;
mod progress;
mod scenario;
mod signals;

use std::process::ExitCode;

use clap::FromArgMatches;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let backtrace = cli.verbose || errors::backtrace_requested_by_env();
    if backtrace {
        errors::capture_backtraces();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", errors::render(&e, backtrace));
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    signals::install()?;
    let verbose = cli.verbose;
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Record(args) => cmd::record::run(args, verbose),
        Command::Dump(args) => cmd::dump::run(args),
        Command::Replay(args) => cmd::replay::run(args, verbose),
        Command::Gdb(args) => cmd::gdb::run(args),
        Command::Analyze(args) => cmd::analyze::run(args, verbose),
        Command::Pack(args) => cmd::pack::run(args),
        Command::Corpus(args) => cmd::corpus::run(args),
        Command::Ls(args) => cmd::traces::ls(args),
        Command::Rm(args) => cmd::traces::rm(args),
        Command::Info(args) => cmd::traces::info(args),
        Command::Ps(args) => cmd::traces::ps(args),
        Command::Decode(args) => cmd::decode::run(args),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man(args) => cmd::completions::man(args),
    }
}
