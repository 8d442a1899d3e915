//! umk's task table, read from a replay's memory as a debugger reads it
//! (kernel/TASKS.md): `UMK_TASKS`, `UMK_CURRENT`, and each task's state, name, what it
//! waits on and its saved context.

use crate::error::{Error, Result};
use crate::symbols::Symbols;

/// `size_of::<Task>()` that this reader knows.
pub const TASK_SIZE: u64 = 184;

/// One task of the guest kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Slot in `UMK_TASKS`.
    pub slot: usize,
    /// Task pid (0 is the idle task).
    pub pid: u32,
    /// Name.
    pub name: String,
    /// 1 RUNNING, 2 INTERRUPTIBLE, 3 UNINTERRUPTIBLE, 4 DEAD.
    pub state: u32,
    /// Whether it is the running task.
    pub current: bool,
    /// What it waits on (lock class or wait queue name), if blocked.
    pub wait_name: String,
    /// Saved stack pointer (valid when not running).
    pub saved_rsp: u64,
    /// Times switched to.
    pub switches: u64,
}

impl Task {
    /// Linux-style one-letter state.
    pub fn state_letter(&self) -> char {
        match self.state {
            1 => 'R',
            2 => 'S',
            3 => 'D',
            4 => 'X',
            _ => '?',
        }
    }

    /// Where a sleeping task resumes and its frame pointer: (rip, rsp, rbp) read from the
    /// context frame at `saved_rsp` (r15 r14 r13 r12 rbx rbp ret).
    pub fn saved_context(&self, read_u64: impl Fn(u64) -> Option<u64>) -> Option<(u64, u64, u64)> {
        if self.current || self.saved_rsp == 0 {
            return None;
        }
        let rip = read_u64(self.saved_rsp + 48)?;
        let rbp = read_u64(self.saved_rsp + 40)?;
        Some((rip, self.saved_rsp + 56, rbp))
    }
}

/// Reads the task table with `read` (address, length → bytes).
pub fn read_tasks(
    syms: &Symbols,
    read: impl Fn(u64, usize) -> Option<Vec<u8>>,
) -> Result<Vec<Task>> {
    let table = syms.address("UMK_TASKS")?;
    let current_addr = syms.address("UMK_CURRENT")?;
    let bad = |why: &str| Error::Invalid(format!("umk task table: {why}"));
    let u64_at =
        |a: u64| read(a, 8).map(|b| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])));
    if let Ok(size_addr) = syms.address("UMK_TASK_SIZE") {
        let size = u64_at(size_addr).ok_or_else(|| bad("UMK_TASK_SIZE unreadable"))?;
        if size != TASK_SIZE {
            return Err(bad(&format!(
                "Task is {size} bytes, this reader knows {TASK_SIZE}"
            )));
        }
    }
    let n = syms
        .address("UMK_NR_TASKS")
        .ok()
        .and_then(u64_at)
        .unwrap_or(64)
        .min(256) as usize;
    let current = read(current_addr, 4)
        .map(|b| u32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4])))
        .ok_or_else(|| bad("UMK_CURRENT unreadable"))?;
    let bytes = read(table, n * TASK_SIZE as usize).ok_or_else(|| bad("UMK_TASKS unreadable"))?;
    let mut out = Vec::new();
    for slot in 0..n {
        let t = &bytes[slot * TASK_SIZE as usize..(slot + 1) * TASK_SIZE as usize];
        let u32_ = |o: usize| u32::from_le_bytes(t[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_ = |o: usize| u64::from_le_bytes(t[o..o + 8].try_into().unwrap_or([0; 8]));
        let cstr = |o: usize, len: usize| {
            let s = &t[o..o + len];
            let end = s.iter().position(|&b| b == 0).unwrap_or(len);
            String::from_utf8_lossy(&s[..end]).into_owned()
        };
        let state = u32_(0);
        if state == 0 {
            continue;
        }
        out.push(Task {
            slot,
            pid: u32_(4),
            name: cstr(8, 16),
            state,
            current: slot as u32 == current,
            wait_name: cstr(64, 24),
            saved_rsp: u64_(24),
            switches: u64_(104),
        });
    }
    Ok(out)
}
