//! The task table: one fixed array of `#[repr(C)]` slots, exported as `UMK_TASKS` with the
//! index of the running task in `UMK_CURRENT`, so that a debugger can walk it without help
//! from the kernel (layout documented in kernel/TASKS.md and checked by `UMK_TASK_SIZE`).

use core::sync::atomic::{AtomicU32, Ordering};

use crate::sync::global::Global;

pub const MAX_TASKS: usize = 64;
pub const NAME_LEN: usize = 16;
pub const WAIT_NAME_LEN: usize = 24;
pub const MAX_HELD: usize = 8;

/// Task states, as `ps` and debuggers show them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Unused = 0,
    Running = 1,
    Interruptible = 2,
    Uninterruptible = 3,
    Dead = 4,
}

impl State {
    pub fn letter(self) -> char {
        match self {
            State::Unused => '-',
            State::Running => 'R',
            State::Interruptible => 'S',
            State::Uninterruptible => 'D',
            State::Dead => 'X',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Unused => "UNUSED",
            State::Running => "RUNNING",
            State::Interruptible => "INTERRUPTIBLE",
            State::Uninterruptible => "UNINTERRUPTIBLE",
            State::Dead => "DEAD",
        }
    }
}

/// What a blocked task waits on.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    None = 0,
    Mutex = 1,
    WaitQueue = 2,
    Sleep = 3,
    Io = 4,
}

impl WaitKind {
    pub fn name(self) -> &'static str {
        match self {
            WaitKind::None => "",
            WaitKind::Mutex => "mutex",
            WaitKind::WaitQueue => "waitqueue",
            WaitKind::Sleep => "sleep",
            WaitKind::Io => "io",
        }
    }
}

/// One task slot. Field offsets are ABI (kernel/TASKS.md).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Task {
    pub state: State,
    pub pid: u32,
    pub name: [u8; NAME_LEN],
    /// Stack pointer of the saved context frame (arch/switch.rs) while not running.
    pub saved_rsp: u64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub wait_kind: WaitKind,
    pub flags: u32,
    /// Address of the lock or wait queue the task is blocked on.
    pub wait_obj: u64,
    pub wait_name: [u8; WAIT_NAME_LEN],
    /// Jiffies when the task last blocked.
    pub blocked_since: u64,
    pub wake_at: u64,
    pub switches: u64,
    /// Addresses of the locks this task holds, innermost last.
    pub held: [u64; MAX_HELD],
    pub held_count: u32,
    pub hung_reported: u32,
}

/// `flags` bits.
pub const TASK_KTHREAD: u32 = 1;
pub const TASK_IDLE: u32 = 2;

impl Task {
    pub const EMPTY: Task = Task {
        state: State::Unused,
        pid: 0,
        name: [0; NAME_LEN],
        saved_rsp: 0,
        stack_lo: 0,
        stack_hi: 0,
        wait_kind: WaitKind::None,
        flags: 0,
        wait_obj: 0,
        wait_name: [0; WAIT_NAME_LEN],
        blocked_since: 0,
        wake_at: 0,
        switches: 0,
        held: [0; MAX_HELD],
        held_count: 0,
        hung_reported: 0,
    };

    pub fn name(&self) -> &str {
        cstr(&self.name)
    }

    pub fn wait_name(&self) -> &str {
        cstr(&self.wait_name)
    }

    pub fn set_name(&mut self, name: &str) {
        copy_cstr(&mut self.name, name);
    }

    pub fn set_wait(&mut self, kind: WaitKind, obj: u64, name: &str) {
        self.wait_kind = kind;
        self.wait_obj = obj;
        copy_cstr(&mut self.wait_name, name);
    }
}

fn cstr(b: &[u8]) -> &str {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(&b[..n]).unwrap_or("?")
}

fn copy_cstr(dst: &mut [u8], src: &str) {
    dst.fill(0);
    let n = src.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&src.as_bytes()[..n]);
}

#[no_mangle]
pub static UMK_TASKS: Global<[Task; MAX_TASKS]> =
    Global::new("task table", [Task::EMPTY; MAX_TASKS]);

/// Index in `UMK_TASKS` of the task that is running.
#[no_mangle]
pub static UMK_CURRENT: AtomicU32 = AtomicU32::new(0);

/// Size of one slot and the number of slots, so a debugger can check the layout it
/// expects against the binary it reads.
#[no_mangle]
#[used]
pub static UMK_TASK_SIZE: u64 = core::mem::size_of::<Task>() as u64;
#[no_mangle]
#[used]
pub static UMK_NR_TASKS: u64 = MAX_TASKS as u64;

pub fn current() -> usize {
    UMK_CURRENT.load(Ordering::Relaxed) as usize
}

/// Runs `f` on the task table.
pub fn with_tasks<R>(f: impl FnOnce(&mut [Task; MAX_TASKS]) -> R) -> R {
    UMK_TASKS.with(f)
}

/// Runs `f` on the current task's slot.
pub fn with_current<R>(f: impl FnOnce(&mut Task) -> R) -> R {
    let cur = current();
    UMK_TASKS.with(|t| f(&mut t[cur]))
}

/// A copy of one slot, for reports.
pub fn snapshot(idx: usize) -> Task {
    UMK_TASKS.with(|t| t[idx])
}

/// The pid of the current task.
pub fn current_pid() -> u32 {
    with_current(|t| t.pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// kernel/TASKS.md documents these offsets for debuggers.
    #[test]
    fn layout_matches_tasks_md() {
        assert_eq!(size_of::<Task>(), 184);
        assert_eq!(offset_of!(Task, pid), 4);
        assert_eq!(offset_of!(Task, name), 8);
        assert_eq!(offset_of!(Task, saved_rsp), 24);
        assert_eq!(offset_of!(Task, stack_lo), 32);
        assert_eq!(offset_of!(Task, stack_hi), 40);
        assert_eq!(offset_of!(Task, wait_kind), 48);
        assert_eq!(offset_of!(Task, flags), 52);
        assert_eq!(offset_of!(Task, wait_obj), 56);
        assert_eq!(offset_of!(Task, wait_name), 64);
        assert_eq!(offset_of!(Task, blocked_since), 88);
        assert_eq!(offset_of!(Task, wake_at), 96);
        assert_eq!(offset_of!(Task, switches), 104);
        assert_eq!(offset_of!(Task, held), 112);
        assert_eq!(offset_of!(Task, held_count), 176);
        assert_eq!(offset_of!(Task, hung_reported), 180);
    }
}
