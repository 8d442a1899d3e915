//! The replay-time collector: turns one replay of a trace into the [`Event`] stream the
//! engines read. Recording pays nothing for analysis; instead the replay stops at umk's
//! probe functions (kernel/PROBES.md) through software breakpoints and reads what the
//! live guest knows at that instant: arguments in `rdi`/`rsi`/`rdx`, the stack through the
//! frame-pointer chain, the current task from the task table (kernel/TASKS.md), lock
//! classes through the lock header and cache names from `UMK_SLAB_CACHES`.
//!
//! Besides the probes, a breakpoint on umk's `SIGSEGV` handler catches the fault the
//! kernel turns into an oops (siginfo and ucontext give the fault address and the
//! faulting registers), and the task table is read once more just before the program
//! ends, for the actual-deadlock verdict.
//!
//! [`watch_object`] is the second, targeted pass of a use-after-free analysis: hardware
//! watchpoints on the freed object from its free to the crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use replayer::{Position, StopReason, Timeline, WatchKind};

use crate::error::{Error, Result};
use crate::events::{
    Crash, Ctx, Event, EventKind, LockClass, LockKind, LockOp, ObjectOp, Regs, TaskEnd, TaskRef,
    TaskState, WaitKind,
};
use crate::kasan::{Access, ObjRecord};
use crate::symbols::{disassemble, Resolve, Symbolizer, PROBE_FUNCTIONS};

/// Task-table layout (kernel/TASKS.md); `UMK_TASK_SIZE` is checked against it.
const TASK_SIZE: u64 = 184;
const NR_TASKS_MAX: u64 = 64;
/// Slab cache descriptors (kernel/PROBES.md).
const CACHE_INFO_SIZE: u64 = 56;
const NR_CACHES: u64 = 32;
/// Cache index of whole-page allocations.
const PAGES_CACHE: u64 = 0xff;
/// Frames kept per stack: deeper ones never change a report.
const MAX_FRAMES: usize = 24;
/// `uc_mcontext.gregs` in the x86-64 `ucontext_t`, and the registers' indices in it.
const UC_GREGS: u64 = 40;
const FAULT_HANDLER: &str = "umk::irq::sigsegv";

/// The symbols the collector reads; all must be in the guest.
#[derive(Clone, Copy)]
struct GuestLayout {
    tasks: u64,
    current: u64,
    nr_tasks: u64,
    caches: u64,
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
struct Reader<'a> {
    tl: &'a mut Timeline,
    trace: PathBuf,
    layout: GuestLayout,
    classes: BTreeMap<u64, LockClass>,
    caches: BTreeMap<u64, String>,
    sym: &'a Symbolizer,
}

impl Reader<'_> {
    fn replay_err(&self, op: &'static str) -> impl Fn(replayer::Error) -> Error + '_ {
        move |e| Error::Replay {
            op,
            trace: self.trace.clone(),
            source: Box::new(e),
        }
    }

    fn bytes(&self, addr: u64, len: usize, what: &'static str) -> Result<Vec<u8>> {
        let b = self
            .tl
            .read_memory(addr, len)
            .map_err(self.replay_err("reading guest memory of"))?;
        if b.len() != len {
            return Err(Error::GuestMemory { what, addr, len });
        }
        Ok(b)
    }

    fn u64_at(&self, addr: u64, what: &'static str) -> Result<u64> {
        let b = self.bytes(addr, 8, what)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn u32_at(&self, addr: u64, what: &'static str) -> Result<u32> {
        let b = self.bytes(addr, 4, what)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    }

    fn text(&self, addr: u64, len: u64, what: &'static str) -> Result<String> {
        // Class names and files are short; a huge length is a corrupt header.
        let len = len.min(4096) as usize;
        Ok(String::from_utf8_lossy(&self.bytes(addr, len, what)?).into_owned())
    }

    fn task(&self, index: u64) -> Result<TaskRef> {
        let base = self.layout.tasks + index * TASK_SIZE;
        let pid = self.u32_at(base + 4, "a task's pid")?;
        let name = self.bytes(base + 8, 16, "a task's name")?;
        Ok(TaskRef::new(pid, &nul_str(&name)))
    }

    fn current(&self) -> Result<TaskRef> {
        let i = u64::from(self.u32_at(self.layout.current, "UMK_CURRENT")?);
        self.task(i.min(self.layout.nr_tasks - 1))
    }

    fn lock(&mut self, header: u64, ctx: u64) -> Result<LockOp> {
        let class_ptr = self.u64_at(header, "a lock header's class")?;
        let kind = self.u32_at(header + 16, "a lock header's kind")?;
        let class = match self.classes.get(&class_ptr) {
            Some(c) => c.clone(),
            None => {
                let c = self.bytes(class_ptr, 36, "a lock class")?;
                let w = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or([0; 8]));
                let line = u32::from_le_bytes(c[32..36].try_into().unwrap_or([0; 4]));
                let class = LockClass {
                    name: self.text(w(0), w(8), "a lock class name")?,
                    file: self.text(w(16), w(24), "a lock class file")?,
                    line,
                };
                self.classes.insert(class_ptr, class.clone());
                class
            }
        };
        Ok(LockOp {
            addr: header,
            class,
            kind: LockKind::from_header(kind),
            ctx: Ctx::from_bits(ctx as u32),
        })
    }

    fn cache_name(&mut self, index: u64) -> Result<String> {
        if index == PAGES_CACHE {
            return Ok("pages".to_string());
        }
        if let Some(n) = self.caches.get(&index) {
            return Ok(n.clone());
        }
        if index >= NR_CACHES {
            return Ok(format!("cache-{index}"));
        }
        let raw = self.bytes(
            self.layout.caches + index * CACHE_INFO_SIZE,
            24,
            "a slab cache name",
        )?;
        let name = nul_str(&raw);
        // Caches are created once and never renamed, so the name can be kept.
        if !name.is_empty() {
            self.caches.insert(index, name.clone());
        }
        Ok(name)
    }

    /// Return addresses from `rbp`'s frame-pointer chain, stopping where the chain leaves
    /// the guest's code (the host stack of a signal, the task trampoline).
    fn rbp_chain(&self, mut rbp: u64, out: &mut Vec<u64>) {
        while out.len() < MAX_FRAMES && rbp != 0 && rbp & 7 == 0 {
            let (Ok(next), Ok(ret)) = (
                self.u64_at(rbp, "a saved frame pointer"),
                self.u64_at(rbp + 8, "a return address"),
            ) else {
                break;
            };
            if ret == 0 || self.sym.symbol(ret.saturating_sub(1)).is_none() {
                break;
            }
            out.push(ret);
            // Frames grow down, so callers sit above: anything else is not a frame.
            if next <= rbp {
                break;
            }
            rbp = next;
        }
    }

    /// The stack at a probe's first instruction: its return address, then the caller's
    /// chain (the probe has not pushed rbp yet, so rbp is still the caller's frame).
    fn probe_stack(&self, rsp: u64, rbp: u64) -> Vec<u64> {
        let mut out = Vec::new();
        if let Ok(ret) = self.u64_at(rsp, "a probe's return address") {
            out.push(ret);
            self.rbp_chain(rbp, &mut out);
        }
        out
    }

    fn task_end(&self, index: u64) -> Result<Option<(TaskRef, TaskEnd)>> {
        let base = self.layout.tasks + index * TASK_SIZE;
        let raw = self.bytes(base, TASK_SIZE as usize, "a task-table entry")?;
        let u32_ = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_ = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap_or([0; 8]));
        let state = TaskState::from_table(u32_(0));
        if state == TaskState::Unused {
            return Ok(None);
        }
        let task = TaskRef::new(u32_(4), &nul_str(&raw[8..24]));
        let wait = WaitKind::from_table(u32_(48));
        let wait_obj = u64_(56);
        let held_count = (u32_(176) as usize).min(8);
        let held = (0..held_count).map(|i| u64_(112 + 8 * i)).collect();
        let wait_owner = if wait == WaitKind::Mutex && wait_obj != 0 {
            self.u32_at(wait_obj + 12, "a lock header's owner").ok()
        } else {
            None
        };
        Ok(Some((
            task,
            TaskEnd {
                state,
                wait,
                wait_obj,
                wait_name: nul_str(&raw[64..88]),
                wait_owner,
                held,
            },
        )))
    }

    fn end_states(&self, pos: Position) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for i in 0..self.layout.nr_tasks {
            if let Some((task, end)) = self.task_end(i)? {
                out.push(Event {
                    pos,
                    task,
                    stack: Vec::new(),
                    kind: EventKind::TaskState(end),
                });
            }
        }
        Ok(out)
    }

    /// The oops at the kernel's SIGSEGV handler: `rsi` is the siginfo, `rdx` the ucontext.
    fn fault(&self, g: &trace::Gprs) -> Result<(Crash, Vec<u64>)> {
        let signal = self.u32_at(g.rsi, "siginfo.si_signo")? as i32;
        let code = self.u32_at(g.rsi + 8, "siginfo.si_code")? as i32;
        let addr = self.u64_at(g.rsi + 16, "siginfo.si_addr")?;
        let raw = self.bytes(g.rdx + UC_GREGS, 18 * 8, "the fault's ucontext")?;
        let r = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let regs = Regs {
            r8: r(0),
            r9: r(1),
            r10: r(2),
            r11: r(3),
            r12: r(4),
            r13: r(5),
            r14: r(6),
            r15: r(7),
            rdi: r(8),
            rsi: r(9),
            rbp: r(10),
            rbx: r(11),
            rdx: r(12),
            rax: r(13),
            rcx: r(14),
            rsp: r(15),
            rip: r(16),
            eflags: r(17),
        };
        // SI_KERNEL (0x80): a general protection fault, which has no address.
        let fault_addr = (code != 0x80).then_some(addr);
        let code_bytes = self.tl.read_memory(regs.rip, 16).unwrap_or_default();
        let mut stack = vec![regs.rip];
        self.rbp_chain(regs.rbp, &mut stack);
        Ok((
            Crash {
                signal,
                fault_addr,
                regs,
                code: code_bytes,
            },
            stack,
        ))
    }
}

fn nul_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn layout(sym: &Symbolizer) -> Result<GuestLayout> {
    Ok(GuestLayout {
        tasks: sym.symbol_address("UMK_TASKS")?,
        current: sym.symbol_address("UMK_CURRENT")?,
        nr_tasks: NR_TASKS_MAX,
        caches: sym.symbol_address("UMK_SLAB_CACHES")?,
    })
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

/// Opens the trace's timeline (a directory or a pack) and the guest's symbols, from
/// `binary` or else from the binary the replay runs.
pub fn open(trace: &Path, binary: Option<&Path>) -> Result<(Timeline, Symbolizer)> {
    let tl = timeline(trace)?;
    let sym = Symbolizer::open(binary.unwrap_or(tl.binary()))?;
    Ok((tl, sym))
}

/// Replays the trace to its end with probes armed and returns the events.
pub fn collect(trace_dir: &Path, mut opts: CollectOptions) -> Result<(Collection, Symbolizer)> {
    let started = Instant::now();
    let (mut tl, sym) = open(trace_dir, opts.binary.as_deref())?;
    let probes = sym.probe_addresses(&PROBE_FUNCTIONS)?;
    let fault_handler = sym.symbol_address(FAULT_HANDLER).ok();
    let layout = layout(&sym)?;
    let size_sym = sym.symbol_address("UMK_TASK_SIZE")?;
    let total = tl.events().len() as u64;
    let mut rd = Reader {
        tl: &mut tl,
        trace: trace_dir.to_path_buf(),
        layout,
        classes: BTreeMap::new(),
        caches: BTreeMap::new(),
        sym: &sym,
    };
    // The layout constants must match the guest that was recorded.
    let size = rd.u64_at(size_sym, "UMK_TASK_SIZE")?;
    if size != TASK_SIZE {
        return Err(Error::GuestLayout {
            what: "UMK_TASK_SIZE",
            expected: TASK_SIZE,
            found: size,
        });
    }
    let nr_sym = sym.symbol_address("UMK_NR_TASKS")?;
    rd.layout.nr_tasks = rd.u64_at(nr_sym, "UMK_NR_TASKS")?.min(NR_TASKS_MAX);
    for &a in probes.iter().chain(fault_handler.iter()) {
        rd.tl.set_breakpoint(a);
    }

    let mut events = Vec::new();
    let mut stats = CollectStats {
        trace_events: total,
        ..CollectStats::default()
    };
    let exit = loop {
        let stop = rd
            .tl
            .run_forward()
            .map_err(rd.replay_err("running forward through"))?;
        let addr = match stop {
            StopReason::Breakpoint(a) => a,
            StopReason::Exited(e) => break Some(e),
            StopReason::EndOfHistory | StopReason::StartOfHistory => break None,
            StopReason::Done | StopReason::Watchpoint(_) => continue,
        };
        stats.probe_hits += 1;
        let t0 = Instant::now();
        let pos = if opts.exact_positions {
            rd.tl
                .position()
                .map_err(rd.replay_err("placing a probe hit in"))?
        } else {
            rd.tl.mark_here()
        };
        stats.positioning += t0.elapsed();
        let g = rd
            .tl
            .regs()
            .map_err(rd.replay_err("reading registers in"))?;
        let task = rd.current()?;
        if Some(addr) == fault_handler {
            let (crash, stack) = rd.fault(&g)?;
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
                let op = ObjectOp {
                    cache_index: g.rdi as u8,
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
                prev: rd.task(g.rdi % rd.layout.nr_tasks)?,
                next: rd.task(g.rsi % rd.layout.nr_tasks)?,
            },
            Some("umk_irq_enter") => EventKind::IrqEnter { irq: g.rdi as u32 },
            Some("umk_irq_exit") => EventKind::IrqExit { irq: g.rdi as u32 },
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
    Ok((
        Collection {
            events,
            binary: sym.path().to_path_buf(),
            exit,
            stats,
            poison_load,
        },
        sym,
    ))
}

/// Most debug-register slots the CPU has; each covers at most 8 aligned bytes.
pub const WATCH_SLOTS: usize = 4;

/// The 8-byte words of `obj` to watch: the faulting word first, then its neighbours
/// alternately after and before, all inside the object — four slots cover 32 bytes.
pub fn watched_words(obj: &ObjRecord, fault: u64) -> Vec<u64> {
    let start = obj.ptr & !7;
    let end = obj.ptr + obj.size.max(1);
    let first = if obj.contains(fault) {
        fault & !7
    } else {
        start
    };
    let mut out = vec![first];
    let mut k = 1u64;
    while out.len() < WATCH_SLOTS && (first + 8 * k < end || first >= start + 8 * k) {
        if first + 8 * k < end {
            out.push(first + 8 * k);
        }
        if out.len() < WATCH_SLOTS && first >= start + 8 * k {
            out.push(first - 8 * k);
        }
        k += 1;
    }
    out
}

/// Replays from the free of the object at `ptr` (found from `from`, the mark before it)
/// to the crash at `to`, with read/write watchpoints on `words`, and returns every access
/// to them: position, task, stack (the accessing instruction first) and the accessed
/// address. x86 reports data breakpoints after the access; the instruction is found by
/// decoding the function up to the reported rip. The run ends at the kernel's fault
/// handler (the crash) or past `to`.
pub fn watch_object(
    tl: &mut Timeline,
    sym: &Symbolizer,
    trace_dir: &Path,
    words: &[u64],
    from: &Position,
    ptr: u64,
    to: &Position,
) -> Result<Vec<Access>> {
    let err = |op: &'static str| {
        move |e: replayer::Error| Error::Replay {
            op,
            trace: trace_dir.to_path_buf(),
            source: Box::new(e),
        }
    };
    for b in tl.breakpoints() {
        tl.remove_breakpoint(b);
    }
    tl.seek(from).map_err(err("seeking to the free in"))?;
    // The mark may lie before the free: run to the probe that frees this very object, so
    // the poisoning itself is not reported as an access.
    let free = sym.symbol_address("umk_free")?;
    tl.set_breakpoint(free);
    loop {
        match tl.run_forward().map_err(err("running to the free in"))? {
            StopReason::Breakpoint(_) => {
                let g = tl.regs().map_err(err("reading registers in"))?;
                if g.rsi == ptr {
                    break;
                }
            }
            _ => return Ok(Vec::new()),
        }
    }
    tl.remove_breakpoint(free);
    let fault_handler = sym.symbol_address(FAULT_HANDLER).ok();
    if let Some(f) = fault_handler {
        tl.set_breakpoint(f);
    }
    for &w in words.iter().take(WATCH_SLOTS) {
        tl.set_watchpoint(w, 8, WatchKind::ReadWrite)
            .map_err(err("setting a watchpoint in"))?;
    }
    let layout = layout(sym)?;
    let mut out = Vec::new();
    while let StopReason::Watchpoint(_) = tl
        .run_forward()
        .map_err(err("watching the freed object in"))?
    {
        let pos = tl.mark_here();
        if pos > *to {
            break;
        }
        let g = tl.regs().map_err(err("reading registers in"))?;
        let rd = Reader {
            tl: &mut *tl,
            trace: trace_dir.to_path_buf(),
            layout,
            classes: BTreeMap::new(),
            caches: BTreeMap::new(),
            sym,
        };
        let task = rd.current()?;
        let (insn_addr, addr, size, write) = accessing_insn(sym, &Regs::from(&g), words);
        let mut stack = vec![insn_addr];
        rd.rbp_chain(g.rbp, &mut stack);
        out.push(Access {
            pos,
            task,
            stack,
            addr,
            size,
            write,
        });
        // A reused object can be hammered; the first accesses tell the story.
        if out.len() >= 256 {
            break;
        }
    }
    for &w in words {
        tl.remove_watchpoint(w);
    }
    if let Some(f) = fault_handler {
        tl.remove_breakpoint(f);
    }
    Ok(out)
}

/// The instruction that just accessed a watched word (the one ending at rip, found by
/// decoding the containing function), its address operand evaluated with the registers
/// after it, and whether it wrote. Falls back to the first watched word when the
/// instruction cannot be found or its base register was overwritten by the access itself.
fn accessing_insn(sym: &Symbolizer, regs: &Regs, words: &[u64]) -> (u64, u64, u8, bool) {
    let fallback = (regs.rip, words.first().copied().unwrap_or(0), 8, false);
    let Some((start, bytes)) = sym.function_code(regs.rip.saturating_sub(1)) else {
        return fallback;
    };
    let Ok(insns) = disassemble(bytes, start, usize::MAX / 2) else {
        return fallback;
    };
    let Some(insn) = insns
        .iter()
        .find(|i| i.addr + i.bytes.len() as u64 == regs.rip)
    else {
        return fallback;
    };
    let write = insn
        .operands
        .split(", ")
        .next()
        .is_some_and(|d| d.contains('['))
        && !matches!(insn.mnemonic.as_str(), "cmp" | "test" | "push");
    let Some(m) = insn.mem.iter().find(|m| m.base.as_deref() != Some("rip")) else {
        return (insn.addr, fallback.1, 8, write);
    };
    let addr = m
        .address(|r| regs.get(r))
        .filter(|a| words.iter().any(|w| a & !7 == *w))
        .unwrap_or(fallback.1);
    (insn.addr, addr, m.size, write)
}
