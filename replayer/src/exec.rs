//! The exec stop, replayer side (mirror of `recorder::exec`): start the program exactly as
//! it was recorded — ASLR off, TSC trapping, argv and env byte for byte in header order,
//! the inherited signal mask and ignored signals, working directory, pinned CPU — under
//! the replayer's own seccomp filter (never the trace's: a trace whose recorded filter
//! differs is refused), then at the exec stop hide the vDSO the same way and write back
//! the recorded AT_RANDOM bytes and the recorded strings in place of the stand-in names a
//! launch from the carried binary used (`files::launch`). The initial registers and
//! signal state are compared with the recorded ones (a different environment moves the
//! stack).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use trace::Header;
use tracee::{Addr, Stopped};

use crate::error::{Error, Result};
use crate::files::Launch;
use crate::session::{gprs, regs_diff, same_regs};
use crate::ticks::TickAddrs;

const AT_IGNORE: u64 = 1;
const AT_EXECFN: u64 = 31;

/// The started tracee at its exec stop.
pub(crate) struct Started {
    pub stopped: Stopped,
    pub ticks: Option<TickAddrs>,
    pub start_ticks: u64,
    pub cpuid: crate::cpuid::Mode,
    /// Why a signal handler here would run on another stack than at record time, if it
    /// would.
    pub frames_differ: Option<String>,
}

/// Starts the recorded program and prepares its exec stop.
pub(crate) fn start(trace: &Path, h: &Header, launch: &Launch) -> Result<Started> {
    let setup = |why: String| Error::Setup {
        trace: trace.to_path_buf(),
        why,
    };
    if let Some(why) = crate::cpuid::check_host(&h.cpuid) {
        return Err(Error::HostMismatch {
            trace: trace.to_path_buf(),
            why,
        });
    }
    let cpuid = crate::cpuid::Mode::for_recording(&h.cpuid);
    let cwd = &launch.cwd;
    if !cwd.is_dir() {
        return Err(setup(format!(
            "the recorded working directory {} does not exist here (a packed trace, \
             `rewind pack`, does not need it)",
            cwd.display()
        )));
    }
    let program = launch.program.clone();
    crate::files::check_binary(trace, &h.binary, &launch.binary)?;
    // A replayed crash must not leave a core file behind.
    let _ = tracee::debug::disable_core_dumps();
    let env = h
        .env
        .iter()
        .map(|kv| OsString::from(OsStr::from_bytes(kv)))
        .collect();
    // The replayer's own filter, from its own table: a trace never decides which calls
    // really run. A trace recorded with another filter would stop at other calls.
    // A recording that preloaded the syscall buffer let its untraced entry through;
    // replay runs the unbuffered filter, so each of those calls stops and is served from
    // its event like any other.
    let filter = tracee::syscalls::filter();
    let buffered = tracee::syscalls::filter_for(true).to_words();
    if filter.to_words() != h.seccomp_filter && buffered != h.seccomp_filter {
        return Err(setup(format!(
            "the trace was recorded with a system call filter of {} instructions that is not \
             this rewind's ({} instructions; recorder version {:?}): re-record it with this \
             rewind",
            h.seccomp_filter.len(),
            filter.to_words().len(),
            h.recorder_version
        )));
    }
    let cpu = h
        .cpu
        .map(|c| c as usize)
        .filter(|&c| tracee::cpu::cpu_allowed(c));
    let cpu = cpu.or_else(tracee::cpu::current_cpu);
    // Replayer and tracee on one CPU: cross-CPU ptrace wake-ups cost several times more.
    // (The thread stays pinned while it drives this tracee; see `Pin`.)
    if let Some(c) = cpu {
        let _ = tracee::cpu::pin_current_thread(c);
    }
    let opts = tracee::SpawnOptions {
        program: program.clone(),
        argv: launch
            .argv
            .iter()
            .map(|a| OsStr::from_bytes(a).to_owned())
            .collect(),
        env: Some(env),
        signals: Some(tracee::maps::SignalSets {
            blocked: h.signals.blocked,
            ignored: h.signals.ignored,
        }),
        seccomp: Some(filter),
        trap_tsc: h.tsc_trapped,
        no_aslr: true,
        cpu,
        stdout: None,
        stdin: None,
    };
    let s = tracee::spawn_in(&opts, Some(cwd)).map_err(|e| setup(e.to_string()))?;
    let fail = |s: Stopped, e: Error| {
        let _ = s.kill();
        Err(e)
    };
    let tr = |source| Error::Tracee { event: 0, source };
    let regs = match s.regs() {
        Ok(r) => r,
        Err(e) => return fail(s, tr(e)),
    };
    if !same_regs(&h.initial_regs, &gprs(&regs)) {
        let why = regs_diff(&h.initial_regs, &gprs(&regs));
        return fail(
            s,
            Error::Divergence {
                event: 0,
                expected: "the recorded registers at exec (same program path, argv, env)".into(),
                found: why,
            },
        );
    }
    match tracee::maps::inherited_signals(s.pid()) {
        Ok(found) if found.blocked == h.signals.blocked && found.ignored == h.signals.ignored => {}
        Ok(found) => {
            return fail(
                s,
                Error::Divergence {
                    event: 0,
                    expected: format!(
                        "the recorded inherited signals at exec (blocked {:#x}, ignored {:#x})",
                        h.signals.blocked, h.signals.ignored
                    ),
                    found: format!("blocked {:#x}, ignored {:#x}", found.blocked, found.ignored),
                },
            )
        }
        Err(e) => return fail(s, setup(format!("reading the tracee's signal state: {e}"))),
    }
    if let Some(at) = h.vdso_hidden_at {
        if let Err(e) = s.write_u64(Addr::new(at.0), AT_IGNORE) {
            return fail(s, tr(e));
        }
    }
    // The execve path on the stack: a replay from the carried binary ran a stand-in of
    // the same length.
    if let Some(at) = h.auxv_value(AT_EXECFN) {
        let mut execfn = h.program.clone();
        execfn.push(0);
        if let Err(e) = s.write_bytes(Addr::new(at), &execfn) {
            return fail(s, tr(e));
        }
    }
    if let Err(e) = restore_argv(&s, regs.rsp(), &h.argv, &launch.renamed) {
        return fail(s, e);
    }
    if let Some((at, bytes)) = h.at_random {
        if let Err(e) = s.write_bytes(Addr::new(at.0), &bytes) {
            return fail(s, tr(e));
        }
    }
    if launch.standin.is_none() {
        if let Err(why) = crate::files::check_loader(s.pid(), &h.initial_mappings, &h.binary.path) {
            return fail(
                s,
                Error::HostMismatch {
                    trace: trace.to_path_buf(),
                    why,
                },
            );
        }
    }
    if let Some(placed) = &launch.standin {
        if let Err(why) = placed.settle(&s) {
            return fail(s, setup(why));
        }
    }
    // Every later execve stops, as at record time: one that failed there is emulated from
    // its event, and a replay from a pack starts the recorded one from the trace's copy.
    let s = if launch.standin.is_some() || h.format_version >= trace::FAILED_EXECVE_RECORDED {
        match s.inject_filter(&tracee::syscalls::exec_fence()) {
            Ok((s, 0)) => s,
            Ok((s, r)) => return fail(s, setup(format!("adding the exec filter returned {r}"))),
            Err(e) => return Err(tr(e)),
        }
    } else {
        s
    };
    let stopped = match cpuid_faulting_on(s, cpuid) {
        Ok(st) => st,
        Err(Ok((st, r))) => return fail(st, setup(format!("ARCH_SET_CPUID failed: {r}"))),
        Err(Err(e)) => return Err(tr(e)),
    };
    let ticks = h.tick_abi.map(|t| TickAddrs {
        ticks: Addr::new(t.ticks.0),
        target: Addr::new(t.target.0),
    });
    let start_ticks = match ticks {
        Some(t) => match stopped.read_u64(t.ticks) {
            Ok(v) => v,
            Err(e) => return fail(stopped, tr(e)),
        },
        None => 0,
    };
    Ok(Started {
        stopped,
        ticks,
        start_ticks,
        cpuid,
        frames_differ: frames_differ(h),
    })
}

/// The signal frame the kernel builds holds the CPU's XSAVE area, so its size depends on
/// the CPU (AVX-512 adds kilobytes): a handler entered here would have its stack pointer,
/// and everything it puts on the stack, elsewhere than in the recording.
pub(crate) fn frames_differ(h: &Header) -> Option<String> {
    let recorded = h.auxv_value(tracee::cpu::AT_MINSIGSTKSZ);
    let here = tracee::cpu::signal_frame_size();
    (recorded != here).then(|| {
        let size = |v: Option<u64>| {
            v.map_or("of a size the kernel does not say".into(), |v| {
                format!("{v} bytes")
            })
        };
        format!(
            "signal frames {} here, {} at record time (the CPUs' XSAVE areas differ): the \
             handler's stack would not be the recording's",
            size(here),
            size(recorded)
        )
    })
}

/// Turns CPUID faulting on in a new image (execve resets it) when this replay traps
/// `cpuid`: `Err(Ok((s, ret)))` when the kernel refused it.
fn cpuid_faulting_on(
    s: Stopped,
    mode: crate::cpuid::Mode,
) -> std::result::Result<Stopped, tracee::Result<(Stopped, i64)>> {
    if mode != crate::cpuid::Mode::Faulting {
        return Ok(s);
    }
    match s.inject_syscall(
        libc::SYS_arch_prctl as u64,
        [tracee::cpu::ARCH_SET_CPUID_CODE, 0, 0, 0, 0, 0],
    ) {
        Ok((st, 0)) => Ok(st),
        other => Err(other),
    }
}

impl crate::session::Engine {
    /// `Event::Exec`: the current task executed a new program, at its exec stop here.
    /// The binary must be the recorded one, byte for byte, and stand where it stood;
    /// then the exec stop is prepared as the first program's was (vDSO hidden, AT_RANDOM
    /// bytes back, CPUID faulting on). Only the first program's execution points are
    /// followed.
    pub(crate) fn on_exec(&mut self, s: Stopped, x: &trace::ExecEvent) -> Result<()> {
        let standin = self.cur_mut().exec_standin.take();
        match &standin {
            Some(st) => {
                if let Err(why) = st.placed.settle(&s) {
                    let _ = s.kill();
                    return Err(self.diverged(
                        format!(
                            "the exec of {} started from the trace's copy",
                            String::from_utf8_lossy(&x.binary.path)
                        ),
                        why,
                    ));
                }
            }
            None => {
                let exe = std::path::PathBuf::from(format!("/proc/{}/exe", s.pid()));
                let checked = crate::files::check_binary(&self.data().path, &x.binary, &exe)
                    .and_then(|()| {
                        crate::files::check_loader(s.pid(), &x.mappings, &x.binary.path).map_err(
                            |why| Error::HostMismatch {
                                trace: self.data().path.clone(),
                                why,
                            },
                        )
                    });
                if let Err(e) = checked {
                    let _ = s.kill();
                    return Err(e);
                }
            }
        }
        let regs = self.t(s.regs())?;
        if !same_regs(&x.regs, &gprs(&regs)) {
            let why = regs_diff(&x.regs, &gprs(&regs));
            let _ = s.kill();
            // From the trace's copy of the program the kernel builds the stack from the
            // same path, argv and environment: other registers mean the recording's
            // kernel started something else from this path.
            let why = match &standin {
                Some(_) => format!(
                    "{why}: the recording's kernel started something else from this path (a \
                     #! script, binfmt_misc), which a replay from a pack cannot start where \
                     the host lacks it (the script is not in the trace)"
                ),
                None => why,
            };
            return Err(self.diverged(
                format!(
                    "the recorded registers at the exec of {}",
                    String::from_utf8_lossy(&x.binary.path)
                ),
                why,
            ));
        }
        if let Some(st) = &standin {
            self.t(st.restore_strings(&s, regs.rsp(), &x.auxv))?;
        }
        if let Some(at) = x.vdso_hidden_at {
            self.t(s.write_u64(Addr::new(at.0), AT_IGNORE))?;
        }
        if let Some((at, bytes)) = x.at_random {
            self.t(s.write_bytes(Addr::new(at.0), &bytes))?;
        }
        let s = match cpuid_faulting_on(s, self.cpuid_mode()) {
            Ok(st) => st,
            Err(Ok((st, r))) => {
                let _ = st.kill();
                return Err(self.diverged(
                    "CPUID faulting on in the new program".into(),
                    format!("ARCH_SET_CPUID returned {r}"),
                ));
            }
            Err(Err(e)) => return self.t(Err(e)),
        };
        self.cur_mut().ticks = None;
        self.cur_mut().armed = None;
        self.applied();
        self.at_boundary(s, crate::session::Kind::SignalDelivery);
        Ok(())
    }
}

/// An execve sent to a stand-in, between its seccomp stop and its exec stop.
#[derive(Debug, Clone)]
pub(crate) struct ExecStandin {
    placed: crate::standin::Placed,
    /// The path the program handed execve, and the stand-in's name written over it.
    recorded: Vec<u8>,
    standin: Vec<u8>,
}

impl ExecStandin {
    /// Puts the recorded path back where the kernel copied the stand-in's name onto the
    /// new stack: the exec path (AT_EXECFN) and any argv string that was the path itself.
    fn restore_strings(&self, s: &Stopped, rsp: u64, auxv: &[(u64, u64)]) -> tracee::Result<()> {
        let mut recorded = self.recorded.clone();
        recorded.push(0);
        let mut standin = self.standin.clone();
        standin.push(0);
        if let Some(at) = trace::auxv_value(auxv, AT_EXECFN) {
            if s.read_vec(Addr::new(at), standin.len())? == standin {
                s.write_bytes(Addr::new(at), &recorded)?;
            }
        }
        let argc = s.read_u64(Addr::new(rsp))?;
        for i in 0..argc.min(1 << 16) {
            let at = s.read_u64(Addr::new(rsp + 8 * (i + 1)))?;
            if s.read_vec(Addr::new(at), standin.len())
                .is_ok_and(|b| b == standin)
            {
                s.write_bytes(Addr::new(at), &recorded)?;
            }
        }
        Ok(())
    }
}

impl crate::session::Engine {
    /// The seccomp stop of an execve in a replay from a pack (`exec_fence`, added at the
    /// first exec stop): the program the recording executed next is placed from the
    /// trace's blob under a name as long as the path handed to execve, which is written
    /// over that path; the exec stop puts the path back (`on_exec`). The memory written
    /// is the old image's, which the exec discards; a vfork child's is its parent's too,
    /// and is refused.
    pub(crate) fn on_execve(
        &mut self,
        s: Stopped,
        regs: &tracee::Regs,
        x: &trace::ExecEvent,
    ) -> Result<()> {
        let data = std::sync::Arc::clone(self.data());
        if data.launch.standin.is_none() {
            self.put_live(s);
            return Ok(());
        }
        let program = String::from_utf8_lossy(&x.binary.path).into_owned();
        let refuse = |engine: &mut Self, s: Stopped, why: String| {
            let _ = s.kill();
            Err(engine.diverged(format!("the exec of {program} from the trace's copy"), why))
        };
        let at = regs.syscall_args()[0];
        let path = match s.read_cstr(Addr::new(at), 4096) {
            Ok(p) => p,
            Err(e) => return refuse(self, s, format!("the path handed to execve: {e}")),
        };
        // A recording older than format 7 has no event for an execve that failed (execvp
        // trying each $PATH entry), which then runs as the host has it: it is told from
        // the recorded exec by its path's length (the kernel copies the exec path just
        // below the stack's top, so the recorded AT_EXECFN, against the first program's,
        // gives it). From format 7 on, such a call is its own event.
        let h = data.header();
        if h.format_version < trace::FAILED_EXECVE_RECORDED {
            let recorded_len = h
                .auxv_value(AT_EXECFN)
                .and_then(|first| first.checked_add(h.program.len() as u64))
                .zip(trace::auxv_value(&x.auxv, AT_EXECFN))
                .and_then(|(top, this)| top.checked_sub(this));
            if recorded_len.is_some_and(|n| n != path.len() as u64) {
                self.put_live(s);
                return Ok(());
            }
        }
        // A `#!` script is not in the trace (only what its interpreter reads of it): the
        // host's copy is run, and the exec stop checks the interpreter the kernel chose
        // and the stack it built from the script's line.
        let host = Path::new(OsStr::from_bytes(&path));
        let is_file = host.metadata().is_ok_and(|m| m.is_file());
        if host.is_absolute() && is_file && trace::Script::of(host).is_ok_and(|l| l.is_some()) {
            self.put_live(s);
            return Ok(());
        }
        let me = s.pid();
        let group = tracee::maps::thread_group_id(me).ok();
        for pid in self.parked().values().filter_map(|t| t.pid()) {
            let other_group = tracee::maps::thread_group_id(pid).ok();
            if other_group != group && tracee::maps::shares_memory(me, pid).unwrap_or(true) {
                // The host's own copy, when it is the recorded one, needs no renaming (its
                // loader is checked at the exec stop).
                if host.is_absolute()
                    && crate::files::check_binary(&data.path, &x.binary, host).is_ok()
                {
                    self.put_live(s);
                    return Ok(());
                }
                return refuse(
                    self,
                    s,
                    format!(
                        "it is executed by a vfork child, whose memory is its parent's: a \
                         replay from a pack cannot rename the path {:?} there, and this host \
                         has no copy of the recorded program at that path",
                        String::from_utf8_lossy(&path)
                    ),
                );
            }
        }
        let Some(name) = crate::standin::same_length_name(&path, Path::new(&program), b'_') else {
            return refuse(
                self,
                s,
                format!(
                    "the path {:?} is too short to stand in for",
                    String::from_utf8_lossy(&path)
                ),
            );
        };
        let image = match data.reader.blob(&x.binary.sha256, x.binary.size) {
            Ok(b) => b,
            Err(e) => return refuse(self, s, format!("the trace's copy of the program: {e}")),
        };
        let placed = match crate::files::place_program(
            &data.reader,
            &data.launch.cwd,
            &name,
            image,
            &x.binary.path,
            &x.mappings,
        ) {
            Ok(p) => p,
            Err(why) => return refuse(self, s, why),
        };
        let standin = name.as_os_str().as_bytes().to_vec();
        if let Err(e) = s.write_bytes(Addr::new(at), &standin) {
            return refuse(self, s, format!("writing the stand-in's name: {e}"));
        }
        self.cur_mut().exec_standin = Some(ExecStandin {
            placed,
            recorded: path,
            standin,
        });
        self.put_live(s);
        Ok(())
    }
}

/// Makes the argv strings on the initial stack the recorded ones: each must already be,
/// or be a stand-in name that `files::launch` chose for it (same length, so the stack
/// layout, which the register check proved, does not move). For a script that is the
/// interpreter in argv\[0] and the script's path after it.
fn restore_argv(
    s: &Stopped,
    rsp: u64,
    recorded: &[Vec<u8>],
    renamed: &[(Vec<u8>, Vec<u8>)],
) -> Result<()> {
    let tr = |source| Error::Tracee { event: 0, source };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let argc = s.read_u64(Addr::new(rsp)).map_err(tr)?;
    if argc != recorded.len() as u64 {
        return Err(Error::Divergence {
            event: 0,
            expected: format!("{} arguments at exec", recorded.len()),
            found: format!("{argc}"),
        });
    }
    for (i, want) in recorded.iter().enumerate() {
        let at = s
            .read_u64(Addr::new(rsp + 8 * (i as u64 + 1)))
            .map_err(tr)?;
        let mut found = s.read_vec(Addr::new(at), want.len() + 1).map_err(tr)?;
        let same_length = found.pop() == Some(0) && !found.contains(&0);
        if same_length && found == *want {
            continue;
        }
        if !same_length
            || !renamed
                .iter()
                .any(|(from, to)| *from == found && to == want)
        {
            return Err(Error::Divergence {
                event: 0,
                expected: format!("argv[{i}] {:?} at exec", lossy(want)),
                found: format!("{:?}", lossy(&found)),
            });
        }
        let mut bytes = want.clone();
        bytes.push(0);
        s.write_bytes(Addr::new(at), &bytes).map_err(tr)?;
    }
    Ok(())
}
