//! The tasks of a replay and their schedule (mirror of `recorder::tasks`): the events of
//! each task are applied to its own tracee, and `Event::Switch` moves the replay from one
//! task to the next exactly where the recording did, so each task runs over the same
//! stretches of the event stream as at record time.
//!
//! A task is created by executing the recorded fork, vfork or clone (`Event::NewTask` or
//! `Event::NewThread`, then its `Syscall`); the recording-time ids the program saw (the
//! call's result, the tid the kernel wrote to memory) are put back in place of the
//! replay's own, as every call that reads or names a pid is emulated. A task whose call
//! waited in the kernel at record time (`Event::Blocked`) is brought to the same entry, and
//! left there, so that nothing of it runs while the others do.

use trace::{Event, SyscallEvent};
use tracee::syscalls::CloneArgs;
use tracee::{Addr, Resume, Running, Signal, Stop, Stopped, Waited};

use crate::error::{Error, Result};
use crate::session::{Engine, Kind, TaskState};

/// Where a task stands in a call that spans events of the schedule.
#[derive(Debug)]
pub(crate) enum Call {
    /// Between events.
    None,
    /// At the seccomp stop of the call its `Blocked` event named; its `Syscall` event
    /// applies it.
    AtEntry,
    /// At the seccomp stop of an mmap that its `Syscall` event maps from shared file N
    /// (`Event::SharedMapping`).
    MappingShared(Box<trace::SharedMapping>),
    /// At the ptrace stop of the fork-like call that created task `child`, which its
    /// `Syscall` event finishes (or a `Blocked` leaves in the kernel).
    Spawning { child: u32, settid: Option<u64> },
    /// Inside an executed call that waits (a vfork, until its child execs or ends).
    InKernel(Running, u32, Option<u64>),
    /// Created, on its way to its first stop; `settid` is where its tid goes in its
    /// own memory (CLONE_CHILD_SETTID).
    New(Running, Option<u64>),
    /// After its exit or exit_group, on its way to its end.
    Exiting(Running),
}

impl Engine {
    /// Whether the recording has more than one task live at this point.
    pub(crate) fn has_other_tasks(&self) -> bool {
        !self.parked().is_empty()
    }

    /// Applies `ev` if it is the schedule's (a switch) or continues a call the current
    /// task is in the middle of; `false` leaves it to the run loop.
    pub(crate) fn on_task_event(&mut self, ev: &Event) -> Result<bool> {
        if let Event::Switch { from, to } = ev {
            self.switch(*from, *to)?;
            return Ok(true);
        }
        if self.cur().ended {
            return Err(self.diverged(
                crate::describe(ev),
                "the task has ended (the recording switches to another here)".into(),
            ));
        }
        let call = std::mem::replace(&mut self.cur_mut().call, Call::None);
        match (call, ev) {
            (Call::None, Event::Outside) => {
                self.leave()?;
                Ok(true)
            }
            (Call::None, _) => Ok(false),
            (Call::AtEntry, Event::Syscall(sc)) => {
                let s = self.take_live()?;
                let regs = self.t(s.regs())?;
                self.on_syscall(s, regs, sc)?;
                Ok(true)
            }
            (Call::MappingShared(m), Event::Syscall(sc)) => {
                let s = self.take_live()?;
                self.on_shared_mmap(s, sc, &m)?;
                Ok(true)
            }
            (Call::Spawning { child, settid }, Event::Blocked { .. }) => {
                let s = self.take_live()?;
                let r = self.t(s.resume(Resume::Syscall(None)))?;
                self.cur_mut().call = Call::InKernel(r, child, settid);
                self.applied();
                Ok(true)
            }
            (Call::Spawning { child, settid }, Event::Syscall(sc)) => {
                let s = self.take_live()?;
                let r = self.t(s.resume(Resume::Syscall(None)))?;
                self.finish_spawn(r, sc, child, settid)?;
                Ok(true)
            }
            (Call::InKernel(r, child, settid), Event::Syscall(sc)) => {
                self.finish_spawn(r, sc, child, settid)?;
                Ok(true)
            }
            (call, Event::Exit(expected)) => {
                self.await_end(call, *expected)?;
                Ok(true)
            }
            (call, ev) => Err(self.diverged(
                crate::describe(ev),
                format!("the task is in the middle of a call ({call:?})"),
            )),
        }
    }

    /// `Event::Outside`: the current task left the recording as its parent's ptracee.
    /// What it did from here reached the recording only through its parent's recorded
    /// ptrace and wait4 results, which replay emulates: the task is ended here.
    /// Only a task's own PTRACE_TRACEME, just replayed, lets it leave: anywhere else the
    /// event would end a task whose life the recording goes on to describe.
    fn leave(&mut self) -> Result<()> {
        let next = self.next_event();
        let asked = next
            .checked_sub(1)
            .and_then(|i| self.event(i))
            .is_some_and(|e| {
                matches!(e, Event::Syscall(sc) if sc.nr == libc::SYS_ptrace as u64
                && sc.args[0] == u64::from(libc::PTRACE_TRACEME) && sc.ret == 0)
            });
        if !asked {
            return Err(self.diverged(
                "the task leaving the recording (ptraced by its parent)".into(),
                "its last event is not its own successful PTRACE_TRACEME".into(),
            ));
        }
        let s = self.take_live()?;
        self.t(s.kill())?;
        self.cur_mut().ended = true;
        self.applied();
        self.set_position(crate::position::Position::event(self.next_event()));
        Ok(())
    }

    /// Waits for the current task's next report while reaping the other tasks that end
    /// meanwhile (their ends are kept for their `Exit` events).
    pub(crate) fn wait_reaping(&mut self, running: Running) -> Result<Waited> {
        let mut r = running;
        let mut nap = std::time::Duration::from_micros(20);
        loop {
            match self.t(r.try_wait())? {
                Ok(w) => return Ok(w),
                Err(back) => r = back,
            }
            let pids: Vec<(u32, tracee::Pid)> = self
                .parked()
                .iter()
                // Only a task at a stop, or on its way to its end, has nothing else to
                // report.
                .filter(|(_, t)| {
                    t.reaped.is_none() && (t.live.is_some() || matches!(t.call, Call::Exiting(_)))
                })
                .filter_map(|(&tid, t)| t.pid().map(|p| (tid, p)))
                .collect();
            for (tid, pid) in pids {
                if let Some(e) = self.t(tracee::task::try_reap(pid))? {
                    if let Some(t) = self.parked_mut().get_mut(&tid) {
                        t.reaped = Some(e);
                    }
                }
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(std::time::Duration::from_millis(1));
        }
    }

    /// Waits for the end of the current task, letting it through any stop on the way and
    /// reaping the others that end meanwhile (a thread group's leader is reported only
    /// once its other threads are reaped).
    fn wait_end_reaping(&mut self, running: Running) -> Result<tracee::Exit> {
        let mut r = running;
        loop {
            match self.wait_reaping(r)? {
                Waited::Exited(e) => return Ok(e),
                Waited::Stopped(s, _) => {
                    let pid = s.pid();
                    r = match s.resume(Resume::Cont(None)) {
                        Ok(r) => r,
                        Err(tracee::Error::Died { .. }) => Running::new_task(pid),
                        Err(e) => return self.t(Err(e)),
                    };
                }
            }
        }
    }

    /// The recorded end of the current task, which stands in `call`: killed from outside
    /// (SIGKILL, which replay's emulated kill never sent), it is killed here; else its
    /// end is on its way (its own exit, a sibling thread's exit_group) and is waited for.
    fn await_end(&mut self, call: Call, expected: trace::ExitStatus) -> Result<()> {
        let running = match call {
            Call::Exiting(r) | Call::InKernel(r, ..) | Call::New(r, _) => Some(r),
            Call::None | Call::AtEntry | Call::MappingShared(_) | Call::Spawning { .. } => None,
        };
        let killed = crate::session::killed_from_outside(&Event::Exit(expected));
        if let Some(e) = self.cur_mut().reaped.take() {
            self.cur_mut().live = None;
            self.on_exit(e)?;
            return Ok(());
        }
        let exit = match (running, self.take_live().ok()) {
            (Some(r), _) if killed => self.t(r.kill())?,
            (_, Some(s)) if killed => self.t(s.kill())?,
            (Some(r), _) => self.wait_end_reaping(r)?,
            (None, Some(s)) => {
                let pid = s.pid();
                match s.resume(Resume::Cont(None)) {
                    Ok(r) => self.wait_end_reaping(r)?,
                    // Already gone: its end waits to be reaped.
                    Err(tracee::Error::Died { .. }) => {
                        self.wait_end_reaping(Running::new_task(pid))?
                    }
                    Err(e) => return self.t(Err(e)),
                }
            }
            (None, None) => {
                return Err(self.diverged(
                    format!("the end of the task ({expected:?})"),
                    "no tracee to end".into(),
                ))
            }
        };
        self.on_exit(exit)?;
        Ok(())
    }

    /// At the seccomp stop the current task's `Blocked` event names: checks it is the
    /// same call and leaves the task there.
    pub(crate) fn on_blocked(&mut self, s: Stopped, nr: u64, rip: u64) -> Result<()> {
        let regs = self.t(s.regs())?;
        if regs.syscall_nr() != nr || regs.rip() != rip {
            let found =
                crate::syscalls::describe_call(regs.syscall_nr(), &regs.syscall_args(), regs.rip());
            let _ = s.kill();
            return Err(self.diverged(
                format!("{} blocking at {rip:#x}", crate::syscalls::name(nr)),
                found,
            ));
        }
        self.put_live(s);
        self.cur_mut().call = Call::AtEntry;
        self.applied();
        self.at_boundary_in_call();
        Ok(())
    }

    /// At the seccomp stop of the fork-like call that `Event::NewTask` (a process) or
    /// `Event::NewThread` (`thread`) says created task `tid`: runs it to the kernel's
    /// new-task stop and registers the child.
    pub(crate) fn on_new_task(&mut self, s: Stopped, tid: u32, thread: bool) -> Result<()> {
        let regs = self.t(s.regs())?;
        let nr = regs.syscall_nr();
        if !tracee::syscalls::creates_task(nr) {
            let found = crate::syscalls::describe_call(nr, &regs.syscall_args(), regs.rip());
            let _ = s.kill();
            return Err(self.diverged(format!("a fork, vfork or clone creating task {tid}"), found));
        }
        if self.parked().contains_key(&tid) || self.cur().tid == Some(tid) {
            let _ = s.kill();
            return Err(self.diverged(
                format!("a new task {tid}"),
                format!("task {tid} exists already"),
            ));
        }
        let args = self.t(tracee::syscalls::clone_args(&s, nr, regs.syscall_args()))?;
        // Before format 6 a `NewTask` could be either; since, the event says which.
        let said = self.data().header().format_version >= 6 || thread;
        if said && args.is_thread() != thread {
            let _ = s.kill();
            let what = |t: bool| if t { "a thread" } else { "a process" };
            return Err(self.diverged(
                format!("{} {tid} created", what(thread)),
                format!(
                    "{} created (clone flags {:#x})",
                    what(args.is_thread()),
                    args.flags
                ),
            ));
        }
        let CloneArgs {
            flags,
            parent_tid,
            child_tid,
        } = args;
        let r = self.t(s.resume(Resume::Syscall(None)))?;
        let (s, pid) = match self.t(r.wait())? {
            Waited::Stopped(s, Stop::NewTask) => {
                let msg = self.t(s.event_msg())?;
                (s, msg)
            }
            Waited::Stopped(s, other) => {
                let _ = s.kill();
                return Err(self.diverged(format!("task {tid} created"), format!("{other:?}")));
            }
            Waited::Exited(e) => {
                return Err(self.diverged(
                    format!("task {tid} created"),
                    format!("the tracee ended: {e:?}"),
                ))
            }
        };
        let pid = i32::try_from(pid)
            .map(tracee::Pid::from_raw)
            .map_err(|_| self.diverged(format!("task {tid} created"), format!("task id {pid}")))?;
        let set = |flag: i32, at: u64| (flags & flag as u64 != 0 && at != 0).then_some(at);
        let child = TaskState::new(
            Some(tid),
            self.cur().ticks,
            Call::New(
                Running::new_task(pid),
                set(libc::CLONE_CHILD_SETTID, child_tid),
            ),
        );
        self.parked_mut().insert(tid, child);
        self.put_live(s);
        self.cur_mut().call = Call::Spawning {
            child: tid,
            settid: set(libc::CLONE_PARENT_SETTID, parent_tid),
        };
        self.applied();
        self.at_boundary_in_call();
        Ok(())
    }

    /// The fork-like call's exit stop: its result becomes the recorded one (the child's
    /// recording-time id), as does the tid the kernel wrote to the parent's memory.
    fn finish_spawn(
        &mut self,
        r: Running,
        sc: &SyscallEvent,
        child: u32,
        settid: Option<u64>,
    ) -> Result<()> {
        let s = match self.t(r.wait())? {
            Waited::Stopped(s, Stop::Syscall) => s,
            Waited::Stopped(s, other) => {
                let _ = s.kill();
                return Err(
                    self.diverged("the fork's syscall-exit stop".into(), format!("{other:?}"))
                );
            }
            Waited::Exited(e) => {
                return Err(self.diverged(
                    "the fork's syscall-exit stop".into(),
                    format!("the tracee ended: {e:?}"),
                ))
            }
        };
        let mut regs = self.t(s.regs())?;
        // The argument registers survive the call: the same call, from the same place.
        let (nr, args, rip) = (regs.syscall_nr(), regs.syscall_args(), regs.rip());
        if nr != sc.nr || args != sc.args || rip != sc.rip.0 {
            self.put_live(s);
            return Err(self.diverged(
                crate::syscalls::describe_call(sc.nr, &sc.args, sc.rip.0),
                crate::syscalls::describe_call(nr, &args, rip),
            ));
        }
        if sc.ret != i64::from(child) || regs.syscall_ret() <= 0 {
            let found = regs.syscall_ret();
            self.put_live(s);
            return Err(self.diverged(
                format!("{} returning task {child}", crate::syscalls::name(sc.nr)),
                format!("it returned {found} (recorded {})", sc.ret),
            ));
        }
        regs.set_syscall_ret(sc.ret);
        self.t(s.set_regs(&regs))?;
        if let Some(at) = settid {
            self.t(s.write_bytes(Addr::new(at), &child.to_le_bytes()))?;
        }
        let n = self.next_event();
        self.applied();
        self.at_boundary(s, Kind::SyscallExit(n));
        Ok(())
    }

    /// `Event::Switch`: parks the current task (unless it ended) and makes `to` current,
    /// bringing a new task to its first stop.
    fn switch(&mut self, from: u32, to: u32) -> Result<()> {
        // The first task is named by the first switch away from it.
        let here = *self.cur_mut().tid.get_or_insert(from);
        if here != from || from == to {
            return Err(self.diverged(
                format!("a switch from task {from} to task {to}"),
                format!("task {here} is running"),
            ));
        }
        let Some(next) = self.parked_mut().remove(&to) else {
            return Err(self.diverged(
                format!("a switch to task {to}"),
                format!("no task {to} exists at this point of the replay"),
            ));
        };
        let prev = self.replace_cur(next);
        if !prev.ended {
            self.parked_mut().insert(from, prev);
        }
        let call = std::mem::replace(&mut self.cur_mut().call, Call::None);
        if !matches!(call, Call::New(..)) {
            self.cur_mut().call = call;
        } else if let Call::New(r, settid) = call {
            let s = match self.t(r.wait())? {
                Waited::Stopped(s, Stop::Signal(Signal::SIGSTOP)) => s,
                Waited::Stopped(s, other) => {
                    let _ = s.kill();
                    return Err(
                        self.diverged(format!("task {to}'s first stop"), format!("{other:?}"))
                    );
                }
                Waited::Exited(e) => {
                    return Err(Error::Divergence {
                        event: self.next_event(),
                        expected: format!("task {to}'s first stop"),
                        found: format!("it ended: {e:?}"),
                    })
                }
            };
            if let Some(at) = settid {
                self.t(s.write_bytes(Addr::new(at), &to.to_le_bytes()))?;
            }
            self.put_live(s);
        }
        self.applied();
        let n = self.next_event();
        self.set_position(crate::position::Position::event(n));
        Ok(())
    }
}
