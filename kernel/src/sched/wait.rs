//! Wait queues and completions: how a task sleeps until an event (I/O done, console input,
//! a lock released) and how an interrupt handler or another task wakes it.

use alloc::collections::VecDeque;

use super::task::{State, WaitKind};
use crate::sync::global::Global;

pub struct WaitQueue {
    name: &'static str,
    kind: WaitKind,
    waiters: Global<VecDeque<usize>>,
}

impl WaitQueue {
    pub const fn new(name: &'static str) -> Self {
        WaitQueue {
            name,
            kind: WaitKind::WaitQueue,
            waiters: Global::new("wait queue", VecDeque::new()),
        }
    }

    /// A queue whose waiters wait for I/O (shown as such by ps and the hung-task detector).
    pub const fn new_io(name: &'static str) -> Self {
        WaitQueue {
            name,
            kind: WaitKind::Io,
            waiters: Global::new("wait queue", VecDeque::new()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sleeps until `cond` holds. `cond` is checked before each sleep; the waker runs only
    /// at preemption points, never between the check and the sleep.
    pub fn wait_until(&self, state: State, mut cond: impl FnMut() -> bool) {
        let me = super::current();
        while !cond() {
            self.waiters.with(|w| {
                if !w.contains(&me) {
                    w.push_back(me);
                }
            });
            super::block(state, self.kind, self as *const _ as u64, self.name);
        }
        self.waiters.with(|w| w.retain(|&i| i != me));
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) {
        while let Some(idx) = self.waiters.with(|w| w.pop_front()) {
            super::wake(idx);
        }
    }

    /// Wakes the longest waiter.
    pub fn wake_one(&self) {
        if let Some(idx) = self.waiters.with(|w| w.pop_front()) {
            super::wake(idx);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.with(|w| w.is_empty())
    }
}

/// A one-shot event, as Linux's `struct completion`.
pub struct Completion {
    done: Global<bool>,
    wq: WaitQueue,
}

impl Completion {
    pub const fn new(name: &'static str) -> Self {
        Completion {
            done: Global::new("completion", false),
            wq: WaitQueue::new_io(name),
        }
    }

    pub fn complete(&self) {
        self.done.with(|d| *d = true);
        self.wq.wake_all();
    }

    pub fn is_done(&self) -> bool {
        self.done.with(|d| *d)
    }

    /// Waits uninterruptibly (as I/O waits do), so a completion that never comes shows up
    /// in the hung-task detector.
    pub fn wait(&self) {
        self.wq
            .wait_until(State::Uninterruptible, || self.done.with(|d| *d));
    }
}
