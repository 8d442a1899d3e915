//! The record session: the state of one recording and the wait loop that turns each
//! ptrace stop into events, handing each to the module of its source of nondeterminism
//! (`syscalls`, `signals`, `time`, `cpuid`, `exec`).

use trace::{Event, ExitStatus, TraceWriter};
use tracee::{Addr, Exit, Pid, Regs, Resume, Running, Stop, Stopped, Waited};

use crate::error::{Error, Result};
use crate::files::FileCache;
use crate::tasks::{TaskCtx, Tasks, Waiting};

/// Addresses of the execution-point ABI symbols in the tracee.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TickAddrs {
    pub ticks: Addr<u64>,
    pub target: Addr<u64>,
}

/// What became of the running task after a stop was handled.
pub(crate) enum Flow {
    Running(Running),
    Exited(Exit),
    /// It waits in the kernel (in a call whose `Event::Blocked` is written, or for its
    /// end): other tasks run.
    Parked(Waiting),
    /// It left the recording (`Event::Outside`): other tasks run.
    Left,
}

/// State of one recording.
pub(crate) struct Session {
    pub writer: TraceWriter,
    /// The running task.
    pub task: TaskCtx,
    /// The others.
    pub tasks: Tasks,
    /// Children the program ptraces, outside the recording.
    pub outside: crate::ptraced::Outside,
    /// The recording's first task: its end is the recording's.
    pub first: Pid,
    pub files: FileCache,
    /// The files mapped MAP_SHARED so far, numbered.
    pub shared: crate::shared::SharedFiles,
    /// Which tracee descriptors reach the recorder's stdout and stderr.
    pub console: crate::output::Console,
    pub tsc_trapped: bool,
    pub cpuid_faulting: bool,
    /// The placement generator under `--chaos`.
    pub chaos: Option<crate::chaos::Chaos>,
    /// Asynchronous signals recorded so far (every one is an `Event::Signal`).
    pub signals: u64,
    /// Syscall exits where chaos chose whether to switch tasks.
    pub schedule_choices: u64,
    /// The program runs with the syscall buffer preloaded: drain it at every stop.
    pub buffered: bool,
    /// Set by the watchdog when it killed the tracee for running past `--timeout`.
    pub timed_out: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The preemption alarm, started with the recording's second task.
    pub alarm: Option<crate::preempt::Alarm>,
}

impl Session {
    /// Wraps a tracee error with the current event index.
    pub(crate) fn t<T>(&self, r: tracee::Result<T>) -> Result<T> {
        r.map_err(|source| Error::Tracee {
            event: self.writer.next_index(),
            source,
        })
    }

    pub(crate) fn append(&mut self, e: Event) -> Result<u64> {
        if matches!(e, Event::Signal(_)) {
            self.signals += 1;
        }
        Ok(self.writer.append(&e)?)
    }

    /// `REWIND_TICKS` now, or 0 without the ABI.
    pub(crate) fn read_ticks(&self, s: &Stopped) -> Result<u64> {
        match self.task.ticks {
            Some(t) => self.t(s.read_u64(t.ticks)),
            None => Ok(0),
        }
    }

    /// Runs the program from its exec stop until its every task has ended; the first
    /// task's end is returned. On `Err` the tasks are dead and the trace holds
    /// everything up to the failure.
    pub(crate) fn run(&mut self, first: Stopped) -> Result<ExitStatus> {
        let result = self.run_tasks(first);
        if result.is_err() {
            self.tasks.kill_all(self.task.pid);
        }
        self.outside.kill_all();
        result
    }

    fn run_tasks(&mut self, first: Stopped) -> Result<ExitStatus> {
        let mut flow = Flow::Running(self.t(first.resume(Resume::Cont(None)))?);
        let mut first_end = None;
        loop {
            flow = match flow {
                Flow::Running(r) => match self.wait(r)? {
                    Waited::Exited(e) => Flow::Exited(e),
                    Waited::Stopped(s, stop) => {
                        let pid = s.pid();
                        match self.on_stop(s, stop) {
                            // SIGKILLed from outside while its stop was handled: what it
                            // did up to the stop is recorded, its end follows.
                            Err(Error::Tracee {
                                source: tracee::Error::Died { pid: dead, .. },
                                ..
                            }) if dead == pid.as_raw() => {
                                Flow::Exited(self.t(tracee::task::wait_death(pid))?)
                            }
                            flow => flow?,
                        }
                    }
                },
                Flow::Exited(_) if self.was_timed_out() => {
                    return Err(self.timeout_abort());
                }
                Flow::Exited(e) => {
                    let status = ExitStatus::from_wait_status(e.wait_status());
                    self.append(Event::Exit(status))?;
                    if self.task.pid == self.first {
                        first_end = Some(status);
                    }
                    match self.switch_away(None)? {
                        Some(f) => f,
                        None => return Ok(first_end.unwrap_or(status)),
                    }
                }
                Flow::Left => match self.switch_away(None)? {
                    Some(f) => f,
                    None => unreachable!("a task leaves only while its tracer is recorded"),
                },
                Flow::Parked(w) => match self.switch_away(Some(w))? {
                    Some(f) => f,
                    None => unreachable!("the parked task itself is there to switch to"),
                },
            }
        }
    }

    /// Whether the watchdog killed the tracee.
    pub(crate) fn was_timed_out(&self) -> bool {
        self.timed_out
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// After the watchdog's kill: close the event stream with the reason.
    pub(crate) fn timeout_abort(&mut self) -> Error {
        let event = self.writer.next_index();
        let err = Error::TimedOut {
            event,
            pid: self.task.pid.as_raw(),
            trace: self.writer.dir().to_path_buf(),
        };
        if let Err(e) = self.append(Event::Aborted {
            reason: err.to_string(),
        }) {
            return e;
        }
        err
    }

    pub(crate) fn on_stop(&mut self, s: Stopped, stop: Stop) -> Result<Flow> {
        // The calls made without a stop since the last one come first, whatever this is.
        if self.buffered && !matches!(stop, Stop::Exec) {
            if let Err(r) = self.drain_buffer(&s)? {
                let rip = self.t(s.regs())?.rip();
                return self.abort(s, r.what, r.why, rip);
            }
        }
        match stop {
            Stop::Seccomp => self.on_syscall(s),
            Stop::Signal(tracee::Signal::SIGSTOP) if self.is_our_stop(&s)? => self.on_our_stop(s),
            Stop::Signal(tracee::Signal::SIGTRAP) if self.is_probe_hit(&s)? => self.on_probe_hit(s),
            Stop::Signal(sig) => self.on_signal(s, sig).map(Flow::Running),
            Stop::Exec => self.on_exec(s),
            Stop::NewTask => {
                // Every task-creating call is traced and run by `run_call`, which sees
                // this stop; one here came from a call the table let run unseen.
                let rip = self.t(s.regs())?.rip();
                self.abort(
                    s,
                    "a new thread or process".into(),
                    "created by a call the recorder did not trace".into(),
                    rip,
                )
            }
            Stop::Syscall => {
                let pid = s.pid().as_raw();
                let _ = s.kill();
                Err(Error::Tracee {
                    event: self.writer.next_index(),
                    source: tracee::Error::Unexpected {
                        pid,
                        op: "record",
                        what: "syscall stop outside a syscall".into(),
                    },
                })
            }
            Stop::OtherEvent(_) => self.t(s.resume(Resume::Cont(None))).map(Flow::Running),
        }
    }

    /// Logs why recording stops, kills the tracee and returns the error.
    pub(crate) fn abort(
        &mut self,
        s: Stopped,
        what: String,
        why: String,
        rip: u64,
    ) -> Result<Flow> {
        Err(self.abort_error(s, what, why, rip))
    }

    /// As `abort`, returning the error to raise.
    pub(crate) fn abort_error(&mut self, s: Stopped, what: String, why: String, rip: u64) -> Error {
        let event = self.writer.next_index();
        let err = Error::Unsupported {
            what,
            why,
            rip,
            event,
            pid: self.task.pid.as_raw(),
            trace: self.writer.dir().to_path_buf(),
        };
        let _ = s.kill();
        if let Err(e) = self.append(Event::Aborted {
            reason: err.to_string(),
        }) {
            return e;
        }
        err
    }

    /// Waits for the next stop. While a signal is held for placement, polls, and after
    /// `signals::HOLD_LIMIT` (or at the next probe, or the deadline) stops the tracee with
    /// SIGSTOP so the signal can be placed where it is (`Placement::Registers`).
    fn wait(&mut self, running: Running) -> Result<Waited> {
        let deadline = match self.task.sig.held_since() {
            Some(since) if !self.task.sig.stop_sent => Some(self.task.sig.next_stop(since)),
            _ => None,
        };
        if deadline.is_none() && self.wants_alarm() {
            return self.wait_with_alarm(running);
        }
        match self.wait_running(running, deadline, false)? {
            Ok(w) => Ok(w),
            Err(r) => {
                self.t(r.signal(tracee::Signal::SIGSTOP))?;
                self.task.sig.stop_sent = true;
                match self.wait_running(r, None, false)? {
                    Ok(w) => Ok(w),
                    Err(_) => unreachable!("a wait without a deadline returns a report"),
                }
            }
        }
    }

    /// Closes the trace after a failure: what was appended stays readable.
    pub(crate) fn flush(&mut self) {
        let _ = self.writer.flush_chunk();
    }
}

/// Registers in the trace's representation (the one conversion, through the kernel's
/// word order, shared with the replayer).
pub(crate) fn gprs(r: &Regs) -> trace::Gprs {
    trace::Gprs::from_user_regs(r.to_array())
}
