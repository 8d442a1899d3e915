//! The system call table: for every call a recorded program may make, whether the seccomp
//! filter lets it run unseen (its effect is a deterministic function of the process's
//! own state, and replay executes it), fails it outright, traces it to record its result
//! and output buffers, or refuses it. A call missing from the table stops the recording:
//! silent nondeterminism is never an option. The recorder and the replayer both read it,
//! so what a replay lets run is decided by the same table that decided what was recorded.
//!
//! [`outputs`] says which memory a call wrote, [`sent`] what it sent out of the process,
//! [`clone_args`] what a task-creating call asked for.

mod clone;
mod outputs;
pub mod sent;

pub use clone::{clone_args, creates_task, CloneArgs};

pub use outputs::{outputs, NotCovered, Peek, Range};

use crate::seccomp::{Action, FromAddress, Program, Rule};

/// ENOSYS as `SECCOMP_RET_ERRNO` carries it: the errno travels in the 16-bit
/// `SECCOMP_RET_DATA` field of the filter's return value.
// why: the seccomp ABI defines that field as 16 bits; errno values (ENOSYS is 38) fit.
#[allow(clippy::cast_possible_truncation)]
const ENOSYS_ERRNO: u16 = libc::ENOSYS as u16;
/// ENOSPC, likewise.
#[allow(clippy::cast_possible_truncation)]
const ENOSPC_ERRNO: u16 = libc::ENOSPC as u16;

/// mmap's number as `seccomp_data.nr` holds it (an `int`), for the filter's rule.
// why: the seccomp ABI's `nr` field is 32 bits; libc spells the numbers as c_long (9).
#[allow(clippy::cast_possible_truncation)]
const SYS_MMAP: u32 = libc::SYS_mmap as u32;
/// execve's, likewise (59).
#[allow(clippy::cast_possible_truncation)]
const SYS_EXECVE: u32 = libc::SYS_execve as u32;

/// What the recorder does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Runs without a stop: anonymous mmap, mprotect, brk, munmap, sigprocmask, …
    Allow,
    /// Fails with this errno without running, at record and replay alike (rseq: its
    /// kernel-written cpu id would be nondeterministic memory).
    Fail(u16),
    /// Traced: result and output buffers recorded; `path` is the index of a path argument.
    Record {
        /// Index of a NUL-terminated path argument.
        path: Option<usize>,
    },
    /// Traced only to stop the recording with this reason.
    Refuse(&'static str),
}

const fn rec(path: Option<usize>) -> Class {
    Class::Record { path }
}

/// The index of the path argument the recorder records and the replay checks: a
/// `Record` call's, and execve's (traced by `exec_fence`, recorded when it fails).
pub fn path_arg(nr: u64) -> Option<usize> {
    match class(nr)? {
        Class::Record { path } => path,
        Class::Allow if nr == libc::SYS_execve as u64 => Some(0),
        _ => None,
    }
}

/// How the recorder treats syscall `nr`; `None` for calls it does not know.
#[allow(non_upper_case_globals)]
pub fn class(nr: u64) -> Option<Class> {
    use libc::*;
    let nr = c_long::try_from(nr).ok()?;
    const NONE: Class = rec(None);
    const P0: Class = rec(Some(0));
    const P1: Class = rec(Some(1));
    Some(match nr {
        // Shape the address space or signal state deterministically; replay re-executes.
        SYS_mprotect | SYS_munmap | SYS_brk | SYS_madvise | SYS_mremap | SYS_rt_sigprocmask
        | SYS_rt_sigreturn | SYS_sched_yield | SYS_arch_prctl | SYS_set_robust_list
        | SYS_sigaltstack | SYS_execve => Class::Allow,
        SYS_rseq => Class::Fail(ENOSYS_ERRNO),
        // The syscall buffer's flush: no kernel has it (ENOSYS); the recorder drains the
        // buffer at its stop, and it is recorded as any call.
        n if n as u64 == syscallbuf_abi::FLUSH_NR => NONE,
        // A protection key lives in the PKRU register, which user code changes without a
        // call: no key is handed out, as on a CPU without them (V8 then goes without).
        SYS_pkey_alloc => Class::Fail(ENOSPC_ERRNO),
        // mmap: anonymous mappings are allowed by the filter (see `filter`); file-backed
        // ones come here and get their contents recorded.
        SYS_mmap => NONE,
        // New processes are recorded (the recorder follows them); which clone flags it
        // refuses (threads above all) it decides at the call, from the flags.
        SYS_clone | SYS_clone3 | SYS_fork | SYS_vfork => NONE,
        SYS_execveat => Class::Refuse("execveat (fexecve) is not supported, only execve"),
        // Played by the recorder for a child that asked its parent to trace it (UML's
        // start-up probes), refused otherwise; emulated at replay from its record.
        SYS_ptrace => NONE,
        SYS_io_uring_setup | SYS_io_uring_enter | SYS_io_uring_register => {
            Class::Refuse("io_uring writes memory asynchronously and cannot be recorded")
        }
        SYS_userfaultfd | SYS_perf_event_open | SYS_process_vm_readv | SYS_process_vm_writev => {
            Class::Refuse("not supported by the recorder")
        }
        // Paths.
        SYS_open | SYS_stat | SYS_lstat | SYS_access | SYS_readlink | SYS_unlink | SYS_mkdir
        | SYS_rmdir | SYS_chdir | SYS_getxattr | SYS_lgetxattr | SYS_listxattr | SYS_llistxattr
        | SYS_statfs | SYS_truncate | SYS_rename | SYS_chmod | SYS_chown | SYS_lchown
        | SYS_creat | SYS_link | SYS_symlink | SYS_utimes => P0,
        SYS_openat | SYS_openat2 | SYS_newfstatat | SYS_statx | SYS_faccessat | SYS_faccessat2
        | SYS_readlinkat | SYS_unlinkat | SYS_mkdirat | SYS_renameat | SYS_renameat2
        | SYS_fchmodat | SYS_fchownat | SYS_utimensat | SYS_linkat | SYS_symlinkat
        | SYS_mknodat => P1,
        // Everything else that is traced and recorded.
        SYS_read
        | SYS_write
        | SYS_pread64
        | SYS_pwrite64
        | SYS_readv
        | SYS_writev
        | SYS_preadv
        | SYS_pwritev
        | SYS_preadv2
        | SYS_pwritev2
        | SYS_close
        | SYS_close_range
        | SYS_fstat
        | SYS_lseek
        | SYS_fsync
        | SYS_fdatasync
        | SYS_sync
        | SYS_syncfs
        | SYS_fadvise64
        | SYS_fallocate
        | SYS_flock
        | SYS_ftruncate
        | SYS_dup
        | SYS_dup2
        | SYS_dup3
        | SYS_pipe
        | SYS_pipe2
        | SYS_fchdir
        | SYS_umask
        | SYS_fchmod
        | SYS_fchown
        | SYS_getdents
        | SYS_getdents64
        | SYS_getcwd
        | SYS_fgetxattr
        | SYS_flistxattr
        | SYS_fstatfs
        | SYS_ioctl
        | SYS_fcntl
        | SYS_sendfile
        | SYS_copy_file_range
        | SYS_memfd_create
        | SYS_eventfd2
        | SYS_inotify_init1
        | SYS_inotify_add_watch
        | SYS_inotify_rm_watch
        | SYS_msync => NONE,
        SYS_clock_gettime | SYS_clock_getres | SYS_gettimeofday | SYS_time | SYS_nanosleep
        | SYS_clock_nanosleep | SYS_getrandom | SYS_uname | SYS_sysinfo | SYS_getrusage
        | SYS_times | SYS_getcpu => NONE,
        SYS_getpid
        | SYS_getppid
        | SYS_gettid
        | SYS_getuid
        | SYS_geteuid
        | SYS_getgid
        | SYS_getegid
        | SYS_getpgrp
        | SYS_getpgid
        | SYS_getsid
        | SYS_setsid
        | SYS_setpgid
        | SYS_getresuid
        | SYS_getresgid
        // Emulated at replay like every recorded call: a replay changes no credentials.
        | SYS_setuid
        | SYS_setgid
        | SYS_setreuid
        | SYS_setregid
        | SYS_setresuid
        | SYS_setresgid
        | SYS_setfsuid
        | SYS_setfsgid
        | SYS_getgroups
        | SYS_set_tid_address
        | SYS_prlimit64
        | SYS_getrlimit
        | SYS_setrlimit
        | SYS_sched_getaffinity
        | SYS_sched_setaffinity
        | SYS_get_mempolicy
        | SYS_set_mempolicy
        | SYS_getpriority
        | SYS_setpriority
        | SYS_personality
        | SYS_prctl
        | SYS_capget
        | SYS_futex
        | SYS_restart_syscall => NONE,
        SYS_poll | SYS_ppoll | SYS_select | SYS_pselect6 | SYS_epoll_create | SYS_epoll_create1
        | SYS_epoll_ctl | SYS_epoll_wait | SYS_epoll_pwait | SYS_epoll_pwait2
        | SYS_timerfd_create | SYS_timerfd_settime | SYS_timerfd_gettime | SYS_signalfd4 => NONE,
        SYS_socket | SYS_socketpair | SYS_bind | SYS_listen | SYS_connect | SYS_shutdown
        | SYS_setsockopt | SYS_getsockopt | SYS_accept | SYS_accept4 | SYS_getsockname
        | SYS_getpeername | SYS_sendto | SYS_sendmsg | SYS_recvfrom | SYS_recvmsg => NONE,
        SYS_rt_sigaction | SYS_rt_sigpending | SYS_rt_sigtimedwait | SYS_rt_sigsuspend
        | SYS_pause | SYS_kill | SYS_tgkill | SYS_tkill | SYS_setitimer | SYS_getitimer
        | SYS_alarm | SYS_timer_create | SYS_timer_settime | SYS_timer_gettime
        | SYS_timer_delete | SYS_timer_getoverrun | SYS_wait4 | SYS_waitid | SYS_exit
        | SYS_exit_group => NONE,
        _ => return None,
    })
}

/// Whether call `nr` may wait in the kernel for another process or thread (a pipe, a
/// child, a lock, a timer): while such a call has not returned, the recorder may run
/// other tasks. Every other traced call returns by itself, so the recorder just waits
/// for it. When unsure, a call is listed: a wrong "no" would leave the recorder waiting
/// on a call that waits on a task the recorder holds stopped.
#[allow(non_upper_case_globals)]
pub fn may_block(nr: u64) -> bool {
    use libc::*;
    let Ok(nr) = c_long::try_from(nr) else {
        return true;
    };
    matches!(
        nr,
        SYS_read
            | SYS_readv
            | SYS_write
            | SYS_writev
            | SYS_pread64
            | SYS_pwrite64
            | SYS_preadv
            | SYS_pwritev
            | SYS_preadv2
            | SYS_pwritev2
            | SYS_open
            | SYS_openat
            | SYS_openat2
            | SYS_creat
            | SYS_ioctl
            | SYS_fcntl
            | SYS_flock
            | SYS_sendfile
            | SYS_copy_file_range
            | SYS_wait4
            | SYS_waitid
            | SYS_poll
            | SYS_ppoll
            | SYS_select
            | SYS_pselect6
            | SYS_epoll_wait
            | SYS_epoll_pwait
            | SYS_epoll_pwait2
            | SYS_futex
            | SYS_nanosleep
            | SYS_clock_nanosleep
            | SYS_pause
            | SYS_rt_sigsuspend
            | SYS_rt_sigtimedwait
            | SYS_accept
            | SYS_accept4
            | SYS_connect
            | SYS_sendto
            | SYS_sendmsg
            | SYS_recvfrom
            | SYS_recvmsg
            | SYS_vfork
            | SYS_clone
            | SYS_clone3
            | SYS_close
            | SYS_fsync
            | SYS_fdatasync
            | SYS_sync
            | SYS_syncfs
    )
}

/// The seccomp filter: `Allow` and `Fail` classes as such, anonymous `mmap` allowed,
/// everything else (known or not) traced. With `buffered` (a recording that preloads the
/// syscall buffer) calls from its untraced entry run unseen. Replay always runs the
/// unbuffered filter: there every buffered call stops and is served from its event.
pub fn filter_for(buffered: bool) -> Program {
    let mut rules = vec![Rule::ArgMask {
        nr: SYS_MMAP,
        arg: 3,
        mask: libc::MAP_ANONYMOUS as u32,
        when_set: Action::Allow,
        when_clear: Action::Trace(0),
    }];
    for nr in 0..512u32 {
        match class(u64::from(nr)) {
            Some(Class::Allow) => rules.push(Rule::Always(nr, Action::Allow)),
            Some(Class::Fail(e)) => rules.push(Rule::Always(nr, Action::Errno(e))),
            _ => {}
        }
    }
    let from = buffered.then_some(FromAddress {
        rip: syscallbuf_abi::UNTRACED_RIP,
        action: Action::Allow,
    });
    Program::compile_with(from, &rules, Action::Trace(0))
}

/// The filter every recording (format 7 on) adds once its program has started, and its
/// replay likewise (a second filter: the kernel takes the stricter verdict of the two):
/// `execve` stops, so that one that fails is recorded and emulated like any call (it must
/// not run as the replaying host has it), the recorder drains the syscall buffer before
/// an exec discards it, and a replay from a pack sends the exec to the trace's copy. It
/// cannot be part of the first filter, which is in force for the tracer's own exec of the
/// program.
pub fn exec_fence() -> Program {
    Program::compile(&[Rule::Always(SYS_EXECVE, Action::Trace(0))], Action::Allow)
}

/// The filter of a recording without the syscall buffer, and of every replay.
pub fn filter() -> Program {
    filter_for(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umk_calls_are_all_covered() {
        for name in [
            "read",
            "write",
            "pread64",
            "pwrite64",
            "openat",
            "close",
            "fstat",
            "lseek",
            "fsync",
            "fdatasync",
            "mmap",
            "munmap",
            "rt_sigaction",
            "rt_sigprocmask",
            "rt_sigreturn",
            "setitimer",
            "getitimer",
            "getpid",
            "kill",
            "pause",
            "exit_group",
            "clock_gettime",
            "poll",
            "ppoll",
            "fcntl",
            "pipe2",
            "socket",
            "bind",
            "recvfrom",
            "sendto",
            "get_mempolicy",
            "set_mempolicy",
            "unlink",
            "uname",
            "nanosleep",
            "ftruncate",
        ] {
            let nr = trace::sysno::number(name).unwrap();
            assert!(
                !matches!(class(nr), None | Some(Class::Refuse(_))),
                "{name} must be recordable"
            );
        }
    }

    #[test]
    fn new_processes_are_recorded_and_unknown_calls_are_unknown() {
        for name in ["clone", "clone3", "fork", "vfork"] {
            let nr = trace::sysno::number(name).unwrap();
            assert_eq!(class(nr), Some(Class::Record { path: None }), "{name}");
            // vfork, and clone with CLONE_VFORK, wait for the child; fork returns by itself.
            assert_eq!(may_block(nr), name != "fork", "{name}");
        }
        assert_eq!(class(trace::sysno::number("kexec_load").unwrap()), None);
    }
}
