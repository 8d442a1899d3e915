//! The guest kernel as a debugger reads it, one model for every consumer: gdb's `bt` and
//! `info threads`, `replay -i`'s `where` and `tasks`, and the analyzer's reports all see
//! the same frames and the same tasks for the same memory.
//!
//! - [`Binary`]: the guest ELF parsed once — symbols both ways (raw, demangled, without
//!   the Rust hash), lines and inlined frames through DWARF, its code, its build-id and
//!   the execution-point ABI it exports.
//! - [`stack`]: the one frame-pointer walker; [`decode`]: a guest's own reports with
//!   their addresses symbolized, as decode_stacktrace.sh does.
//! - [`Guest`]: what every guest kernel tells a debugger (its tasks, a sleeping task's
//!   registers, what a task waits on), read through [`Memory`]. [`umk::Umk`] and
//!   [`linux::Linux`] (UML, its layout from its own DWARF through [`dwarf`]) implement it.
//!
//! Guest memory is hostile in the same way a trace is: every count and pointer read from
//! it is checked before use, and a malformed structure is an [`Error`], never a panic.

#![forbid(unsafe_code)]
#![warn(clippy::cast_possible_truncation)]

pub mod binary;
pub mod console;
pub mod decode;
pub mod dwarf;
pub mod error;
pub mod linux;
pub mod memory;
pub mod stack;
pub mod task;
pub mod ticks;
pub mod umk;

pub use binary::{Binary, Frame, SymbolHit};
pub use error::{Error, Result};
pub use memory::Memory;
pub use task::{SavedContext, SwitchFrame, Task, TaskState, Wait, WaitKind};

/// What a debugger needs from a guest kernel, whichever it is.
pub trait Guest {
    /// The guest kernel's name, for messages ("umk").
    fn name(&self) -> &'static str;

    /// Every task the kernel knows of at this point, dead ones included (a dead task that
    /// still holds a slot is part of a deadlock's story).
    fn tasks(&self, mem: &dyn Memory) -> Result<Vec<Task>>;

    /// The registers a switched-out task resumes with; `None` for the running task, whose
    /// registers are the live ones, and for a task whose saved frame is unreadable.
    fn saved_context(&self, task: &Task, mem: &dyn Memory) -> Option<SavedContext>;

    /// gdb Python that teaches gdb this guest's frames it cannot unwind by itself (a
    /// context switch written in assembly without CFI, a task's first frame), loaded by
    /// `rewind gdb` before it connects.
    fn gdb_script(&self) -> Option<&'static str> {
        None
    }
}

/// The guest kernel `binary` is, if it is one this crate can read: `None` for an ordinary
/// program (its replay still works; there are just no guest tasks to show).
pub fn detect(binary: &Binary) -> Option<Box<dyn Guest>> {
    if let Ok(u) = umk::Umk::new(binary) {
        return Some(Box::new(u));
    }
    linux::Linux::new(binary)
        .ok()
        .map(|l| Box::new(l) as Box<dyn Guest>)
}
