//! The system call table: for every call a recorded program may make, whether the seccomp
//! filter lets it run unseen (its effect is a deterministic function of the process's
//! own state, and replay executes it), fails it outright, traces it to record its result
//! and output buffers, or refuses it. A call missing from the table stops the recording:
//! silent nondeterminism is never an option.

use tracee::seccomp::{Action, Program, Rule};

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
        SYS_rseq => Class::Fail(libc::ENOSYS as u16),
        // mmap: anonymous mappings are allowed by the filter (see `filter`); file-backed
        // ones come here and get their contents recorded.
        SYS_mmap => NONE,
        SYS_clone | SYS_clone3 | SYS_fork | SYS_vfork => Class::Refuse(
            "multi-threaded and multi-process programs are not supported by the recorder",
        ),
        SYS_execveat => Class::Refuse("a second exec is not supported"),
        SYS_ptrace => Class::Refuse("a recorded program cannot use ptrace"),
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
        | SYS_getgroups
        | SYS_set_tid_address
        | SYS_prlimit64
        | SYS_getrlimit
        | SYS_setrlimit
        | SYS_sched_getaffinity
        | SYS_sched_setaffinity
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

/// The seccomp filter: `Allow` and `Fail` classes as such, anonymous `mmap` allowed,
/// everything else (known or not) traced.
pub fn filter() -> Program {
    let mut rules = vec![Rule::ArgMask {
        nr: libc::SYS_mmap as u32,
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
    Program::compile(&rules, Action::Trace(0))
}

/// A range of tracee memory a call wrote, or a reason it cannot be known.
pub type Range = (u64, usize);

/// Reads tracee memory while computing output ranges (for iovec arrays, socklen_t, …).
pub trait Peek {
    /// `len` bytes at `addr`, or `None` if unreadable.
    fn peek(&self, addr: u64, len: usize) -> Option<Vec<u8>>;
    /// A u64 at `addr`.
    fn peek_u64(&self, addr: u64) -> Option<u64> {
        self.peek(addr, 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
    /// A u32 at `addr`.
    fn peek_u32(&self, addr: u64) -> Option<u32> {
        self.peek(addr, 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    }
}

/// A stopped tracee's memory, as the tables read it.
impl Peek for tracee::Stopped {
    fn peek(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self.read_vec(tracee::Addr::new(addr), len).ok()
    }
}

/// Why a call's outputs cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCovered(pub String);

fn fixed(out: &mut Vec<Range>, ptr: u64, len: usize) {
    if ptr != 0 && len > 0 {
        out.push((ptr, len));
    }
}

/// The ranges of an iovec array `iov` of `count` entries that hold its first `total`
/// bytes.
pub(crate) fn iov(out: &mut Vec<Range>, mem: &dyn Peek, iov: u64, count: u64, mut total: usize) {
    for i in 0..count.min(1024) {
        if total == 0 {
            break;
        }
        let (Some(base), Some(len)) = (mem.peek_u64(iov + 16 * i), mem.peek_u64(iov + 16 * i + 8))
        else {
            break;
        };
        let n = (len as usize).min(total);
        fixed(out, base, n);
        total -= n;
    }
}

/// socklen_t-described buffer: `addr` of `*lenp` bytes (as updated by the kernel, capped
/// by what the caller provided), plus the socklen_t itself.
fn sockaddr(out: &mut Vec<Range>, mem: &dyn Peek, addr: u64, lenp: u64, cap: Option<u32>) {
    if addr == 0 || lenp == 0 {
        return;
    }
    let len = mem.peek_u32(lenp).unwrap_or(0);
    let len = cap.map_or(len, |c| len.min(c));
    fixed(out, addr, len as usize);
    fixed(out, lenp, 4);
}

const F_GETOWN_EX_: libc::c_int = 16;
const RET_EINTR: i64 = -(libc::EINTR as i64);
const ERESTART_RESTARTBLOCK: i64 = -516;

/// The memory ranges syscall `nr` wrote, given its arguments and result. Only calls with
/// `Class::Record` are asked; `Err` names an unsupported sub-operation (e.g. an ioctl).
#[allow(non_upper_case_globals)]
pub fn outputs(nr: u64, a: [u64; 6], ret: i64, mem: &dyn Peek) -> Result<Vec<Range>, NotCovered> {
    use libc::*;
    let mut out = Vec::new();
    let Ok(nr) = c_long::try_from(nr) else {
        return Ok(out);
    };
    // nanosleep reports the remaining time when interrupted; everything else writes
    // only on success.
    if ret < 0 {
        if (nr == SYS_nanosleep || nr == SYS_clock_nanosleep)
            && (ret == RET_EINTR || ret == ERESTART_RESTARTBLOCK)
        {
            fixed(&mut out, if nr == SYS_nanosleep { a[1] } else { a[3] }, 16);
        }
        return Ok(out);
    }
    let r = ret as usize;
    match nr {
        SYS_read | SYS_pread64 | SYS_getdents | SYS_getdents64 | SYS_readlink | SYS_listxattr
        | SYS_llistxattr | SYS_flistxattr => fixed(&mut out, a[1], r),
        SYS_readlinkat | SYS_getxattr | SYS_lgetxattr | SYS_fgetxattr | SYS_sched_getaffinity => {
            fixed(&mut out, a[2], r)
        }
        SYS_getrandom | SYS_getcwd => fixed(&mut out, a[0], r),
        SYS_readv | SYS_preadv | SYS_preadv2 => iov(&mut out, mem, a[1], a[2], r),
        SYS_fstat | SYS_stat | SYS_lstat => fixed(&mut out, a[1], 144),
        SYS_newfstatat => fixed(&mut out, a[2], 144),
        SYS_statx => fixed(&mut out, a[4], 256),
        SYS_statfs | SYS_fstatfs => fixed(&mut out, a[1], 120),
        SYS_pipe | SYS_pipe2 => fixed(&mut out, a[0], 8),
        SYS_socketpair => fixed(&mut out, a[3], 8),
        SYS_clock_gettime | SYS_clock_getres => fixed(&mut out, a[1], 16),
        SYS_gettimeofday => {
            fixed(&mut out, a[0], 16);
            fixed(&mut out, a[1], 8);
        }
        SYS_time => fixed(&mut out, a[0], 8),
        SYS_nanosleep => {}
        SYS_clock_nanosleep => {}
        SYS_uname => fixed(&mut out, a[0], 390),
        SYS_sysinfo => fixed(&mut out, a[0], 112),
        SYS_getrusage => fixed(&mut out, a[1], 144),
        SYS_times => fixed(&mut out, a[0], 32),
        SYS_getcpu => {
            fixed(&mut out, a[0], 4);
            fixed(&mut out, a[1], 4);
        }
        SYS_getresuid | SYS_getresgid => {
            fixed(&mut out, a[0], 4);
            fixed(&mut out, a[1], 4);
            fixed(&mut out, a[2], 4);
        }
        SYS_getgroups if a[0] > 0 => fixed(&mut out, a[1], 4 * r),
        SYS_prlimit64 => fixed(&mut out, a[3], 16),
        SYS_getrlimit => fixed(&mut out, a[1], 16),
        SYS_capget => fixed(&mut out, a[1], 24),
        SYS_poll | SYS_ppoll => {
            fixed(&mut out, a[0], 8 * (a[1] as usize).min(1 << 16));
            if nr == SYS_ppoll {
                fixed(&mut out, a[2], 16);
            }
        }
        SYS_select | SYS_pselect6 => {
            let set = (a[0] as usize).min(1 << 16).div_ceil(64) * 8;
            fixed(&mut out, a[1], set);
            fixed(&mut out, a[2], set);
            fixed(&mut out, a[3], set);
            fixed(&mut out, a[4], 16);
        }
        SYS_epoll_wait | SYS_epoll_pwait | SYS_epoll_pwait2 => fixed(&mut out, a[1], 12 * r),
        SYS_timerfd_settime => fixed(&mut out, a[3], 32),
        SYS_timerfd_gettime => fixed(&mut out, a[1], 32),
        SYS_accept | SYS_accept4 | SYS_getsockname | SYS_getpeername => {
            sockaddr(&mut out, mem, a[1], a[2], None)
        }
        SYS_getsockopt => sockaddr(&mut out, mem, a[3], a[4], None),
        SYS_recvfrom => {
            fixed(&mut out, a[1], r);
            sockaddr(&mut out, mem, a[4], a[5], None);
        }
        SYS_recvmsg => {
            // struct msghdr: name, namelen, iov, iovlen, control, controllen, flags.
            let h = a[1];
            let name = mem.peek_u64(h).unwrap_or(0);
            let namelen = mem.peek_u32(h + 8).unwrap_or(0);
            let iov_base = mem.peek_u64(h + 16).unwrap_or(0);
            let iovlen = mem.peek_u64(h + 24).unwrap_or(0);
            let control = mem.peek_u64(h + 32).unwrap_or(0);
            let controllen = mem.peek_u64(h + 40).unwrap_or(0);
            fixed(&mut out, name, namelen as usize);
            iov(&mut out, mem, iov_base, iovlen, r);
            fixed(&mut out, control, controllen as usize);
            fixed(&mut out, h, 56);
        }
        SYS_sendfile => fixed(&mut out, a[2], 8),
        SYS_copy_file_range => {
            fixed(&mut out, a[1], 8);
            fixed(&mut out, a[3], 8);
        }
        SYS_rt_sigaction => fixed(&mut out, a[2], 32),
        SYS_rt_sigpending => fixed(&mut out, a[0], (a[1] as usize).min(128)),
        SYS_rt_sigtimedwait => fixed(&mut out, a[1], 128),
        SYS_setitimer => fixed(&mut out, a[2], 32),
        SYS_getitimer => fixed(&mut out, a[1], 32),
        SYS_timer_create => fixed(&mut out, a[2], 4),
        SYS_timer_settime => fixed(&mut out, a[3], 32),
        SYS_timer_gettime => fixed(&mut out, a[1], 32),
        SYS_wait4 => {
            fixed(&mut out, a[1], 4);
            fixed(&mut out, a[3], 144);
        }
        SYS_waitid => {
            fixed(&mut out, a[2], 128);
            fixed(&mut out, a[4], 144);
        }
        SYS_ioctl => ioctl_outputs(&mut out, a)?,
        SYS_fcntl => match a[1] as c_int {
            F_GETLK | F_OFD_GETLK => fixed(&mut out, a[2], 32),
            F_GETOWN_EX_ => fixed(&mut out, a[2], 8),
            _ => {}
        },
        SYS_prctl => match a[0] as c_int {
            PR_GET_NAME => fixed(&mut out, a[1], 16),
            PR_GET_PDEATHSIG | PR_GET_CHILD_SUBREAPER | PR_GET_TSC => fixed(&mut out, a[1], 4),
            _ => {}
        },
        _ => {}
    }
    Ok(out)
}

fn ioctl_outputs(out: &mut Vec<Range>, a: [u64; 6]) -> Result<(), NotCovered> {
    const TCGETS: u64 = 0x5401;
    const TCSETS: u64 = 0x5402;
    const TCSETSW: u64 = 0x5403;
    const TCSETSF: u64 = 0x5404;
    const TIOCGPGRP: u64 = 0x540f;
    const TIOCSPGRP: u64 = 0x5410;
    const TIOCGWINSZ: u64 = 0x5413;
    const TIOCSWINSZ: u64 = 0x5414;
    const FIONREAD: u64 = 0x541b;
    const FIONBIO: u64 = 0x5421;
    const FIONCLEX: u64 = 0x5450;
    const FIOCLEX: u64 = 0x5451;
    const TIOCGPTN: u64 = 0x8004_5430;
    match a[1] & 0xffff_ffff {
        TCGETS => fixed(out, a[2], 36),
        TIOCGWINSZ => fixed(out, a[2], 8),
        FIONREAD | TIOCGPGRP | TIOCGPTN => fixed(out, a[2], 4),
        TCSETS | TCSETSW | TCSETSF | TIOCSPGRP | TIOCSWINSZ | FIONBIO | FIONCLEX | FIOCLEX => {}
        req => {
            return Err(NotCovered(format!(
                "ioctl({}, {req:#x}) is not in the recorder's ioctl table",
                a[0] as i32
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoMem;
    impl Peek for NoMem {
        fn peek(&self, _: u64, _: usize) -> Option<Vec<u8>> {
            None
        }
    }

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
    fn threads_are_refused_and_unknown_calls_are_unknown() {
        assert!(matches!(
            class(trace::sysno::number("clone").unwrap()),
            Some(Class::Refuse(_))
        ));
        assert_eq!(class(trace::sysno::number("kexec_load").unwrap()), None);
    }

    #[test]
    fn read_writes_the_returned_count() {
        let nr = libc::SYS_read as u64;
        assert_eq!(
            outputs(nr, [0, 0x1000, 100, 0, 0, 0], 42, &NoMem).unwrap(),
            vec![(0x1000, 42)]
        );
        assert_eq!(
            outputs(nr, [0, 0x1000, 100, 0, 0, 0], -4, &NoMem).unwrap(),
            vec![]
        );
    }

    #[test]
    fn unknown_ioctl_is_named() {
        let e = outputs(libc::SYS_ioctl as u64, [3, 0x1234, 0, 0, 0, 0], 0, &NoMem).unwrap_err();
        assert!(e.0.contains("0x1234"), "{e:?}");
    }
}
