//! The recordings a user has, as rr's `ls`/`rm` and `rr replay`'s header show them:
//! `rewind ls` (the trace directory's recordings, newest last), `rewind rm NAME…` (only
//! ever a trace directory), `rewind info [TRACE]` (what it ran, on which CPU, with which
//! chaos seed, and how it ended), `rewind ps [TRACE]` (its processes, as `rr ps` lists
//! them: the pids `replay -p` and `gdb -p` take).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use trace::{Event, ExitStatus, TraceReader};

/// Arguments of `rewind ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// The directory holding the traces (default: $XDG_DATA_HOME/rewind or
    /// ~/.local/share/rewind, where `record` puts them).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of `rewind rm`.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Traces to delete: names in the trace directory (as `ls` prints them, or `latest`)
    /// or paths. Anything that is not a trace directory is refused.
    #[arg(required = true, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
    /// The directory holding the traces (default: as for `ls`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of `rewind info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The trace directory or packed trace (default: the latest recording).
    pub trace: Option<PathBuf>,
}

/// Arguments of `rewind ps`.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// The trace directory or packed trace (default: the latest recording).
    pub trace: Option<PathBuf>,
}

/// The trace directory `--dir` names, or the default one.
fn root(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(recorder::tracedir::default_root)
}

/// Whether `dir` is a trace directory (closed or still being written).
fn is_trace_dir(dir: &Path) -> bool {
    dir.join(trace::version::VERSION_FILE).is_file()
        || dir.join(trace::version::INCOMPLETE_FILE).is_file()
}

/// One line of `ls`.
struct Listed {
    name: String,
    /// When its header was written: orders recordings started in the same second.
    created: Option<std::time::SystemTime>,
    program: String,
    started: u64,
    events: String,
    bytes: u64,
    state: String,
}

/// Runs `rewind ls`.
pub fn ls(args: LsArgs) -> Result<()> {
    let root = root(args.dir);
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "rewind: no recordings yet ({} does not exist); `rewind record -- PROGRAM` makes one",
                root.display()
            );
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("listing {}", root.display())),
    };
    let latest = std::fs::read_link(root.join("latest")).ok();
    let mut rows = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", root.display()))?
            .path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name.filter(|n| n != "latest" && !n.starts_with('.')) else {
            continue;
        };
        if !path.is_dir() || path.is_symlink() || !is_trace_dir(&path) {
            continue;
        }
        rows.push(listed(name, &path));
    }
    rows.sort_by(|a, b| (a.started, a.created, &a.name).cmp(&(b.started, b.created, &b.name)));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<24} {:<19} {:>8} {:>9}  {:<10} PROGRAM",
        "NAME", "STARTED (UTC)", "EVENTS", "SIZE", "STATE"
    )?;
    for r in &rows {
        let is_latest = latest.as_deref() == Some(Path::new(&r.name));
        let mark = if is_latest { "  (latest)" } else { "" };
        writeln!(
            out,
            "{:<24} {:<19} {:>8} {:>9}  {:<10} {}{mark}",
            r.name,
            utc(r.started),
            r.events,
            human_bytes(r.bytes),
            r.state,
            r.program
        )?;
    }
    if rows.is_empty() {
        eprintln!("rewind: no recordings in {}", root.display());
    }
    Ok(())
}

fn listed(name: String, path: &Path) -> Listed {
    let bytes = disk_bytes(path);
    let created = std::fs::metadata(path.join(trace::version::HEADER_FILE))
        .and_then(|m| m.modified())
        .ok();
    match TraceReader::open(path) {
        Ok(r) => Listed {
            name,
            created,
            program: shown(&r.header().program),
            started: r.header().started_unix,
            events: r
                .end_record()
                .map_or_else(|| "?".to_string(), |e| e.events.to_string()),
            bytes,
            state: if r.is_complete() {
                "complete".into()
            } else {
                "incomplete".into()
            },
        },
        Err(e) => Listed {
            name,
            created,
            program: format!("(unreadable: {e})"),
            started: 0,
            events: "?".into(),
            bytes,
            state: "unreadable".into(),
        },
    }
}

/// Bytes a file or directory tree takes (file lengths; links not followed).
fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .map(|e| disk_bytes(&e.path()))
            .sum()
    })
}

/// Runs `rewind rm`.
pub fn rm(args: RmArgs) -> Result<()> {
    let root = root(args.dir);
    let latest_link = root.join("latest");
    for given in &args.traces {
        // A bare name is a trace in the trace directory; anything with a slash a path.
        let path = if given.components().count() == 1 && !given.exists() {
            root.join(given)
        } else {
            given.clone()
        };
        let real = std::fs::canonicalize(&path).with_context(|| {
            format!("{}: no such trace (`rewind ls` lists them)", path.display())
        })?;
        if !real.is_dir() || !is_trace_dir(&real) {
            bail!(
                "{} is not a trace directory (it has no `version` or `incomplete` file); \
                 rewind rm deletes only traces",
                path.display()
            );
        }
        let was_latest = std::fs::canonicalize(&latest_link).is_ok_and(|l| l == real);
        std::fs::remove_dir_all(&real).with_context(|| format!("deleting {}", real.display()))?;
        if was_latest {
            std::fs::remove_file(&latest_link)
                .with_context(|| format!("removing {}", latest_link.display()))?;
        }
        eprintln!("rewind: deleted {}", real.display());
    }
    Ok(())
}

/// What the events say about the run, gathered in one pass.
struct Ending {
    events: u64,
    tree: trace::TaskTree,
    execs: Vec<trace::BinaryId>,
    signals: u64,
    aborted: Option<String>,
    incomplete: Option<String>,
}

impl Ending {
    /// The recording ends when its first task does; the others' exits come before.
    fn ended(&self) -> Option<ExitStatus> {
        self.tree.processes[0].exit
    }
}

fn ending(r: &TraceReader) -> Result<Ending> {
    let mut tree = trace::TaskTreeBuilder::new(r.version());
    let (mut n, mut execs, mut signals, mut aborted) = (0, Vec::new(), 0, None);
    let mut events = r.events()?;
    for item in events.by_ref() {
        let (_, event) = item?;
        n += 1;
        tree.push(&event);
        match event {
            Event::Exec(x) => execs.push(x.binary),
            Event::Signal(_) => signals += 1,
            Event::Aborted { reason } => aborted = Some(reason),
            _ => {}
        }
    }
    Ok(Ending {
        events: n,
        tree: tree.finish(),
        execs,
        signals,
        aborted,
        incomplete: r.incomplete_note(&events),
    })
}

/// Runs `rewind ps`: one line a process, rr's columns and then Rewind's.
pub fn ps(args: PsArgs) -> Result<()> {
    let dir = super::trace_path(args.trace.as_deref())?;
    let r = trace::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let e = ending(&r)?;
    let t = &e.tree;
    let mut out = std::io::stdout().lock();
    if !t.threads_known {
        writeln!(
            out,
            "rewind: this recording (format {}) does not say which new tasks are threads; \
             each is listed as a process",
            r.version()
        )?;
    }
    writeln!(
        out,
        "{:<8}{:<8}{:<12}{:<9}{:<16}CMD",
        "PID", "PPID", "EXIT", "THREADS", "EVENTS"
    )?;
    let pid = |p: &trace::tasks::Process| p.pid.map_or("?".into(), |v| v.to_string());
    for p in &t.processes {
        let ppid = p.parent.map_or("--".into(), |q| pid(&t.processes[q]));
        let exit = match p.exit {
            Some(ExitStatus::Exited(c)) => c.to_string(),
            Some(ExitStatus::Signaled { signo, .. }) => format!("signal {signo}"),
            None => "--".into(),
        };
        // A process that never exec'd runs its creator's program.
        let mut q = Some(p);
        let cmd = loop {
            match q {
                Some(x) => match x.program() {
                    Some(path) => break shown(path),
                    None => q = x.parent.map(|k| &t.processes[k]),
                },
                None => {
                    let h = r.header();
                    let argv: Vec<String> = h.argv.iter().map(|a| shown(a)).collect();
                    break argv.join(" ");
                }
            }
        };
        let events = format!("e{}..e{}", p.events.start, p.events.end);
        writeln!(
            out,
            "{:<8}{:<8}{:<12}{:<9}{:<16}{cmd}",
            pid(p),
            ppid,
            exit,
            p.tasks.len(),
            events
        )?;
    }
    Ok(())
}

/// Runs `rewind info`.
pub fn info(args: InfoArgs) -> Result<()> {
    let dir = super::trace_path(args.trace.as_deref())?;
    // `latest` is a link: name the trace it points to.
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let r = trace::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let h = r.header();
    let s = shown;
    let e = ending(&r)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "trace      {}{} (format {}, recorded by rewind {})",
        dir.display(),
        if r.is_packed() { ", packed" } else { "" },
        r.version(),
        h.recorder_version
    )?;
    writeln!(out, "program    {}", s(&h.program))?;
    let argv: Vec<String> = h.argv.iter().map(|a| s(a)).collect();
    writeln!(out, "argv       {}", argv.join(" "))?;
    writeln!(out, "cwd        {}", s(&h.cwd))?;
    writeln!(out, "started    {} UTC", utc(h.started_unix))?;
    writeln!(out, "binary     {}", binary_line(&h.binary))?;
    if let Some(script) = &h.script {
        writeln!(out, "script     #!{}", s(&script.interpreter))?;
    }
    for b in &e.execs {
        writeln!(out, "exec       {}", binary_line(b))?;
    }
    writeln!(out, "cpu        {}", cpu_line(h))?;
    if let Some(abi) = &h.tick_abi {
        writeln!(
            out,
            "guest      exports the execution-point ABI (REWIND_TICKS at {:#x})",
            abi.ticks.0
        )?;
    }
    match r.chaos()? {
        Some(c) => writeln!(
            out,
            "chaos      seed {} (max delay {} ticks, mean gap {} ticks)",
            c.seed, c.max_delay, c.mean_gap
        )?,
        None => writeln!(out, "chaos      none")?,
    }
    let (tasks, processes) = (e.tree.tasks.len(), e.tree.processes.len());
    writeln!(
        out,
        "events     {} ({} asynchronous signals, {} task{} in {} process{})",
        e.events,
        e.signals,
        tasks,
        if tasks == 1 { "" } else { "s" },
        processes,
        if processes == 1 { "" } else { "es" }
    )?;
    let ended = match (&e.ended(), &e.aborted, &e.incomplete) {
        (Some(x), _, _) => x.to_string(),
        (None, Some(why), _) => format!("stopped by the recorder: {why}"),
        (None, None, Some(note)) => note.clone(),
        (None, None, None) => "without an exit event".into(),
    };
    writeln!(out, "ended      {ended}")?;
    Ok(())
}

fn binary_line(b: &trace::BinaryId) -> String {
    let mut line = format!("{} ({} bytes, sha256 {}", shown(&b.path), b.size, b.sha256);
    if let Some(id) = &b.build_id {
        line.push_str(", build-id ");
        line.extend(id.iter().map(|x| format!("{x:02x}")));
    }
    line.push(')');
    line
}

/// The CPU's vendor and brand strings from the recorded CPUID answers, and how CPUID and
/// the TSC were handled.
fn cpu_line(h: &trace::Header) -> String {
    let mut line = match (h.cpuid.vendor(), h.cpuid.brand()) {
        (Some(v), Some(b)) => format!("{v}, {b}"),
        (Some(v), None) => v,
        (None, _) => "unknown".into(),
    };
    line.push_str(if h.cpuid.faulting {
        "; cpuid trapped"
    } else {
        "; cpuid ran natively (replay needs this CPU model)"
    });
    line.push_str(if h.tsc_trapped {
        "; rdtsc trapped"
    } else {
        "; rdtsc untrapped"
    });
    if let Some(cpu) = h.cpu {
        line.push_str(&format!("; pinned to cpu {cpu}"));
    }
    line
}

/// Bytes a trace holds (a path, an argument) as text for a terminal: the trace is
/// someone else's, so control characters (an escape sequence) are shown escaped, not sent.
fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(bytes).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` for seconds since the epoch, in UTC.
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar), by
    // counting 400-year eras from 0000-03-01 so that leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `1.2 MiB`, `540 KiB`, `800 B`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traces_control_characters_are_shown_not_sent() {
        assert_eq!(shown(b"umk\x1b[2J\n"), "umk\\u{1b}[2J\\n");
        assert_eq!(shown("caf\u{e9} ok".as_bytes()), "caf\u{e9} ok");
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        // 2000-02-29 was a leap day (divisible by 400).
        assert_eq!(utc(951_782_400 + 3_661), "2000-02-29 01:01:01");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(800), "800 B");
        assert_eq!(human_bytes(555_896), "543 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
