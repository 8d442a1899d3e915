//! System calls, recorder side (mirror of the replayer's `syscalls`): a traced call is
//! stopped at its seccomp stop, checked against the table (`tracee::syscalls`), run to
//! its syscall-exit stop, and logged with its result, the memory it wrote (whole, or as a
//! blob) and what it sent out of the process.

use trace::{Event, MemWrite, RemoteAddr, SyscallEvent};
use tracee::syscalls::{self, Class, Peek};
use tracee::{Addr, Pid, Resume, Stopped};

use crate::error::{Error, Result};
use crate::files;
use crate::session::{Flow, Session};
use crate::tasks::{CallEnd, PendingCall, Ready, Waiting};

impl Session {
    /// A traced call at its seccomp stop: refuse what the table refuses, run it to its
    /// exit stop, and record its result, the memory it wrote and what it sent.
    pub(crate) fn on_syscall(&mut self, s: Stopped) -> Result<Flow> {
        self.task.last_exit = None;
        if self.task.sig.stop_sent {
            return self.take_pending_stop(s);
        }
        // A probe's breakpoint is left only while the task runs on in user code: another
        // task must not meet it, and the call is a place of its own.
        self.clear_probe(&s)?;
        self.task.preempt = crate::preempt::Preemption::default();
        let regs = self.t(s.regs())?;
        let nr = regs.syscall_nr();
        let args = regs.syscall_args();
        let name = trace::sysno::name(nr)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("syscall_{nr}"));
        match syscalls::class(nr) {
            None => {
                let event = self.writer.next_index();
                let err = Error::UnknownSyscall {
                    name,
                    nr,
                    rip: regs.rip(),
                    event,
                    pid: self.task.pid.as_raw(),
                    trace: self.writer.dir().to_path_buf(),
                };
                let _ = s.kill();
                self.append(Event::Aborted {
                    reason: err.to_string(),
                })?;
                return Err(err);
            }
            Some(Class::Refuse(why)) => {
                let what = format!("{name}({:#x}, {:#x}, …)", args[0], args[1]);
                return self.abort(s, what, why.into(), regs.rip());
            }
            // execve (`exec_fence`) is recorded when it fails, as an `Exec` when not; other
            // calls the filter lets run reach here only from ABIs it could not classify.
            Some(Class::Record { .. } | Class::Allow | Class::Fail(_)) => {}
        }
        if self.task.sig.has_held()
            && !self.task.sig.is_reissue(regs.rip())
            && !self.t(self.held_is_blocked(&s))?
        {
            return self.place_before_syscall(s, regs);
        }
        self.arm_chaos_tick(&s)?;
        let path = syscalls::path_arg(nr).and_then(|i| {
            (args[i] != 0)
                .then(|| s.read_cstr(Addr::new(args[i]), 4096).ok())
                .flatten()
        });
        let ticks = self.read_ticks(&s)?;
        let event = SyscallEvent {
            nr,
            args,
            ret: 0,
            ticks,
            rip: RemoteAddr(regs.rip()),
            path,
            writes: Vec::new(),
            mapping: None,
            output: None,
        };
        // A copying call's source position, before the call moves it.
        let copy_from = if tracee::syscalls::sent::copies_from_file(nr) {
            let (fd, ptr) = if nr == libc::SYS_sendfile as u64 {
                (args[1], args[2])
            } else {
                (args[0], args[1])
            };
            crate::output::source_offset(&s, tracee::abi::as_c_int(fd), ptr)
        } else {
            None
        };
        if let Some(played) = self.played_call(&s, nr, args)? {
            let call = PendingCall {
                event,
                name,
                entry_rip: regs.rip(),
                copy_from: None,
            };
            return match played {
                Ok(played) => self.complete_played(s, call, regs, played),
                Err(why) => {
                    let what = format!("{}({:#x}, {:#x}, …)", call.name, args[0], args[1]);
                    self.abort(s, what, why, regs.rip())
                }
            };
        }
        if nr == libc::SYS_exit_group as u64 || nr == libc::SYS_exit as u64 {
            // These do not return: log them now, the exit status follows. A thread that
            // is not its group's leader is waited for before any other task runs: on its
            // way out the kernel clears its CLONE_CHILD_CLEARTID word and wakes that
            // futex, a write the other threads read (glibc's stack cache does), so it
            // must land at the same point of the schedule at replay. A leader's end (and
            // exit_group's) waits for the group's other threads: it is waited for among
            // theirs, parked.
            let pid = s.pid();
            let lone_thread = nr == libc::SYS_exit as u64
                && tracee::maps::thread_group_id(pid).is_ok_and(|tgid| tgid != pid.as_raw());
            self.append(Event::Syscall(event))?;
            let running = self.t(s.resume(Resume::Cont(None)))?;
            if self.tasks.is_empty() || lone_thread {
                return Ok(Flow::Running(running));
            }
            return Ok(Flow::Parked(Waiting::Exiting));
        }
        if tracee::syscalls::creates_task(nr) {
            if let Some(why) = self.t(crate::tasks::refused_clone(&s, nr, args))? {
                let what = format!("{name}({:#x}, …)", args[0]);
                return self.abort(s, what, why.into(), regs.rip());
            }
            // The child would inherit a probe's breakpoint, and trap on it.
            self.clear_probe(&s)?;
        }
        if let Some(why) = self.write_into_shared_mapping(&s, nr, args)? {
            return self.abort(s, format!("{name}({:#x}, …)", args[0]), why, regs.rip());
        }
        let call = PendingCall {
            event,
            name,
            entry_rip: regs.rip(),
            copy_from,
        };
        match self.run_call(s, nr)? {
            CallEnd::Returned(s) => self.complete_call(s, call),
            CallEnd::Executed(s) => self.on_exec(s),
            CallEnd::Died(e) => {
                let mut event = call.event;
                event.ret = -(libc::EINTR as i64);
                self.append(Event::Syscall(event))?;
                Ok(Flow::Exited(e))
            }
            CallEnd::Blocked => {
                self.append(Event::Blocked {
                    nr,
                    rip: RemoteAddr(call.entry_rip),
                })?;
                Ok(Flow::Parked(Waiting::InCall(Box::new(call))))
            }
        }
    }

    /// A finished call's effects on `event`: the memory it wrote (`writes`) and what it
    /// sent (`output`), read from `mem` — the tracee at the call's exit stop, or the
    /// record the syscall buffer made of it. `Ok(Err(why))` when they cannot be recorded.
    pub(crate) fn effects(
        &mut self,
        pid: Pid,
        mem: &dyn Peek,
        event: &mut SyscallEvent,
        copy_from: Option<u64>,
    ) -> Result<std::result::Result<(), String>> {
        let (nr, args) = (event.nr, event.args);
        let ranges = match syscalls::outputs(nr, args, event.ret, mem) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why.0)),
        };
        for (addr, len) in ranges {
            let Some(buf) = mem.peek(addr, len) else {
                // Recording fewer bytes than the call wrote would make the replay silently
                // wrong; a stopped tracee's memory is read as only a ptracer can.
                return Ok(Err(format!(
                    "its output at {addr:#x} ({len} bytes) cannot be read back from the tracee"
                )));
            };
            let data = files::data(&mut self.writer, buf)?;
            event.writes.push(MemWrite {
                addr: RemoteAddr(addr),
                data,
            });
        }
        // `sent` is `Some` only for a positive result, which is then a usize.
        let sent = tracee::syscalls::sent::sent(nr, args, event.ret, mem)
            .zip(usize::try_from(event.ret).ok());
        match sent {
            Some((sent, len)) => {
                let out = crate::output::record(
                    pid,
                    mem,
                    &mut self.writer,
                    &mut self.console,
                    &sent,
                    len,
                    copy_from,
                );
                match out {
                    Ok(out) => event.output = Some(out),
                    Err(why) => return Ok(Err(why)),
                }
            }
            None if tracee::syscalls::sent::may_change_descriptors(nr) => self.console.invalidate(),
            None => {}
        }
        Ok(Ok(()))
    }

    /// The rest of a recorded call at its syscall-exit stop: its result, the memory it
    /// wrote and what it sent, appended as its event.
    pub(crate) fn complete_call(&mut self, s: Stopped, call: PendingCall) -> Result<Flow> {
        let PendingCall {
            mut event,
            name,
            entry_rip,
            copy_from,
        } = call;
        let (nr, args) = (event.nr, event.args);
        let exit_regs = self.t(s.regs())?;
        event.ret = exit_regs.syscall_ret();
        let pid = s.pid();
        if let Err(why) = self.effects(pid, &s, &mut event, copy_from)? {
            return self.abort(s, format!("{name} returning {}", event.ret), why, entry_rip);
        }
        if nr == libc::SYS_mmap as u64 {
            match self.shared_mapping(args, event.ret)? {
                Some(shared) => {
                    self.append(Event::SharedMapping(shared))?;
                }
                None => {
                    event.mapping = crate::mmaps::on_mmap(
                        &mut self.files,
                        &mut self.writer,
                        self.task.pid,
                        args,
                        event.ret,
                    )?
                }
            }
        }
        if nr == libc::SYS_wait4 as u64 && event.ret > 0 {
            self.parent_waited(tracee::abi::as_c_int(event.ret as u64))?;
        }
        let index = self.append(Event::Syscall(event))?;
        self.task.last_exit = Some((exit_regs, index));
        if self.slice_over()? {
            return Ok(Flow::Parked(Waiting::Ready(Ready::Stopped(s))));
        }
        self.t(s.resume(Resume::Cont(None))).map(Flow::Running)
    }
}
