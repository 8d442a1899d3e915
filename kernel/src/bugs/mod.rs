//! Bug scenarios (`bug NAME`): each re-enacts a real kernel bug from the UML diary or the
//! classic repertoire, arising from umk's own scheduler, interrupts, locks and allocator.
//! Each is timing-dependent: natively it sometimes fires and sometimes completes cleanly.
//! `bug_window=N` on the command line widens its race window so tests can rely on it.

mod abba;
mod hotplug;
mod input;
mod irqrace;
mod lostwake;
mod uaf;

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

static WINDOW: AtomicU64 = AtomicU64::new(0);

pub fn set_window(n: u64) {
    WINDOW.store(n, Ordering::Relaxed);
}

/// The race-window knob: 0 for natural timing.
pub fn window() -> u64 {
    WINDOW.load(Ordering::Relaxed)
}

pub const NAMES: [&str; 6] = ["abba", "hotplug", "uaf", "lostwake", "irqrace", "input"];

/// Starts scenario `name` from the shell.
pub fn run(name: &str) -> Result<(), String> {
    crate::printk!(
        "bug: starting scenario '{}' (bug_window={})",
        name,
        window()
    );
    match name {
        "abba" => abba::run(),
        "hotplug" => hotplug::run(),
        "uaf" => uaf::run(),
        "lostwake" => lostwake::run(),
        "irqrace" => irqrace::run(),
        "input" => input::run(),
        _ => Err(format!(
            "unknown scenario '{name}' (one of: {})",
            NAMES.join(", ")
        )),
    }
}

/// Burns CPU for `units` of kernel work, one preemption point per unit, as a long loop
/// in a real kernel would. One unit is roughly a microsecond natively.
#[inline(never)]
pub fn work(units: u64) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..units {
        for _ in 0..200 {
            x = core::hint::black_box(x.rotate_left(5) ^ 0x2545_f491_4f6c_dd1d).wrapping_mul(3);
        }
        crate::exec_point::preempt_point();
    }
    core::hint::black_box(x);
}

/// Waits for `n` spawned scenario tasks to call [`Join::done`].
pub struct Join {
    left: crate::sync::global::Global<usize>,
    wq: crate::sched::wait::WaitQueue,
}

impl Join {
    pub const fn new(name: &'static str) -> Self {
        Join {
            left: crate::sync::global::Global::new("join", 0),
            wq: crate::sched::wait::WaitQueue::new(name),
        }
    }

    pub fn start(&self, n: usize) {
        self.left.with(|l| *l = n);
    }

    pub fn done(&self) {
        self.left.with(|l| *l -= 1);
        self.wq.wake_all();
    }

    pub fn wait(&self) {
        self.wq
            .wait_until(crate::sched::task::State::Interruptible, || {
                self.left.with(|l| *l == 0)
            });
    }
}
