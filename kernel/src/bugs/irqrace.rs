//! `irqrace`: an interrupt handler that edits a list without the lock. A task moves jobs
//! around a doubly linked list under `jobs_lock` — a spinlock taken without disabling
//! interrupts — while the timer interrupt retires jobs from the same list without taking
//! the lock at all. If the interrupt lands in the middle of the task's list surgery, the
//! links no longer agree, and the list-debug check reports the corruption (Linux's
//! CONFIG_DEBUG_LIST "list_del corruption") and panics.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use super::{window, work};
use crate::sync::global::Global;
use crate::sync::SpinLock;

crate::lock_class!(JOBS_LOCK_CLASS, "jobs_lock");

const SLOTS: usize = 16;
const HEAD: usize = 0;

/// An index-linked list: slot 0 is the head; `prev`/`next` are slot numbers.
#[derive(Clone, Copy)]
struct Node {
    prev: usize,
    next: usize,
    on_list: bool,
}

static JOBS_LOCK: SpinLock<()> = SpinLock::new(&JOBS_LOCK_CLASS, ());
static LIST: Global<[Node; SLOTS]> = Global::new(
    "jobs list",
    [Node {
        prev: 0,
        next: 0,
        on_list: false,
    }; SLOTS],
);
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn check_del(l: &[Node; SLOTS], n: usize) {
    let (prev, next) = (l[n].prev, l[n].next);
    if l[prev].next != n {
        panic!("list_del corruption. prev->next should be job {n}, but was job {} (prev is job {prev})", l[prev].next);
    }
    if l[next].prev != n {
        panic!("list_del corruption. next->prev should be job {n}, but was job {} (next is job {next})", l[next].prev);
    }
}

fn del(l: &mut [Node; SLOTS], n: usize) {
    check_del(l, n);
    let (prev, next) = (l[n].prev, l[n].next);
    l[prev].next = next;
    l[next].prev = prev;
    l[n].on_list = false;
}

fn add_tail(l: &mut [Node; SLOTS], n: usize) {
    let last = l[HEAD].prev;
    if l[last].next != HEAD {
        panic!("list_add corruption. prev->next should be the head, but was job {} (prev is job {last})", l[last].next);
    }
    l[n] = Node {
        prev: last,
        next: HEAD,
        on_list: true,
    };
    l[last].next = n;
    l[HEAD].prev = n;
}

/// The timer-interrupt side: retire the first job and requeue a spare one — without
/// taking `jobs_lock` (the bug).
fn irq_retire() {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    LIST.with(|l| {
        let first = l[HEAD].next;
        if first != HEAD {
            del(l, first);
        }
        if let Some(spare) = (1..SLOTS).find(|&i| !l[i].on_list) {
            add_tail(l, spare);
        }
    });
}

/// The task side: rotate the list one job at a time under the lock, open-coding
/// list_move_tail in two steps — look up the neighbours, then (after some work) relink —
/// so that an interrupt in between leaves the task writing stale links.
fn rotator(rounds: u64) {
    let gap = match window() {
        0 => 4,
        w => 3000 * w,
    };
    for _ in 0..rounds {
        let guard = JOBS_LOCK.lock();
        let picked = LIST.with(|l| {
            let first = l[HEAD].next;
            if first == HEAD {
                return None;
            }
            check_del(l, first);
            Some((first, l[first].prev, l[first].next))
        });
        work(gap);
        if let Some((n, prev, next)) = picked {
            LIST.with(|l| {
                l[prev].next = next;
                l[next].prev = prev;
                add_tail(l, n);
            });
        }
        drop(guard);
        work(300);
    }
    ACTIVE.store(false, Ordering::Relaxed);
    crate::printk!("irqrace: {} list rotations without corruption", rounds);
}

pub fn run() -> Result<(), String> {
    LIST.with(|l| {
        l[HEAD] = Node {
            prev: HEAD,
            next: HEAD,
            on_list: true,
        };
        for n in 1..SLOTS / 2 {
            add_tail(l, n);
        }
    });
    crate::irq::set_timer_hook(Some(irq_retire));
    ACTIVE.store(true, Ordering::Relaxed);
    let pid = crate::sched::spawn("jobq", || rotator(3000)).map_err(|e| format!("{e}"))?;
    while crate::sched::find_pid(pid).is_some() {
        crate::sched::sleep_ms(10);
    }
    crate::irq::set_timer_hook(None);
    Ok(())
}
