//! `rewind dump [TRACE] [--json]`: the events one a line, like strace for a recording.

use std::io::{BufWriter, Write};

use anyhow::Context;
use std::path::PathBuf;

use trace::{dump, TraceReader};

/// Arguments of `rewind dump`.
#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    /// The trace directory or packed trace (default: the latest recording).
    pub trace: Option<PathBuf>,
    /// One JSON object per line, for tools.
    #[arg(long)]
    pub json: bool,
    /// Print the header (program, argv, binary, auxv, CPUID) before the events.
    #[arg(long)]
    pub header: bool,
}

fn print_header(out: &mut impl Write, r: &TraceReader) -> std::io::Result<()> {
    let h = r.header();
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    writeln!(
        out,
        "# format {} by rewind {}",
        h.format_version, h.recorder_version
    )?;
    writeln!(out, "# program {}", s(&h.program))?;
    writeln!(
        out,
        "# argv {:?}",
        h.argv.iter().map(|a| s(a)).collect::<Vec<_>>()
    )?;
    writeln!(
        out,
        "# binary {} sha256 {} size {}",
        s(&h.binary.path),
        h.binary.sha256,
        h.binary.size
    )?;
    if let Some(id) = &h.binary.build_id {
        writeln!(
            out,
            "# build-id {}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )?;
    }
    writeln!(
        out,
        "# env {} variables, auxv {} entries, {} initial mappings",
        h.env.len(),
        h.auxv.len(),
        h.initial_mappings.len()
    )?;
    writeln!(
        out,
        "# cpuid {} ({} records), tsc {}, tick ABI {}",
        if h.cpuid.faulting {
            "trapped"
        } else {
            "native (no faulting)"
        },
        h.cpuid.records.len(),
        if h.tsc_trapped { "trapped" } else { "native" },
        h.tick_abi
            .map_or("absent".into(), |t| format!("REWIND_TICKS at {}", t.ticks))
    )?;
    if let Ok(Some(c)) = r.chaos() {
        writeln!(
            out,
            "# chaos seed {} (held signals delayed 1..={} ticks, extra timer interrupts \
             every 1..{} ticks)",
            c.seed,
            1 + c.max_delay,
            2 * c.mean_gap
        )?;
    }
    Ok(())
}

fn dump_events(
    out: &mut impl Write,
    r: &TraceReader,
    json: bool,
) -> anyhow::Result<Option<String>> {
    // A first pass names the first task, so that each event of a recording of more than
    // one task is shown with its task from the start (the stream names it only at the
    // first switch away from it).
    let first = {
        let events = r.events()?;
        dump::first_task(events.map_while(|item| item.ok()).map(|(_, e)| e))
    };
    let mut tasks = dump::Tasks::new(first);
    let mut events = r.events()?;
    // dump is the tool that reads a whole trace: it checks every blob the events refer to.
    let mut blobs = trace::BlobChecker::default();
    for item in events.by_ref() {
        let (i, e) = item?;
        blobs
            .check(r, &e)
            .with_context(|| format!("event {i} refers to a bad blob"))?;
        let task = tasks.on(&e);
        if json {
            serde_json::to_writer(&mut *out, &dump::json(i, task, &e))?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", dump::task_line(i, task, &e))?;
        }
    }
    Ok(r.incomplete_note(&events))
}

/// Runs `rewind dump`.
pub fn run(args: DumpArgs) -> anyhow::Result<()> {
    let dir = super::trace_path(args.trace.as_deref())?;
    let reader = trace::open(&dir)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = (|| -> anyhow::Result<Option<String>> {
        if args.header && !args.json {
            print_header(&mut out, &reader)?;
        }
        let r = dump_events(&mut out, &reader, args.json)?;
        out.flush()?;
        Ok(r)
    })();
    let note = match result {
        Ok(r) => r,
        // `rewind dump | head` is fine.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    if let Some(note) = note {
        eprintln!("rewind: {note}");
    }
    Ok(())
}
