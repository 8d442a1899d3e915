//! System calls, replayer side (the table is `tracee::syscalls`, shared with the recorder): which recorded calls are
//! executed and which emulated, the checks at each seccomp stop, and the injection of
//! results and memory writes.
//!
//! * Executed (they shape the process, and their result is compared): `rt_sigaction`,
//!   `exit`/`exit_group`, and file-backed `mmap`, which becomes an anonymous mapping at the
//!   recorded address filled from the trace (`mmaps`).
//! * Everything else the filter traces is emulated: skipped (orig_rax = -1) and given its
//!   recorded result and writes. That covers every call that reads, writes, opens, sends,
//!   signals (`kill` of itself: the signal is in the trace) or arms a timer
//!   (`setitimer`: emulated, so no real SIGALRM floods the replay): the replay has no
//!   host side effects.
//! * Every call that sends bytes out (`tracee::syscalls::sent`) is checked before it is
//!   emulated: the bytes the replayed program hands the kernel must be the recorded ones
//!   (compared byte for byte where the trace keeps them, else by SHA-256). Output that
//!   reached the recorder's stdout or stderr is echoed to the replayer's.
//!
//! Calls the filter allows (anonymous mmap, mprotect, brk, sigprocmask, …) run natively,
//! as they did at record time.

use trace::{BlobHash, Data, Event, FileMapping, Output, SyscallEvent};
use tracee::syscalls::sent::Source;
use tracee::{Addr, Regs, Resume, Stopped, Waited};

use crate::error::Result;
use crate::session::{Engine, Kind};

/// What replay does with a recorded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayClass<'a> {
    /// Skip it and inject the recorded result and writes.
    Emulate,
    /// Run it and compare the result.
    Execute,
    /// Run it; the process ends.
    Exit,
    /// A file-backed mmap: map anonymous memory at the recorded address and fill it.
    MapFile(&'a FileMapping),
}

/// How replay treats a recorded syscall.
pub fn replay_class(ev: &SyscallEvent) -> ReplayClass<'_> {
    let nr = ev.nr as i64;
    if nr == libc::SYS_exit || nr == libc::SYS_exit_group {
        ReplayClass::Exit
    } else if nr == libc::SYS_rt_sigaction {
        ReplayClass::Execute
    } else if let Some(m) = ev.mapping.as_ref().filter(|_| nr == libc::SYS_mmap) {
        ReplayClass::MapFile(m)
    } else {
        ReplayClass::Emulate
    }
}

/// Where a call takes a temporary signal mask.
#[derive(Debug, Clone, Copy)]
enum MaskArg {
    /// A `sigset_t *` argument.
    At(usize),
    /// An argument pointing at a struct whose first field is the `sigset_t *`.
    InStruct(usize),
}

fn temporary_mask_arg(nr: u64) -> Option<MaskArg> {
    let nr = i64::try_from(nr).ok()?;
    Some(match nr {
        libc::SYS_rt_sigsuspend => MaskArg::At(0),
        libc::SYS_ppoll => MaskArg::At(3),
        libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => MaskArg::At(4),
        libc::SYS_pselect6 => MaskArg::InStruct(5),
        _ => return None,
    })
}

/// Restart codes: a signal interrupted the call and will be placed at its exit.
pub(crate) fn is_restart(ret: i64) -> bool {
    (-516..=-512).contains(&ret)
}

pub(crate) fn name(nr: u64) -> String {
    trace::sysno::name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_owned)
}

/// `name(a0, a1, …) at rip`, for messages.
pub(crate) fn describe_call(nr: u64, args: &[u64; 6], rip: u64) -> String {
    format!(
        "{}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) returning to {rip:#x}",
        name(nr),
        args[0],
        args[1],
        args[2],
        args[3],
        args[4],
        args[5]
    )
}

impl Engine {
    /// A seccomp stop: the next event must be this call (or a signal placed at its entry).
    pub(crate) fn on_seccomp(&mut self, s: Stopped, ev: &Event) -> Result<()> {
        let regs = self.t(s.regs())?;
        match ev {
            Event::Syscall(sc) => self.on_syscall(s, regs, sc),
            Event::Signal(sig) if sig.placement == trace::Placement::SyscallEntry => {
                self.signal_at_entry(s, regs, sig)
            }
            Event::Blocked { nr, rip } => self.on_blocked(s, *nr, rip.0),
            Event::NewTask { tid } => self.on_new_task(s, *tid, false),
            Event::NewThread { tid } => self.on_new_task(s, *tid, true),
            Event::SharedMapping(m) => self.on_shared_mapping(s, m),
            Event::Exec(x) if regs.syscall_nr() == libc::SYS_execve as u64 => {
                self.on_execve(s, &regs, x)
            }
            other => {
                let found = describe_call(regs.syscall_nr(), &regs.syscall_args(), regs.rip());
                let _ = s.kill();
                Err(self.diverged(crate::describe(other), found))
            }
        }
    }

    pub(crate) fn check_call(&self, s: &Stopped, regs: &Regs, sc: &SyscallEvent) -> Result<()> {
        let (nr, args, rip) = (regs.syscall_nr(), regs.syscall_args(), regs.rip());
        if nr != sc.nr || args != sc.args || rip != sc.rip.0 {
            return Err(self.diverged(
                describe_call(sc.nr, &sc.args, sc.rip.0),
                describe_call(nr, &args, rip),
            ));
        }
        if let Some(path) = &sc.path {
            if let Some(i) = tracee::syscalls::path_arg(nr) {
                let found = self.t(s.read_cstr(Addr::new(args[i]), 4096))?;
                if &found != path {
                    return Err(self.diverged(
                        format!("{} of path {:?}", name(nr), String::from_utf8_lossy(path)),
                        format!("path {:?}", String::from_utf8_lossy(&found)),
                    ));
                }
            }
        }
        let ticks = self.read_ticks(s)?;
        if self.has_tick_abi() && ticks != sc.ticks {
            return Err(self.diverged(
                format!("{} at tick {}", name(nr), sc.ticks),
                format!("tick {ticks}"),
            ));
        }
        Ok(())
    }

    /// Waits for the syscall-exit stop after resuming from a seccomp stop.
    pub(crate) fn run_to_exit_stop(&mut self, s: Stopped) -> Result<Stopped> {
        match s.finish_syscall("running a call to its exit") {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(self.diverged(
                "the syscall-exit stop".into(),
                format!("the tracee ended: {e:?}"),
            )),
            Err(tracee::Error::Unexpected { what, .. }) => {
                Err(self.diverged("the syscall-exit stop".into(), format!("{what} before it")))
            }
            Err(e) => self.t(Err(e)),
        }
    }

    /// The recorded call at its seccomp stop (rr's `rep_process_syscall`).
    pub(crate) fn on_syscall(&mut self, s: Stopped, regs: Regs, sc: &SyscallEvent) -> Result<()> {
        if let Err(e) = self.check_call(&s, &regs, sc) {
            self.put_live(s);
            return Err(e);
        }
        if let Some(p) = self.pacer() {
            let inline = if sc.nr as i64 == libc::SYS_setitimer {
                s.read_vec(Addr::new(sc.args[1]), 32).ok()
            } else if sc.nr as i64 == libc::SYS_nanosleep {
                s.read_vec(Addr::new(sc.args[0]), 16).ok()
            } else if sc.nr as i64 == libc::SYS_clock_nanosleep {
                s.read_vec(Addr::new(sc.args[2]), 16).ok()
            } else {
                None
            };
            p.syscall(sc, inline.as_deref());
        }
        if let Err(e) = self.check_output(&s, sc) {
            self.put_live(s);
            return Err(e);
        }
        match replay_class(sc) {
            ReplayClass::Exit => {
                self.applied();
                let running = self.t(s.resume(Resume::Cont(None)))?;
                if self.has_other_tasks() {
                    // Its end is the next event of this task (its group's leader is
                    // reported only once the others of the group are reaped).
                    self.cur_mut().call = crate::tasks::Call::Exiting(running);
                    return Ok(());
                }
                match self.t(running.wait())? {
                    Waited::Exited(e) => {
                        self.on_exit(e)?;
                        Ok(())
                    }
                    Waited::Stopped(s, other) => {
                        let _ = s.kill();
                        Err(self.diverged("the process to end".into(), format!("{other:?}")))
                    }
                }
            }
            ReplayClass::Execute => {
                let s = self.run_to_exit_stop(s)?;
                let ret = self.t(s.regs())?.syscall_ret();
                if ret != sc.ret {
                    self.put_live(s);
                    return Err(self.diverged(
                        format!("{} returning {}", name(sc.nr), sc.ret),
                        format!("it returned {ret}"),
                    ));
                }
                let n = self.next_event();
                self.applied();
                self.at_boundary(s, Kind::SyscallExit(n));
                Ok(())
            }
            ReplayClass::MapFile(m) => self.on_mmap(s, regs, sc, m),
            ReplayClass::Emulate if self.signal_follows_under_its_mask(sc) => {
                self.suspend_for_signal(s, regs, sc)
            }
            ReplayClass::Emulate => {
                let mut skip = regs;
                skip.set_orig_rax(u64::MAX);
                self.t(s.set_regs(&skip))?;
                let s = self.run_to_exit_stop(s)?;
                self.finish_emulated(s, sc)
            }
        }
    }

    /// Whether `sc` installs a temporary signal mask (sigsuspend, ppoll, pselect6,
    /// epoll_pwait) and the recording delivers a signal at its exit: that signal was
    /// delivered under the call's mask, with the program's own mask saved in its frame,
    /// which only the kernel can arrange.
    fn signal_follows_under_its_mask(&self, sc: &SyscallEvent) -> bool {
        temporary_mask_arg(sc.nr).is_some()
            && matches!(
                self.event(self.next_event() + 1),
                Some(Event::Signal(g))
                    if g.placement == trace::Placement::SyscallExit { event: self.next_event() }
            )
    }

    /// Emulates `sc` as an rt_sigsuspend on the call's own mask that the replayer
    /// interrupts with the recorded signal, so that the kernel applies and later restores
    /// the mask as it did at record time; then the recorded result and writes.
    fn suspend_for_signal(&mut self, s: Stopped, regs: Regs, sc: &SyscallEvent) -> Result<()> {
        let mask = match temporary_mask_arg(sc.nr) {
            Some(MaskArg::At(i)) => sc.args[i],
            // pselect6's sixth argument points at { const sigset_t *ss; size_t ss_len }.
            Some(MaskArg::InStruct(i)) if sc.args[i] != 0 => {
                self.t(s.read_u64(Addr::new(sc.args[i])))?
            }
            _ => 0,
        };
        let Some(Event::Signal(g)) = self.event(self.next_event() + 1).cloned() else {
            return Err(self.diverged(
                describe_call(sc.nr, &sc.args, sc.rip.0),
                "no signal after it".into(),
            ));
        };
        let signal = tracee::Signal::try_from(g.signo).map_err(|_| {
            self.diverged(
                format!("signal {}", g.signo),
                "an unknown signal number".into(),
            )
        })?;
        let mut r = regs;
        if mask != 0 {
            r.set_orig_rax(libc::SYS_rt_sigsuspend as u64);
            r.set_rdi(mask);
            r.set_rsi(8);
        } else {
            // No mask of its own: the program's mask applies, as a skipped call leaves it.
            r.set_orig_rax(u64::MAX);
        }
        self.t(s.set_regs(&r))?;
        let running = self.t(s.resume(Resume::Syscall(None)))?;
        if mask != 0 {
            self.t(running.signal(signal))?;
        }
        let s = match self.t(running.wait())? {
            Waited::Stopped(s, tracee::Stop::Syscall) => s,
            Waited::Stopped(s, other) => {
                let _ = s.kill();
                return Err(self.diverged("the syscall-exit stop".into(), format!("{other:?}")));
            }
            Waited::Exited(e) => {
                return Err(self.diverged(
                    "the syscall-exit stop".into(),
                    format!("the tracee ended: {e:?}"),
                ))
            }
        };
        // The arguments as the program passed them; result and writes as recorded.
        let mut back = self.t(s.regs())?;
        back.set_rdi(regs.syscall_args()[0]);
        back.set_rsi(regs.syscall_args()[1]);
        back.set_orig_rax(sc.nr);
        self.t(s.set_regs(&back))?;
        self.finish_emulated(s, sc)
    }

    /// At the exit stop of a skipped call: the recorded result and writes.
    pub(crate) fn finish_emulated(&mut self, s: Stopped, sc: &SyscallEvent) -> Result<()> {
        let mut r = self.t(s.regs())?;
        r.set_syscall_ret(sc.ret);
        if is_restart(sc.ret) {
            let n = self.next_event();
            let signal_at_exit = matches!(
                self.event(n + 1),
                Some(Event::Signal(g)) if g.placement == trace::Placement::SyscallExit { event: n }
            );
            if signal_at_exit {
                // The kernel's restart rules apply when the recorded signal is delivered.
                r.set_orig_rax(sc.nr);
            } else {
                // The signal that interrupted it was held for a later place: no handler
                // ran, and the kernel made the call again from its instruction (as
                // restart_syscall for ERESTART_RESTARTBLOCK). Without a signal here it
                // would not, and the program would see the restart code.
                r.set_rip(r.rip().wrapping_sub(2));
                r.set_rax(if sc.ret == -516 {
                    libc::SYS_restart_syscall as u64
                } else {
                    sc.nr
                });
            }
        }
        self.t(s.set_regs(&r))?;
        for w in &sc.writes {
            let bytes = self.data_bytes(&w.data, w.data.len())?;
            self.t(s.write_bytes(Addr::new(w.addr.0), &bytes))?;
        }
        let n = self.next_event();
        self.applied();
        self.at_boundary(s, Kind::SyscallExit(n));
        Ok(())
    }

    /// The bytes of recorded data, inline or from its blob, which must hold `len` bytes.
    pub(crate) fn data_bytes(&self, d: &Data, len: u64) -> Result<Vec<u8>> {
        let bytes = match d {
            Data::Inline(v) => v.clone(),
            Data::Blob { hash, len } => self.data().reader.blob(hash, *len)?,
        };
        if bytes.len() as u64 != len {
            return Err(self.diverged(
                format!("{len} bytes of recorded data"),
                format!("the trace holds {}", bytes.len()),
            ));
        }
        Ok(bytes)
    }

    /// What the call sends out, checked against the recording before the call is
    /// emulated, and echoed when it went to the recorder's console: from the replayed
    /// program's own memory (identical to the recording's, as just checked), or from the
    /// trace for bytes the kernel copied from a file the replay does not have.
    fn check_output(&mut self, s: &Stopped, sc: &SyscallEvent) -> Result<()> {
        let call = || describe_call(sc.nr, &sc.args, sc.rip.0);
        let sent = tracee::syscalls::sent::sent(sc.nr, sc.args, sc.ret, s);
        let (sent, out) = match (sent, &sc.output) {
            (None, None) => return Ok(()),
            (Some(_), None) => {
                return Err(self.diverged(
                    format!("{} with no record of what it sends", call()),
                    "a call that sends bytes (the trace lost or never had them)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(self.diverged(
                    format!("{} sending recorded bytes", call()),
                    "a call that sends nothing".into(),
                ))
            }
            (Some(sent), Some(out)) => (sent, out),
        };
        if out.len != sc.ret as u64 {
            return Err(self.diverged(
                format!("{} sending {} bytes", call(), sc.ret),
                format!("a record of {} bytes sent", out.len),
            ));
        }
        match &sent.source {
            Source::Memory(ranges) => {
                let recorded = match &out.bytes {
                    Some(d) => Some(self.data_bytes(d, out.len)?),
                    None => None,
                };
                let keep = recorded.as_ref().map_or(0, Vec::len);
                let read = |addr: u64, buf: &mut [u8]| s.read_exact(Addr::new(addr), buf);
                let (sha, head) = self.t(tracee::syscalls::sent::digest(ranges, keep, read))?;
                let sha = trace::BlobHash(sha);
                if let Some(why) = output_difference(&head, sha, out, recorded.as_deref()) {
                    return Err(self.diverged(
                        format!("{} sending the recorded {} bytes", call(), out.len),
                        why,
                    ));
                }
                if let Some(stream) = out.console {
                    for &(addr, n) in ranges {
                        let bytes = self.t(s.read_vec(Addr::new(addr), n))?;
                        self.emit(&bytes, stream);
                    }
                }
            }
            Source::File { .. } => {
                if let (Some(stream), Some(d)) = (out.console, &out.bytes) {
                    let bytes = self.data_bytes(d, out.len)?;
                    self.emit(&bytes, stream);
                }
            }
        }
        Ok(())
    }
}

/// How the replayed output (its SHA-256 and first bytes) differs from the recorded one,
/// naming the first differing byte when the trace holds the bytes; `None` when the same.
fn output_difference(
    found: &[u8],
    sha: BlobHash,
    out: &Output,
    recorded: Option<&[u8]>,
) -> Option<String> {
    if let Some(rec) = recorded {
        if let Some(i) = found.iter().zip(rec).position(|(a, b)| a != b) {
            let show = |b: u8| {
                if b.is_ascii_graphic() || b == b' ' {
                    format!("{b:#04x} {:?}", b as char)
                } else {
                    format!("{b:#04x}")
                }
            };
            return Some(format!(
                "byte {i} of what it sends is {}, the recording's is {}",
                show(found[i]),
                show(rec[i])
            ));
        }
    }
    (sha != out.sha256).then(|| {
        format!(
            "what it sends has sha256 {}, the recording's {}",
            sha.hex(),
            out.sha256.hex()
        )
    })
}
