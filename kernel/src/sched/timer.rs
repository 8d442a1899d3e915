//! The timer wheel: 64 slots indexed by deadline modulo 64, scanned one slot per tick, as
//! the classic Linux wheel's first level. It wakes sleeping tasks when their deadline
//! passes.

use alloc::vec::Vec;

use crate::sync::global::Global;

const SLOTS: usize = 64;

struct Wheel {
    slots: [Vec<(u64, usize)>; SLOTS],
}

static WHEEL: Global<Wheel> = Global::new(
    "timer wheel",
    Wheel {
        slots: [const { Vec::new() }; SLOTS],
    },
);

/// Wakes task `idx` at jiffies `deadline`.
pub fn add(deadline: u64, idx: usize) {
    WHEEL.with(|w| w.slots[(deadline % SLOTS as u64) as usize].push((deadline, idx)));
}

/// Fires the timers due at `now` (called from the timer interrupt).
pub(crate) fn run(now: u64) {
    let mut due: Vec<usize> = Vec::new();
    WHEEL.with(|w| {
        let slot = &mut w.slots[(now % SLOTS as u64) as usize];
        slot.retain(|&(deadline, idx)| {
            if deadline <= now {
                due.push(idx);
                false
            } else {
                true
            }
        });
    });
    for idx in due {
        let still_sleeping = super::task::with_tasks(|t| {
            t[idx].wake_at <= now && t[idx].wait_kind == super::task::WaitKind::Sleep
        });
        if still_sleeping {
            super::wake(idx);
        }
    }
}
