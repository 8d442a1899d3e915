//! Time, replayer side: trapped `rdtsc`/`rdtscp` get their recorded values (mirror of
//! `recorder::time`), and `--pace` replays at the recorded pace.
//!
//! Pacing: the trace has no timestamps per event, so the guest's own view of time is
//! followed: each `SIGALRM` from an interval timer advances it by the interval the guest
//! set (`setitimer` arguments), each completed `nanosleep`/`clock_nanosleep` by the
//! requested time, and clock readings (`clock_gettime`, `gettimeofday`) move it to the
//! elapsed recorded time. Before applying an event the replayer sleeps until the wall
//! clock has caught up with that guest time.

use std::time::{Duration, Instant};

use trace::{Event, RemoteAddr, SyscallEvent};
use tracee::cpu::TscInsn;
use tracee::{Regs, Stopped};

use crate::error::Result;
use crate::session::{Engine, Kind};

impl Engine {
    /// A trapped `rdtsc`/`rdtscp`: check it is the recorded one and write its value.
    pub(crate) fn on_rdtsc(
        &mut self,
        s: Stopped,
        mut regs: Regs,
        insn: TscInsn,
        ev: &Event,
    ) -> Result<()> {
        let Event::Rdtsc(r) = ev else {
            let rip = regs.rip();
            return Err(self.diverged(crate::describe(ev), format!("an rdtsc at rip {rip:#x}")));
        };
        if r.rip != RemoteAddr(regs.rip()) {
            return Err(self.diverged(
                format!("rdtsc at rip {}", r.rip),
                format!("rdtsc at rip {:#x}", regs.rip()),
            ));
        }
        regs.set_rax(r.value & 0xffff_ffff);
        regs.set_rdx(r.value >> 32);
        let len = match insn {
            TscInsn::Rdtsc => 2,
            TscInsn::Rdtscp => {
                regs.set_rcx(u64::from(r.aux.unwrap_or(0)));
                3
            }
        };
        regs.set_rip(regs.rip() + len);
        self.t(s.set_regs(&regs))?;
        self.applied();
        self.at_boundary(s, Kind::SignalDelivery);
        Ok(())
    }
}

/// Sleeps so that output appears at the recorded pace.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    /// Guest time reached so far.
    guest: Duration,
    /// ITIMER_REAL interval the guest set.
    interval: Duration,
    /// The first clock reading (ns) and the guest time at it.
    clock_origin: Option<(u64, Duration)>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            start: Instant::now(),
            guest: Duration::ZERO,
            interval: Duration::ZERO,
            clock_origin: None,
        }
    }
}

fn timespec(b: &[u8]) -> Option<u64> {
    let sec = i64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    let nsec = i64::from_le_bytes(b.get(8..16)?.try_into().ok()?);
    u64::try_from(sec)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(nsec).ok()?)
}

impl Pacer {
    /// Accounts for the syscall about to be applied and sleeps if the replay is ahead.
    pub fn syscall(&mut self, s: &SyscallEvent, inline: Option<&[u8]>) {
        let nr = s.nr as i64;
        if nr == libc::SYS_setitimer && s.args[0] == 0 {
            // The new value's it_interval is in the tracee; its remaining time went back
            // in `writes` only for the old value, so use the recorded timer signal rate
            // from the new value when it is readable: callers pass it inline.
            if let Some(b) = inline {
                if let Some(ns) = timespec_us(b) {
                    self.interval = Duration::from_nanos(ns);
                }
            }
        }
        if (nr == libc::SYS_nanosleep || nr == libc::SYS_clock_nanosleep) && s.ret == 0 {
            if let Some(b) = inline {
                if let Some(ns) = timespec(b) {
                    self.guest += Duration::from_nanos(ns);
                }
            }
        }
        if nr == libc::SYS_clock_gettime && s.ret == 0 {
            if let Some(trace::Data::Inline(b)) = s.writes.first().map(|w| &w.data) {
                if let Some(ns) = timespec(b) {
                    match self.clock_origin {
                        None => self.clock_origin = Some((ns, self.guest)),
                        Some((o, g)) => {
                            let t = g + Duration::from_nanos(ns.saturating_sub(o));
                            self.guest = self.guest.max(t);
                        }
                    }
                }
            }
        }
        self.wait();
    }

    /// A timer signal was delivered.
    pub fn timer_signal(&mut self) {
        self.guest += self.interval;
        self.wait();
    }

    fn wait(&self) {
        let now = self.start.elapsed();
        if self.guest > now {
            std::thread::sleep(self.guest - now);
        }
    }
}

/// A `struct timeval` it_interval (first 16 bytes of an itimerval) in ns.
fn timespec_us(b: &[u8]) -> Option<u64> {
    let sec = i64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    let usec = i64::from_le_bytes(b.get(8..16)?.try_into().ok()?);
    u64::try_from(sec)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(usec).ok()? * 1000)
}
