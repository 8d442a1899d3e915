//! `rewind analyze {locks,uaf,provenance,timeline,report} TRACE`: parse, dispatch to the
//! analyzer crate, print or write what it returns. Progress shows on a terminal only.
//! Diagrams are drawn by the built-in renderer unless `--graphviz` asks for graphviz.

use std::path::{Path, PathBuf};

use analyzer::graph::Renderer;
use analyzer::report::{self, Analysis, AnalyzeOptions};
use anyhow::Context;

/// Arguments of `rewind analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    pub what: What,
    /// The guest binary (default: the one the replay runs: the recorded path, or the copy
    /// inside a pack).
    #[arg(long, global = true, value_name = "ELF")]
    pub binary: Option<PathBuf>,
}

/// What to analyze.
#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Lock order (potential deadlocks) and wait-for cycles (actual deadlocks).
    Locks {
        trace: PathBuf,
        /// Write the class graph as DOT.
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
        /// Write the class graph as SVG.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        #[command(flatten)]
        draw: Draw,
    },
    /// KASAN-style report of the crash: the object, its allocation, its free and the
    /// accesses between the free and the crash.
    Uaf { trace: PathBuf },
    /// Walk back from the crash (or the last event at POSITION) to its causes.
    Provenance {
        trace: PathBuf,
        #[arg(long, value_name = "POSITION")]
        at: Option<String>,
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        #[command(flatten)]
        draw: Draw,
    },
    /// Chrome trace JSON (Perfetto) of tasks, interrupts and lock holds.
    Timeline {
        trace: PathBuf,
        #[arg(short, long, value_name = "FILE.json")]
        output: PathBuf,
    },
    /// All of the above in one directory with an index.html.
    Report {
        trace: PathBuf,
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        #[command(flatten)]
        draw: Draw,
    },
}

/// How SVG diagrams are drawn.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Draw {
    /// Draw SVG with graphviz's `dot` (must be on PATH) instead of the built-in renderer.
    #[arg(long)]
    pub graphviz: bool,
}

impl Draw {
    pub fn renderer(self) -> Renderer {
        if self.graphviz {
            Renderer::Graphviz
        } else {
            Renderer::Builtin
        }
    }
}

fn analyze(
    trace: &Path,
    args: &AnalyzeArgs,
    watch: bool,
    verbose: bool,
) -> anyhow::Result<Analysis> {
    let progress = crate::progress::bar("analyzing");
    let a = Analysis::run(
        trace,
        AnalyzeOptions {
            binary: args.binary.clone(),
            watch,
            progress,
        },
    )
    .with_context(|| format!("analyzing {}", trace.display()))?;
    if verbose {
        let s = &a.collection.stats;
        eprintln!(
            "rewind: {} probe hits over {} trace events in {:.3} s ({:.0} hits/s)",
            s.probe_hits,
            s.trace_events,
            s.elapsed.as_secs_f64(),
            s.hits_per_second()
        );
    }
    Ok(a)
}

/// Runs `rewind analyze`.
pub fn run(args: AnalyzeArgs, verbose: bool) -> anyhow::Result<()> {
    match &args.what {
        What::Locks {
            trace,
            dot,
            svg,
            draw,
        } => {
            let a = analyze(trace, &args, false, verbose)?;
            print!("{}", a.locks_text());
            if let Some(f) = dot {
                report::write_file(f, &a.locks_dot())?;
            }
            if let Some(f) = svg {
                report::write_file(f, &a.locks_diagram().to_svg(draw.renderer())?)?;
            }
        }
        What::Uaf { trace } => print!("{}", analyze(trace, &args, true, verbose)?.uaf_text()),
        What::Provenance {
            trace,
            at,
            dot,
            svg,
            draw,
        } => {
            let at = at
                .as_deref()
                .map(str::parse::<replayer::Position>)
                .transpose()?;
            let a = analyze(trace, &args, true, verbose)?;
            print!("{}", a.provenance_text(at.as_ref()));
            if let Some(p) = a.provenance(at.as_ref()) {
                let g = p.graph();
                if let Some(f) = dot {
                    report::write_file(f, &g.to_dot())?;
                }
                if let Some(f) = svg {
                    report::write_file(f, &g.to_svg(draw.renderer())?)?;
                }
            }
        }
        What::Timeline { trace, output } => {
            let a = analyze(trace, &args, false, verbose)?;
            report::write_file(output, &a.timeline_json()?)?;
        }
        What::Report {
            trace,
            output,
            draw,
        } => {
            let a = analyze(trace, &args, true, verbose)?;
            let files = report::write_dir(&a, output, draw.renderer())?;
            println!(
                "wrote {} files to {}; open {}",
                files.len(),
                output.display(),
                output.join("index.html").display()
            );
        }
    }
    Ok(())
}
