//! The timeline: random access to a replay, for the interactive prompt, the gdb stub and
//! the analyzer. Nothing here touches ptrace; it drives the engine and its checkpoints.
//!
//! ```text
//! Timeline::open(trace) -> Result<Timeline>           start at e0 (the exec stop)
//! position(&mut self) -> Result<Position>             where we are (canonical, printable)
//! seek(&mut self, &Position) -> Result<()>            go anywhere, forward or back
//! step_forward / step_back(&mut self) -> Result<StopReason>   one instruction
//! run_forward / run_backward(&mut self) -> Result<StopReason> to the next/previous
//!                                                     breakpoint or watchpoint hit, or an edge
//! seek_last_live(&mut self) -> Result<()>             after the exit: back to its last
//!                                                     instruction, where state is readable
//! set_breakpoint / remove_breakpoint(addr)            software breakpoints (int3 while running)
//! set_watchpoint(addr, len, kind) / remove_watchpoint hardware (debug registers), 4 slots
//! regs() / read_memory(addr, len)                     the state at the current position
//! write_memory(addr, bytes)                           refused: a replay that ran on with
//!                                                     changed memory would no longer be
//!                                                     the recording
//! events() / header() / checkpoint()                  the recording; an explicit checkpoint
//! focus_process(pid) -> Result<Position>              hits and steps of one process only
//! ```
//!
//! Checkpoints are forks of the tracee (rr's method): the live tracee is cloned with
//! CLONE_PARENT and the copy kept stopped. One is taken at e0 and then at the first event
//! boundary after every [`TimelineOptions::spacing`] events (500 by default) that the
//! replay reaches for the first time, at most [`TimelineOptions::max_checkpoints`]; past
//! that every second one is dropped, so they stay spread over the whole recording.
//! `seek` restores the latest checkpoint at or before the target (or continues from the
//! current point when that is closer), replays events up to the target's boundary, runs to
//! its tick mark, then single-steps.
//!
//! A forward run from a known position first keeps a copy of the tracee there (one
//! scratch copy, replaced by the next run): `position()` after a hit re-executes from it
//! (or from the hit's mark reached from it) rather than from the checkpoint before, which
//! may lie hundreds of events and tens of thousands of ticks back.
//!
//! Reverse execution, rr-style: `run_backward` replays each checkpoint interval before the
//! current position, counting hits, and goes to the last one; `step_back` re-executes to
//! one instruction before (for a step count of 0 it counts the instructions from the
//! previous mark). A watchpoint hit found going backward is reported before the
//! instruction that made it, where the old value is still in memory (as rr and gdb
//! expect: the next forward step redoes the access). The edges of history are
//! [`StopReason::StartOfHistory`] and [`StopReason::EndOfHistory`].

use std::path::Path;
use std::sync::Arc;

use trace::{Event, ExitStatus, Gprs, Header};
use tracee::{Addr, WatchKind};

use crate::checkpoints::Checkpoints;
use crate::error::{Error, Result};
use crate::position::Position;
use crate::session::{gprs, same_regs, Console, Engine, Goal, Reached, TraceData, Watch};

mod focus;

pub use focus::Thread;

/// Why a timeline operation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The requested step or seek completed.
    Done,
    /// A software breakpoint at this address.
    Breakpoint(u64),
    /// The hardware watchpoint on this address fired (the one whose debug-status bit is
    /// set; the lowest slot if several fired at once).
    Watchpoint(u64),
    /// Nothing before: the start of the recording (e0).
    StartOfHistory,
    /// Nothing after: the end of the recording.
    EndOfHistory,
    /// The program ended (the last position of the recording).
    Exited(ExitStatus),
    /// The program faulted here with this signal (SIGSEGV, SIGBUS, SIGFPE, …), when
    /// [`Timeline::set_stop_at_faults`] asked for such stops: it stands at the faulting
    /// instruction, not yet delivered; running forward delivers it as recorded.
    Signal(i32),
    /// [`Timeline::run_forward_with`] was asked to stop, and did at an event boundary.
    Interrupted,
    /// The recorded system call `nr` that [`Timeline::set_syscall_catch`] asked for has
    /// just returned: the position is the boundary right after its event.
    SyscallReturn(u64),
}

/// Which recorded system calls forward and backward runs stop after (gdb's
/// `catch syscall`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallCatch {
    /// Every one.
    All,
    /// These numbers.
    Only(std::collections::BTreeSet<u64>),
}

impl SyscallCatch {
    fn catches(&self, nr: u64) -> bool {
        match self {
            SyscallCatch::All => true,
            SyscallCatch::Only(set) => set.contains(&nr),
        }
    }
}

/// Timeline settings.
#[derive(Debug, Clone)]
pub struct TimelineOptions {
    /// Events between automatic checkpoints.
    pub spacing: u64,
    /// Most checkpoints kept.
    pub max_checkpoints: usize,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            spacing: 500,
            max_checkpoints: 64,
        }
    }
}

/// Random access to one replay; see the module documentation.
pub struct Timeline {
    engine: Engine,
    /// The checkpoints, and the scratch copy where the latest forward run from a known
    /// position began (see [`Timeline::run_forward`]): what `position()` re-executes from
    /// after a hit.
    checkpoints: Checkpoints,
    opts: TimelineOptions,
    /// The event boundary of the latest automatic checkpoint (or attempt).
    last_auto: u64,
    /// Forward runs stop at synchronous faults (`StopReason::Signal`).
    stop_at_faults: bool,
    /// The last run stopped at a fault here, which the next forward run delivers.
    fault_here: bool,
    /// Told `(event reached, event sought)` while a seek replays toward a far event.
    progress: Option<Box<dyn FnMut(u64, u64)>>,
    /// The recorded system calls runs stop after.
    catch: Option<SyscallCatch>,
    /// Who runs each event (read once at open).
    tree: Arc<trace::TaskTree>,
}

/// Most single steps a position computation or step-back may take.
const STEP_LIMIT: u64 = 5_000_000;

impl Timeline {
    /// Opens the trace and starts its replay at e0, console output discarded.
    pub fn open(dir: &Path) -> Result<Timeline> {
        Timeline::open_with(dir, TimelineOptions::default(), Console::Discard)
    }

    /// Opens with explicit settings and console sink.
    pub fn open_with(dir: &Path, opts: TimelineOptions, console: Console) -> Result<Timeline> {
        let data = crate::open_trace(dir)?;
        let tree = Arc::new(trace::TaskTree::of(
            &data.events,
            data.header().format_version,
        ));
        let engine = crate::start_engine(data, console)?;
        let mut tl = Timeline {
            engine,
            checkpoints: Checkpoints::new(opts.max_checkpoints),
            opts,
            last_auto: 0,
            stop_at_faults: false,
            fault_here: false,
            progress: None,
            catch: None,
            tree,
        };
        tl.checkpoint()?;
        Ok(tl)
    }

    /// The guest binary being replayed (the packed copy for a packed trace).
    pub fn binary(&self) -> &Path {
        self.engine.data().binary()
    }

    /// The guest binary's symbols and DWARF as the program ran: a position-independent
    /// binary is moved by where the loader put it (the recorded AT_ENTRY).
    pub fn load_binary(&self) -> guest::Result<guest::Binary> {
        self.engine.data().load_binary()
    }

    /// The recording's header.
    pub fn header(&self) -> &Header {
        self.engine.data().header()
    }

    /// All events of the recording.
    pub fn events(&self) -> &[Event] {
        &self.engine.data().events
    }

    /// The trace data (shared).
    pub fn data(&self) -> Arc<TraceData> {
        self.engine.data().clone()
    }

    /// Index of the next event to be applied.
    pub fn next_event(&self) -> u64 {
        self.engine.next_event()
    }

    /// The program's end, once the replay reached it.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.engine.exited()
    }

    /// Console output collected so far (with `Console::Buffer`).
    pub fn console(&self) -> &[u8] {
        match self.engine.console() {
            Console::Buffer(v) => v,
            _ => &[],
        }
    }

    /// Positions of the checkpoints held.
    pub fn checkpoints(&self) -> Vec<Position> {
        self.checkpoints.positions()
    }

    /// The last signal delivered up to here (number, registers at delivery).
    pub fn last_signal(&self) -> Option<(i32, Gprs)> {
        self.engine.last_signal()
    }

    /// Registers at the current position.
    pub fn regs(&self) -> Result<Gprs> {
        let s = self.engine.live()?;
        Ok(gprs(&self.engine.t(s.regs())?))
    }

    /// `len` bytes at `addr` (fewer if the range ends in unmapped memory).
    pub fn read_memory(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let s = self.engine.live()?;
        let mut buf = vec![0u8; len];
        let n = self.engine.t(s.read_partial(Addr::new(addr), &mut buf))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Writes memory at the current point only (see the module documentation).
    pub fn write_memory(&mut self, addr: u64, bytes: &[u8]) -> Result<()> {
        Err(Error::ReadOnly(format!(
            "writing {} bytes at {addr:#x}",
            bytes.len()
        )))
    }

    /// Adds a software breakpoint.
    pub fn set_breakpoint(&mut self, addr: u64) {
        self.engine.set_breakpoint(addr);
    }

    /// Removes a software breakpoint; false if there was none.
    pub fn remove_breakpoint(&mut self, addr: u64) -> bool {
        self.engine.remove_breakpoint(addr)
    }

    /// The breakpoints set.
    pub fn breakpoints(&self) -> Vec<u64> {
        self.engine.breakpoints().iter().copied().collect()
    }

    /// Adds a hardware watchpoint; returns its slot.
    pub fn set_watchpoint(&mut self, addr: u64, len: usize, kind: WatchKind) -> Result<usize> {
        if ![1, 2, 4, 8].contains(&len) || !addr.is_multiple_of(len as u64) {
            return Err(Error::Invalid(format!(
                "a watchpoint covers 1, 2, 4 or 8 aligned bytes; {len} at {addr:#x} is not"
            )));
        }
        let mut w = self.engine.watches();
        let slot = w.iter().position(Option::is_none).ok_or_else(|| {
            Error::Invalid("all four hardware watchpoint slots are in use".into())
        })?;
        w[slot] = Some(Watch { addr, len, kind });
        self.engine.set_watch(w);
        Ok(slot)
    }

    /// Removes the watchpoints on `addr`; false if there were none.
    pub fn remove_watchpoint(&mut self, addr: u64) -> bool {
        let mut w = self.engine.watches();
        let before = w.iter().filter(|x| x.is_some()).count();
        for slot in w.iter_mut() {
            if slot.is_some_and(|x| x.addr == addr) {
                *slot = None;
            }
        }
        let removed = w.iter().filter(|x| x.is_some()).count() != before;
        self.engine.set_watch(w);
        removed
    }

    /// Takes a checkpoint here (when the position is known and the tracee is between
    /// events); returns its position.
    pub fn checkpoint(&mut self) -> Result<Position> {
        let pos = self.position()?;
        if self.checkpoints.contains(&pos) {
            return Ok(pos);
        }
        if self.engine.exited().is_some() {
            return Err(Error::Invalid(
                "the program has ended: nothing to checkpoint".into(),
            ));
        }
        if self.engine.signal_due_at_this_exit() {
            return Err(Error::Invalid(format!(
                "cannot checkpoint at {pos}: a signal is placed at this syscall's return; step first"
            )));
        }
        self.checkpoints.take(&mut self.engine)
    }

    /// Before a forward run that may stop at a hit: keeps a copy of the tracee here, so
    /// that placing the hit re-executes from here rather than from the checkpoint before
    /// (which may be hundreds of events back). Only at a known position that is not a
    /// checkpoint already and where a copy can be taken.
    fn keep_scratch(&mut self) -> Result<()> {
        let Some(pos) = self.engine.position() else {
            return Ok(());
        };
        if !self.engine.has_hits_to_report()
            || self.engine.exited().is_some()
            || !self.engine.is_live()
            || self.engine.has_pending_fault()
            || self.checkpoints.contains(&pos)
            || self.checkpoints.scratch_position() == Some(pos)
            || self.engine.signal_due_at_this_exit()
            || self.engine.why_no_copy()?.is_some()
        {
            return Ok(());
        }
        self.checkpoints.take_scratch(&mut self.engine)
    }

    /// Restores checkpoint `at` (or the scratch copy there): the live tracee becomes a
    /// fresh copy of it.
    fn restore(&mut self, at: Position) -> Result<()> {
        self.checkpoints.restore(at, &mut self.engine)
    }

    /// Runs the engine toward `goal`, taking automatic checkpoints at boundaries reached
    /// for the first time.
    fn drive(&mut self, goal: Goal, hits: bool) -> Result<Reached> {
        loop {
            let chunk_end = self.last_auto + self.opts.spacing;
            let sub = match goal {
                Goal::Boundary(n) if n <= chunk_end || self.engine.next_event() >= chunk_end => {
                    goal
                }
                Goal::End | Goal::Boundary(_) if self.engine.next_event() < chunk_end => {
                    Goal::Boundary(chunk_end)
                }
                _ => goal,
            };
            let r = self.engine.run(sub, hits)?;
            if sub != goal && r == Reached::Goal {
                self.last_auto = chunk_end;
                if !self.checkpoints.any_before_event(chunk_end) {
                    // Not possible right at a syscall-exit signal: the next boundary will do.
                    if self.checkpoint().is_err() {
                        self.last_auto = chunk_end.saturating_sub(self.opts.spacing) + 1;
                    }
                }
                continue;
            }
            if sub != goal && r != Reached::Goal {
                return Ok(r);
            }
            return Ok(r);
        }
    }

    /// The current position, computed (by re-execution from the previous mark) if the
    /// last stop was a breakpoint or watchpoint hit reached by running.
    pub fn position(&mut self) -> Result<Position> {
        if let Some(p) = self.engine.position() {
            return Ok(p);
        }
        let s = self.engine.live()?;
        let regs = gprs(&self.engine.t(s.regs())?);
        let ticks = self.engine.read_ticks(s)?;
        let n = self.engine.next_event();
        let boundary = self.engine.boundary_ticks(n);
        let tick_mark = |k: u64| {
            if self.engine.has_tick_abi() && k > boundary {
                Position {
                    event: n,
                    ticks: Some(k),
                    steps: 0,
                }
            } else {
                Position::event(n)
            }
        };
        // Between a preemption point's increment and its trap, REWIND_TICKS is already K
        // but the mark is still K-1's: try both.
        let mut candidates = vec![tick_mark(ticks)];
        if ticks > 0 && tick_mark(ticks - 1) != candidates[0] {
            candidates.push(tick_mark(ticks - 1));
        }
        let mut last_err = None;
        for mark in candidates {
            match self.find_from(mark, n, &regs) {
                Ok(p) => {
                    self.engine.set_position(p);
                    return Ok(p);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Invalid("no mark to count from".into())))
    }

    /// The latest mark at or before the current stop, without re-execution: the boundary
    /// `eN`, or the preemption point `eN+tK` when the guest's tick counter moved past the
    /// boundary's. Seeking to it and running forward reaches the stop again; the exact
    /// position, with its steps, is [`Timeline::position`] (which may re-execute).
    pub fn mark_here(&self) -> Position {
        self.engine.mark_here()
    }

    /// Steps from `mark` until the registers are `regs` (still before event `n`).
    fn find_from(&mut self, mark: Position, n: u64, regs: &Gprs) -> Result<Position> {
        // The run that stopped here began at the scratch copy (if any): when that lies
        // after the mark, count on from it instead of from the mark.
        let mut steps = match self.checkpoints.scratch_position() {
            Some(p) if p.mark() == mark && p.steps > 0 => {
                self.restore(p)?;
                p.steps
            }
            _ => {
                self.seek_inner(&mark, false)?;
                0
            }
        };
        let first = steps;
        loop {
            let now = gprs(&self.engine.t(self.engine.live()?.regs())?);
            if same_regs(&now, regs) && self.engine.next_event() == n {
                return Ok(mark.with_steps(steps));
            }
            let past = self
                .engine
                .position()
                .is_some_and(|p| p.mark() != mark && p.steps == 0 && steps > first);
            if steps >= STEP_LIMIT || self.engine.next_event() > n || past {
                return Err(Error::Invalid(format!(
                    "cannot place the current stop after {mark}: not found within {steps} steps"
                )));
            }
            self.engine.run(Goal::Step, false)?;
            steps += 1;
        }
    }

    /// Goes to `target`.
    pub fn seek(&mut self, target: &Position) -> Result<()> {
        self.fault_here = false;
        self.seek_inner(target, false).map(|_| ())
    }

    /// Calls `progress(event reached, event sought)` every hundredth of the way while a
    /// seek (or a reverse run's re-execution) replays toward an event (a progress bar).
    pub fn set_progress(&mut self, progress: Option<Box<dyn FnMut(u64, u64)>>) {
        self.progress = progress;
    }

    /// The recorded system calls forward and backward runs also stop after
    /// (`StopReason::SyscallReturn`), or none.
    pub fn set_syscall_catch(&mut self, catch: Option<SyscallCatch>) {
        self.catch = catch;
    }

    /// The number of event `n` when it is a system call the catch asks for, made by the
    /// process in focus.
    fn caught(&self, n: u64) -> Option<u64> {
        let catch = self.catch.as_ref()?;
        match self.engine.event(n)? {
            Event::Syscall(sc) if catch.catches(sc.nr) && self.in_focus_at(n) => Some(sc.nr),
            _ => None,
        }
    }

    /// The boundary after the first caught call at or after event `from`.
    fn next_caught_return(&self, from: u64) -> Option<u64> {
        self.catch.as_ref()?;
        (from..self.events().len() as u64)
            .find(|&k| self.caught(k).is_some())
            .map(|k| k + 1)
    }

    /// The boundary after the last caught call that lies before `here`.
    fn last_caught_return_before(&self, here: &Position) -> Option<Position> {
        self.catch.as_ref()?;
        (0..here.event)
            .rev()
            .map(|k| (k, Position::event(k + 1)))
            .find(|(k, after)| after < here && self.caught(*k).is_some())
            .map(|(_, after)| after)
    }

    /// Whether forward runs stop at a synchronous fault, at the faulting instruction
    /// before its signal is delivered (`StopReason::Signal`), as a debugger shows a
    /// crash. The analyzer's runs leave this off.
    pub fn set_stop_at_faults(&mut self, on: bool) {
        self.stop_at_faults = on;
    }

    /// Seeks; with `hits`, stops at breakpoint/watchpoint hits on the way (returned).
    fn seek_inner(&mut self, target: &Position, hits: bool) -> Result<Option<StopReason>> {
        let out = |why: &str| Error::OutOfHistory {
            position: target.to_string(),
            why: why.to_string(),
        };
        // Compared as u64: a position from gdb or the prompt is not cut to a usize first.
        if target.event > self.events().len() as u64 {
            return Err(out("past the last event"));
        }
        let here = self.engine.position();
        let ck = self
            .checkpoints
            .base_for(target)
            .ok_or_else(|| out("before the first checkpoint"))?;
        let continue_here = match here {
            Some(h) => h <= *target && h >= ck && self.engine.is_live(),
            None => false,
        };
        if !continue_here {
            self.restore(ck)?;
        }
        self.advance_to(target, hits)
    }

    /// Drives to the boundary before event `n`, in hundredths of the way when `progress`
    /// is to be told.
    fn drive_to_event(
        &mut self,
        n: u64,
        hits: bool,
        progress: Option<&mut (dyn FnMut(u64, u64) + 'static)>,
    ) -> Result<Reached> {
        let Some(report) = progress else {
            return self.drive(Goal::Boundary(n), hits);
        };
        let from = self.engine.next_event();
        let step = (n.saturating_sub(from) / 100).max(1);
        let r = loop {
            let next = self.engine.next_event().saturating_add(step).min(n);
            let r = self.drive(Goal::Boundary(next), hits);
            if !matches!(r, Ok(Reached::Goal)) || next >= n {
                break r;
            }
            report(next, n);
        };
        // Done, or stopped on the way: either way the bar is finished.
        report(n, n);
        r
    }

    /// From a point at or before `target`: replay to it.
    fn advance_to(&mut self, target: &Position, hits: bool) -> Result<Option<StopReason>> {
        let out = |why: String| Error::OutOfHistory {
            position: target.to_string(),
            why,
        };
        let is_end = target.event >= self.events().len() as u64;
        let watches = self.engine.watches();
        let on_reached = |r: Reached| -> Result<Option<StopReason>> {
            Ok(match r {
                Reached::Goal => None,
                // The end of a finished program is the position after its last event.
                Reached::Exited(_) if is_end => None,
                Reached::Breakpoint(a) => Some(StopReason::Breakpoint(a)),
                Reached::Watchpoint(hits) => {
                    Some(StopReason::Watchpoint(watch_addr(&watches, hits)))
                }
                Reached::Fault(sig) => Some(StopReason::Signal(sig)),
                Reached::Exited(e) => return Err(out(format!("the program ended first ({e:?})"))),
                Reached::End => return Err(out("the recording ends first".into())),
            })
        };
        if self.engine.next_event() < target.event {
            let mut progress = self.progress.take();
            let r = self.drive_to_event(target.event, hits, progress.as_deref_mut());
            self.progress = progress;
            if let Some(stop) = on_reached(r?)? {
                return Ok(Some(stop));
            }
        }
        if is_end && self.engine.exited().is_some() {
            return Ok(None);
        }
        if self.engine.next_event() != target.event {
            return Err(out(format!(
                "the replay is already at event {}",
                self.engine.next_event()
            )));
        }
        if let Some(k) = target.ticks {
            let now = self.engine.read_ticks(self.engine.live()?)?;
            if now < k {
                if let Some(stop) = on_reached(self.engine.run(Goal::Tick(k), hits)?)? {
                    return Ok(Some(stop));
                }
            }
        }
        if self.engine.position().is_none() {
            // Resuming after a hit inside the target's interval: where exactly are we?
            self.position()?;
        }
        if self.engine.position().map(|p| p.mark()) != Some(target.mark()) {
            return Err(out(format!(
                "not reachable: the replay reaches {} instead",
                self.engine.position().map_or("?".into(), |p| p.to_string())
            )));
        }
        let done = self.engine.position().map_or(0, |p| p.steps);
        for i in done..target.steps {
            // A write in these last steps is a hit like any other: a reverse watchpoint
            // started just after one must count it.
            let stop = on_reached(self.engine.run(Goal::Step, hits)?)?;
            // The engine names the marks it reaches; any other step is one more from ours.
            match self.engine.position() {
                Some(p) if p.mark() != target.mark() => {
                    return Err(out(format!(
                        "the steps run past the next mark ({p}): not a canonical position"
                    )))
                }
                _ => self.engine.set_position(target.mark().with_steps(i + 1)),
            }
            if let Some(watch @ StopReason::Watchpoint(_)) = stop {
                return Ok(Some(watch));
            }
            if hits && i + 1 < target.steps {
                let rip = self.engine.t(self.engine.live()?.regs())?.rip();
                if self.engine.breakpoints().contains(&rip) {
                    return Ok(Some(StopReason::Breakpoint(rip)));
                }
            }
        }
        Ok(None)
    }

    /// Executes one instruction (or applies the event the tracee is at) of the process in
    /// focus, the other processes running meanwhile (see `focus`).
    pub fn step_forward(&mut self) -> Result<StopReason> {
        if !self.engine.in_focus() {
            return self.run_to_focus();
        }
        match self.step_forward_any()? {
            StopReason::Done => self.run_to_focus(),
            other => Ok(other),
        }
    }

    /// Executes one instruction (or applies the event the tracee is at) of whichever task
    /// runs.
    fn step_forward_any(&mut self) -> Result<StopReason> {
        // A step from a reported fault delivers it (the handler's first instruction).
        self.fault_here = false;
        let before = self.position()?;
        let mut r = self.engine.run(Goal::Step, false)?;
        // The step ended its task (an exit with other tasks left): on to the next
        // boundary where one rests, the next point there is.
        if r == Reached::Goal && !self.engine.is_live() {
            r = self
                .engine
                .run(Goal::Boundary(self.engine.next_event()), false)?;
        }
        match r {
            Reached::Exited(e) => return Ok(StopReason::Exited(e)),
            Reached::End => return Ok(StopReason::EndOfHistory),
            _ => {}
        }
        if self.engine.position().is_none() {
            self.engine
                .set_position(before.with_steps(before.steps + 1));
        }
        Ok(StopReason::Done)
    }

    /// The latest mark at or before the boundary before event `n`'s application point:
    /// the tick mark where event `n` was recorded, or the boundary before it.
    fn mark_of_event(&self, n: u64) -> Position {
        let t = self.engine.event(n).and_then(Event::ticks).unwrap_or(0);
        if self.engine.has_tick_abi() && t > self.engine.boundary_ticks(n) {
            Position {
                event: n,
                ticks: Some(t),
                steps: 0,
            }
        } else {
            Position::event(n)
        }
    }

    /// Goes back exactly one instruction of the process in focus (see `focus`).
    pub fn step_back(&mut self) -> Result<StopReason> {
        let from = self.position()?;
        match self.step_back_any()? {
            StopReason::Done => self.back_into_focus(from),
            other => Ok(other),
        }
    }

    /// Goes back exactly one instruction of whichever task ran it.
    fn step_back_any(&mut self) -> Result<StopReason> {
        self.fault_here = false;
        let p = self.position()?;
        if p.steps > 0 {
            self.seek(&p.with_steps(p.steps - 1))?;
            return Ok(StopReason::Done);
        }
        let ended = self.engine.exited().is_some();
        // At a mark: the previous mark, and how many steps lead from it to here.
        let killed = p
            .event
            .checked_sub(1)
            .and_then(|i| self.engine.event(i))
            .is_some_and(crate::session::killed_from_outside);
        let prev = if ended && killed {
            // Killed from outside: its last live point is the boundary the replay kills it
            // at, one step before the end.
            Position::event(p.event - 1)
        } else if ended {
            // The end: back to the last event an instruction made (the exit_group or the
            // fatal signal; with several tasks, the exits and switches after it run none).
            return self.last_instruction_before(p.event);
        } else {
            match p.ticks {
                Some(k) if k > self.engine.boundary_ticks(p.event) + 1 => Position {
                    event: p.event,
                    ticks: Some(k - 1),
                    steps: 0,
                },
                Some(_) => Position::event(p.event),
                None if p.event == 0 => return Ok(StopReason::StartOfHistory),
                None => self.mark_of_event(p.event - 1),
            }
        };
        match self.seek(&prev) {
            // A boundary where no task rests (the one before it ended, and a switch came
            // after): the last instruction is that task's last.
            Err(Error::OutOfHistory { .. }) if prev.steps == 0 && prev.ticks.is_none() => {
                return self.last_instruction_before(prev.event);
            }
            r => r?,
        }
        let mut steps = 0u64;
        loop {
            if steps >= STEP_LIMIT {
                return Err(Error::Invalid(format!(
                    "step back from {p}: more than {STEP_LIMIT} instructions since {prev}"
                )));
            }
            let r = self.engine.run(Goal::Step, false)?;
            steps += 1;
            if matches!(r, Reached::Exited(_)) || self.engine.position() == Some(p) {
                break;
            }
            match self.engine.position() {
                Some(x) if x.mark() != prev => {
                    return Err(Error::Invalid(format!(
                        "step back from {p}: reached {x} while counting from {prev}"
                    )))
                }
                _ => self.engine.set_position(prev.with_steps(steps)),
            }
        }
        self.seek(&prev.with_steps(steps - 1))?;
        Ok(StopReason::Done)
    }

    /// Goes to the last instruction executed before the boundary before event `n`: that
    /// of the last event before it that instructions lead to (a switch is applied where
    /// the task stood, and an exit after its task's last instruction).
    fn last_instruction_before(&mut self, n: u64) -> Result<StopReason> {
        let last = (0..n).rev().find(|&j| {
            !matches!(
                self.engine.event(j),
                Some(Event::Switch { .. } | Event::Exit(_) | Event::Aborted { .. }) | None
            )
        });
        match last {
            Some(j) => self.last_instruction_of(j),
            None => Ok(StopReason::StartOfHistory),
        }
    }

    /// Goes to the last instruction before event `n` is applied (for a system call, its
    /// `syscall`), counting the steps from the mark before it. Unlike a step back from the
    /// boundary after `n`, this holds when `n` ends its task, which leaves no boundary to
    /// count to.
    pub(super) fn last_instruction_of(&mut self, n: u64) -> Result<StopReason> {
        let mark = self.mark_of_event(n);
        self.seek(&mark)?;
        let mut steps = 0u64;
        while self.engine.next_event() <= n && self.engine.exited().is_none() {
            if steps >= STEP_LIMIT {
                return Err(Error::Invalid(format!(
                    "more than {} instructions from {mark} to event {n}",
                    STEP_LIMIT
                )));
            }
            self.engine.run(Goal::Step, false)?;
            steps += 1;
            if self.engine.position().is_none() {
                self.engine.set_position(mark.with_steps(steps));
            }
        }
        self.seek(&mark.with_steps(steps.saturating_sub(1)))?;
        Ok(StopReason::Done)
    }

    /// Runs forward to the next breakpoint or watchpoint hit, or the end.
    pub fn run_forward(&mut self) -> Result<StopReason> {
        self.run_forward_with(None)
    }

    /// [`Timeline::run_forward`] that asks `interrupted` every few hundred events (at an
    /// event boundary, an exact position) whether to stop there: a debugger's Ctrl-C.
    pub fn run_forward_with(
        &mut self,
        mut interrupted: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<StopReason> {
        /// Events between two looks at `interrupted`.
        const INTERRUPT_EVERY: u64 = 200;
        if self.engine.exited().is_some() {
            return Ok(StopReason::EndOfHistory);
        }
        self.keep_scratch()?;
        if std::mem::take(&mut self.fault_here) {
            self.engine.deliver_next_fault();
        }
        self.engine.set_report_faults(self.stop_at_faults);
        let total = self.events().len() as u64;
        let caught = self.next_caught_return(self.engine.next_event());
        let r = loop {
            let mut next = caught.unwrap_or(u64::MAX);
            if interrupted.is_some() {
                next = next.min(self.engine.next_event().saturating_add(INTERRUPT_EVERY));
            }
            if next >= total {
                break self.drive(Goal::End, true);
            }
            match self.drive(Goal::Boundary(next), true) {
                Ok(Reached::Goal) if Some(next) == caught => break Ok(Reached::Goal),
                Ok(Reached::Goal) if interrupted.as_mut().is_some_and(|ask| ask()) => {
                    break Ok(Reached::Goal)
                }
                Ok(Reached::Goal) => continue,
                other => break other,
            }
        };
        self.engine.set_report_faults(false);
        Ok(match r? {
            Reached::Fault(sig) => {
                self.fault_here = true;
                StopReason::Signal(sig)
            }
            Reached::Breakpoint(a) => StopReason::Breakpoint(a),
            Reached::Watchpoint(hits) => {
                StopReason::Watchpoint(watch_addr(&self.engine.watches(), hits))
            }
            Reached::Exited(e) => StopReason::Exited(e),
            Reached::Goal if caught == Some(self.engine.next_event()) => {
                let nr = self
                    .engine
                    .next_event()
                    .checked_sub(1)
                    .and_then(|k| self.caught(k));
                StopReason::SyscallReturn(nr.unwrap_or_default())
            }
            Reached::Goal if self.engine.next_event() < total => StopReason::Interrupted,
            Reached::End | Reached::Goal => StopReason::EndOfHistory,
        })
    }

    /// Runs backward to the previous breakpoint or watchpoint hit, or the start.
    pub fn run_backward(&mut self) -> Result<StopReason> {
        self.fault_here = false;
        let here = self.position()?;
        // A caught call's return before here bounds the search: a hit after it wins.
        let floor = self.last_caught_return_before(&here);
        let marks = self.checkpoints.before(here);
        let mut upto = here;
        for &ck in marks.iter().rev() {
            let (start, from_checkpoint) = match floor {
                Some(f) if f > ck => (f, false),
                _ => (ck, true),
            };
            if let Some(stop) = self.last_hit_between(start, from_checkpoint, upto)? {
                return Ok(stop);
            }
            if Some(start) == floor {
                self.seek(&start)?;
                let nr = start.event.checked_sub(1).and_then(|k| self.caught(k));
                return Ok(StopReason::SyscallReturn(nr.unwrap_or_default()));
            }
            upto = ck;
        }
        self.seek(&Position::START)?;
        Ok(StopReason::StartOfHistory)
    }

    /// The last breakpoint or watchpoint hit between `start` (a checkpoint, or a position
    /// to seek to) and `upto`, gone to; `None` when there is none.
    fn last_hit_between(
        &mut self,
        start: Position,
        from_checkpoint: bool,
        upto: Position,
    ) -> Result<Option<StopReason>> {
        let go = |tl: &mut Timeline| -> Result<()> {
            if from_checkpoint {
                tl.restore(start)
            } else {
                tl.seek_inner(&start, false).map(|_| ())
            }
        };
        if !self.engine.has_hits_to_report() {
            return Ok(None);
        }
        // Count the hits between `start` and `upto`, then go to the last.
        go(self)?;
        let mut count = 0u64;
        while self.advance_to(&upto, true)?.is_some() {
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        go(self)?;
        let mut last = StopReason::Done;
        for _ in 0..count {
            if let Some(r) = self.advance_to(&upto, true)? {
                last = r;
            }
        }
        if let StopReason::Watchpoint(_) = last {
            // The debug trap comes after the access; going backward, the access has not
            // happened yet.
            self.step_back_any()?;
        }
        Ok(Some(last))
    }

    /// After the program ended (`StopReason::Exited`), goes back to its last live point:
    /// the instruction that ended it, where registers and memory can still be read.
    /// Anywhere else it stays put.
    pub fn seek_last_live(&mut self) -> Result<()> {
        if self.engine.exited().is_some() {
            self.step_back()?;
        }
        Ok(())
    }

    /// The position of the end of the recording: replays to it (and comes back is the
    /// caller's choice).
    pub fn seek_end(&mut self) -> Result<StopReason> {
        let saved = self.engine.take_breakpoints();
        let w = self.engine.watches();
        self.engine.set_watch([None; 4]);
        let r = self.run_forward();
        self.engine.set_breakpoints(saved);
        self.engine.set_watch(w);
        r
    }
}

/// The address of the watchpoint that fired: the lowest slot whose bit is set in `hits`
/// (DR6 bits 0–3 as the engine took them).
fn watch_addr(watches: &[Option<Watch>; 4], hits: u8) -> u64 {
    watches
        .iter()
        .enumerate()
        .filter(|&(slot, _)| hits & (1 << slot) != 0)
        .find_map(|(_, w)| *w)
        .map_or(0, |w| w.addr)
}

impl Drop for Timeline {
    fn drop(&mut self) {
        self.engine.kill_live();
        // The checkpoints go with their own drop.
        // `open` pinned the driving thread next to the tracee.
        let _ = tracee::cpu::unpin_current_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchpoint_reported_is_the_one_whose_bit_fired() {
        let w = |addr| {
            Some(Watch {
                addr,
                len: 8,
                kind: WatchKind::Write,
            })
        };
        let slots = [w(0x1000), None, w(0x3000), w(0x4000)];
        assert_eq!(watch_addr(&slots, 0b0100), 0x3000);
        assert_eq!(watch_addr(&slots, 0b1000), 0x4000);
        assert_eq!(watch_addr(&slots, 0b1101), 0x1000);
    }
}
