//! Section `scaling`: record, replay and seek cost of umk recordings of growing length
//! (the idle/compute mix), each point beside its native run, and the least-squares slope
//! of each cost in seconds per second of recorded execution.

use crate::exec;
use crate::gdb::{self, Step, Stub};
use crate::lab::{Lab, LONG};
use crate::report::{FitReport, Row, Unit, Value};
use crate::stats::{least_squares, median};

pub const SECTION: &str = "scaling";

/// The costs fitted, in the order they are reported.
const COSTS: [&str; 3] = ["record", "replay", "seek to end"];

/// Every row of the section, and the fits for the JSON document.
pub fn run(lab: &mut Lab) -> (Vec<Row>, Vec<FitReport>) {
    let mut rows = Vec::new();
    let mut points: [Vec<(f64, f64)>; 3] = Default::default();
    for secs in lab.plan.scaling_secs.clone() {
        match point(lab, secs) {
            Ok((native, costs, r)) => {
                for (p, c) in points.iter_mut().zip(costs) {
                    if let Some(c) = c {
                        p.push((native, c));
                    }
                }
                rows.extend(r);
            }
            Err(e) => rows.push(Row::new(
                SECTION,
                format!("{secs} s recording"),
                None,
                Value::Failed {
                    error: format!("{e:#}"),
                },
            )),
        }
    }
    let mut fits = Vec::new();
    for (name, pts) in COSTS.iter().zip(points) {
        let fit = least_squares(&pts);
        let row_name = format!("{name} slope (least squares)");
        rows.push(match fit {
            Some(f) => Row::new(
                SECTION,
                row_name,
                None,
                Value::Measured {
                    value: f.slope,
                    unit: Unit::SecondsPerSecond,
                },
            )
            .note(format!(
                "s of cost per s of native execution; intercept {:.3} s, r2 {:.4}, {} points",
                f.intercept,
                f.r2,
                pts.len()
            )),
            None => Row::new(
                SECTION,
                row_name,
                None,
                Value::Failed {
                    error: format!("{} points: no fit", pts.len()),
                },
            ),
        });
        fits.push(FitReport {
            name: name.to_string(),
            points: pts,
            fit,
        });
    }
    (rows, fits)
}

/// One length: native seconds, the three costs, and their rows.
type Point = (f64, [Option<f64>; 3], Vec<Row>);

fn point(lab: &mut Lab, secs: u64) -> anyhow::Result<Point> {
    let rec = lab.long_recording(secs)?;
    eprintln!("  scaling point {secs} s ({} events)", rec.events);
    let native = rec.native_s;
    let what = format!("{secs} s mix");
    let replays = if secs > 60 { 1 } else { lab.plan.runs.min(3) };
    let mut replay = Vec::new();
    for _ in 0..replays {
        let mut cmd = lab.rewind();
        cmd.arg("replay").arg(&rec.dir);
        replay.push(exec::run_ok(&mut cmd, LONG)?.secs);
    }
    let replay_s = median(&replay);
    let near_end = rec.events.saturating_sub(10);
    let seek = seek_cold(lab, &rec.dir, near_end);
    let mut rows = vec![
        Row::new(
            SECTION,
            format!("{what}: rewind record"),
            Some(native),
            Value::secs(rec.record_s),
        )
        .note(format!(
            "{} events ({:.0}/s), {} trace bytes",
            rec.events,
            rec.events as f64 / rec.record_s,
            rec.bytes
        ))
        .extra("events", rec.events)
        .extra("trace_bytes", rec.bytes),
        Row::new(
            SECTION,
            format!("{what}: rewind replay"),
            Some(native),
            Value::secs(replay_s.unwrap_or(0.0)),
        )
        .samples(&replay),
    ];
    rows.push(match &seek {
        Ok(s) => Row::new(
            SECTION,
            format!("{what}: seek e0 -> e{near_end} in gdb"),
            Some(native),
            Value::secs(*s),
        )
        .note("monitor goto on a fresh stub (cold: no checkpoints yet)"),
        Err(e) => Row::new(
            SECTION,
            format!("{what}: seek e0 -> e{near_end} in gdb"),
            Some(native),
            Value::Failed { error: e.clone() },
        ),
    });
    Ok((native, [Some(rec.record_s), replay_s, seek.ok()], rows))
}

/// `monitor goto eN` on a fresh stub, timed inside gdb.
fn seek_cold(lab: &Lab, trace: &std::path::Path, target: u64) -> Result<f64, String> {
    if let Err(why) = &lab.gdb {
        return Err(format!("unavailable: {why}"));
    }
    let stub = Stub::start(lab, trace, None).map_err(|e| format!("{e:#}"))?;
    let results = stub.session(
        lab,
        &[Step::timed("seek", format!("monitor goto e{target}"))],
        |_| {},
    );
    stub.stop();
    let results = results.map_err(|e| format!("{e:#}"))?;
    let r = gdb::step(&results, "seek")?;
    if r.out.contains("now at") {
        Ok(r.secs)
    } else {
        Err(r.out.trim().to_string())
    }
}
