//! umk's task table, read from a replay's memory as a debugger reads it
//! (kernel/TASKS.md): `UMK_TASKS`, `UMK_CURRENT`, and each task's state, name, what it
//! waits on (and who holds it) and its saved context.

use crate::error::{Error, Result};
use crate::symbols::Symbols;

/// `size_of::<Task>()` that this reader knows.
pub const TASK_SIZE: u64 = 184;

/// `Task::state` values (kernel/TASKS.md).
pub const STATE_RUNNING: u32 = 1;
/// A task that ended; its slot is not reused yet.
pub const STATE_DEAD: u32 = 4;

/// `Task::wait_kind` values.
const WAIT_MUTEX: u32 = 1;
const WAIT_QUEUE: u32 = 2;
const WAIT_SLEEP: u32 = 3;
const WAIT_IO: u32 = 4;

/// Lock header: the holder's pid (kernel/PROBES.md).
const LOCK_OWNER: u64 = 12;

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
    /// 0 none, 1 mutex, 2 wait queue, 3 sleep, 4 I/O.
    pub wait_kind: u32,
    /// The lock header or wait queue it waits on (sleep: the deadline in jiffies).
    pub wait_obj: u64,
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

    /// The registers a switched-out task resumes with, from the context frame at
    /// `saved_rsp` (kernel/TASKS.md); `None` for the running task, whose registers are
    /// the live ones.
    pub fn saved_context(
        &self,
        read: impl Fn(u64, usize) -> Option<Vec<u8>>,
    ) -> Option<SavedContext> {
        if self.current {
            return None;
        }
        SavedContext::read(self.saved_rsp, read)
    }

    /// What a blocked task waits on, as a kernel developer says it: "waiting on mutex
    /// abba_lock_b held by pid 4", "sleeping until jiffy 250"; `None` when it does not
    /// wait. `running` is whether it is the task on the CPU.
    pub fn wait_description(
        &self,
        running: bool,
        read: impl Fn(u64, usize) -> Option<Vec<u8>>,
    ) -> Option<String> {
        if self.state == STATE_RUNNING && !running {
            // Woken but not yet run: the wait fields are stale.
            return None;
        }
        let what = match self.wait_kind {
            WAIT_MUTEX => "mutex",
            WAIT_QUEUE => "wait queue",
            WAIT_SLEEP => return Some(format!("sleeping until jiffy {}", self.wait_obj)),
            WAIT_IO => "I/O",
            _ => return None,
        };
        let mut s = format!("waiting on {what} {}", self.wait_name);
        if self.wait_kind == WAIT_MUTEX {
            let owner = read(self.wait_obj + LOCK_OWNER, 4)
                .and_then(|b| Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?)));
            if let Some(owner @ 1..) = owner {
                s.push_str(&format!(" held by pid {owner}"));
            }
        }
        Some(s)
    }
}

/// The callee-saved registers a switched-out task resumes with; the caller-saved ones are
/// not preserved across a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SavedContext {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

impl SavedContext {
    /// Bytes of the frame the switch pushes: r15 r14 r13 r12 rbx rbp, return address.
    const FRAME: usize = 56;

    /// Reads the frame at `saved_rsp`; `None` for a null or unreadable one.
    pub fn read(
        saved_rsp: u64,
        read: impl Fn(u64, usize) -> Option<Vec<u8>>,
    ) -> Option<SavedContext> {
        if saved_rsp == 0 {
            return None;
        }
        let b = read(saved_rsp, Self::FRAME)?;
        let at = |i: usize| {
            Some(u64::from_le_bytes(
                b.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        Some(SavedContext {
            r15: at(0)?,
            r14: at(1)?,
            r13: at(2)?,
            r12: at(3)?,
            rbx: at(4)?,
            rbp: at(5)?,
            rip: at(6)?,
            rsp: saved_rsp + Self::FRAME as u64,
        })
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
    // Reads may come back short (unmapped memory): never index past what was read.
    let u64_at = |a: u64| {
        let b = read(a, 8)?;
        Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
    };
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
        .and_then(|b| Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?)))
        .ok_or_else(|| bad("UMK_CURRENT unreadable"))?;
    let bytes = read(table, n * TASK_SIZE as usize)
        .filter(|b| b.len() >= n * TASK_SIZE as usize)
        .ok_or_else(|| bad("UMK_TASKS unreadable"))?;
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
            wait_kind: u32_(48),
            wait_obj: u64_(56),
            wait_name: cstr(64, 24),
            saved_rsp: u64_(24),
            switches: u64_(104),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Sparse memory: bytes at addresses; a read stops at the first missing byte.
    #[derive(Default)]
    struct Fake(BTreeMap<u64, u8>);

    impl Fake {
        fn put(&mut self, addr: u64, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                self.0.insert(addr + i as u64, *b);
            }
        }

        fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
            Some(
                (0..len as u64)
                    .map_while(|i| self.0.get(&(addr + i)).copied())
                    .collect(),
            )
        }
    }

    fn task(fake: &mut Fake, base: u64, slot: u64, state: u32, pid: u32, name: &str) {
        let t = base + slot * TASK_SIZE;
        fake.put(t, &state.to_le_bytes());
        fake.put(t + 4, &pid.to_le_bytes());
        fake.put(t + 8, name.as_bytes());
    }

    #[test]
    fn reads_tasks_and_describes_a_mutex_wait_with_its_holder() {
        let mut m = Fake::default();
        let base = 0x1000;
        m.put(base, &vec![0; 64 * TASK_SIZE as usize]);
        task(&mut m, base, 0, STATE_RUNNING, 0, "swapper");
        task(&mut m, base, 3, 3, 3, "abba-1");
        task(&mut m, base, 4, STATE_DEAD, 9, "gone");
        let t3 = base + 3 * TASK_SIZE;
        m.put(t3 + 48, &WAIT_MUTEX.to_le_bytes());
        m.put(t3 + 56, &0x5000u64.to_le_bytes());
        m.put(t3 + 64, b"abba_lock_b");
        m.put(0x5000 + LOCK_OWNER, &4u32.to_le_bytes());
        m.put(0x9000, &0u32.to_le_bytes());
        let syms = Symbols::from_pairs(&[("UMK_TASKS", base), ("UMK_CURRENT", 0x9000)]);
        let tasks = read_tasks(&syms, |a, n| m.read(a, n)).unwrap();
        let names: Vec<_> = tasks.iter().map(|t| (t.slot, t.name.as_str())).collect();
        assert_eq!(names, [(0, "swapper"), (3, "abba-1"), (4, "gone")]);
        assert!(tasks[0].current && !tasks[1].current);
        assert_eq!(
            tasks[1]
                .wait_description(false, |a, n| m.read(a, n))
                .as_deref(),
            Some("waiting on mutex abba_lock_b held by pid 4")
        );
        assert_eq!(tasks[0].wait_description(true, |a, n| m.read(a, n)), None);
    }

    #[test]
    fn a_short_table_is_an_error_not_a_panic() {
        let mut m = Fake::default();
        m.put(0x1000, &[1, 0, 0, 0]);
        m.put(0x9000, &0u32.to_le_bytes());
        let syms = Symbols::from_pairs(&[("UMK_TASKS", 0x1000), ("UMK_CURRENT", 0x9000)]);
        assert!(read_tasks(&syms, |a, n| m.read(a, n)).is_err());
    }

    #[test]
    fn saved_context_follows_the_frame_layout() {
        let mut m = Fake::default();
        let frame: Vec<u8> = (1..=7u64).flat_map(|v| (v * 0x10).to_le_bytes()).collect();
        m.put(0x7000, &frame);
        let c = SavedContext::read(0x7000, |a, n| m.read(a, n)).unwrap();
        assert_eq!((c.r15, c.r12, c.rbx, c.rbp), (0x10, 0x40, 0x50, 0x60));
        assert_eq!((c.rip, c.rsp), (0x70, 0x7000 + 56));
        assert_eq!(SavedContext::read(0, |a, n| m.read(a, n)), None);
        assert_eq!(SavedContext::read(0x7100, |a, n| m.read(a, n)), None);
    }
}
