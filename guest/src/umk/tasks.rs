//! umk's task table (kernel/TASKS.md): `UMK_TASKS`, `UMK_CURRENT`, and each slot's state,
//! name, what it waits on (and who holds it), the locks it holds and its saved context.
//! The slot count and size come from the guest's memory, so both are checked before a
//! single slot is trusted.

use super::{layout, Umk};
use crate::error::Result;
use crate::memory::{self, c_str, le_u32, le_u64, Memory};
use crate::task::{SavedContext, Task, TaskState, Wait, WaitKind};

/// `size_of::<Task>()` that this reader knows.
pub const TASK_SIZE: u64 = TASK_BYTES as u64;
/// [`TASK_SIZE`] as a byte count for slices.
const TASK_BYTES: usize = 184;
/// The most slots a table may claim: umk has 64; anything far beyond is corrupt memory,
/// not a bigger kernel.
pub const MAX_TASKS: u64 = 4096;
/// Held locks a slot records.
const HELD_SLOTS: usize = 8;

/// A slot's fields (offsets in kernel/TASKS.md).
mod at {
    pub const STATE: usize = 0;
    pub const PID: usize = 4;
    pub const NAME: usize = 8;
    pub const SAVED_RSP: usize = 24;
    pub const WAIT_KIND: usize = 48;
    pub const WAIT_OBJ: usize = 56;
    pub const WAIT_NAME: usize = 64;
    pub const SWITCHES: usize = 104;
    pub const HELD: usize = 112;
    pub const HELD_COUNT: usize = 176;
}

fn state(v: u32) -> TaskState {
    match v {
        1 => TaskState::Running,
        2 => TaskState::Interruptible,
        3 => TaskState::Uninterruptible,
        4 => TaskState::Dead,
        _ => TaskState::Unused,
    }
}

fn wait_kind(v: u32) -> WaitKind {
    match v {
        1 => WaitKind::Mutex,
        2 => WaitKind::WaitQueue,
        3 => WaitKind::Sleep,
        4 => WaitKind::Io,
        _ => WaitKind::None,
    }
}

/// The task table after its size and slot count were checked once: what a reader that
/// looks at many tasks (the analyzer, at every probe hit) holds on to.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    umk: Umk,
    nr: u64,
}

impl Umk {
    /// The task table, checked: a slot must be the size this reader knows and the count
    /// between 1 and [`MAX_TASKS`].
    pub fn table(&self, mem: &dyn Memory) -> Result<Table> {
        let size = memory::u64_at(mem, self.task_size, "UMK_TASK_SIZE")?;
        if size != TASK_SIZE {
            return Err(layout(format!(
                "a task is {size} bytes (UMK_TASK_SIZE), this reader knows {TASK_SIZE}"
            )));
        }
        let nr = memory::u64_at(mem, self.nr_tasks, "UMK_NR_TASKS")?;
        if !(1..=MAX_TASKS).contains(&nr) {
            return Err(layout(format!(
                "UMK_NR_TASKS is {nr}, not a task count (1 to {MAX_TASKS})"
            )));
        }
        Ok(Table { umk: *self, nr })
    }
}

impl Table {
    /// The number of slots.
    pub fn len(&self) -> u64 {
        self.nr
    }

    /// Whether the table has no slots (never: [`Umk::table`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// The running task's slot, checked to be in the table.
    pub fn current_slot(&self, mem: &dyn Memory) -> Result<u64> {
        let cur = u64::from(memory::u32_at(mem, self.umk.current, "UMK_CURRENT")?);
        if cur >= self.nr {
            return Err(layout(format!(
                "UMK_CURRENT is {cur}, past the table's {} slots",
                self.nr
            )));
        }
        Ok(cur)
    }

    /// The task in `slot` (`None` for an unused slot); `current` is the running slot.
    pub fn task(&self, mem: &dyn Memory, slot: u64, current: u64) -> Result<Option<Task>> {
        if slot >= self.nr {
            return Err(layout(format!(
                "task slot {slot} past the table's {} slots",
                self.nr
            )));
        }
        let raw = memory::bytes(
            mem,
            self.umk.tasks + slot * TASK_SIZE,
            TASK_BYTES,
            "a task-table slot",
        )?;
        Ok(decode(mem, &raw, slot, current))
    }

    /// Every used slot.
    pub fn tasks(&self, mem: &dyn Memory) -> Result<Vec<Task>> {
        let current = self.current_slot(mem)?;
        let size = TASK_BYTES;
        let len = usize::try_from(self.nr).map_or(usize::MAX, |n| n * size);
        let table = memory::bytes(mem, self.umk.tasks, len, "UMK_TASKS")?;
        Ok(table
            .chunks_exact(size)
            .zip(0u64..)
            .filter_map(|(raw, slot)| decode(mem, raw, slot, current))
            .collect())
    }
}

fn decode(mem: &dyn Memory, raw: &[u8], slot: u64, current: u64) -> Option<Task> {
    let state = state(le_u32(raw, at::STATE));
    if state == TaskState::Unused {
        return None;
    }
    let kind = wait_kind(le_u32(raw, at::WAIT_KIND));
    let obj = le_u64(raw, at::WAIT_OBJ);
    let owner = (kind == WaitKind::Mutex && obj != 0)
        .then(|| super::locks::owner(mem, obj).ok())
        .flatten();
    let held_count = usize::try_from(le_u32(raw, at::HELD_COUNT)).map_or(0, |c| c.min(HELD_SLOTS));
    Some(Task {
        slot: usize::try_from(slot).ok()?,
        pid: le_u32(raw, at::PID),
        name: c_str(raw, at::NAME, 16),
        state,
        current: slot == current,
        wait: Wait {
            kind,
            obj,
            name: c_str(raw, at::WAIT_NAME, 24),
            owner,
        },
        held: (0..held_count)
            .map(|i| le_u64(raw, at::HELD + 8 * i))
            .collect(),
        saved_sp: le_u64(raw, at::SAVED_RSP),
        switches: le_u64(raw, at::SWITCHES),
    })
}

/// Bytes of the frame the context switch pushes: r15 r14 r13 r12 rbx rbp, return address.
const FRAME: usize = 56;

/// The context frame at `saved_rsp` (kernel/TASKS.md); `None` for a null or unreadable one.
/// `resume` is where `umk_switch_to` continues a task switched back to, if known.
pub fn saved_context(
    mem: &dyn Memory,
    saved_rsp: u64,
    resume: Option<u64>,
) -> Option<SavedContext> {
    if saved_rsp == 0 {
        return None;
    }
    let b = memory::bytes(mem, saved_rsp, FRAME, "a saved context").ok()?;
    let at = |i: usize| le_u64(&b, i * 8);
    Some(SavedContext {
        r15: at(0),
        r14: at(1),
        r13: at(2),
        r12: at(3),
        rbx: at(4),
        rbp: at(5),
        rip: at(6),
        rsp: saved_rsp.wrapping_add(FRAME as u64),
        switch: resume.map(|pc| crate::SwitchFrame { pc, sp: saved_rsp }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::fake::Fake;
    use crate::Guest;

    const TABLE: u64 = 0x1000;
    const CURRENT: u64 = 0x9000;
    const NR: u64 = 0x9100;
    const SIZE: u64 = 0x9200;

    fn umk() -> Umk {
        Umk {
            tasks: TABLE,
            current: CURRENT,
            nr_tasks: NR,
            task_size: SIZE,
            caches: None,
            switch_resume: None,
        }
    }

    fn memory(nr: u64) -> Fake {
        let mut m = Fake::default();
        m.put(TABLE, &vec![0; usize::try_from(nr).unwrap() * TASK_BYTES]);
        m.put(CURRENT, &0u32.to_le_bytes());
        m.put(NR, &nr.to_le_bytes());
        m.put(SIZE, &TASK_SIZE.to_le_bytes());
        m
    }

    fn task(m: &mut Fake, slot: u64, state: u32, pid: u32, name: &str) -> u64 {
        let t = TABLE + slot * TASK_SIZE;
        m.put(t, &state.to_le_bytes());
        m.put(t + 4, &pid.to_le_bytes());
        m.put(t + 8, name.as_bytes());
        t
    }

    #[test]
    fn reads_tasks_and_describes_a_mutex_wait_with_its_holder() {
        let mut m = memory(64);
        task(&mut m, 0, 1, 0, "swapper");
        let t3 = task(&mut m, 3, 3, 3, "abba-1");
        task(&mut m, 4, 4, 9, "gone");
        m.put(t3 + 48, &1u32.to_le_bytes());
        m.put(t3 + 56, &0x5000u64.to_le_bytes());
        m.put(t3 + 64, b"abba_lock_b");
        m.put(t3 + 112, &0x6000u64.to_le_bytes());
        m.put(t3 + 176, &1u32.to_le_bytes());
        m.put(0x5000 + 12, &4u32.to_le_bytes());
        let tasks = umk().tasks(&m).unwrap();
        let names: Vec<_> = tasks.iter().map(|t| (t.slot, t.name.as_str())).collect();
        assert_eq!(names, [(0, "swapper"), (3, "abba-1"), (4, "gone")]);
        assert!(tasks[0].current && !tasks[1].current);
        assert_eq!(tasks[1].held, [0x6000]);
        assert_eq!(
            tasks[1].description(),
            "abba-1 D waiting on mutex abba_lock_b held by pid 4"
        );
        assert_eq!(tasks[0].description(), "swapper R running");
        assert_eq!(tasks[2].state, TaskState::Dead);
    }

    #[test]
    fn a_short_table_is_an_error_not_a_panic() {
        let mut m = memory(64);
        m.put(NR, &65u64.to_le_bytes());
        assert!(umk().tasks(&m).is_err());
    }

    #[test]
    fn impossible_counts_and_indices_are_errors_not_panics() {
        for nr in [0, MAX_TASKS + 1, u64::MAX] {
            let mut m = memory(4);
            m.put(NR, &nr.to_le_bytes());
            let e = umk().tasks(&m).unwrap_err().to_string();
            assert!(e.contains("UMK_NR_TASKS"), "{e}");
        }
        let mut m = memory(4);
        m.put(CURRENT, &7u32.to_le_bytes());
        let e = umk().tasks(&m).unwrap_err().to_string();
        assert!(e.contains("UMK_CURRENT is 7"), "{e}");
        let table = umk().table(&memory(4)).unwrap();
        assert!(table.task(&memory(4), 4, 0).is_err());
        assert!(table.task(&memory(4), 3, 0).unwrap().is_none());
        let mut m = memory(4);
        m.put(SIZE, &200u64.to_le_bytes());
        let e = umk().tasks(&m).unwrap_err().to_string();
        assert!(e.contains("200 bytes"), "{e}");
    }

    #[test]
    fn saved_context_follows_the_frame_layout() {
        let mut m = Fake::default();
        let frame: Vec<u8> = (1..=7u64).flat_map(|v| (v * 0x10).to_le_bytes()).collect();
        m.put(0x7000, &frame);
        let c = saved_context(&m, 0x7000, Some(0x401010)).unwrap();
        assert_eq!((c.r15, c.r12, c.rbx, c.rbp), (0x10, 0x40, 0x50, 0x60));
        assert_eq!((c.rip, c.rsp), (0x70, 0x7000 + 56));
        let inside = crate::SwitchFrame {
            pc: 0x401010,
            sp: 0x7000,
        };
        assert_eq!(c.switch, Some(inside));
        assert_eq!(saved_context(&m, 0, None), None);
        assert_eq!(saved_context(&m, 0x7100, None), None);
    }
}
