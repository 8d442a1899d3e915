//! The gdbstub `Target` over a replay timeline. It only translates: each packet becomes a
//! timeline call (reverse execution lives in the timeline, rr's rule), each
//! [`StopReason`] becomes the stop reply gdb expects, and the guest kernel's tasks (umk's,
//! Linux's) become threads, as do an ordinary program's own threads.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use gdbstub::common::{Signal, Tid};
use gdbstub::stub::MultiThreadStopReason;
use gdbstub::target::ext::auxv::{Auxv, AuxvOps};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::reverse_exec::{
    ReplayLogPosition, ReverseCont, ReverseContOps, ReverseStep, ReverseStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind as GdbWatch,
};
use gdbstub::target::ext::catch_syscalls::{
    CatchSyscallPosition, CatchSyscalls, CatchSyscallsOps, SyscallNumbers,
};
use gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86_64CoreRegs;

use crate::arch::{self, Amd64, Regs};
use guest::{Guest, Task, TaskState};
use replayer::{StopReason, Timeline, WatchKind};
use trace::Gprs;

use crate::error::Error;

/// A stop reply as this stub sends it.
pub type Stop = MultiThreadStopReason<u64>;

/// What gdb asked the replay to do next; carried out by the event loop, which can look
/// for an interrupt first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Step,
    ReverseContinue,
    ReverseStep,
}

/// How long each kind of action took, as gdb saw it (for `monitor stats` and the notes).
#[derive(Debug, Default, Clone)]
pub struct Latency {
    samples: BTreeMap<&'static str, Vec<Duration>>,
}

impl Latency {
    fn add(&mut self, what: &'static str, d: Duration) {
        self.samples.entry(what).or_default().push(d);
    }

    /// One line per action: count, mean, max.
    pub fn lines(&self) -> Vec<String> {
        self.samples
            .iter()
            .map(|(k, v)| {
                let total: Duration = v.iter().sum();
                let max = v.iter().max().copied().unwrap_or_default();
                format!(
                    "{k}: {} × mean {:.1} ms, max {:.1} ms",
                    v.len(),
                    total.as_secs_f64() * 1e3 / v.len() as f64,
                    max.as_secs_f64() * 1e3
                )
            })
            .collect()
    }
}

/// The replay behind the stub.
pub struct ReplayTarget {
    pub(crate) tl: Timeline,
    /// The guest kernel, read through its model (`guest::Guest`); `None` for any other
    /// program, which is then one thread.
    guest: Option<Box<dyn Guest>>,
    pending: Option<Action>,
    hw_breaks: BTreeSet<u64>,
    sw_breaks: BTreeSet<u64>,
    watches: BTreeMap<u64, GdbWatch>,
    pub(crate) latency: Latency,
    /// The last timeline failure during a run, shown by `monitor where`.
    pub(crate) last_error: Option<String>,
}

fn tid(n: usize) -> Tid {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

/// A task's gdb thread id: pid + 1, because gdb reserves 0 ("any thread") and the idle
/// task (umk's, Linux's swapper) has pid 0.
fn task_tid(t: &Task) -> usize {
    t.pid as usize + 1
}

fn nonfatal<T>(_: replayer::Error) -> TargetResult<T, ReplayTarget> {
    Err(TargetError::NonFatal)
}

/// A register gdb's x86-64 description (`64bit-core.xml`) declares 32 bits wide:
/// `eflags` and the segment selectors. ptrace hands them over in 64-bit slots whose
/// upper half is zero (RFLAGS' reserved bits, 16-bit selectors).
// why: the gdb remote protocol's register layout defines these as 32-bit fields.
#[allow(clippy::cast_possible_truncation)]
fn gdb_reg32(v: u64) -> u32 {
    v as u32
}

fn to_gdb(g: &Gprs) -> X86_64CoreRegs {
    let mut r = X86_64CoreRegs {
        regs: [
            g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp, g.rsp, g.r8, g.r9, g.r10, g.r11,
            g.r12, g.r13, g.r14, g.r15,
        ],
        eflags: gdb_reg32(g.eflags),
        rip: g.rip,
        ..Default::default()
    };
    r.segments.cs = gdb_reg32(g.cs);
    r.segments.ss = gdb_reg32(g.ss);
    r.segments.ds = gdb_reg32(g.ds);
    r.segments.es = gdb_reg32(g.es);
    r.segments.fs = gdb_reg32(g.fs);
    r.segments.gs = gdb_reg32(g.gs);
    // The x87 control word as the kernel initialises it, so gdb shows a sane FPU.
    r.fpu.fctrl = 0x37f;
    r.mxcsr = 0x1f80;
    r
}

impl ReplayTarget {
    /// Wraps an open timeline; `guest` is the guest kernel, when the binary is one.
    pub fn new(tl: Timeline, guest: Option<Box<dyn Guest>>) -> ReplayTarget {
        ReplayTarget {
            tl,
            guest,
            pending: None,
            hw_breaks: BTreeSet::new(),
            sw_breaks: BTreeSet::new(),
            watches: BTreeMap::new(),
            latency: Latency::default(),
            last_error: None,
        }
    }

    /// The guest kernel's gdb Python, if it has any.
    pub fn guest_script(&self) -> Option<&'static str> {
        self.guest.as_ref().and_then(|g| g.gdb_script())
    }

    /// How long each kind of run took so far, one line per kind.
    pub fn latency_lines(&self) -> Vec<String> {
        self.latency.lines()
    }

    /// The timeline (for the monitor and the server).
    pub fn timeline(&mut self) -> &mut Timeline {
        &mut self.tl
    }

    /// Forgets a disconnected gdb's breakpoints and watchpoints: the next gdb inserts its own.
    pub fn reset_session(&mut self) {
        for a in std::mem::take(&mut self.sw_breaks)
            .into_iter()
            .chain(std::mem::take(&mut self.hw_breaks))
        {
            self.tl.remove_breakpoint(a);
        }
        for (a, _) in std::mem::take(&mut self.watches) {
            self.tl.remove_watchpoint(a);
        }
        self.pending = None;
    }

    /// The live tasks at the current position (none before umk set up its table, or if
    /// its layout is not the documented one) and the running one's thread id (1 when
    /// there is no table yet).
    fn tasks(&self) -> (Vec<Task>, usize) {
        let Some(guest) = &self.guest else {
            return (Vec::new(), 1);
        };
        let mut tasks = guest.tasks(&self.tl).unwrap_or_default();
        tasks.retain(|t| t.state != TaskState::Dead);
        let cur = tasks.iter().find(|t| t.current).map_or(1, task_tid);
        (tasks, cur)
    }

    /// The threads of an ordinary program, when it has several (see
    /// `Timeline::threads`); a guest kernel's threads are its tasks instead.
    fn program_threads(&self) -> Option<Vec<replayer::Thread>> {
        self.guest.is_none().then(|| self.tl.threads()).flatten()
    }

    /// The thread a stop is reported for: the running task.
    pub fn current_tid(&self) -> Tid {
        if let Some(t) = self.program_threads() {
            return t
                .iter()
                .find(|t| t.current)
                .map_or(tid(1), |t| tid(t.tid as usize));
        }
        tid(self.tasks().1)
    }

    /// Whether an action is waiting for the event loop.
    pub fn pending(&self) -> Option<Action> {
        self.pending
    }

    /// Drops the pending action (an interrupt arrived before it ran).
    pub fn cancel_pending(&mut self) {
        self.pending = None;
    }

    /// Carries out the pending action on the timeline and says where it stopped; a
    /// continue stops (with SIGINT, at an event boundary) once `interrupted` says so:
    /// gdb's Ctrl-C arriving during the run.
    pub fn run_pending(&mut self, interrupted: &mut dyn FnMut() -> bool) -> Stop {
        let Some(action) = self.pending.take() else {
            return Stop::SignalWithThread {
                tid: self.current_tid(),
                signal: Signal::SIGTRAP,
            };
        };
        let t0 = Instant::now();
        let r = match action {
            Action::Continue => self.tl.run_forward_with(Some(interrupted)),
            Action::Step => self.tl.step_forward(),
            Action::ReverseContinue => self.tl.run_backward(),
            Action::ReverseStep => self.tl.step_back(),
        };
        let stop = match r {
            Ok(reason) => self.stop_for(reason),
            Err(e) => {
                let msg = Error::timeline(action_name(action), self.where_text(), e).to_string();
                eprintln!("rewind gdb: {msg}");
                self.last_error = Some(msg);
                Stop::SignalWithThread {
                    tid: self.current_tid(),
                    signal: Signal::SIGTRAP,
                }
            }
        };
        self.latency.add(action_name(action), t0.elapsed());
        if std::env::var_os("REWIND_GDB_LOG").is_some() {
            eprintln!(
                "rewind gdb: {} -> {stop:?} at {} in {:.1} ms",
                action_name(action),
                self.where_text(),
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
        stop
    }

    fn where_text(&mut self) -> String {
        self.tl
            .position()
            .map_or_else(|_| "an unknown position".into(), |p| p.to_string())
    }

    /// A timeline stop as gdb's stop reply.
    fn stop_for(&mut self, reason: StopReason) -> Stop {
        match reason {
            // With threads, a stop must name one, or gdb picks the first thread itself.
            StopReason::Done => Stop::SignalWithThread {
                tid: self.current_tid(),
                signal: Signal::SIGTRAP,
            },
            StopReason::Breakpoint(a) => {
                let t = self.current_tid();
                if self.hw_breaks.contains(&a) && !self.sw_breaks.contains(&a) {
                    Stop::HwBreak(t)
                } else {
                    Stop::SwBreak(t)
                }
            }
            // Going backward, the timeline already stopped before the access.
            StopReason::Watchpoint(a) => {
                let kind = self.watches.get(&a).copied().unwrap_or(GdbWatch::Write);
                Stop::Watch {
                    tid: self.current_tid(),
                    kind,
                    addr: a,
                }
            }
            // gdb says "Program received signal SIGSEGV" and shows the faulting
            // instruction; its `continue` then delivers the signal, as recorded.
            StopReason::Signal(sig) => Stop::SignalWithThread {
                tid: self.current_tid(),
                signal: Signal(u8::try_from(sig).unwrap_or(0)),
            },
            StopReason::SyscallReturn(nr) => Stop::CatchSyscall {
                tid: Some(self.current_tid()),
                number: nr,
                position: CatchSyscallPosition::Return,
            },
            StopReason::Interrupted => Stop::SignalWithThread {
                tid: self.current_tid(),
                signal: Signal::SIGINT,
            },
            StopReason::StartOfHistory => Stop::ReplayLog {
                tid: Some(self.current_tid()),
                pos: ReplayLogPosition::Begin,
            },
            StopReason::EndOfHistory | StopReason::Exited(_) => {
                // Past the exit there is no process to show: stay on its last instruction.
                if let Err(e) = self.tl.seek_last_live() {
                    self.last_error = Some(e.to_string());
                }
                Stop::ReplayLog {
                    tid: Some(self.current_tid()),
                    pos: ReplayLogPosition::End,
                }
            }
        }
    }

    /// Thread `t`'s registers as gdb is to see them. A switched-out guest task has only
    /// what its switch saved: the caller-saved registers are unavailable, and where the
    /// guest can show the task inside its switch routine (its `gdb_script` unwinds that
    /// frame) only the pc and stack pointer there are known.
    fn regs_for(&self, t: Tid) -> Result<Regs, ()> {
        if let Some(threads) = self.program_threads() {
            return threads
                .into_iter()
                .find(|x| x.tid as usize == t.get())
                .map(|x| Regs::known(to_gdb(&x.regs)))
                .ok_or(());
        }
        let live = self.tl.regs().map_err(|_| ())?;
        let (tasks, cur) = self.tasks();
        let Some(guest) = self.guest.as_ref().filter(|_| t.get() != cur) else {
            return Ok(Regs::known(to_gdb(&live)));
        };
        let task = tasks.iter().find(|x| task_tid(x) == t.get()).ok_or(())?;
        let c = guest.saved_context(task, &self.tl).ok_or(())?;
        let regs = match c.switch {
            Some(sw) => Regs::known(to_gdb(&Gprs {
                rip: sw.pc,
                rsp: sw.sp,
                ..live
            }))
            .without(&arch::CALLEE_SAVED),
            None => Regs::known(to_gdb(&Gprs {
                rip: c.rip,
                rsp: c.rsp,
                rbp: c.rbp,
                rbx: c.rbx,
                r12: c.r12,
                r13: c.r13,
                r14: c.r14,
                r15: c.r15,
                ..live
            })),
        };
        Ok(regs.without(&arch::CALLER_SAVED))
    }

    fn set_action(&mut self, a: Action) {
        // A step anywhere steps the whole guest: its tasks share one host thread.
        if self.pending != Some(Action::Step) {
            self.pending = Some(a);
        }
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Continue => "continue",
        Action::Step => "stepi",
        Action::ReverseContinue => "reverse-continue",
        Action::ReverseStep => "reverse-stepi",
    }
}

impl Target for ReplayTarget {
    type Arch = Amd64;
    type Error = Error;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(
        &mut self,
    ) -> Option<gdbstub::target::ext::monitor_cmd::MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn support_auxv(&mut self) -> Option<AuxvOps<'_, Self>> {
        Some(self)
    }

    fn support_catch_syscalls(&mut self) -> Option<CatchSyscallsOps<'_, Self>> {
        Some(self)
    }
}

impl CatchSyscalls for ReplayTarget {
    /// `catch syscall`: runs stop where a recorded call returns (its event applied). Only
    /// returns: the recording's events are the calls' results, and the point of entry
    /// has no position of its own short of re-executing back from the return.
    fn enable_catch_syscalls(
        &mut self,
        filter: Option<SyscallNumbers<'_, u64>>,
    ) -> TargetResult<(), Self> {
        let catch = match filter {
            None => replayer::SyscallCatch::All,
            Some(numbers) => replayer::SyscallCatch::Only(numbers.collect()),
        };
        self.tl.set_syscall_catch(Some(catch));
        Ok(())
    }

    fn disable_catch_syscalls(&mut self) -> TargetResult<(), Self> {
        self.tl.set_syscall_catch(None);
        Ok(())
    }
}

impl MultiThreadBase for ReplayTarget {
    fn read_registers(&mut self, regs: &mut Regs, t: Tid) -> TargetResult<(), Self> {
        *regs = self.regs_for(t).map_err(|_| TargetError::NonFatal)?;
        Ok(())
    }

    fn write_registers(&mut self, _: &Regs, _: Tid) -> TargetResult<(), Self> {
        // gdb shows only "E01": say why on the terminal gdb shares with us.
        eprintln!(
            "rewind: {}",
            replayer::Error::ReadOnly("writing registers".into())
        );
        Err(TargetError::Errno(1))
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], _: Tid) -> TargetResult<usize, Self> {
        let bytes = match self.tl.read_memory(start, data.len()) {
            Ok(b) => b,
            Err(e) => return nonfatal(e),
        };
        if bytes.is_empty() && !data.is_empty() {
            return Err(TargetError::Errno(14));
        }
        data[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], _: Tid) -> TargetResult<(), Self> {
        self.tl.write_memory(start, data).map_err(|e| {
            eprintln!("rewind: {e}");
            TargetError::Errno(14)
        })
    }

    fn list_active_threads(&mut self, out: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        if let Some(threads) = self.program_threads() {
            for t in threads {
                out(tid(t.tid as usize));
            }
            return Ok(());
        }
        let (tasks, cur) = self.tasks();
        if !tasks.iter().any(|t| task_tid(t) == cur) {
            out(tid(cur));
        }
        for t in &tasks {
            out(tid(task_tid(t)));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl Auxv for ReplayTarget {
    /// The recorded auxiliary vector (AT_NULL-terminated pairs of u64), from which gdb
    /// relocates a position-independent program's symbols.
    fn get_auxv(&self, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let mut bytes: Vec<u8> = Vec::new();
        for (k, v) in self.tl.auxv().into_iter().chain([(0, 0)]) {
            bytes.extend_from_slice(&k.to_le_bytes());
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let n = length.min(buf.len()).min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }
}

impl ThreadExtraInfo for ReplayTarget {
    fn thread_extra_info(&self, t: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let (tasks, _) = self.tasks();
        let text = match tasks.iter().find(|x| task_tid(x) == t.get()) {
            // The holder as gdb lists it ("abba-2 (Thread 1.5)"), not by a pid that is
            // not its gdb thread number.
            Some(task) => {
                task.description_naming(&|pid| match tasks.iter().find(|h| h.pid == pid) {
                    Some(h) => format!("{} (Thread 1.{})", h.name, task_tid(h)),
                    None => format!("pid {pid}"),
                })
            }
            None if self.guest.is_some() => "no task yet".to_string(),
            None => match self.program_threads() {
                Some(threads)
                    if threads
                        .iter()
                        .any(|x| x.current && x.tid as usize == t.get()) =>
                {
                    "running".to_string()
                }
                _ => String::new(),
            },
        };
        let n = text.len().min(buf.len());
        buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        Ok(n)
    }
}

impl MultiThreadResume for ReplayTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        // gdbstub's contract: threads without an explicit action continue.
        if self.pending.is_none() {
            self.pending = Some(Action::Continue);
        }
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.pending = None;
        Ok(())
    }

    fn set_resume_action_continue(&mut self, _: Tid, _: Option<Signal>) -> Result<(), Self::Error> {
        // Signals cannot be injected into a replay: the recording decides them.
        self.set_action(Action::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, Tid, Self>> {
        Some(self)
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, Tid, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSchedulerLocking for ReplayTarget {
    /// gdb locks the scheduler to step the thread it stopped in over that thread's
    /// breakpoint (`vCont;s:p1.N` with the others held), and in "replay" mode for every
    /// resume. The guest's tasks share one host thread and the recording fixed their
    /// schedule, so a replay cannot hold some still while others run: a step steps the
    /// task running at this point — the one gdb stopped in, so stepping over a breakpoint
    /// is exact — and a continue runs the recorded schedule, as rr does. A stop in another
    /// task is reported as that task's, so gdb says it switched threads.
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl MultiThreadSingleStep for ReplayTarget {
    fn set_resume_action_step(&mut self, _: Tid, _: Option<Signal>) -> Result<(), Self::Error> {
        self.pending = Some(Action::Step);
        Ok(())
    }
}

impl ReverseCont<Tid> for ReplayTarget {
    fn reverse_cont(&mut self) -> Result<(), Self::Error> {
        self.pending = Some(Action::ReverseContinue);
        Ok(())
    }
}

impl ReverseStep<Tid> for ReplayTarget {
    fn reverse_step(&mut self, _: Tid) -> Result<(), Self::Error> {
        self.pending = Some(Action::ReverseStep);
        Ok(())
    }
}

impl Breakpoints for ReplayTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl ReplayTarget {
    /// Adds a breakpoint of one kind; both kinds are one timeline breakpoint.
    fn add_break(&mut self, hw: bool, addr: u64) -> bool {
        let (mine, _) = self.break_sets(hw);
        mine.insert(addr);
        self.tl.set_breakpoint(addr);
        true
    }

    /// Removes a breakpoint of one kind; the timeline keeps it while the other kind is
    /// still set on the same address.
    fn remove_break(&mut self, hw: bool, addr: u64) -> bool {
        let (mine, other) = self.break_sets(hw);
        if !mine.remove(&addr) {
            return false;
        }
        if !other.contains(&addr) {
            self.tl.remove_breakpoint(addr);
        }
        true
    }

    /// (this kind's addresses, the other kind's).
    fn break_sets(&mut self, hw: bool) -> (&mut BTreeSet<u64>, &BTreeSet<u64>) {
        if hw {
            (&mut self.hw_breaks, &self.sw_breaks)
        } else {
            (&mut self.sw_breaks, &self.hw_breaks)
        }
    }
}

impl SwBreakpoint for ReplayTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _: usize) -> TargetResult<bool, Self> {
        Ok(self.add_break(false, addr))
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_break(false, addr))
    }
}

/// Hardware breakpoints share the timeline's breakpoint mechanism (the replay is never
/// modified where gdb can see it), so they cost no debug-register slot.
impl HwBreakpoint for ReplayTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _: usize) -> TargetResult<bool, Self> {
        Ok(self.add_break(true, addr))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_break(true, addr))
    }
}

impl HwWatchpoint for ReplayTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatch,
    ) -> TargetResult<bool, Self> {
        // x86 debug registers cannot watch reads alone; gdb filters read hits itself.
        let k = match kind {
            GdbWatch::Write => WatchKind::Write,
            GdbWatch::Read | GdbWatch::ReadWrite => WatchKind::ReadWrite,
        };
        if self.watches.contains_key(&addr) {
            return Ok(false);
        }
        // A length beyond usize is no watchpoint the debug registers can cover.
        let Ok(len) = usize::try_from(len) else {
            return Ok(false);
        };
        match self.tl.set_watchpoint(addr, len, k) {
            Ok(_) => {
                self.watches.insert(addr, kind);
                Ok(true)
            }
            // "not supported here" lets gdb fall back (e.g. to a software watchpoint).
            Err(_) => Ok(false),
        }
    }

    fn remove_hw_watchpoint(&mut self, addr: u64, _: u64, _: GdbWatch) -> TargetResult<bool, Self> {
        if self.watches.remove(&addr).is_none() {
            return Ok(false);
        }
        Ok(self.tl.remove_watchpoint(addr))
    }
}
