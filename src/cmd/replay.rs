//! `rewind replay [TRACE] [--pace] [-i [-p PID]]`: re-execute a recording, printing the
//! guest's console output as recorded, and end as it ended (same status, or the same fatal
//! signal); `-i` opens the interactive timeline prompt instead, on one process with `-p`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `rewind replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The trace directory or packed trace (default: the latest recording).
    pub trace: Option<PathBuf>,
    /// Replay output at the recorded pace (otherwise idle time is skipped).
    #[arg(long)]
    pub pace: bool,
    /// Interactive timeline: goto, step, reverse-step, breakpoints, watchpoints, …
    #[arg(short, long)]
    pub interactive: bool,
    /// With -i: debug the process with this pid (or the process of this thread), as
    /// `rewind ps` lists them, from its exec (or its start); the others run unseen.
    #[arg(short, long, value_name = "PID", requires = "interactive")]
    pub process: Option<u32>,
}

/// Runs `rewind replay`.
pub fn run(args: ReplayArgs, verbose: bool) -> anyhow::Result<()> {
    let dir = super::trace_path(args.trace.as_deref())?;
    if args.interactive {
        return crate::cmd::interactive::run(&dir, args.process);
    }
    let opts = replayer::ReplayOptions {
        console: replayer::Console::Stdout,
        pace: args.pace,
    };
    // With the console on the terminal, its output is the progress; a bar drawn over it
    // would garble both. Redirected, a long replay shows a bar on stderr.
    let bar = if std::io::stdout().is_terminal() {
        None
    } else {
        crate::progress::bar("replaying")
    };
    let out = replayer::replay_observed(&dir, opts, bar)
        .with_context(|| format!("replaying {}", dir.display()))?;
    if verbose {
        eprintln!(
            "rewind: replayed {} events in {:.3} s; {}",
            out.events,
            out.elapsed.as_secs_f64(),
            match (&out.exit, &out.aborted) {
                (Some(e), _) => format!("{e:?}"),
                (None, Some(r)) => format!("recording aborted: {r}"),
                (None, None) => "recording incomplete".into(),
            }
        );
    }
    match out.exit {
        Some(trace::ExitStatus::Signaled { signo, .. }) => {
            match out.last_signal {
                Some((_, regs)) => eprintln!(
                    "rewind: replayed program killed by signal {signo} at rip {:#x}",
                    regs.rip
                ),
                // Only a SIGKILL from outside ends a replay without a delivered signal.
                None => eprintln!(
                    "rewind: replayed program killed by signal {signo} from outside, as \
                     recorded; the replay kills it at e{}, after its last recorded event",
                    out.events.saturating_sub(1)
                ),
            }
            std::process::exit(128 + signo)
        }
        Some(e) => std::process::exit(e.code()),
        None => {
            if let Some(r) = out.aborted {
                eprintln!("rewind: end of recording (the recorder stopped it: {r})");
            }
            std::process::exit(2)
        }
    }
}
