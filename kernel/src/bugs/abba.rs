//! `abba`: two tasks take two mutexes in opposite orders. If the timer preempts the first
//! between its two acquisitions while the second runs its own first half, each waits for
//! the other forever; the hung-task detector reports both and panics.

use alloc::string::String;

use super::{window, work, Join};
use crate::sync::Mutex;

crate::lock_class!(ABBA_A_CLASS, "abba_lock_a");
crate::lock_class!(ABBA_B_CLASS, "abba_lock_b");

static LOCK_A: Mutex<u64> = Mutex::new(&ABBA_A_CLASS, 0);
static LOCK_B: Mutex<u64> = Mutex::new(&ABBA_B_CLASS, 0);
static JOIN: Join = Join::new("abba join");

const ROUNDS: u64 = 300;

fn windows() -> (u64, u64) {
    // (work while holding the first lock, work outside both locks)
    match window() {
        0 => (60, 1000),
        w => (2000 * w, 10),
    }
}

fn one_way(first: &'static Mutex<u64>, second: &'static Mutex<u64>) {
    let (inside, outside) = windows();
    for _ in 0..ROUNDS {
        let mut a = first.lock();
        work(inside);
        let mut b = second.lock();
        *a += 1;
        *b += 1;
        drop(b);
        drop(a);
        work(outside);
    }
    JOIN.done();
}

pub fn run() -> Result<(), String> {
    JOIN.start(2);
    crate::sched::spawn("abba-1", || one_way(&LOCK_A, &LOCK_B))
        .map_err(|e| alloc::format!("{e}"))?;
    crate::sched::spawn("abba-2", || one_way(&LOCK_B, &LOCK_A))
        .map_err(|e| alloc::format!("{e}"))?;
    JOIN.wait();
    crate::printk!(
        "abba: {} rounds each without deadlock (a={}, b={})",
        ROUNDS,
        *LOCK_A.lock(),
        *LOCK_B.lock()
    );
    Ok(())
}
