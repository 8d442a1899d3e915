//! Spinlocks. On this uniprocessor kernel taking a spinlock disables preemption (and, with
//! `lock_irqsave`, interrupts); finding one already held can only mean the holder is the
//! context we interrupted or ourselves, which would spin forever — umk reports it as the
//! deadlock it is.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use super::{
    ctx, umk_lock_acquire, umk_lock_acquired, umk_lock_release, LockClass, LockHeader, KIND_SPIN,
};
use crate::exec_point::preempt_point;
use crate::sched::{preempt_disable, preempt_enable};

#[repr(C)]
pub struct SpinLock<T> {
    pub hdr: LockHeader,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the lock on a uniprocessor.
unsafe impl<T> Sync for SpinLock<T> {}

pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    irq_was_enabled: Option<bool>,
}

impl<T> SpinLock<T> {
    pub const fn new(class: &'static LockClass, value: T) -> Self {
        SpinLock {
            hdr: LockHeader::new(class, KIND_SPIN),
            data: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> SpinGuard<'_, T> {
        self.acquire(None)
    }

    /// Takes the lock with interrupts off, as `spin_lock_irqsave`.
    pub fn lock_irqsave(&self) -> SpinGuard<'_, T> {
        preempt_point();
        let was = crate::irq::save();
        self.acquire(Some(was))
    }

    #[inline(never)]
    fn acquire(&self, irq_was_enabled: Option<bool>) -> SpinGuard<'_, T> {
        if irq_was_enabled.is_none() {
            preempt_point();
        }
        let c = ctx();
        umk_lock_acquire(&self.hdr, c);
        preempt_disable();
        if self.hdr.is_locked() {
            panic!(
                "BUG: spinlock recursion on CPU#0, {}/{}: lock {} ({:#x}) already held by pid {}{}",
                crate::sched::task::snapshot(crate::sched::current()).name(),
                crate::sched::current_pid(),
                self.hdr.class.name(),
                self.hdr.addr(),
                self.hdr.owner(),
                if crate::irq::in_irq() {
                    " (taken again in interrupt context)"
                } else {
                    ""
                }
            );
        }
        self.hdr.take();
        umk_lock_acquired(&self.hdr, c);
        SpinGuard {
            lock: self,
            irq_was_enabled,
        }
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        umk_lock_release(&self.lock.hdr, ctx());
        self.lock.hdr.release();
        if let Some(was) = self.irq_was_enabled {
            crate::irq::restore(was);
        }
        preempt_enable();
        preempt_point();
    }
}
