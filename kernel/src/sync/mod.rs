//! Locking: lock classes (lockdep's static keys), spinlocks and sleeping mutexes, and the
//! probe points every lock operation passes through (kernel/PROBES.md).

pub mod class;
pub mod global;
pub mod mutex;
pub mod spinlock;

pub use class::LockClass;
pub use mutex::Mutex;
pub use spinlock::SpinLock;

use core::sync::atomic::{AtomicU32, Ordering};

use crate::sched::task;

/// The part of every lock that debuggers and the analyzer read (kernel/PROBES.md):
/// `class` at offset 0, `locked` at 8, `owner` (pid of the holder) at 12, `kind` at 16.
#[repr(C)]
pub struct LockHeader {
    pub class: &'static LockClass,
    pub locked: AtomicU32,
    pub owner: AtomicU32,
    pub kind: u32,
}

pub const KIND_SPIN: u32 = 1;
pub const KIND_MUTEX: u32 = 2;

/// Context bits passed to the probes.
pub const CTX_IRQ: u32 = 1;
pub const CTX_IRQS_OFF: u32 = 2;

impl LockHeader {
    pub const fn new(class: &'static LockClass, kind: u32) -> Self {
        LockHeader {
            class,
            locked: AtomicU32::new(0),
            owner: AtomicU32::new(0),
            kind,
        }
    }

    pub fn addr(&self) -> u64 {
        self as *const _ as u64
    }

    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed) != 0
    }

    pub fn owner(&self) -> u32 {
        self.owner.load(Ordering::Relaxed)
    }

    fn take(&self) {
        self.locked.store(1, Ordering::Relaxed);
        self.owner.store(task::current_pid(), Ordering::Relaxed);
        let addr = self.addr();
        task::with_current(|t| {
            if (t.held_count as usize) < task::MAX_HELD {
                t.held[t.held_count as usize] = addr;
            }
            t.held_count += 1;
        });
    }

    fn release(&self) {
        let addr = self.addr();
        task::with_tasks(|tasks| {
            // The holder may differ from the current task when an interrupt handler
            // released a lock taken in the interrupted task's context.
            for t in tasks.iter_mut() {
                let n = (t.held_count as usize).min(task::MAX_HELD);
                if let Some(pos) = t.held[..n].iter().rposition(|&h| h == addr) {
                    t.held.copy_within(pos + 1..n, pos);
                    t.held[n - 1] = 0;
                    t.held_count -= 1;
                    break;
                }
            }
        });
        self.owner.store(0, Ordering::Relaxed);
        self.locked.store(0, Ordering::Relaxed);
    }
}

fn ctx() -> u32 {
    (if crate::irq::in_irq() { CTX_IRQ } else { 0 })
        | (if crate::irq::enabled() {
            0
        } else {
            CTX_IRQS_OFF
        })
}

/// Probe: a task is about to take `lock` (it may block here).
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_lock_acquire(lock: *const LockHeader, ctx: u32) {
    // The tag keeps the linker from folding identical probes into one address.
    core::hint::black_box((lock, ctx, 1u32));
}

/// Probe: `lock` is now held by the current task.
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_lock_acquired(lock: *const LockHeader, ctx: u32) {
    // The tag keeps the linker from folding identical probes into one address.
    core::hint::black_box((lock, ctx, 2u32));
}

/// Probe: `lock` is being released.
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_lock_release(lock: *const LockHeader, ctx: u32) {
    // The tag keeps the linker from folding identical probes into one address.
    core::hint::black_box((lock, ctx, 3u32));
}

/// Reports a task that ends while holding locks (lockdep's "lock held at task exit").
pub fn lockdep_report_held_at_exit(pid: u32) {
    let t = task::snapshot(task::current());
    crate::printk!("=====================================");
    crate::printk!(
        "WARNING: {}/{} still has locks held at exit!",
        t.name(),
        pid
    );
    for &addr in &t.held[..(t.held_count as usize).min(task::MAX_HELD)] {
        // SAFETY: held[] only ever holds addresses of live LockHeaders (locks are statics
        // or outlive their holders).
        let hdr = unsafe { &*(addr as *const LockHeader) };
        crate::printk!(
            " #0: {:#x} ({}), at {}:{}",
            addr,
            hdr.class.name(),
            hdr.class.file(),
            hdr.class.line
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    /// kernel/PROBES.md documents these offsets for the analyzer and gdb.
    #[test]
    fn lock_layouts_match_probes_md() {
        assert_eq!(offset_of!(LockHeader, class), 0);
        assert_eq!(offset_of!(LockHeader, locked), 8);
        assert_eq!(offset_of!(LockHeader, owner), 12);
        assert_eq!(offset_of!(LockHeader, kind), 16);
        assert_eq!(core::mem::size_of::<LockClass>(), 40);
    }
}
