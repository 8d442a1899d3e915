//! The lock-order engine, with lockdep's semantics: lock classes and their instances,
//! per-task stacks of held locks, a dependency edge class A → class B each time B is
//! taken while A is the innermost lock held in the same context (keeping the first stack,
//! task and replay position of each edge), order cycles of any length, recursive locking,
//! irq-inconsistent usage and locks held at task exit. Those are *potential* deadlocks.
//! Kept apart is the *actual* verdict: a wait-for cycle among the tasks blocked at the end
//! of the recording (blocked task → lock → owner), or a task waiting on a lock it owns.
//!
//! Reports follow lockdep's layout so a kernel developer reads them without a manual
//! ([`text`]); what Rewind adds is a replay position beside every site. The class graph
//! is drawn by [`dot`]. Everything is kept in ordered maps and classes are numbered in
//! order of first use, so output is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};

mod dot;
mod text;

use crate::events::{
    Ctx, Event, EventKind, LockClass, LockKind, LockOp, Pos, TaskEnd, TaskRef, TaskState, WaitKind,
};

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
    /// Its usage as the guest's own lockdep printed it, as last seen.
    pub usage: Option<String>,
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
    /// Its rank in the order edges were established (events arrive in replay order, and
    /// several may share a position's mark).
    pub seq: usize,
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
    guest_lockdep_off: Option<Pos>,
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
            EventKind::LockDependency {
                from,
                to,
                refused,
                held_at,
            } => {
                self.dependency(ev, from, to, *held_at);
                if *refused {
                    self.guest_lockdep_off.get_or_insert(ev.pos);
                }
            }
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
        let id = self.class_id(op);
        self.classes[id].instances.insert(op.addr);
        id
    }

    /// The class's id, without counting `op.addr` as an instance.
    fn class_id(&mut self, op: &LockOp) -> ClassId {
        if let Some(&id) = self.class_ids.get(&op.class) {
            if op.usage.is_some() {
                self.classes[id].usage.clone_from(&op.usage);
            }
            return id;
        }
        let id = self.classes.len();
        self.class_ids.insert(op.class.clone(), id);
        self.classes.push(ClassInfo {
            class: op.class.clone(),
            kind: op.kind,
            instances: BTreeSet::new(),
            in_irq: None,
            irq_on: None,
            acquisitions: 0,
            usage: op.usage.clone(),
        });
        id
    }

    /// A dependency the guest's own lockdep recorded (or refused, closing a cycle): an
    /// edge established here, by this task, with this stack.
    fn dependency(&mut self, ev: &Event, from: &LockOp, to: &LockOp, held_at: Option<u64>) {
        let (a, b) = (self.class_id(from), self.class_id(to));
        let seq = self.edges.len();
        // Where `from` was taken is not this stack: only what lockdep said of it.
        let from_site = Site {
            stack: held_at.into_iter().collect(),
            ..Site::of(ev, from.addr)
        };
        let e = self.edges.entry((a, b)).or_insert_with(|| Edge {
            from: a,
            to: b,
            first: Site::of(ev, to.addr),
            from_site,
            count: 0,
            seq,
        });
        e.count += 1;
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
                let seq = self.edges.len();
                let e = self.edges.entry((top.class, id)).or_insert_with(|| Edge {
                    from: top.class,
                    to: id,
                    first: site.clone(),
                    from_site: top.site.clone(),
                    count: 0,
                    seq,
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
            guest_lockdep_off: self.guest_lockdep_off,
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
                    // The latest established closes the cycle.
                    e.seq
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
    /// Where the guest's own lockdep reported a cycle and turned itself off: the lock
    /// orders after it are not in the graph.
    pub guest_lockdep_off: Option<Pos>,
}

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

    pub(crate) fn name(&self, c: ClassId) -> &str {
        &self.classes[c].class.name
    }

    /// What follows a class's name in a report: the guest lockdep's `{+.+.}-{3:3}` when
    /// it said it, else the same made from what this replay saw (`usage_bits`).
    pub(crate) fn tag(&self, c: ClassId) -> String {
        let info = &self.classes[c];
        match &info.usage {
            Some(u) => u.clone(),
            None => usage_bits(info),
        }
    }
}

/// Lockdep's usage string for a class, as its `print_lock_name` spells it, from the
/// acquisitions the replay saw up to its end: `{+.+.}-{4:4}`. Per irq state, hardirq then
/// softirq, a write character ('-' taken in that context, '+' taken with it enabled,
/// '?' both, '.' neither) and a read one ('.': these locks have no readers). A guest
/// without softirqs has its softirq pair say only whether interrupts were on. Then the
/// wait types `{outer:inner}`: 2 for a spinning lock (LD_WAIT_SPIN), 4 for a sleeping
/// one (LD_WAIT_SLEEP).
pub(crate) fn usage_bits(info: &ClassInfo) -> String {
    let hard = match (info.in_irq.is_some(), info.irq_on.is_some()) {
        (true, true) => '?',
        (true, false) => '-',
        (false, true) => '+',
        (false, false) => '.',
    };
    let soft = if info.irq_on.is_some() { '+' } else { '.' };
    let wait = match info.kind {
        LockKind::Spin => 2,
        LockKind::Mutex => 4,
    };
    format!("{{{hard}.{soft}.}}-{{{wait}:{wait}}}")
}
