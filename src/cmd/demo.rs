//! `rewind demo`: the workbench end to end on umk's ABBA deadlock — make a disk image,
//! record the flaky bug with chaos until it happens, pack the trace, replay it and check
//! it ends exactly as recorded, then analyse it and write the lock-order diagram and the
//! report into a directory named at the end.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;
use recorder::until::{self, Goal, UntilOptions};
use replayer::{Console, ReplayOptions};

#[derive(Args)]
pub struct DemoArgs {
    /// Directory for everything the demo makes (default: a new directory under /tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Most recording attempts before giving up on reproducing the deadlock.
    #[arg(long, default_value_t = 20)]
    pub max_runs: u32,
}

/// The scenario: two tasks taking two mutexes in opposite orders (kernel/src/bugs/abba.rs),
/// at natural timing — whether it deadlocks depends on where the timer lands.
const SCRIPT: &str = "ls /\nbug abba\nhalt\n";

pub fn run(args: DemoArgs) -> Result<()> {
    let umk = super::umk::locate()?;
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rewind-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let image = make_image(&dir)?;
    let script = dir.join("init.sh");
    std::fs::write(&script, SCRIPT)?;

    println!("1. record: umk running `bug abba`, with chaos, until it deadlocks");
    let trace = dir.join("abba.trace");
    let mut opts = recorder::RecordOptions::new(
        umk.as_os_str(),
        [
            "mem=32M".to_string(),
            format!("ubd0={}", image.display()),
            format!("init={}", script.display()),
        ],
    );
    opts.out_dir = Some(trace.clone());
    let console = dir.join("record-console.txt");
    opts.stdout = Some(File::create(&console)?.into());
    opts.timeout = Some(std::time::Duration::from_secs(60));
    let until_opts = UntilOptions {
        goal: Goal::Crash,
        first_seed: 1,
        max_runs: args.max_runs,
    };
    let found = until::record_until(&opts, until_opts, |run, rec| {
        println!(
            "   run {} (seed {}): {} — {} events",
            run.run, run.seed, run.outcome, rec.stats.events
        );
    })?;
    let kept = found.last();
    println!(
        "   reproduced on run {} of {} (seed {}): {}",
        kept.run, args.max_runs, kept.seed, kept.outcome
    );

    println!("2. pack: trace + guest binary in one file");
    let packed = dir.join("abba.rwpack");
    let stats = trace::pack::write(&trace, &umk, &packed)?;
    println!("   {} ({} bytes)", packed.display(), stats.bytes);

    println!("3. replay: same ending, same instruction");
    let recorded = found.recording.exit;
    for n in 1..=3 {
        let outcome = replayer::replay(
            &trace,
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
            describe(recorded),
            regs.rip,
            outcome.elapsed.as_secs_f64()
        );
    }

    println!("4. analyse: lock order (lockdep), deadlock verdicts, timeline");
    let analysis = analyzer::report::Analysis::run(
        &trace,
        analyzer::report::AnalyzeOptions {
            binary: None,
            watch: false,
            progress: None,
        },
    )?;
    let report = dir.join("report");
    std::fs::create_dir_all(&report)?;
    analyzer::report::write_dir(&analysis, &report)?;
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

fn describe(e: trace::ExitStatus) -> String {
    match e {
        trace::ExitStatus::Exited(code) => format!("exited {code}"),
        trace::ExitStatus::Signaled { signo, .. } => format!("killed by signal {signo}"),
    }
}

/// A fresh ext2 image with a file or two, made by mke2fs from a directory.
fn make_image(dir: &Path) -> Result<PathBuf> {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc"))
        .with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(
        root.join("etc/motd"),
        "Welcome to umk, recorded by Rewind.\n",
    )?;
    let image = dir.join("disk.img");
    let _ = std::fs::remove_file(&image);
    let status = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&root)
        .arg(&image)
        .arg("16M")
        .status()
        .context("running mke2fs (install e2fsprogs)")?;
    if !status.success() {
        bail!("mke2fs failed ({status})");
    }
    Ok(image)
}
