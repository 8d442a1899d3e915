//! Rewind's gdb remote stub: a replay timeline behind the gdb remote protocol (on the
//! `gdbstub` crate), with reverse execution (`bc`, `bs`), the guest kernel's tasks as
//! threads, and one process of a recording that forked in focus (`-p`).
//!
//! * [`server`] listens on 127.0.0.1 and serves gdb sessions one after another.
//! * [`target`] translates packets into timeline calls and stops into stop replies; the
//!   edges of the recording are reported as the edges of history (ReplayLog Begin/End).
//! * The guest kernel's tasks come from its model (`guest::Guest`: umk's task table,
//!   kernel/TASKS.md; Linux's task list); the stub only numbers them as gdb threads.
//! * [`conn`] NAKs bad packets instead of ending the session.
//! * [`monitor`] has `monitor where|goto|checkpoint|events|stats`; gdb gets `when` (rr's),
//!   `goto POSITION`, which also refreshes what gdb shows, and `checkpoint`, `restart N`,
//!   `info checkpoints` and `run` over replay positions ([`gdb_command`]).
//!
//! Memory and register writes are refused (`replayer::Error::ReadOnly`), with the reason
//! printed on the terminal gdb shares: a replay that went on from changed state would
//! show what the recording never did.

#![forbid(unsafe_code)]
#![warn(clippy::cast_possible_truncation)]

pub mod arch;
pub mod conn;
pub mod error;
pub mod monitor;
pub mod server;
pub mod target;

pub use error::{Error, Result};
pub use server::{Server, ServerOptions, SessionEnd};
pub use target::ReplayTarget;

/// The gdb commands `rewind gdb` defines: `goto POSITION` (which also makes gdb drop the
/// state it showed: a monitor command cannot tell gdb the program moved), and gdb's own
/// `checkpoint`, `restart N`, `info checkpoints` and `run`, over replay positions.
const COMMANDS_PYTHON: &str = include_str!("commands.py");

/// The command that attaches gdb to a stub at `addr` with `binary`'s symbols, first
/// loading the guest's own gdb Python (`guest::Guest::gdb_script`), if it has one.
pub fn gdb_command(
    binary: &std::path::Path,
    addr: std::net::SocketAddr,
    guest_script: Option<&str>,
) -> Vec<String> {
    let mut cmd = vec![
        "gdb".into(),
        "-q".into(),
        binary.display().to_string(),
        // rr's `when`: where in the recording this is.
        "-ex".into(),
        "alias when = monitor where".into(),
        "-ex".into(),
        // One line for -ex: the program as one Python string literal.
        format!("python exec({COMMANDS_PYTHON:?})"),
    ];
    if let Some(script) = guest_script {
        cmd.push("-ex".into());
        cmd.push(format!("python exec({script:?})"));
    }
    cmd.push("-ex".into());
    cmd.push(format!("target remote {addr}"));
    cmd
}
