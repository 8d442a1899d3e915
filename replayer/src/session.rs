//! The replay engine: one live tracee, the cursor into the event stream, and the loop that
//! runs the tracee to the next stop and matches it against the next event (syscall at its
//! seccomp stop, signal at its placement, rdtsc at its trap, exit). Every stop is checked;
//! a mismatch is a [`Error::Divergence`]. The engine never leaves the tracee at a seccomp
//! stop: between calls it rests at an event boundary, a tick mark, after a single step, or
//! at a breakpoint or watchpoint hit.
//!
//! Event handlers live in files named after the recorder's: `syscalls`, `signals`, `time`,
//! `cpuid`, `mmaps`, `ticks`, `exec`.
//!
//! The engine's state is its own: the handlers and the timeline change it through methods
//! named for what happened, and a checkpoint keeps a [`Snapshot`] beside its copy of the
//! tracee, which [`Engine::restore`] puts back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use trace::{Event, ExitStatus, Gprs, Header, Placement, SignalEvent};
use tracee::siginfo::code;
use tracee::{Addr, Exit, Regs, Resume, Signal, Stop, Stopped, Waited, WatchKind};

use crate::cpuid::{Mode as CpuidMode, CPUID};
use crate::error::{Error, Result};
use crate::position::Position;
use crate::ticks::{TickAddrs, NEVER};

/// The trap flag in rflags.
const TF: u64 = 1 << 8;

/// The opened trace, shared by the engine and the timeline.
pub struct TraceData {
    /// The path the trace was opened from (a directory or a pack), for messages.
    pub path: std::path::PathBuf,
    /// The reader (for blobs).
    pub reader: trace::TraceReader,
    /// All events, in order.
    pub events: Vec<Event>,
    /// How the guest is started (recorded paths, or the packed binary).
    pub launch: crate::files::Launch,
}

impl TraceData {
    /// The header.
    pub fn header(&self) -> &Header {
        self.reader.header()
    }

    /// The guest binary the replay runs (read symbols from this one).
    pub fn binary(&self) -> &std::path::Path {
        &self.launch.binary
    }

    /// The guest binary's symbols and DWARF as the program ran: a position-independent
    /// binary is moved by where the loader put it (the recorded AT_ENTRY).
    pub fn load_binary(&self) -> guest::Result<guest::Binary> {
        let entry = self
            .header()
            .auxv
            .iter()
            .find(|(k, _)| *k == libc::AT_ENTRY)
            .map(|&(_, v)| v);
        guest::Binary::load_at(self.binary(), entry)
    }
}

/// What kind of ptrace stop the live tracee rests at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A signal-delivery stop (exec, traps, steps, faults): resuming with no signal
    /// continues user execution; resuming with one delivers it now.
    SignalDelivery,
    /// The syscall-exit stop of event `0` (its result already written).
    SyscallExit(u64),
}

/// The breakpoints one resume put in memory, and which of them stand for the next
/// event.
#[derive(Default)]
struct Planted {
    /// Address and original byte of each breakpoint written.
    saved: Vec<(u64, u8)>,
    /// Where a signal placed by registers may be delivered.
    signal_at: Option<u64>,
    /// The `cpuid` a host without CPUID faulting answers at its breakpoint.
    cpuid_at: Option<u64>,
    /// That `cpuid` is the instruction the tracee rests at: already reported, if a user
    /// breakpoint is there too.
    cpuid_here: bool,
}

/// Whether the instruction at `at` is a `cpuid`.
fn is_cpuid_at(s: &Stopped, at: u64) -> bool {
    let mut insn = [0u8; 2];
    s.read_exact(Addr::new(at), &mut insn).is_ok() && insn == CPUID
}

/// Where the replay should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// The boundary before event N.
    Boundary(u64),
    /// The tick mark K in the current interval.
    Tick(u64),
    /// One instruction (or one event application).
    Step,
    /// The end of the recording.
    End,
}

/// Why `run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reached {
    Goal,
    Breakpoint(u64),
    /// Hardware slot bits that fired.
    Watchpoint(u8),
    /// The tracee faulted with this signal and stands at the faulting instruction, the
    /// signal not delivered (only when faults are reported; see `report_faults`).
    Fault(i32),
    Exited(ExitStatus),
    /// The recording ends here without an exit (aborted or truncated).
    End,
}

/// Where console output goes.
#[derive(Debug)]
pub enum Console {
    /// The replayer's own stdout/stderr.
    Stdout,
    /// Nowhere.
    Discard,
    /// Kept in memory (tests, the interactive mode's `output`).
    Buffer(Vec<u8>),
}

/// A hardware watchpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// Address watched.
    pub addr: u64,
    /// Length (1, 2, 4 or 8).
    pub len: usize,
    /// Access kind.
    pub kind: WatchKind,
}

/// The live replay.
pub(crate) struct Engine {
    data: Arc<TraceData>,
    /// The task whose events come next.
    cur: TaskState,
    /// The recording's other tasks, by recording-time id.
    parked: BTreeMap<u32, TaskState>,
    /// The first task's end, once replayed: the replay's end, as it was the recording's.
    first_exit: Option<ExitStatus>,
    /// Index of the next event to apply.
    next: u64,
    /// Set once every task is gone.
    exit: Option<ExitStatus>,
    /// REWIND_TICKS at the exec stop.
    start_ticks: u64,
    console: Console,
    /// Console output is printed for events below this only once.
    printed_upto: u64,
    pacer: Option<crate::time::Pacer>,
    /// The current position, when known (None after a breakpoint stop reached by
    /// continuing, until the timeline computes it).
    pos: Option<Position>,
    /// The last signal delivered (number, registers at delivery).
    last_signal: Option<(i32, Gprs)>,
    breakpoints: BTreeSet<u64>,
    watches: [Option<Watch>; 4],
    cpuid: CpuidMode,
    /// Why this host cannot enter a signal handler as the recording did, if it cannot.
    frames_differ: Option<String>,
    /// Stop at a synchronous fault before its signal is delivered (a debugger's signal
    /// stop), instead of delivering it at once.
    report_faults: bool,
    /// The next fault is the one just reported: deliver it.
    deliver_fault: bool,
    /// REWIND_TICKS at the latest mark (boundary or tick mark) reached: while stepping,
    /// the next mark is the one after it.
    mark_ticks: u64,
    /// The memory files behind the recording's shared files.
    shared: crate::shared::SharedFiles,
    /// The one process breakpoints, watchpoints and steps are for, if one was chosen.
    focus: Option<Focus>,
    /// The last visit to a point placed by registers that was not it: the event, the
    /// registers there, and the state digest once two visits had the same registers.
    missed_place: Option<(u64, Gprs, Option<[u8; 32]>)>,
}

/// One process of the recording that a debugger looks at: the others run, unseen.
#[derive(Debug, Clone)]
pub(crate) struct Focus {
    pub(crate) tree: Arc<trace::TaskTree>,
    /// Its index in `tree.processes`.
    pub(crate) process: usize,
}

impl Focus {
    /// Whether the process runs event `n` (and the stretch of the schedule before it).
    pub(crate) fn runs(&self, n: u64) -> bool {
        self.tree.process_of_event(n) == self.process
    }
}

/// One task's replay state: the current task's is `Engine::cur`, the others' wait in
/// `Engine::parked` until a switch brings them back.
pub(crate) struct TaskState {
    /// The recording-time id; `None` for the first task until the first switch names it.
    pub(crate) tid: Option<u32>,
    pub(crate) live: Option<Stopped>,
    pub(crate) kind: Kind,
    /// Where the task stands in a call of the task schedule (see `tasks`).
    pub(crate) call: crate::tasks::Call,
    /// The task has ended.
    pub(crate) ended: bool,
    /// The recording's first task, whose end is the replay's.
    pub(crate) first: bool,
    /// Its end, reaped while another task waited for it (see `tasks`).
    pub(crate) reaped: Option<Exit>,
    pub(crate) ticks: Option<TickAddrs>,
    /// The value last written to REWIND_TICK_TARGET in the live tracee, if known.
    pub(crate) armed: Option<u64>,
    /// The tracee is at the stop of event `next`, not yet applied.
    pub(crate) at_event_stop: bool,
    /// A synchronous fault to deliver at the next resume.
    pub(crate) pending_fault: Option<Signal>,
    pub(crate) hw_applied: bool,
    /// The stand-in its execve, stopped at its entry, was sent to (`exec`).
    pub(crate) exec_standin: Option<crate::exec::ExecStandin>,
}

impl TaskState {
    /// The task's pid at replay, while it has a tracee.
    pub(crate) fn pid(&self) -> Option<tracee::Pid> {
        if let Some(s) = &self.live {
            return Some(s.pid());
        }
        match &self.call {
            crate::tasks::Call::New(r, _)
            | crate::tasks::Call::InKernel(r, ..)
            | crate::tasks::Call::Exiting(r) => Some(r.pid()),
            _ => None,
        }
    }

    /// A task that starts with no stop to rest at yet (`call` says where it is).
    pub(crate) fn new(
        tid: Option<u32>,
        ticks: Option<TickAddrs>,
        call: crate::tasks::Call,
    ) -> TaskState {
        TaskState {
            tid,
            live: None,
            kind: Kind::SignalDelivery,
            call,
            ended: false,
            first: false,
            reaped: None,
            ticks,
            armed: None,
            at_event_stop: false,
            pending_fault: None,
            hw_applied: false,
            exec_standin: None,
        }
    }
}

/// The engine's logical state at a known position, as a checkpoint keeps it beside its
/// stopped copy of the tracee. Everything else is either the same for every position
/// (the trace, breakpoints, watchpoints, the console) or derived again on restore (the
/// tick mark from the position, the debug state of the fresh copy).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pos: Position,
    /// Taken at the trap of a tick-placed signal, before its delivery.
    at_event_stop: bool,
    last_signal: Option<(i32, Gprs)>,
    /// Which task the one task of the copy is (a checkpoint holds one), and its
    /// execution-point ABI: a restore replaces whatever task was current.
    tid: Option<u32>,
    first: bool,
    ticks: Option<TickAddrs>,
    /// The first task's end, if it came before.
    first_exit: Option<ExitStatus>,
}

impl Snapshot {
    /// Where the snapshot was taken.
    pub(crate) fn position(&self) -> Position {
        self.pos
    }
}

/// Registers in the trace's representation (the one conversion, through the kernel's
/// word order, shared with the recorder).
pub(crate) fn gprs(r: &Regs) -> Gprs {
    Gprs::from_user_regs(r.to_array())
}

/// Registers from the trace's representation (which has every field of the kernel's).
pub(crate) fn regs_from(g: &Gprs) -> Regs {
    Regs::from_array(g.to_user_regs())
}

/// The registers and state digest of an event placed by them: a `Placement::Registers`
/// signal, a preemption.
pub(crate) fn registers_place(ev: &Event) -> Option<(&Gprs, &trace::BlobHash)> {
    match ev {
        Event::Signal(SignalEvent {
            placement: Placement::Registers { state },
            regs,
            ..
        }) => Some((regs, state)),
        Event::Preempted { regs, state } => Some((regs, state)),
        _ => None,
    }
}

/// Whether two register sets agree on what a program can observe.
pub(crate) fn same_regs(a: &Gprs, b: &Gprs) -> bool {
    let mut x = *a;
    let mut y = *b;
    x.orig_rax = 0;
    y.orig_rax = 0;
    const RF: u64 = 1 << 16;
    x.eflags &= !RF;
    y.eflags &= !RF;
    x == y
}

/// The registers that differ, for divergence messages.
pub(crate) fn regs_diff(expected: &Gprs, found: &Gprs) -> String {
    let names = [
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
        "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds",
        "es", "fs", "gs",
    ];
    let (a, b) = (expected.to_user_regs(), found.to_user_regs());
    let diffs: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 15 && a[i] != b[i] && !(i == 18 && (a[i] ^ b[i]) == 1 << 16))
        .map(|(i, n)| format!("{n} {:#x} (recorded {:#x})", b[i], a[i]))
        .collect();
    diffs.join(", ")
}

/// Whether `ev` is the end of a program killed with SIGKILL. Nothing delivers SIGKILL at a
/// point the recorder can see (no signal-delivery stop), so such an ending always comes
/// from outside the program: when it died inside a blocking call, the recorder wrote that
/// call with -EINTR just before (`recorder::session`), and the call's return is then
/// applied here without a single user instruction after it.
pub(crate) fn killed_from_outside(ev: &Event) -> bool {
    matches!(
        ev,
        Event::Exit(ExitStatus::Signaled { signo, .. }) if *signo == libc::SIGKILL
    )
}

impl Engine {
    pub(crate) fn new(
        data: Arc<TraceData>,
        started: crate::exec::Started,
        console: Console,
    ) -> Engine {
        let mut first = TaskState::new(None, started.ticks, crate::tasks::Call::None);
        first.live = Some(started.stopped);
        first.first = true;
        Engine {
            data,
            cur: first,
            parked: BTreeMap::new(),
            first_exit: None,
            next: 0,
            exit: None,
            start_ticks: started.start_ticks,
            console,
            printed_upto: 0,
            pacer: None,
            pos: Some(Position::START),
            last_signal: None,
            breakpoints: BTreeSet::new(),
            watches: [None; 4],
            cpuid: started.cpuid,
            frames_differ: started.frames_differ,
            report_faults: false,
            deliver_fault: false,
            mark_ticks: started.start_ticks,
            shared: Default::default(),
            focus: None,
            missed_place: None,
        }
    }

    /// Wraps a tracee error with the current event index.
    pub(crate) fn t<T>(&self, r: tracee::Result<T>) -> Result<T> {
        r.map_err(|source| Error::Tracee {
            event: self.next,
            source,
        })
    }

    /// The refusal to enter the handler of `signo` on a signal frame of another size
    /// than the recording's (`why` says both).
    pub(crate) fn other_frames(&self, signo: i32, why: String) -> Error {
        Error::HostMismatch {
            trace: self.data.path.clone(),
            why: format!(
                "at event {}, the handler of signal {signo} entered: {why}",
                self.next
            ),
        }
    }

    pub(crate) fn diverged(&self, expected: String, found: String) -> Error {
        Error::Divergence {
            event: self.next,
            expected,
            found,
        }
    }

    /// The live tracee (an internal invariant: present unless exited).
    pub(crate) fn live(&self) -> Result<&Stopped> {
        self.cur.live.as_ref().ok_or_else(|| {
            Error::Invalid(match self.exit {
                Some(e) => format!("the tracee has ended ({e:?}); seek back to inspect it"),
                None => "no live tracee".into(),
            })
        })
    }

    pub(crate) fn take_live(&mut self) -> Result<Stopped> {
        self.cur
            .live
            .take()
            .ok_or_else(|| Error::Invalid("no live tracee".into()))
    }

    pub(crate) fn event(&self, i: u64) -> Option<&Event> {
        self.data.events.get(usize::try_from(i).ok()?)
    }

    /// REWIND_TICKS now (0 without the ABI).
    pub(crate) fn read_ticks(&self, s: &Stopped) -> Result<u64> {
        match self.cur.ticks {
            Some(t) => self.t(s.read_u64(t.ticks)),
            None => Ok(0),
        }
    }

    /// REWIND_TICKS at the boundary before event `n`: the ticks the previous event
    /// recorded (events do not advance the counter).
    pub(crate) fn boundary_ticks(&self, n: u64) -> u64 {
        if n == 0 {
            return self.start_ticks;
        }
        match self.event(n - 1).and_then(Event::ticks) {
            Some(t) => t,
            None => self.boundary_ticks(n - 1),
        }
    }

    /// Whether the tracee rests at the stop of event `next` without needing to run.
    fn event_stop_now(&self) -> bool {
        if self.cur.at_event_stop {
            return true;
        }
        matches!(
            (self.event(self.next), self.cur.kind),
            (Some(Event::Signal(s)), Kind::SyscallExit(e))
                if s.placement == Placement::SyscallExit { event: e }
        )
    }

    /// Runs toward `goal`; `report_hits` makes user breakpoints and watchpoints stop it.
    pub(crate) fn run(&mut self, goal: Goal, report_hits: bool) -> Result<Reached> {
        let mut stepped = false;
        loop {
            if let Some(e) = self.exit {
                return Ok(Reached::Exited(e));
            }
            match goal {
                Goal::Boundary(n) if self.reached_boundary(n) => return Ok(Reached::Goal),
                Goal::Step if stepped => return Ok(Reached::Goal),
                _ => {}
            }
            let ev = match self.event(self.next) {
                None | Some(Event::Aborted { .. }) => return Ok(Reached::End),
                Some(e) => e.clone(),
            };
            if self.on_task_event(&ev)? {
                stepped = true;
                continue;
            }
            if killed_from_outside(&ev) {
                match self.kill_at_boundary()? {
                    Some(r) => return Ok(r),
                    None => continue,
                }
            }
            if self.event_stop_now() {
                self.cur.at_event_stop = false;
                let s = self.take_live()?;
                if matches!(ev, Event::Preempted { .. }) {
                    // It rests here; the switch that follows parks it.
                    self.applied();
                    self.at_boundary(s, Kind::SignalDelivery);
                } else {
                    self.apply_signal_here(s, &ev)?;
                }
                stepped = true;
                if let Some(r) = self.hit_at_boundary(report_hits)? {
                    return Ok(r);
                }
                continue;
            }
            // Already where a signal or preemption placed by registers was (a resume would
            // step off the temporary breakpoint there without looking).
            if registers_place(&ev).is_some() {
                let s = self.live()?;
                let r = self.t(s.regs())?;
                if self.at_registers_place(s, &ev, &r)? {
                    self.cur.at_event_stop = true;
                    continue;
                }
            }
            match self.resume_and_classify(&ev, goal, report_hits)? {
                Some(r) => return Ok(r),
                None => {
                    if goal == Goal::Step {
                        stepped = true;
                    }
                }
            }
        }
    }

    /// Whether the tracee stands where event `ev` was placed by registers (a
    /// `Placement::Registers` signal, a preemption): the same registers, and (only then,
    /// since it reads all writable memory) the same digest of the rest of its state.
    fn at_registers_place(&self, s: &Stopped, ev: &Event, regs: &Regs) -> Result<bool> {
        let Some((want, state)) = registers_place(ev) else {
            return Ok(false);
        };
        if !same_regs(want, &gprs(regs)) {
            return Ok(false);
        }
        Ok(self.t(s.state_digest())? == state.0)
    }

    /// A visit to the address of a point placed by registers that was not the point. Two
    /// visits in a row with the same registers and state mean a loop that changes nothing
    /// and so never comes to the recorded state: the replay stops there rather than spin.
    fn missed_registers_place(&mut self, s: &Stopped, ev: &Event, regs: &Regs) -> Result<()> {
        let here = gprs(regs);
        let digest = match &self.missed_place {
            Some((n, before, _)) if *n == self.next && same_regs(before, &here) => {
                Some(self.t(s.state_digest())?)
            }
            _ => None,
        };
        if let (Some(d), Some((_, _, Some(before)))) = (digest, &self.missed_place) {
            if d == *before {
                return Err(self.diverged(
                    crate::describe(ev),
                    format!(
                        "the task comes back to {:#x} with the same registers and state each \
                         time, never the recorded ones: {}",
                        regs.rip(),
                        regs_diff(registers_place(ev).map_or(&here, |(g, _)| g), &here)
                    ),
                ));
            }
        }
        self.missed_place = Some((self.next, here, digest));
        Ok(())
    }

    /// After an event was applied: a breakpoint at the new boundary's rip is a hit.
    fn hit_at_boundary(&mut self, report_hits: bool) -> Result<Option<Reached>> {
        // No task rests here (one ended, or waits in the kernel): no instruction either.
        let Some(live) = self.cur.live.as_ref() else {
            return Ok(None);
        };
        if !report_hits || !self.in_focus() || self.exit.is_some() || self.breakpoints.is_empty() {
            return Ok(None);
        }
        let rip = self.t(live.regs())?.rip();
        Ok(self
            .breakpoints
            .contains(&rip)
            .then_some(Reached::Breakpoint(rip)))
    }

    /// A `Placement::Registers` signal cannot be delivered before REWIND_TICKS reaches the
    /// ticks it was recorded at (the counter only grows): until then, the tick to run to
    /// first, with the temporary breakpoint left out. Without it, the breakpoint traps at
    /// every pass of a hot loop, possibly for tens of thousands of preemption points.
    fn registers_waypoint(&self, ev: &Event, s: &Stopped) -> Result<Option<u64>> {
        match ev {
            Event::Signal(sig)
                if matches!(sig.placement, Placement::Registers { .. })
                    && self.cur.ticks.is_some() =>
            {
                let now = self.read_ticks(s)?;
                Ok((now < sig.ticks).then_some(sig.ticks))
            }
            _ => Ok(None),
        }
    }

    /// The tick target the next resume needs.
    fn wanted_target(&self, ev: &Event, goal: Goal, s: &Stopped) -> Result<u64> {
        let mut target = NEVER;
        if let Event::Signal(sig) = ev {
            if let Placement::Tick { ticks } = sig.placement {
                target = ticks;
            }
        }
        if goal != Goal::Step {
            if let Some(k) = self.registers_waypoint(ev, s)? {
                target = target.min(k);
            }
        }
        match goal {
            Goal::Tick(k) => target = target.min(k),
            Goal::Step if self.cur.ticks.is_some() => {
                let _ = s;
                target = target.min(self.mark_ticks.wrapping_add(1))
            }
            _ => {}
        }
        Ok(target)
    }

    fn apply_hw(&mut self, s: &Stopped, on: bool) -> Result<()> {
        let want = on && self.watches.iter().any(Option::is_some);
        if want {
            let slots = self.watches.map(|w| w.map(|w| (w.addr, w.len, w.kind)));
            self.t(s.set_watchpoints(&slots))?;
            self.cur.hw_applied = true;
        } else if self.cur.hw_applied {
            self.t(s.set_watchpoints(&[None; 4]))?;
            self.cur.hw_applied = false;
        }
        Ok(())
    }

    /// Resumes once, waits, and handles the stop. `Some` ends the run.
    fn resume_and_classify(
        &mut self,
        ev: &Event,
        goal: Goal,
        report_hits: bool,
    ) -> Result<Option<Reached>> {
        // Another process than the one in focus runs with nothing of the debugger's.
        let report_hits = report_hits && self.in_focus();
        let s = self.take_live()?;
        let target = self.wanted_target(ev, goal, &s)?;
        if let Some(t) = self.cur.ticks {
            if self.cur.armed != Some(target) {
                self.t(s.write_u64(t.target, target))?;
                self.cur.armed = Some(target);
            }
        }
        self.apply_hw(&s, report_hits)?;
        let regs = self.t(s.regs())?;
        let rip = regs.rip();
        // Software breakpoints are in memory only while the tracee runs.
        let mut insert: BTreeSet<u64> = BTreeSet::new();
        // A `cpuid` about to run that this host cannot trap gets its breakpoint whatever
        // the goal: a step would run it natively.
        let mut planted = Planted {
            cpuid_here: self.cpuid == CpuidMode::Breakpoint
                && self.cur.pending_fault.is_none()
                && is_cpuid_at(&s, rip),
            ..Planted::default()
        };
        if planted.cpuid_here {
            planted.cpuid_at = Some(rip);
        } else if goal != Goal::Step {
            if report_hits {
                insert.extend(self.breakpoints.iter().copied());
            }
            match ev {
                _ if registers_place(ev).is_some()
                    && self.registers_waypoint(ev, &s)?.is_none() =>
                {
                    planted.signal_at = registers_place(ev).map(|(g, _)| g.rip);
                }
                Event::Cpuid(c)
                    if self.cpuid == CpuidMode::Breakpoint && is_cpuid_at(&s, c.rip.0) =>
                {
                    planted.cpuid_at = Some(c.rip.0);
                }
                _ => {}
            }
            insert.extend(planted.signal_at);
        }
        // Stepping off a breakpoint address: leave that one out and execute one instruction.
        let step_off = insert.remove(&rip);
        insert.extend(planted.cpuid_at);
        for &a in &insert {
            let mut b = [0u8; 1];
            if s.read_exact(Addr::new(a), &mut b).is_ok()
                && self.t(s.poke_bytes(Addr::new(a), &[0xcc])).is_ok()
            {
                planted.saved.push((a, b[0]));
            }
        }
        if let Some(a) = planted.signal_at.filter(|&a| a != rip) {
            if !planted.saved.iter().any(|&(at, _)| at == a) {
                // Unmarked, the task would run past the point unseen (a spin forever).
                for &(at, b) in &planted.saved {
                    self.t(s.poke_bytes(Addr::new(at), &[b]))?;
                }
                self.put_live(s);
                return Err(self.diverged(
                    crate::describe(ev),
                    format!("no breakpoint can be set at {a:#x}: not in the task's memory"),
                ));
            }
        }
        let single = !planted.cpuid_here && (goal == Goal::Step || step_off);
        // Single-stepping a `syscall` leaves TF in the r11 the kernel saves rflags to:
        // note it, to clear it after the step (rr does the same).
        let mut insn = [0u8; 2];
        let stepping_syscall = single
            && regs.eflags() & TF == 0
            && s.read_exact(Addr::new(rip), &mut insn).is_ok()
            && insn == [0x0f, 0x05];
        let sig = self.cur.pending_fault.take();
        let how = if single {
            Resume::Step(sig)
        } else {
            Resume::Cont(sig)
        };
        self.pos = None;
        self.cur.kind = Kind::SignalDelivery;
        let running = self.t(s.resume(how))?;
        let waited = if matches!(ev, Event::Exec(_)) && self.has_other_tasks() {
            // An exec in a thread group ends the group's other threads, and waits in the
            // kernel until they are reaped.
            self.wait_reaping(running)?
        } else {
            self.t(running.wait())?
        };
        if let Waited::Stopped(s, _) = &waited {
            for &(a, b) in &planted.saved {
                self.t(s.poke_bytes(Addr::new(a), &[b]))?;
            }
        }
        let (s, stop) = match waited {
            Waited::Exited(e) => return self.on_exit(e),
            Waited::Stopped(s, stop) => (s, stop),
        };
        if stepping_syscall {
            self.clear_stepped_trap_flag(&s)?;
        }
        match stop {
            Stop::Seccomp => {
                self.on_seccomp(s, ev)?;
                self.finish_step_or_hit(goal, report_hits)
            }
            Stop::Signal(Signal::SIGTRAP) => {
                self.on_sigtrap(s, ev, goal, report_hits, &planted, how)
            }
            Stop::Signal(sig) => {
                let info = self.t(s.siginfo())?;
                if sig == Signal::SIGSEGV && info.code() == code::SI_KERNEL {
                    let regs = self.t(s.regs())?;
                    let mut insn = [0u8; 3];
                    let got = self.t(s.read_partial(Addr::new(regs.rip()), &mut insn))?;
                    if self.data.header().tsc_trapped {
                        if let Some(i) = tracee::cpu::decode_tsc(&insn[..got]) {
                            self.on_rdtsc(s, regs, i, ev)?;
                            return self.finish_step_or_hit(goal, report_hits);
                        }
                    }
                    if self.cpuid == CpuidMode::Faulting && insn[..got].starts_with(&CPUID) {
                        self.on_cpuid(s, regs, ev)?;
                        return self.finish_step_or_hit(goal, report_hits);
                    }
                }
                if info.is_synchronous_fault() {
                    if self.report_faults && !std::mem::take(&mut self.deliver_fault) {
                        // Left undelivered, the instruction runs again at the next resume
                        // and faults again: then it is delivered (`deliver_next_fault`).
                        self.cur.live = Some(s);
                        self.pos = None;
                        return Ok(Some(Reached::Fault(sig as i32)));
                    }
                    self.deliver_fault = false;
                    // Faults are not events: the same instruction faults again here, and
                    // the signal is delivered as it was at record time.
                    if let Some(why) = self.frames_differ.clone() {
                        // Unreadable: taken as caught, to refuse rather than guess.
                        let caught = tracee::maps::caught_signals(s.pid()).unwrap_or(!0);
                        if caught & (1 << (sig as i32 - 1)) != 0 {
                            let _ = s.kill();
                            return Err(self.other_frames(sig as i32, why));
                        }
                    }
                    let regs = self.t(s.regs())?;
                    self.last_signal = Some((sig as i32, gprs(&regs)));
                    self.cur.pending_fault = Some(sig);
                } else {
                    // A host signal (the replay emulates every timer and I/O source, so
                    // this is e.g. a terminal's SIGINT): not part of the recording.
                }
                self.cur.live = Some(s);
                Ok(None)
            }
            Stop::Syscall => Err(self.diverged(
                crate::describe(ev),
                "a syscall stop outside any recorded syscall".into(),
            )),
            Stop::Exec => match ev {
                Event::Exec(x) => {
                    self.on_exec(s, x)?;
                    self.finish_step_or_hit(goal, report_hits)
                }
                _ => {
                    let _ = s.kill();
                    Err(self.diverged(
                        crate::describe(ev),
                        "an exec of a new program, which the recording did not have here".into(),
                    ))
                }
            },
            Stop::NewTask | Stop::OtherEvent(_) => {
                let _ = s.kill();
                Err(self.diverged(
                    crate::describe(ev),
                    format!("{stop:?} (a new task, which the recording never had here)"),
                ))
            }
        }
    }

    /// Whether a run toward boundary `n` is done: a task rests at a boundary at or past
    /// it. A boundary where none rests (after a task ended or left, before the switch
    /// away from it; inside a fork that waits in the kernel) is passed, and the next
    /// where one does ends the run: the caller sees which it is.
    fn reached_boundary(&self, n: u64) -> bool {
        self.cur.live.is_some()
            && self
                .pos
                .is_some_and(|p| p == Position::event(p.event) && p.event >= n)
    }

    /// After an event was applied during a run: a step is done; a breakpoint at the new
    /// boundary is a hit.
    fn finish_step_or_hit(&mut self, goal: Goal, report_hits: bool) -> Result<Option<Reached>> {
        if self.exit.is_some() {
            return Ok(self.exit.map(Reached::Exited));
        }
        if let Goal::Boundary(n) = goal {
            if self.reached_boundary(n) {
                return Ok(Some(Reached::Goal));
            }
        }
        if goal == Goal::Step {
            return Ok(Some(Reached::Goal));
        }
        self.hit_at_boundary(report_hits)
    }

    fn on_sigtrap(
        &mut self,
        s: Stopped,
        ev: &Event,
        goal: Goal,
        report_hits: bool,
        planted: &Planted,
        how: Resume,
    ) -> Result<Option<Reached>> {
        let info = self.t(s.siginfo())?;
        let mut regs = self.t(s.regs())?;
        let hits = if self.cur.hw_applied {
            self.t(s.take_watch_hits())?
        } else {
            0
        };
        if info.code() == code::SI_KERNEL {
            let at = regs.rip().wrapping_sub(1);
            if planted.saved.iter().any(|&(a, _)| a == at) {
                regs.set_rip(at);
                self.t(s.set_regs(&regs))?;
                // A user breakpoint on a `cpuid` reached by running is reported before
                // the `cpuid` is answered, as with a trapping host.
                let user_hit = report_hits && self.breakpoints.contains(&at);
                if planted.cpuid_at == Some(at) && (planted.cpuid_here || !user_hit) {
                    self.on_cpuid(s, regs, ev)?;
                    return self.finish_step_or_hit(goal, report_hits);
                }
                if planted.signal_at == Some(at) {
                    if self.at_registers_place(&s, ev, &regs)? {
                        self.cur.live = Some(s);
                        self.cur.at_event_stop = true;
                        return Ok(None);
                    }
                    if let Err(e) = self.missed_registers_place(&s, ev, &regs) {
                        let _ = s.kill();
                        return Err(e);
                    }
                }
                self.cur.live = Some(s);
                if user_hit {
                    return Ok(Some(Reached::Breakpoint(at)));
                }
                return Ok(None);
            }
        }
        if let Some(t) = self.cur.ticks {
            // The guest's int3 at the armed preemption point. (Single-stepping over it
            // reports a step trap rather than SI_KERNEL, so look at the byte before rip.)
            let ticks = self.t(s.read_u64(t.ticks))?;
            if self.cur.armed == Some(ticks) {
                let mut b = [0u8; 1];
                let at = regs.rip().wrapping_sub(1);
                if s.read_exact(Addr::new(at), &mut b).is_ok() && b[0] == 0xcc {
                    return self.on_tick_trap(s, ev, goal, ticks);
                }
            }
        }
        let stepped = matches!(how, Resume::Step(_));
        if hits != 0 || info.code() == tracee::debug::TRAP_HWBKPT {
            self.cur.live = Some(s);
            if stepped && goal == Goal::Step {
                // One instruction further than the position the step started from.
                self.pos = None;
            }
            if report_hits && hits != 0 {
                return Ok(Some(Reached::Watchpoint(hits)));
            }
            return Ok(None);
        }
        let guest_int3 = info.code() == code::SI_KERNEL && {
            let mut b = [0u8; 1];
            s.read_exact(Addr::new(regs.rip().wrapping_sub(1)), &mut b)
                .is_ok()
                && b[0] == 0xcc
        };
        if stepped && !guest_int3 {
            // The trap of a single step (ours), whatever stale debug status it carries.
            self.cur.live = Some(s);
            if goal != Goal::Step && report_hits && self.breakpoints.contains(&regs.rip()) {
                return Ok(Some(Reached::Breakpoint(regs.rip())));
            }
            return Ok(None);
        }
        // The guest's own int3 or a SIGTRAP it raised: deliver it as recorded.
        self.last_signal = Some((libc::SIGTRAP, gprs(&regs)));
        self.cur.pending_fault = Some(Signal::SIGTRAP);
        self.cur.live = Some(s);
        Ok(None)
    }

    /// The live tracee rests at the stop of a call the events so far began (a fork's
    /// new-task stop, a blocked call's or a shared mapping's seccomp stop): a boundary
    /// too, events before `next` applied, which the task's call state goes on from.
    pub(crate) fn at_boundary_in_call(&mut self) {
        self.pos = Some(Position::event(self.next));
        self.mark_ticks = self.boundary_ticks(self.next);
    }

    /// A single step that ran a `syscall` left the trap flag in r11, where the
    /// instruction saves rflags: the program, which never stepped, must not see it.
    pub(crate) fn clear_stepped_trap_flag(&self, s: &Stopped) -> Result<()> {
        let mut r = self.t(s.regs())?;
        if r.r11() & TF != 0 {
            r.set_r11(r.r11() & !TF);
            self.t(s.set_regs(&r))?;
        }
        Ok(())
    }

    /// Installs `s` as the live tracee at an event boundary: events before `next` applied.
    pub(crate) fn at_boundary(&mut self, s: Stopped, kind: Kind) {
        self.cur.live = Some(s);
        self.cur.kind = kind;
        self.cur.at_event_stop = false;
        self.pos = Some(Position::event(self.next));
        self.mark_ticks = self.boundary_ticks(self.next);
    }

    /// The recorded SIGKILL: the tracee is killed here, at the boundary after its last
    /// event. The kill came from outside, the program could neither see it nor react, and
    /// the recording has no point for it beyond that boundary, so this is the exact
    /// replay; running on would execute code the recording never saw end (a spinning
    /// program would never stop, a sleeping one would wake and diverge).
    fn kill_at_boundary(&mut self) -> Result<Option<Reached>> {
        let s = self.take_live()?;
        self.pos = None;
        let e = self.t(s.kill())?;
        // No earlier signal was the fatal one, and where the SIGKILL landed after the last
        // event the recording cannot tell: no registers to report with it.
        self.last_signal = None;
        self.on_exit(e)
    }

    /// The current task ended: it must be the recorded end. `None` while other tasks go
    /// on; the replay's end (the first task's, as the recording's) once the last is gone.
    pub(crate) fn on_exit(&mut self, e: Exit) -> Result<Option<Reached>> {
        let found = ExitStatus::from_wait_status(e.wait_status());
        self.cur.live = None;
        match self.event(self.next).cloned() {
            Some(Event::Exit(expected)) => {
                let same = match (expected, found) {
                    // Core dumps are off at replay (no files on the host).
                    (
                        ExitStatus::Signaled { signo: a, .. },
                        ExitStatus::Signaled { signo: b, .. },
                    ) => a == b,
                    (a, b) => a == b,
                };
                if !same {
                    return Err(self.diverged(format!("{expected:?}"), format!("{found:?}")));
                }
                self.next += 1;
                self.cur.ended = true;
                if self.cur.first {
                    self.first_exit = Some(expected);
                }
                self.pos = Some(Position::event(self.next));
                if !self.parked.is_empty() {
                    return Ok(None);
                }
                let end = self.first_exit.unwrap_or(expected);
                self.exit = Some(end);
                Ok(Some(Reached::Exited(end)))
            }
            Some(other) => Err(self.diverged(
                crate::describe(&other),
                format!("the tracee ended: {found:?}"),
            )),
            None => {
                self.exit = Some(found);
                Ok(Some(Reached::End))
            }
        }
    }

    /// Writes console output of the syscall `ev` to the stream it reached, once.
    pub(crate) fn emit(&mut self, bytes: &[u8], stream: trace::Stream) {
        if self.next < self.printed_upto {
            return;
        }
        match &mut self.console {
            Console::Stdout => {
                use std::io::Write;
                if stream == trace::Stream::Stderr {
                    let mut e = std::io::stderr().lock();
                    let _ = e.write_all(bytes);
                    let _ = e.flush();
                } else {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(bytes);
                    let _ = o.flush();
                }
            }
            Console::Discard => {}
            Console::Buffer(v) => v.extend_from_slice(bytes),
        }
    }

    /// Marks event `n` applied: output of later passes over it is not printed again.
    pub(crate) fn applied(&mut self) {
        self.next += 1;
        self.printed_upto = self.printed_upto.max(self.next);
    }
}

/// What the timeline and the event handlers read and change, named for what it means.
impl Engine {
    /// The current task.
    pub(crate) fn cur(&self) -> &TaskState {
        &self.cur
    }

    /// The current task, to change.
    pub(crate) fn cur_mut(&mut self) -> &mut TaskState {
        &mut self.cur
    }

    /// Makes `next` the current task, returning the one it replaces.
    pub(crate) fn replace_cur(&mut self, next: TaskState) -> TaskState {
        std::mem::replace(&mut self.cur, next)
    }

    /// The tasks other than the current one.
    pub(crate) fn parked(&self) -> &BTreeMap<u32, TaskState> {
        &self.parked
    }

    /// The tasks other than the current one, to change.
    pub(crate) fn parked_mut(&mut self) -> &mut BTreeMap<u32, TaskState> {
        &mut self.parked
    }

    /// The memory files behind the recording's shared files, to change.
    pub(crate) fn shared_files_mut(&mut self) -> &mut crate::shared::SharedFiles {
        &mut self.shared
    }

    /// The opened trace.
    pub(crate) fn data(&self) -> &Arc<TraceData> {
        &self.data
    }

    /// How this replay answers `cpuid`.
    pub(crate) fn cpuid_mode(&self) -> CpuidMode {
        self.cpuid
    }

    /// Why a signal handler cannot be entered here as it was at record time, if so.
    pub(crate) fn frames_differ(&self) -> Option<&str> {
        self.frames_differ.as_deref()
    }

    /// Index of the next event to apply.
    pub(crate) fn next_event(&self) -> u64 {
        self.next
    }

    /// The program's end, once the replay reached it.
    pub(crate) fn exited(&self) -> Option<ExitStatus> {
        self.exit
    }

    /// Where console output goes (and, for a buffer, what it holds).
    pub(crate) fn console(&self) -> &Console {
        &self.console
    }

    /// The console, leaving output discarded from here on.
    pub(crate) fn take_console(&mut self) -> Console {
        std::mem::replace(&mut self.console, Console::Discard)
    }

    /// Paces the replay to the recording's wall-clock time.
    pub(crate) fn pace(&mut self) {
        self.pacer = Some(crate::time::Pacer::default());
    }

    /// The pacer, when the replay is paced.
    pub(crate) fn pacer(&mut self) -> Option<&mut crate::time::Pacer> {
        self.pacer.as_mut()
    }

    /// The last signal delivered up to here (number, registers at delivery).
    pub(crate) fn last_signal(&self) -> Option<(i32, Gprs)> {
        self.last_signal
    }

    /// Signal `signo` is being delivered with `regs`.
    pub(crate) fn note_signal(&mut self, signo: i32, regs: Gprs) {
        self.last_signal = Some((signo, regs));
    }

    /// The current position, when the engine knows it.
    pub(crate) fn position(&self) -> Option<Position> {
        self.pos
    }

    /// Where the current stop is, as the timeline placed it (the engine itself names only
    /// the boundaries and tick marks it reaches).
    pub(crate) fn set_position(&mut self, p: Position) {
        self.pos = Some(p);
    }

    /// The latest mark at or before the current stop, without re-execution: the known
    /// position's mark, or else the boundary `eN`, or `eN+tK` when REWIND_TICKS reads K
    /// past the boundary's. (Between a preemption point's increment and its trap the
    /// counter is one ahead of the mark the stop belongs to; `Timeline::position` tries
    /// both.)
    pub(crate) fn mark_here(&self) -> Position {
        if let Some(p) = self.pos {
            return p.mark();
        }
        let n = self.next;
        let now = match (&self.cur.live, self.cur.ticks) {
            (Some(s), Some(_)) => self.read_ticks(s).ok(),
            _ => None,
        };
        match now {
            Some(k) if k > self.boundary_ticks(n) => Position {
                event: n,
                ticks: Some(k),
                steps: 0,
            },
            _ => Position::event(n),
        }
    }

    /// Whether the guest has the execution-point ABI (REWIND_TICKS): tick marks exist.
    pub(crate) fn has_tick_abi(&self) -> bool {
        self.cur.ticks.is_some()
    }

    /// Whether a tracee is live (not ended, not lost to an error).
    pub(crate) fn is_live(&self) -> bool {
        self.cur.live.is_some()
    }

    /// `s` is the live tracee again, at the stop it rests at.
    pub(crate) fn put_live(&mut self, s: Stopped) {
        self.cur.live = Some(s);
    }

    /// Kills the live tracee and every other task of the replay (the end of a replay).
    pub(crate) fn kill_live(&mut self) {
        if self.parked.is_empty() {
            if let Some(s) = self.cur.live.take() {
                let _ = s.kill();
            }
            return;
        }
        let pids: Vec<tracee::Pid> = std::iter::once(&self.cur)
            .chain(self.parked.values())
            .filter_map(TaskState::pid)
            .collect();
        self.cur.live = None;
        self.cur.call = crate::tasks::Call::None;
        self.parked.clear();
        tracee::task::kill_all(&pids);
    }

    /// The kind of ptrace stop the live tracee rests at.
    pub(crate) fn stop_kind(&self) -> Kind {
        self.cur.kind
    }

    /// Whether a synchronous fault waits to be delivered at the next resume.
    /// Whether runs stop at a synchronous fault before delivering its signal.
    pub(crate) fn set_report_faults(&mut self, on: bool) {
        self.report_faults = on;
    }

    /// The next fault (the one the last run stopped at) is delivered, not reported.
    pub(crate) fn deliver_next_fault(&mut self) {
        self.deliver_fault = true;
    }

    pub(crate) fn has_pending_fault(&self) -> bool {
        self.cur.pending_fault.is_some()
    }

    /// The tracee rests at the syscall-exit stop that the next event, a signal, is placed
    /// at: a copy would rest at a signal-delivery stop instead and could not deliver it
    /// there.
    pub(crate) fn signal_due_at_this_exit(&self) -> bool {
        matches!(self.cur.kind, Kind::SyscallExit(_))
            && matches!(
                self.event(self.next),
                Some(Event::Signal(s)) if matches!(s.placement, Placement::SyscallExit { .. })
            )
    }

    /// Every task alive here: its recording-time id (`None` for the first one before a
    /// switch names it), whether it runs, and its registers when it rests at a stop.
    pub(crate) fn task_states(&self) -> Vec<(Option<u32>, bool, Option<Gprs>)> {
        let regs = |t: &TaskState| {
            t.live
                .as_ref()
                .and_then(|s| s.regs().ok())
                .map(|r| gprs(&r))
        };
        let mut out = Vec::new();
        if !self.cur.ended {
            out.push((self.cur.tid, true, regs(&self.cur)));
        }
        for (&tid, t) in &self.parked {
            if !t.ended {
                out.push((Some(tid), false, regs(t)));
            }
        }
        out
    }

    /// Whether the task about to run (or resting at the next event) is of the process in
    /// focus; true when there is no focus.
    pub(crate) fn in_focus(&self) -> bool {
        self.focus.as_ref().is_none_or(|f| f.runs(self.next))
    }

    /// Chooses the process that breakpoints, watchpoints and steps are for.
    pub(crate) fn set_focus(&mut self, focus: Option<Focus>) {
        self.focus = focus;
    }

    /// The process in focus.
    pub(crate) fn focus(&self) -> Option<&Focus> {
        self.focus.as_ref()
    }

    /// The software breakpoints set.
    pub(crate) fn breakpoints(&self) -> &BTreeSet<u64> {
        &self.breakpoints
    }

    /// Adds a software breakpoint.
    pub(crate) fn set_breakpoint(&mut self, addr: u64) {
        self.breakpoints.insert(addr);
    }

    /// Removes a software breakpoint; false if there was none.
    pub(crate) fn remove_breakpoint(&mut self, addr: u64) -> bool {
        self.breakpoints.remove(&addr)
    }

    /// All breakpoints, removed (to be put back with [`Engine::set_breakpoints`]).
    pub(crate) fn take_breakpoints(&mut self) -> BTreeSet<u64> {
        std::mem::take(&mut self.breakpoints)
    }

    /// Replaces the breakpoints.
    pub(crate) fn set_breakpoints(&mut self, b: BTreeSet<u64>) {
        self.breakpoints = b;
    }

    /// The hardware watchpoint slots.
    pub(crate) fn watches(&self) -> [Option<Watch>; 4] {
        self.watches
    }

    /// Whether a run can stop at a hit: a breakpoint or a watchpoint is set.
    pub(crate) fn has_hits_to_report(&self) -> bool {
        !self.breakpoints.is_empty() || self.watches.iter().any(Option::is_some)
    }

    /// Tracks debug state that the engine must re-establish on a fresh tracee.
    pub(crate) fn set_watch(&mut self, w: [Option<Watch>; 4]) {
        self.watches = w;
        self.cur.hw_applied = true; // force a rewrite before the next run
    }

    /// The armed preemption point trapped with REWIND_TICKS == `ticks`: `s` rests at that
    /// tick mark.
    pub(crate) fn at_tick_mark(&mut self, s: Stopped, ticks: u64) {
        self.cur.live = Some(s);
        self.mark_ticks = ticks;
        self.pos = Some(Position {
            event: self.next,
            ticks: Some(ticks),
            steps: 0,
        });
    }

    /// The tracee rests at the stop of event `next`, which is not applied yet.
    pub(crate) fn hold_at_event_stop(&mut self) {
        self.cur.at_event_stop = true;
    }

    /// Disarms the tick trap in `s` (a spent trap must not fire again, e.g. in the
    /// handler of the signal it placed).
    pub(crate) fn disarm_ticks(&mut self, s: &Stopped) -> Result<()> {
        if let Some(t) = self.cur.ticks {
            if self.cur.armed != Some(NEVER) {
                self.t(s.write_u64(t.target, NEVER))?;
                self.cur.armed = Some(NEVER);
            }
        }
        Ok(())
    }

    /// What a checkpoint keeps to restore the engine here; `None` while the position of
    /// the current stop is not known.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        // A restored copy starts between events: mid-call, where the task was is lost.
        if !matches!(self.cur.call, crate::tasks::Call::None) {
            return None;
        }
        Some(Snapshot {
            pos: self.pos?,
            at_event_stop: self.cur.at_event_stop,
            last_signal: self.last_signal,
            tid: self.cur.tid,
            first: self.cur.first,
            ticks: self.cur.ticks,
            first_exit: self.first_exit,
        })
    }

    /// Why the live tracee cannot be forked into a checkpoint here, if it cannot (reverse
    /// execution then replays from the start instead): the recording has other tasks
    /// (a fork copies one), or the tracee has memory mapped MAP_SHARED, which a forked
    /// copy would share, seeing what the replay writes there after it.
    pub(crate) fn why_no_copy(&self) -> Result<Option<String>> {
        if self.has_other_tasks() {
            return Ok(Some("the recording has more than one task here".into()));
        }
        let pid = self.live()?.pid();
        let shared = tracee::maps::first_shared(pid)
            .map_err(|e| Error::Invalid(format!("reading /proc/{pid}/maps: {e}")))?;
        Ok(shared.map(|m| {
            format!(
                "the tracee has memory mapped MAP_SHARED ({} at {})",
                m.what(),
                m.start
            )
        }))
    }

    /// Forks the live tracee (rr's checkpoints): the engine goes on with one copy, the
    /// other is returned, stopped at the same point.
    pub(crate) fn fork_live(&mut self) -> Result<Stopped> {
        if let Some(why) = self.why_no_copy()? {
            return Err(Error::Invalid(format!("no checkpoint: {why}")));
        }
        let s = self.take_live()?;
        let (live, copy) = self.t(s.fork_stopped())?;
        self.cur.live = Some(live);
        // Both rest at signal-delivery stops now (see `Stopped::fork_stopped`).
        self.cur.kind = Kind::SignalDelivery;
        Ok(copy)
    }

    /// Puts the engine back where `snap` was taken, with `live`, a fresh copy of the
    /// tracee forked there, as its tracee; the previous one is killed.
    pub(crate) fn restore(&mut self, snap: &Snapshot, live: Stopped) {
        self.kill_live();
        // A checkpoint holds one task (none is taken while there are more), which may
        // not be the task current now.
        self.cur = TaskState::new(snap.tid, snap.ticks, crate::tasks::Call::None);
        self.cur.first = snap.first;
        self.cur.live = Some(live);
        self.first_exit = snap.first_exit;
        // A fork rests at a signal-delivery stop (see `Stopped::fork_stopped`).
        self.cur.kind = Kind::SignalDelivery;
        self.next = snap.pos.event;
        self.exit = None;
        self.pos = Some(snap.pos);
        self.cur.at_event_stop = snap.at_event_stop;
        self.cur.pending_fault = None;
        self.last_signal = snap.last_signal;
        // Nothing is known of the fresh copy's tick target and debug registers.
        self.cur.armed = None;
        self.cur.hw_applied = false;
        self.mark_ticks = match snap.pos.ticks {
            Some(t) => t,
            None => self.boundary_ticks(snap.pos.event),
        };
    }
}
