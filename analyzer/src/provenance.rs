//! BackTracker-style provenance: from a sink (the crash, or the last event at a chosen
//! position) backwards through what led to it — the faulting load, the object it read,
//! the free of that object (and the interrupt or task that did it), its allocation, the
//! tasks involved and the locks each held at each step. The result is a small dependency
//! graph, printed as text (newest step first, as one reads it backwards) and as DOT.
//!
//! Every node names a replay position, so each step can be jumped to.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::events::{Event, EventKind, Pos, TaskRef};
use crate::graph::{Direction, Graph, Shape, Style};
use crate::kasan::{Finding, KasanReport, ObjSite, ObjectTracker};
use crate::symbols::{site_text, symbol_offset, Resolve};

/// One step of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What kind of step: crash, load, object, free, alloc, irq, task, lock, access, event.
    pub kind: &'static str,
    pub label: String,
    pub pos: Option<Pos>,
    /// Whether it is on the main chain from the sink back to the allocation.
    pub main: bool,
}

/// The provenance graph: nodes in discovery order (the sink first), edges cause → effect.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub nodes: Vec<Node>,
    /// (cause, effect, label).
    pub edges: Vec<(usize, usize, String)>,
    /// Why the walk stopped early, if it did.
    pub note: Option<String>,
}

/// A lock held at one step: class name, instance and where it was taken.
type HeldLock = (String, u64, Pos, Vec<u64>);

/// Locks held by each task just before event `upto` (an index into `events`).
fn held_before(events: &[Event], upto: usize) -> BTreeMap<u32, Vec<HeldLock>> {
    let mut held: BTreeMap<u32, Vec<HeldLock>> = BTreeMap::new();
    for ev in &events[..upto.min(events.len())] {
        match &ev.kind {
            EventKind::LockAcquired(op) => held.entry(ev.task.pid).or_default().push((
                op.class.name.clone(),
                op.addr,
                ev.pos,
                ev.stack.clone(),
            )),
            EventKind::LockRelease(op) => {
                for stack in held.values_mut() {
                    if let Some(i) = stack.iter().rposition(|h| h.1 == op.addr) {
                        stack.remove(i);
                        break;
                    }
                }
            }
            EventKind::TaskExit => {
                held.remove(&ev.task.pid);
            }
            _ => {}
        }
    }
    held
}

struct Builder<'a> {
    p: Provenance,
    res: &'a dyn Resolve,
    events: &'a [Event],
    tasks: BTreeMap<u32, usize>,
    locks: BTreeMap<u64, usize>,
}

impl Builder<'_> {
    fn node(&mut self, kind: &'static str, label: String, pos: Option<Pos>, main: bool) -> usize {
        self.p.nodes.push(Node {
            kind,
            label,
            pos,
            main,
        });
        self.p.nodes.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize, label: &str) {
        self.p.edges.push((from, to, label.to_string()));
    }

    fn task(&mut self, t: &TaskRef) -> usize {
        if let Some(&n) = self.tasks.get(&t.pid) {
            return n;
        }
        let n = self.node("task", format!("task {t}"), None, false);
        self.tasks.insert(t.pid, n);
        n
    }

    /// The task node and the locks it held just before the event at `pos`/`task`.
    fn context(&mut self, step: usize, task: &TaskRef, pos: Pos, verb: &str) {
        let t = self.task(task);
        self.edge(t, step, verb);
        let idx = self
            .events
            .iter()
            .position(|e| e.pos >= pos && e.task.pid == task.pid)
            .unwrap_or(self.events.len());
        let held = held_before(self.events, idx);
        for (name, addr, at, stack) in held.get(&task.pid).cloned().unwrap_or_default() {
            let l = match self.locks.get(&addr) {
                Some(&l) => l,
                None => {
                    let label = format!(
                        "lock {name} ({addr:#x})\ntaken at {}\nposition {at}",
                        site_text(self.res, &stack)
                    );
                    let l = self.node("lock", label, Some(at), false);
                    self.locks.insert(addr, l);
                    l
                }
            };
            self.edge(l, step, "held during");
        }
    }

    fn site(&mut self, kind: &'static str, what: &str, s: &ObjSite) -> usize {
        let ctx = match s.irq {
            Some(irq) => format!(" in irq {irq}"),
            None => String::new(),
        };
        let label = format!(
            "{what} by {}{ctx}\nat {}\nposition {}",
            s.task,
            site_text(self.res, &s.stack),
            s.pos
        );
        let n = self.node(kind, label, Some(s.pos), true);
        self.context(
            n,
            &s.task,
            s.pos,
            if s.irq.is_some() {
                "interrupted"
            } else {
                "ran"
            },
        );
        n
    }

    /// The interrupt being handled at `pos` (the latest IrqEnter before it without exit).
    fn irq_at(&mut self, step: usize, pos: Pos, irq: u32) {
        let idx = self
            .events
            .iter()
            .position(|e| e.pos >= pos)
            .unwrap_or(self.events.len());
        let enter = self.events[..idx]
            .iter()
            .rev()
            .find(|e| matches!(e.kind, EventKind::IrqEnter { irq: i } if i == irq));
        if let Some(e) = enter {
            let name = if irq == 0 { "timer" } else { "I/O" };
            let label = format!(
                "interrupt {irq} ({name}) entered\ninterrupting {}\nposition {}",
                e.task, e.pos
            );
            let n = self.node("irq", label, Some(e.pos), true);
            self.edge(n, step, "handler freed");
        }
    }
}

/// Walks back from `sink` (a crash explained by `kasan`, or any event).
pub fn build(
    events: &[Event],
    tracker: &ObjectTracker,
    kasan: Option<&KasanReport>,
    sink: &Event,
    res: &dyn Resolve,
) -> Provenance {
    let mut b = Builder {
        p: Provenance::default(),
        res,
        events,
        tasks: BTreeMap::new(),
        locks: BTreeMap::new(),
    };
    let sink_label = match (&sink.kind, kasan) {
        (EventKind::Crash(c), Some(k)) => format!(
            "crash: signal {} in {}\nby {}\nposition {}",
            c.signal,
            symbol_offset(res, c.regs.rip),
            k.task,
            sink.pos
        ),
        (kind, _) => format!(
            "{}\nby {}\nat {}\nposition {}",
            event_name(kind),
            sink.task,
            site_text(res, &sink.stack),
            sink.pos
        ),
    };
    let crash = b.node("crash", sink_label, Some(sink.pos), true);
    b.context(crash, &sink.task, sink.pos, "ran");

    let object = match (kasan, &sink.kind) {
        (Some(k), EventKind::Crash(_)) => {
            let mut effect = crash;
            if let Some(i) = &k.insn {
                let n = b.node(
                    "load",
                    format!(
                        "faulting instruction\n{}\n{}",
                        i.text(),
                        symbol_offset(res, i.addr)
                    ),
                    Some(sink.pos),
                    true,
                );
                b.edge(n, effect, "faults");
                effect = n;
            }
            if let Some(Finding::PoisonedPointer {
                reg,
                value,
                load,
                at,
            }) = &k.finding
            {
                let n = b.node(
                    "load",
                    format!(
                        "load of {reg} = {value:#x} (slab poison)\n{}\n{}",
                        load.text(),
                        symbol_offset(res, load.addr)
                    ),
                    *at,
                    true,
                );
                b.edge(n, effect, "pointer used by");
                effect = n;
            }
            if k.object.is_none() {
                b.p.note = k.unexplained.clone();
            }
            k.object.clone().map(|o| (o, effect))
        }
        (_, EventKind::Alloc(op) | EventKind::Free(op)) => {
            tracker.object_at(op.ptr).cloned().map(|o| (o, crash))
        }
        (
            _,
            EventKind::LockAcquire(op) | EventKind::LockAcquired(op) | EventKind::LockRelease(op),
        ) => tracker.object_at(op.addr).cloned().map(|o| (o, crash)),
        _ => None,
    };
    let Some((o, effect)) = object else {
        if b.p.note.is_none() && matches!(sink.kind, EventKind::Crash(_)) {
            b.p.note = Some("the crash involves no object allocated during the recording".into());
        }
        return b.p;
    };
    let state = if o.free.is_some() { "freed" } else { "live" };
    let obj = b.node(
        "object",
        format!(
            "object {:#x} ({} bytes, cache {})\n{state}",
            o.ptr, o.size, o.cache
        ),
        None,
        true,
    );
    b.edge(obj, effect, "read by");
    if let Some(k) = kasan {
        for a in &k.accesses {
            let n = b.node(
                "access",
                format!(
                    "{} of {} bytes at +{}\nby {} at {}\nposition {}",
                    if a.write { "write" } else { "read" },
                    a.size,
                    a.addr.saturating_sub(o.ptr),
                    a.task,
                    a.stack
                        .first()
                        .map_or_else(|| "?".to_string(), |&pc| symbol_offset(res, pc)),
                    a.pos
                ),
                Some(a.pos),
                false,
            );
            b.edge(obj, n, "accessed after free");
        }
    }
    if let Some(f) = &o.free {
        let n = b.site("free", "freed", f);
        b.edge(n, obj, "frees");
        if let Some(irq) = f.irq {
            b.irq_at(n, f.pos, irq);
        }
    }
    let n = b.site("alloc", "allocated", &o.alloc);
    b.edge(n, obj, "allocates");
    b.p
}

fn event_name(k: &EventKind) -> String {
    match k {
        EventKind::LockAcquire(op) => format!("acquire {}", op.class.name),
        EventKind::LockAcquired(op) => format!("acquired {}", op.class.name),
        EventKind::LockRelease(op) => format!("release {}", op.class.name),
        EventKind::LockDependency { from, to, .. } => {
            format!("dependency {} -> {}", from.class.name, to.class.name)
        }
        EventKind::Alloc(op) => format!("alloc {:#x} ({})", op.ptr, op.cache),
        EventKind::Free(op) => format!("free {:#x} ({})", op.ptr, op.cache),
        EventKind::ContextSwitch { prev, next } => format!("switch {prev} -> {next}"),
        EventKind::IrqEnter { irq } => format!("irq {irq} enter"),
        EventKind::IrqExit { irq } => format!("irq {irq} exit"),
        EventKind::TaskExit => "task exit".to_string(),
        EventKind::Crash(c) => format!("crash (signal {})", c.signal),
        EventKind::TaskState(s) => format!("end state {}", s.state.label()),
    }
}

impl Provenance {
    /// Text: the main chain from the sink back, then the context of each step.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str("Provenance (from the crash backwards):\n");
        let mut step = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.main {
                continue;
            }
            let _ = writeln!(
                out,
                "\n#{step} [{}] {}",
                n.kind,
                n.label.replace('\n', "\n    ")
            );
            step += 1;
            for (from, _, label) in self.edges.iter().filter(|(_, to, _)| *to == i) {
                let c = &self.nodes[*from];
                if !c.main {
                    let _ = writeln!(out, "    <- {label}: {}", c.label.replace('\n', "; "));
                }
            }
            for (_, to, label) in self.edges.iter().filter(|(f, _, _)| *f == i) {
                let c = &self.nodes[*to];
                if c.kind == "access" {
                    let _ = writeln!(out, "    -> {label}: {}", c.label.replace('\n', "; "));
                }
            }
        }
        if let Some(n) = &self.note {
            let _ = writeln!(out, "\nThe walk stops here: {n}.");
        }
        out
    }

    /// The graph, for DOT or SVG: the main chain in red, cause → effect.
    pub fn graph(&self) -> Graph {
        let mut g = Graph::new("provenance", Direction::BottomToTop);
        let mut ids = Vec::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            let shape = match n.kind {
                "task" => Shape::Ellipse,
                "lock" => Shape::Octagon,
                "irq" => Shape::Diamond,
                _ => Shape::Box,
            };
            let style = if n.main {
                Style::HIGHLIGHT
            } else {
                Style::PLAIN
            };
            ids.push(g.node(&format!("n{i}"), &n.label, style.with_shape(shape)));
        }
        for (a, b, l) in &self.edges {
            let (Some(&from), Some(&to), Some(na), Some(nb)) = (
                ids.get(*a),
                ids.get(*b),
                self.nodes.get(*a),
                self.nodes.get(*b),
            ) else {
                continue;
            };
            let style = if na.main && nb.main {
                Style {
                    red_line: true,
                    thick: true,
                    ..Style::PLAIN
                }
            } else {
                Style::PLAIN
            };
            g.edge(from, to, l, style);
        }
        g
    }

    /// DOT: the main chain in red, cause → effect.
    pub fn to_dot(&self) -> String {
        self.graph().to_dot()
    }
}
