//! `rewind demo`: the workbench end to end on the corpus's ABBA deadlock
//! (corpus/abba/scenario.toml) — make its disk image, record the flaky bug with chaos
//! until it happens, pack the trace, replay the pack and check it ends exactly as
//! recorded, then analyse it and write the lock-order diagram and the report into a
//! directory named at the end.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use replayer::{Console, ReplayOptions};

use crate::scenario::Scenario;

#[derive(Args)]
pub struct DemoArgs {
    /// Directory for everything the demo makes (default: a new directory under /tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Most recording attempts before giving up on reproducing the deadlock (default: the
    /// scenario's).
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u32>,
    #[command(flatten)]
    pub draw: super::analyze::Draw,
}

pub fn run(args: DemoArgs) -> Result<()> {
    // Before anything is built or recorded: the one host tool the demo needs.
    crate::scenario::mke2fs()?;
    let umk = super::umk::locate()?;
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rewind-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let scenario = Scenario::named("abba")?;

    println!("1. record: umk running `bug abba`, with chaos, until it deadlocks");
    let until_opts = scenario.until(args.max_runs)?;
    let (found, trace) = scenario.record_until(&umk, &dir, args.max_runs, |run, rec| {
        println!(
            "   run {} (seed {}): {} — {} events",
            run.run, run.seed, run.outcome, rec.stats.events
        );
    })?;
    let kept = found.last();
    println!(
        "   reproduced on run {} of {} (seed {}): {}",
        kept.run, until_opts.max_runs, kept.seed, kept.outcome
    );

    println!("2. pack: trace + guest binary in one file");
    let packed = dir.join("abba.rwpack");
    let stats = trace::pack::write(&trace, &umk, &packed)?;
    println!("   {} ({} bytes)", packed.display(), stats.bytes);

    println!("3. replay the pack: same ending, same instruction");
    let recorded = found.recording.exit;
    for n in 1..=3 {
        let outcome = replayer::replay(
            &packed,
            ReplayOptions {
                console: Console::Discard,
                pace: false,
            },
        )?;
        let (signo, regs) = outcome
            .last_signal
            .context("the replay delivered no signal")?;
        if outcome.exit != Some(recorded) {
            bail!(
                "replay {n} ended with {:?}, the recording with {recorded:?}",
                outcome.exit
            );
        }
        println!(
            "   replay {n}: {}, signal {signo} delivered at rip {:#x}, as recorded ({:.2} s)",
            recorded,
            regs.rip,
            outcome.elapsed.as_secs_f64()
        );
    }

    println!("4. analyse: lock order (lockdep), deadlock verdicts, timeline");
    let analysis = analyzer::report::Analysis::run(
        &packed,
        analyzer::report::AnalyzeOptions {
            binary: None,
            watch: false,
            progress: None,
        },
    )?;
    let report = dir.join("report");
    std::fs::create_dir_all(&report)?;
    analyzer::report::write_dir(&analysis, &report, args.draw.renderer())?;
    let text = analysis.locks_text();
    for line in text.lines().filter(|l| {
        ["WARNING:", "DEADLOCK:", "No potential", "No actual"]
            .iter()
            .any(|p| l.starts_with(p))
    }) {
        println!("   {line}");
    }
    println!();
    println!("lock-order diagram: {}", report.join("locks.svg").display());
    println!(
        "full report:        {}",
        report.join("index.html").display()
    );
    println!("demo directory:     {}", dir.display());
    Ok(())
}
