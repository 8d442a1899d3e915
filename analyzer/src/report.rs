//! One analysis of one trace and everything it writes: the lock report (text, DOT, SVG),
//! the use-after-free report, the provenance graph, the Chrome trace, and the report
//! directory whose `index.html` shows the diagrams inline and turns every replay
//! position into the commands that jump there. The diagrams are drawn by the renderer
//! asked for (the built-in one unless graphviz is).
//!
//! Nothing written depends on the host, the time or the absolute path of the guest, so
//! the same trace (named the same way) gives byte-identical files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::chrome::ChromeTrace;
use crate::collect::{self, CollectOptions, Collection};
use crate::error::{Error, Result};
use crate::events::{Event, EventKind, Pos};
use crate::graph::{Graph, Renderer};
use crate::kasan::{KasanReport, ObjectTracker, NO_CRASH};
use crate::lockdep::LockReport;
use crate::provenance::{self, Provenance};
use crate::symbols::{Binary, Resolve};
use crate::watch;

/// How to analyze.
#[derive(Default)]
pub struct AnalyzeOptions {
    pub binary: Option<PathBuf>,
    /// Watch the freed object between its free and the crash (a second, targeted replay).
    pub watch: bool,
    pub progress: Option<Box<dyn FnMut(u64, u64)>>,
}

/// A collected and analyzed trace.
pub struct Analysis {
    /// The trace as the user named it (used in the commands the report prints).
    pub trace: PathBuf,
    pub collection: Collection,
    pub sym: Binary,
    pub locks: LockReport,
    pub tracker: ObjectTracker,
    pub kasan: Option<KasanReport>,
    /// Words watched after the free, for the report's note on the debug-register limit.
    pub watched: Vec<u64>,
    /// Why the object was inferred rather than read off the faulting load, if it was.
    pub object_note: Option<String>,
}

/// When the poisoned pointer reached the faulting load through a stack copy (an
/// un-inlined accessor in a debug build), the load names a stack slot, not the object.
/// Slab poison can only come from a freed object, so name the most recently freed object
/// the crashing task had allocated, and say that it was inferred.
fn probable_object(tracker: &ObjectTracker, k: &mut KasanReport) -> Option<String> {
    if k.object.is_some()
        || !matches!(
            k.finding,
            Some(crate::kasan::Finding::PoisonedPointer { .. })
        )
    {
        return None;
    }
    let o = tracker
        .objects()
        .iter()
        .filter(|o| o.alloc.task == k.task && o.alloc.irq.is_none())
        // Freed behind the task's back: by an interrupt or by another task.
        .filter(|o| {
            o.free
                .as_ref()
                .is_some_and(|f| f.irq.is_some() || f.task != o.alloc.task)
        })
        .filter(|o| o.free.as_ref().is_some_and(|f| f.pos <= k.crash_pos))
        .max_by_key(|o| o.free.as_ref().map(|f| f.pos))?;
    let note = format!(
        "The faulting pointer was read from a stack slot (its value is slab poison, copied there from freed memory), so the object is inferred: the most recently freed object that {} allocated and an interrupt or another task freed, at {:#x}.",
        k.task, o.ptr
    );
    k.object = Some(o.clone());
    k.access = None;
    k.unexplained = None;
    Some(note)
}

impl Analysis {
    /// Replays `trace` with probes, then runs every engine.
    pub fn run(trace: &Path, opts: AnalyzeOptions) -> Result<Analysis> {
        let (collection, sym) = collect::collect(
            trace,
            CollectOptions {
                binary: opts.binary.clone(),
                exact_positions: false,
                progress: opts.progress,
            },
        )?;
        let locks = LockReport::from_events(&collection.events);
        let mut tracker = ObjectTracker::new();
        // Objects as they were at the crash: what the panic path does after it is noise.
        let crash_idx = collection
            .events
            .iter()
            .position(|e| matches!(e.kind, EventKind::Crash(_)));
        let upto = crash_idx.map_or(collection.events.len(), |i| i + 1);
        for ev in &collection.events[..upto] {
            tracker.feed(ev);
        }
        let mut kasan = crash_idx.and_then(|i| {
            let crash = &collection.events[i];
            let EventKind::Crash(c) = &crash.kind else {
                return None;
            };
            KasanReport::build(
                &tracker,
                crash,
                sym.function_code(c.regs.rip),
                collection.poison_load.as_ref(),
                &[],
            )
        });
        let mut watched = Vec::new();
        let mut object_note = None;
        if let Some(k) = kasan.as_mut() {
            object_note = probable_object(&tracker, k);
        }
        if let (true, Some(k)) = (opts.watch, kasan.as_mut()) {
            if let Some(o) = k.object.clone() {
                if let Some(f) = &o.free {
                    let fault = k.access.map_or(o.ptr, |a| a.0);
                    watched = watch::watched_words(&o, fault);
                    let mut tl = collect::timeline(trace)?;
                    k.accesses = watch::watch_object(
                        &mut tl,
                        &sym,
                        trace,
                        &watched,
                        &f.pos,
                        o.ptr,
                        &k.crash_pos,
                    )?;
                    // The read of the poisoned pointer out of the object, when only the
                    // stack copy it went through was known.
                    if object_note.is_some() {
                        let mine = k
                            .accesses
                            .iter()
                            .rev()
                            .find(|a| a.task == k.task && !a.write);
                        k.access = mine.map(|a| (a.addr, a.size, false));
                    }
                }
            }
        }
        Ok(Analysis {
            trace: trace.to_path_buf(),
            collection,
            sym,
            locks,
            tracker,
            kasan,
            watched,
            object_note,
        })
    }

    fn res(&self) -> &dyn Resolve {
        &self.sym
    }

    /// The lock report in lockdep's layout.
    pub fn locks_text(&self) -> String {
        self.locks.render_text(self.res())
    }

    /// The lock class graph, every class (DOT).
    pub fn locks_graph(&self) -> Graph {
        self.locks.graph(self.res())
    }

    pub fn locks_dot(&self) -> String {
        self.locks_graph().to_dot()
    }

    /// The lock class graph to draw (SVG): around the potential deadlocks when it is
    /// too large to draw whole.
    pub fn locks_diagram(&self) -> Graph {
        self.locks.diagram(self.res())
    }

    /// The use-after-free report, or a plain statement that there was no crash.
    pub fn uaf_text(&self) -> String {
        let Some(k) = &self.kasan else {
            return NO_CRASH.to_string();
        };
        let mut out = k.render_text(self.res());
        if let Some(n) = &self.object_note {
            let _ = writeln!(out, "{n}");
        }
        if k.is_use_after_free() {
            let words: Vec<String> = self.watched.iter().map(|w| format!("{w:#x}")).collect();
            let _ = writeln!(
                out,
                "Accesses were watched with {} hardware watchpoint{} of 8 bytes ({}): the CPU has {} debug-register slots, so accesses to other words of the object are not listed.",
                self.watched.len(),
                if self.watched.len() == 1 { "" } else { "s" },
                if words.is_empty() { "none".to_string() } else { words.join(", ") },
                watch::WATCH_SLOTS
            );
        }
        out
    }

    /// The crash, or the last event at or before `at`.
    pub fn sink(&self, at: Option<&Pos>) -> Option<&Event> {
        let evs = &self.collection.events;
        let crash = evs.iter().find(|e| matches!(e.kind, EventKind::Crash(_)));
        match (at, crash) {
            (None, c) => c,
            (Some(p), Some(c)) if c.pos <= *p => Some(c),
            (Some(p), _) => evs
                .iter()
                .rev()
                .find(|e| e.pos <= *p && !matches!(e.kind, EventKind::TaskState(_))),
        }
    }

    /// The provenance graph from the crash (or the state at `at`).
    pub fn provenance(&self, at: Option<&Pos>) -> Option<Provenance> {
        let sink = self.sink(at)?;
        let kasan = match sink.kind {
            EventKind::Crash(_) => self.kasan.as_ref(),
            _ => None,
        };
        Some(provenance::build(
            &self.collection.events,
            &self.tracker,
            kasan,
            sink,
            self.res(),
        ))
    }

    /// Provenance as text, or why there is none.
    pub fn provenance_text(&self, at: Option<&Pos>) -> String {
        match self.provenance(at) {
            Some(p) => p.render_text(),
            None => match at {
                Some(p) => format!("No event at or before {p}: nothing to trace back.\n"),
                None => NO_CRASH.to_string(),
            },
        }
    }

    /// Chrome trace JSON.
    pub fn timeline_json(&self) -> Result<String> {
        let mut c = ChromeTrace::new();
        for ev in &self.collection.events {
            c.feed(ev);
        }
        c.to_json()
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a text file (creating its directory).
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write(path, text)
}

/// Everything in one directory: locks.txt/.dot/.svg, uaf.txt, provenance.txt/.dot/.svg,
/// timeline.json and index.html, the SVGs drawn by `renderer`. Returns the files written,
/// in order.
pub fn write_dir(a: &Analysis, dir: &Path, renderer: Renderer) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut put = |name: &str, text: &str| -> Result<()> {
        let p = dir.join(name);
        write_file(&p, text)?;
        files.push(p);
        Ok(())
    };
    let locks = a.locks_text();
    let locks_dot = a.locks_dot();
    put("locks.txt", &locks)?;
    // The DOT first: a diagram too large to draw here is still there to render.
    put("locks.dot", &locks_dot)?;
    let locks_svg = a.locks_diagram().to_svg(renderer)?;
    put("locks.svg", &locks_svg)?;
    let uaf = a.uaf_text();
    put("uaf.txt", &uaf)?;
    let prov = a.provenance(None);
    let prov_text = a.provenance_text(None);
    put("provenance.txt", &prov_text)?;
    let prov_svg = match &prov {
        Some(p) => {
            let g = p.graph();
            let dot = g.to_dot();
            put("provenance.dot", &dot)?;
            let svg = g.to_svg(renderer)?;
            put("provenance.svg", &svg)?;
            Some(svg)
        }
        None => None,
    };
    put("timeline.json", &a.timeline_json()?)?;
    let html = index_html(a, &locks, &locks_svg, &uaf, &prov_text, prov_svg.as_deref());
    put("index.html", &html)?;
    Ok(files)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether `w` is a replay position as reports print them (`e12`, `e12+t3`, `e1+t2+s3`).
fn as_position(w: &str) -> Option<Pos> {
    let w = w.trim_end_matches([',', ')', '.', ':', ';']);
    if !w.starts_with('e') || w.len() < 2 || !w.as_bytes()[1].is_ascii_digit() {
        return None;
    }
    w.parse().ok()
}

/// Escaped text with every position linked to its jump commands (anchor `#pos-...`).
fn link_positions(text: &str, used: &mut std::collections::BTreeSet<Pos>) -> String {
    let mut out = String::new();
    for (li, line) in text.split('\n').enumerate() {
        if li > 0 {
            out.push('\n');
        }
        for (wi, word) in line.split(' ').enumerate() {
            if wi > 0 {
                out.push(' ');
            }
            match as_position(word) {
                Some(p) => {
                    used.insert(p);
                    let core = p.to_string();
                    let rest = &word[core.len().min(word.len())..];
                    let _ = write!(
                        out,
                        "<a href=\"#pos-{core}\" title=\"rewind gdb TRACE --at {core}\">{core}</a>{}",
                        html_escape(rest)
                    );
                }
                None => out.push_str(&html_escape(word)),
            }
        }
    }
    out
}

/// Drops the XML prolog (and the DOCTYPE graphviz writes), so the SVG can sit inside HTML.
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

fn index_html(
    a: &Analysis,
    locks: &str,
    locks_svg: &str,
    uaf: &str,
    prov: &str,
    prov_svg: Option<&str>,
) -> String {
    let trace = a.trace.display().to_string();
    let mut used = std::collections::BTreeSet::new();
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n");
    let _ = writeln!(h, "<title>rewind analyze: {}</title>", html_escape(&trace));
    h.push_str("<style>body{font-family:sans-serif;margin:2em} pre{background:#f6f6f6;padding:1em;overflow:auto} code{background:#eee} .svg{overflow:auto;border:1px solid #ccc}</style>\n</head><body>\n");
    let _ = writeln!(
        h,
        "<h1>Analysis of <code>{}</code></h1>",
        html_escape(&trace)
    );
    let _ = writeln!(
        h,
        "<p>{} probe events. Every position links to the commands that jump there. Files: <a href=\"locks.txt\">locks.txt</a>, <a href=\"locks.dot\">locks.dot</a>, <a href=\"uaf.txt\">uaf.txt</a>, <a href=\"provenance.txt\">provenance.txt</a>, <a href=\"timeline.json\">timeline.json</a> (open in <a href=\"https://ui.perfetto.dev\">Perfetto</a>).</p>",
        a.collection.events.len()
    );
    h.push_str("<h2>Lock order</h2>\n<div class=\"svg\">\n");
    h.push_str(inline_svg(locks_svg));
    h.push_str("</div>\n<pre>");
    h.push_str(&link_positions(locks, &mut used));
    h.push_str("</pre>\n<h2>Use-after-free</h2>\n<pre>");
    h.push_str(&link_positions(uaf, &mut used));
    h.push_str("</pre>\n<h2>Provenance</h2>\n");
    if let Some(svg) = prov_svg {
        h.push_str("<div class=\"svg\">\n");
        h.push_str(inline_svg(svg));
        h.push_str("</div>\n");
    }
    h.push_str("<pre>");
    h.push_str(&link_positions(prov, &mut used));
    h.push_str("</pre>\n<h2>Positions</h2>\n<table>\n");
    for p in &used {
        let _ = writeln!(
            h,
            "<tr id=\"pos-{p}\"><td><code>{p}</code></td><td><code>rewind replay -i {t}</code> then <code>goto {p}</code></td><td><code>rewind gdb {t} --at {p}</code></td></tr>",
            t = html_escape(&trace)
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}
