//! The host layer: every contact between umk and the Linux host, as raw system calls, in
//! the spirit of UML's os-Linux layer. The rest of the kernel sees files, memory, signals
//! and a clock, never a syscall number.

pub mod file;
pub mod mem;
pub mod process;
pub mod signal;
pub mod socket;
pub mod syscall;

pub use syscall::Errno;
