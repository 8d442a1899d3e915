//! The lock-order engine, with lockdep's semantics: lock classes and their instances,
//! per-task stacks of held locks, a dependency edge class A → class B each time B is
//! taken while A is the innermost lock held in the same context (keeping the first stack,
//! task and replay position of each edge), order cycles of any length, recursive locking,
//! irq-inconsistent usage and locks held at task exit. Those are *potential* deadlocks.
//! Kept apart is the *actual* verdict: a wait-for cycle among the tasks blocked at the end
//! of the recording (blocked task → lock → owner), or a task waiting on a lock it owns.
//!
//! Reports follow lockdep's layout so a kernel developer reads them without a manual;
//! what Rewind adds is a replay position beside every site. Everything is kept in ordered
//! maps and classes are numbered in order of first use, so output is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::{Error, Result};
use crate::events::{
    Ctx, Event, EventKind, LockClass, LockKind, LockOp, Pos, TaskEnd, TaskRef, TaskState, WaitKind,
};
use crate::symbols::{format_stack, site_location, site_text, Resolve};

/// Index of a lock class, in order of first use.
pub type ClassId = usize;

/// Where and by whom something was done: the first-seen record lockdep keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub pos: Pos,
    pub task: TaskRef,
    pub stack: Vec<u64>,
    /// The lock instance involved.
    pub addr: u64,
}

impl Site {
    fn of(ev: &Event, addr: u64) -> Site {
        Site {
            pos: ev.pos,
            task: ev.task.clone(),
            stack: ev.stack.clone(),
            addr,
        }
    }
}

/// A lock class and what was seen of it.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    pub class: LockClass,
    pub kind: LockKind,
    /// Lock header addresses seen with this class.
    pub instances: BTreeSet<u64>,
    /// First acquisition in interrupt context (lockdep's IN-HARDIRQ-W).
    pub in_irq: Option<Site>,
    /// First acquisition in task context with interrupts enabled (HARDIRQ-ON-W).
    pub irq_on: Option<Site>,
    pub acquisitions: u64,
}

/// A dependency: `to` was taken while `from` was held.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: ClassId,
    pub to: ClassId,
    /// The first acquisition of `to` with `from` held.
    pub first: Site,
    /// Where `from` had been taken at that moment.
    pub from_site: Site,
    pub count: u64,
}

/// A held lock.
#[derive(Debug, Clone)]
pub struct Held {
    pub class: ClassId,
    pub in_irq: bool,
    /// The acquisition that took it (addr is the instance).
    pub site: Site,
}

/// An order cycle: `classes[0] → classes[1] → … → classes[0]`, rotated to start at the
/// smallest class id. `closing` is the index of the edge `classes[i] → classes[i+1]`
/// seen last: the acquisition at which lockdep would have fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub classes: Vec<ClassId>,
    pub closing: usize,
}

impl Cycle {
    /// The edges of the cycle in order, as (from, to).
    pub fn edges(&self) -> Vec<(ClassId, ClassId)> {
        let n = self.classes.len();
        (0..n)
            .map(|i| (self.classes[i], self.classes[(i + 1) % n]))
            .collect()
    }
}

/// "possible recursive locking detected": a class taken while the same task holds it.
#[derive(Debug, Clone)]
pub struct Recursive {
    pub class: ClassId,
    pub held: Site,
    pub attempt: Site,
    pub held_locks: Vec<Held>,
}

/// Lockdep's irq usage states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqUsage {
    /// Taken in interrupt context.
    InHardirq,
    /// Taken in task context with interrupts enabled.
    HardirqOn,
}

impl IrqUsage {
    pub fn label(self) -> &'static str {
        match self {
            IrqUsage::InHardirq => "IN-HARDIRQ-W",
            IrqUsage::HardirqOn => "HARDIRQ-ON-W",
        }
    }
}

/// "inconsistent lock state": a class used in interrupt context and also taken with
/// interrupts enabled, so the interrupt can arrive while the task holds it.
#[derive(Debug, Clone)]
pub struct IrqInversion {
    pub class: ClassId,
    pub first: (IrqUsage, Site),
    pub second: (IrqUsage, Site),
    pub ctx: Ctx,
    pub held_locks: Vec<Held>,
}

/// A task that exited holding locks.
#[derive(Debug, Clone)]
pub struct HeldAtExit {
    pub task: TaskRef,
    pub pos: Pos,
    pub stack: Vec<u64>,
    pub locks: Vec<Held>,
}

/// One link of a wait-for chain: `task` is blocked on `lock`, owned by `owner`.
#[derive(Debug, Clone)]
pub struct WaitLink {
    pub task: TaskRef,
    pub state: TaskState,
    pub lock: u64,
    pub lock_name: String,
    pub class: Option<ClassId>,
    pub owner: TaskRef,
    /// The task's last attempt to take the lock (its `umk_lock_acquire`).
    pub waiting_since: Option<Site>,
    /// The owner's acquisition of the lock.
    pub owner_took: Option<Site>,
}

/// A wait-for cycle at the end of the recording; one link is a self-deadlock.
#[derive(Debug, Clone)]
pub struct ActualDeadlock {
    pub links: Vec<WaitLink>,
}

/// The engine: feed it every event in replay order, then [`Lockdep::finish`].
#[derive(Debug, Default)]
pub struct Lockdep {
    classes: Vec<ClassInfo>,
    class_ids: BTreeMap<LockClass, ClassId>,
    edges: BTreeMap<(ClassId, ClassId), Edge>,
    held: BTreeMap<u32, Vec<Held>>,
    tasks: BTreeMap<u32, TaskRef>,
    /// Instance → (owner pid, acquisition).
    owners: BTreeMap<u64, (u32, Site)>,
    /// Pid → its latest lock attempt not yet granted.
    waiting: BTreeMap<u32, Site>,
    recursive: Vec<Recursive>,
    recursive_seen: BTreeSet<ClassId>,
    irq: Vec<IrqInversion>,
    held_at_exit: Vec<HeldAtExit>,
    ends: BTreeMap<u32, (TaskRef, TaskEnd)>,
    lock_events: u64,
}

impl Lockdep {
    pub fn new() -> Lockdep {
        Lockdep::default()
    }

    /// Feeds one event; events other than lock operations, task exits and end states
    /// are ignored.
    pub fn feed(&mut self, ev: &Event) {
        self.tasks.insert(ev.task.pid, ev.task.clone());
        match &ev.kind {
            EventKind::LockAcquire(op) => self.acquire(ev, op),
            EventKind::LockAcquired(op) => self.acquired(ev, op),
            EventKind::LockRelease(op) => self.release(ev, op),
            EventKind::TaskExit => {
                let locks = self.held.remove(&ev.task.pid).unwrap_or_default();
                if !locks.is_empty() {
                    self.held_at_exit.push(HeldAtExit {
                        task: ev.task.clone(),
                        pos: ev.pos,
                        stack: ev.stack.clone(),
                        locks,
                    });
                }
            }
            EventKind::TaskState(end) => {
                self.ends
                    .insert(ev.task.pid, (ev.task.clone(), end.clone()));
            }
            _ => {}
        }
    }

    fn class_of(&mut self, op: &LockOp) -> ClassId {
        if let Some(&id) = self.class_ids.get(&op.class) {
            self.classes[id].instances.insert(op.addr);
            return id;
        }
        let id = self.classes.len();
        self.class_ids.insert(op.class.clone(), id);
        self.classes.push(ClassInfo {
            class: op.class.clone(),
            kind: op.kind,
            instances: BTreeSet::from([op.addr]),
            in_irq: None,
            irq_on: None,
            acquisitions: 0,
        });
        id
    }

    fn acquire(&mut self, ev: &Event, op: &LockOp) {
        self.lock_events += 1;
        let id = self.class_of(op);
        let site = Site::of(ev, op.addr);
        self.classes[id].acquisitions += 1;
        self.waiting.insert(ev.task.pid, site.clone());
        let held = self.held.get(&ev.task.pid).cloned().unwrap_or_default();

        // Recursive locking: lockdep checks every held lock, across contexts.
        if let Some(h) = held.iter().rev().find(|h| h.class == id) {
            if self.recursive_seen.insert(id) {
                self.recursive.push(Recursive {
                    class: id,
                    held: h.site.clone(),
                    attempt: site.clone(),
                    held_locks: held.clone(),
                });
            }
        } else if let Some(top) = held.last() {
            // Only the innermost lock of the same context gets an edge: deeper ones are
            // implied transitively, and a lock taken first in an interrupt starts a new
            // chain (lockdep's chain head), since the interrupted task did not order them.
            if top.in_irq == op.ctx.in_irq {
                let e = self.edges.entry((top.class, id)).or_insert_with(|| Edge {
                    from: top.class,
                    to: id,
                    first: site.clone(),
                    from_site: top.site.clone(),
                    count: 0,
                });
                e.count += 1;
            }
        }

        self.mark_usage(id, op.ctx, &site, &held);
    }

    fn mark_usage(&mut self, id: ClassId, ctx: Ctx, site: &Site, held: &[Held]) {
        let usage = if ctx.in_irq {
            IrqUsage::InHardirq
        } else if !ctx.irqs_off {
            IrqUsage::HardirqOn
        } else {
            return;
        };
        let c = &mut self.classes[id];
        let (mine, other, other_usage) = match usage {
            IrqUsage::InHardirq => (&mut c.in_irq, &c.irq_on, IrqUsage::HardirqOn),
            IrqUsage::HardirqOn => (&mut c.irq_on, &c.in_irq, IrqUsage::InHardirq),
        };
        if mine.is_some() {
            return;
        }
        *mine = Some(site.clone());
        if let Some(first) = other.clone() {
            self.irq.push(IrqInversion {
                class: id,
                first: (other_usage, first),
                second: (usage, site.clone()),
                ctx,
                held_locks: held.to_vec(),
            });
        }
    }

    fn acquired(&mut self, ev: &Event, op: &LockOp) {
        let id = self.class_of(op);
        let site = Site::of(ev, op.addr);
        self.waiting.remove(&ev.task.pid);
        self.owners.insert(op.addr, (ev.task.pid, site.clone()));
        self.held.entry(ev.task.pid).or_default().push(Held {
            class: id,
            in_irq: op.ctx.in_irq,
            site,
        });
    }

    fn release(&mut self, ev: &Event, op: &LockOp) {
        self.owners.remove(&op.addr);
        // The releaser is normally the holder; an interrupt handler may release a lock
        // taken in the context it interrupted, which umk files under the holder.
        let mut pids: Vec<u32> = vec![ev.task.pid];
        pids.extend(self.held.keys().copied().filter(|&p| p != ev.task.pid));
        for pid in pids {
            if let Some(stack) = self.held.get_mut(&pid) {
                if let Some(i) = stack.iter().rposition(|h| h.site.addr == op.addr) {
                    stack.remove(i);
                    return;
                }
            }
        }
    }

    /// Ends the analysis: finds the cycles and the actual deadlocks.
    pub fn finish(self) -> LockReport {
        let cycles = find_cycles(self.classes.len(), &self.edges);
        let actual = self.actual_deadlocks();
        LockReport {
            classes: self.classes,
            edges: self.edges,
            cycles,
            recursive: self.recursive,
            irq: self.irq,
            held_at_exit: self.held_at_exit,
            actual,
            have_end_states: !self.ends.is_empty(),
            lock_events: self.lock_events,
        }
    }

    fn actual_deadlocks(&self) -> Vec<ActualDeadlock> {
        // Blocked task → link to the owner of the mutex it waits on.
        let mut waits: BTreeMap<u32, WaitLink> = BTreeMap::new();
        for (pid, (task, end)) in &self.ends {
            let blocked = matches!(
                end.state,
                TaskState::Interruptible | TaskState::Uninterruptible
            );
            if !blocked || end.wait != WaitKind::Mutex {
                continue;
            }
            let owner_pid = end
                .wait_owner
                .filter(|&o| o != 0)
                .or_else(|| {
                    self.ends
                        .iter()
                        .find(|(_, (_, e))| e.held.contains(&end.wait_obj))
                        .map(|(p, _)| *p)
                })
                .or_else(|| self.owners.get(&end.wait_obj).map(|(p, _)| *p));
            let Some(owner_pid) = owner_pid else { continue };
            let owner = self
                .ends
                .get(&owner_pid)
                .map(|(t, _)| t.clone())
                .or_else(|| self.tasks.get(&owner_pid).cloned())
                .unwrap_or_else(|| TaskRef::new(owner_pid, "?"));
            let class = self
                .classes
                .iter()
                .position(|c| c.instances.contains(&end.wait_obj));
            waits.insert(
                *pid,
                WaitLink {
                    task: task.clone(),
                    state: end.state,
                    lock: end.wait_obj,
                    lock_name: class
                        .map(|c| self.classes[c].class.name.clone())
                        .unwrap_or_else(|| end.wait_name.clone()),
                    class,
                    owner,
                    waiting_since: self
                        .waiting
                        .get(pid)
                        .filter(|s| s.addr == end.wait_obj)
                        .cloned(),
                    owner_took: self
                        .owners
                        .get(&end.wait_obj)
                        .filter(|(p, _)| *p == owner_pid)
                        .map(|(_, s)| s.clone()),
                },
            );
        }
        // Each blocked task waits on one lock, so the wait-for graph is functional: follow
        // each chain until it repeats. A cycle is reported from its smallest pid.
        let mut found: BTreeSet<Vec<u32>> = BTreeSet::new();
        for &start in waits.keys() {
            let mut path = vec![start];
            let mut cur = start;
            while let Some(link) = waits.get(&cur) {
                let next = link.owner.pid;
                if let Some(i) = path.iter().position(|&p| p == next) {
                    let mut cyc = path[i..].to_vec();
                    let min = cyc
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, p)| **p)
                        .map_or(0, |(i, _)| i);
                    cyc.rotate_left(min);
                    found.insert(cyc);
                    break;
                }
                path.push(next);
                cur = next;
            }
        }
        found
            .into_iter()
            .map(|pids| ActualDeadlock {
                links: pids.iter().map(|p| waits[p].clone()).collect(),
            })
            .collect()
    }
}

/// Caps the elementary cycles reported per run: a dense graph can have exponentially
/// many, and the first ones already say what is wrong.
const MAX_CYCLES: usize = 256;

/// Elementary cycles of the class graph, each once, rotated to start at its smallest
/// class and sorted by (length, classes). Strongly connected components (petgraph's
/// Tarjan) bound the search; within one, cycles are enumerated from each start node
/// through larger nodes only, so each is found exactly once.
fn find_cycles(nclasses: usize, edges: &BTreeMap<(ClassId, ClassId), Edge>) -> Vec<Cycle> {
    let mut g: DiGraph<ClassId, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..nclasses).map(|c| g.add_node(c)).collect();
    for &(a, b) in edges.keys() {
        if a != b {
            g.add_edge(nodes[a], nodes[b], ());
        }
    }
    let mut adj: Vec<Vec<ClassId>> = vec![Vec::new(); nclasses];
    for &(a, b) in edges.keys() {
        if a != b {
            adj[a].push(b);
        }
    }
    let mut out: Vec<Vec<ClassId>> = Vec::new();
    for scc in petgraph::algo::tarjan_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let members: BTreeSet<ClassId> = scc.iter().map(|n| g[*n]).collect();
        for &start in &members {
            let mut path = vec![start];
            walk(start, start, &adj, &members, &mut path, &mut out);
            if out.len() >= MAX_CYCLES {
                break;
            }
        }
    }
    out.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    out.truncate(MAX_CYCLES);
    out.into_iter()
        .map(|classes| {
            let n = classes.len();
            let closing = (0..n)
                .max_by_key(|&i| {
                    let e = &edges[&(classes[i], classes[(i + 1) % n])];
                    // Latest first sighting closes the cycle; ties go to the lower index.
                    (e.first.pos, std::cmp::Reverse(i))
                })
                .unwrap_or(0);
            Cycle { classes, closing }
        })
        .collect()
}

fn walk(
    start: ClassId,
    at: ClassId,
    adj: &[Vec<ClassId>],
    members: &BTreeSet<ClassId>,
    path: &mut Vec<ClassId>,
    out: &mut Vec<Vec<ClassId>>,
) {
    for &next in &adj[at] {
        if out.len() >= MAX_CYCLES {
            return;
        }
        if next == start {
            out.push(path.clone());
        } else if next > start && members.contains(&next) && !path.contains(&next) {
            path.push(next);
            walk(start, next, adj, members, path, out);
            path.pop();
        }
    }
}

/// The finished analysis.
#[derive(Debug)]
pub struct LockReport {
    pub classes: Vec<ClassInfo>,
    pub edges: BTreeMap<(ClassId, ClassId), Edge>,
    /// Potential deadlocks: order cycles.
    pub cycles: Vec<Cycle>,
    pub recursive: Vec<Recursive>,
    pub irq: Vec<IrqInversion>,
    pub held_at_exit: Vec<HeldAtExit>,
    /// Actual deadlocks: wait-for cycles at the end of the recording.
    pub actual: Vec<ActualDeadlock>,
    /// Whether end-of-recording task states were fed (else the actual verdict is unknown).
    pub have_end_states: bool,
    pub lock_events: u64,
}

const RULE_CIRCULAR: &str = "======================================================";
const DASH_CIRCULAR: &str = "------------------------------------------------------";

impl LockReport {
    /// Builds the report from events in one go.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> LockReport {
        let mut ld = Lockdep::new();
        for ev in events {
            ld.feed(ev);
        }
        ld.finish()
    }

    /// Whether any potential deadlock (cycle, recursion, irq inconsistency) was found.
    pub fn has_potential_deadlock(&self) -> bool {
        !self.cycles.is_empty() || !self.recursive.is_empty() || !self.irq.is_empty()
    }

    fn name(&self, c: ClassId) -> &str {
        &self.classes[c].class.name
    }

    fn kind(&self, c: ClassId) -> &'static str {
        match self.classes[c].kind {
            LockKind::Spin => "spin",
            LockKind::Mutex => "mutex",
        }
    }

    /// `0xADDR (name){kind}, at: func+0x1f/0x80 (file:line)` and its position.
    fn lock_line(&self, out: &mut String, res: &dyn Resolve, c: ClassId, site: &Site) {
        let _ = writeln!(
            out,
            "{:#x} ({}){{{}}}, at: {}",
            site.addr,
            self.name(c),
            self.kind(c),
            site_text(res, &site.stack)
        );
        let _ = writeln!(out, "    position: {} ({})", site.pos, site.task);
    }

    fn held_list(&self, out: &mut String, res: &dyn Resolve, task: &TaskRef, held: &[Held]) {
        match held.len() {
            0 => {
                let _ = writeln!(out, "no locks held by {task}.");
            }
            n => {
                let _ = writeln!(
                    out,
                    "{n} lock{} held by {task}:",
                    if n == 1 { "" } else { "s" }
                );
                for (i, h) in held.iter().enumerate() {
                    let _ = write!(out, " #{i}: ");
                    self.lock_line(out, res, h.class, &h.site);
                }
            }
        }
    }

    fn backtrace(out: &mut String, res: &dyn Resolve, stack: &[u64]) {
        let _ = writeln!(out, "\nstack backtrace:");
        out.push_str(&format_stack(res, stack, false, " "));
    }

    /// The whole text report: summary, potential deadlocks in lockdep's layouts, then the
    /// actual-deadlock verdict.
    pub fn render_text(&self, res: &dyn Resolve) -> String {
        let mut out = String::new();
        if self.classes.is_empty() {
            out.push_str(
                "No locks were taken in this recording: no lock classes, no dependencies.\n",
            );
        } else {
            let instances: usize = self.classes.iter().map(|c| c.instances.len()).sum();
            let _ = writeln!(
                out,
                "Lock analysis: {}, {}, {}, {}.",
                plural(self.classes.len() as u64, "lock class", "lock classes"),
                plural(instances as u64, "instance", "instances"),
                plural(self.edges.len() as u64, "dependency", "dependencies"),
                plural(self.lock_events, "lock acquisition", "lock acquisitions"),
            );
            out.push_str("\nLock classes:\n");
            for (i, c) in self.classes.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  {} ({}){{{}}} defined at {}:{}, {} instance{}, taken {} time{}",
                    i,
                    c.class.name,
                    self.kind(i),
                    c.class.file,
                    c.class.line,
                    c.instances.len(),
                    if c.instances.len() == 1 { "" } else { "s" },
                    c.acquisitions,
                    if c.acquisitions == 1 { "" } else { "s" },
                );
            }
        }

        out.push_str("\n== Potential deadlocks (lock order) ==\n");
        if !self.has_potential_deadlock() && self.held_at_exit.is_empty() {
            out.push_str("\nNo potential deadlock: no lock-order cycle, no recursive locking, no irq-inconsistent lock usage.\n");
        }
        for c in &self.cycles {
            self.render_cycle(&mut out, res, c);
        }
        for r in &self.recursive {
            self.render_recursive(&mut out, res, r);
        }
        for r in &self.irq {
            self.render_irq(&mut out, res, r);
        }
        for h in &self.held_at_exit {
            self.render_held_at_exit(&mut out, res, h);
        }

        out.push_str("\n== Actual deadlocks (end of the recording) ==\n");
        if !self.have_end_states {
            out.push_str(
                "\nUnknown: the task states at the end of the recording were not collected.\n",
            );
        } else if self.actual.is_empty() {
            out.push_str("\nNo actual deadlock: no task is blocked in a wait-for cycle at the end of the recording.\n");
        }
        for d in &self.actual {
            self.render_actual(&mut out, res, d);
        }
        out
    }

    fn render_cycle(&self, out: &mut String, res: &dyn Resolve, cyc: &Cycle) {
        let n = cyc.classes.len();
        let j = cyc.closing;
        let prev = cyc.classes[j];
        let next = cyc.classes[(j + 1) % n];
        let closing = &self.edges[&(prev, next)];
        let _ = writeln!(out, "\n{RULE_CIRCULAR}");
        out.push_str("WARNING: possible circular locking dependency detected\n");
        let _ = writeln!(out, "{DASH_CIRCULAR}");
        let _ = writeln!(out, "{} is trying to acquire lock:", closing.first.task);
        self.lock_line(out, res, next, &closing.first);
        out.push_str("\nbut task is already holding lock:\n");
        self.lock_line(out, res, prev, &closing.from_site);
        out.push_str("\nwhich lock already depends on the new lock.\n\n");
        out.push_str("\nthe existing dependency chain (in reverse order) is:\n");
        // The path next → … → prev that existed before the closing edge, printed from
        // its end: entry #k is the class reached by the k-th edge, with that edge's
        // first site; #0 is the closing acquisition itself.
        let path: Vec<ClassId> = (0..n).map(|k| cyc.classes[(j + 1 + k) % n]).collect();
        for k in (1..n).rev() {
            let e = &self.edges[&(path[k - 1], path[k])];
            let _ = writeln!(
                out,
                "\n-> #{} ({}){{{}}}:",
                k,
                self.name(path[k]),
                self.kind(path[k])
            );
            let _ = writeln!(
                out,
                "       taken while holding ({}) by {} at position {}",
                self.name(path[k - 1]),
                e.first.task,
                e.first.pos
            );
            out.push_str(&format_stack(res, &e.first.stack, false, "       "));
        }
        let _ = writeln!(out, "\n-> #0 ({}){{{}}}:", self.name(next), self.kind(next));
        let _ = writeln!(
            out,
            "       taken while holding ({}) by {} at position {}",
            self.name(prev),
            closing.first.task,
            closing.first.pos
        );
        out.push_str(&format_stack(res, &closing.first.stack, false, "       "));

        out.push_str("\nother info that might help us debug this:\n\n");
        let parent = path[n - 2];
        if parent != next {
            let chain: Vec<String> = path.iter().map(|&c| self.name(c).to_string()).collect();
            let _ = writeln!(out, "Chain exists of:\n  {}\n", chain.join(" --> "));
        }
        out.push_str(" Possible unsafe locking scenario:\n\n");
        out.push_str("       CPU0                    CPU1\n");
        out.push_str("       ----                    ----\n");
        let _ = writeln!(out, "  lock({});", self.name(prev));
        let _ = writeln!(
            out,
            "                               lock({});",
            self.name(parent)
        );
        let _ = writeln!(
            out,
            "                               lock({});",
            self.name(prev)
        );
        let _ = writeln!(out, "  lock({});", self.name(next));
        out.push_str("\n *** DEADLOCK ***\n\n");
        let held = [Held {
            class: prev,
            in_irq: false,
            site: closing.from_site.clone(),
        }];
        self.held_list(out, res, &closing.first.task, &held);
        Self::backtrace(out, res, &closing.first.stack);
    }

    fn render_recursive(&self, out: &mut String, res: &dyn Resolve, r: &Recursive) {
        out.push_str("\n============================================\n");
        out.push_str("WARNING: possible recursive locking detected\n");
        out.push_str("--------------------------------------------\n");
        let _ = writeln!(out, "{} is trying to acquire lock:", r.attempt.task);
        self.lock_line(out, res, r.class, &r.attempt);
        out.push_str("\nbut task is already holding lock:\n");
        self.lock_line(out, res, r.class, &r.held);
        if r.held.addr == r.attempt.addr && self.classes[r.class].kind == LockKind::Mutex {
            out.push_str("\n(the same instance: this task will wait for itself)\n");
        }
        out.push_str("\nother info that might help us debug this:\n");
        out.push_str(" Possible unsafe locking scenario:\n\n");
        out.push_str("       CPU0\n");
        out.push_str("       ----\n");
        let _ = writeln!(out, "  lock({});", self.name(r.class));
        let _ = writeln!(out, "  lock({});", self.name(r.class));
        out.push_str("\n *** DEADLOCK ***\n\n");
        out.push_str(" May be due to missing lock nesting notation\n\n");
        self.held_list(out, res, &r.attempt.task, &r.held_locks);
        Self::backtrace(out, res, &r.attempt.stack);
    }

    fn render_irq(&self, out: &mut String, res: &dyn Resolve, r: &IrqInversion) {
        out.push_str("\n================================\n");
        out.push_str("WARNING: inconsistent lock state\n");
        out.push_str("--------------------------------\n");
        let _ = writeln!(
            out,
            "inconsistent {{{}}} -> {{{}}} usage.",
            r.first.0.label(),
            r.second.0.label()
        );
        let _ = writeln!(
            out,
            "{} [HC{}:HE{}] takes:",
            r.second.1.task,
            u8::from(r.ctx.in_irq),
            u8::from(!r.ctx.irqs_off)
        );
        self.lock_line(out, res, r.class, &r.second.1);
        let _ = writeln!(out, "{{{}}} state was registered at:", r.first.0.label());
        let _ = writeln!(out, "  position: {} ({})", r.first.1.pos, r.first.1.task);
        out.push_str(&format_stack(res, &r.first.1.stack, false, "  "));
        out.push_str("\nother info that might help us debug this:\n");
        out.push_str(" Possible unsafe locking scenario:\n\n");
        out.push_str("       CPU0\n");
        out.push_str("       ----\n");
        let _ = writeln!(out, "  lock({});", self.name(r.class));
        out.push_str("  <Interrupt>\n");
        let _ = writeln!(out, "    lock({});", self.name(r.class));
        out.push_str("\n *** DEADLOCK ***\n\n");
        self.held_list(out, res, &r.second.1.task, &r.held_locks);
        Self::backtrace(out, res, &r.second.1.stack);
    }

    fn render_held_at_exit(&self, out: &mut String, res: &dyn Resolve, h: &HeldAtExit) {
        out.push_str("\n=====================================\n");
        let _ = writeln!(out, "WARNING: {} still has locks held!", h.task);
        out.push_str("-------------------------------------\n");
        let _ = writeln!(out, "exiting at position {}", h.pos);
        self.held_list(out, res, &h.task, &h.locks);
        Self::backtrace(out, res, &h.stack);
    }

    fn render_actual(&self, out: &mut String, res: &dyn Resolve, d: &ActualDeadlock) {
        let _ = writeln!(out, "\n{RULE_CIRCULAR}");
        if d.links.len() == 1 {
            out.push_str("DEADLOCK: a task waits for a lock it holds itself (self-deadlock)\n");
        } else {
            out.push_str("DEADLOCK: blocked tasks wait for each other (wait-for cycle)\n");
        }
        let _ = writeln!(out, "{DASH_CIRCULAR}");
        for l in &d.links {
            let _ = writeln!(out, "{} ({}) is blocked on lock:", l.task, l.state.label());
            match (&l.waiting_since, l.class) {
                (Some(s), Some(c)) => self.lock_line(out, res, c, s),
                _ => {
                    let _ = writeln!(out, "{:#x} ({})", l.lock, l.lock_name);
                }
            }
            let _ = writeln!(out, "which is held by {}, taken at:", l.owner);
            match (&l.owner_took, l.class) {
                (Some(s), Some(c)) => self.lock_line(out, res, c, s),
                _ => out.push_str("    (acquisition not seen)\n"),
            }
            if let Some(s) = &l.waiting_since {
                let _ = writeln!(out, "\nstack of {} when it began to wait:", l.task);
                out.push_str(&format_stack(res, &s.stack, false, " "));
            }
            out.push('\n');
        }
        let mut chain: Vec<String> = Vec::new();
        for l in &d.links {
            chain.push(l.task.to_string());
            chain.push(format!("({})", l.lock_name));
        }
        chain.push(d.links[0].task.to_string());
        let _ = writeln!(out, "wait-for cycle:\n  {}", chain.join(" --> "));
        out.push_str("\n *** DEADLOCK ***\n");
    }

    /// The class graph in DOT: one node per class, each edge labelled with its first site
    /// and position; edges and classes of any cycle in red.
    pub fn to_dot(&self, res: &dyn Resolve) -> String {
        let mut red_edges: BTreeSet<(ClassId, ClassId)> = BTreeSet::new();
        let mut red_nodes: BTreeSet<ClassId> = BTreeSet::new();
        for c in &self.cycles {
            red_edges.extend(c.edges());
            red_nodes.extend(c.classes.iter().copied());
        }
        for r in &self.recursive {
            red_nodes.insert(r.class);
        }
        let mut out = String::new();
        out.push_str("digraph lockdep {\n");
        out.push_str("  rankdir=LR;\n");
        out.push_str("  node [shape=box, fontname=\"monospace\"];\n");
        out.push_str("  edge [fontname=\"monospace\", fontsize=10];\n");
        for (i, c) in self.classes.iter().enumerate() {
            let label = format!(
                "{}\n{{{}}} {}:{}",
                c.class.name,
                self.kind(i),
                c.class.file,
                c.class.line
            );
            let style = if red_nodes.contains(&i) {
                ", color=red, fontcolor=red, penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(out, "  c{i} [label=\"{}\"{style}];", dot_escape(&label));
        }
        for ((a, b), e) in &self.edges {
            let label = format!(
                "{}\n{}\n{}",
                site_location(res, &e.first.stack),
                e.first.pos,
                e.first.task
            );
            let style = if red_edges.contains(&(*a, *b)) {
                ", color=red, fontcolor=red, penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  c{a} -> c{b} [label=\"{}\"{style}];",
                dot_escape(&label)
            );
        }
        for r in &self.recursive {
            let label = format!(
                "recursive\n{}\n{}",
                site_location(res, &r.attempt.stack),
                r.attempt.pos
            );
            let _ = writeln!(
                out,
                "  c{0} -> c{0} [label=\"{1}\", color=red, fontcolor=red, style=dashed];",
                r.class,
                dot_escape(&label)
            );
        }
        out.push_str("}\n");
        out
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Escapes a DOT string: quotes and backslashes, and newlines as DOT's centred `\n`.
fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Renders DOT to SVG with graphviz's `dot -Tsvg`.
pub fn render_svg(dot: &str) -> Result<String> {
    let program = "dot";
    let err = |why: String| Error::Graphviz {
        program: program.to_string(),
        why,
    };
    let mut child = Command::new(program)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                err("not found on PATH; install graphviz (apt-get install graphviz)".to_string())
            } else {
                err(e.to_string())
            }
        })?;
    // Graphviz reads all of its input before writing, so writing first cannot deadlock.
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| err(format!("writing the graph: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for it: {e}")))?;
    if !output.status.success() {
        return Err(err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout).map_err(|e| err(format!("output is not UTF-8: {e}")))
}
