//! Positions of probe hits without re-execution.

use replayer::{Position, Timeline};

/// Positions of hits without re-execution: the latest mark at or before the stop (the
/// boundary `eN`, or the preemption point `eN+tK` when the guest's tick counter moved
/// past the boundary's). Replay and gdb accept it; running forward from it to the probe
/// reaches the hit. Exact `+sJ` positions need [`Timeline::position`], which re-executes
/// from a checkpoint and single-steps — see [`crate::collect::CollectOptions::exact_positions`].
pub(crate) struct Marks {
    ticks_addr: Option<u64>,
    start_ticks: u64,
    /// REWIND_TICKS at the boundary before each event: what the previous event recorded.
    boundary: Vec<u64>,
}

impl Marks {
    pub(crate) fn new(tl: &Timeline) -> Marks {
        let ticks_addr = tl.header().tick_abi.map(|t| t.ticks.0);
        let start_ticks = ticks_addr
            .and_then(|a| tl.read_memory(a, 8).ok())
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        let mut boundary = Vec::with_capacity(tl.events().len() + 1);
        let mut last = start_ticks;
        boundary.push(last);
        for ev in tl.events() {
            last = match ev {
                trace::Event::Syscall(s) => s.ticks,
                trace::Event::Signal(s) => s.ticks,
                trace::Event::Rdtsc(r) => r.ticks,
                trace::Event::Cpuid(c) => c.ticks,
                _ => last,
            };
            boundary.push(last);
        }
        Marks {
            ticks_addr,
            start_ticks,
            boundary,
        }
    }

    pub(crate) fn here(&self, tl: &Timeline) -> Position {
        let n = tl.next_event();
        let Some(addr) = self.ticks_addr else {
            return Position::event(n);
        };
        let now = tl
            .read_memory(addr, 8)
            .ok()
            .and_then(|b| b.try_into().ok())
            .map_or(self.start_ticks, u64::from_le_bytes);
        let at_boundary = self.boundary.get(n as usize).copied().unwrap_or(now);
        if now > at_boundary {
            Position {
                event: n,
                ticks: Some(now),
                steps: 0,
            }
        } else {
            Position::event(n)
        }
    }
}
