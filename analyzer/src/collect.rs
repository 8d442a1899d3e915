//! The replay-time collector: turns one replay of a trace into the [`Event`] stream the
//! engines read. Recording pays nothing for analysis; instead the replay stops at umk's
//! probe functions (kernel/PROBES.md) through software breakpoints and reads what the
//! live guest knows at that instant: arguments in `rdi`/`rsi`/`rdx`, the stack through the
//! frame-pointer chain, and — through the guest model (`guest::umk`) — the current task,
//! lock classes and slab cache names.
//!
//! Linux built as UML has its own collector ([`crate::collect_linux`]).
//!
//! Besides the probes, a breakpoint on umk's `SIGSEGV` handler catches the fault the
//! kernel turns into an oops ([`crate::fault`]), and the task table is read once more just
//! before the program ends, for the actual-deadlock verdict. The second, targeted pass of
//! a use-after-free analysis is [`crate::watch`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use guest::umk::{locks, Table, Umk};
use guest::Binary;
use replayer::{Position, StopReason, Timeline};

use crate::error::{Error, Result};
use crate::events::{
    Ctx, Event, EventKind, LockClass, LockKind, LockOp, ObjectOp, TaskEnd, TaskRef,
};
use crate::symbols::{probe_addresses, PROBE_FUNCTIONS};

/// Frames kept per stack: deeper ones never change a report.
pub(crate) const MAX_FRAMES: usize = 24;
/// umk's SIGSEGV handler, where a fault becomes an oops.
pub(crate) const FAULT_HANDLER: &str = "umk::irq::sigsegv";

/// A probe's `u32` argument (`ctx`, `irq`: kernel/PROBES.md) from its 64-bit register.
// why: the System V x86-64 calling convention passes a 32-bit argument in the low half
// of the register and leaves the upper half unspecified, so the low half is the value.
#[allow(clippy::cast_possible_truncation)]
fn arg32(reg: u64) -> u32 {
    reg as u32
}

/// What a collection produced.
#[derive(Debug)]
pub struct Collection {
    /// Every probe hit, in replay order, then the crash (at its place) and the end states.
    pub events: Vec<Event>,
    /// The guest binary the stacks belong to.
    pub binary: PathBuf,
    /// How the program ended, if the recording reaches its end.
    pub exit: Option<trace::ExitStatus>,
    pub stats: CollectStats,
    /// The load of the poisoned pointer a general protection fault went through, found by
    /// running back from the fault (see [`crate::poison_load`]).
    pub poison_load: Option<crate::kasan::FoundLoad>,
}

/// Cost figures of a collection, for the benchmark and `--verbose`.
#[derive(Debug, Clone, Default)]
pub struct CollectStats {
    pub probe_hits: u64,
    pub elapsed: Duration,
    /// Part of `elapsed` spent computing exact positions of hits.
    pub positioning: Duration,
    /// Events of the recording.
    pub trace_events: u64,
}

impl CollectStats {
    pub fn hits_per_second(&self) -> f64 {
        self.probe_hits as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How to collect.
#[derive(Default)]
pub struct CollectOptions {
    /// The guest binary (default: the path the trace header records).
    pub binary: Option<PathBuf>,
    /// Place every hit exactly (`eN+tK+sJ`) with [`Timeline::position`] instead of at the
    /// mark before it ([`Timeline::mark_here`]); costly (re-execution and single steps per
    /// hit).
    pub exact_positions: bool,
    /// Called after each hit with (trace events applied, trace events in all).
    pub progress: Option<Box<dyn FnMut(u64, u64)>>,
}

/// A live replay stopped at a probe, with what the collector caches across hits.
pub(crate) struct Reader<'a> {
    pub(crate) tl: &'a mut Timeline,
    pub(crate) trace: PathBuf,
    pub(crate) bin: &'a Binary,
    umk: Umk,
    table: Table,
    classes: BTreeMap<u64, LockClass>,
    caches: BTreeMap<u64, String>,
}

impl<'a> Reader<'a> {
    /// A reader of umk in `bin`, its task table checked once against the replay's memory.
    pub(crate) fn new(tl: &'a mut Timeline, trace: &Path, bin: &'a Binary) -> Result<Reader<'a>> {
        let umk = Umk::new(bin)?;
        let table = umk.table(&*tl)?;
        Ok(Reader {
            tl,
            trace: trace.to_path_buf(),
            bin,
            umk,
            table,
            classes: BTreeMap::new(),
            caches: BTreeMap::new(),
        })
    }

    pub(crate) fn replay_err(&self, op: &'static str) -> impl Fn(replayer::Error) -> Error + '_ {
        move |e| Error::Replay {
            op,
            trace: self.trace.clone(),
            source: Box::new(e),
        }
    }

    fn task(&self, slot: u64) -> Result<TaskRef> {
        let t = self.table.task(&*self.tl, slot, u64::MAX)?;
        Ok(t.map_or_else(|| TaskRef::new(0, ""), |t| TaskRef::new(t.pid, &t.name)))
    }

    /// The task on the CPU.
    pub(crate) fn current(&self) -> Result<TaskRef> {
        self.task(self.table.current_slot(&*self.tl)?)
    }

    fn lock(&mut self, addr: u64, ctx: u64) -> Result<LockOp> {
        let header = locks::header(&*self.tl, addr)?;
        let class = match self.classes.get(&header.class) {
            Some(c) => c.clone(),
            None => {
                let c = locks::class(&*self.tl, header.class)?;
                let class = LockClass {
                    name: c.name,
                    file: c.file,
                    line: c.line,
                };
                self.classes.insert(header.class, class.clone());
                class
            }
        };
        Ok(LockOp {
            addr,
            class,
            kind: LockKind::from_header(header.kind),
            ctx: Ctx::from_bits(arg32(ctx)),
            usage: None,
        })
    }

    fn cache_name(&mut self, index: u64) -> Result<String> {
        if let Some(n) = self.caches.get(&index) {
            return Ok(n.clone());
        }
        let name = self.umk.cache_name(&*self.tl, index)?;
        // Caches are created once and never renamed, so the name can be kept.
        if !name.is_empty() {
            self.caches.insert(index, name.clone());
        }
        Ok(name)
    }

    /// Return addresses up `rbp`'s frame-pointer chain.
    pub(crate) fn rbp_chain(&self, rbp: u64, out: &mut Vec<u64>) {
        guest::stack::walk(self.bin, &*self.tl, rbp, MAX_FRAMES, out);
    }

    fn probe_stack(&self, rsp: u64, rbp: u64) -> Vec<u64> {
        probe_stack(self.bin, &*self.tl, rsp, rbp)
    }

    /// Every used slot of the task table, as the end of the recording sees them.
    fn end_states(&self, pos: Position) -> Result<Vec<Event>> {
        Ok(self
            .table
            .tasks(&*self.tl)?
            .into_iter()
            .map(|t| Event {
                pos,
                task: TaskRef::new(t.pid, &t.name),
                stack: Vec::new(),
                kind: EventKind::TaskState(TaskEnd {
                    state: t.state,
                    wait: t.wait.kind,
                    wait_obj: t.wait.obj,
                    wait_name: t.wait.name,
                    wait_owner: t.wait.owner,
                    held: t.held,
                }),
            })
            .collect())
    }
}

/// The stack at a probe's first instruction: its return address, then the caller's
/// chain (the probe has not pushed rbp yet, so rbp is still the caller's frame).
pub(crate) fn probe_stack(bin: &Binary, mem: &dyn guest::Memory, rsp: u64, rbp: u64) -> Vec<u64> {
    let mut out = Vec::new();
    if let Ok(ret) = guest::memory::u64_at(mem, rsp, "a probe's return address") {
        out.push(ret);
        guest::stack::walk(bin, mem, rbp, MAX_FRAMES, &mut out);
    }
    out
}

/// Runs forward to the next breakpoint: its address, or how the recording ended (`None`
/// at the end of an incomplete one).
pub(crate) fn next_hit(
    tl: &mut Timeline,
) -> replayer::Result<std::result::Result<u64, Option<trace::ExitStatus>>> {
    loop {
        match tl.run_forward()? {
            StopReason::Breakpoint(a) => return Ok(Ok(a)),
            StopReason::Exited(e) => return Ok(Err(Some(e))),
            StopReason::EndOfHistory | StopReason::StartOfHistory => return Ok(Err(None)),
            // Faults, interrupts and syscall catches are not stops here (the analyzer asks
            // for none of them): listed for the match.
            StopReason::Done
            | StopReason::Watchpoint(_)
            | StopReason::Signal(_)
            | StopReason::Interrupted
            | StopReason::SyscallReturn(_) => {}
        }
    }
}

/// Where a hit is: exactly (`eN+tK+sJ`, costly) or the mark before it; the time it took
/// is added to `stats`.
pub(crate) fn hit_position(
    tl: &mut Timeline,
    exact: bool,
    stats: &mut CollectStats,
) -> replayer::Result<Position> {
    let t0 = Instant::now();
    let pos = if exact {
        tl.position()?
    } else {
        tl.mark_here()
    };
    stats.positioning += t0.elapsed();
    Ok(pos)
}

/// Opens another replay of `trace` (a pack is unpacked anew: the first replay's copy of
/// the binary goes away with it).
pub fn timeline(trace: &Path) -> Result<Timeline> {
    Timeline::open(trace).map_err(|e| Error::Replay {
        op: "opening a replay of",
        trace: trace.to_path_buf(),
        source: Box::new(e),
    })
}

/// Opens the trace's timeline (a directory or a pack) and the guest's binary, from
/// `binary` or else from the binary the replay runs.
pub fn open(trace: &Path, binary: Option<&Path>) -> Result<(Timeline, Binary)> {
    let tl = timeline(trace)?;
    let bin = crate::symbols::open(binary.unwrap_or(tl.binary()))?;
    Ok((tl, bin))
}

/// Replays the trace to its end with probes armed and returns the events.
pub fn collect(trace_dir: &Path, mut opts: CollectOptions) -> Result<(Collection, Binary)> {
    let started = Instant::now();
    let (mut tl, bin) = open(trace_dir, opts.binary.as_deref())?;
    if Umk::new(&bin).is_err() {
        if let Ok(linux) = guest::linux::Linux::new(&bin) {
            let c = crate::collect_linux::collect(&mut tl, trace_dir, &bin, &linux, opts, started)?;
            return Ok((c, bin));
        }
    }
    let probes = probe_addresses(&bin, &PROBE_FUNCTIONS)?;
    let fault_handler = bin.address(FAULT_HANDLER);
    let total = tl.events().len() as u64;
    let mut rd = Reader::new(&mut tl, trace_dir, &bin)?;
    for &a in probes.iter().chain(fault_handler.iter()) {
        rd.tl.set_breakpoint(a);
    }

    let mut events = Vec::new();
    let mut stats = CollectStats {
        trace_events: total,
        ..CollectStats::default()
    };
    let exit = loop {
        let addr = match next_hit(rd.tl).map_err(rd.replay_err("running forward through"))? {
            Ok(a) => a,
            Err(exit) => break exit,
        };
        stats.probe_hits += 1;
        let pos = hit_position(rd.tl, opts.exact_positions, &mut stats)
            .map_err(rd.replay_err("placing a probe hit in"))?;
        let g = rd
            .tl
            .regs()
            .map_err(rd.replay_err("reading registers in"))?;
        let task = rd.current()?;
        if Some(addr) == fault_handler {
            let (crash, stack) = crate::fault::read(&rd, &g)?;
            events.push(Event {
                pos,
                task,
                stack,
                kind: EventKind::Crash(crash),
            });
            continue;
        }
        let stack = rd.probe_stack(g.rsp, g.rbp);
        let which = probes.iter().position(|&p| p == addr).unwrap_or(usize::MAX);
        let kind = match PROBE_FUNCTIONS.get(which).copied() {
            Some("umk_lock_acquire") => EventKind::LockAcquire(rd.lock(g.rdi, g.rsi)?),
            Some("umk_lock_acquired") => EventKind::LockAcquired(rd.lock(g.rdi, g.rsi)?),
            Some("umk_lock_release") => EventKind::LockRelease(rd.lock(g.rdi, g.rsi)?),
            Some(p @ ("umk_alloc" | "umk_free")) => {
                // umk's cache indices are below 32, or 0xff for pages (kernel/PROBES.md);
                // anything past a u8 is corrupt, and cutting it would alias another cache.
                let cache_index = u8::try_from(g.rdi).map_err(|_| {
                    Error::GuestLayout(format!("{p} with cache index {:#x}, beyond a u8", g.rdi))
                })?;
                let op = ObjectOp {
                    cache_index,
                    cache: rd.cache_name(g.rdi)?,
                    ptr: g.rsi,
                    size: g.rdx,
                };
                if p == "umk_alloc" {
                    EventKind::Alloc(op)
                } else {
                    EventKind::Free(op)
                }
            }
            Some("umk_context_switch") => EventKind::ContextSwitch {
                prev: rd.task(g.rdi)?,
                next: rd.task(g.rsi)?,
            },
            Some("umk_irq_enter") => EventKind::IrqEnter { irq: arg32(g.rdi) },
            Some("umk_irq_exit") => EventKind::IrqExit { irq: arg32(g.rdi) },
            Some("umk_task_exit") => EventKind::TaskExit,
            _ => continue,
        };
        events.push(Event {
            pos,
            task,
            stack,
            kind,
        });
        if let Some(p) = opts.progress.as_mut() {
            p(pos.event, total);
        }
    };

    // The task table as the program ends. Once it has ended there is no memory left to
    // read, so go back to the latest boundary before its end that is still alive (a fatal
    // signal placed at a syscall's return ends the program at the boundary after it).
    match exit {
        Some(_) => {
            for back in 1..=3 {
                let Some(n) = total.checked_sub(back) else {
                    break;
                };
                let p = Position::event(n);
                if rd.tl.seek(&p).is_ok() {
                    events.extend(rd.end_states(p)?);
                    break;
                }
            }
        }
        None => {
            let p = rd.tl.mark_here();
            events.extend(rd.end_states(p)?);
        }
    }
    // Here, while the timeline still holds the checkpoints of the whole replay.
    let poison_load = crate::poison_load::find_after_collection(rd.tl, fault_handler, &events);
    stats.elapsed = started.elapsed();
    let binary = bin.path().to_path_buf();
    Ok((
        Collection {
            events,
            binary,
            exit,
            stats,
            poison_load,
        },
        bin,
    ))
}
