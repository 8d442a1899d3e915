//! The scheduler: a round-robin run queue over the task table, blocking and waking,
//! kernel-thread creation and exit, and preemption at preemption points when the timer
//! has asked for it. Uniprocessor: "atomic" means preemption disabled.

pub mod task;
pub mod timer;
pub mod wait;

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::arch::switch;
use crate::mm::page;
use crate::sync::global::Global;
use task::{with_tasks, State, Task, WaitKind, MAX_TASKS, TASK_KTHREAD};

pub use task::{current, current_pid};

/// Pages in each kernel stack (64 KiB: debug builds keep large frames).
const STACK_PAGES: usize = 16;
/// Ticks a task may run before the timer asks for preemption.
const TIMESLICE: u32 = 2;

static PREEMPT_COUNT: AtomicU32 = AtomicU32::new(0);
static NEED_RESCHED: AtomicBool = AtomicBool::new(false);
static STARTED: AtomicBool = AtomicBool::new(false);
static SLICE_LEFT: AtomicU32 = AtomicU32::new(TIMESLICE);
static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// FIFO of runnable task indices (excluding the running one).
struct RunQueue {
    ring: [u8; MAX_TASKS],
    head: usize,
    len: usize,
}

static RUNQUEUE: Global<RunQueue> = Global::new(
    "run queue",
    RunQueue {
        ring: [0; MAX_TASKS],
        head: 0,
        len: 0,
    },
);

impl RunQueue {
    fn push(&mut self, idx: usize) {
        if self.iter().any(|i| i == idx) {
            return;
        }
        let tail = (self.head + self.len) % MAX_TASKS;
        self.ring[tail] = idx as u8;
        self.len += 1;
    }

    fn pop(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let idx = self.ring[self.head] as usize;
        self.head = (self.head + 1) % MAX_TASKS;
        self.len -= 1;
        Some(idx)
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).map(move |i| self.ring[(self.head + i) % MAX_TASKS] as usize)
    }
}

pub fn preempt_disable() {
    PREEMPT_COUNT.fetch_add(1, Ordering::Relaxed);
}

pub fn preempt_enable() {
    PREEMPT_COUNT.fetch_sub(1, Ordering::Relaxed);
}

pub fn preempt_count() -> u32 {
    PREEMPT_COUNT.load(Ordering::Relaxed)
}

/// Whether any task other than the running one can run.
pub fn has_runnable() -> bool {
    RUNQUEUE.with(|rq| rq.len > 0)
}

/// Called by the timer interrupt on every tick.
pub(crate) fn timer_tick() {
    if SLICE_LEFT.load(Ordering::Relaxed) <= 1 {
        SLICE_LEFT.store(TIMESLICE, Ordering::Relaxed);
        NEED_RESCHED.store(true, Ordering::Relaxed);
    } else {
        SLICE_LEFT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Preempts the running task if the timer asked for it and preemption is allowed.
pub(crate) fn maybe_preempt() {
    if NEED_RESCHED.load(Ordering::Relaxed)
        && preempt_count() == 0
        && STARTED.load(Ordering::Relaxed)
        && !crate::irq::in_irq()
    {
        schedule();
    }
}

/// The probe point for every context switch (kernel/PROBES.md): `prev` and `next` are
/// task-table indices.
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_context_switch(prev: usize, next: usize) {
    core::hint::black_box((prev, next));
}

/// Gives up the CPU: the current task goes to the back of the run queue if it is still
/// runnable, and the next runnable task (or the idle task) runs.
pub fn schedule() {
    crate::exec_point::count_point();
    if preempt_count() != 0 {
        let cur = current();
        let (pid, name_buf) = with_tasks(|t| (t[cur].pid, t[cur].name));
        let name = core::str::from_utf8(&name_buf)
            .unwrap_or("?")
            .trim_end_matches('\0');
        panic!(
            "BUG: scheduling while atomic: {name}/{pid}/0x{:08x}",
            preempt_count()
        );
    }
    NEED_RESCHED.store(false, Ordering::Relaxed);
    SLICE_LEFT.store(TIMESLICE, Ordering::Relaxed);
    let prev = current();
    let prev_runnable = with_tasks(|t| t[prev].state == State::Running);
    let next = RUNQUEUE.with(|rq| {
        if prev_runnable && prev != 0 {
            rq.push(prev);
        }
        rq.pop()
    });
    let next = match next {
        Some(n) => n,
        None if prev_runnable => return, // only the idle task can run, and it is running
        None => 0,
    };
    if next == prev {
        return;
    }
    let (prev_slot, next_rsp) = with_tasks(|t| {
        t[next].switches += 1;
        let base = t.as_mut_ptr();
        // Pointer to prev's saved_rsp, taken while the table is borrowed and used after.
        // SAFETY: `prev` indexes the table; the pointer stays valid (static storage).
        let slot = unsafe { core::ptr::addr_of_mut!((*base.add(prev)).saved_rsp) };
        (slot, t[next].saved_rsp)
    });
    umk_context_switch(prev, next);
    task::UMK_CURRENT.store(next as u32, Ordering::Relaxed);
    // SAFETY: prev_slot is the current task's slot and next_rsp a frame saved by a switch
    // or prepared by `spawn`; both stacks are live (dead tasks are reaped only by idle).
    unsafe { switch::switch_to(prev_slot, next_rsp) };
}

/// Blocks the current task in `state` until someone calls [`wake`]; records what it
/// waits on so that ps, sysrq-t, the hung-task detector and debuggers can say.
pub fn block(state: State, kind: WaitKind, obj: u64, what: &str) {
    let jiffies = crate::time::jiffies();
    task::with_current(|t| {
        t.state = state;
        t.set_wait(kind, obj, what);
        t.blocked_since = jiffies;
    });
    schedule();
}

/// Makes a blocked task runnable. Returns whether it was blocked.
pub fn wake(idx: usize) -> bool {
    let woke = with_tasks(|t| {
        let task = &mut t[idx];
        if matches!(task.state, State::Interruptible | State::Uninterruptible) {
            task.state = State::Running;
            task.set_wait(WaitKind::None, 0, "");
            task.hung_reported = 0;
            true
        } else {
            false
        }
    });
    if woke {
        RUNQUEUE.with(|rq| rq.push(idx));
        NEED_RESCHED.store(true, Ordering::Relaxed);
    }
    woke
}

/// Sleeps for `ticks` jiffies (interruptibly, as `msleep_interruptible`).
pub fn sleep_jiffies(ticks: u64) {
    let deadline = crate::time::jiffies() + ticks.max(1);
    let me = current();
    task::with_current(|t| t.wake_at = deadline);
    timer::add(deadline, me);
    block(State::Interruptible, WaitKind::Sleep, deadline, "sleep");
}

pub fn sleep_ms(ms: u64) {
    sleep_jiffies(crate::time::ms_to_jiffies(ms));
}

/// Voluntarily yields the CPU to other runnable tasks.
pub fn yield_now() {
    schedule();
}

/// Takes the boot context as the idle task (pid 0, "swapper") and enables scheduling.
pub fn init_idle() {
    with_tasks(|t| {
        let idle = &mut t[0];
        *idle = Task::EMPTY;
        idle.state = State::Running;
        idle.pid = 0;
        idle.flags = task::TASK_IDLE | TASK_KTHREAD;
        idle.set_name("swapper");
    });
    STARTED.store(true, Ordering::Relaxed);
}

/// Creates a kernel thread running `f`; returns its pid.
pub fn spawn(name: &str, f: impl FnOnce() + 'static) -> Result<u32, SpawnError> {
    let boxed: Box<Box<dyn FnOnce()>> = Box::new(Box::new(f));
    let stack = page::alloc_pages(STACK_PAGES).ok_or(SpawnError::NoMemory)?;
    let (lo, hi) = (
        stack as u64,
        stack as u64 + (STACK_PAGES * page::PAGE_SIZE) as u64,
    );
    let arg = Box::into_raw(boxed) as usize;
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    let slot = with_tasks(|t| {
        let idx = (1..MAX_TASKS).find(|&i| t[i].state == State::Unused)?;
        let task = &mut t[idx];
        *task = Task::EMPTY;
        task.pid = pid;
        task.flags = TASK_KTHREAD;
        task.set_name(name);
        task.stack_lo = lo;
        task.stack_hi = hi;
        // SAFETY: the stack was just allocated for this task and is not shared.
        task.saved_rsp = unsafe { switch::prepare_stack(lo, hi, task_entry, arg) };
        task.state = State::Running;
        Some(idx)
    });
    let Some(idx) = slot else {
        page::free_pages(stack, STACK_PAGES);
        // SAFETY: `arg` came from Box::into_raw above and was not handed to any task.
        drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce()>) });
        return Err(SpawnError::TooManyTasks);
    };
    RUNQUEUE.with(|rq| rq.push(idx));
    Ok(pid)
}

#[derive(Debug, Clone, Copy)]
pub enum SpawnError {
    NoMemory,
    TooManyTasks,
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::NoMemory => write!(f, "out of memory for a kernel stack"),
            SpawnError::TooManyTasks => write!(f, "task table full ({MAX_TASKS} slots)"),
        }
    }
}

extern "C" fn task_entry(arg: usize) -> ! {
    // SAFETY: `arg` is the Box::into_raw pointer `spawn` passed to this task only.
    let f = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce()>) };
    f();
    exit_current()
}

/// The probe point for a task's end (kernel/PROBES.md): `pid` and the number of locks it
/// still holds.
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_task_exit(pid: u32, held: u32) {
    core::hint::black_box((pid, held, 1u32));
}

/// Ends the current task. Its stack is freed later by the idle task (it is still in use).
pub fn exit_current() -> ! {
    let (pid, held) = task::with_current(|t| {
        t.state = State::Dead;
        (t.pid, t.held_count)
    });
    umk_task_exit(pid, held);
    if held > 0 {
        crate::sync::lockdep_report_held_at_exit(pid);
    }
    schedule();
    unreachable!("dead task {pid} was scheduled again");
}

/// Frees the stacks of dead tasks and releases their slots (run by the idle task).
pub fn reap_dead() {
    let cur = current();
    let mut stacks = [(0u64, 0u64); MAX_TASKS];
    let mut n = 0;
    with_tasks(|t| {
        for (i, task) in t.iter_mut().enumerate() {
            if task.state == State::Dead && i != cur {
                stacks[n] = (task.stack_lo, task.stack_hi);
                n += 1;
                *task = Task::EMPTY;
            }
        }
    });
    for &(lo, _) in &stacks[..n] {
        page::free_pages(lo as usize, STACK_PAGES);
    }
}

/// Finds a live task by pid.
pub fn find_pid(pid: u32) -> Option<usize> {
    with_tasks(|t| {
        t.iter().position(|task| {
            task.pid == pid
                && !matches!(task.state, State::Unused | State::Dead)
                && (pid != 0 || task.flags & task::TASK_IDLE != 0)
        })
    })
}
