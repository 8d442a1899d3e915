//! The tasks of a recording and their schedule: every process the program forks is
//! followed, and one task runs at a time, as rr does. The running task keeps the CPU
//! until it exits or a call of its waits in the kernel (`tracee::syscalls::may_block`)
//! past [`BLOCK_WINDOW`]; then the recorder writes `Event::Blocked`, parks it inside its
//! call and switches (`Event::Switch`) to a task that can run. Between two switches only
//! one task executed user code, so replay, running each task over the same stretches of
//! the event stream, reproduces every interleaving the tasks could observe.
//!
//! A task that runs a long time without a traced call keeps the others waiting; that
//! only slows processes that talk through the kernel (pipes, wait4, signals), and
//! threads, which could spin on each other's memory, are refused at their clone until
//! preemption can be placed exactly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use trace::{Event, SyscallEvent};
use tracee::{Exit, Pid, Regs, Resume, Running, Signal, Stop, Stopped, Waited};

use crate::error::{Error, Result};
use crate::session::{Flow, Session, TickAddrs};
use crate::signals::SignalState;

/// How long a call that may block runs in the kernel, the other tasks held, before the
/// recorder lets them run: long enough that a call which returns by itself (a read of a
/// full pipe, a wait4 for a child that already ended) is recorded without a switch.
pub const BLOCK_WINDOW: Duration = Duration::from_millis(2);

/// The state the recorder keeps for one task, swapped in while it runs.
pub(crate) struct TaskCtx {
    pub pid: Pid,
    /// The execution-point ABI of the program it runs (only the recording's first
    /// program is followed by ticks: another has its signals placed at system calls).
    pub ticks: Option<TickAddrs>,
    pub sig: SignalState,
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
    /// The task ended inside it.
    Died(Exit),
    /// Still in the kernel after the window, with other tasks to run.
    Blocked(Running),
}

/// Where a task that is not running waits.
enum Waiting {
    /// Created, on its way to its first stop.
    New(Running),
    /// Inside the call its `Blocked` event names.
    InCall(Running, Box<PendingCall>),
}

/// What a parked task that can run resumes from.
enum Ready {
    /// Its first stop (the SIGSTOP a new task starts with), resumed as it is.
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
}

impl Tasks {
    /// Whether the running task is the only one.
    pub(crate) fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// Kills every parked task (the recording ends early).
    pub(crate) fn kill_all(&mut self) {
        for (pid, _) in std::mem::take(&mut self.parked) {
            tracee::task::kill_pid(Pid::from_raw(pid));
        }
    }
}

/// Calls that create a task.
pub(crate) fn creates_task(nr: u64) -> bool {
    [
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_clone,
        libc::SYS_clone3,
    ]
    .iter()
    .any(|&c| c as u64 == nr)
}

/// Clone flags the recorder follows: a new process, with or without its parent waiting
/// for its exec (vfork), told its tid in either memory, with shared filesystem state.
const FOLLOWED_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_VFORK
    | libc::CLONE_FS
    | libc::CLONE_SYSVSEM
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64
    | 0xff;

/// Why a task-creating call is refused, if it is: threads (or any task sharing memory
/// with a running parent) until their preemption can be placed exactly, and the flags
/// replay could not reproduce (namespaces, pidfds, untraced children).
pub(crate) fn refused_clone(
    s: &Stopped,
    nr: u64,
    args: [u64; 6],
) -> tracee::Result<Option<&'static str>> {
    let flags = if nr == libc::SYS_clone as u64 {
        args[0]
    } else if nr == libc::SYS_clone3 as u64 {
        // struct clone_args begins with the u64 flags; the exit signal is its own field.
        s.read_u64(tracee::Addr::new(args[0]))?
    } else {
        return Ok(None);
    };
    let vm = libc::CLONE_VM as u64;
    let vfork = libc::CLONE_VFORK as u64;
    if flags & libc::CLONE_THREAD as u64 != 0 {
        return Ok(Some(
            "threads are not recorded yet: one thread runs at a time, and a thread that \
             spins on another's memory needs a preemption replay can place exactly",
        ));
    }
    if flags & vm != 0 && flags & vfork == 0 {
        return Ok(Some(
            "a child sharing its parent's memory while both run cannot be recorded yet",
        ));
    }
    if flags & !FOLLOWED_CLONE_FLAGS != 0 {
        return Ok(Some(
            "these clone flags (namespaces, pidfds, shared descriptor tables or untraced \
             children) are not supported by the recorder",
        ));
    }
    Ok(None)
}

impl Session {
    /// Runs the call `nr` from its seccomp stop toward its exit stop, following the tasks
    /// it creates (each an `Event::NewTask`). With other tasks to run, a call that may
    /// block is given [`BLOCK_WINDOW`] to return.
    pub(crate) fn run_call(&mut self, s: Stopped, nr: u64) -> Result<CallEnd> {
        let mut running = self.t(s.resume(Resume::Syscall(None)))?;
        loop {
            let waited = if self.tasks.is_empty() || !tracee::syscalls::may_block(nr) {
                self.t(running.wait())?
            } else {
                match self.wait_window(running)? {
                    Ok(w) => w,
                    Err(r) => return Ok(CallEnd::Blocked(r)),
                }
            };
            match waited {
                Waited::Stopped(s, Stop::Syscall) => return Ok(CallEnd::Returned(s)),
                Waited::Exited(e) => return Ok(CallEnd::Died(e)),
                Waited::Stopped(s, Stop::NewTask) => {
                    let msg = self.t(s.event_msg())?;
                    let child = self.new_task(msg)?;
                    self.append(Event::NewTask { tid: child })?;
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
                waiting: Waiting::New(Running::new_task(pid)),
            },
        );
        Ok(tid)
    }

    /// Waits up to [`BLOCK_WINDOW`] for the running task's next stop: `Err` gives the
    /// task back, still running, when none came.
    fn wait_window(&mut self, running: Running) -> Result<std::result::Result<Waited, Running>> {
        let until = Instant::now() + BLOCK_WINDOW;
        let mut r = running;
        let mut spins = 0u32;
        loop {
            match self.t(r.try_wait())? {
                Ok(w) => return Ok(Ok(w)),
                Err(back) => r = back,
            }
            if Instant::now() >= until {
                return Ok(Err(r));
            }
            // Recorder and tracees share one CPU: yield it to them first, then nap.
            spins += 1;
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// The running task ended (`blocked`: `None`) or is parked inside its call: switch to
    /// the next task that can run, waiting for one if none can yet. `None` when no task
    /// is left.
    pub(crate) fn switch_away(
        &mut self,
        blocked: Option<(Running, Box<PendingCall>)>,
    ) -> Result<Option<Flow>> {
        let from = self.task.pid.as_raw();
        if let Some((r, call)) = blocked {
            let pid = self.task.pid;
            let ctx = std::mem::replace(&mut self.task, TaskCtx::new(pid, None));
            self.tasks.parked.insert(
                from,
                Parked {
                    ctx,
                    waiting: Waiting::InCall(r, call),
                },
            );
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
        let flow = match ready {
            Ready::Stopped(s) => Flow::Running(self.t(s.resume(Resume::Cont(None)))?),
            Ready::Returned(s, call) => self.complete_call(s, *call)?,
            Ready::Dead(e, call) => {
                if let Some(call) = call {
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
    /// the parked set, polling them until one can.
    fn pick_ready(&mut self, after: i32) -> Result<(i32, TaskCtx, Ready)> {
        let mut nap = Duration::from_micros(20);
        loop {
            let order: Vec<i32> = self
                .tasks
                .parked
                .range(after + 1..)
                .chain(self.tasks.parked.range(..=after))
                .map(|(&p, _)| p)
                .collect();
            for pid in order {
                if let Some((ctx, ready)) = self.poll(pid)? {
                    return Ok((pid, ctx, ready));
                }
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }

    /// Parked task `pid` with what it resumes from, taken out of the parked set, if it
    /// can run now (collecting its stop if one came); else it stays parked.
    fn poll(&mut self, pid: i32) -> Result<Option<(TaskCtx, Ready)>> {
        let Some(p) = self.tasks.parked.remove(&pid) else {
            return Ok(None);
        };
        let event = self.writer.next_index();
        let t = |r: tracee::Result<_>| r.map_err(|source| Error::Tracee { event, source });
        let waiting = match p.waiting {
            Waiting::New(r) => match t(r.try_wait())? {
                Err(r) => Waiting::New(r),
                Ok(Waited::Stopped(s, Stop::Signal(Signal::SIGSTOP))) => {
                    return Ok(Some((p.ctx, Ready::Stopped(s))))
                }
                Ok(Waited::Stopped(s, other)) => {
                    let _ = s.kill();
                    return Err(self.unexpected(pid, "waiting for a new task's first stop", other));
                }
                Ok(Waited::Exited(e)) => return Ok(Some((p.ctx, Ready::Dead(e, None)))),
            },
            Waiting::InCall(r, call) => match t(r.try_wait())? {
                Err(r) => Waiting::InCall(r, call),
                Ok(Waited::Stopped(s, Stop::Syscall)) => {
                    return Ok(Some((p.ctx, Ready::Returned(s, call))))
                }
                Ok(Waited::Stopped(s, other)) => {
                    let _ = s.kill();
                    return Err(self.unexpected(pid, "waiting for a blocked call's exit", other));
                }
                Ok(Waited::Exited(e)) => return Ok(Some((p.ctx, Ready::Dead(e, Some(call))))),
            },
        };
        self.tasks.parked.insert(
            pid,
            Parked {
                ctx: p.ctx,
                waiting,
            },
        );
        Ok(None)
    }

    /// A stop the recorder cannot account for, at the current event.
    fn unexpected(&self, pid: i32, op: &'static str, what: impl std::fmt::Debug) -> Error {
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
