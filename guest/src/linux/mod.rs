//! Linux built as User-Mode Linux (ARCH=um), read as `lx-ps` and gdb's thread list read
//! it: every task on `init_task.tasks` and each process's threads (`signal->thread_head`),
//! with pid, `comm`, scheduler state and context switches; the running one is UML's
//! `cpu_tasks[0].task` (what `__switch_to` sets); a sleeping task resumes from the
//! registers `switch_threads` saved in `thread.switch_buf`. Every offset comes from the
//! kernel's own DWARF (`dwarf`), so the reader follows its build and config.
//!
//! [`lockdep`] reads lockdep's classes and the points where its graph grows.
//!
//! All of a UML kernel's tasks run on the one host thread that the recording follows, as
//! umk's do, so each is a gdb thread of the one replayed process.

pub mod lockdep;

use std::collections::BTreeSet;

use crate::binary::Binary;
use crate::error::{Error, Result};
use crate::memory::{self, c_str, le_u32, le_u64, Memory};
use crate::task::{SavedContext, Task, TaskState, Wait, WaitKind};
use crate::Guest;

/// What [`Error::Layout`] names.
const GUEST: &str = "linux";
/// More tasks than any UML kernel runs: a longer list is a corrupt one.
const MAX_TASKS: usize = 1 << 16;
/// A `task_struct` is about 7 KiB with lockdep; one past this is not a kernel's.
const MAX_TASK_BYTES: u64 = 1 << 20;
/// `TASK_COMM_LEN`.
const COMM_LEN: usize = 16;

/// `task_struct::__state` bits (include/linux/sched.h).
mod state {
    pub const INTERRUPTIBLE: u32 = 0x1;
    pub const UNINTERRUPTIBLE: u32 = 0x2;
    pub const STOPPED: u32 = 0x4;
    pub const TRACED: u32 = 0x8;
    pub const DEAD: u32 = 0x80;
    pub const PARKED: u32 = 0x40;
    pub const NOLOAD: u32 = 0x400;
    /// `exit_state`: EXIT_DEAD, EXIT_ZOMBIE.
    pub const EXIT_DEAD: u32 = 0x10;
    pub const EXIT_ZOMBIE: u32 = 0x20;
}

/// Where the fields this reader uses lie, from DWARF.
#[derive(Debug, Clone, Copy)]
struct Offsets {
    /// `task_struct`: its size, and its members.
    task_size: u64,
    tasks: u64,
    pid: u64,
    comm: u64,
    state: u64,
    exit_state: u64,
    signal: u64,
    thread_node: u64,
    nvcsw: u64,
    nivcsw: u64,
    /// The eight registers of `thread.switch_buf` in `task_struct`, in
    /// [`SavedContext`]'s order: rip, rsp, rbp, rbx, r12, r13, r14, r15.
    regs: [u64; 8],
    /// `signal_struct::thread_head`.
    thread_head: u64,
}

/// A UML kernel's symbols and structure layout, resolved once.
#[derive(Debug, Clone, Copy)]
pub struct Linux {
    init_task: u64,
    cpu_tasks: u64,
    at: Offsets,
}

fn layout(what: String) -> Error {
    Error::Layout { guest: GUEST, what }
}

impl Linux {
    /// The kernel in `bin`: an error when it is not a UML kernel with DWARF.
    pub fn new(bin: &Binary) -> Result<Linux> {
        let init_task = bin.require("init_task")?;
        let cpu_tasks = bin.require("cpu_tasks")?;
        bin.require("linux_banner")?;
        let l = crate::dwarf::layouts(
            bin.path(),
            &["task_struct", "thread_struct", "__jmp_buf", "signal_struct"],
        )?;
        let (task, thread, jb, signal) = (
            &l["task_struct"],
            &l["thread_struct"],
            &l["__jmp_buf"],
            &l["signal_struct"],
        );
        // Overflowing sums land outside the task, where the check below refuses them.
        let switch_buf = task
            .offset("thread")?
            .wrapping_add(thread.offset("switch_buf")?);
        let mut regs = [0u64; 8];
        for (r, name) in regs.iter_mut().zip([
            "__rip", "__rsp", "__rbp", "__rbx", "__r12", "__r13", "__r14", "__r15",
        ]) {
            *r = switch_buf.wrapping_add(jb.offset(name)?);
        }
        let at = Offsets {
            task_size: task.size,
            tasks: task.offset("tasks")?,
            pid: task.offset("pid")?,
            comm: task.offset("comm")?,
            state: task.offset("__state")?,
            exit_state: task.offset("exit_state")?,
            signal: task.offset("signal")?,
            thread_node: task.offset("thread_node")?,
            nvcsw: task.offset("nvcsw")?,
            nivcsw: task.offset("nivcsw")?,
            regs,
            thread_head: signal.offset("thread_head")?,
        };
        // Everything read out of one task must lie inside it.
        let fits = |off: u64, len: u64| off.checked_add(len).is_some_and(|e| e <= at.task_size);
        let inside = [
            (at.tasks, 16),
            (at.pid, 4),
            (at.comm, COMM_LEN as u64),
            (at.state, 4),
            (at.exit_state, 4),
            (at.signal, 8),
            (at.thread_node, 16),
            (at.nvcsw, 8),
            (at.nivcsw, 8),
        ];
        // Each task is read whole: a size no kernel has would make that unbounded.
        if at.task_size > MAX_TASK_BYTES {
            return Err(layout(format!(
                "task_struct is {} bytes, more than {MAX_TASK_BYTES}",
                at.task_size
            )));
        }
        if inside.iter().any(|&(o, n)| !fits(o, n)) || at.regs.iter().any(|&o| !fits(o, 8)) {
            return Err(layout(format!(
                "a task_struct member lies past its {} bytes",
                at.task_size
            )));
        }
        Ok(Linux {
            init_task,
            cpu_tasks,
            at,
        })
    }

    /// The entries of the circular list whose head is at `head`, as the addresses of the
    /// structures that hold them (`node` bytes in), head excluded.
    fn list(&self, mem: &dyn Memory, head: u64, node: u64, what: &'static str) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut at = memory::u64_at(mem, head, what)?;
        while at != head {
            if out.len() >= MAX_TASKS || !seen.insert(at) {
                return Err(layout(format!(
                    "the list at {head:#x} ({what}) does not close"
                )));
            }
            out.push(at.wrapping_sub(node));
            at = memory::u64_at(mem, at, what)?;
        }
        Ok(out)
    }

    /// Every task: each process on `init_task.tasks` (init_task first), then its threads.
    fn task_addresses(&self, mem: &dyn Memory) -> Result<Vec<u64>> {
        let a = &self.at;
        let mut processes = vec![self.init_task];
        processes.extend(self.list(
            mem,
            self.init_task.wrapping_add(a.tasks),
            a.tasks,
            "task_struct.tasks",
        )?);
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for p in processes {
            let signal = memory::u64_at(mem, p.wrapping_add(a.signal), "task_struct.signal")?;
            let threads = self.list(
                mem,
                signal.wrapping_add(a.thread_head),
                a.thread_node,
                "signal_struct.thread_head",
            )?;
            // A process is its threads' list; one whose list is empty (not yet linked)
            // is still a task.
            for t in std::iter::once(p).chain(threads) {
                if seen.insert(t) {
                    if out.len() >= MAX_TASKS {
                        return Err(layout(format!("more than {MAX_TASKS} tasks")));
                    }
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// One task read whole.
    fn task(&self, mem: &dyn Memory, slot: usize, addr: u64, current: u64) -> Result<Task> {
        let a = &self.at;
        let size = usize::try_from(a.task_size)
            .map_err(|_| layout(format!("task_struct is {} bytes", a.task_size)))?;
        let b = memory::bytes(mem, addr, size, "task_struct")?;
        let at = |o: u64| usize::try_from(o).unwrap_or(usize::MAX);
        let st = le_u32(&b, at(a.state));
        let exit = le_u32(&b, at(a.exit_state));
        Ok(Task {
            slot,
            pid: le_u32(&b, at(a.pid)),
            name: c_str(&b, at(a.comm), COMM_LEN),
            state: task_state(st, exit),
            current: addr == current,
            wait: Wait {
                kind: WaitKind::None,
                obj: 0,
                name: String::new(),
                owner: None,
            },
            held: Vec::new(),
            saved_sp: le_u64(&b, at(a.regs[1])),
            switches: le_u64(&b, at(a.nvcsw)).wrapping_add(le_u64(&b, at(a.nivcsw))),
        })
    }

    /// The running task's pid and `comm` (cheaper than [`Guest::tasks`], for a probe).
    pub fn current(&self, mem: &dyn Memory) -> Result<(u32, String)> {
        let t = memory::u64_at(mem, self.cpu_tasks, "cpu_tasks[0].task")?;
        let pid = memory::u32_at(mem, t.wrapping_add(self.at.pid), "task_struct.pid")?;
        let comm = memory::bytes(
            mem,
            t.wrapping_add(self.at.comm),
            COMM_LEN,
            "task_struct.comm",
        )?;
        Ok((pid, c_str(&comm, 0, COMM_LEN)))
    }

    /// The address of the task a [`Task`] describes (its slot in the last walk).
    fn address_of(&self, task: &Task, mem: &dyn Memory) -> Option<u64> {
        self.task_addresses(mem).ok()?.get(task.slot).copied()
    }
}

/// The state `ps` shows for `__state` and `exit_state` (fs/proc/array.c's letters).
fn task_state(st: u32, exit: u32) -> TaskState {
    if exit & state::EXIT_ZOMBIE != 0 {
        TaskState::Zombie
    } else if exit & state::EXIT_DEAD != 0 || st & state::DEAD != 0 {
        TaskState::Dead
    } else if st == 0 {
        TaskState::Running
    } else if st & (state::UNINTERRUPTIBLE | state::NOLOAD)
        == state::UNINTERRUPTIBLE | state::NOLOAD
    {
        TaskState::Idle
    } else if st & state::UNINTERRUPTIBLE != 0 {
        TaskState::Uninterruptible
    } else if st & state::INTERRUPTIBLE != 0 {
        TaskState::Interruptible
    } else if st & state::STOPPED != 0 {
        TaskState::Stopped
    } else if st & state::TRACED != 0 {
        TaskState::Traced
    } else if st & state::PARKED != 0 {
        TaskState::Parked
    } else {
        // fs/proc/array.c reports any other sleep as what it blocks like.
        TaskState::Uninterruptible
    }
}

impl Guest for Linux {
    fn name(&self) -> &'static str {
        GUEST
    }

    fn tasks(&self, mem: &dyn Memory) -> Result<Vec<Task>> {
        let current = memory::u64_at(mem, self.cpu_tasks, "cpu_tasks[0].task")?;
        self.task_addresses(mem)?
            .into_iter()
            .enumerate()
            .map(|(slot, addr)| self.task(mem, slot, addr, current))
            .collect()
    }

    fn saved_context(&self, task: &Task, mem: &dyn Memory) -> Option<SavedContext> {
        if task.current {
            return None;
        }
        let addr = self.address_of(task, mem)?;
        let r: Vec<u64> = self
            .at
            .regs
            .iter()
            .map(|&o| memory::u64_at(mem, addr.wrapping_add(o), "thread.switch_buf").ok())
            .collect::<Option<_>>()?;
        // A task that never ran has no context yet.
        if r[0] == 0 {
            return None;
        }
        Some(SavedContext {
            rip: r[0],
            rsp: r[1],
            rbp: r[2],
            rbx: r[3],
            r12: r[4],
            r13: r[5],
            r14: r[6],
            r15: r[7],
            // UML switches with setjmp/longjmp: its jmp_buf holds only the caller's view.
            switch: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_ps_letters() {
        let letter = |st, exit| task_state(st, exit).letter();
        assert_eq!(letter(0, 0), 'R');
        assert_eq!(letter(1, 0), 'S');
        assert_eq!(letter(2, 0), 'D');
        assert_eq!(letter(0x402, 0), 'I');
        assert_eq!(letter(0x102, 0), 'D', "TASK_KILLABLE");
        assert_eq!(letter(4, 0), 'T');
        assert_eq!(letter(8, 0), 't');
        assert_eq!(letter(0x40, 0), 'P');
        assert_eq!(letter(0x80, 0x10), 'X');
        assert_eq!(letter(0x80, 0x20), 'Z');
    }
}
