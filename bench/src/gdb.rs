//! Driving the real gdb: a `record full` run of a workload under a time budget
//! (`gdb/record_full.py`), and timed sessions against `rewind gdb --no-launch` (the stub
//! process, its address, and `gdb/driver.py` running a plan of commands, with pauses at
//! which the bench samples the stub's processes while gdb is attached).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::exec;
use crate::lab::Lab;
use crate::workload::Workload;

const RECORD_FULL_PY: &str = include_str!("gdb/record_full.py");
const DRIVER_PY: &str = include_str!("gdb/driver.py");

/// What one gdb `record full` run printed.
#[derive(Debug, Deserialize)]
pub struct RecordFull {
    /// Wall time of `continue` under `record full`.
    pub secs: f64,
    /// The budget ran out and gdb was interrupted.
    pub budget_hit: bool,
    /// A Python-level exception from `continue`.
    pub error: Option<String>,
    /// gdb's output of `continue`.
    pub out: String,
    /// `info record`.
    pub info: String,
    /// The function the program stopped in.
    pub where_: Option<String>,
}

impl RecordFull {
    /// Instructions in gdb's execution log.
    pub fn instructions(&self) -> Option<u64> {
        self.info
            .lines()
            .find_map(|l| l.strip_prefix("Log contains "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
    }

    /// gdb's own complaint when it could not record (e.g. an unsupported instruction).
    pub fn record_error(&self) -> Option<String> {
        let lines: Vec<&str> = self
            .out
            .lines()
            .filter(|l| {
                l.starts_with("Process record does not support") || l.contains("failed to record")
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join(" "))
    }
}

/// Runs `w` under gdb `record full` (from `main` when `from_main`, else from the first
/// instruction) with `env` added, interrupting it after `budget`.
pub fn record_full(
    lab: &Lab,
    w: &Workload,
    from_main: bool,
    env: &[(&str, &str)],
    budget: Duration,
) -> anyhow::Result<RecordFull> {
    if let Err(why) = &lab.gdb {
        bail!("{why}");
    }
    let script = lab.path("record_full.py");
    std::fs::write(&script, RECORD_FULL_PY)?;
    w.prepare()?;
    let mut cmd = Command::new("gdb");
    cmd.args(["-batch", "-nx", "-x"])
        .arg(&script)
        .arg("--args")
        .arg(&w.program)
        .args(&w.args)
        .env("BENCH_BUDGET", budget.as_secs_f64().to_string())
        .env("BENCH_START", if from_main { "main" } else { "starti" });
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = &w.cwd {
        cmd.current_dir(d);
    }
    let o = exec::run(&mut cmd, budget * 3 + Duration::from_secs(60))?;
    let line = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH-RESULT "))
        .with_context(|| format!("gdb printed no result ({}): {}", o.status, o.tail()))?;
    let mut v: serde_json::Value = serde_json::from_str(line).context("parsing gdb's result")?;
    // `where` is a Python name; keep it out of Rust's way.
    if let Some(obj) = v.as_object_mut() {
        if let Some(w) = obj.remove("where") {
            obj.insert("where_".into(), w);
        }
    }
    serde_json::from_value(v).context("reading gdb's result")
}

/// One step of a gdb session plan.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Step {
    Cmd { label: String, cmd: String },
    Pause { pause: String },
}

impl Step {
    /// A command whose time is reported under `label`.
    pub fn timed(label: &str, cmd: impl Into<String>) -> Step {
        Step::Cmd {
            label: label.into(),
            cmd: cmd.into(),
        }
    }

    /// A command whose time nobody reports.
    pub fn quiet(cmd: impl Into<String>) -> Step {
        Step::timed("", cmd)
    }
}

/// What one step printed and how long it took.
#[derive(Clone, Debug, Deserialize)]
pub struct StepResult {
    pub label: String,
    pub cmd: String,
    pub secs: f64,
    pub error: Option<String>,
    pub out: String,
    pub pc: Option<u64>,
    pub func: Option<String>,
    /// The innermost frame's function and those it is inlined into, innermost first.
    #[serde(default)]
    pub funcs: Vec<String>,
}

/// A `rewind gdb --no-launch` process serving one trace.
pub struct Stub {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// From spawn to the "listening" line: opening the trace (and seeking, with `--at`).
    pub startup_s: f64,
    pub binary: PathBuf,
}

impl Stub {
    /// Starts `rewind gdb --no-launch --port 0 [--at POS] TRACE` and waits until it listens.
    pub fn start(lab: &Lab, trace: &Path, at: Option<&str>) -> anyhow::Result<Stub> {
        let mut cmd = lab.rewind();
        cmd.args(["gdb", "--no-launch", "--port", "0"]);
        if let Some(p) = at {
            cmd.args(["--at", p]);
        }
        cmd.arg(trace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().context("starting rewind gdb")?;
        let stdout = child.stdout.take().context("rewind gdb stdout")?;
        let rx = lines(stdout);
        let err = exec::drain(child.stderr.take());
        let deadline = start + crate::lab::LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) => {
                    if let Some(addr) = line.split(" listening on ").nth(1) {
                        let startup_s = start.elapsed().as_secs_f64();
                        // Keep draining stdout so the stub never blocks on it.
                        std::thread::spawn(move || while rx.recv().is_ok() {});
                        return Ok(Stub {
                            child,
                            addr: addr.trim().to_string(),
                            startup_s,
                            binary: lab.umk.clone(),
                        });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let e = err.join().unwrap_or_default();
                    bail!("rewind gdb never listened: {}", e.trim());
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs gdb on the guest binary with `plan` against this stub (a `target remote`
    /// step is added first, timed as "attach"); `on_pause` runs at each pause step.
    pub fn session(
        &self,
        lab: &Lab,
        plan: &[Step],
        mut on_pause: impl FnMut(&str),
    ) -> anyhow::Result<Vec<StepResult>> {
        let dir = tempfile::Builder::new()
            .prefix("session-")
            .tempdir_in(lab.scratch.path())?;
        let script = dir.path().join("driver.py");
        std::fs::write(&script, DRIVER_PY)?;
        let mut steps = vec![Step::timed(
            "attach",
            format!("target remote {}", self.addr),
        )];
        steps.extend_from_slice(plan);
        let plan_file = dir.path().join("plan.json");
        std::fs::write(&plan_file, serde_json::to_vec(&steps)?)?;
        let resume = dir.path().join("resume");
        std::fs::create_dir(&resume)?;
        let mut child = Command::new("gdb")
            .args(["-batch", "-nx", "-x"])
            .arg(&script)
            .arg(&self.binary)
            .env("BENCH_PLAN", &plan_file)
            .env("BENCH_RESUME_DIR", &resume)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting gdb")?;
        let stdout = child.stdout.take().context("gdb stdout")?;
        let err = exec::drain(child.stderr.take());
        let rx = lines(stdout);
        let deadline = Instant::now() + crate::lab::LONG;
        let mut results = Vec::new();
        let mut other = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) => {
                    if let Some(j) = line.strip_prefix("BENCH-STEP ") {
                        results.push(serde_json::from_str::<StepResult>(j)?);
                    } else if let Some(name) = line.strip_prefix("BENCH-PAUSE ") {
                        on_pause(name.trim());
                        std::fs::write(resume.join(name.trim()), b"")?;
                    } else {
                        other.push(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    break;
                }
            }
        }
        let status = child.wait()?;
        let stderr = err.join().unwrap_or_default();
        if results.len()
            < steps
                .iter()
                .filter(|s| matches!(s, Step::Cmd { .. }))
                .count()
        {
            bail!(
                "gdb ended early ({status}) after {} steps: {} {}",
                results.len(),
                other.join(" | "),
                stderr.trim()
            );
        }
        Ok(results)
    }

    /// Stops the stub (SIGKILL; its tracees die with it by PTRACE_O_EXITKILL).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The step labelled `label`, or an error naming what went wrong.
pub fn step<'a>(results: &'a [StepResult], label: &str) -> Result<&'a StepResult, String> {
    match results.iter().find(|r| r.label == label) {
        None => Err(format!("no step {label}")),
        Some(r) => match &r.error {
            Some(e) => Err(format!("{}: {e}", r.cmd)),
            None => Ok(r),
        },
    }
}

/// The lines of a child's stdout as they come, read on a thread of their own.
fn lines(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
