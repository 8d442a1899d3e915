//! Signals, replayer side (mirror of `recorder::signals`): each recorded signal is
//! delivered at its placement with its recorded siginfo; real host signals are ignored.
//!
//! * `SyscallExit { event }` — from that call's exit stop: resume with the signal, and at
//!   its delivery stop set the siginfo and deliver (restart codes were put in place when
//!   the call's result was injected, so the kernel restarts or fails the call as it did).
//! * `SyscallEntry` — at the next syscall's seccomp stop: skip the call, rewind to the
//!   `syscall` instruction with rax = nr, and deliver; the call is re-issued later.
//! * `Tick { ticks }` — at the armed preemption point's trap (`ticks`).
//! * `Registers { state }` — where a temporary breakpoint at the recorded rip finds all
//!   registers equal and the tracee's state digest (FPU/vector registers, writable
//!   memory) equal to `state`.
//!
//! Delivery single-steps into the handler, so the boundary after a signal event is the
//! handler's first instruction (or the end, for a fatal signal).

use trace::{Event, Placement, SignalEvent};
use tracee::{Regs, Resume, SigInfo, Signal, Stop, Stopped, Waited};

use crate::error::Result;
use crate::session::{gprs, regs_diff, regs_from, same_regs, Engine, Kind};

fn siginfo_of(sig: &SignalEvent) -> SigInfo {
    let mut b = [0u8; tracee::siginfo::SIGINFO_LEN];
    let n = sig.siginfo.len().min(b.len());
    b[..n].copy_from_slice(&sig.siginfo[..n]);
    SigInfo(b)
}

impl Engine {
    /// Applies signal event `next` at the stop the tracee rests at (its placement).
    pub(crate) fn apply_signal_here(&mut self, s: Stopped, ev: &Event) -> Result<()> {
        let Event::Signal(sig) = ev else {
            self.put_live(s);
            return Err(self.diverged(crate::describe(ev), "a signal placement".into()));
        };
        let signal = Signal::try_from(sig.signo).map_err(|_| {
            self.diverged(
                format!("signal {}", sig.signo),
                "an unknown signal number".into(),
            )
        })?;
        let s = match self.stop_kind() {
            Kind::SyscallExit(_) => {
                // Queue it from the exit stop; the kernel stops again to deliver it.
                let running = self.t(s.resume(Resume::Cont(Some(signal))))?;
                self.wait_delivery(running, signal)?
            }
            Kind::SignalDelivery => s,
        };
        self.deliver(s, sig, signal)
    }

    fn wait_delivery(&mut self, mut running: tracee::Running, signal: Signal) -> Result<Stopped> {
        loop {
            match self.t(running.wait())? {
                Waited::Stopped(s, Stop::Signal(got)) if got == signal => return Ok(s),
                Waited::Stopped(s, Stop::Signal(_)) => {
                    // A host signal in between: not part of the recording.
                    running = self.t(s.resume(Resume::Cont(None)))?;
                }
                Waited::Stopped(s, other) => {
                    let _ = s.kill();
                    return Err(self.diverged(
                        format!("delivery of signal {}", signal as i32),
                        format!("{other:?}"),
                    ));
                }
                Waited::Exited(e) => {
                    return Err(self.diverged(
                        format!("delivery of signal {}", signal as i32),
                        format!("the tracee ended: {e:?}"),
                    ))
                }
            }
        }
    }

    /// At the delivery stop: check the registers, set the siginfo, step into the handler.
    fn deliver(&mut self, s: Stopped, sig: &SignalEvent, signal: Signal) -> Result<()> {
        let regs = self.t(s.regs())?;
        if !same_regs(&sig.regs, &gprs(&regs)) {
            let found = regs_diff(&sig.regs, &gprs(&regs));
            self.put_live(s);
            return Err(self.diverged(
                format!("signal {} delivered with the recorded registers", sig.signo),
                format!("registers differ: {found}"),
            ));
        }
        self.note_signal(sig.signo, gprs(&regs));
        // The trap is spent; a stale target must not fire again in the handler.
        self.disarm_ticks(&s)?;
        self.t(s.set_siginfo(&siginfo_of(sig)))?;
        if let Some(p) = self.pacer() {
            if sig.signo == libc::SIGALRM {
                p.timer_signal();
            }
        }
        self.applied();
        let running = self.t(s.resume(Resume::Step(Some(signal))))?;
        match self.t(running.wait())? {
            Waited::Exited(e) => {
                self.on_exit(e)?;
            }
            Waited::Stopped(s, Stop::Signal(_)) => {
                if let Some(why) = self.frames_differ().map(str::to_owned) {
                    let _ = s.kill();
                    return Err(self.other_frames(sig.signo, why));
                }
                self.at_boundary(s, Kind::SignalDelivery)
            }
            // A signal the program ignores (SIGCHLD by default) runs no handler: the step
            // went on to the `syscall` a `SyscallEntry` placement cancelled, or that the
            // kernel restarts after a call it interrupted (a restart code at its exit),
            // re-issued as the next event is.
            Waited::Stopped(s, Stop::Seccomp) if self.reissues_call(sig) => {
                self.clear_stepped_trap_flag(&s)?;
                match self.event(self.next_event()).cloned() {
                    Some(next) => return self.on_seccomp(s, &next),
                    None => {
                        let _ = s.kill();
                        return Err(self.diverged(
                            "the end of the recording".into(),
                            "the cancelled call re-issued".into(),
                        ));
                    }
                }
            }
            Waited::Stopped(s, other) => {
                let _ = s.kill();
                return Err(self.diverged(
                    format!("the handler of signal {}", sig.signo),
                    format!("{other:?}"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the call the signal was placed at is made again once it is delivered: the
    /// one a `SyscallEntry` placement cancelled, or one its `SyscallExit` placement
    /// interrupted with a restart code.
    fn reissues_call(&self, sig: &SignalEvent) -> bool {
        match sig.placement {
            Placement::SyscallEntry => true,
            Placement::SyscallExit { event } => matches!(
                self.event(event),
                Some(Event::Syscall(sc)) if crate::syscalls::is_restart(sc.ret)
            ),
            Placement::Tick { .. } | Placement::Registers { .. } => false,
        }
    }

    /// `Placement::SyscallEntry`: at the seccomp stop of the call the signal preempted.
    pub(crate) fn signal_at_entry(
        &mut self,
        s: Stopped,
        regs: Regs,
        sig: &SignalEvent,
    ) -> Result<()> {
        if regs.syscall_nr() != sig.regs.rax || regs.rip().wrapping_sub(2) != sig.regs.rip {
            let found =
                crate::syscalls::describe_call(regs.syscall_nr(), &regs.syscall_args(), regs.rip());
            self.put_live(s);
            return Err(self.diverged(
                format!(
                    "signal {} in place of syscall {} at {:#x}",
                    sig.signo, sig.regs.rax, sig.regs.rip
                ),
                found,
            ));
        }
        let signal = Signal::try_from(sig.signo).map_err(|_| {
            self.diverged(
                format!("signal {}", sig.signo),
                "an unknown signal number".into(),
            )
        })?;
        let mut skip = regs;
        skip.set_orig_rax(u64::MAX);
        self.t(s.set_regs(&skip))?;
        let s = self.run_to_exit_stop(s)?;
        let mut back = regs_from(&sig.regs);
        back.set_orig_rax(u64::MAX);
        self.t(s.set_regs(&back))?;
        let running = self.t(s.resume(Resume::Cont(Some(signal))))?;
        let s = self.wait_delivery(running, signal)?;
        debug_assert!(sig.placement == Placement::SyscallEntry);
        self.deliver(s, sig, signal)
    }
}
