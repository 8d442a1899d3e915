//! The probe event model: what the collectors (breakpoints on umk's probe functions during
//! a replay, kernel/PROBES.md) hand to the engines. Events arrive in replay order; each
//! carries the replay position it was seen at, the task it ran in, and the return
//! addresses of its stack (innermost first) so that every report can be symbolized and
//! every site jumped to with `rewind replay -i` / `rewind gdb`.
//!
//! The collector resolves what only the live guest knows (class names from the lock
//! header, cache names from `UMK_SLAB_CACHES`, task names from `UMK_TASKS`), so the engines
//! are pure functions of this stream and can be tested without a replay.

use serde::{Deserialize, Serialize};

/// A replay position (`e1234+t567+s3`), as the replayer prints and parses it.
pub use replayer::Position as Pos;

/// A guest task, as the task table names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskRef {
    pub pid: u32,
    pub name: String,
}

impl TaskRef {
    pub fn new(pid: u32, name: &str) -> TaskRef {
        TaskRef {
            pid,
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for TaskRef {
    /// `name/pid`, as lockdep and KASAN print a task.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.pid)
    }
}

/// A lock class: lockdep's static key, identified by its name and definition site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LockClass {
    pub name: String,
    /// Source file of the `lock_class!` that defined it, as the guest recorded it.
    pub file: String,
    pub line: u32,
}

/// Spinlock or sleeping mutex (`kind` in the lock header: 1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockKind {
    Spin,
    Mutex,
}

impl LockKind {
    /// From the lock header's `kind` field; anything unknown is treated as a spinlock,
    /// the kind that can never sleep.
    pub fn from_header(kind: u32) -> LockKind {
        if kind == 2 {
            LockKind::Mutex
        } else {
            LockKind::Spin
        }
    }
}

/// The probes' context bits: 1 = in interrupt context, 2 = interrupts disabled.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Ctx {
    pub in_irq: bool,
    pub irqs_off: bool,
}

impl Ctx {
    pub fn from_bits(bits: u32) -> Ctx {
        Ctx {
            in_irq: bits & 1 != 0,
            irqs_off: bits & 2 != 0,
        }
    }

    /// Task context with interrupts enabled.
    pub const TASK: Ctx = Ctx {
        in_irq: false,
        irqs_off: false,
    };
    /// Interrupt context (interrupts are off in a handler).
    pub const IRQ: Ctx = Ctx {
        in_irq: true,
        irqs_off: true,
    };
}

/// One lock operation's subject: the lock instance and what its header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOp {
    /// Address of the lock header (the instance).
    pub addr: u64,
    pub class: LockClass,
    pub kind: LockKind,
    pub ctx: Ctx,
    /// The class's usage as the guest's own lockdep prints it (`{+.+.}-{3:3}`), when
    /// one said it.
    #[serde(default)]
    pub usage: Option<String>,
}

/// An allocation or free seen by `umk_alloc` / `umk_free`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectOp {
    /// Cache index (0xff = whole pages).
    pub cache_index: u8,
    /// Cache name from `UMK_SLAB_CACHES` (`pages` for 0xff).
    pub cache: String,
    pub ptr: u64,
    pub size: u64,
}

/// General-purpose registers at a crash, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub eflags: u64,
}

impl From<&trace::Gprs> for Regs {
    fn from(g: &trace::Gprs) -> Regs {
        Regs {
            rax: g.rax,
            rbx: g.rbx,
            rcx: g.rcx,
            rdx: g.rdx,
            rsi: g.rsi,
            rdi: g.rdi,
            rbp: g.rbp,
            rsp: g.rsp,
            r8: g.r8,
            r9: g.r9,
            r10: g.r10,
            r11: g.r11,
            r12: g.r12,
            r13: g.r13,
            r14: g.r14,
            r15: g.r15,
            rip: g.rip,
            eflags: g.eflags,
        }
    }
}

impl Regs {
    /// A 64-bit register by its (capstone / Intel) name; sub-registers map to their full
    /// register, which is what an address operand needs.
    pub fn get(&self, name: &str) -> Option<u64> {
        let full = match name {
            "eax" | "ax" | "al" => "rax",
            "ebx" | "bx" | "bl" => "rbx",
            "ecx" | "cx" | "cl" => "rcx",
            "edx" | "dx" | "dl" => "rdx",
            "esi" | "si" | "sil" => "rsi",
            "edi" | "di" | "dil" => "rdi",
            "ebp" | "bp" | "bpl" => "rbp",
            "esp" | "sp" | "spl" => "rsp",
            n => n
                .strip_suffix('d')
                .filter(|b| b.starts_with('r'))
                .unwrap_or(n),
        };
        Some(match full {
            "rax" => self.rax,
            "rbx" => self.rbx,
            "rcx" => self.rcx,
            "rdx" => self.rdx,
            "rsi" => self.rsi,
            "rdi" => self.rdi,
            "rbp" => self.rbp,
            "rsp" => self.rsp,
            "r8" => self.r8,
            "r9" => self.r9,
            "r10" => self.r10,
            "r11" => self.r11,
            "r12" => self.r12,
            "r13" => self.r13,
            "r14" => self.r14,
            "r15" => self.r15,
            "rip" => self.rip,
            _ => return None,
        })
    }

    /// Name and value of every register, in the order a kernel oops prints them.
    pub fn named(&self) -> [(&'static str, u64); 18] {
        [
            ("rip", self.rip),
            ("rsp", self.rsp),
            ("eflags", self.eflags),
            ("rax", self.rax),
            ("rbx", self.rbx),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("rbp", self.rbp),
            ("r8", self.r8),
            ("r9", self.r9),
            ("r10", self.r10),
            ("r11", self.r11),
            ("r12", self.r12),
            ("r13", self.r13),
            ("r14", self.r14),
            ("r15", self.r15),
        ]
    }
}

/// The guest's fatal signal, as the replay ends on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash {
    pub signal: i32,
    /// `si_addr` for SIGSEGV/SIGBUS; `None` for a general protection fault (a
    /// non-canonical address such as slab poison gives si_addr 0 and no address).
    pub fault_addr: Option<u64>,
    pub regs: Regs,
    /// Bytes at `regs.rip` (at least one instruction, 16 is enough), for disassembly.
    pub code: Vec<u8>,
}

/// A task's state and what it waits on, as the guest model reads them.
pub use guest::{TaskState, WaitKind};

/// One task-table entry at the end of the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEnd {
    pub state: TaskState,
    pub wait: WaitKind,
    /// Lock header / wait queue address it waits on.
    pub wait_obj: u64,
    /// Lock class or wait-queue name it waits on.
    pub wait_name: String,
    /// For a mutex wait: the lock header's `owner` field (pid, 0 = free).
    pub wait_owner: Option<u32>,
    /// Lock headers it holds, innermost last (`held` in the task table).
    pub held: Vec<u64>,
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// `umk_lock_acquire`: about to take the lock (and maybe block).
    LockAcquire(LockOp),
    /// `umk_lock_acquired`: the lock is now held by the current task.
    LockAcquired(LockOp),
    /// `umk_lock_release`: about to release.
    LockRelease(LockOp),
    /// The guest's own lockdep (Linux) recorded that `to` was taken while `from` was
    /// held, for the first time; `refused` when that closed a cycle, which lockdep then
    /// reported instead of recording. The ops name classes, their `addr` the class;
    /// `held_at` is where `from` was taken, when lockdep said (a return address).
    LockDependency {
        from: LockOp,
        to: LockOp,
        refused: bool,
        held_at: Option<u64>,
    },
    /// `umk_alloc`.
    Alloc(ObjectOp),
    /// `umk_free` (the object is poisoned with 0x6b).
    Free(ObjectOp),
    /// `umk_context_switch`: `task` is `prev`.
    ContextSwitch { prev: TaskRef, next: TaskRef },
    /// `umk_irq_enter`: 0 timer, 1 I/O.
    IrqEnter { irq: u32 },
    /// `umk_irq_exit`.
    IrqExit { irq: u32 },
    /// The task is exiting (probe `umk_task_exit`).
    TaskExit,
    /// The guest died of a signal at this position.
    Crash(Crash),
    /// The task's table entry at the end of the recording (after all other events).
    TaskState(TaskEnd),
}

/// One probe hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(with = "pos_text")]
    pub pos: Pos,
    pub task: TaskRef,
    /// Return addresses, innermost first (`[rsp]` at the probe, then the rbp chain); for
    /// a crash, the first entry is the faulting rip itself.
    pub stack: Vec<u64>,
    pub kind: EventKind,
}

/// Positions are stored in their replay syntax, the form users paste.
mod pos_text {
    use super::Pos;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(pos: &Pos, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(pos)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Pos, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json_with_replay_positions() {
        let ev = Event {
            pos: "e12+t345+s2".parse().unwrap(),
            task: TaskRef::new(3, "abba-1"),
            stack: vec![0x401000],
            kind: EventKind::IrqEnter { irq: 1 },
        };
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.contains("\"e12+t345+s2\""), "{text}");
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), ev);
    }

    #[test]
    fn register_names_map_to_full_registers() {
        let r = Regs {
            rax: 1,
            r9: 9,
            ..Regs::default()
        };
        assert_eq!(r.get("eax"), Some(1));
        assert_eq!(r.get("r9d"), Some(9));
        assert_eq!(r.get("xmm0"), None);
    }
}
