//! umk, read as a debugger reads it (kernel/TASKS.md, kernel/PROBES.md): the symbols it
//! exports for debuggers, resolved once, and one typed reader per structure — the task
//! table ([`tasks`]), lock headers and classes ([`locks`]), slab caches ([`slab`]).

pub mod locks;
pub mod slab;
pub mod tasks;

pub use tasks::Table;

use crate::binary::Binary;
use crate::error::{Error, Result};
use crate::memory::Memory;
use crate::task::{SavedContext, Task};
use crate::Guest;

/// What [`Error::Layout`] names.
const GUEST: &str = "umk";

/// umk's exported debugger symbols, resolved in one binary.
#[derive(Debug, Clone, Copy)]
pub struct Umk {
    /// `UMK_TASKS`: the task table.
    tasks: u64,
    /// `UMK_CURRENT`: index of the running task.
    current: u64,
    /// `UMK_NR_TASKS`: the table's number of slots.
    nr_tasks: u64,
    /// `UMK_TASK_SIZE`: the size of one slot, checked against [`tasks::TASK_SIZE`].
    task_size: u64,
    /// `UMK_SLAB_CACHES`, if this umk has a slab allocator to describe.
    caches: Option<u64>,
    /// Where `umk_switch_to` continues a task switched back to: right after its
    /// `mov rsp, rsi`, before the pops (kernel/src/arch/switch.rs).
    switch_resume: Option<u64>,
}

/// `mov rsp, rsi`: the switch's move onto the next task's saved frame.
const MOV_RSP_RSI: [u8; 3] = [0x48, 0x89, 0xf4];

/// The gdb Python that unwinds umk's context switch and ends a task's backtrace at its
/// trampoline (`Guest::gdb_script`).
const GDB_SCRIPT: &str = include_str!("gdb_frames.py");

impl Umk {
    /// umk's symbols in `bin`; an error when it is not umk (it lacks the task table).
    pub fn new(bin: &Binary) -> Result<Umk> {
        Ok(Umk {
            tasks: bin.require("UMK_TASKS")?,
            current: bin.require("UMK_CURRENT")?,
            nr_tasks: bin.require("UMK_NR_TASKS")?,
            task_size: bin.require("UMK_TASK_SIZE")?,
            caches: bin.address("UMK_SLAB_CACHES"),
            switch_resume: bin.address("umk_switch_to").and_then(|at| {
                let (start, code) = bin.function_code(at)?;
                let i = code.windows(3).position(|w| w == MOV_RSP_RSI)?;
                Some(start + i as u64 + 3)
            }),
        })
    }
}

fn layout(what: String) -> Error {
    Error::Layout { guest: GUEST, what }
}

impl Guest for Umk {
    fn name(&self) -> &'static str {
        GUEST
    }

    fn tasks(&self, mem: &dyn Memory) -> Result<Vec<Task>> {
        self.table(mem)?.tasks(mem)
    }

    fn saved_context(&self, task: &Task, mem: &dyn Memory) -> Option<SavedContext> {
        if task.current {
            return None;
        }
        tasks::saved_context(mem, task.saved_sp, self.switch_resume)
    }

    fn gdb_script(&self) -> Option<&'static str> {
        Some(GDB_SCRIPT)
    }
}
