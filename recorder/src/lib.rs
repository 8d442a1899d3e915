//! Rewind's recorder: runs one program under ptrace and writes a trace from which replay
//! can reproduce the run with nothing from the host but the trace and the binary.
//!
//! Files are named by source of nondeterminism, for the replayer to mirror:
//! `syscalls` (the table of what is allowed, recorded or refused, and each call's output
//! buffers), `signals` (placement of asynchronous signals), `time` (rdtsc), `cpuid`,
//! `files` (blobs, binary identity), `mmaps` (file-backed mappings), `ticks` (the
//! execution-point ABI), `exec` (the exec stop and header) and `session` (the loop).
//!
//! # What an event guarantees at replay
//!
//! Events are in the order they happened in the (single-threaded) tracee:
//!
//! * `Syscall` — the tracee, stopped by the same seccomp filter (`Header::seccomp_filter`)
//!   at its next traced call, is at `rip` with the same `nr`, `args` and `path`. Between two
//!   syscall events the tracee ran only deterministic code and allowed calls. Writing
//!   `writes` into memory and `ret` into rax reproduces every effect the call had on the
//!   process, except those of calls replay must execute itself (mmap: the `mapping` holds
//!   the file bytes; rt_sigaction, setitimer state, …).
//! * `Signal` — delivered exactly at its `placement` (see `trace::Placement`), with
//!   `siginfo` as the handler saw it; `regs` are the registers at delivery, to check.
//! * `Rdtsc` / `Cpuid` — the next trapped instruction is at `rip` and returned this value.
//! * `Exit` — the program ended so; `Aborted` — the recording stopped here (reason given).
//!
//! Synchronous faults are not events: the same instruction faults again at replay.

#![forbid(unsafe_code)]
#![warn(clippy::cast_possible_truncation)]

pub mod chaos;
pub mod cpuid;
pub mod error;
mod exec;
pub mod files;
pub mod filestore;
mod input;
pub mod mmaps;
mod output;
mod preempt;
mod ptraced;
mod session;
mod shared;
pub mod signals;
mod syscallbuf;
mod syscalls;
mod tasks;
pub mod time;
pub mod tracedir;
pub mod until;
mod watchdog;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use chaos::ChaosOptions;
pub use error::{Error, Result};
pub use input::InputFeed;
use trace::{ExitStatus, TraceStats, TraceWriter};

/// What to record and how.
#[derive(Debug)]
pub struct RecordOptions {
    /// The program (a name is looked up in $PATH).
    pub program: OsString,
    /// Its arguments (argv\[1..]).
    pub args: Vec<OsString>,
    /// Trace directory; by default a fresh `PROGRAM-N` under [`tracedir::default_root`],
    /// with `latest` pointing at it.
    pub out_dir: Option<PathBuf>,
    /// Trap rdtsc (PR_SET_TSC); on by default.
    pub trap_tsc: bool,
    /// Use CPUID faulting where the host supports it; on by default.
    pub cpuid_faulting: bool,
    /// Send the program's stdout here (a file or pipe) instead of inheriting ours.
    pub stdout: Option<std::os::fd::OwnedFd>,
    /// Move interrupts and add preemptions at seeded ticks, and move task switches
    /// (`--chaos SEED`; without the execution-point ABI only the switches).
    pub chaos: Option<ChaosOptions>,
    /// Kill the program if it runs longer, closing the trace as aborted-by-timeout.
    pub timeout: Option<Duration>,
    /// Type this into the program's stdin (a pipe) instead of inheriting ours.
    pub input: Option<InputFeed>,
    /// Where whole-file blobs are kept across recordings (`filestore`); `None`: nowhere.
    pub file_cache: Option<PathBuf>,
    /// The syscall buffer's preload library (`librewind_preload.so`), preloaded into a
    /// dynamically linked program that is not a guest kernel; `None` records every call
    /// with a ptrace stop (`--no-syscall-buffer`, and always under `chaos`, which needs
    /// every syscall exit as a place to switch tasks).
    pub syscall_buffer: Option<PathBuf>,
}

impl RecordOptions {
    /// Recording `program args…` with the defaults.
    pub fn new(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        RecordOptions {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            out_dir: None,
            trap_tsc: true,
            cpuid_faulting: true,
            stdout: None,
            chaos: None,
            timeout: None,
            input: None,
            file_cache: filestore::default_dir(),
            syscall_buffer: None,
        }
    }

    /// The same recording with another chaos seed and trace directory: one run of
    /// `--until`, exactly what `rewind record --chaos SEED -o DIR` would do.
    pub fn with_seed(&self, seed: u64, out_dir: Option<PathBuf>) -> std::io::Result<Self> {
        let chaos = match self.chaos {
            Some(c) => ChaosOptions { seed, ..c },
            None => ChaosOptions::new(seed),
        };
        Ok(RecordOptions {
            program: self.program.clone(),
            args: self.args.clone(),
            out_dir,
            trap_tsc: self.trap_tsc,
            cpuid_faulting: self.cpuid_faulting,
            stdout: self.stdout.as_ref().map(|f| f.try_clone()).transpose()?,
            chaos: Some(chaos),
            timeout: self.timeout,
            input: self.input.clone(),
            file_cache: self.file_cache.clone(),
            syscall_buffer: self.syscall_buffer.clone(),
        })
    }
}

/// A finished recording.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The trace directory.
    pub dir: PathBuf,
    /// How the program ended.
    pub exit: ExitStatus,
    /// Sizes written.
    pub stats: TraceStats,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    /// Whether CPUID faulting was on.
    pub cpuid_faulting: bool,
    /// The program ran past `RecordOptions::timeout` and the recorder killed it (`exit` is
    /// then SIGKILL and the trace ends with an `Aborted` event saying so).
    pub timed_out: bool,
    /// Asynchronous signals delivered (real or chaos's synthetic ones).
    pub signals: u64,
    /// Syscall exits where chaos chose whether to switch tasks. Zero for both this and
    /// `signals` means no chaos seed could have changed this run.
    pub schedule_choices: u64,
}

/// Pins the calling thread to its current CPU for the duration, so recorder and tracee
/// share a CPU: cross-CPU ptrace wake-ups cost several times more.
struct Pin(Option<usize>);

impl Pin {
    fn here() -> Pin {
        let cpu = tracee::cpu::current_cpu();
        match cpu.map(tracee::cpu::pin_current_thread) {
            Some(Ok(())) => Pin(cpu),
            _ => Pin(None),
        }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        if self.0.is_some() {
            let _ = tracee::cpu::unpin_current_thread();
        }
    }
}

/// Records one run of the program.
pub fn record(opts: &RecordOptions) -> Result<Recording> {
    let program = PathBuf::from(&opts.program);
    let resolved = tracee::resolve_program(&program).ok_or_else(|| {
        Error::Start(format!(
            "{}: no such executable (looked in $PATH)",
            program.display()
        ))
    })?;
    let (dir, default_root) = match &opts.out_dir {
        Some(d) => (d.clone(), None),
        None => {
            let root = tracedir::default_root();
            let dir = tracedir::new_trace_dir(&root, &program).map_err(|source| Error::Io {
                op: "create trace directory in",
                path: root.clone(),
                source,
            })?;
            (dir, Some(root))
        }
    };
    let mut writer = TraceWriter::create(&dir)?;
    if let Some(c) = &opts.chaos {
        c.info().write(&dir)?;
    }
    let pin = Pin::here();
    // Chaos switches tasks at syscall exits: a buffered call has none to switch at.
    let preload = match &opts.syscall_buffer {
        Some(lib) if opts.chaos.is_none() => syscallbuf::preload_for(&resolved, lib)?,
        _ => None,
    };
    let filter = tracee::syscalls::filter_for(preload.is_some());
    let trap_tsc = opts.trap_tsc && tracee::cpu::tsc_trapping_supported();
    let mut argv = vec![opts.program.clone()];
    argv.extend(opts.args.iter().cloned());
    let mut spawn = tracee::SpawnOptions {
        program: resolved.clone(),
        argv,
        env: preload.as_ref().map(|lib| syscallbuf::environment(lib)),
        signals: None,
        seccomp: Some(filter.clone()),
        trap_tsc,
        no_aslr: true,
        cpu: pin.0,
        stdout: opts.stdout.as_ref().and_then(|f| f.try_clone().ok()),
        stdin: None,
    };
    // Lives until the recording ends, so the typed-into pipe stays open that long.
    let mut feeder = None;
    if let Some(feed) = &opts.input {
        let (f, read) = input::Feeder::start(feed).map_err(|source| Error::Io {
            op: "create the typed-input pipe for",
            path: resolved.clone(),
            source,
        })?;
        spawn.stdin = Some(read);
        feeder = Some(f);
    }
    let start = Instant::now();
    let stopped = tracee::spawn(&spawn).map_err(|e| Error::Start(e.to_string()))?;
    // Only the tracee holds the read end now: a write after it is gone fails at once.
    spawn.stdin = None;
    let pid = stopped.pid();
    let mut files = files::FileCache::with_store(opts.file_cache.clone());
    let settings = exec::Settings {
        program: &resolved,
        seccomp: filter.to_words(),
        tsc_trapped: trap_tsc,
        want_cpuid_faulting: opts.cpuid_faulting,
        cpu: pin.0,
    };
    let prepared = match exec::prepare(stopped, &mut writer, &mut files, settings) {
        Ok(p) => p,
        Err(e) => {
            tracee::task::kill_pid(pid);
            return Err(e);
        }
    };
    let watchdog = opts.timeout.map(|t| watchdog::Watchdog::start(pid, t));
    let mut session = session::Session {
        writer,
        task: tasks::TaskCtx::new(pid, prepared.ticks),
        tasks: tasks::Tasks::default(),
        outside: ptraced::Outside::default(),
        first: pid,
        files,
        shared: shared::SharedFiles::default(),
        console: output::Console::new(opts.stdout.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)),
        tsc_trapped: trap_tsc,
        cpuid_faulting: prepared.cpuid_faulting,
        chaos: opts.chaos.map(chaos::Chaos::new),
        signals: 0,
        schedule_choices: 0,
        timed_out: watchdog.as_ref().map(watchdog::Watchdog::flag),
        alarm: None,
        buffered: preload.is_some(),
    };
    let mut result = session.run(prepared.stopped);
    let fired = watchdog.is_some_and(watchdog::Watchdog::stop);
    drop(feeder);
    let elapsed = start.elapsed();
    drop(pin);
    if fired && matches!(&result, Err(e) if !matches!(e, Error::TimedOut { .. })) {
        // The kill landed while a stop was being handled: the tracee is gone, so close
        // the stream the same way.
        tracee::task::kill_pid(pid);
        result = Err(session.timeout_abort());
    }
    let exit = match result {
        Ok(exit) => exit,
        Err(Error::TimedOut { .. }) => {
            let stats = session.writer.finish()?;
            if let Some(root) = &default_root {
                let _ = tracedir::update_latest(root, &dir);
            }
            return Ok(Recording {
                dir,
                exit: ExitStatus::Signaled {
                    signo: libc::SIGKILL,
                    core: false,
                },
                stats,
                elapsed,
                cpuid_faulting: prepared.cpuid_faulting,
                timed_out: true,
                signals: session.signals,
                schedule_choices: session.schedule_choices,
            });
        }
        Err(e @ (Error::Unsupported { .. } | Error::UnknownSyscall { .. })) => {
            // The trace is whole up to the refusal, which it records: close it properly.
            session.writer.finish()?;
            if let Some(root) = &default_root {
                let _ = tracedir::update_latest(root, &dir);
            }
            return Err(e);
        }
        Err(e) => {
            tracee::task::kill_pid(pid);
            session.flush();
            return Err(e);
        }
    };
    let stats = session.writer.finish()?;
    if let Some(root) = &default_root {
        tracedir::update_latest(root, &dir).map_err(|source| Error::Io {
            op: "update `latest` link in",
            path: root.clone(),
            source,
        })?;
    }
    Ok(Recording {
        dir,
        exit,
        stats,
        elapsed,
        cpuid_faulting: prepared.cpuid_faulting,
        timed_out: false,
        signals: session.signals,
        schedule_choices: session.schedule_choices,
    })
}
