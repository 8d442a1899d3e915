//! Rewind's replayer: re-executes a trace exactly, checks at every event that it does, and
//! owns the timeline (checkpoints, seek, reverse execution) that gdb and the analyzer
//! drive.
//!
//! * [`replay`] runs a recording to its end, printing the guest's console output, and
//!   returns how it ended ([`Outcome`]).
//! * [`Timeline`] (module `timeline`) is the random-access API: positions, seek,
//!   run forward/backward to breakpoints and watchpoints, step back.
//!
//! Files mirror the recorder's, by source of nondeterminism, with the same handler names
//! (`on_syscall`, `on_mmap`, `on_rdtsc`, `on_cpuid`): `syscalls`, `signals`, `time`,
//! `cpuid`, `files`, `mmaps`, `exec`, and `ticks` (the tick trap, which the recorder
//! handles in its `signals`); `session` is the engine loop, `checkpoints` the timeline's
//! store of forked copies.
//!
//! Replay has no host side effects: every traced call that reads, writes, opens, sends or
//! signals is emulated from the trace; the only files it opens are the trace's, the
//! binary (to check its hash, and by the kernel's exec) and the tracee's /proc/PID/mem;
//! the only ones it creates are the stand-ins a trace that carries its binary is started
//! through, in the trace directory's `launch/` (`files::launch`). Core dumps are off.

#![forbid(unsafe_code)]
#![warn(clippy::cast_possible_truncation)]

mod checkpoints;
pub mod cpuid;
pub mod error;
mod exec;
pub mod files;
mod mmaps;
pub mod position;
mod session;
mod shared;
mod signals;
mod standin;
pub mod syscalls;
mod tasks;
mod ticks;
pub mod time;
pub mod timeline;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{Error, Result};
pub use position::Position;
pub use session::{Console, TraceData, Watch};
pub use timeline::{StopReason, SyscallCatch, Thread, Timeline, TimelineOptions};
use trace::{Event, ExitStatus, Gprs};
pub use tracee::WatchKind;

use session::{Engine, Goal, Reached};

/// A one-line description of an event, for divergence messages.
pub fn describe(ev: &Event) -> String {
    match ev {
        Event::Syscall(s) => {
            format!(
                "syscall {}",
                syscalls::describe_call(s.nr, &s.args, s.rip.0)
            )
        }
        Event::Signal(s) => format!("signal {} placed {:?}", s.signo, s.placement),
        Event::Rdtsc(r) => format!("rdtsc at rip {}", r.rip),
        Event::Cpuid(c) => format!("cpuid leaf {:#x} at rip {}", c.leaf, c.rip),
        Event::Exit(e) => format!("the end of the program ({e:?})"),
        Event::Aborted { reason } => format!("the end of the recording ({reason})"),
        Event::Switch { from, to } => format!("a switch from task {from} to task {to}"),
        Event::Blocked { nr, rip } => format!(
            "syscall {} at {rip} blocking in the kernel",
            syscalls::name(*nr)
        ),
        Event::NewTask { tid } => format!("a fork, vfork or clone creating task {tid}"),
        Event::NewThread { tid } => format!("a clone creating thread {tid}"),
        Event::Outside => "the task leaving the recording (ptraced by its parent)".into(),
        Event::SharedMapping(m) => format!("an mmap of shared file {}", m.file),
        Event::Exec(x) => format!(
            "an exec of {} (sha256 {})",
            String::from_utf8_lossy(&x.binary.path),
            x.binary.sha256
        ),
        Event::Preempted { regs, .. } => format!(
            "a preemption in user code at rip {:#x} (rsp {:#x}) with the recorded registers \
             and state",
            regs.rip, regs.rsp
        ),
    }
}

/// How to replay.
#[derive(Debug)]
pub struct ReplayOptions {
    /// Where the guest's console output goes.
    pub console: Console,
    /// Sleep so that output comes at the recorded pace.
    pub pace: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            console: Console::Stdout,
            pace: false,
        }
    }
}

/// How a replay ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How the program ended, as recorded and reproduced; `None` when the recording ends
    /// without an exit (aborted by the recorder, or incomplete).
    pub exit: Option<ExitStatus>,
    /// The recorder's reason, for an aborted recording.
    pub aborted: Option<String>,
    /// The last signal delivered and the registers at its delivery (for a crash: the
    /// fatal signal at the faulting instruction).
    pub last_signal: Option<(i32, Gprs)>,
    /// Events replayed.
    pub events: u64,
    /// Console output, when `Console::Buffer` was asked for.
    pub console: Vec<u8>,
    /// Wall time of the replay.
    pub elapsed: Duration,
}

/// What keeps this host from replaying a recording with `header` exactly, each reason a
/// sentence (empty when nothing does): a CPU other than the recording's when it ran
/// `cpuid` natively, and signal frames of another size (checked again, and refused, where
/// a handler is entered; a recording that delivers no signal is not affected by it).
pub fn host_mismatch(header: &trace::Header) -> Vec<String> {
    cpuid::check_host(&header.cpuid)
        .into_iter()
        .chain(exec::frames_differ(header))
        .collect()
}

/// [`host_mismatch`] for the recording at `path` (a trace directory or a pack).
pub fn host_mismatch_of(path: &Path) -> Result<Vec<String>> {
    Ok(host_mismatch(trace::open(path)?.header()))
}

/// A short name for the hosts that replay a recording with `header`, fit for a file
/// name: the signal frame size (`frames3632`), and the CPU vendor and signature (leaf
/// 1's family, model and stepping) when it ran `cpuid` natively
/// (`frames3376-AuthenticAMD-00b00f21`), since then only that CPU model replays it.
pub fn host_kind(header: &trace::Header) -> String {
    let frames = header
        .auxv_value(tracee::cpu::AT_MINSIGSTKSZ)
        .map_or_else(|| "frames-unknown".to_string(), |v| format!("frames{v}"));
    if header.cpuid.faulting {
        return frames;
    }
    // A file name: the vendor's letters and digits only.
    let vendor: String = header
        .cpuid
        .vendor()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    match header.cpuid.answer(1) {
        Some(a) => format!("{frames}-{vendor}-{:08x}", a[0]),
        None => format!("{frames}-{vendor}"),
    }
}

/// Opens a trace directory or a packed trace, reading all its events.
pub fn open_trace(path: &Path) -> Result<Arc<TraceData>> {
    let reader = trace::open(path)?;
    let mut events = Vec::new();
    let mut iter = reader.events()?;
    for item in iter.by_ref() {
        events.push(item?.1);
    }
    // Every command that replays (replay, replay -i, gdb, analyze) opens its trace here, so
    // this is the one place that makes all of them say that the recording is cut short.
    if let Some(note) = reader.incomplete_note(&iter) {
        eprintln!("rewind: {note}");
    }
    // A blob that is damaged or expands past its recorded length is refused here, before
    // the replay starts, rather than at the event that maps or writes it.
    reader.check_blobs(&events)?;
    let launch = files::launch(path, &reader)?;
    Ok(Arc::new(TraceData {
        path: path.to_path_buf(),
        reader,
        events,
        launch,
    }))
}

pub(crate) fn start_engine(data: Arc<TraceData>, console: Console) -> Result<Engine> {
    let started = exec::start(&data.path, data.header(), &data.launch)?;
    Ok(Engine::new(data, started, console))
}

/// Replays the recording in `dir` to its end.
pub fn replay(dir: &Path, opts: ReplayOptions) -> Result<Outcome> {
    replay_observed(dir, opts, None)
}

/// [`replay`], calling `progress(events done, events in all)` about a hundred times on
/// the way (for a progress bar): the replay then stops at event boundaries, which changes
/// nothing it does.
pub fn replay_observed(
    dir: &Path,
    opts: ReplayOptions,
    mut progress: Option<Box<dyn FnMut(u64, u64)>>,
) -> Result<Outcome> {
    let start = Instant::now();
    let data = open_trace(dir)?;
    let total = data.events.len() as u64;
    let mut engine = start_engine(data.clone(), opts.console)?;
    if opts.pace {
        engine.pace();
    }
    let result = match progress.as_mut() {
        None => engine.run(Goal::End, false),
        Some(report) => {
            let step = (total / 100).max(1);
            let r = loop {
                let next = engine.next_event().saturating_add(step);
                if next >= total {
                    break engine.run(Goal::End, false);
                }
                // In a tree of processes some boundaries are not stopping points (late
                // ones, once children have exited): the run then goes on to the end in
                // one, which is the same run.
                match engine.run(Goal::Boundary(next), false) {
                    Ok(Reached::Goal) => report(next, total),
                    other => break other,
                }
            };
            report(total, total);
            r
        }
    };
    engine.kill_live();
    let _ = tracee::cpu::unpin_current_thread();
    let reached = result?;
    let aborted = match engine.event(engine.next_event()) {
        Some(Event::Aborted { reason }) => Some(reason.clone()),
        _ => None,
    };
    let exit = match reached {
        Reached::Exited(e) => Some(e),
        _ => None,
    };
    let console = match engine.take_console() {
        Console::Buffer(v) => v,
        _ => Vec::new(),
    };
    Ok(Outcome {
        exit,
        aborted,
        last_signal: engine.last_signal(),
        events: engine.next_event(),
        console,
        elapsed: start.elapsed(),
    })
}

/// The replay's memory at the timeline's current position, as the guest's structure
/// readers (`guest::Guest`) read it.
impl guest::Memory for Timeline {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        self.read_memory(addr, len).ok()
    }
}
