//! The hung-task detector (khungtaskd): a kernel thread that wakes every few seconds and
//! reports every task that has been UNINTERRUPTIBLE for longer than the timeout, with what
//! it waits on, who holds that, its call trace, and all locks held in the system — then
//! optionally panics, turning a deadlock into a crash a recorder can close on.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sched::task::{self, State, Task, WaitKind, MAX_TASKS};
use crate::sync::LockHeader;

static TIMEOUT_SECS: AtomicU64 = AtomicU64::new(120);
static PANIC_ON_HUNG: AtomicBool = AtomicBool::new(false);

pub fn configure(timeout_secs: u64, panic: bool) {
    TIMEOUT_SECS.store(timeout_secs, Ordering::Relaxed);
    PANIC_ON_HUNG.store(panic, Ordering::Relaxed);
}

pub fn timeout_secs() -> u64 {
    TIMEOUT_SECS.load(Ordering::Relaxed)
}

/// The khungtaskd thread body.
pub fn khungtaskd() {
    loop {
        let timeout = TIMEOUT_SECS.load(Ordering::Relaxed);
        let period = if timeout == 0 {
            5
        } else {
            timeout.div_ceil(2).max(1)
        };
        crate::sched::sleep_jiffies(period * crate::time::hz());
        if timeout != 0 {
            check(timeout);
        }
    }
}

fn check(timeout: u64) {
    let now = crate::time::jiffies();
    let limit = timeout * crate::time::hz();
    let mut hung = 0;
    for idx in 0..MAX_TASKS {
        let t = task::snapshot(idx);
        if t.state == State::Uninterruptible
            && t.hung_reported == 0
            && now.saturating_sub(t.blocked_since) >= limit
        {
            task::with_tasks(|tasks| tasks[idx].hung_reported = 1);
            report(&t, timeout);
            hung += 1;
        }
    }
    if hung > 0 {
        show_all_locks();
        if PANIC_ON_HUNG.load(Ordering::Relaxed) {
            panic!("hung_task: blocked tasks");
        }
    }
}

/// Describes what a blocked task waits on, with the owner for a mutex.
pub fn describe_wait(t: &Task) -> alloc::string::String {
    match t.wait_kind {
        WaitKind::Mutex => {
            // SAFETY: wait_obj of a task blocked on a mutex is the address of that mutex's
            // LockHeader, which outlives its waiters.
            let hdr = unsafe { &*(t.wait_obj as *const LockHeader) };
            alloc::format!(
                "mutex {} ({:#x}) held by pid {}",
                hdr.class.name(),
                t.wait_obj,
                hdr.owner()
            )
        }
        WaitKind::None => alloc::string::String::new(),
        WaitKind::Sleep => alloc::format!("sleep until jiffies {}", t.wake_at),
        kind => alloc::format!("{} {} ({:#x})", kind.name(), t.wait_name(), t.wait_obj),
    }
}

fn report(t: &Task, timeout: u64) {
    crate::printk!(
        "INFO: task {}:{} blocked for more than {} seconds.",
        t.name(),
        t.pid,
        timeout
    );
    crate::printk!("      Not tainted umk {}", crate::VERSION);
    crate::printk!(
        "task:{:<15} state:{} pid:{:<5} waiting on {}",
        t.name(),
        t.state.letter(),
        t.pid,
        describe_wait(t)
    );
    print_saved_trace(t);
}

/// Prints the call trace of a task that is not running, from its saved context frame.
pub fn print_saved_trace(t: &Task) {
    // The saved frame (arch/switch.rs) holds rbp at word 5.
    if t.saved_rsp < t.stack_lo || t.saved_rsp + 56 > t.stack_hi {
        return;
    }
    // SAFETY: saved_rsp lies inside the task's own stack (checked above) and points at the
    // frame the context switch pushed.
    let (rbp, ret) = unsafe {
        (
            *((t.saved_rsp + 40) as *const u64),
            *((t.saved_rsp + 48) as *const u64),
        )
    };
    let mut frames = [0u64; 16];
    let n = crate::arch::backtrace(rbp, t.stack_lo, t.stack_hi, &mut frames);
    crate::printk!("Call Trace:");
    crate::printk!(" [<{:016x}>]", ret);
    for f in &frames[..n] {
        crate::printk!(" [<{:016x}>]", f);
    }
}

/// Lists every lock held by every task (lockdep's debug_show_all_locks).
pub fn show_all_locks() {
    crate::printk!("");
    crate::printk!("Showing all locks held in the system:");
    for idx in 0..MAX_TASKS {
        let t = task::snapshot(idx);
        if t.held_count == 0 || matches!(t.state, State::Unused) {
            continue;
        }
        crate::printk!("{} lock(s) held by {}/{}:", t.held_count, t.name(), t.pid);
        for (i, &addr) in t.held[..(t.held_count as usize).min(task::MAX_HELD)]
            .iter()
            .enumerate()
        {
            // SAFETY: held[] only holds addresses of live LockHeaders.
            let hdr = unsafe { &*(addr as *const LockHeader) };
            crate::printk!(
                " #{}: {:#x} ({}), at: {}:{}",
                i,
                addr,
                hdr.class.name(),
                hdr.class.file(),
                hdr.class.line
            );
        }
    }
    crate::printk!("=============================================");
}
