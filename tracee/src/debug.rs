//! Instruction-level control for replay and debugging: single-step traps, software
//! breakpoint bytes written with PTRACE_POKEDATA (no file is opened, even for read-only
//! code pages), the x86 debug registers (hardware watchpoints, via PTRACE_POKEUSER into
//! `u_debugreg`), and forking a stopped tracee into a frozen copy (rr's checkpoints).

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::addr::Addr;
use crate::error::{Error, Result};
use crate::task::{Resume, Running, Stop, Stopped, Waited};

/// `offsetof(struct user, u_debugreg)` on x86_64.
const DEBUGREG_OFFSET: usize = 848;

/// `si_code` of a single-step trap.
pub const TRAP_TRACE: i32 = 2;
/// `si_code` of a hardware breakpoint/watchpoint trap.
pub const TRAP_HWBKPT: i32 = 4;

/// What a hardware watchpoint fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// Instruction execution at the address (length must be 1).
    Execute,
    /// Data writes.
    Write,
    /// Data reads or writes.
    ReadWrite,
}

impl Stopped {
    fn peek_word(&self, addr: u64) -> Result<u64> {
        Errno::clear();
        // SAFETY: PTRACE_PEEKDATA reads a word of the tracee's memory and returns it;
        // it touches none of our memory.
        let v = unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, self.pid().as_raw(), addr, 0usize) };
        if v == -1 && Errno::last() != Errno::UnknownErrno {
            return Err(Error::os("PTRACE_PEEKDATA", self.pid())(Errno::last()));
        }
        Ok(v as u64)
    }

    fn poke_word(&self, addr: u64, word: u64) -> Result<()> {
        // SAFETY: PTRACE_POKEDATA writes a word into the tracee's memory; the data
        // argument is passed by value, no pointer of ours is involved.
        let r = unsafe { libc::ptrace(libc::PTRACE_POKEDATA, self.pid().as_raw(), addr, word) };
        if r < 0 {
            return Err(Error::os("PTRACE_POKEDATA", self.pid())(Errno::last()));
        }
        Ok(())
    }

    /// Writes a few bytes with PTRACE_POKEDATA, which works on read-only pages (code)
    /// without opening /proc/PID/mem. Meant for breakpoints and patched instructions.
    pub fn poke_bytes(&self, addr: Addr, bytes: &[u8]) -> Result<()> {
        let mut done = 0usize;
        while done < bytes.len() {
            let at = addr.raw() + done as u64;
            let word_at = at & !7;
            let skip = (at & 7) as usize; // 0..=7, the offset in its word
            let mut w = self.peek_word(word_at)?.to_le_bytes();
            let n = (8 - skip).min(bytes.len() - done);
            w[skip..skip + n].copy_from_slice(&bytes[done..done + n]);
            self.poke_word(word_at, u64::from_le_bytes(w))?;
            done += n;
        }
        Ok(())
    }

    /// Reads debug register `i` (0–3 addresses, 6 status, 7 control).
    pub fn debugreg(&self, i: usize) -> Result<u64> {
        Errno::clear();
        let off = DEBUGREG_OFFSET + 8 * i;
        // SAFETY: PTRACE_PEEKUSER reads one word of the tracee's `struct user` at a
        // valid, aligned offset and returns it; no memory of ours is touched.
        let v = unsafe { libc::ptrace(libc::PTRACE_PEEKUSER, self.pid().as_raw(), off, 0usize) };
        if v == -1 && Errno::last() != Errno::UnknownErrno {
            return Err(Error::os("PTRACE_PEEKUSER u_debugreg", self.pid())(
                Errno::last(),
            ));
        }
        Ok(v as u64)
    }

    /// Writes debug register `i`; the kernel validates addresses and control bits.
    pub fn set_debugreg(&self, i: usize, value: u64) -> Result<()> {
        let off = DEBUGREG_OFFSET + 8 * i;
        // SAFETY: PTRACE_POKEUSER writes one word into the tracee's `struct user` at a
        // valid offset; the value is passed by value.
        let r = unsafe { libc::ptrace(libc::PTRACE_POKEUSER, self.pid().as_raw(), off, value) };
        if r < 0 {
            return Err(Error::os("PTRACE_POKEUSER u_debugreg", self.pid())(
                Errno::last(),
            ));
        }
        Ok(())
    }

    /// Programs the four hardware slots: each `Some((addr, len, kind))` is enabled
    /// (len 1, 2, 4 or 8), `None` disabled. Clears the status register.
    pub fn set_watchpoints(&self, slots: &[Option<(u64, usize, WatchKind)>; 4]) -> Result<()> {
        let mut dr7 = 0u64;
        // Disable first so that changing addresses never trips the kernel's checks.
        self.set_debugreg(7, 0)?;
        for (i, slot) in slots.iter().enumerate() {
            let Some((addr, len, kind)) = *slot else {
                continue;
            };
            self.set_debugreg(i, addr)?;
            let rw = match kind {
                WatchKind::Execute => 0b00,
                WatchKind::Write => 0b01,
                WatchKind::ReadWrite => 0b11,
            };
            let ln = match (kind, len) {
                (WatchKind::Execute, _) | (_, 1) => 0b00,
                (_, 2) => 0b01,
                (_, 8) => 0b10,
                _ => 0b11,
            };
            dr7 |= 1 << (2 * i);
            dr7 |= (rw | ln << 2) << (16 + 4 * i);
        }
        self.set_debugreg(6, 0)?;
        self.set_debugreg(7, dr7)
    }

    /// Which hardware slots fired (DR6 bits 0–3); clears DR6.
    pub fn take_watch_hits(&self) -> Result<u8> {
        let dr6 = self.debugreg(6)?;
        if dr6 & 0xf != 0 {
            self.set_debugreg(6, 0)?;
        }
        Ok((dr6 & 0xf) as u8)
    }

    /// Forks the stopped tracee (clone with CLONE_PARENT, so the copy is our child and
    /// reaped by us) and returns the copy, stopped, with the same registers and memory;
    /// `self` is stopped again at the same point. Neither runs a user instruction. The
    /// two code bytes borrowed for the `syscall` are restored in both.
    ///
    /// `self` must be at a stop where resuming with no signal continues user execution
    /// (not a seccomp stop); afterwards both are at signal-delivery stops.
    pub fn fork_stopped(self) -> Result<(Stopped, Stopped)> {
        const CLONE_PARENT: u64 = 0x0000_8000;
        let saved = self.regs()?;
        let at: Addr = Addr::new(saved.rip());
        let mut orig = [0u8; 2];
        self.read_exact(at, &mut orig)?;
        self.poke_bytes(at, &[0x0f, 0x05])?;
        let mut r = saved;
        r.0.rax = libc::SYS_clone as u64;
        r.0.orig_rax = u64::MAX;
        [r.0.rdi, r.0.rsi, r.0.rdx, r.0.r10, r.0.r8, r.0.r9] = [CLONE_PARENT, 0, 0, 0, 0, 0];
        self.set_regs(&r)?;
        let pid = self.pid();
        let unexpected = |what: String| Error::Unexpected {
            pid: pid.as_raw(),
            op: "fork checkpoint",
            what,
        };
        let mut running = self.resume(Resume::Step(None))?;
        let mut child = None;
        let parent = loop {
            match running.wait()? {
                Waited::Stopped(s, Stop::Seccomp) | Waited::Stopped(s, Stop::Syscall) => {
                    running = s.resume(Resume::Step(None))?;
                }
                Waited::Stopped(s, Stop::NewTask) => {
                    let msg = s.event_msg()?;
                    // PTRACE_EVENT_FORK's message is the child's pid_t in an unsigned long.
                    let pid = i32::try_from(msg)
                        .map_err(|_| unexpected(format!("fork event with pid {msg}")))?;
                    child = Some(nix::unistd::Pid::from_raw(pid));
                    running = s.resume(Resume::Step(None))?;
                }
                Waited::Stopped(s, Stop::Signal(Signal::SIGTRAP)) => break s,
                Waited::Stopped(s, Stop::Signal(_)) => {
                    // A host signal racing with us: drop it, it is not part of the replay.
                    running = s.resume(Resume::Step(None))?;
                }
                Waited::Stopped(_, other) => return Err(unexpected(format!("{other:?}"))),
                Waited::Exited(e) => return Err(unexpected(format!("{e:?}"))),
            }
        };
        let ret = parent.regs()?.syscall_ret();
        parent.poke_bytes(at, &orig)?;
        parent.set_regs(&saved)?;
        let Some(child) = child else {
            return Err(unexpected(format!(
                "clone returned {ret} without a new task"
            )));
        };
        // The new task starts with a SIGSTOP stop (auto-attached by PTRACE_O_TRACECLONE).
        let copy = match Running::assume(child).wait()? {
            Waited::Stopped(s, Stop::Signal(_)) => s,
            Waited::Stopped(s, other) => {
                let _ = s.kill();
                return Err(unexpected(format!("new copy stopped with {other:?}")));
            }
            Waited::Exited(e) => return Err(unexpected(format!("new copy ended: {e:?}"))),
        };
        copy.poke_bytes(at, &orig)?;
        copy.set_regs(&saved)?;
        Ok((parent, copy))
    }
}

/// Stops core dumps of the calling process and of the children it starts afterwards, so a
/// replayed crash leaves no core file on the host.
pub fn disable_core_dumps() -> std::io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which lives on our stack for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Only the soft limit: the hard one stays, so the user can raise it again.
    lim.rlim_cur = 0;
    // SAFETY: setrlimit reads one rlimit struct, which lives on our stack for the call.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
