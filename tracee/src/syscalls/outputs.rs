//! Which memory a system call wrote: the ranges the recorder saves after the call and
//! the replayer writes back, computed from the call's arguments, its result and (for
//! iovec arrays, socklen_t and message headers) the tracee's memory.

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
impl Peek for crate::Stopped {
    fn peek(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self.read_vec(crate::Addr::new(addr), len).ok()
    }
}

/// Why a call's outputs cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCovered(pub String);

/// A length the tracee passed (an iovec's `iov_len`, a `msg_controllen`, a count), as a
/// `usize`. Every caller caps it by what the call can have written, so a value beyond
/// `usize` (only possible on a 32-bit host) saturates into that cap instead of wrapping.
fn saturating_len(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

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
        let n = saturating_len(len).min(total);
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

/// What a ptrace request wrote at its `data` argument (the raw call, not glibc's
/// wrapper: PEEK* store the word there).
fn ptrace_outputs(out: &mut Vec<Range>, mem: &dyn Peek, a: [u64; 6]) {
    let Ok(req) = libc::c_uint::try_from(a[0]) else {
        return;
    };
    match req {
        libc::PTRACE_PEEKTEXT | libc::PTRACE_PEEKDATA | libc::PTRACE_PEEKUSER => {
            fixed(out, a[3], 8)
        }
        libc::PTRACE_GETREGS => fixed(out, a[3], std::mem::size_of::<libc::user_regs_struct>()),
        libc::PTRACE_GETFPREGS => fixed(out, a[3], crate::state::FPREGS_LEN),
        libc::PTRACE_GETSIGINFO => fixed(out, a[3], 128),
        libc::PTRACE_GETREGSET => {
            // The iovec's length is the kernel's, updated to what it wrote.
            if let (Some(base), Some(len)) = (mem.peek_u64(a[3]), mem.peek_u64(a[3] + 8)) {
                fixed(out, base, saturating_len(len).min(1 << 20));
            }
            fixed(out, a[3], 16);
        }
        _ => {}
    }
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
    // Non-negative here (checked above).
    let r = saturating_len(ret.unsigned_abs());
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
        // The mode, and a node mask of maxnode - 1 bits in whole longs (as the kernel
        // copies it out, zeroing past its own node count).
        SYS_get_mempolicy => {
            fixed(&mut out, a[0], 4);
            if a[1] != 0 && a[2] > 1 {
                fixed(&mut out, a[1], saturating_len((a[2] - 1).div_ceil(64) * 8));
            }
        }
        SYS_prlimit64 => fixed(&mut out, a[3], 16),
        SYS_getrlimit => fixed(&mut out, a[1], 16),
        SYS_capget => fixed(&mut out, a[1], 24),
        SYS_poll | SYS_ppoll => {
            fixed(&mut out, a[0], 8 * saturating_len(a[1]).min(1 << 16));
            if nr == SYS_ppoll {
                fixed(&mut out, a[2], 16);
            }
        }
        SYS_select | SYS_pselect6 => {
            let set = saturating_len(a[0]).min(1 << 16).div_ceil(64) * 8;
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
            fixed(&mut out, control, saturating_len(controllen));
            fixed(&mut out, h, 56);
        }
        SYS_sendfile => fixed(&mut out, a[2], 8),
        SYS_copy_file_range => {
            fixed(&mut out, a[1], 8);
            fixed(&mut out, a[3], 8);
        }
        SYS_rt_sigaction => fixed(&mut out, a[2], 32),
        SYS_rt_sigpending => fixed(&mut out, a[0], saturating_len(a[1]).min(128)),
        SYS_rt_sigtimedwait => fixed(&mut out, a[1], 128),
        SYS_setitimer => fixed(&mut out, a[2], 32),
        SYS_getitimer => fixed(&mut out, a[1], 32),
        SYS_timer_create => fixed(&mut out, a[2], 4),
        SYS_timer_settime => fixed(&mut out, a[3], 32),
        SYS_timer_gettime => fixed(&mut out, a[1], 32),
        SYS_ptrace => ptrace_outputs(&mut out, mem, a),
        SYS_wait4 => {
            fixed(&mut out, a[1], 4);
            fixed(&mut out, a[3], 144);
        }
        SYS_waitid => {
            fixed(&mut out, a[2], 128);
            fixed(&mut out, a[4], 144);
        }
        SYS_ioctl => ioctl_outputs(&mut out, a)?,
        SYS_fcntl => match crate::abi::as_c_int(a[1]) {
            F_GETLK | F_OFD_GETLK => fixed(&mut out, a[2], 32),
            F_GETOWN_EX_ => fixed(&mut out, a[2], 8),
            _ => {}
        },
        SYS_prctl => match crate::abi::as_c_int(a[0]) {
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
    // Lock or unlock a pty's peer (reads an int); open the peer (returns a descriptor).
    const TIOCSPTLCK: u64 = 0x4004_5431;
    const TIOCGPTPEER: u64 = 0x5441;
    match a[1] & 0xffff_ffff {
        TCGETS => fixed(out, a[2], 36),
        TIOCGWINSZ => fixed(out, a[2], 8),
        FIONREAD | TIOCGPGRP | TIOCGPTN => fixed(out, a[2], 4),
        TCSETS | TCSETSW | TCSETSF | TIOCSPGRP | TIOCSWINSZ | FIONBIO | FIONCLEX | FIOCLEX
        | TIOCSPTLCK | TIOCGPTPEER => {}
        req => {
            return Err(NotCovered(format!(
                "ioctl({}, {req:#x}) is not in the recorder's ioctl table",
                crate::abi::as_c_int(a[0])
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
