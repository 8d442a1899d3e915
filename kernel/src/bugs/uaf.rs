//! `uaf`: a block request freed by its completion interrupt while its submitter still uses
//! it. The submitter hands an asynchronous read to the controller, whose completion frees
//! the request, and then reads the request's buffer pointer once more to checksum the
//! data. If the disk interrupt lands in between, the pointer read is slab poison
//! (0x6b6b…) and the dereference faults: an oops at a fixed instruction.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use super::{window, work};
use crate::block::ubd::{self, Op, Request};
use crate::sched::task::State;
use crate::sched::wait::WaitQueue;
use crate::sync::global::Global;

static COMPLETED: Global<u64> = Global::new("uaf completed", 0);
static DONE: WaitQueue = WaitQueue::new_io("uaf io");

const ROUNDS: u64 = 40;

/// Completion interrupt: account for the request and free it.
fn end_free(req: *mut Request) {
    COMPLETED.with(|c| *c += 1);
    ubd::free_request(req);
    DONE.wake_all();
}

#[inline(never)]
fn checksum_request_data(req: *mut Request) -> u64 {
    // SAFETY: deliberately unsound — this is the scenario's bug. The request may already
    // have been freed (and poisoned) by the completion interrupt.
    let (buf, len) = unsafe {
        (
            core::ptr::read_volatile(&(*req).buf),
            core::ptr::read_volatile(&(*req).len),
        )
    };
    let mut sum = 0u64;
    for i in 0..len.min(512) {
        // SAFETY: as above: `buf` is only valid if the request was still live.
        sum = sum.wrapping_add(unsafe { core::ptr::read_volatile(buf.add(i)) } as u64);
    }
    sum
}

fn submitter() {
    let use_window = match window() {
        0 => 700,
        w => 20_000 * w,
    };
    let sectors = ubd::sectors(0).unwrap_or(1).max(1);
    let mut data = vec![0u8; 512];
    for round in 0..ROUNDS {
        let req = match ubd::alloc_request(
            0,
            Op::Read,
            round % sectors,
            data.as_mut_ptr(),
            data.len(),
            end_free,
        ) {
            Some(r) => r,
            None => break,
        };
        if ubd::submit(req).is_err() {
            break;
        }
        work(use_window);
        let sum = checksum_request_data(req);
        core::hint::black_box(sum);
        DONE.wait_until(State::Uninterruptible, || COMPLETED.with(|c| *c > round));
        work(200);
    }
    crate::printk!(
        "uaf: {} requests completed without a use-after-free",
        ROUNDS
    );
}

pub fn run() -> Result<(), String> {
    if ubd::sectors(0).is_none() {
        return Err(String::from("needs ubd0 (boot with ubd0=IMAGE)"));
    }
    COMPLETED.with(|c| *c = 0);
    let pid = crate::sched::spawn("uaf-submit", submitter).map_err(|e| format!("{e}"))?;
    // The shell waits for the submitter like a foreground job.
    while crate::sched::find_pid(pid).is_some() {
        crate::sched::sleep_ms(10);
    }
    Ok(())
}
