//! Section `overhead`: each workload natively, under `rewind record`, replayed with
//! `rewind replay`, and under `strace -f -o /dev/null`, interleaved run by run so that the
//! machine's noise hits every tool alike; medians, ratios to native, trace bytes per
//! second of recording, events per second (each event is a ptrace stop pair or more) and
//! the recording cost per event once the fixed start-up price (an empty run of the same
//! program) is taken out.

use anyhow::Context;

use crate::exec;
use crate::lab::{self, Lab, LONG};
use crate::report::{fmt_secs, Row, Unit, Value};
use crate::stats::median;
use crate::workload::{self, Workload};

pub const SECTION: &str = "overhead";

/// The CPU the pinned strace runs on. Unpinned, strace and its tracee often land on
/// different CPUs, and every ptrace stop becomes a cross-CPU wake-up (several times
/// dearer on this VM); `rewind record` pins itself and the tracee to one CPU.
pub const PIN_CPU: usize = 0;

/// The workloads at this plan's size, by program: an empty run of the program first
/// (umk booting straight to `halt`, the C program with 0 rounds), then the real ones.
pub fn workloads(lab: &Lab) -> Vec<(Setup, Vec<Setup>)> {
    let q = lab.plan.quick;
    vec![
        (
            workload::umk(lab, "umk boot+halt", "boot", "64M", "halt\n"),
            vec![
                workload::umk_cpu(lab, if q { 0.3 } else { 1.0 }),
                if q {
                    workload::umk_fs(lab, 8, 400)
                } else {
                    workload::umk_fs(lab, 16, 2000)
                },
                workload::umk_idle(lab, if q { 2 } else { 4 }),
            ],
        ),
        (
            workload::c_mix(lab, 0),
            vec![workload::c_mix(lab, if q { 80_000 } else { 200_000 })],
        ),
        (
            Ok(workload::python_writes(0)),
            vec![Ok(workload::python_writes(if q {
                20_000
            } else {
                100_000
            }))],
        ),
        (
            Ok(workload::shell("sh -c true", "true")),
            vec![Ok(if q {
                workload::shell(
                    "sh pipeline (seq 20000 | sort -rn | head -3)",
                    "seq 20000 | sort -rn | head -3",
                )
            } else {
                workload::shell(
                    "sh pipeline (seq 200000 | sort -rn | head -3)",
                    "seq 200000 | sort -rn | head -3",
                )
            })],
        ),
        // Everyday programs with processes and threads, each against its own empty run.
        (
            Ok(workload::command("make --version", "make", &["--version"])),
            vec![workload::make_project(lab)],
        ),
        (
            Ok(workload::python_threads(0)),
            vec![Ok(workload::python_threads(if q { 2_000 } else { 10_000 }))],
        ),
        (
            workload::pthread_pingpong(lab, 0),
            vec![workload::pthread_pingpong(
                lab,
                if q { 2_000 } else { 10_000 },
            )],
        ),
        // One size only: a KUnit run is what kernel developers run.
        (workload::linux_kunit(lab), vec![]),
    ]
}

/// A workload, or why it could not be set up.
pub type Setup = anyhow::Result<Workload>;

/// Every row of the section. The empty run's record-minus-native time is the fixed
/// start-up price of recording that program, taken out of the per-event cost of the
/// real workloads.
pub fn run(lab: &Lab) -> Vec<Row> {
    let mut rows = Vec::new();
    for (empty, real) in workloads(lab) {
        let fixed = match empty {
            Ok(e) => {
                let (r, f) = measure(lab, &e, None);
                rows.extend(r);
                f
            }
            Err(e) => {
                rows.push(Row::unavailable(SECTION, "workload setup", &e));
                None
            }
        };
        for w in real {
            match w {
                Ok(w) => rows.extend(measure(lab, &w, fixed).0),
                Err(e) => rows.push(Row::unavailable(SECTION, "workload setup", &e)),
            }
        }
    }
    rows
}

/// Samples of one workload.
#[derive(Default)]
struct Samples {
    native: Vec<f64>,
    record: Vec<f64>,
    replay: Vec<f64>,
    strace: Vec<f64>,
    strace_pinned: Vec<f64>,
    unbuffered: Vec<f64>,
    unbuffered_replay: Vec<f64>,
    floor: Vec<f64>,
    bytes: Vec<f64>,
    blob_bytes: Vec<f64>,
    events: u64,
}

/// The rows of one workload, and its median record-minus-native time. `fixed`: the
/// start-up price of recording this program (from its empty run), if known.
fn measure(lab: &Lab, w: &Workload, fixed: Option<f64>) -> (Vec<Row>, Option<f64>) {
    eprintln!("  {}", w.name);
    let mut s = Samples::default();
    let mut failure: [Option<String>; 7] = Default::default();
    let trace = lab.path("overhead-trace");
    for _ in 0..lab.plan.runs {
        if let Err(e) = one_round(lab, w, &trace, &mut s, &mut failure) {
            let row = Row::new(
                SECTION,
                format!("{}: native", w.name),
                None,
                Value::Failed {
                    error: format!("{e:#}"),
                },
            );
            return (vec![row], None);
        }
    }
    let _ = std::fs::remove_dir_all(&trace);
    let native = median(&s.native);
    let name = |what: &str| format!("{}: {what}", w.name);
    let timed = |what: &str, v: &[f64], fail: &Option<String>| -> Row {
        let value = match (fail, median(v)) {
            (Some(e), _) => Value::Failed { error: e.clone() },
            (None, Some(m)) => Value::secs(m),
            (None, None) => Value::Failed {
                error: "no runs".into(),
            },
        };
        Row::new(SECTION, name(what), native, value)
            .samples(v)
            .native_samples(&s.native)
    };
    let record = median(&s.record);
    let events_per_s = record.map_or(0.0, |r| s.events as f64 / r);
    let extra = record.zip(native).map(|(r, n)| r - n);
    let cost = match (extra, fixed) {
        (Some(x), Some(f)) if s.events > 0 => {
            let us = (x - f) / s.events as f64 * 1e6;
            format!(
                "; (record - native - start-up {}) / events = {}",
                fmt_secs(f),
                if us < 0.5 {
                    format!("~0 us per event ({us:.1}: within noise)")
                } else {
                    format!("{us:.0} us per event")
                }
            )
        }
        (Some(x), None) => format!("; record - native = {} (start-up)", fmt_secs(x)),
        _ => String::new(),
    };
    let mut rows = vec![
        timed("rewind record", &s.record, &failure[0]).note(format!(
            "{} events, {:.0}/s (each a ptrace stop pair or more){cost}",
            s.events, events_per_s
        )),
        timed("rewind replay", &s.replay, &failure[1]).note(match (median(&s.replay), record) {
            (Some(p), Some(r)) => format!("{:.2}x record; idle time skipped", p / r),
            _ => String::new(),
        }),
    ];
    rows.push(
        timed(
            "rewind record --no-syscall-buffer",
            &s.unbuffered,
            &failure[4],
        )
        .note("every call a ptrace stop pair, as before the syscall buffer"),
    );
    rows.push(timed(
        "rewind replay (recorded --no-syscall-buffer)",
        &s.unbuffered_replay,
        &failure[5],
    ));
    rows.push(
        timed("ptrace floor", &s.floor, &failure[6])
            .note("rewind-bench --floor: two ptrace stops per system call, nothing recorded"),
    );
    rows.push(match &lab.strace {
        Err(why) => Row::new(
            SECTION,
            name("strace -f -o /dev/null"),
            native,
            Value::Unavailable { why: why.clone() },
        ),
        Ok(()) => timed("strace -f -o /dev/null", &s.strace, &failure[2]),
    });
    let pinned = format!("strace -f -o /dev/null, pinned (taskset -c {PIN_CPU})");
    rows.push(match (&lab.strace, &lab.taskset) {
        (Err(why), _) | (_, Err(why)) => Row::new(
            SECTION,
            name(&pinned),
            native,
            Value::Unavailable { why: why.clone() },
        ),
        (Ok(()), Ok(())) => timed(&pinned, &s.strace_pinned, &failure[3])
            .note("tracer and tracee on one CPU, as rewind record pins them"),
    });
    let bps: Vec<f64> = s.bytes.iter().zip(&s.record).map(|(b, t)| b / t).collect();
    let stream_bps: Vec<f64> = s
        .bytes
        .iter()
        .zip(&s.blob_bytes)
        .zip(&s.record)
        .map(|((b, blob), t)| (b - blob) / t)
        .collect();
    if let (Some(v), Some(bytes)) = (median(&bps), median(&s.bytes)) {
        rows.push(
            Row::new(
                SECTION,
                name("trace bytes/s"),
                None,
                Value::Measured {
                    value: v,
                    unit: Unit::BytesPerSecond,
                },
            )
            .samples(&bps)
            .note(format!(
                "{bytes:.0} B per trace (du -b), {:.0} B/s without blobs/ (file contents, mapped binary)",
                median(&stream_bps).unwrap_or(0.0)
            ))
            .extra("trace_bytes", bytes)
            .extra("events", s.events),
        );
    }
    (rows, extra)
}

/// One native, record, replay and strace run of `w`.
fn one_round(
    lab: &Lab,
    w: &Workload,
    trace: &std::path::Path,
    s: &mut Samples,
    failure: &mut [Option<String>; 7],
) -> anyhow::Result<()> {
    w.prepare()?;
    let n = exec::run_ok(&mut w.command(), LONG).context("native run")?;
    s.native.push(n.secs);

    w.prepare()?;
    match lab::record(lab, w, trace) {
        Ok(r) => {
            s.record.push(r.secs);
            let bytes = lab::dir_bytes(trace);
            s.bytes.push(bytes as f64);
            s.blob_bytes
                .push(lab::dir_bytes(&trace.join("blobs")) as f64);
            let mut cmd = lab.rewind();
            cmd.args(["replay", "-v"]).arg(trace);
            match exec::run_ok(&mut cmd, LONG) {
                Ok(p) => {
                    s.replay.push(p.secs);
                    if let Some(n) = replayed_events(&p.stderr) {
                        s.events = n;
                    }
                }
                Err(e) => failure[1] = Some(format!("{e:#}")),
            }
        }
        Err(e) => {
            failure[0] = Some(format!("{e:#}"));
            failure[1] = Some("nothing recorded to replay".into());
        }
    }

    w.prepare()?;
    match lab::record_with(lab, w, trace, &["--no-syscall-buffer"]) {
        Ok(r) => {
            s.unbuffered.push(r.secs);
            let mut cmd = lab.rewind();
            cmd.arg("replay").arg(trace);
            match exec::run_ok(&mut cmd, LONG) {
                Ok(p) => s.unbuffered_replay.push(p.secs),
                Err(e) => failure[5] = Some(format!("{e:#}")),
            }
        }
        Err(e) => {
            failure[4] = Some(format!("{e:#}"));
            failure[5] = Some("nothing recorded to replay".into());
        }
    }

    w.prepare()?;
    let bench = std::env::current_exe().context("finding rewind-bench")?;
    let floor = [bench.to_str().context("rewind-bench's path")?, "--floor"];
    match exec::run_ok(&mut w.command_under(&floor), LONG) {
        Ok(o) => s.floor.push(o.secs),
        Err(e) => failure[6] = Some(format!("{e:#}")),
    }

    if lab.strace.is_ok() {
        w.prepare()?;
        match exec::run_ok(
            &mut w.command_under(&["strace", "-f", "-o", "/dev/null"]),
            LONG,
        ) {
            Ok(o) => s.strace.push(o.secs),
            Err(e) => failure[2] = Some(format!("{e:#}")),
        }
        if lab.taskset.is_ok() {
            w.prepare()?;
            let cpu = PIN_CPU.to_string();
            let tool = ["taskset", "-c", &cpu, "strace", "-f", "-o", "/dev/null"];
            match exec::run_ok(&mut w.command_under(&tool), LONG) {
                Ok(o) => s.strace_pinned.push(o.secs),
                Err(e) => failure[3] = Some(format!("{e:#}")),
            }
        }
    }
    Ok(())
}

/// N of `rewind: replayed N events in …` (`rewind replay -v`).
pub fn replayed_events(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.split("replayed ").nth(1))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}
