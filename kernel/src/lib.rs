//! umk: a small Unix-like kernel that runs as one unprivileged Linux process, in the way
//! of User-Mode Linux. Every contact with the host goes through `host/`; everything else
//! is kernel: tasks and a preemptive scheduler, interrupts, locks, a slab allocator, ubd
//! block devices with UML's copy-on-write files, ext2, a management console, a shell, and
//! the bug scenarios that Rewind records, replays and analyses.
//!
//! The binary (src/main.rs) is freestanding; under `cfg(test)` this library builds with
//! std so that kernel logic can be unit-tested on the host.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod block;
pub mod boot;
pub mod bugs;
pub mod drivers;
pub mod exec_point;
pub mod fs;
pub mod host;
pub mod irq;
pub mod mm;
pub mod panic;
pub mod printk;
pub mod rootfs;
pub mod sched;
pub mod shell;
pub mod sync;
pub mod system;
pub mod time;
pub mod watchdog;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
