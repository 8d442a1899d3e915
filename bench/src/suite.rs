//! The suite: which sections run and in what order, progress on stderr, the table on
//! stdout and the JSON document at the end.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::lab::{Lab, Plan};
use crate::report::{self, Document, Host, Row};
use crate::{analysis, overhead, record_full, reverse, scaling};

/// A section of the suite (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Native vs rewind record / replay vs strace, trace bytes/s.
    Overhead,
    /// gdb `record full` on smaller runs of the same workloads.
    RecordFull,
    /// Reverse execution through gdb, seeking, checkpoint memory.
    Reverse,
    /// `rewind analyze locks`: probe hits/s, analysis vs replay.
    Analysis,
    /// Record, replay and seek cost against recording length, with slopes.
    Scaling,
}

/// What to run and where the JSON goes.
#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    pub json: Option<PathBuf>,
    /// Empty: every section.
    pub only: Vec<Section>,
}

/// Runs the chosen sections; prints the table; writes the JSON.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut lab = Lab::open(Plan::new(opts.quick))?;
    let wanted = |s: Section| opts.only.is_empty() || opts.only.contains(&s);
    let mut rows: Vec<Row> = Vec::new();
    let mut fits = Vec::new();
    let add = |new: Vec<Row>, rows: &mut Vec<Row>| {
        eprint!("{}", report::table(&new));
        rows.extend(new);
    };
    if wanted(Section::Overhead) {
        eprintln!("== overhead: native vs record / replay / strace");
        add(overhead::run(&lab), &mut rows);
    }
    if wanted(Section::RecordFull) {
        eprintln!("== record-full: gdb record full on small runs");
        add(record_full::run(&lab), &mut rows);
    }
    if wanted(Section::Reverse) {
        eprintln!("== reverse: reverse execution, seek, checkpoint memory");
        add(reverse::run(&mut lab), &mut rows);
    }
    if wanted(Section::Analysis) {
        eprintln!("== analysis: probe hits and analysis time");
        add(analysis::run(&lab), &mut rows);
    }
    if wanted(Section::Scaling) {
        eprintln!("== scaling: cost against recording length");
        let (r, f) = scaling::run(&mut lab);
        add(r, &mut rows);
        fits = f;
    }
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "rewind-bench{}: medians of {} runs unless a note says otherwise; ratio = value / native; {:.0} s wall",
        if opts.quick { " --quick" } else { "" },
        lab.plan.runs,
        wall
    );
    print!("{}", report::table(&rows));
    let doc = Document {
        suite: "rewind-bench",
        version: env!("CARGO_PKG_VERSION"),
        quick: opts.quick,
        runs: lab.plan.runs,
        host: host(),
        started_unix_s: started,
        wall_s: wall,
        rows,
        fits,
    };
    let path = opts
        .json
        .clone()
        .unwrap_or_else(|| lab.target.join("bench.json"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("JSON: {}", path.display());
    Ok(())
}

/// The machine and tool versions.
fn host() -> Host {
    let first_line = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(String::from)
            })
            .unwrap_or_else(|| "unavailable".into())
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Host {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        gdb: first_line("gdb", "--version"),
        strace: first_line("strace", "-V"),
    }
}
