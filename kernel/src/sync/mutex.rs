//! Sleeping mutexes with an owner. A task that finds the mutex held sleeps
//! UNINTERRUPTIBLE on it, recording the mutex as what it waits on, so the hung-task
//! detector and debuggers can show who waits for whom. Like Linux's, a mutex taken twice
//! by its owner simply never comes free: that self-deadlock is a bug for lockdep and the
//! hung-task detector to report, not for the mutex to paper over.

use alloc::collections::VecDeque;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use super::global::Global;
use super::{
    ctx, umk_lock_acquire, umk_lock_acquired, umk_lock_release, LockClass, LockHeader, KIND_MUTEX,
};
use crate::exec_point::preempt_point;
use crate::sched::{self, task};

#[repr(C)]
pub struct Mutex<T> {
    pub hdr: LockHeader,
    waiters: Global<VecDeque<usize>>,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the mutex, and umk is one host thread, so the
// value never crosses threads whether or not it is Send.
unsafe impl<T> Sync for Mutex<T> {}

pub struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(class: &'static LockClass, value: T) -> Self {
        Mutex {
            hdr: LockHeader::new(class, KIND_MUTEX),
            waiters: Global::new("mutex waiters", VecDeque::new()),
            data: UnsafeCell::new(value),
        }
    }

    #[inline(never)]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        preempt_point();
        if crate::irq::in_irq() {
            panic!(
                "BUG: sleeping function called from invalid context: mutex_lock({}) in interrupt",
                self.hdr.class.name()
            );
        }
        let c = ctx();
        umk_lock_acquire(&self.hdr, c);
        let me = sched::current();
        while self.hdr.is_locked() {
            self.waiters.with(|w| {
                if !w.contains(&me) {
                    w.push_back(me);
                }
            });
            sched::block(
                task::State::Uninterruptible,
                task::WaitKind::Mutex,
                self.hdr.addr(),
                self.hdr.class.name(),
            );
        }
        self.waiters.with(|w| w.retain(|&i| i != me));
        self.hdr.take();
        umk_lock_acquired(&self.hdr, c);
        MutexGuard { lock: self }
    }

    /// Takes the mutex if it is free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        preempt_point();
        if self.hdr.is_locked() {
            return None;
        }
        let c = ctx();
        umk_lock_acquire(&self.hdr, c);
        self.hdr.take();
        umk_lock_acquired(&self.hdr, c);
        Some(MutexGuard { lock: self })
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the mutex is held.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the mutex is held, exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        let hdr = &self.lock.hdr;
        umk_lock_release(hdr, ctx());
        hdr.release();
        if let Some(next) = self.lock.waiters.with(|w| w.pop_front()) {
            sched::wake(next);
        }
        preempt_point();
    }
}
