//! The tracee's states: [`Stopped`] at a ptrace stop, [`Running`] after a resume, and how
//! a wait turns one into the other ([`Waited`]), with the kind of stop decoded ([`Stop`]).

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::regs::Regs;
use crate::siginfo::{SigInfo, SIGINFO_LEN};

/// Why the tracee stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The seccomp filter returned SECCOMP_RET_TRACE; the syscall has not run yet. (The
    /// filter's SECCOMP_RET_DATA is `Stopped::event_msg`, not fetched here: one ptrace call
    /// less on the hottest path.)
    Seccomp,
    /// A syscall-entry or syscall-exit stop (PTRACE_SYSCALL); which one is for the
    /// caller to know from the order of stops.
    Syscall,
    /// A signal is about to be delivered (signal-delivery-stop); resuming with it
    /// delivers it, with another signal injects that, with `None` suppresses it.
    Signal(Signal),
    /// PTRACE_EVENT_EXEC: a successful execve.
    Exec,
    /// PTRACE_EVENT_CLONE/FORK/VFORK: a new task was created.
    NewTask,
    /// Another ptrace event.
    OtherEvent(i32),
}

/// How to resume a stopped tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Run until the next signal or seccomp stop (PTRACE_CONT).
    Cont(Option<Signal>),
    /// Also stop at every syscall entry and exit (PTRACE_SYSCALL).
    Syscall(Option<Signal>),
    /// Execute one instruction (PTRACE_SINGLESTEP).
    Step(Option<Signal>),
    /// Stop at the next syscall entry without running the call (PTRACE_SYSEMU).
    SysEmu(Option<Signal>),
    /// As `SysEmu`, also stopping after one instruction (PTRACE_SYSEMU_SINGLESTEP).
    SysEmuStep(Option<Signal>),
}

/// How the tracee ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// exit status.
    Exited(i32),
    /// Killed by a signal.
    Signaled(Signal, bool),
}

impl Exit {
    /// The status word wait(2) reported, in the kernel's encoding: how a tracee's end
    /// crosses to crates that do not know this type (`trace::ExitStatus::from_wait_status`).
    pub fn wait_status(self) -> i32 {
        match self {
            Exit::Exited(code) => (code & 0xff) << 8,
            Exit::Signaled(sig, core) => sig as i32 | if core { 0x80 } else { 0 },
        }
    }
}

/// The result of waiting for a running tracee.
#[derive(Debug)]
pub enum Waited {
    /// It stopped.
    Stopped(Stopped, Stop),
    /// It is gone.
    Exited(Exit),
}

/// A tracee at a ptrace stop.
#[derive(Debug)]
pub struct Stopped {
    pid: Pid,
}

/// A tracee that was resumed and may be running.
#[derive(Debug)]
pub struct Running {
    pid: Pid,
}

impl Stopped {
    /// Wraps a pid known to be at a ptrace stop (spawn and the wait functions do this).
    pub(crate) fn assume(pid: Pid) -> Self {
        Stopped { pid }
    }

    /// The tracee's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Reads the general-purpose registers.
    pub fn regs(&self) -> Result<Regs> {
        ptrace::getregs(self.pid)
            .map(Regs)
            .map_err(Error::os("PTRACE_GETREGS", self.pid))
    }

    /// Writes the general-purpose registers.
    pub fn set_regs(&self, regs: &Regs) -> Result<()> {
        ptrace::setregs(self.pid, regs.0).map_err(Error::os("PTRACE_SETREGS", self.pid))
    }

    /// The signal information of the pending signal (at a signal-delivery-stop).
    pub fn siginfo(&self) -> Result<SigInfo> {
        let mut buf = [0u8; SIGINFO_LEN];
        // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t (128 bytes) to the pointer we
        // pass, which points at a 128-byte buffer we own for the duration of the call.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETSIGINFO,
                self.pid.as_raw(),
                0usize,
                buf.as_mut_ptr(),
            )
        };
        if r < 0 {
            return Err(Error::os("PTRACE_GETSIGINFO", self.pid)(Errno::last()));
        }
        Ok(SigInfo(buf))
    }

    /// Replaces the signal information of the signal about to be delivered.
    pub fn set_siginfo(&self, info: &SigInfo) -> Result<()> {
        // SAFETY: PTRACE_SETSIGINFO reads one siginfo_t (128 bytes) from the pointer,
        // which points at a 128-byte buffer borrowed for the duration of the call.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_SETSIGINFO,
                self.pid.as_raw(),
                0usize,
                info.0.as_ptr(),
            )
        };
        if r < 0 {
            return Err(Error::os("PTRACE_SETSIGINFO", self.pid)(Errno::last()));
        }
        Ok(())
    }

    /// The signals the tracee blocks now (bit `n - 1` for signal `n`), PTRACE_GETSIGMASK.
    pub fn signal_mask(&self) -> Result<u64> {
        let mut mask: u64 = 0;
        // SAFETY: PTRACE_GETSIGMASK writes a sigset_t of the size passed as `addr` (8
        // bytes, the kernel's sigset_t on x86-64) to `data`, which points at our u64.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETSIGMASK,
                self.pid.as_raw(),
                std::mem::size_of::<u64>(),
                &mut mask as *mut u64,
            )
        };
        if r < 0 {
            return Err(Error::os("PTRACE_GETSIGMASK", self.pid)(Errno::last()));
        }
        Ok(mask)
    }

    /// PTRACE_GETEVENTMSG: the message of the last ptrace event.
    pub fn event_msg(&self) -> Result<u64> {
        ptrace::getevent(self.pid)
            .map(|v| v as u64)
            .map_err(Error::os("PTRACE_GETEVENTMSG", self.pid))
    }

    /// Sets the ptrace options.
    pub fn set_options(&self, options: ptrace::Options) -> Result<()> {
        ptrace::setoptions(self.pid, options).map_err(Error::os("PTRACE_SETOPTIONS", self.pid))
    }

    /// Runs the call this tracee is stopped in (at its seccomp or syscall-entry stop) to
    /// its syscall-exit stop: `Ok(Err(exit))` when the tracee ended instead (a fatal signal
    /// during the call). Any other stop first is [`Error::Unexpected`] naming `op`, and the
    /// tracee is killed: the caller cannot tell what the call did.
    pub fn finish_syscall(self, op: &'static str) -> Result<std::result::Result<Stopped, Exit>> {
        match self.resume(Resume::Syscall(None))?.wait()? {
            Waited::Stopped(s, Stop::Syscall) => Ok(Ok(s)),
            Waited::Exited(e) => Ok(Err(e)),
            Waited::Stopped(s, other) => {
                let pid = s.pid.as_raw();
                let _ = s.kill();
                Err(Error::Unexpected {
                    pid,
                    op,
                    what: format!("{other:?}"),
                })
            }
        }
    }

    /// At the seccomp stop of a call whose registers are `regs`: has the kernel skip the
    /// call (orig_rax -1) and runs to its syscall-exit stop, as `finish_syscall`.
    pub fn skip_syscall(
        self,
        regs: &Regs,
        op: &'static str,
    ) -> Result<std::result::Result<Stopped, Exit>> {
        let mut skip = *regs;
        skip.set_orig_rax(u64::MAX);
        self.set_regs(&skip)?;
        self.finish_syscall(op)
    }

    /// Resumes the tracee.
    pub fn resume(self, how: Resume) -> Result<Running> {
        let pid = self.pid;
        let r = match how {
            Resume::Cont(s) => ptrace::cont(pid, s).map_err(Error::os("PTRACE_CONT", pid)),
            Resume::Syscall(s) => ptrace::syscall(pid, s).map_err(Error::os("PTRACE_SYSCALL", pid)),
            Resume::Step(s) => ptrace::step(pid, s).map_err(Error::os("PTRACE_SINGLESTEP", pid)),
            Resume::SysEmu(s) => ptrace::sysemu(pid, s).map_err(Error::os("PTRACE_SYSEMU", pid)),
            Resume::SysEmuStep(s) => {
                ptrace::sysemu_step(pid, s).map_err(Error::os("PTRACE_SYSEMU_SINGLESTEP", pid))
            }
        };
        r.map(|()| Running { pid })
    }

    /// Kills the tracee and reaps it.
    pub fn kill(self) -> Result<Exit> {
        Running { pid: self.pid }.kill()
    }

    /// Lets a tracee that is being ended (its thread group's exit_group, a SIGKILL) go,
    /// and reaps it.
    pub fn wait_end(self) -> Result<Exit> {
        let pid = self.pid;
        match self.resume(Resume::Cont(None)) {
            Ok(r) => r.wait_end(),
            Err(Error::Died { .. }) => Running { pid }.wait_end(),
            Err(e) => Err(e),
        }
    }
}

fn decode(pid: Pid, status: WaitStatus) -> Result<Option<Waited>> {
    Ok(Some(match status {
        WaitStatus::StillAlive => return Ok(None),
        WaitStatus::Exited(_, code) => Waited::Exited(Exit::Exited(code)),
        WaitStatus::Signaled(_, sig, core) => Waited::Exited(Exit::Signaled(sig, core)),
        WaitStatus::Stopped(_, sig) => Waited::Stopped(Stopped::assume(pid), Stop::Signal(sig)),
        WaitStatus::PtraceSyscall(_) => Waited::Stopped(Stopped::assume(pid), Stop::Syscall),
        WaitStatus::PtraceEvent(_, _, event) => {
            let stopped = Stopped::assume(pid);
            let stop = match event {
                libc::PTRACE_EVENT_SECCOMP => Stop::Seccomp,
                libc::PTRACE_EVENT_EXEC => Stop::Exec,
                libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => {
                    Stop::NewTask
                }
                other => Stop::OtherEvent(other),
            };
            Waited::Stopped(stopped, stop)
        }
        WaitStatus::Continued(_) => {
            return Err(Error::Unexpected {
                pid: pid.as_raw(),
                op: "wait",
                what: "SIGCONT report".into(),
            })
        }
    }))
}

/// Reaps tracee `pid` if it has ended, without waiting (`None` while it lives): for a
/// tracee that rests at a stop, whose only possible report is its end.
pub fn try_reap(pid: Pid) -> Result<Option<Exit>> {
    match waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
        Ok(status) => match decode(pid, status)? {
            Some(Waited::Exited(e)) => Ok(Some(e)),
            Some(Waited::Stopped(_, stop)) => Err(Error::Unexpected {
                pid: pid.as_raw(),
                op: "reaping a task at a stop",
                what: format!("{stop:?}"),
            }),
            None => Ok(None),
        },
        Err(Errno::EINTR) => Ok(None),
        Err(e) => Err(Error::os("waitpid", pid)(e)),
    }
}

/// Waits for the next stop or end of any tracee of the calling thread (`None` with
/// `nohang` when none has one to report): for a tracer of several tasks, which must
/// reap each as it ends (a thread group's leader, or an exec in a thread group, waits in
/// the kernel until the others are reaped) while it waits for the one it runs. Tracees
/// belong to the thread that traces them, so other threads' tracees (and children) are
/// never seen (__WNOTHREAD).
pub fn wait_any(nohang: bool) -> Result<Option<(Pid, Waited)>> {
    let mut flags = WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD;
    if nohang {
        flags |= WaitPidFlag::WNOHANG;
    }
    loop {
        match waitpid(None, Some(flags)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(status) => {
                let Some(pid) = status.pid() else {
                    return Ok(None);
                };
                if let Some(w) = decode(pid, status)? {
                    return Ok(Some((pid, w)));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::os("waitpid", Pid::from_raw(-1))(e)),
        }
    }
}

impl Running {
    /// The tracee's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits until the tracee stops or ends.
    pub fn wait(self) -> Result<Waited> {
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::__WALL)) {
                Ok(status) => {
                    if let Some(w) = decode(self.pid, status)? {
                        return Ok(w);
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::os("waitpid", self.pid)(e)),
            }
        }
    }

    /// Checks without blocking whether the tracee has stopped or ended.
    pub fn try_wait(self) -> Result<std::result::Result<Waited, Running>> {
        match waitpid(self.pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(status) => match decode(self.pid, status)? {
                Some(w) => Ok(Ok(w)),
                None => Ok(Err(self)),
            },
            Err(Errno::EINTR) => Ok(Err(self)),
            Err(e) => Err(Error::os("waitpid", self.pid)(e)),
        }
    }

    /// Sends `sig` to the tracee's thread alone (tkill: tgkill would need the thread's
    /// group, which is not its own id for a thread other than the group's leader).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let p = self.pid.as_raw();
        // SAFETY: tkill takes two integers and touches no memory of ours.
        let r = unsafe { libc::syscall(libc::SYS_tkill, p, sig as i32) };
        if r < 0 {
            return Err(Error::os("tkill", self.pid)(Errno::last()));
        }
        Ok(())
    }

    /// Waits for the end of a tracee that is being ended (see [`Stopped::wait_end`]),
    /// letting it run through any stop on the way.
    pub fn wait_end(self) -> Result<Exit> {
        let mut running = self;
        loop {
            match running.wait()? {
                Waited::Exited(e) => return Ok(e),
                Waited::Stopped(s, _) => {
                    let pid = s.pid;
                    running = match s.resume(Resume::Cont(None)) {
                        Ok(r) => r,
                        Err(Error::Died { .. }) => Running { pid },
                        Err(e) => return Err(e),
                    };
                }
            }
        }
    }

    /// Kills the tracee with SIGKILL and reaps it. SIGKILL ends its whole thread group,
    /// and a group's leader is only reported once its other threads are reaped, so
    /// those are reaped here too while waiting.
    pub fn kill(self) -> Result<Exit> {
        let pid = self.pid;
        match nix::sys::signal::kill(pid, Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(Error::os("kill", pid)(e)),
        }
        let mut nap = std::time::Duration::from_micros(20);
        loop {
            match waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {
                    reap_other_threads(pid);
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(std::time::Duration::from_millis(1));
                }
                Ok(status) => match decode(pid, status)? {
                    Some(Waited::Exited(e)) => return Ok(e),
                    // A stop that raced with the SIGKILL; let it run into the kill.
                    Some(Waited::Stopped(..)) => {
                        let _ = ptrace::cont(pid, None);
                    }
                    None => {}
                },
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::os("waitpid", pid)(e)),
            }
        }
    }
}

/// Reaps what the other threads of `pid`'s group report (they are dying of a SIGKILL),
/// letting a stop that raced with the kill run into it.
fn reap_other_threads(pid: Pid) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    let tids = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .map(Pid::from_raw)
        .filter(|&t| t != pid);
    for tid in tids {
        if let Ok(
            WaitStatus::Stopped(..) | WaitStatus::PtraceEvent(..) | WaitStatus::PtraceSyscall(_),
        ) = waitpid(tid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG))
        {
            let _ = ptrace::cont(tid, None);
        }
    }
}

impl Running {
    /// Wraps a pid known to be a running tracee of ours.
    pub(crate) fn assume(pid: Pid) -> Self {
        Running { pid }
    }

    /// The task a tracee's fork, vfork or clone just created (the pid its
    /// `Stop::NewTask` event message names): traced from birth by the inherited
    /// PTRACE_O_TRACEFORK/VFORK/CLONE, it is on its way to its first stop, a SIGSTOP.
    pub fn new_task(pid: Pid) -> Self {
        Running { pid }
    }
}

impl Stopped {
    /// Makes the tracee execute one system call of our choosing, here, and returns its
    /// result; registers and the two code bytes borrowed for the `syscall` instruction are
    /// restored. For use where no asynchronous signal can arrive (e.g. at the exec stop):
    /// any signal stop in between is an error.
    pub fn inject_syscall(self, nr: u64, args: [u64; 6]) -> Result<(Stopped, i64)> {
        use crate::addr::Addr;
        let saved = self.regs()?;
        let at: Addr = Addr::new(saved.rip());
        let mut orig = [0u8; 2];
        self.read_exact(at, &mut orig)?;
        self.write_bytes(at, &[0x0f, 0x05])?;
        let mut r = saved;
        r.0.rax = nr;
        r.0.orig_rax = nr;
        [r.0.rdi, r.0.rsi, r.0.rdx, r.0.r10, r.0.r8, r.0.r9] = args;
        self.set_regs(&r)?;
        let pid = self.pid;
        let mut running = self.resume(Resume::Step(None))?;
        let stopped = loop {
            match running.wait()? {
                Waited::Stopped(s, Stop::Seccomp) | Waited::Stopped(s, Stop::Syscall) => {
                    running = s.resume(Resume::Step(None))?;
                }
                Waited::Stopped(s, Stop::Signal(Signal::SIGTRAP)) => break s,
                Waited::Stopped(_, other) => {
                    return Err(Error::Unexpected {
                        pid: pid.as_raw(),
                        op: "inject syscall",
                        what: format!("{other:?}"),
                    })
                }
                Waited::Exited(e) => {
                    return Err(Error::Unexpected {
                        pid: pid.as_raw(),
                        op: "inject syscall",
                        what: format!("{e:?}"),
                    })
                }
            }
        };
        let ret = stopped.regs()?.syscall_ret();
        stopped.write_bytes(at, &orig)?;
        stopped.set_regs(&saved)?;
        Ok((stopped, ret))
    }
}

impl Stopped {
    /// Makes the tracee add `filter` to its seccomp filters (it already runs with
    /// no_new_privs, set before its first filter): a page is mapped for the program,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` is injected, and the page is unmapped again, so
    /// the address space is as it was. Returns the seccomp call's result. At the exec stop.
    pub fn inject_filter(self, filter: &crate::seccomp::Program) -> Result<(Stopped, i64)> {
        use crate::addr::Addr;
        const PAGE: u64 = 0x1000;
        let code = filter.to_bytes();
        let len = u16::try_from(filter.len()).map_err(|_| Error::Unexpected {
            pid: self.pid.as_raw(),
            op: "inject seccomp filter",
            what: format!("{} instructions", filter.len()),
        })?;
        let size = (16 + code.len() as u64).div_ceil(PAGE) * PAGE;
        let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let (s, at) =
            self.inject_syscall(libc::SYS_mmap as u64, [0, size, prot, flags, u64::MAX, 0])?;
        let Ok(at) = u64::try_from(at) else {
            return Ok((s, at));
        };
        let mut fprog = [0u8; 16];
        fprog[0..2].copy_from_slice(&len.to_le_bytes());
        fprog[8..16].copy_from_slice(&(at + 16).to_le_bytes());
        s.write_bytes(Addr::new(at), &fprog)?;
        s.write_bytes(Addr::new(at + 16), &code)?;
        const SECCOMP_SET_MODE_FILTER: u64 = 1;
        let (s, ret) = s.inject_syscall(
            libc::SYS_seccomp as u64,
            [SECCOMP_SET_MODE_FILTER, 0, at, 0, 0, 0],
        )?;
        let (s, _) = s.inject_syscall(libc::SYS_munmap as u64, [at, size, 0, 0, 0, 0])?;
        Ok((s, ret))
    }
}

/// Waits for the end of tracee `pid`, which vanished (`Error::Died`) under an operation
/// at one of its stops: something killed it with SIGKILL meanwhile.
pub fn wait_death(pid: Pid) -> Result<Exit> {
    Running { pid }.wait_end()
}

/// Kills and reaps the tracee `pid` when its `Stopped`/`Running` handle is already gone
/// (an error path); errors are ignored because it may have died already.
pub fn kill_pid(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let _ = Running { pid }.kill();
}

/// Kills and reaps tracees `pids`, which may be threads of one group: all are sent
/// SIGKILL first, then reaped as each is reported (a group's leader only comes after its
/// other threads, so waiting for it first would never end).
pub fn kill_all(pids: &[Pid]) {
    for &pid in pids {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    let mut left: Vec<Pid> = pids.to_vec();
    let mut nap = std::time::Duration::from_micros(20);
    while !left.is_empty() {
        left.retain(|&pid| {
            match waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => false,
                Ok(WaitStatus::StillAlive) => true,
                // A stop that raced with the kill: let it run into it.
                Ok(_) => {
                    let _ = ptrace::cont(pid, None);
                    true
                }
            }
        });
        std::thread::sleep(nap);
        nap = (nap * 2).min(std::time::Duration::from_millis(1));
    }
}

/// Sends SIGSTOP to thread `pid` alone (tkill: any thread of a group, from any thread of
/// the tracer); for a preemption alarm, which sends it from its own thread. Errors are
/// ignored: a thread that is gone has nothing to stop.
pub fn send_stop(pid: Pid) {
    // SAFETY: tkill takes two integers and touches no memory of ours.
    let _ = unsafe { libc::syscall(libc::SYS_tkill, pid.as_raw(), libc::SIGSTOP) };
}

/// Sends SIGKILL to the tracee `pid` without reaping it: for a watchdog on another thread,
/// while the thread that owns the tracee's handle goes on waiting and sees it die.
pub fn send_kill(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_status_is_the_kernels_encoding() {
        let w = Exit::Exited(3).wait_status();
        assert!(libc::WIFEXITED(w));
        assert_eq!(libc::WEXITSTATUS(w), 3);
        let w = Exit::Signaled(Signal::SIGSEGV, true).wait_status();
        assert!(libc::WIFSIGNALED(w));
        assert_eq!(libc::WTERMSIG(w), libc::SIGSEGV);
        assert!(libc::WCOREDUMP(w));
        assert!(!libc::WCOREDUMP(
            Exit::Signaled(Signal::SIGKILL, false).wait_status()
        ));
    }
}
