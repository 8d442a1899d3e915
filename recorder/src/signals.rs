//! Signals as a source of nondeterminism, and where the recorder places them.
//!
//! At a signal-delivery stop the recorder sorts the signal:
//!
//! * a synchronous fault (SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP raised by an instruction)
//!   is delivered unrecorded: it recurs by itself at replay, which checks it;
//! * SIGSEGV from a trapped `rdtsc`/`cpuid` is emulated (`time`, `cpuid`);
//! * an asynchronous signal whose stop comes straight after a recorded syscall's exit
//!   stop, with the registers unchanged (no user instruction ran), is delivered at once:
//!   `Placement::SyscallExit`, with that call's result (EINTR, partial, restart code);
//! * any other asynchronous signal is held (suppressed) and placed at the first of:
//!   - umk's next preemption point, via the execution-point ABI (`Placement::Tick`);
//!   - the next recorded syscall, which is cancelled, the signal delivered with rip at
//!     the `syscall` instruction, and the call re-issued after the handler
//!     (`Placement::SyscallEntry`);
//!   - after `HOLD_LIMIT` without either, a SIGSTOP from the recorder and a probe: a
//!     breakpoint where the tracee stands, and when it comes back there, a comparison of
//!     its registers and state digest (FPU state, mask, writable memory). If the state
//!     repeats, the tracee is in a loop that changes nothing until a signal does (`while
//!     (!flag);`): the signal is delivered there (`Placement::Registers`), and since a
//!     repeated state has the same future, replay may deliver at the first visit with
//!     that state, found at once. If the state changed, the loop does work whose passes
//!     only a branch counter could tell apart at replay: the signal stays held for the
//!     next system call or preemption point, with a new probe every `PROBE_GAP`; after
//!     `HOLD_DEADLINE` without a place, the recording stops with a message rather than
//!     place it where replay could not find it again.
//!
//! Under `--chaos` (see `chaos`) the tick target of a held signal lies a seeded number of
//! points ahead, and while nothing is held a chaos tick is armed at which the recorder
//! delivers a synthetic SIGALRM, recorded as an ordinary `Placement::Tick` event.
//!
//! Held signals are queued and placed one at a time, in arrival order. A signal injected
//! at a syscall stop is re-queued by the kernel with a generic siginfo; at its delivery
//! stop the recorder puts back the original siginfo (PTRACE_SETSIGINFO).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use trace::{Event, Placement, SignalEvent};
use tracee::siginfo::code;
use tracee::{Addr, Regs, Resume, Running, SigInfo, Signal, Stop, Stopped, Waited};

use crate::error::Result;
use crate::session::{gprs, Flow, Session};
use guest::ticks::NEVER;

/// How long a held signal waits for a preemption point or a syscall before the recorder
/// stops the tracee to probe for a place by registers.
pub const HOLD_LIMIT: Duration = Duration::from_millis(1);
/// After a probe found the state changing, the wait before the next one.
pub const PROBE_GAP: Duration = Duration::from_millis(50);
/// How many times a probe's step is tried again when a held signal is raised anew first.
const MAX_STEP_RETRIES: u32 = 16;
/// How long a signal may stay held before the recording stops.
pub const HOLD_DEADLINE: Duration = Duration::from_secs(2);

/// A breakpoint where the tracee stood when a held signal found no place, and its state
/// there: if the tracee comes back to the same state, the signal is delivered there.
struct Probe {
    rip: u64,
    orig: u8,
    regs: Regs,
    digest: [u8; 32],
    /// Set for a preemption (`preempt`), not for a held signal.
    preempt: bool,
}

/// Signals waiting for placement and the bookkeeping around them.
#[derive(Default)]
pub(crate) struct SignalState {
    held: VecDeque<SigInfo>,
    since: Option<Instant>,
    /// The tick target written into the tracee, if any.
    armed: Option<u64>,
    /// `armed` is a chaos tick (a synthetic interrupt), not the place of a held signal.
    chaos_armed: bool,
    /// A signal re-queued by a syscall-stop injection, awaiting its delivery stop.
    injecting: Option<SigInfo>,
    /// A SIGSTOP of ours is on its way.
    pub stop_sent: bool,
    probe: Option<Probe>,
    /// No new probe before this, after one found the state changing.
    next_probe: Option<Instant>,
    /// The rip (after its `syscall`) of the call last cancelled to deliver a signal: when
    /// the handler returns and the call is issued again it runs, another signal held
    /// meanwhile waits for a later place. A signal that comes faster than a handler runs
    /// under the recorder (a 1 ms timer, each handler several ptrace stops) would
    /// otherwise cancel the same call forever.
    reissued: Option<u64>,
}

impl SignalState {
    /// Whether the call at `rip` is the re-issue of one a signal was delivered before
    /// (taken once).
    pub fn is_reissue(&mut self, rip: u64) -> bool {
        let again = self.reissued == Some(rip);
        if again {
            self.reissued = None;
        }
        again
    }

    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether a probe for a held signal is set (a preemption's does not count).
    pub fn has_signal_probe(&self) -> bool {
        self.probe.as_ref().is_some_and(|p| !p.preempt)
    }

    /// Whether a probe for a preemption is set.
    pub fn has_preempt_probe(&self) -> bool {
        self.probe.as_ref().is_some_and(|p| p.preempt)
    }

    pub fn held_since(&self) -> Option<Instant> {
        self.since.filter(|_| self.has_held())
    }

    /// When the recorder stops the tracee for a held signal that arrived at `since`: to
    /// probe, after `HOLD_LIMIT` or at the next probe time; with a probe in flight, at
    /// the deadline only.
    pub fn next_stop(&self, since: Instant) -> Instant {
        let deadline = since + HOLD_DEADLINE;
        if self.probe.is_some() {
            return deadline;
        }
        let first = since + HOLD_LIMIT;
        self.next_probe
            .map_or(first, |t| t.max(first))
            .min(deadline)
    }
}

/// A SIGALRM siginfo from no sender: `si_code` `trace::chaos::SYNTHETIC_SI_CODE`, pid 0.
fn synthetic_alarm() -> SigInfo {
    let mut raw = [0u8; tracee::siginfo::SIGINFO_LEN];
    raw[0..4].copy_from_slice(&(Signal::SIGALRM as i32).to_le_bytes());
    raw[8..12].copy_from_slice(&trace::chaos::SYNTHETIC_SI_CODE.to_le_bytes());
    SigInfo(raw)
}

fn signal_of(info: &SigInfo) -> Option<Signal> {
    Signal::try_from(info.signo()).ok()
}

impl Session {
    pub(crate) fn on_signal(&mut self, s: Stopped, sig: Signal) -> Result<Running> {
        let info = self.t(s.siginfo())?;
        let last_exit = self.task.last_exit.take();

        if let Some(inj) = self.task.sig.injecting {
            if inj.signo() == sig as i32 {
                self.task.sig.injecting = None;
                self.t(s.set_siginfo(&inj))?;
                return self.t(s.resume(Resume::Cont(Some(sig))));
            }
        }
        if sig == Signal::SIGTRAP && info.code() == code::SI_KERNEL {
            if let (Some(target), Some(t)) = (self.task.sig.armed, self.task.ticks) {
                let ticks = self.t(s.read_u64(t.ticks))?;
                if ticks == target {
                    return self.on_tick(s, ticks);
                }
            }
        }
        if sig == Signal::SIGSEGV && info.code() == code::SI_KERNEL {
            let regs = self.t(s.regs())?;
            let mut insn = [0u8; 3];
            let got = self.t(s.read_partial(Addr::new(regs.rip()), &mut insn))?;
            if self.tsc_trapped {
                if let Some(i) = tracee::cpu::decode_tsc(&insn[..got]) {
                    return self.on_rdtsc(s, regs, i);
                }
            }
            if self.cpuid_faulting && insn[..got].starts_with(&[0x0f, 0xa2]) {
                return self.on_cpuid(s, regs);
            }
        }
        if info.is_synchronous_fault() {
            return self.t(s.resume(Resume::Cont(Some(sig))));
        }
        // Asynchronous.
        if let Some((exit_regs, event)) = last_exit {
            let regs = self.t(s.regs())?;
            if regs.same_user_state(&exit_regs) {
                let ticks = self.read_ticks(&s)?;
                self.append(Event::Signal(SignalEvent {
                    signo: sig as i32,
                    siginfo: info.0.to_vec(),
                    placement: Placement::SyscallExit { event },
                    ticks,
                    regs: gprs(&regs),
                }))?;
                return self.t(s.resume(Resume::Cont(Some(sig))));
            }
        }
        // A standard signal that is already held is pending, and the kernel keeps one
        // instance of a pending standard signal: so does the recorder.
        if !self.task.sig.held.iter().any(|h| h.signo() == info.signo()) {
            self.task.sig.held.push_back(info);
        }
        if self.task.sig.held.len() == 1 && self.task.sig.since.is_none() {
            self.task.sig.since = Some(Instant::now());
            self.arm(&s)?;
        }
        self.t(s.resume(Resume::Cont(None)))
    }

    /// Sets the tick target to the next preemption point (under chaos, a seeded number of
    /// points later), if the guest has the ABI.
    fn arm(&mut self, s: &Stopped) -> Result<()> {
        if let Some(t) = self.task.ticks {
            let now = self.t(s.read_u64(t.ticks))?;
            let delay = self.chaos.as_mut().map_or(1, |c| c.delay());
            let target = now.wrapping_add(delay);
            self.t(s.write_u64(t.target, target))?;
            self.task.sig.armed = Some(target);
            self.task.sig.chaos_armed = false;
        }
        Ok(())
    }

    /// Under chaos, with nothing held or armed: aim a synthetic timer interrupt at a
    /// seeded tick ahead. The tracee must be stopped, which it is at every stop anyway.
    pub(crate) fn arm_chaos_tick(&mut self, s: &Stopped) -> Result<()> {
        if self.task.sig.armed.is_some() || self.task.sig.has_held() {
            return Ok(());
        }
        let (Some(t), Some(gap)) = (self.task.ticks, self.chaos.as_mut().and_then(|c| c.gap()))
        else {
            return Ok(());
        };
        let now = self.t(s.read_u64(t.ticks))?;
        let target = now.wrapping_add(gap);
        self.t(s.write_u64(t.target, target))?;
        self.task.sig.armed = Some(target);
        self.task.sig.chaos_armed = true;
        Ok(())
    }

    /// After placing one held signal: aim at the next one, or disarm.
    fn rearm(&mut self, s: &Stopped) -> Result<()> {
        self.task.sig.next_probe = None;
        if self.task.sig.has_held() {
            self.task.sig.since = Some(Instant::now());
            self.arm(s)
        } else {
            self.task.sig.since = None;
            if let (Some(_), Some(t)) = (self.task.sig.armed.take(), self.task.ticks) {
                self.t(s.write_u64(t.target, NEVER))?;
            }
            self.task.sig.chaos_armed = false;
            self.arm_chaos_tick(s)
        }
    }

    /// The oldest held signal. (Real-time signals cannot be held: ptrace resumption here
    /// takes only the standard signals, so they never reach the queue.)
    fn take_held(&mut self) -> Option<(SigInfo, Signal)> {
        while let Some(info) = self.task.sig.held.pop_front() {
            if let Some(sig) = signal_of(&info) {
                return Some((info, sig));
            }
        }
        None
    }

    /// The `int3` at the armed preemption point: deliver the first held signal here.
    fn on_tick(&mut self, s: Stopped, ticks: u64) -> Result<Running> {
        self.task.sig.armed = None;
        self.clear_probe(&s)?;
        if !self.task.sig.has_held() && std::mem::take(&mut self.task.sig.chaos_armed) {
            return self.on_chaos_tick(s, ticks);
        }
        let Some((info, sig)) = self.take_held() else {
            // Held signal already placed elsewhere; the trap is ours, swallow it.
            self.rearm(&s)?;
            return self.t(s.resume(Resume::Cont(None)));
        };
        self.deliver_at_tick(s, info, sig, ticks)
    }

    /// A chaos tick with no signal held: deliver a timer interrupt the host never sent,
    /// recorded like any tick-placed signal (its siginfo marks it, see
    /// `trace::chaos::is_synthetic`).
    fn on_chaos_tick(&mut self, s: Stopped, ticks: u64) -> Result<Running> {
        self.deliver_at_tick(s, synthetic_alarm(), Signal::SIGALRM, ticks)
    }

    /// Records `sig` as placed at tick `ticks`, aims at the next placement, and delivers
    /// it here with its siginfo.
    fn deliver_at_tick(
        &mut self,
        s: Stopped,
        info: SigInfo,
        sig: Signal,
        ticks: u64,
    ) -> Result<Running> {
        let regs = self.t(s.regs())?;
        self.append(Event::Signal(SignalEvent {
            signo: sig as i32,
            siginfo: info.0.to_vec(),
            placement: Placement::Tick { ticks },
            ticks,
            regs: gprs(&regs),
        }))?;
        self.rearm(&s)?;
        self.t(s.set_siginfo(&info))?;
        self.t(s.resume(Resume::Cont(Some(sig))))
    }

    /// Whether the program blocks the first held signal now (it blocked it after the
    /// signal arrived, as a fork does around its clone): the kernel would only mark it
    /// pending, so it stays held, to be placed at a later call, where it is unblocked.
    pub(crate) fn held_is_blocked(&self, s: &Stopped) -> tracee::Result<bool> {
        let Some(signo) = self.task.sig.held.front().map(SigInfo::signo) else {
            return Ok(false);
        };
        let Some(bit) = u32::try_from(signo).ok().and_then(|n| n.checked_sub(1)) else {
            return Ok(false);
        };
        Ok(bit < 64 && s.signal_mask()? & (1u64 << bit) != 0)
    }

    /// At the seccomp stop of a recorded syscall with a signal held: cancel the call,
    /// rewind to its `syscall` instruction and deliver the signal there.
    pub(crate) fn place_before_syscall(&mut self, s: Stopped, regs: Regs) -> Result<Flow> {
        self.clear_probe(&s)?;
        let s = match self.t(s.skip_syscall(&regs, "cancelling a syscall"))? {
            Ok(s) => s,
            Err(e) => return Ok(Flow::Exited(e)),
        };
        let mut back = regs;
        back.set_rip(back.rip() - 2);
        back.set_rax(regs.syscall_nr());
        back.set_orig_rax(u64::MAX);
        self.t(s.set_regs(&back))?;
        let Some((info, sig)) = self.take_held() else {
            return self.t(s.resume(Resume::Cont(None))).map(Flow::Running);
        };
        let ticks = self.read_ticks(&s)?;
        self.append(Event::Signal(SignalEvent {
            signo: sig as i32,
            siginfo: info.0.to_vec(),
            placement: Placement::SyscallEntry,
            ticks,
            regs: gprs(&back),
        }))?;
        self.rearm(&s)?;
        self.task.sig.injecting = Some(info);
        self.task.sig.reissued = Some(regs.rip());
        self.t(s.resume(Resume::Cont(Some(sig)))).map(Flow::Running)
    }

    /// Whether a SIGSTOP stop is the one the recorder sent (see `Session::wait`).
    pub(crate) fn is_our_stop(&self, s: &Stopped) -> Result<bool> {
        if !self.task.sig.stop_sent {
            return Ok(false);
        }
        let info = self.t(s.siginfo())?;
        Ok(info.code() == code::SI_TKILL && info.pid() == std::process::id() as i32)
    }

    /// At our own SIGSTOP: with a signal held, give up after `HOLD_DEADLINE`, or step
    /// one instruction and set a probe where the tracee stood, to see whether it comes
    /// back to the same state.
    pub(crate) fn on_our_stop(&mut self, s: Stopped) -> Result<Flow> {
        self.task.sig.stop_sent = false;
        let preempt = std::mem::take(&mut self.task.preempt.wanted);
        if self.task.sig.has_held() {
            return self.place_by_registers(s);
        }
        if preempt {
            return self.preempt(s);
        }
        self.t(s.resume(Resume::Cont(None))).map(Flow::Running)
    }

    fn place_by_registers(&mut self, s: Stopped) -> Result<Flow> {
        let regs = self.t(s.regs())?;
        let held_for = self.task.sig.since.map_or(Duration::ZERO, |t| t.elapsed());
        if held_for >= HOLD_DEADLINE {
            self.clear_probe(&s)?;
            let name = self
                .task
                .sig
                .held
                .front()
                .and_then(signal_of)
                .map_or_else(|| "a signal".to_string(), |g| g.as_str().to_string());
            let at_tick = match self.task.ticks {
                Some(t) => format!(
                    " (REWIND_TICKS {}, target {})",
                    self.t(s.read_u64(t.ticks))?,
                    self.t(s.read_u64(t.target))?
                ),
                None => String::new(),
            };
            return Err(self.abort_error(
                s,
                format!("{name} held for {} ms{at_tick}", held_for.as_millis()),
                "the program ran on without a system call or preemption point, in code \
                 whose state changes from one pass to the next: without hardware counters \
                 the signal cannot be placed where a replay would find it again (a system \
                 call in the loop, or the execution-point ABI of kernel/EXEC_POINTS.md, \
                 gives it a place)"
                    .into(),
                regs.rip(),
            ));
        }
        if self.task.sig.probe.is_some() {
            return self.t(s.resume(Resume::Cont(None))).map(Flow::Running);
        }
        if self.task.ticks.is_some() && self.task.sig.armed.is_some() {
            // A guest with execution points places the signal at its next point: aim
            // there again from where it stands, should the target have been passed.
            self.arm(&s)?;
            self.task.sig.next_probe = Some(Instant::now() + PROBE_GAP);
            return self.t(s.resume(Resume::Cont(None))).map(Flow::Running);
        }
        self.set_probe(s, regs, false)
    }

    /// Sets a probe where the tracee stands (`regs`), for a held signal or for a
    /// preemption (`preempt`), and resumes it.
    pub(crate) fn set_probe(&mut self, s: Stopped, regs: Regs, preempt: bool) -> Result<Flow> {
        let digest = self.t(s.state_digest())?;
        // Off the instruction first, so the breakpoint marks the next visit. A held
        // signal that the kernel raises again (a fast timer) comes before the step does:
        // it is pending already, so it is suppressed and the step tried again.
        let mut s = s;
        let mut again = 0;
        let (s, stop) = loop {
            let (next, stop) = match self.t(self.t(s.resume(Resume::Step(None)))?.wait())? {
                Waited::Exited(e) => return Ok(Flow::Exited(e)),
                Waited::Stopped(next, stop) => (next, stop),
            };
            match stop {
                Stop::Signal(sig)
                    if again < MAX_STEP_RETRIES && self.is_held_again(&next, sig)? =>
                {
                    again += 1;
                    s = next;
                }
                _ => break (next, stop),
            }
        };
        if stop != Stop::Signal(Signal::SIGTRAP) {
            // A system call or a fault came first: handled as any stop, the signal still
            // held (placed before that call, if it is one).
            return self.on_stop(s, stop);
        }
        let at = Addr::new(regs.rip());
        let mut orig = [0u8; 1];
        self.t(s.read_exact(at, &mut orig))?;
        self.t(s.poke_bytes(at, &[0xcc]))?;
        self.task.sig.probe = Some(Probe {
            rip: regs.rip(),
            orig: orig[0],
            regs,
            digest,
            preempt,
        });
        self.t(s.resume(Resume::Cont(None))).map(Flow::Running)
    }

    /// Whether the signal-delivery stop of `sig` is a new instance of an asynchronous
    /// signal the recorder holds (a standard signal is pending once: nothing is lost).
    fn is_held_again(&self, s: &Stopped, sig: Signal) -> Result<bool> {
        if sig == Signal::SIGTRAP || !self.task.sig.held.iter().any(|h| h.signo() == sig as i32) {
            return Ok(false);
        }
        let info = self.t(s.siginfo())?;
        Ok(!info.is_synchronous_fault() && (sig as i32) < libc::SIGRTMIN())
    }

    /// Takes out the probe's breakpoint, if one is set.
    pub(crate) fn clear_probe(&mut self, s: &Stopped) -> Result<()> {
        if let Some(p) = self.task.sig.probe.take() {
            self.t(s.poke_bytes(Addr::new(p.rip), &[p.orig]))?;
        }
        Ok(())
    }

    /// Whether a SIGTRAP stop is the tracee coming back to the probe's breakpoint.
    pub(crate) fn is_probe_hit(&self, s: &Stopped) -> Result<bool> {
        let Some(at) = self.task.sig.probe.as_ref().map(|p| p.rip) else {
            return Ok(false);
        };
        let info = self.t(s.siginfo())?;
        Ok(info.code() == code::SI_KERNEL && self.t(s.regs())?.rip().wrapping_sub(1) == at)
    }

    /// The tracee came back to the probe: deliver there (or, for a preemption, park it
    /// there) if its state repeated, else keep holding and probe again later.
    pub(crate) fn on_probe_hit(&mut self, s: Stopped) -> Result<Flow> {
        let resume = |me: &Self, s: Stopped| me.t(s.resume(Resume::Cont(None))).map(Flow::Running);
        let Some(probe) = self.task.sig.probe.take() else {
            return resume(self, s);
        };
        self.t(s.poke_bytes(Addr::new(probe.rip), &[probe.orig]))?;
        let mut regs = self.t(s.regs())?;
        regs.set_rip(probe.rip);
        self.t(s.set_regs(&regs))?;
        let repeated =
            regs.same_user_state(&probe.regs) && self.t(s.state_digest())? == probe.digest;
        if !repeated {
            if probe.preempt {
                self.preempt_later();
            } else {
                self.task.sig.next_probe = Some(Instant::now() + PROBE_GAP);
            }
            return resume(self, s);
        }
        if probe.preempt && !self.task.sig.has_held() {
            return self.preempt_at(s, &regs, probe.digest);
        }
        let Some((info, sig)) = self.take_held() else {
            return resume(self, s);
        };
        let ticks = self.read_ticks(&s)?;
        let state = trace::BlobHash(probe.digest);
        self.append(Event::Signal(SignalEvent {
            signo: sig as i32,
            siginfo: info.0.to_vec(),
            placement: Placement::Registers { state },
            ticks,
            regs: gprs(&regs),
        }))?;
        self.rearm(&s)?;
        self.t(s.set_siginfo(&info))?;
        self.t(s.resume(Resume::Cont(Some(sig)))).map(Flow::Running)
    }
}
