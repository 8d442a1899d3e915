//! The exec stop: the tracee exists but has run no instruction. Here the recorder hides
//! the vDSO (AT_SYSINFO_EHDR → AT_IGNORE in the auxv on the stack, so libc falls back to
//! real, recorded system calls), turns CPUID faulting on where the host supports it,
//! finds the execution-point ABI, and writes the header: argv, env, auxv, AT_RANDOM
//! bytes, registers, mappings, CPUID and the binary's identity.

use std::path::{Path, PathBuf};

use trace::{CpuidInfo, ExecEvent, Header, RemoteAddr, TickAbi, TraceWriter};
use tracee::{maps, Addr, Stopped};

use crate::error::{Error, Result};
use crate::files::FileCache;
use crate::session::{gprs, TickAddrs};

const AT_IGNORE: u64 = 1;
const AT_RANDOM: u64 = 25;
const AT_SYSINFO_EHDR: u64 = 33;

/// What the exec stop established.
pub(crate) struct Prepared {
    pub stopped: Stopped,
    pub ticks: Option<TickAddrs>,
    pub cpuid_faulting: bool,
}

fn split_nul(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn tr(event: u64) -> impl FnOnce(tracee::Error) -> Error {
    move |source| Error::Tracee { event, source }
}

/// The auxv as it sits on the initial stack: (address of each entry, type, value).
fn stack_auxv(s: &Stopped, rsp: u64) -> Result<Vec<(u64, u64, u64)>> {
    let argc = s.read_u64(Addr::new(rsp)).map_err(tr(0))?;
    // argc, argv[argc], NULL, then envp until NULL.
    let mut p = rsp + 8 * (argc + 2);
    while s.read_u64(Addr::new(p)).map_err(tr(0))? != 0 {
        p += 8;
    }
    p += 8;
    let mut out = Vec::new();
    loop {
        let t = s.read_u64(Addr::new(p)).map_err(tr(0))?;
        if t == 0 {
            break;
        }
        let v = s.read_u64(Addr::new(p + 8)).map_err(tr(0))?;
        out.push((p, t, v));
        p += 16;
        if out.len() > 256 {
            break;
        }
    }
    Ok(out)
}

/// How the tracee was set up, for the header.
pub(crate) struct Settings<'a> {
    pub program: &'a Path,
    pub seccomp: Vec<u64>,
    pub tsc_trapped: bool,
    pub want_cpuid_faulting: bool,
    pub cpu: Option<usize>,
}

/// A new program image at its exec stop, prepared: vDSO hidden, CPUID faulting back on
/// (execve resets it), and what the trace says of it.
pub(crate) struct Image {
    pub stopped: Stopped,
    pub exec: ExecEvent,
    /// The execution-point ABI, with the load bias applied.
    pub ticks: Option<TickAddrs>,
    pub cpuid_faulting: bool,
}

/// Prepares the program image `s` stands at the exec stop of: the part of the exec stop
/// that is the same for the recording's first program and for every later execve.
pub(crate) fn image(
    s: Stopped,
    writer: &mut TraceWriter,
    files: &mut FileCache,
    want_cpuid_faulting: bool,
    event: u64,
) -> Result<Image> {
    let pid = s.pid();
    let regs = s.regs().map_err(tr(event))?;
    let proc_io = |what: &str, source| Error::Io {
        op: "read",
        path: PathBuf::from(format!("/proc/{pid}/{what}")),
        source,
    };

    // Hide the vDSO.
    let auxv_before = stack_auxv(&s, regs.rsp())?;
    let mut vdso_hidden_at = None;
    for &(at, t, _) in &auxv_before {
        if t == AT_SYSINFO_EHDR {
            s.write_u64(Addr::new(at), AT_IGNORE).map_err(tr(event))?;
            vdso_hidden_at = Some(RemoteAddr(at));
        }
    }
    let auxv: Vec<(u64, u64)> = stack_auxv(&s, regs.rsp())?
        .into_iter()
        .map(|(_, t, v)| (t, v))
        .collect();
    let at_random = match auxv.iter().find(|(t, _)| *t == AT_RANDOM) {
        Some(&(_, addr)) => {
            let mut b = [0u8; 16];
            s.read_exact(Addr::new(addr), &mut b).map_err(tr(event))?;
            Some((RemoteAddr(addr), b))
        }
        None => None,
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| proc_io("exe", e))?;
    let contents = std::fs::read(&exe).map_err(|source| Error::Io {
        op: "read",
        path: exe.clone(),
        source,
    })?;
    let binary = crate::files::binary_id(&exe, &contents);
    let symbols = guest::ticks::find(&contents).map_err(|why| crate::files::not_elf(&exe, why))?;
    drop(contents);

    let mappings = crate::mmaps::initial_mappings(files, writer, pid)?;
    let ticks = symbols.map(|sym| {
        let bias = if sym.relocatable {
            let exe_s = exe.to_string_lossy();
            mappings
                .iter()
                .find(|m| m.offset == 0 && m.path == exe_s.as_bytes())
                .map_or(0, |m| m.start.0)
        } else {
            0
        };
        TickAddrs {
            ticks: Addr::new(sym.ticks + bias),
            target: Addr::new(sym.target + bias),
        }
    });

    // CPUID faulting is reset by execve, so it is turned on here, in the new image.
    let mut stopped = s;
    let mut cpuid_faulting = false;
    if want_cpuid_faulting && tracee::cpu::cpuid_faulting_supported() {
        let (st, ret) = stopped
            .inject_syscall(
                libc::SYS_arch_prctl as u64,
                [tracee::cpu::ARCH_SET_CPUID_CODE, 0, 0, 0, 0, 0],
            )
            .map_err(tr(event))?;
        stopped = st;
        cpuid_faulting = ret == 0;
    }
    Ok(Image {
        stopped,
        exec: ExecEvent {
            binary,
            auxv,
            vdso_hidden_at,
            at_random,
            regs: gprs(&regs),
            mappings,
        },
        ticks,
        cpuid_faulting,
    })
}

/// Handles the exec stop and writes the header.
pub(crate) fn prepare(
    s: Stopped,
    writer: &mut TraceWriter,
    files: &mut FileCache,
    settings: Settings<'_>,
) -> Result<Prepared> {
    let Settings {
        program,
        seccomp,
        tsc_trapped,
        want_cpuid_faulting,
        cpu,
    } = settings;
    let pid = s.pid();
    let proc_io = |what: &str, source| Error::Io {
        op: "read",
        path: PathBuf::from(format!("/proc/{pid}/{what}")),
        source,
    };
    let argv = split_nul(
        &std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| proc_io("cmdline", e))?,
    );
    let env = split_nul(
        &std::fs::read(format!("/proc/{pid}/environ")).map_err(|e| proc_io("environ", e))?,
    );
    let cwd = maps::cwd(pid).map_err(|e| proc_io("cwd", e))?;
    let Image {
        stopped,
        exec,
        ticks,
        cpuid_faulting,
    } = image(s, writer, files, want_cpuid_faulting, 0)?;
    // Every later execve stops (`exec_fence`): one that fails is recorded, and the
    // syscall buffer is drained before an exec discards it.
    let (stopped, ret) = stopped
        .inject_filter(&tracee::syscalls::exec_fence())
        .map_err(|source| Error::Tracee { event: 0, source })?;
    if ret != 0 {
        let _ = stopped.kill();
        return Err(Error::Start(format!(
            "the program could not add the exec filter (seccomp returned {ret})"
        )));
    }

    let sets = maps::inherited_signals(pid).map_err(|e| proc_io("status", e))?;
    let signals = trace::InheritedSignals {
        blocked: sets.blocked,
        ignored: sets.ignored,
    };
    let header = Header {
        format_version: trace::FORMAT_VERSION,
        recorder_version: env!("CARGO_PKG_VERSION").to_string(),
        program: program.as_os_str().as_encoded_bytes().to_vec(),
        argv,
        env,
        cwd: cwd.as_os_str().as_encoded_bytes().to_vec(),
        binary: exec.binary,
        script: trace::Script::of(program).map_err(|source| Error::Io {
            op: "read",
            path: program.to_path_buf(),
            source,
        })?,
        signals,
        auxv: exec.auxv,
        vdso_hidden_at: exec.vdso_hidden_at,
        at_random: exec.at_random,
        initial_regs: exec.regs,
        initial_mappings: exec.mappings,
        cpuid: CpuidInfo {
            faulting: cpuid_faulting,
            records: crate::cpuid::records(cpuid_faulting),
        },
        tick_abi: ticks.map(|t| TickAbi {
            ticks: RemoteAddr(t.ticks.raw()),
            target: RemoteAddr(t.target.raw()),
        }),
        seccomp_filter: seccomp,
        tsc_trapped,
        cpu: cpu.and_then(|c| u32::try_from(c).ok()),
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    writer.write_header(&header)?;
    Ok(Prepared {
        stopped,
        ticks,
        cpuid_faulting,
    })
}

impl crate::session::Session {
    /// A later execve of the running task, at its exec stop: the new image is prepared
    /// as the first one was and recorded as an `Event::Exec`. Its execution-point ABI,
    /// if it has one, is not followed (only the first program's is).
    pub(crate) fn on_exec(&mut self, s: Stopped) -> Result<crate::session::Flow> {
        let event = self.writer.next_index();
        let img = image(
            s,
            &mut self.writer,
            &mut self.files,
            self.cpuid_faulting,
            event,
        )?;
        self.task.ticks = None;
        self.task.last_exit = None;
        // The descriptors that reached the console are still open (close-on-exec ones
        // are gone, and a new program may use the others for anything).
        self.console.invalidate();
        self.append(trace::Event::Exec(img.exec))?;
        self.t(img.stopped.resume(tracee::Resume::Cont(None)))
            .map(crate::session::Flow::Running)
    }
}
