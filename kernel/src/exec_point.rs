//! The execution-point ABI (see kernel/EXEC_POINTS.md): a progress counter that a recorder
//! can stop at exactly, standing in for the hardware branch counter this machine lacks.
//!
//! `preempt_point()` is called at every lock operation, every scheduler entry and every
//! iteration of long kernel work. It is also the only place where pending interrupts are
//! serviced and where preemption happens, so an asynchronous signal injected at a given
//! tick has exactly the same effect on every run.

use core::sync::atomic::{compiler_fence, Ordering};

/// Number of preemption points passed since boot.
#[no_mangle]
#[used]
pub static mut REWIND_TICKS: u64 = 0;

/// When `REWIND_TICKS` reaches this value, `preempt_point()` executes `int3`. Natively it
/// is never reached; a recorder or replayer writes it through ptrace.
#[no_mangle]
#[used]
pub static mut REWIND_TICK_TARGET: u64 = u64::MAX;

/// Counts one execution point, traps for the recorder if asked to, then services pending
/// interrupts and preemption.
#[inline(never)]
#[no_mangle]
pub extern "C" fn preempt_point() {
    if tick() {
        crate::arch::breakpoint();
    }
    #[cfg(not(test))]
    crate::irq::at_preempt_point();
}

/// Counts one execution point without servicing interrupts: for places that must not
/// re-enter the scheduler (the scheduler's own entry).
#[inline(never)]
#[no_mangle]
pub extern "C" fn count_point() {
    if tick() {
        crate::arch::breakpoint();
    }
}

/// Advances the tick counter; returns whether the recorder's target was reached.
#[inline(always)]
fn tick() -> bool {
    // The counter is read and written with volatile accesses: a tracer changes the target
    // behind the compiler's back, and the recorder reads the count from outside.
    let ticks_ptr = core::ptr::addr_of_mut!(REWIND_TICKS);
    let target_ptr = core::ptr::addr_of!(REWIND_TICK_TARGET);
    // SAFETY: both statics are only touched here and by the tracer; umk is a single host
    // thread, and signal handlers never touch them.
    let reached = unsafe {
        let t = ticks_ptr.read_volatile() + 1;
        ticks_ptr.write_volatile(t);
        t == target_ptr.read_volatile()
    };
    compiler_fence(Ordering::SeqCst);
    reached
}

/// The current tick count (for reports and the hung-task detector's stamps).
pub fn ticks() -> u64 {
    // SAFETY: a plain read of a u64 the single host thread owns.
    unsafe { core::ptr::addr_of!(REWIND_TICKS).read_volatile() }
}
