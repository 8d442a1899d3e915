//! `rewind corpus list|record`: the shipped recordings of umk's bug scenarios. `record`
//! re-makes one from its scenario.toml — builds umk (profile `corpus`), makes the disk
//! image, records with chaos `--until` the bug happens, packs, checks the pack replays to
//! the same ending, and writes `recorded.toml` — only when asked: a recording is tied to
//! the exact binary, so nothing regenerates one silently. `list` says which recordings
//! were made from other kernel sources than the tree's.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use recorder::until;
use replayer::{Console, ReplayOptions};

use crate::scenario::{self, Recorded, Scenario, Shipped, RECORDING, SCENARIOS};

#[derive(Args)]
pub struct CorpusArgs {
    #[command(subcommand)]
    command: CorpusCommand,
}

#[derive(Subcommand)]
enum CorpusCommand {
    /// Each scenario, its shipped recording, and whether umk's sources changed since.
    List,
    /// Re-record scenarios from their scenario.toml into corpus/NAME/ (or --out DIR/NAME/).
    Record(RecordArgs),
}

#[derive(Args)]
struct RecordArgs {
    /// Scenario names (see `rewind corpus list`).
    #[arg(required_unless_present = "all")]
    names: Vec<String>,
    /// Every scenario.
    #[arg(long, conflicts_with = "names")]
    all: bool,
    /// Override the scenario's --max-runs.
    #[arg(long, value_name = "N")]
    max_runs: Option<u32>,
    /// Write DIR/NAME/recording.rwpack and recorded.toml instead of the source tree's
    /// corpus/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: CorpusArgs) -> Result<()> {
    match args.command {
        CorpusCommand::List => list(),
        CorpusCommand::Record(r) => {
            let names: Vec<String> = if r.all {
                SCENARIOS.iter().map(|(n, _)| n.to_string()).collect()
            } else {
                r.names
            };
            // Refuse a bad name before any build or recording.
            let scenarios = names
                .iter()
                .map(|n| Scenario::named(n).map(|s| (n.as_str(), s)))
                .collect::<Result<Vec<_>>>()?;
            let out_root = match (&r.out, super::umk::workspace()) {
                (Some(o), _) => o.clone(),
                (None, Some(w)) => w.join("corpus"),
                (None, None) => bail!("no source tree here to write corpus/ into: give --out DIR"),
            };
            let umk = super::umk::locate_profile("corpus")?;
            for (name, s) in scenarios {
                let made = record(name, &s, &umk, &out_root.join(name), r.max_runs)?;
                println!(
                    "{name}: seed {} after {} run(s), {}, {} events, {} bytes packed",
                    made.seed, made.runs, made.ending, made.events, made.pack_bytes
                );
            }
            Ok(())
        }
    }
}

fn list() -> Result<()> {
    let workspace = super::umk::workspace()
        .context("`rewind corpus list` reads the source tree's corpus/, which is not here")?;
    let sources = scenario::kernel_sources_sha256(workspace)?;
    for (name, _) in SCENARIOS {
        let s = Scenario::named(name)?;
        println!("{name:<9} {} ({})", s.summary, s.source);
        let dir = workspace.join("corpus").join(name);
        let shipped = Shipped::all(&dir);
        if shipped.is_empty() {
            println!("  {name}: not recorded; `rewind corpus record {name}` makes it");
        }
        for pack in shipped {
            let state = match Recorded::read(&pack.recorded) {
                Err(e) => format!("no recorded facts ({e:#})"),
                Ok(r) if r.kernel_sources_sha256 != sources => format!(
                    "STALE: recorded from other kernel sources; re-record with `rewind corpus \
                     record {name}` ({} bytes, seed {})",
                    r.pack_bytes, r.seed
                ),
                Ok(r) => format!(
                    "up to date ({} bytes, seed {} after {} run(s), {})",
                    r.pack_bytes, r.seed, r.runs, r.ending
                ),
            };
            let here = match pack.mismatch() {
                Ok(why) if why.is_empty() => "replays on this host".to_string(),
                Ok(why) => format!("not on this host: {}", why.join("; ")),
                Err(e) => format!("unreadable: {e:#}"),
            };
            println!("  {name}/{}: {state}; {here}", pack.name());
        }
    }
    Ok(())
}

/// Where a new recording of a scenario goes in `dir`: over the shipped one this host
/// replays (the new one replaces it), else `recording.rwpack` when there is none, else
/// beside the others under its host kind — so re-recording on one kind of machine never
/// drops the recording another kind of machine needs.
fn destination(dir: &Path, pack: &Path) -> Result<Shipped> {
    let shipped = Shipped::all(dir);
    for s in &shipped {
        if s.mismatch().is_ok_and(|why| why.is_empty()) {
            return Ok(s.clone());
        }
    }
    if shipped.is_empty() {
        return Ok(Shipped::at(dir, None));
    }
    let reader = trace::open(pack).with_context(|| format!("reading {}", pack.display()))?;
    Ok(Shipped::at(
        dir,
        Some(&replayer::host_kind(reader.header())),
    ))
}

/// Records one scenario into `dir` and returns what it wrote into recorded.toml.
pub fn record(
    name: &str,
    s: &Scenario,
    umk: &Path,
    dir: &Path,
    max_runs: Option<u32>,
) -> Result<Recorded> {
    let work = std::env::temp_dir().join(format!("rewind-corpus-{name}-{}", std::process::id()));
    let result = record_in(name, s, umk, dir, max_runs, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn record_in(
    name: &str,
    s: &Scenario,
    umk: &Path,
    dir: &Path,
    max_runs: Option<u32>,
    work: &Path,
) -> Result<Recorded> {
    let (found, trace) = s.record_until(umk, work, max_runs, |run, rec| {
        eprintln!(
            "{name}: run {} (seed {}): {} — {} events",
            run.run, run.seed, run.outcome, rec.stats.events
        );
    })?;
    let kept = found.last();

    // Packed and checked in the scratch directory: the shipped files change only once
    // the new recording has passed.
    let pack = work.join(RECORDING);
    let stats = trace::pack::write(&trace, umk, &pack)?;
    // The pack must replay as recorded, from the pack alone, and show the bug.
    let replayed = replayer::replay(
        &pack,
        ReplayOptions {
            console: Console::Buffer(Vec::new()),
            pace: false,
        },
    )?;
    if let Err(e) = check_expectations(s, &replayed.console, &pack) {
        return Err(e.context(format!(
            "{name}: run {} (seed {}) crashed, but not as the scenario expects; nothing \
             written (runs: {})",
            kept.run,
            kept.seed,
            until::tally(&found.runs)
        )));
    }
    let ending = describe(&replayed).context("the replay of the pack ended without an exit")?;
    if replayed.exit != Some(found.recording.exit) {
        bail!(
            "{name}: the pack replays to {ending}, the recording ended {:?}; nothing written",
            found.recording.exit
        );
    }
    let workspace = super::umk::workspace().context("the kernel sources are not here")?;
    let recorded = Recorded {
        seed: kept.seed,
        runs: kept.run,
        tally: until::tally(&found.runs),
        ending,
        events: replayed.events,
        pack_bytes: stats.bytes,
        umk_sha256: trace::BlobHash::of(&std::fs::read(umk)?).hex(),
        kernel_sources_sha256: scenario::kernel_sources_sha256(workspace)?,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let to = destination(dir, &pack)?;
    // Copied under a temporary name and renamed: a shipped pack is never half written.
    let staged = dir.join(format!("{}.new", to.name()));
    std::fs::copy(&pack, &staged).with_context(|| format!("writing {}", staged.display()))?;
    std::fs::rename(&staged, &to.pack)
        .with_context(|| format!("renaming {} to {}", staged.display(), to.pack.display()))?;
    recorded.write(&to.recorded, &to.name())?;
    eprintln!(
        "{name}: wrote {} and {}",
        to.pack.display(),
        to.recorded.display()
    );
    Ok(recorded)
}

/// The replayed console and the analyzer's report say what scenario.toml expects.
fn check_expectations(s: &Scenario, console: &[u8], pack: &Path) -> Result<()> {
    let console = String::from_utf8_lossy(console);
    if let Some(l) = s
        .expect
        .console
        .iter()
        .find(|l| !console.contains(l.as_str()))
    {
        bail!("the replayed console lacks {l:?}");
    }
    let analysis = analyzer::report::Analysis::run(
        pack,
        analyzer::report::AnalyzeOptions {
            binary: None,
            watch: false,
            progress: None,
        },
    )?;
    let report = match s.expect.analyze.as_str() {
        "locks" => analysis.locks_text(),
        "uaf" => analysis.uaf_text(),
        "provenance" => analysis.provenance_text(None),
        other => bail!("scenario.toml: unknown analysis {other:?} (locks, uaf, provenance)"),
    };
    if let Some(l) = s
        .expect
        .report
        .iter()
        .find(|l| !report.contains(l.as_str()))
    {
        bail!(
            "`rewind analyze {}` lacks {l:?}:\n{report}",
            s.expect.analyze
        );
    }
    if let Some(l) = s
        .expect
        .report_lacks
        .iter()
        .find(|l| report.contains(l.as_str()))
    {
        bail!(
            "`rewind analyze {}` shows {l:?}:\n{report}",
            s.expect.analyze
        );
    }
    Ok(())
}

/// How a replay ended, in `rewind replay`'s words.
pub fn describe(o: &replayer::Outcome) -> Option<String> {
    match (o.exit?, o.last_signal) {
        (trace::ExitStatus::Signaled { signo, .. }, Some((_, regs))) => {
            Some(format!("killed by signal {signo} at rip {:#x}", regs.rip))
        }
        (trace::ExitStatus::Signaled { signo, .. }, None) => {
            Some(format!("killed by signal {signo}"))
        }
        (trace::ExitStatus::Exited(c), _) => Some(format!("exited {c}")),
    }
}
