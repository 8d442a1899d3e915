//! The pure parts of the bench on computed values: the median, the least-squares slope
//! (against points generated from a known line, and against a hand-checked noisy set),
//! the parsers of the tools' summary lines, and the table and JSON a row turns into.

use rewind_bench::analysis::parse_hits;
use rewind_bench::memory::{parse_rollup, parse_stat_ppid};
use rewind_bench::overhead::replayed_events;
use rewind_bench::record_full::short_fn;
use rewind_bench::report::{self, Document, FitReport, Host, Row, Unit, Value};
use rewind_bench::stats::{least_squares, median};
use rewind_bench::workload::compute_jiffies;

#[test]
fn median_of_odd_and_even_counts() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[1.0, f64::NAN]), None);
}

#[test]
fn slope_of_points_on_a_line_is_exact() {
    // Cost = 0.31 s per recorded second + 0.05 s fixed, at the quick scaling lengths.
    let pts: Vec<(f64, f64)> = [2.0, 5.0, 10.0]
        .iter()
        .map(|&x| (x, 0.31 * x + 0.05))
        .collect();
    let f = least_squares(&pts).unwrap();
    assert!((f.slope - 0.31).abs() < 1e-12, "{f:?}");
    assert!((f.intercept - 0.05).abs() < 1e-12, "{f:?}");
    assert!((f.r2 - 1.0).abs() < 1e-12, "{f:?}");
}

#[test]
fn slope_of_noisy_points_matches_the_closed_form() {
    // x = 10, 60, 300; y = 3.2, 18.9, 91.5. Means 123.333…, 37.866…;
    // Sxx = 48066.67, Sxy = 14605.33 → slope 0.303856…, intercept 0.3911…
    let pts = [(10.0, 3.2), (60.0, 18.9), (300.0, 91.5)];
    let f = least_squares(&pts).unwrap();
    let mx = 370.0 / 3.0;
    let my = 113.6 / 3.0;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    assert!((f.slope - sxy / sxx).abs() < 1e-12);
    assert!((f.slope - 0.303_856).abs() < 1e-6, "{f:?}");
    assert!((f.intercept - 0.391_123).abs() < 1e-6, "{f:?}");
    assert!((f.intercept - (my - f.slope * mx)).abs() < 1e-9);
    assert!(f.r2 > 0.999 && f.r2 < 1.0, "{f:?}");
    assert_eq!(least_squares(&[(1.0, 2.0)]), None);
    assert_eq!(least_squares(&[(5.0, 1.0), (5.0, 2.0)]), None);
}

#[test]
fn tool_summary_lines_parse() {
    let h = parse_hits("rewind: 7301 probe hits over 384 trace events in 1.834 s (3981 hits/s)\n")
        .unwrap();
    assert_eq!((h.hits, h.events), (7301, 384));
    assert!((h.secs - 1.834).abs() < 1e-12 && (h.per_s - 3981.0).abs() < 1e-12);
    assert_eq!(
        replayed_events("rewind: replayed 1066 events in 0.070 s; Exited(0)\n"),
        Some(1066)
    );
    assert_eq!(
        compute_jiffies("umk# compute 300\ncompute: 300000 units in 12 jiffies\nx\ncompute: 5 units in 0 jiffies\n"),
        vec![12, 0]
    );
    assert_eq!(
        parse_rollup("00400000-7fff r--p 0 0:0 0 [rollup]\nRss:  2048 kB\nPss:   512 kB\n"),
        (2048, 512)
    );
    assert_eq!(parse_stat_ppid("4242 (umk (x) y) t 17 4242 0"), Some(17));
    assert_eq!(
        short_fn("umk::sync::global::Global<[umk::sched::task::Task; 64]>::with<[umk::sched::task::Task; 64], (), umk::sync::{impl#0}::release::{closure_env#0}>"),
        "umk::sync::global::Global::with"
    );
}

#[test]
fn rows_compute_ratios_and_format_into_the_table_and_json() {
    let native = [0.31, 0.30, 0.33];
    let record = [0.42, 0.40, 0.45];
    let n = median(&native).unwrap();
    let r = median(&record).unwrap();
    let rows =
        vec![
        Row::new("overhead", "umk cpu: rewind record", Some(n), Value::secs(r))
            .samples(&record)
            .native_samples(&native)
            .note("120 events"),
        Row::new(
            "record-full",
            "umk cpu small: gdb record full",
            Some(0.0004),
            Value::AtLeast {
                value: 10.0,
                unit: Unit::Seconds,
            },
        ),
        Row::new(
            "record-full",
            "C: gdb record full",
            Some(0.001),
            Value::Failed {
                error: "Process record does not support instruction 0x62 at address 0x7ffff7f3bf00."
                    .into(),
            },
        ),
        Row::new(
            "overhead",
            "trace bytes/s",
            None,
            Value::Measured {
                value: 2_500_000.0,
                unit: Unit::BytesPerSecond,
            },
        ),
        Row::new(
            "overhead",
            "strace",
            Some(n),
            Value::Unavailable {
                why: "strace not runnable: No such file or directory".into(),
            },
        ),
    ];
    let ratio = rows[0].ratio.unwrap();
    assert!((ratio.value - 0.42 / 0.31).abs() < 1e-12 && !ratio.lower_bound);
    assert!(rows[1].ratio.unwrap().lower_bound);
    assert!((rows[1].ratio.unwrap().value - 25_000.0).abs() < 1e-6);
    assert!(rows[2].ratio.is_none() && rows[3].ratio.is_none());

    let t = report::table(&rows);
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines[0].starts_with("name") && lines[0].contains("native") && lines[0].contains("ratio")
    );
    let rec = lines.iter().find(|l| l.contains("rewind record")).unwrap();
    assert!(
        rec.contains("310.00 ms") && rec.contains("420.00 ms") && rec.contains("1.35x"),
        "{t}"
    );
    let rf = lines.iter().find(|l| l.contains("small")).unwrap();
    assert!(
        rf.contains(">= 10.000 s") && rf.contains(">= 25000x"),
        "{t}"
    );
    // A long error is cut in the value column but whole in the note.
    let err = lines.iter().find(|l| l.starts_with("C: gdb")).unwrap();
    assert!(
        err.contains("error: Process record does not support in..."),
        "{t}"
    );
    assert!(
        err.contains("instruction 0x62 at address 0x7ffff7f3bf00."),
        "{t}"
    );
    assert!(
        t.contains("2.50 MB/s") && t.contains("unavailable: strace not runnable"),
        "{t}"
    );
    // Sections are separated by a blank line.
    assert!(t.contains("\n\n"), "{t}");

    let doc = Document {
        suite: "rewind-bench",
        version: "0",
        quick: true,
        runs: 3,
        host: Host {
            cpus: 2,
            kernel: "6.1".into(),
            cpu_model: "test".into(),
            gdb: "GNU gdb 13.1".into(),
            strace: "strace 6.1".into(),
        },
        started_unix_s: 0,
        wall_s: 1.5,
        rows,
        fits: vec![FitReport {
            name: "record".into(),
            points: vec![(2.0, 0.67), (5.0, 1.6)],
            fit: least_squares(&[(2.0, 0.67), (5.0, 1.6)]),
        }],
    };
    let v: serde_json::Value = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
    let row0 = &v["rows"][0];
    assert_eq!(row0["value"]["kind"], "measured");
    assert_eq!(row0["value"]["unit"], "seconds");
    assert_eq!(row0["value"]["value"], 0.42);
    assert_eq!(row0["native_s"], 0.31);
    assert_eq!(row0["samples"].as_array().unwrap().len(), 3);
    assert_eq!(v["rows"][1]["value"]["kind"], "at_least");
    assert_eq!(v["rows"][1]["ratio"]["lower_bound"], true);
    assert_eq!(v["rows"][2]["value"]["kind"], "failed");
    assert_eq!(v["rows"][4]["value"]["kind"], "unavailable");
    assert!(v["rows"][3]["native_s"].is_null());
    let slope = v["fits"][0]["fit"]["slope"].as_f64().unwrap();
    assert!((slope - 0.31).abs() < 1e-9, "{slope}");
}
