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
}

impl Umk {
    /// umk's symbols in `bin`; an error when it is not umk (it lacks the task table).
    pub fn new(bin: &Binary) -> Result<Umk> {
        Ok(Umk {
            tasks: bin.require("UMK_TASKS")?,
            current: bin.require("UMK_CURRENT")?,
            nr_tasks: bin.require("UMK_NR_TASKS")?,
            task_size: bin.require("UMK_TASK_SIZE")?,
            caches: bin.address("UMK_SLAB_CACHES"),
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
        tasks::saved_context(mem, task.saved_sp)
    }
}
