//! Section `reverse`: reverse execution through the real gdb against `rewind gdb
//! --no-launch`. On a umk recording whose shell runs `free`, `mount` and `sleep 0` at
//! about 2 s, 0.5 s and 0.1 s of computation before the end: reverse-continue from the
//! end back to each (a breakpoint on the command's function), reverse-stepi and
//! reverse-next; then seeking near the end of the long recording, cold and warm, and
//! `--at` start-up; and the memory the checkpoint forks hold while gdb is attached.

use crate::exec;
use crate::gdb::{self, Step, StepResult, Stub};
use crate::lab::{self, Lab, LONG};
use crate::memory::{self, Snapshot};
use crate::report::{Ratio, Row, Unit, Value};
use crate::stats::median;
use crate::workload::{self, HZ};

pub const SECTION: &str = "reverse";

/// (label, function the breakpoint goes on, intended span in seconds).
const MARKS: [(&str, &str, f64); 3] = [
    ("0.1", "umk::shell::commands::sleep", 0.1),
    ("0.5", "umk::shell::commands::mount", 0.5),
    ("2", "umk::shell::commands::free_report", 2.0),
];

const STEPIS: usize = 10;
const NEXTS: usize = 5;

/// Every row of the section.
pub fn run(lab: &mut Lab) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Err(why) = &lab.gdb {
        return vec![Row::new(
            SECTION,
            "reverse execution in gdb",
            None,
            Value::Unavailable { why: why.clone() },
        )];
    }
    match reverse_rows(lab) {
        Ok(r) => rows.extend(r),
        Err(e) => rows.push(Row::failed(SECTION, "reverse execution in gdb", &e)),
    }
    match seek_rows(lab) {
        Ok(r) => rows.extend(r),
        Err(e) => rows.push(Row::failed(SECTION, "seek near the end", &e)),
    }
    rows
}

/// The marker script: `free`, 1.5 s of compute, `mount`, 0.4 s, `sleep 0`, 0.1 s, halt.
fn marker_script(lab: &Lab) -> String {
    format!(
        "free\ncompute {}\nmount\ncompute {}\nsleep 0\ncompute {}\nhalt\n",
        workload::units(lab, 1.5),
        workload::units(lab, 0.4),
        workload::units(lab, 0.1)
    )
}

fn reverse_rows(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let w = workload::umk(lab, "umk markers", "markers", "64M", &marker_script(lab))?;
    eprintln!("  reverse execution on {}", w.name);
    // Native: total time and, from umk's own jiffies, the computation after each marker.
    let mut total = Vec::new();
    let mut spans: [Vec<f64>; 3] = Default::default();
    for _ in 0..lab.plan.runs {
        w.prepare()?;
        let o = exec::run_ok(&mut w.command(), LONG)?;
        total.push(o.secs);
        let j = workload::compute_jiffies(&o.stdout);
        if j.len() == 3 {
            spans[0].push(j[2] as f64 / HZ);
            spans[1].push((j[1] + j[2]) as f64 / HZ);
            spans[2].push((j[0] + j[1] + j[2]) as f64 / HZ);
        }
    }
    let trace = lab.path("markers-trace");
    w.prepare()?;
    let rec = lab::record(lab, &w, &trace)?;
    let events = lab::trace_events(lab, &trace)?;

    let mut plan = vec![Step::timed("continue-all", "continue")];
    for (i, (label, func, _)) in MARKS.iter().enumerate() {
        if i > 0 {
            plan.push(Step::quiet("delete"));
            plan.push(Step::timed(&format!("c{}", MARKS[i - 1].0), "continue"));
        }
        plan.push(Step::quiet(format!("break {func}")));
        plan.push(Step::timed(&format!("rc{label}"), "reverse-continue"));
    }
    for i in 0..STEPIS {
        plan.push(Step::timed(&format!("rsi{i}"), "reverse-stepi"));
    }
    for i in 0..NEXTS {
        plan.push(Step::timed(&format!("rn{i}"), "reverse-next"));
    }
    plan.push(Step::Pause {
        pause: "mem".into(),
    });
    plan.push(Step::timed("stats", "monitor stats"));

    let stub = Stub::start(lab, &trace, None)?;
    let pid = stub.pid();
    let mut mem = None;
    let results = stub.session(lab, &plan, |_| mem = Some(memory::snapshot(pid)));
    stub.stop();
    let results = results?;

    let native_total = median(&total);
    let mut rows = vec![timed_row(
        &results,
        "continue-all",
        format!("continue e0 -> end ({events} events)"),
        native_total,
        format!("forward replay under gdb; recorded in {:.2} s", rec.secs),
    )];
    for (i, (label, func, span)) in MARKS.iter().enumerate() {
        let native = median(&spans[i]);
        let mut row = timed_row(
            &results,
            &format!("rc{label}"),
            format!("reverse-continue back over ~{span} s"),
            native,
            String::new(),
        );
        if let Ok(r) = gdb::step(&results, &format!("rc{label}")) {
            let short = func.rsplit("::").next().unwrap_or(func);
            // The innermost frame at a function's first instruction may be an inlined
            // callee: the stop counts if any frame up to the real one is the function.
            if r.funcs.iter().any(|f| f.ends_with(short)) {
                row.note = format!("stopped at the breakpoint on {short}");
            } else {
                row.value = Value::Failed {
                    error: format!(
                        "stopped elsewhere ({}): {}",
                        r.funcs.join(" in "),
                        one_line(&r.out)
                    ),
                };
                row.ratio = None;
            }
            if let Ok(c) = gdb::step(&results, &format!("c{label}")) {
                row.note.push_str(&format!(
                    "; continue forward over it: {}",
                    crate::report::fmt_secs(c.secs)
                ));
                row = row.extra("forward_s", c.secs);
            }
        }
        rows.push(row.native_samples(&spans[i]));
    }
    rows.push(series_row(&results, "rsi", STEPIS, "reverse-stepi"));
    rows.push(series_row(&results, "rn", NEXTS, "reverse-next"));
    if let Some(m) = mem {
        rows.push(memory_row("checkpoint memory, markers trace", &m));
    }
    if let Ok(s) = gdb::step(&results, "stats") {
        eprintln!("  stub latency (monitor stats):\n{}", s.out.trim_end());
    }
    Ok(rows)
}

fn seek_rows(lab: &mut Lab) -> anyhow::Result<Vec<Row>> {
    let secs = lab.plan.long_secs;
    let rec = lab.long_recording(secs)?;
    eprintln!(
        "  seeking in the {secs} s recording ({} events)",
        rec.events
    );
    let near_end = rec.events.saturating_sub(10);
    let mid = rec.events / 2;
    let plan = vec![
        Step::timed("cold", format!("monitor goto e{near_end}")),
        Step::quiet("maint flush register-cache"),
        Step::timed("back", format!("monitor goto e{mid}")),
        Step::quiet("maint flush register-cache"),
        Step::timed("warm", format!("monitor goto e{near_end}")),
        Step::quiet("maint flush register-cache"),
        Step::Pause {
            pause: "mem".into(),
        },
    ];
    let stub = Stub::start(lab, &rec.dir, None)?;
    let pid = stub.pid();
    let startup = stub.startup_s;
    let mut mem = None;
    let results = stub.session(lab, &plan, |_| mem = Some(memory::snapshot(pid)));
    stub.stop();
    let results = results?;
    let native = Some(rec.native_s);
    let what = format!("{secs} s recording");
    let mut rows = vec![
        Row::new(
            SECTION,
            format!("rewind gdb start-up, {what}"),
            None,
            Value::secs(startup),
        )
        .note("spawn to listening: open the trace, start the replay at e0"),
        goto_row(
            &results,
            "cold",
            format!("seek e0 -> e{near_end} (cold), {what}"),
            native,
        )
        .prepend_note("no checkpoints yet: runs the whole way, forking checkpoints"),
        goto_row(
            &results,
            "back",
            format!("seek back to e{mid}, {what}"),
            native,
        )
        .prepend_note("restores the nearest checkpoint"),
        goto_row(
            &results,
            "warm",
            format!("seek to e{near_end} again (warm), {what}"),
            native,
        )
        .prepend_note("from the nearest checkpoint"),
    ];
    if let Some(m) = mem {
        rows.push(memory_row(&format!("checkpoint memory, {what}"), &m));
    }
    // Time to first stop with --at: the stub seeks before it listens.
    let stub = Stub::start(lab, &rec.dir, Some(&format!("e{near_end}")))?;
    let startup = stub.startup_s;
    let results = stub.session(lab, &[], |_| {});
    stub.stop();
    let attach = gdb::step(&results?, "attach").map(|r| r.secs);
    rows.push(match attach {
        Ok(a) => Row::new(
            SECTION,
            format!("rewind gdb --at e{near_end}: to first stop, {what}"),
            native,
            Value::secs(startup + a),
        )
        .note(format!(
            "start-up with the seek {:.3} s + gdb attach {:.3} s",
            startup, a
        )),
        Err(e) => Row::failed(
            SECTION,
            format!("rewind gdb --at e{near_end}"),
            &anyhow::anyhow!(e),
        ),
    });
    Ok(rows)
}

/// A row for one timed step.
fn timed_row(
    results: &[StepResult],
    label: &str,
    name: String,
    native: Option<f64>,
    note: String,
) -> Row {
    match gdb::step(results, label) {
        Ok(r) => Row::new(SECTION, name, native, Value::secs(r.secs)).note(note),
        Err(e) => Row::new(SECTION, name, native, Value::Failed { error: e }),
    }
}

/// A `monitor goto` row, failed unless the stub said "now at".
fn goto_row(results: &[StepResult], label: &str, name: String, native: Option<f64>) -> Row {
    match gdb::step(results, label) {
        Ok(r) if r.out.contains("now at") => {
            let said = r.out.lines().find(|l| l.contains("now at")).unwrap_or("");
            Row::new(SECTION, name, native, Value::secs(r.secs)).note(said.trim())
        }
        Ok(r) => Row::new(
            SECTION,
            name,
            native,
            Value::Failed {
                error: one_line(&r.out),
            },
        ),
        Err(e) => Row::new(SECTION, name, native, Value::Failed { error: e }),
    }
}

/// The median of a numbered series of steps (`rsi0`, `rsi1`, …).
fn series_row(results: &[StepResult], prefix: &str, n: usize, name: &str) -> Row {
    let mut secs = Vec::new();
    let mut pcs = Vec::new();
    for i in 0..n {
        match gdb::step(results, &format!("{prefix}{i}")) {
            Ok(r) => {
                secs.push(r.secs);
                pcs.push(r.pc);
            }
            Err(e) => {
                return Row::new(SECTION, name, None, Value::Failed { error: e });
            }
        }
    }
    pcs.dedup();
    let max = secs.iter().copied().fold(0.0, f64::max);
    Row::new(
        SECTION,
        name,
        None,
        Value::secs(median(&secs).unwrap_or(0.0)),
    )
    .note(format!(
        "median of {n}, max {}; {} distinct pcs visited",
        crate::report::fmt_secs(max),
        pcs.len()
    ))
    .samples(&secs)
}

/// Checkpoint memory: the PSS of the stub's children (tracee + checkpoint forks) against
/// one tracee's RSS.
fn memory_row(name: &str, m: &Snapshot) -> Row {
    let pss = m.children_pss_kb();
    let single = m.single_rss_kb();
    let mut row = Row::new(
        SECTION,
        name,
        None,
        Value::Measured {
            value: pss as f64 * 1024.0,
            unit: Unit::Bytes,
        },
    )
    .note(format!(
        "PSS of {} processes (tracee + checkpoint forks); one tracee RSS {} kB, RSS sum {} kB; stub itself RSS {} kB",
        m.children.len(),
        single,
        m.children_rss_kb(),
        m.stub.as_ref().map_or(0, |s| s.rss_kb)
    ))
    .extra("processes", m.children.len())
    .extra("pss_kb", pss)
    .extra("single_rss_kb", single)
    .extra("rss_sum_kb", m.children_rss_kb())
    .extra("stub_rss_kb", m.stub.as_ref().map_or(0, |s| s.rss_kb));
    if single > 0 {
        row.ratio = Some(Ratio {
            value: pss as f64 / single as f64,
            lower_bound: false,
        });
    }
    row
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}
