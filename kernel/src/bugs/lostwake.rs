//! `lostwake`: the TASK_UNINTERRUPTIBLE hang of 29 Jun 2001. A writer queues a burst of
//! asynchronous writes; the driver passes each to the controller through a pipe and does
//! not check the result of that write. When the burst fills the pipe before a timer tick
//! drains it, the blocking pipe write is interrupted by the timer signal (EINTR), the
//! request goes nowhere, and the writer waits forever for a completion that never comes.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::sync::atomic::Ordering;

use super::{window, work};
use crate::block::ubd::{self, Op, Request};
use crate::sched::task::State;
use crate::sched::wait::WaitQueue;
use crate::sync::global::Global;

static OUTSTANDING: Global<u64> = Global::new("lostwake outstanding", 0);
static DONE: WaitQueue = WaitQueue::new_io("writeback");

const ROUNDS: u64 = 4;
const BURST: u64 = 540;

fn end_write(req: *mut Request) {
    OUTSTANDING.with(|o| *o -= 1);
    ubd::free_request(req);
    DONE.wake_all();
}

fn writer() {
    let per_request = if window() == 0 { 40 } else { 0 };
    let sectors = ubd::sectors(0).unwrap_or(1);
    // Writes go to the last sectors of the disk, which mke2fs leaves unused.
    let base = sectors.saturating_sub(8);
    let mut data = vec![0x5au8; 512];
    for round in 0..ROUNDS {
        for k in 0..BURST {
            let Some(req) = ubd::alloc_request(
                0,
                Op::Write,
                base + (k % 8),
                data.as_mut_ptr(),
                data.len(),
                end_write,
            ) else {
                break;
            };
            OUTSTANDING.with(|o| *o += 1);
            if ubd::submit(req).is_err() {
                OUTSTANDING.with(|o| *o -= 1);
                ubd::free_request(req);
            }
            work(per_request);
        }
        DONE.wait_until(State::Uninterruptible, || OUTSTANDING.with(|o| *o == 0));
        crate::printk!("lostwake: burst {} of {} written", round + 1, ROUNDS);
    }
    data[0] = 0;
}

pub fn run() -> Result<(), String> {
    if ubd::sectors(0).is_none() {
        return Err(String::from("needs ubd0 (boot with ubd0=IMAGE)"));
    }
    ubd::IGNORE_SUBMIT_ERRORS.store(true, Ordering::Relaxed);
    if window() > 0 {
        // A slow disk: one request per interrupt, so any burst overfills the pipe.
        ubd::CONTROLLER_BATCH.store(1, Ordering::Relaxed);
    }
    let pid = crate::sched::spawn("lostwake-wb", writer).map_err(|e| format!("{e}"))?;
    while crate::sched::find_pid(pid).is_some() {
        crate::sched::sleep_ms(10);
    }
    ubd::IGNORE_SUBMIT_ERRORS.store(false, Ordering::Relaxed);
    ubd::CONTROLLER_BATCH.store(0, Ordering::Relaxed);
    crate::printk!("lostwake: all bursts completed");
    Ok(())
}
