//! The only crate that touches ptrace, signals and tracee memory; all of the workspace's
//! `unsafe` lives here, each block with its `// SAFETY:` reason.
//!
//! A tracee is either [`Stopped`] (registers and memory can be read and written) or
//! [`Running`] (it can only be waited for or signalled). Resuming consumes the `Stopped`
//! value, so code that needs a stopped tracee cannot be written against a running one.
//! A tracee that vanishes under an operation (`ESRCH`) yields [`Error::Died`].
#![warn(clippy::cast_possible_truncation)]

pub mod abi;
pub mod addr;
pub mod cpu;
pub mod debug;
pub mod error;
pub mod maps;
pub mod mem;
pub mod memfile;
pub mod regs;
pub mod seccomp;
pub mod siginfo;
pub mod spawn;
pub mod state;
pub mod syscallbuf;
pub mod syscalls;
pub mod task;

pub use addr::Addr;
pub use debug::WatchKind;
pub use error::{Error, Result};
pub use nix::sys::signal::Signal;
pub use nix::unistd::Pid;
pub use regs::Regs;
pub use siginfo::SigInfo;
pub use spawn::{pipe, resolve_program, spawn, spawn_in, SpawnOptions};
pub use task::{Exit, Resume, Running, Stop, Stopped, Waited};
