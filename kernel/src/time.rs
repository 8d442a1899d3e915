//! Kernel time: jiffies advanced by the timer interrupt, and the uptime derived from them.
//! Time inside umk is counted in ticks, never read from the host clock, so it costs no
//! system call and replays exactly.

use core::sync::atomic::{AtomicU64, Ordering};

static JIFFIES: AtomicU64 = AtomicU64::new(0);
static HZ: AtomicU64 = AtomicU64::new(250);

pub fn set_hz(hz: u64) {
    HZ.store(hz, Ordering::Relaxed);
}

pub fn hz() -> u64 {
    HZ.load(Ordering::Relaxed)
}

pub fn jiffies() -> u64 {
    JIFFIES.load(Ordering::Relaxed)
}

/// Called by the timer interrupt, once per tick.
pub(crate) fn advance() -> u64 {
    JIFFIES.fetch_add(1, Ordering::Relaxed) + 1
}

pub fn ms_to_jiffies(ms: u64) -> u64 {
    (ms * hz()).div_ceil(1000).max(1)
}

/// Uptime as (seconds, microseconds).
pub fn uptime() -> (u64, u64) {
    let j = jiffies();
    let hz = hz();
    (j / hz, (j % hz) * 1_000_000 / hz)
}
