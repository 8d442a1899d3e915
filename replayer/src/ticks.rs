//! The execution-point ABI, replayer side (see `guest::ticks` and
//! kernel/EXEC_POINTS.md): the addresses of REWIND_TICKS and REWIND_TICK_TARGET, and the
//! tick trap. The engine writes the target before each resume: the tick of the next
//! `Placement::Tick` signal, the mark a seek is going to, or, while single-stepping, the
//! next tick, so that every preemption point a step passes is a mark.

use trace::{Event, Placement};
use tracee::{Addr, Stopped};

use crate::error::Result;
use crate::session::{gprs, regs_diff, same_regs, Engine, Goal, Reached};

pub use guest::ticks::NEVER;

/// The two symbols in the live tracee.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TickAddrs {
    pub ticks: Addr<u64>,
    pub target: Addr<u64>,
}

impl Engine {
    /// The `int3` at the armed preemption point, REWIND_TICKS == `ticks`.
    pub(crate) fn on_tick_trap(
        &mut self,
        s: Stopped,
        ev: &Event,
        goal: Goal,
        ticks: u64,
    ) -> Result<Option<Reached>> {
        self.at_tick_mark(s, ticks);
        let placed_here = match ev {
            Event::Signal(sig) if sig.placement == (Placement::Tick { ticks }) => Some(sig),
            _ => None,
        };
        if let Some(sig) = placed_here {
            let regs = self.t(self.live()?.regs())?;
            if !same_regs(&sig.regs, &gprs(&regs)) {
                return Err(self.diverged(
                    format!(
                        "signal {} at tick {ticks} with the recorded registers",
                        sig.signo
                    ),
                    format!("registers differ: {}", regs_diff(&sig.regs, &gprs(&regs))),
                ));
            }
            self.hold_at_event_stop();
        }
        match goal {
            // Seeking to this mark, or a step that reached it: stop before applying.
            Goal::Tick(k) if k == ticks => Ok(Some(Reached::Goal)),
            Goal::Step => Ok(Some(Reached::Goal)),
            // The signal placed here (applied by the run's next turn), or a mark nobody
            // asked for (a stale target): carry on.
            _ => Ok(None),
        }
    }
}
