//! Interrupts. Host signals are umk's interrupt lines; their handlers only latch a pending
//! bit, and the real handler work runs at the next preemption point with interrupts
//! enabled (exec_point.rs). That keeps every interrupt's effect at an exact execution
//! point, which is what makes a recording replay exactly.
//!
//! "Interrupts off" (`save`/`restore`) is a kernel flag, not the host signal mask: the
//! host may still deliver the signal, but its work waits until interrupts are back on.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::host::signal;

/// Interrupt lines, as pending bits and as the `irq` argument of the probes.
pub const IRQ_TIMER: u32 = 0;
pub const IRQ_IO: u32 = 1;

static PENDING: AtomicU32 = AtomicU32::new(0);
static TIMER_TICKS: AtomicU32 = AtomicU32::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);
static IN_IRQ: AtomicBool = AtomicBool::new(false);

/// Extra work on the timer line (a bug scenario's handler), run after the kernel's own.
static TIMER_HOOK: crate::sync::global::Global<Option<fn()>> =
    crate::sync::global::Global::new("timer hook", None);

pub fn set_timer_hook(hook: Option<fn()>) {
    TIMER_HOOK.with(|h| *h = hook);
}

/// Irq descriptors: what runs for each line (set by the drivers at boot).
static mut IO_HANDLERS: [Option<fn()>; 4] = [None; 4];

extern "C" fn sigalrm(_sig: i32, _info: usize, _uc: usize) {
    TIMER_TICKS.fetch_add(1, Ordering::Relaxed);
    PENDING.fetch_or(1 << IRQ_TIMER, Ordering::Relaxed);
}

extern "C" fn sigio(_sig: i32, _info: usize, _uc: usize) {
    PENDING.fetch_or(1 << IRQ_IO, Ordering::Relaxed);
}

extern "C" fn sigsegv(_sig: i32, info: usize, uc: usize) {
    // SAFETY: the host passes a valid siginfo (si_code at byte 8, si_addr at byte 16) and
    // ucontext to an SA_SIGINFO handler.
    let (code, addr, regs) = unsafe {
        (
            *((info + 8) as *const i32),
            *((info + 16) as *const u64),
            crate::arch::Regs::from_ucontext(uc),
        )
    };
    // SI_KERNEL: the CPU raised #GP (a non-canonical address), which carries no address.
    crate::panic::oops(addr, code == 0x80, &regs);
}

/// Installs the interrupt and fault handlers.
pub fn init() -> Result<(), crate::host::Errno> {
    signal::install(signal::SIGALRM, sigalrm, &[signal::SIGIO], false)?;
    signal::install(signal::SIGIO, sigio, &[signal::SIGALRM], false)?;
    signal::install(
        signal::SIGSEGV,
        sigsegv,
        &[signal::SIGALRM, signal::SIGIO],
        false,
    )?;
    Ok(())
}

/// Registers a handler for the I/O line (SIGIO): console, mconsole.
pub fn register_io(handler: fn()) {
    // SAFETY: only called during boot, before interrupts are enabled; the array is read
    // only by `service` afterwards.
    unsafe {
        let handlers = &mut *core::ptr::addr_of_mut!(IO_HANDLERS);
        if let Some(slot) = handlers.iter_mut().find(|h| h.is_none()) {
            *slot = Some(handler);
        }
    }
}

pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub fn in_irq() -> bool {
    IN_IRQ.load(Ordering::Relaxed)
}

/// Disables interrupts; returns whether they were enabled (`local_irq_save`).
pub fn save() -> bool {
    ENABLED.swap(false, Ordering::Relaxed)
}

/// Restores the state `save` returned (`local_irq_restore`).
pub fn restore(was_enabled: bool) {
    ENABLED.store(was_enabled, Ordering::Relaxed);
}

/// Whether an interrupt is waiting to be serviced.
pub fn pending() -> bool {
    PENDING.load(Ordering::Relaxed) != 0
}

/// Probe: entering the handler for `irq`.
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_irq_enter(irq: u32) {
    // The tag keeps the linker from folding identical probes into one address.
    core::hint::black_box((irq, 1u32));
}

/// Probe: leaving the handler for `irq`.
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_irq_exit(irq: u32) {
    // The tag keeps the linker from folding identical probes into one address.
    core::hint::black_box((irq, 2u32));
}

/// Runs at every preemption point: services pending interrupts, then preempts if asked.
pub fn at_preempt_point() {
    if pending() && enabled() && !in_irq() {
        service();
    }
    crate::sched::maybe_preempt();
}

/// Runs the handlers of every pending line, with interrupts off.
pub fn service() {
    IN_IRQ.store(true, Ordering::Relaxed);
    let was = save();
    loop {
        let bits = PENDING.swap(0, Ordering::Relaxed);
        if bits == 0 {
            break;
        }
        if bits & (1 << IRQ_TIMER) != 0 {
            let ticks = TIMER_TICKS.swap(0, Ordering::Relaxed);
            umk_irq_enter(IRQ_TIMER);
            for _ in 0..ticks.max(1) {
                timer_interrupt();
            }
            umk_irq_exit(IRQ_TIMER);
        }
        if bits & (1 << IRQ_IO) != 0 {
            umk_irq_enter(IRQ_IO);
            // SAFETY: the handler table is only written during boot.
            let handlers = unsafe { *core::ptr::addr_of!(IO_HANDLERS) };
            for h in handlers.iter().flatten() {
                h();
            }
            umk_irq_exit(IRQ_IO);
        }
    }
    restore(was);
    IN_IRQ.store(false, Ordering::Relaxed);
}

/// Raises the I/O line from software (the idle loop's poll and the disk "controller").
pub fn raise_io() {
    PENDING.fetch_or(1 << IRQ_IO, Ordering::Relaxed);
}

fn timer_interrupt() {
    let now = crate::time::advance();
    crate::sched::timer::run(now);
    crate::sched::timer_tick();
    crate::block::ubd::timer_irq();
    crate::drivers::console::poll_input();
    if let Some(hook) = TIMER_HOOK.with(|h| *h) {
        hook();
    }
}
