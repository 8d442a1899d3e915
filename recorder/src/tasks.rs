//! The tasks of a recording and their schedule: every process the program forks is
//! followed, and one task runs at a time, as rr does. The running task keeps the CPU
//! until it exits or a call of its waits in the kernel (`tracee::syscalls::may_block`):
//! it sleeps there, or is still running in it after [`BLOCK_WINDOW`]. Then the recorder
//! writes `Event::Blocked`, parks it inside its call and switches (`Event::Switch`) to
//! a task that can run. Between two switches only
//! one task executed user code, so replay, running each task over the same stretches of
//! the event stream, reproduces every interleaving the tasks could observe.
//!
//! Threads are tasks like processes: one runs at a time, and they switch where they
//! wait in the kernel (a contended futex above all). A task that runs a long time
//! without a traced call while another could run is preempted inside its user code
//! where that point can be found again (`preempt`), or else keeps the CPU until its
//! next call.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use trace::{Event, SyscallEvent};
use tracee::{Exit, Pid, Regs, Resume, Running, Signal, Stop, Stopped, Waited};

use crate::error::{Error, Result};
use crate::session::{Flow, Session, TickAddrs};
use crate::signals::SignalState;

/// How long a call that may block runs in the kernel without sleeping, the other tasks
/// held, before the recorder lets them run: long enough that a call which returns by
/// itself (a read of a full pipe, a wait4 for a child that already ended) is recorded
/// without a switch. A call that sleeps lets them run at once.
pub const BLOCK_WINDOW: Duration = Duration::from_millis(2);

/// How long a task that keeps making calls which return by themselves runs before
/// another task that can run gets the CPU, at its next syscall exit.
pub const TIME_SLICE: Duration = Duration::from_millis(10);

/// The state the recorder keeps for one task, swapped in while it runs.
pub(crate) struct TaskCtx {
    pub pid: Pid,
    /// The execution-point ABI of the program it runs (only the recording's first
    /// program is followed by ticks: another has its signals placed at system calls).
    pub ticks: Option<TickAddrs>,
    pub sig: SignalState,
    /// When and whether it is stopped inside user code for another task to run.
    pub preempt: crate::preempt::Preemption,
    /// Registers at the last syscall-exit stop and that event's index, while no user
    /// instruction can have run since (cleared at every other stop).
    pub last_exit: Option<(Regs, u64)>,
}

impl TaskCtx {
    pub(crate) fn new(pid: Pid, ticks: Option<TickAddrs>) -> TaskCtx {
        TaskCtx {
            pid,
            ticks,
            sig: SignalState::default(),
            preempt: crate::preempt::Preemption::default(),
            last_exit: None,
        }
    }
}

/// A recorded call whose exit stop has not been handled yet.
pub(crate) struct PendingCall {
    pub event: SyscallEvent,
    pub name: String,
    /// Address after its `syscall` instruction.
    pub entry_rip: u64,
    /// A copying call's source position, read before the call moved it.
    pub copy_from: Option<u64>,
}

/// How running a call toward its exit stop ended.
pub(crate) enum CallEnd {
    /// At its syscall-exit stop.
    Returned(Stopped),
    /// An execve that succeeded, at its exec stop.
    Executed(Stopped),
    /// The task ended inside it.
    Died(Exit),
    /// Still in the kernel after the window, with other tasks to run.
    Blocked,
}

/// Where a task that is not running waits.
pub(crate) enum Waiting {
    /// Created, on its way to its first stop.
    New,
    /// Inside the call its `Blocked` event names.
    InCall(Box<PendingCall>),
    /// After its exit or exit_group, on its way to its end.
    Exiting,
    /// Able to run.
    Ready(Ready),
}

/// What a parked task that can run resumes from.
pub(crate) enum Ready {
    /// A stop whose handling is done (a new task's first SIGSTOP, or the syscall-exit
    /// stop where its time slice ended), resumed as it is.
    Stopped(Stopped),
    /// Its blocked call came back: at the syscall-exit stop, its event still to write.
    Returned(Stopped, Box<PendingCall>),
    /// It ended (inside its blocked call, if one is given) while others ran.
    Dead(Exit, Option<Box<PendingCall>>),
}

struct Parked {
    ctx: TaskCtx,
    waiting: Waiting,
}

/// The tasks of the recording besides the running one.
#[derive(Default)]
pub(crate) struct Tasks {
    parked: BTreeMap<i32, Parked>,
    /// Reports for tasks not known yet (a child's first stop can come before its
    /// parent's new-task stop).
    early: HashMap<i32, Waited>,
    /// When the running task was switched in.
    slice_from: Option<Instant>,
}

impl Tasks {
    /// Whether the running task is the only one.
    pub(crate) fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// Kills the running task and every other (the recording ends early), reaping each
    /// as it is reported: a thread group's leader is only reported after its other
    /// threads, so waiting for it first would never end.
    pub(crate) fn kill_all(&mut self, running: Pid) {
        let mut pids: Vec<Pid> = std::mem::take(&mut self.parked)
            .into_keys()
            .chain(std::mem::take(&mut self.early).into_keys())
            .map(Pid::from_raw)
            .collect();
        pids.push(running);
        tracee::task::kill_all(&pids);
    }

    /// Whether `pid` is a task of the recording that is not running.
    pub(crate) fn contains(&self, pid: i32) -> bool {
        self.parked.contains_key(&pid)
    }

    pub(crate) fn any_ready(&self) -> bool {
        self.parked
            .values()
            .any(|p| matches!(p.waiting, Waiting::Ready(_)))
    }
}

/// Clone flags the recorder follows: a new process, with or without its parent waiting
/// for its exec (vfork), or a thread; told its tid in either memory, sharing any of what
/// a thread shares, with any exit signal.
const FOLLOWED_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_VFORK
    | libc::CLONE_THREAD
    | libc::CLONE_SIGHAND
    | libc::CLONE_SETTLS
    | libc::CLONE_FILES
    | libc::CLONE_FS
    | libc::CLONE_SYSVSEM
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64
    | 0xff;

/// Why a task-creating call is refused, if it is: for the flags replay could not
/// reproduce (namespaces, pidfds, untraced children). A child sharing its parent's memory
/// (a thread, or a process as UML's helpers are) runs one at a time with the others, as
/// every task does, so what each reads of the other's writes is in the schedule.
pub(crate) fn refused_clone(
    s: &Stopped,
    nr: u64,
    args: [u64; 6],
) -> tracee::Result<Option<&'static str>> {
    if !tracee::syscalls::creates_task(nr) {
        return Ok(None);
    }
    if tracee::syscalls::clone_args(s, nr, args)?.flags & !FOLLOWED_CLONE_FLAGS != 0 {
        return Ok(Some(
            "these clone flags (namespaces, pidfds or untraced children) are not supported by \
             the recorder",
        ));
    }
    Ok(None)
}

impl Session {
    /// The running task and every parked one.
    pub(crate) fn task_pids(&self) -> impl Iterator<Item = Pid> + '_ {
        std::iter::once(self.task.pid).chain(self.tasks.parked.keys().map(|&p| Pid::from_raw(p)))
    }

    /// Runs the call `nr` from its seccomp stop toward its exit stop, following the tasks
    /// it creates (each an `Event::NewTask` or `Event::NewThread`). With other tasks to
    /// run, a call that may block is given [`BLOCK_WINDOW`] to return.
    pub(crate) fn run_call(&mut self, s: Stopped, nr: u64) -> Result<CallEnd> {
        let mut running = self.t(s.resume(Resume::Syscall(None)))?;
        loop {
            let window = (!self.tasks.is_empty() && tracee::syscalls::may_block(nr))
                .then(|| Instant::now() + BLOCK_WINDOW);
            let waited = match self.wait_running(running, window, window.is_some())? {
                Ok(w) => w,
                Err(_) => return Ok(CallEnd::Blocked),
            };
            match waited {
                Waited::Stopped(s, Stop::Syscall) => return Ok(CallEnd::Returned(s)),
                Waited::Stopped(s, Stop::Exec) => return Ok(CallEnd::Executed(s)),
                Waited::Exited(e) => return Ok(CallEnd::Died(e)),
                Waited::Stopped(s, Stop::NewTask) => {
                    let msg = self.t(s.event_msg())?;
                    let child = self.new_task(msg)?;
                    // The kernel's own word on what it created, whatever the flags said.
                    let raw = i32::try_from(child).unwrap_or(i32::MAX);
                    let thread = match tracee::maps::thread_group_id(Pid::from_raw(raw)) {
                        Ok(group) => group != raw,
                        Err(e) => {
                            let _ = s.kill();
                            return Err(self.unexpected(raw, "reading a new task's process", e));
                        }
                    };
                    self.append(if thread {
                        Event::NewThread { tid: child }
                    } else {
                        Event::NewTask { tid: child }
                    })?;
                    running = self.t(s.resume(Resume::Syscall(None)))?;
                }
                Waited::Stopped(s, other) => {
                    let pid = s.pid().as_raw();
                    let _ = s.kill();
                    return Err(self.unexpected(pid, "waiting for syscall exit", other));
                }
            }
        }
    }

    /// Waits for the running task's next stop, until `deadline` if one is given (`Err`
    /// gives the task back, still running, when none came), or, with `asleep_ends`, until
    /// the task sleeps in the kernel: a call that sleeps waits for something (most often
    /// another task of the recording, which cannot run meanwhile), so waiting out the
    /// deadline for it would only cost time. Reports of the other tasks that come
    /// meanwhile are noted, and their ends reaped at once: a thread group's leader, or an
    /// exec in a thread group, waits in the kernel for that.
    pub(crate) fn wait_running(
        &mut self,
        r: Running,
        deadline: Option<Instant>,
        asleep_ends: bool,
    ) -> Result<std::result::Result<Waited, Running>> {
        if self.tasks.is_empty()
            && self.tasks.early.is_empty()
            && self.outside.is_empty()
            && deadline.is_none()
        {
            return Ok(Ok(self.t(r.wait())?));
        }
        let me = r.pid();
        let mut spins = 0u32;
        loop {
            match self.t(tracee::task::wait_any(deadline.is_some()))? {
                Some((pid, w)) if pid == me => return Ok(Ok(w)),
                Some((pid, w)) => self.note(pid, w)?,
                None => {
                    if deadline.is_some_and(|d| Instant::now() >= d)
                        || (asleep_ends && tracee::maps::is_asleep(me).unwrap_or(false))
                    {
                        return Ok(Err(r));
                    }
                    // Recorder and tracees share one CPU: yield it to them, then nap.
                    spins += 1;
                    if spins < 64 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            }
        }
    }

    /// A report `w` for task `pid`, which is not running.
    fn note(&mut self, pid: Pid, w: Waited) -> Result<()> {
        let raw = pid.as_raw();
        if self.outside.contains(raw) {
            return self
                .outside
                .note(raw, w)
                .map_err(|what| self.unexpected(raw, "following a ptracee of the program", what));
        }
        let Some(p) = self.tasks.parked.remove(&raw) else {
            self.tasks.early.insert(raw, w);
            return Ok(());
        };
        let waiting = match (p.waiting, w) {
            (Waiting::New, Waited::Stopped(s, Stop::Signal(Signal::SIGSTOP))) => {
                Waiting::Ready(Ready::Stopped(s))
            }
            (Waiting::InCall(call), Waited::Stopped(s, Stop::Syscall)) => {
                Waiting::Ready(Ready::Returned(s, call))
            }
            (
                Waiting::InCall(call) | Waiting::Ready(Ready::Returned(_, call)),
                Waited::Exited(e),
            ) => Waiting::Ready(Ready::Dead(e, Some(call))),
            (
                Waiting::New | Waiting::Exiting | Waiting::Ready(Ready::Stopped(_)),
                Waited::Exited(e),
            ) => Waiting::Ready(Ready::Dead(e, None)),
            (_, Waited::Stopped(s, stop)) => {
                let _ = s.kill();
                return Err(self.unexpected(raw, "waiting for a task that is not running", stop));
            }
            (_, Waited::Exited(e)) => {
                return Err(self.unexpected(raw, "waiting for a task that ended", e));
            }
        };
        self.tasks.parked.insert(
            raw,
            Parked {
                ctx: p.ctx,
                waiting,
            },
        );
        Ok(())
    }

    /// Registers the task a `Stop::NewTask` named (event message `msg`).
    fn new_task(&mut self, msg: u64) -> Result<u32> {
        let tid = u32::try_from(msg)
            .ok()
            .and_then(|t| i32::try_from(t).ok().map(|p| (t, p)));
        let Some((tid, raw)) = tid else {
            return Err(self.unexpected(
                self.task.pid.as_raw(),
                "following a new task",
                format!("new task id {msg}"),
            ));
        };
        let pid = Pid::from_raw(raw);
        // Only the first program's ABI addresses are followed, and a fork runs it too.
        let ctx = TaskCtx::new(pid, self.task.ticks);
        self.tasks.parked.insert(
            raw,
            Parked {
                ctx,
                waiting: Waiting::New,
            },
        );
        if let Some(w) = self.tasks.early.remove(&raw) {
            self.note(pid, w)?;
        }
        Ok(tid)
    }

    /// Notes every report of the tasks that are not running that has come, without
    /// waiting: which of them can run now.
    pub(crate) fn note_pending_reports(&mut self) -> Result<()> {
        while let Some((pid, w)) = self.t(tracee::task::wait_any(true))? {
            self.note(pid, w)?;
        }
        Ok(())
    }

    /// Waits for the next report of a task that is not running, and notes it.
    pub(crate) fn await_report(&mut self) -> Result<()> {
        match self.t(tracee::task::wait_any(false))? {
            Some((pid, w)) => self.note(pid, w),
            None => Err(self.unexpected(
                self.task.pid.as_raw(),
                "waiting for a ptracee of the program",
                "no task left to report",
            )),
        }
    }

    /// At a syscall-exit stop of the running task, its event written: when its time
    /// slice is over and another task can run, the task is parked right here (an exact
    /// place: the end of its last event) so that a task that never blocks, polling for
    /// another's progress, does not keep the CPU forever. Under `--chaos` the seed may
    /// end the slice at any such exit (`chaos::SWITCH_ODDS`).
    pub(crate) fn slice_over(&mut self) -> Result<bool> {
        let over = self
            .tasks
            .slice_from
            .is_none_or(|t| t.elapsed() >= TIME_SLICE);
        if self.tasks.is_empty() || !(over || self.chaos.is_some()) {
            return Ok(false);
        }
        self.note_pending_reports()?;
        if !self.tasks.any_ready() {
            return Ok(false);
        }
        if over {
            return Ok(true);
        }
        self.schedule_choices += 1;
        Ok(self.chaos.as_mut().is_some_and(|c| c.switch()))
    }

    /// The running task ended (`parked`: `None`) or is parked as `parked` says: switch
    /// to the next task that can run, waiting for one if none can yet. `None` when no
    /// task is left.
    pub(crate) fn switch_away(&mut self, parked: Option<Waiting>) -> Result<Option<Flow>> {
        let from = self.task.pid.as_raw();
        if let Some(waiting) = parked {
            let pid = self.task.pid;
            let ctx = std::mem::replace(&mut self.task, TaskCtx::new(pid, None));
            self.tasks.parked.insert(from, Parked { ctx, waiting });
        }
        if self.tasks.parked.is_empty() {
            return Ok(None);
        }
        let (next, ctx, ready) = self.pick_ready(from)?;
        if next != from {
            self.append(Event::Switch {
                from: tid_of(from),
                to: tid_of(next),
            })?;
        }
        self.task = ctx;
        self.tasks.slice_from = Some(Instant::now());
        let flow = match ready {
            Ready::Stopped(s) => Flow::Running(self.t(s.resume(Resume::Cont(None)))?),
            Ready::Returned(s, call) => self.complete_call(s, *call)?,
            Ready::Dead(e, call) => {
                // Killed inside its call from outside (SIGKILL), it is at the call's
                // return for replay, which then kills it there; a task that a sibling's
                // exit_group ended also ends by itself at replay.
                let killed = e.wait_status() & 0x7f == libc::SIGKILL;
                if let Some(call) = call.filter(|_| killed) {
                    let mut event = call.event;
                    event.ret = -(libc::EINTR as i64);
                    self.append(Event::Syscall(event))?;
                }
                Flow::Exited(e)
            }
        };
        Ok(Some(flow))
    }

    /// The first task after `after` (in pid order, wrapping) that can run, taken out of
    /// the parked set, waiting for reports until one can.
    fn pick_ready(&mut self, after: i32) -> Result<(i32, TaskCtx, Ready)> {
        loop {
            let next = self
                .tasks
                .parked
                .range(after + 1..)
                .chain(self.tasks.parked.range(..=after))
                .find(|(_, p)| matches!(p.waiting, Waiting::Ready(_)))
                .map(|(&pid, _)| pid);
            if let Some(pid) = next {
                if let Some(Parked {
                    ctx,
                    waiting: Waiting::Ready(ready),
                }) = self.tasks.parked.remove(&pid)
                {
                    return Ok((pid, ctx, ready));
                }
            }
            match self.t(tracee::task::wait_any(false))? {
                Some((pid, w)) => self.note(pid, w)?,
                None => {
                    return Err(self.unexpected(
                        after,
                        "waiting for a task that can run",
                        "no task left to report",
                    ))
                }
            }
        }
    }

    /// A stop the recorder cannot account for, at the current event.
    pub(crate) fn unexpected(
        &self,
        pid: i32,
        op: &'static str,
        what: impl std::fmt::Debug,
    ) -> Error {
        Error::Tracee {
            event: self.writer.next_index(),
            source: tracee::Error::Unexpected {
                pid,
                op,
                what: format!("{what:?}"),
            },
        }
    }
}

/// A pid as the trace names tasks (pids are positive, below 2^22 on Linux).
fn tid_of(pid: i32) -> u32 {
    u32::try_from(pid).unwrap_or(0)
}
