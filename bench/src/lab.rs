//! The bench's workbench: builds `rewind` and `umk` from this workspace, finds the host
//! tools (strace, taskset, gdb, cc, mke2fs), holds the scratch directory, the run counts and
//! budgets that `--quick` shrinks, umk's measured compute rate, and the shared long
//! recordings (the seek and scaling sections use the same ones).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::exec;
use crate::workload::{self, Workload};

/// Generous deadline for one run of anything (a 300 s recording included).
pub const LONG: Duration = Duration::from_secs(1800);

/// How much work each section does.
#[derive(Clone, Debug)]
pub struct Plan {
    pub quick: bool,
    /// Runs behind each median.
    pub runs: usize,
    /// Wall-clock budget of one gdb `record full` run before it is interrupted.
    pub record_full_budget: Duration,
    /// Length (s of native execution) of the long recording the seek rows use.
    pub long_secs: u64,
    /// Recording lengths of the scaling section.
    pub scaling_secs: Vec<u64>,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                runs: 3,
                record_full_budget: Duration::from_secs(15),
                long_secs: 10,
                scaling_secs: vec![2, 5, 10],
            }
        } else {
            Plan {
                quick,
                runs: 5,
                record_full_budget: Duration::from_secs(60),
                long_secs: 60,
                scaling_secs: vec![10, 60, 300],
            }
        }
    }
}

/// A recording kept for several sections.
#[derive(Clone, Debug)]
pub struct Recording {
    pub dir: PathBuf,
    /// Wall time of `rewind record`.
    pub record_s: f64,
    /// Wall time of one native run of the same workload.
    pub native_s: f64,
    /// Events in the trace.
    pub events: u64,
    pub bytes: u64,
}

/// Paths, tools and shared state of one suite run.
pub struct Lab {
    pub plan: Plan,
    pub workspace: PathBuf,
    /// The cargo target directory the binaries were built into.
    pub target: PathBuf,
    pub rewind: PathBuf,
    pub umk: PathBuf,
    pub scratch: tempfile::TempDir,
    /// Thousands of `compute` units umk does per second natively.
    pub compute_rate: f64,
    /// `Err(why)` when a host tool cannot run: its rows say so.
    pub strace: Result<(), String>,
    pub taskset: Result<(), String>,
    pub gdb: Result<(), String>,
    pub cc: Result<(), String>,
    long: BTreeMap<u64, Recording>,
}

impl Lab {
    /// Builds the workspace's `rewind` and `umk` (release, honouring CARGO_TARGET_DIR),
    /// checks the host tools and calibrates umk's compute rate.
    pub fn open(plan: Plan) -> anyhow::Result<Lab> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("bench/ has a parent directory")?
            .to_path_buf();
        let target = target_dir(&workspace)?;
        eprintln!(
            "building rewind and umk (release) into {}",
            target.display()
        );
        let st = Command::new(env!("CARGO"))
            .current_dir(&workspace)
            .args([
                "build",
                "--release",
                "-p",
                "rewind",
                "-p",
                "umk",
                "-p",
                "rewind-preload",
            ])
            .status()
            .context("running cargo build")?;
        if !st.success() {
            bail!("cargo build --release -p rewind -p umk -p rewind-preload failed: {st}");
        }
        let rewind = target.join("release/rewind");
        let umk = target.join("release/umk");
        for b in [&rewind, &umk] {
            if !b.is_file() {
                bail!("{} missing after the build", b.display());
            }
        }
        exec::probe_tool("mke2fs", "-V").map_err(anyhow::Error::msg)?;
        let scratch = tempfile::Builder::new()
            .prefix("rewind-bench-")
            .tempdir()
            .context("creating the scratch directory")?;
        let mut lab = Lab {
            plan,
            workspace,
            target,
            rewind,
            umk,
            scratch,
            compute_rate: 0.0,
            strace: exec::probe_tool("strace", "-V"),
            taskset: exec::probe_tool("taskset", "-V"),
            gdb: exec::probe_tool("gdb", "--version"),
            cc: exec::probe_tool("cc", "--version"),
            long: BTreeMap::new(),
        };
        lab.compute_rate = workload::calibrate(&lab)?;
        eprintln!(
            "umk computes {:.0}k units/s natively (calibrated)",
            lab.compute_rate
        );
        Ok(lab)
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// A `rewind` command.
    pub fn rewind(&self) -> Command {
        Command::new(&self.rewind)
    }

    /// The idle/compute recording of `secs` seconds of umk execution, recorded once (with
    /// one native run beside it) and shared by the seek and scaling sections.
    pub fn long_recording(&mut self, secs: u64) -> anyhow::Result<Recording> {
        if let Some(r) = self.long.get(&secs) {
            return Ok(r.clone());
        }
        let w = workload::mixed(self, secs)?;
        eprintln!("  recording {} ({secs} s of umk execution)", w.name);
        w.prepare()?;
        let native = exec::run_ok(&mut w.command(), LONG)?;
        let dir = self.path(&format!("long-{secs}"));
        w.prepare()?;
        let rec = record(self, &w, &dir)?;
        let r = Recording {
            events: trace_events(self, &dir)?,
            bytes: dir_bytes(&dir),
            dir,
            record_s: rec.secs,
            native_s: native.secs,
        };
        self.long.insert(secs, r.clone());
        Ok(r)
    }
}

/// The cargo target directory (CARGO_TARGET_DIR or the configured one), from
/// `cargo metadata`.
fn target_dir(workspace: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata gave no target_directory")
}

/// Records `w` into `dir` (replacing it) with `rewind record`, timed.
pub fn record(lab: &Lab, w: &Workload, dir: &Path) -> anyhow::Result<exec::Outcome> {
    record_with(lab, w, dir, &[])
}

/// As [`record`], with more `rewind record` options.
pub fn record_with(
    lab: &Lab,
    w: &Workload,
    dir: &Path,
    options: &[&str],
) -> anyhow::Result<exec::Outcome> {
    let _ = std::fs::remove_dir_all(dir);
    let mut cmd = lab.rewind();
    cmd.arg("record")
        .args(options)
        .arg("-o")
        .arg(dir)
        .arg("--")
        .arg(&w.program)
        .args(&w.args);
    if let Some(d) = &w.cwd {
        cmd.current_dir(d);
    }
    exec::run_ok(&mut cmd, LONG).with_context(|| format!("recording {}", w.name))
}

/// The number of events in a trace: `rewind dump` prints one `#N` line per event.
pub fn trace_events(lab: &Lab, dir: &Path) -> anyhow::Result<u64> {
    let o = exec::run_ok(lab.rewind().arg("dump").arg(dir), LONG)?;
    let last = o
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max();
    Ok(last.map_or(0, |n| n + 1))
}

/// Apparent size of every file under `dir` (what `du -sb` prints).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
