//! Preemption inside user code. One task runs at a time, and it normally gives the CPU
//! up at a system call (where it blocks, or where its time slice ends). A task that runs
//! on without a call while another task could run is stopped by an alarm (`Alarm`, a
//! thread that sends it SIGSTOP after `PREEMPT_AFTER`, so that the recording thread
//! keeps its blocking wait) and probed as a held signal is (`signals`): a breakpoint
//! where it stands, and when it comes back there, its registers and state digest. If
//! they repeat, it spins on something only another task can change (`while (!flag);`):
//! it is parked there, an `Event::Preempted` naming that state, which replay finds again
//! at its first visit (a repeated state has the same future). If the state changed, the
//! task computes: it keeps the CPU until its next call, probed again after twice the
//! wait each time (up to `PREEMPT_GAP_MAX`). Without hardware counters no other point
//! inside user code could be found again, so none is guessed.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trace::Event;
use tracee::{Pid, Regs, Resume, Stop, Stopped, Waited};

use crate::error::Result;
use crate::session::{gprs, Flow, Session};
use crate::tasks::{Ready, Waiting};

/// How long a task runs without a stop, another task being there, before it is probed.
pub const PREEMPT_AFTER: Duration = Duration::from_millis(20);
/// The longest wait between two probes of a task whose state keeps changing.
pub const PREEMPT_GAP_MAX: Duration = Duration::from_secs(2);

/// A task's preemption state, kept with it.
pub(crate) struct Preemption {
    /// The quiet time after which the alarm stops it.
    pub gap: Duration,
    /// The alarm went off: the next stop of ours is for a preemption probe.
    pub wanted: bool,
}

impl Default for Preemption {
    fn default() -> Preemption {
        Preemption {
            gap: PREEMPT_AFTER,
            wanted: false,
        }
    }
}

#[derive(Default)]
struct AlarmState {
    armed: Option<(Pid, Instant)>,
    fired: bool,
    quit: bool,
    /// When the thread wakes by itself (`None`: only when notified). It re-reads `armed`
    /// then, so an arming for a later time needs no notification: a recording thread
    /// that stops every few microseconds does not wake it each time.
    wakes_at: Option<Instant>,
}

/// The thread that stops the running task once it has run its quiet time.
pub(crate) struct Alarm {
    shared: Arc<(Mutex<AlarmState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Alarm {
    pub(crate) fn start() -> Alarm {
        let shared = Arc::new((Mutex::new(AlarmState::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*theirs;
            let Ok(mut st) = lock.lock() else { return };
            while !st.quit {
                let now = Instant::now();
                st = match st.armed {
                    None => {
                        st.wakes_at = None;
                        match cv.wait(st) {
                            Ok(g) => g,
                            Err(_) => return,
                        }
                    }
                    // Sent under the lock: once `disarm` returns, no signal of an earlier
                    // arming is on its way.
                    Some((pid, at)) if now >= at => {
                        tracee::task::send_stop(pid);
                        st.fired = true;
                        st.armed = None;
                        st
                    }
                    Some((_, at)) => {
                        st.wakes_at = Some(at);
                        match cv.wait_timeout(st, at - now) {
                            Ok((g, _)) => g,
                            Err(_) => return,
                        }
                    }
                };
            }
        });
        Alarm {
            shared,
            thread: Some(thread),
        }
    }

    /// Stops `pid` at `at` unless disarmed first.
    pub(crate) fn arm(&self, pid: Pid, at: Instant) {
        let (lock, cv) = &*self.shared;
        if let Ok(mut st) = lock.lock() {
            st.armed = Some((pid, at));
            st.fired = false;
            if st.wakes_at.is_none_or(|w| w > at) {
                cv.notify_one();
            }
        }
    }

    /// Disarms it; whether it had gone off (a SIGSTOP of ours is then on its way to the
    /// task, or has stopped it).
    pub(crate) fn disarm(&self) -> bool {
        let (lock, _) = &*self.shared;
        match lock.lock() {
            Ok(mut st) => {
                st.armed = None;
                std::mem::take(&mut st.fired)
            }
            Err(_) => false,
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        if let Ok(mut st) = lock.lock() {
            st.quit = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Session {
    /// Whether the running task, about to run user code, gets the alarm: other tasks are
    /// there, and no held signal has its own plan for the task. (A preemption's probe
    /// still waiting when the alarm goes off again was left behind: the task moved on.)
    pub(crate) fn wants_alarm(&self) -> bool {
        !self.tasks.is_empty()
            && !self.task.sig.has_held()
            && !self.task.sig.has_signal_probe()
            && !self.task.sig.stop_sent
    }

    /// Waits for the running task's next stop with the alarm armed for its quiet time.
    pub(crate) fn wait_with_alarm(&mut self, r: tracee::Running) -> Result<Waited> {
        let alarm = self.alarm.get_or_insert_with(Alarm::start);
        alarm.arm(r.pid(), Instant::now() + self.task.preempt.gap);
        let waited = self.wait_running(r, None, false);
        let fired = self.alarm.as_ref().is_some_and(Alarm::disarm);
        if fired {
            self.task.sig.stop_sent = true;
            self.task.preempt.wanted = true;
        }
        match waited? {
            Ok(w) => Ok(w),
            Err(_) => unreachable!("a wait without a deadline returns a report"),
        }
    }

    /// At our SIGSTOP, the alarm's: probe for a place to preempt the task, if another
    /// task can run now.
    pub(crate) fn preempt(&mut self, s: Stopped) -> Result<Flow> {
        self.note_pending_reports()?;
        if self.task.sig.has_preempt_probe() {
            // The task never came back to the last probe: it moved on, computing.
            self.clear_probe(&s)?;
            self.preempt_later();
        }
        if !self.tasks.any_ready() {
            return self.t(s.resume(Resume::Cont(None))).map(Flow::Running);
        }
        let regs = self.t(s.regs())?;
        self.set_probe(s, regs, true)
    }

    /// The probe of a preemption came back with the state it was set with: park the task
    /// there.
    pub(crate) fn preempt_at(&mut self, s: Stopped, regs: &Regs, digest: [u8; 32]) -> Result<Flow> {
        self.task.preempt = Preemption::default();
        self.append(Event::Preempted {
            regs: gprs(regs),
            state: trace::BlobHash(digest),
        })?;
        match self.switch_away(Some(Waiting::Ready(Ready::Stopped(s))))? {
            Some(flow) => Ok(flow),
            None => unreachable!("the preempted task itself is parked"),
        }
    }

    /// The probe of a preemption found the task computing: it keeps the CPU, and is
    /// probed again after twice the wait.
    pub(crate) fn preempt_later(&mut self) {
        self.task.preempt.gap = (self.task.preempt.gap * 2).min(PREEMPT_GAP_MAX);
    }

    /// A seccomp stop while a SIGSTOP of ours is still pending (the task entered the call
    /// just as the alarm, or a held signal's stop, went off): run, the call would be
    /// interrupted by it. The call is skipped, the SIGSTOP taken at its return, and the
    /// `syscall` instruction run again, so that the call is made with nothing pending
    /// and recorded at its next seccomp stop as if this one had not been.
    pub(crate) fn take_pending_stop(&mut self, s: Stopped) -> Result<Flow> {
        let regs = self.t(s.regs())?;
        let mut skip = regs;
        skip.set_orig_rax(u64::MAX);
        self.t(s.set_regs(&skip))?;
        let mut running = self.t(s.resume(Resume::Syscall(None)))?;
        loop {
            let (s, stop) = match self.t(running.wait())? {
                Waited::Exited(e) => return Ok(Flow::Exited(e)),
                Waited::Stopped(s, stop) => (s, stop),
            };
            match stop {
                Stop::Signal(tracee::Signal::SIGSTOP) if self.is_our_stop(&s)? => {
                    self.task.sig.stop_sent = false;
                    let mut again = regs;
                    again.set_rip(regs.rip().wrapping_sub(2));
                    again.set_rax(regs.syscall_nr());
                    self.t(s.set_regs(&again))?;
                    return self.t(s.resume(Resume::Cont(None))).map(Flow::Running);
                }
                // The skipped call's exit: the signal comes as it returns.
                Stop::Syscall => running = self.t(s.resume(Resume::Cont(None)))?,
                // Another asynchronous signal pending with ours: held as any is.
                Stop::Signal(sig) => running = self.on_signal(s, sig)?,
                other => {
                    let pid = s.pid().as_raw();
                    let _ = s.kill();
                    return Err(self.unexpected(pid, "taking a pending stop", other));
                }
            }
        }
    }
}
