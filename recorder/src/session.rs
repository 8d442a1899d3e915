//! The record session: the wait loop that turns each ptrace stop into events, and the
//! handling of traced system calls (entry at the seccomp stop, result and output buffers
//! at the syscall-exit stop).

use std::time::Instant;

use trace::{Event, ExitStatus, MemWrite, RemoteAddr, SyscallEvent, TraceWriter};
use tracee::{Addr, Exit, Pid, Regs, Resume, Running, Stop, Stopped, Waited};

use crate::error::{Error, Result};
use crate::files::{self, FileCache};
use crate::signals::SignalState;
use tracee::syscalls::{self, Class};

/// Addresses of the execution-point ABI symbols in the tracee.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TickAddrs {
    pub ticks: Addr<u64>,
    pub target: Addr<u64>,
}

/// What became of the tracee after a stop was handled.
pub(crate) enum Flow {
    Running(Running),
    Exited(Exit),
}

/// State of one recording.
pub(crate) struct Session {
    pub writer: TraceWriter,
    pub pid: Pid,
    pub ticks: Option<TickAddrs>,
    pub sig: SignalState,
    /// Registers at the last syscall-exit stop and that event's index, while no user
    /// instruction can have run since (cleared at every other stop).
    pub last_exit: Option<(Regs, u64)>,
    pub files: FileCache,
    /// Which tracee descriptors reach the recorder's stdout and stderr.
    pub console: crate::output::Console,
    pub tsc_trapped: bool,
    pub cpuid_faulting: bool,
    /// The placement generator under `--chaos`.
    pub chaos: Option<crate::chaos::Chaos>,
    /// Asynchronous signals recorded so far (every one is an `Event::Signal`).
    pub signals: u64,
    /// Set by the watchdog when it killed the tracee for running past `--timeout`.
    pub timed_out: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Session {
    /// Wraps a tracee error with the current event index.
    pub(crate) fn t<T>(&self, r: tracee::Result<T>) -> Result<T> {
        r.map_err(|source| Error::Tracee {
            event: self.writer.next_index(),
            source,
        })
    }

    pub(crate) fn append(&mut self, e: Event) -> Result<u64> {
        if matches!(e, Event::Signal(_)) {
            self.signals += 1;
        }
        Ok(self.writer.append(&e)?)
    }

    /// `REWIND_TICKS` now, or 0 without the ABI.
    pub(crate) fn read_ticks(&self, s: &Stopped) -> Result<u64> {
        match self.ticks {
            Some(t) => self.t(s.read_u64(t.ticks)),
            None => Ok(0),
        }
    }

    /// Runs the tracee from its exec stop to its end. On `Err` the tracee is dead and the
    /// trace holds everything up to the failure.
    pub(crate) fn run(&mut self, first: Stopped) -> Result<ExitStatus> {
        let mut running = self.t(first.resume(Resume::Cont(None)))?;
        loop {
            let waited = self.wait(running)?;
            let flow = match waited {
                Waited::Exited(e) => Flow::Exited(e),
                Waited::Stopped(s, stop) => self.on_stop(s, stop)?,
            };
            match flow {
                Flow::Running(r) => running = r,
                Flow::Exited(_) if self.was_timed_out() => {
                    return Err(self.timeout_abort());
                }
                Flow::Exited(e) => {
                    let status = ExitStatus::from_wait_status(e.wait_status());
                    self.append(Event::Exit(status))?;
                    return Ok(status);
                }
            }
        }
    }

    /// Whether the watchdog killed the tracee.
    pub(crate) fn was_timed_out(&self) -> bool {
        self.timed_out
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// After the watchdog's kill: close the event stream with the reason.
    pub(crate) fn timeout_abort(&mut self) -> Error {
        let event = self.writer.next_index();
        let err = Error::TimedOut {
            event,
            pid: self.pid.as_raw(),
            trace: self.writer.dir().to_path_buf(),
        };
        if let Err(e) = self.append(Event::Aborted {
            reason: err.to_string(),
        }) {
            return e;
        }
        err
    }

    pub(crate) fn on_stop(&mut self, s: Stopped, stop: Stop) -> Result<Flow> {
        match stop {
            Stop::Seccomp => self.on_syscall(s),
            Stop::Signal(tracee::Signal::SIGSTOP) if self.is_our_stop(&s)? => self.on_our_stop(s),
            Stop::Signal(sig) => self.on_signal(s, sig).map(Flow::Running),
            Stop::Exec => {
                let rip = self.t(s.regs())?.rip();
                self.abort(
                    s,
                    "execve of a new program".into(),
                    "a second exec is not supported".into(),
                    rip,
                )
            }
            Stop::NewTask => {
                let rip = self.t(s.regs())?.rip();
                self.abort(
                    s,
                    "a new thread or process".into(),
                    "not supported".into(),
                    rip,
                )
            }
            Stop::Syscall => {
                let pid = s.pid().as_raw();
                let _ = s.kill();
                Err(Error::Tracee {
                    event: self.writer.next_index(),
                    source: tracee::Error::Unexpected {
                        pid,
                        op: "record",
                        what: "syscall stop outside a syscall".into(),
                    },
                })
            }
            Stop::OtherEvent(_) => self.t(s.resume(Resume::Cont(None))).map(Flow::Running),
        }
    }

    /// Logs why recording stops, kills the tracee and returns the error.
    pub(crate) fn abort(
        &mut self,
        s: Stopped,
        what: String,
        why: String,
        rip: u64,
    ) -> Result<Flow> {
        Err(self.abort_error(s, what, why, rip))
    }

    /// As `abort`, returning the error to raise.
    pub(crate) fn abort_error(&mut self, s: Stopped, what: String, why: String, rip: u64) -> Error {
        let event = self.writer.next_index();
        let err = Error::Unsupported {
            what,
            why,
            rip,
            event,
            pid: self.pid.as_raw(),
            trace: self.writer.dir().to_path_buf(),
        };
        let _ = s.kill();
        if let Err(e) = self.append(Event::Aborted {
            reason: err.to_string(),
        }) {
            return e;
        }
        err
    }

    fn on_syscall(&mut self, s: Stopped) -> Result<Flow> {
        self.last_exit = None;
        let regs = self.t(s.regs())?;
        let nr = regs.syscall_nr();
        let args = regs.syscall_args();
        let name = trace::sysno::name(nr)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("syscall_{nr}"));
        let path_arg = match syscalls::class(nr) {
            None => {
                let event = self.writer.next_index();
                let err = Error::UnknownSyscall {
                    name,
                    nr,
                    rip: regs.rip(),
                    event,
                    pid: self.pid.as_raw(),
                    trace: self.writer.dir().to_path_buf(),
                };
                self.append(Event::Aborted {
                    reason: err.to_string(),
                })?;
                let _ = s.kill();
                return Err(err);
            }
            Some(Class::Refuse(why)) => {
                let what = format!("{name}({:#x}, {:#x}, …)", args[0], args[1]);
                return self.abort(s, what, why.into(), regs.rip());
            }
            Some(Class::Record { path }) => path,
            // Only reaches here for calls the filter could not classify (other ABIs).
            Some(Class::Allow) | Some(Class::Fail(_)) => None,
        };
        if self.sig.has_held() {
            return self.place_before_syscall(s, regs);
        }
        self.arm_chaos_tick(&s)?;
        let path = path_arg.and_then(|i| {
            (args[i] != 0)
                .then(|| s.read_cstr(Addr::new(args[i]), 4096).ok())
                .flatten()
        });
        let ticks = self.read_ticks(&s)?;
        let mut event = SyscallEvent {
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
        if nr == libc::SYS_exit_group as u64 || nr == libc::SYS_exit as u64 {
            // These do not return: log them now, the exit status follows.
            self.append(Event::Syscall(event))?;
            return self.t(s.resume(Resume::Cont(None))).map(Flow::Running);
        }
        let s = match self.t(s.finish_syscall("waiting for syscall exit"))? {
            Ok(s) => s,
            Err(e) => {
                event.ret = -(libc::EINTR as i64);
                self.append(Event::Syscall(event))?;
                return Ok(Flow::Exited(e));
            }
        };
        let exit_regs = self.t(s.regs())?;
        event.ret = exit_regs.syscall_ret();
        let ranges = match syscalls::outputs(nr, args, event.ret, &s) {
            Ok(r) => r,
            Err(why) => {
                return self.abort(
                    s,
                    format!("{name} returning {}", event.ret),
                    why.0,
                    regs.rip(),
                )
            }
        };
        for (addr, len) in ranges {
            let mut buf = vec![0u8; len];
            let got = self.t(s.read_partial(Addr::new(addr), &mut buf))?;
            if got < len {
                // Recording fewer bytes than the call wrote would make the replay silently
                // wrong; read_partial already reads what only a ptracer can.
                return self.abort(
                    s,
                    format!("{name} returning {}", event.ret),
                    format!(
                        "its output at {addr:#x} ({len} bytes) cannot be read back from the \
                         tracee beyond byte {got}"
                    ),
                    regs.rip(),
                );
            }
            let data = files::data(&mut self.writer, buf)?;
            event.writes.push(MemWrite {
                addr: RemoteAddr(addr),
                data,
            });
        }
        // `sent` is `Some` only for a positive result, which is then a usize.
        let sent = tracee::syscalls::sent::sent(nr, args, event.ret, &s)
            .zip(usize::try_from(event.ret).ok());
        match sent {
            Some((sent, len)) => {
                match crate::output::record(
                    &s,
                    &mut self.writer,
                    &mut self.console,
                    &sent,
                    len,
                    copy_from,
                ) {
                    Ok(out) => event.output = Some(out),
                    Err(why) => {
                        return self.abort(
                            s,
                            format!("{name} returning {}", event.ret),
                            why,
                            regs.rip(),
                        )
                    }
                }
            }
            None if tracee::syscalls::sent::may_change_descriptors(nr) => self.console.invalidate(),
            None => {}
        }
        if nr == libc::SYS_mmap as u64 {
            event.mapping = crate::mmaps::on_mmap(
                &mut self.files,
                &mut self.writer,
                self.pid,
                args,
                event.ret,
            )?;
        }
        let index = self.append(Event::Syscall(event))?;
        self.last_exit = Some((exit_regs, index));
        self.t(s.resume(Resume::Cont(None))).map(Flow::Running)
    }

    /// Waits for the next stop. While a signal is held for placement, polls, and after
    /// `signals::HOLD_LIMIT` (or at the next probe, or the deadline) stops the tracee with
    /// SIGSTOP so the signal can be placed where it is (`Placement::Registers`).
    fn wait(&mut self, running: Running) -> Result<Waited> {
        let Some(since) = self.sig.held_since() else {
            return self.t(running.wait());
        };
        if self.sig.stop_sent {
            return self.t(running.wait());
        }
        let stop_at = self.sig.next_stop(since);
        let mut r = running;
        let mut nap = std::time::Duration::from_micros(20);
        loop {
            match self.t(r.try_wait())? {
                Ok(w) => return Ok(w),
                Err(back) => r = back,
            }
            if Instant::now() >= stop_at {
                self.t(r.signal(tracee::Signal::SIGSTOP))?;
                self.sig.stop_sent = true;
                return self.t(r.wait());
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(std::time::Duration::from_millis(1));
        }
    }

    /// Closes the trace after a failure: what was appended stays readable.
    pub(crate) fn flush(&mut self) {
        let _ = self.writer.flush_chunk();
    }
}

/// Registers in the trace's representation (the one conversion, through the kernel's
/// word order, shared with the replayer).
pub(crate) fn gprs(r: &Regs) -> trace::Gprs {
    trace::Gprs::from_user_regs(r.to_array())
}
