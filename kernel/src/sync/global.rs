//! `Global<T>`: kernel-wide state on a uniprocessor. umk runs on one host thread, and its
//! signal handlers only set atomic flags, so exclusive access needs no atomics — only the
//! discipline that the closure passed to `with` neither sleeps nor reaches a preemption
//! point. A re-entrant `with` on the same value is caught and reported as a kernel bug.

use core::cell::{Cell, UnsafeCell};

#[repr(C)]
pub struct Global<T> {
    value: UnsafeCell<T>,
    busy: Cell<bool>,
    name: &'static str,
}

// SAFETY: umk is single-threaded; access is serialised by `with` and its busy flag.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(name: &'static str, value: T) -> Self {
        Global {
            value: UnsafeCell::new(value),
            busy: Cell::new(false),
            name,
        }
    }

    /// Runs `f` with exclusive access to the value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        if self.busy.replace(true) {
            panic!("re-entrant access to kernel state `{}`", self.name);
        }
        // SAFETY: the busy flag guarantees no other `&mut` to the value exists; there is
        // only one host thread and handlers never touch `Global`s.
        let r = f(unsafe { &mut *self.value.get() });
        self.busy.set(false);
        r
    }

    /// Address of the value, for tables that debuggers read (task table, current task).
    pub fn as_ptr(&self) -> *const T {
        self.value.get()
    }
}
