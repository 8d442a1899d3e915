//! `hotplug`: UML's own deadlock (diary, 14 Oct 2002). Hot-plugging a disk holds the
//! device lock `ubd_lock` and reads the partition table; with the request queue restarted
//! under that same lock (the driver before the `ubd_io_lock` split), the read re-takes
//! `ubd_lock` whenever the queue is busy with another task's I/O — and the hot-plugging
//! task waits for itself forever. Whether the queue is busy at that instant is timing.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use super::{window, work, Join};
use crate::block::ubd::{self, Op};

static STOP: AtomicBool = AtomicBool::new(false);
static JOIN: Join = Join::new("hotplug join");

/// Hot-plug attempts at natural timing; a widened window (`bug_window=N`) makes ten times
/// as many per unit of N, so that the race is all but certain to be lost.
const ATTEMPTS: usize = 6;

fn attempts() -> usize {
    match window() {
        0 => ATTEMPTS,
        w => ATTEMPTS * 10 * w.min(10) as usize,
    }
}

/// A background disk reader keeps the request queue busy part of the time.
fn reader(seed: u64) {
    let think = if window() == 0 { 500_000 } else { 1 };
    let sectors = ubd::sectors(0).unwrap_or(1).max(1);
    let mut buf = [0u8; 512];
    let mut x = seed;
    while !STOP.load(Ordering::Relaxed) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let _ = ubd::do_io(0, Op::Read, (x >> 33) % sectors, &mut buf);
        work(think);
    }
    JOIN.done();
}

pub fn run() -> Result<(), String> {
    let spec = crate::boot::boot_ubd(0)
        .ok_or_else(|| String::from("needs ubd0 (boot with ubd0=IMAGE)"))?;
    ubd::QUEUE_LOCK_IS_DEVICE_LOCK.store(true, Ordering::Relaxed);
    STOP.store(false, Ordering::Relaxed);
    JOIN.start(1);
    crate::sched::spawn("kio", || reader(1)).map_err(|e| format!("{e}"))?;
    let mut result = Ok(());
    let attempts = attempts();
    for attempt in 0..attempts {
        crate::sched::sleep_ms(20);
        // Probing the new device waits for it to settle, giving up the CPU once. The
        // reader runs meanwhile: if it reaches its next read before its time slice ends,
        // that request is still queued when the probe resumes — which is the race.
        crate::sched::yield_now();
        // A second view of the root image, plugged in and out as `ubd1`, the way
        // `uml_mconsole config ubd1=…` / `remove ubd1` would.
        if let Err(e) = ubd::config(1, spec.image, None).and_then(|_| ubd::remove(1)) {
            result = Err(format!("attempt {attempt}: {e}"));
            break;
        }
    }
    STOP.store(true, Ordering::Relaxed);
    JOIN.wait();
    ubd::QUEUE_LOCK_IS_DEVICE_LOCK.store(false, Ordering::Relaxed);
    result?;
    crate::printk!(
        "hotplug: {} hot-plugs of ubd1 completed without deadlock",
        attempts
    );
    Ok(())
}
