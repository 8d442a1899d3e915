//! Rewind's analyzer core: the probe event model that replay-time collectors produce, and
//! the engines that turn a stream of those events into the reports kernel developers know.
//!
//! * [`events`] — what a probe reports: position, task, stack and what happened.
//! * [`symbols`] — reports' view of the guest binary (`guest::Binary`): frames, the
//!   kernel's stack layout, lock call sites, umk's probe functions.
//! * [`disasm`] — capstone disassembly and memory operands.
//! * [`lockdep`] — lock classes, the dependency graph and its cycles, recursive locking,
//!   irq inconsistency, locks held at exit and the actual-deadlock verdict; text and a graph.
//! * [`kasan`] — use-after-free reports in KASAN's layout from allocations, frees and a crash.
//! * [`collect`] — the replay-time collector: probes as breakpoints, read through the
//!   guest model; `fault` — the oops at the SIGSEGV handler; `collect_linux` — Linux's,
//!   at the points where its own lockdep grows its graph.
//! * [`watch`] — the watchpoint pass over a freed object.
//! * [`poison_load`] — the load of a poisoned pointer, found by running the replay back
//!   from the fault.
//! * [`provenance`] — BackTracker-style walk back from a crash, as text and a graph.
//! * [`report`] — one analysis of a trace and the report directory (`index.html`).
//! * [`chrome`] — Chrome trace JSON (Perfetto) of tasks, interrupts and lock holds.
//! * [`graph`] — the diagram model every graph is built as, written as DOT and drawn as
//!   SVG (built in, or by graphviz when asked).
//!
//! Every engine is fed events in replay order and is deterministic: maps are ordered and
//! nothing depends on hashing or on the host, so one trace gives byte-identical output.

#![forbid(unsafe_code)]
#![warn(clippy::cast_possible_truncation)]

pub mod chrome;
pub mod collect;
mod collect_linux;
pub mod disasm;
pub mod error;
pub mod events;
mod fault;
pub mod graph;
pub mod kasan;
pub mod lockdep;
pub mod poison_load;
pub mod provenance;
pub mod report;
pub mod symbols;
pub mod watch;

pub use error::{Error, Result};
pub use events::{Event, EventKind, Pos, TaskRef};
pub use symbols::{Binary, Frame, Resolve};
