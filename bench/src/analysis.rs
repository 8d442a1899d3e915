//! Section `analysis`: `rewind analyze -v locks` on recordings of a lock-heavy (stress)
//! and a compute-heavy umk run: probe hits per second (every hit is a breakpoint stop
//! pair on the replay), analysis time against a plain replay and native, and the cost of
//! one hit beyond the replay.

use anyhow::Context;

use crate::exec;
use crate::lab::{self, Lab, LONG};
use crate::report::{Row, Unit, Value};
use crate::stats::median;
use crate::workload::{self, Workload};

pub const SECTION: &str = "analysis";

/// Every row of the section.
pub fn run(lab: &Lab) -> Vec<Row> {
    let q = lab.plan.quick;
    let mut rows = Vec::new();
    for w in [
        workload::umk_fs(lab, 4, if q { 20 } else { 60 }),
        workload::umk_cpu(lab, if q { 0.3 } else { 1.0 }),
    ] {
        match w.and_then(|w| measure(lab, &w)) {
            Ok(r) => rows.extend(r),
            Err(e) => rows.push(Row::new(
                SECTION,
                "analyze locks",
                None,
                Value::Failed {
                    error: format!("{e:#}"),
                },
            )),
        }
    }
    rows
}

/// What `rewind analyze -v` says on stderr.
#[derive(Debug, PartialEq)]
pub struct Hits {
    pub hits: u64,
    pub events: u64,
    pub secs: f64,
    pub per_s: f64,
}

/// Parses `rewind: H probe hits over E trace events in S s (R hits/s)`.
pub fn parse_hits(stderr: &str) -> Option<Hits> {
    let l = stderr.lines().find(|l| l.contains(" probe hits over "))?;
    let l = l.strip_prefix("rewind: ").unwrap_or(l);
    let words: Vec<&str> = l.split_whitespace().collect();
    Some(Hits {
        hits: words.first()?.parse().ok()?,
        events: words.get(4)?.parse().ok()?,
        secs: words.get(8)?.parse().ok()?,
        per_s: words.get(10)?.trim_start_matches('(').parse().ok()?,
    })
}

/// The rows of one workload.
fn measure(lab: &Lab, w: &Workload) -> anyhow::Result<Vec<Row>> {
    eprintln!("  analyze locks on {}", w.name);
    let trace = lab.path("analysis-trace");
    w.prepare()?;
    lab::record(lab, w, &trace)?;
    let (mut native, mut replay, mut analyze) = (Vec::new(), Vec::new(), Vec::new());
    let mut hits = None;
    let analyses = if lab.plan.quick { 1 } else { 3 };
    for i in 0..lab.plan.runs {
        w.prepare()?;
        native.push(exec::run_ok(&mut w.command(), LONG)?.secs);
        let mut cmd = lab.rewind();
        cmd.arg("replay").arg(&trace);
        replay.push(exec::run_ok(&mut cmd, LONG)?.secs);
        if i < analyses {
            let mut cmd = lab.rewind();
            cmd.args(["analyze", "-v", "locks"]).arg(&trace);
            let o = exec::run_ok(&mut cmd, LONG)?;
            analyze.push(o.secs);
            hits = Some(parse_hits(&o.stderr).context("analyze -v printed no probe-hit line")?);
        }
    }
    let _ = std::fs::remove_dir_all(&trace);
    let hits = hits.context("no analysis ran")?;
    let (n, p, a) = (median(&native), median(&replay), median(&analyze));
    let vs_replay = match (a, p) {
        (Some(a), Some(p)) if p > 0.0 => a / p,
        _ => f64::NAN,
    };
    let mut rows = vec![
        Row::new(
            SECTION,
            format!("{}: plain replay", w.name),
            n,
            Value::secs(p.unwrap_or(0.0)),
        )
        .samples(&replay)
        .native_samples(&native),
        Row::new(
            SECTION,
            format!("{}: analyze -v locks", w.name),
            n,
            Value::secs(a.unwrap_or(0.0)),
        )
        .note(format!(
            "{vs_replay:.1}x plain replay; {} probe hits over {} events",
            hits.hits, hits.events
        ))
        .samples(&analyze)
        .native_samples(&native)
        .extra("vs_replay", vs_replay)
        .extra("probe_hits", hits.hits),
        Row::new(
            SECTION,
            format!("{}: probe hits/s", w.name),
            None,
            Value::Measured {
                value: hits.per_s,
                unit: Unit::PerSecond,
            },
        )
        .note(format!(
            "{} hits in {:.3} s of analysis, as analyze -v reports",
            hits.hits, hits.secs
        )),
    ];
    if let (Some(a), Some(p)) = (a, p) {
        if hits.hits > 0 {
            rows.push(
                Row::new(
                    SECTION,
                    format!("{}: cost per probe hit", w.name),
                    None,
                    Value::secs((a - p) / hits.hits as f64),
                )
                .note(format!(
                    "(analyze - plain replay) / hits; {:.0} hits per recorded event",
                    hits.hits as f64 / hits.events.max(1) as f64
                )),
            );
        }
    }
    Ok(rows)
}
