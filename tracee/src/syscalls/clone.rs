//! The task-creating calls (fork, vfork, clone, clone3) and their arguments, which the
//! recorder reads to decide what it follows and to tell a thread from a process, and the
//! replayer reads to execute the call as recorded.

use crate::{Addr, Result, Stopped};

/// The calls that create a task.
const CREATING: [i64; 4] = [
    libc::SYS_fork,
    libc::SYS_vfork,
    libc::SYS_clone,
    libc::SYS_clone3,
];

/// Whether call `nr` creates a task.
pub fn creates_task(nr: u64) -> bool {
    CREATING.iter().any(|&c| c as u64 == nr)
}

/// What a task-creating call asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloneArgs {
    /// The clone flags (0 for fork and vfork, whose behaviour the call number fixes).
    pub flags: u64,
    /// Where CLONE_PARENT_SETTID writes the child's tid in the parent.
    pub parent_tid: u64,
    /// Where CLONE_CHILD_SETTID writes it in the child.
    pub child_tid: u64,
}

impl CloneArgs {
    /// Whether the new task is a thread of its creator's process.
    pub fn is_thread(&self) -> bool {
        self.flags & libc::CLONE_THREAD as u64 != 0
    }
}

/// The arguments of call `nr` at its seccomp stop `s` (clone3's come from `struct
/// clone_args` in the tracee's memory); all zero for calls that create no task.
pub fn clone_args(s: &Stopped, nr: u64, args: [u64; 6]) -> Result<CloneArgs> {
    if nr == libc::SYS_clone as u64 {
        // clone(flags, stack, parent_tid, child_tid, tls) on x86-64.
        Ok(CloneArgs {
            flags: args[0],
            parent_tid: args[2],
            child_tid: args[3],
        })
    } else if nr == libc::SYS_clone3 as u64 {
        // flags, pidfd, child_tid, parent_tid: the first four u64 of struct clone_args.
        Ok(CloneArgs {
            flags: s.read_u64(Addr::new(args[0]))?,
            child_tid: s.read_u64(Addr::new(args[0].wrapping_add(16)))?,
            parent_tid: s.read_u64(Addr::new(args[0].wrapping_add(24)))?,
        })
    } else {
        Ok(CloneArgs::default())
    }
}
