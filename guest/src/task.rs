//! A guest kernel's task as a debugger shows it, whichever kernel it comes from: its id
//! and name, its scheduler state, what it waits on, the locks it holds, and where its
//! saved registers are.

use serde::{Deserialize, Serialize};

/// Scheduler state, in Linux's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskState {
    /// A slot no task uses (kept so a table can be read whole).
    Unused,
    /// Running or runnable (R).
    Running,
    /// Sleeping, wakeable by a signal (S).
    Interruptible,
    /// Sleeping, not wakeable (D): what a deadlock leaves behind.
    Uninterruptible,
    /// Ended, slot not reused yet (X).
    Dead,
    /// Sleeping without counting as load, as Linux's idle kernel threads do (I).
    Idle,
    /// Stopped by a signal (T).
    Stopped,
    /// Stopped by its tracer (t).
    Traced,
    /// Ended, not yet reaped by its parent (Z).
    Zombie,
    /// A parked kernel thread (P).
    Parked,
}

impl TaskState {
    /// `RUNNING`, `UNINTERRUPTIBLE`, …
    pub fn label(self) -> &'static str {
        match self {
            TaskState::Unused => "UNUSED",
            TaskState::Running => "RUNNING",
            TaskState::Interruptible => "INTERRUPTIBLE",
            TaskState::Uninterruptible => "UNINTERRUPTIBLE",
            TaskState::Dead => "DEAD",
            TaskState::Idle => "IDLE",
            TaskState::Stopped => "STOPPED",
            TaskState::Traced => "TRACED",
            TaskState::Zombie => "ZOMBIE",
            TaskState::Parked => "PARKED",
        }
    }

    /// The one-letter state `ps` prints.
    pub fn letter(self) -> char {
        match self {
            TaskState::Running => 'R',
            TaskState::Interruptible => 'S',
            TaskState::Uninterruptible => 'D',
            TaskState::Dead => 'X',
            TaskState::Unused => '?',
            TaskState::Idle => 'I',
            TaskState::Stopped => 'T',
            TaskState::Traced => 't',
            TaskState::Zombie => 'Z',
            TaskState::Parked => 'P',
        }
    }
}

/// What kind of thing a blocked task waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WaitKind {
    /// It does not wait.
    None,
    /// A sleeping lock.
    Mutex,
    /// A wait queue.
    WaitQueue,
    /// A timed sleep.
    Sleep,
    /// Block I/O.
    Io,
}

/// What a task waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// Its kind.
    pub kind: WaitKind,
    /// The lock or wait queue's address (a sleep: its deadline in jiffies).
    pub obj: u64,
    /// The lock class or wait queue's name.
    pub name: String,
    /// For a mutex: the holder's pid as the lock records it (0 when free).
    pub owner: Option<u32>,
}

/// One task of the guest kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Slot in the kernel's task table.
    pub slot: usize,
    /// Task id (0 is the idle task).
    pub pid: u32,
    /// Name.
    pub name: String,
    /// Scheduler state.
    pub state: TaskState,
    /// Whether it is the task on the CPU.
    pub current: bool,
    /// What it waits on, as its table entry says (stale for a task woken but not run yet;
    /// see [`Task::description`]).
    pub wait: Wait,
    /// Lock addresses it holds, innermost last.
    pub held: Vec<u64>,
    /// Its saved stack pointer (valid while it is not running).
    pub saved_sp: u64,
    /// Times it was switched to.
    pub switches: u64,
}

impl Task {
    /// What a blocked task waits on, as a kernel developer says it: "waiting on mutex
    /// abba_lock_b held by pid 4", "sleeping until jiffy 250"; `None` when it does not
    /// wait (or was woken and has not run since, when the wait fields are stale).
    pub fn wait_description(&self) -> Option<String> {
        self.wait_description_naming(&|pid| format!("pid {pid}"))
    }

    /// [`Task::wait_description`] with the holder of a mutex named by `holder(pid)`: a
    /// debugger names it as its thread list does.
    pub fn wait_description_naming(&self, holder: &dyn Fn(u32) -> String) -> Option<String> {
        if self.state == TaskState::Running && !self.current {
            return None;
        }
        let what = match self.wait.kind {
            WaitKind::Mutex => "mutex",
            WaitKind::WaitQueue => "wait queue",
            WaitKind::Sleep => return Some(format!("sleeping until jiffy {}", self.wait.obj)),
            WaitKind::Io => "I/O",
            WaitKind::None => return None,
        };
        let mut s = format!("waiting on {what} {}", self.wait.name);
        if let Some(owner @ 1..) = self.wait.owner {
            s.push_str(&format!(" held by {}", holder(owner)));
        }
        Some(s)
    }

    /// `info threads` text: name, state letter, whether it runs, and what it waits on.
    pub fn description(&self) -> String {
        self.description_naming(&|pid| format!("pid {pid}"))
    }

    /// [`Task::description`] with a mutex's holder named by `holder(pid)`.
    pub fn description_naming(&self, holder: &dyn Fn(u32) -> String) -> String {
        let mut s = format!("{} {}", self.name, self.state.letter());
        if self.current {
            s.push_str(" running");
        }
        if let Some(w) = self.wait_description_naming(holder) {
            s.push(' ');
            s.push_str(&w);
        }
        s
    }
}

/// The callee-saved registers a switched-out task resumes with in the function that
/// called the context switch; the caller-saved ones are not preserved across a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct SavedContext {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// Where inside the context switch routine the task rests, when a debugger can show
    /// that frame (the guest's [`crate::Guest::gdb_script`] unwinds it to the registers above).
    pub switch: Option<SwitchFrame>,
}

/// A switched-out task inside its context switch: it resumes at `pc` with the stack
/// pointer `sp` (the saved frame), and nothing else of its registers is known there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchFrame {
    /// The instruction it resumes at.
    pub pc: u64,
    /// Its stack pointer there.
    pub sp: u64,
}
