//! Human- and tool-readable views of events, for `rewind dump`: one line per event in the
//! manner of strace, and a flat serde view for `--json`.

use serde::Serialize;

use crate::event::{Data, Event, ExitStatus, Placement, SyscallEvent};
use crate::names::{errno_name, signal_name};
use crate::sysno;

/// How to show one argument.
#[derive(Clone, Copy)]
enum Arg {
    Int,
    Fd,
    DirFd,
    Hex,
    Path,
    Sig,
}

fn signature(name: &str) -> &'static [Arg] {
    use Arg::*;
    match name {
        "read" | "write" | "pread64" | "pwrite64" | "readv" | "writev" | "getdents64" => {
            &[Fd, Hex, Int]
        }
        "close" | "fsync" | "fdatasync" | "dup" => &[Fd],
        "dup2" | "dup3" => &[Fd, Fd],
        "fstat" | "fstatfs" => &[Fd, Hex],
        "lseek" => &[Fd, Int, Int],
        "ioctl" => &[Fd, Hex, Hex],
        "fcntl" => &[Fd, Int, Hex],
        "ftruncate" => &[Fd, Int],
        "openat" => &[DirFd, Path, Hex, Hex],
        "open" => &[Path, Hex, Hex],
        "execve" => &[Path, Hex, Hex],
        "newfstatat" | "statx" => &[DirFd, Path, Hex, Hex],
        "stat" | "lstat" | "statfs" => &[Path, Hex],
        "access" => &[Path, Int],
        "faccessat" | "faccessat2" => &[DirFd, Path, Int, Hex],
        "readlink" => &[Path, Hex, Int],
        "readlinkat" => &[DirFd, Path, Hex, Int],
        "unlink" | "chdir" | "rmdir" => &[Path],
        "unlinkat" | "mkdirat" => &[DirFd, Path, Hex],
        "getxattr" | "lgetxattr" => &[Path, Hex, Hex, Int],
        "mmap" => &[Hex, Int, Hex, Hex, Fd, Hex],
        "kill" | "tgkill" => &[Int, Sig],
        "rt_sigaction" => &[Sig, Hex, Hex, Int],
        "clock_gettime" | "clock_getres" => &[Int, Hex],
        "getrandom" => &[Hex, Int, Hex],
        "pipe2" => &[Hex, Hex],
        "socket" => &[Int, Int, Int],
        "bind" | "connect" => &[Fd, Hex, Int],
        "sendto" | "recvfrom" => &[Fd, Hex, Int, Hex, Hex, Hex],
        "poll" => &[Hex, Int, Int],
        "setitimer" | "getitimer" => &[Int, Hex, Hex],
        "prlimit64" => &[Int, Int, Hex, Hex],
        "exit_group" | "exit" => &[Int],
        "getpid" | "gettid" | "getppid" | "getuid" | "geteuid" | "getgid" | "getegid" | "pause"
        | "sched_yield" | "getpgrp" => &[],
        _ => &[Hex, Hex, Hex, Hex, Hex, Hex],
    }
}

fn show_path(p: Option<&[u8]>) -> String {
    match p {
        Some(p) => format!("{:?}", String::from_utf8_lossy(p)),
        None => "NULL".into(),
    }
}

/// An `int` argument (fd, dirfd, signal number) as the kernel reads it: the low 32 bits
/// of the register, signed. Shown that way so the dump agrees with what the call did.
// why: the x86-64 syscall ABI defines an `int` argument as the register's low half
// (the same rule as `tracee::abi::as_c_int`; this crate does not depend on tracee).
#[allow(clippy::cast_possible_truncation)]
fn int_arg(v: u64) -> i32 {
    v as i32
}

/// `name(args…)` with arguments decoded as far as the table knows them.
pub fn syscall_call(s: &SyscallEvent) -> String {
    let name = sysno::name(s.nr)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("syscall_{}", s.nr));
    let args: Vec<String> = signature(&name)
        .iter()
        .zip(s.args)
        .map(|(kind, v)| match kind {
            Arg::Int => (v as i64).to_string(),
            Arg::Fd => int_arg(v).to_string(),
            Arg::DirFd if int_arg(v) == -100 => "AT_FDCWD".into(),
            Arg::DirFd => int_arg(v).to_string(),
            Arg::Hex => format!("{v:#x}"),
            Arg::Path => show_path(s.path.as_deref()),
            Arg::Sig => signal_name(int_arg(v))
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string()),
        })
        .collect();
    format!("{name}({})", args.join(", "))
}

/// The result as strace shows it: `3`, `0x7ffff7dd0000`, `-1 ENOENT`.
pub fn syscall_result(s: &SyscallEvent) -> String {
    if matches!(sysno::name(s.nr), Some("exit" | "exit_group")) {
        return "?".into();
    }
    if let Some(name) = restart_name(s.ret) {
        return format!("? {name} (interrupted)");
    }
    if let Some(e) = s.errno() {
        return format!("-1 {}", errno_name(e).unwrap_or("E?"));
    }
    match s.ret {
        r if r > 0xffff => format!("{r:#x}"),
        r => r.to_string(),
    }
}

/// The kernel's restart codes, seen at the exit of a call a signal interrupted.
fn restart_name(ret: i64) -> Option<&'static str> {
    Some(match ret {
        -512 => "ERESTARTSYS",
        -513 => "ERESTARTNOINTR",
        -514 => "ERESTARTNOHAND",
        -516 => "ERESTART_RESTARTBLOCK",
        _ => return None,
    })
}

fn sig(s: i32) -> String {
    signal_name(s)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("signal {s}"))
}

fn placement(p: &Placement) -> String {
    match p {
        Placement::Tick { ticks } => format!("at tick {ticks}"),
        Placement::SyscallExit { event } => format!("at exit of #{event}"),
        Placement::SyscallEntry => "before next syscall".into(),
        Placement::Registers { .. } => "at registers and state digest".into(),
    }
}

/// One line for event `index`.
pub fn line(index: u64, event: &Event) -> String {
    match event {
        Event::Syscall(s) => {
            let mut out = format!(
                "#{index:<7} ticks={:<8} {} = {}",
                s.ticks,
                syscall_call(s),
                syscall_result(s)
            );
            let written: u64 = s.writes.iter().map(|w| w.data.len()).sum();
            if !s.writes.is_empty() {
                let blobs = s
                    .writes
                    .iter()
                    .filter(|w| matches!(w.data, Data::Blob { .. }))
                    .count();
                out.push_str(&format!(
                    "  [wrote {written} B in {} range(s)",
                    s.writes.len()
                ));
                if blobs > 0 {
                    out.push_str(&format!(", {blobs} blob"));
                }
                out.push(']');
            }
            if s.is_buffered() {
                out.push_str("  [buffered]");
            }
            if let Some(m) = &s.mapping {
                out.push_str(&format!(
                    "  [maps {} +{:#x} len {:#x}]",
                    String::from_utf8_lossy(&m.path),
                    m.offset,
                    m.len
                ));
            }
            out
        }
        Event::Signal(g) => format!(
            "#{index:<7} ticks={:<8} --- {} {}{} rip={:#x} rsp={:#x} ---",
            g.ticks,
            sig(g.signo),
            placement(&g.placement),
            if crate::chaos::is_synthetic(&g.siginfo) {
                " (chaos)"
            } else {
                ""
            },
            g.regs.rip,
            g.regs.rsp
        ),
        Event::Rdtsc(r) => format!(
            "#{index:<7} ticks={:<8} {} at {} = {:#x}{}",
            r.ticks,
            if r.aux.is_some() { "rdtscp" } else { "rdtsc" },
            r.rip,
            r.value,
            r.aux.map(|a| format!(" aux={a:#x}")).unwrap_or_default()
        ),
        Event::Cpuid(c) => format!(
            "#{index:<7} ticks={:<8} cpuid({:#x}, {:#x}) at {} = {:08x} {:08x} {:08x} {:08x}",
            c.ticks, c.leaf, c.subleaf, c.rip, c.answer[0], c.answer[1], c.answer[2], c.answer[3]
        ),
        Event::Exit(ExitStatus::Exited(c)) => format!("#{index:<7} +++ exited with {c} +++"),
        Event::Exit(ExitStatus::Signaled { signo, core }) => format!(
            "#{index:<7} +++ killed by {}{} +++",
            sig(*signo),
            if *core { " (core dumped)" } else { "" }
        ),
        Event::Aborted { reason } => format!("#{index:<7} !!! recording stopped: {reason}"),
        Event::Switch { from, to } => format!("#{index:<7} --- task {from} -> task {to} ---"),
        Event::Blocked { nr, rip } => format!(
            "#{index:<7} {} at {rip} blocked in the kernel; other tasks run (its result is \
             this task's next syscall)",
            sysno::name(*nr).map_or_else(|| format!("syscall_{nr}"), str::to_owned)
        ),
        Event::NewTask { tid } => format!("#{index:<7} +++ new task {tid} +++"),
        Event::NewThread { tid } => format!("#{index:<7} +++ new thread {tid} +++"),
        Event::Outside => format!(
            "#{index:<7} +++ leaves the recording: ptraced by its parent, outside from here +++"
        ),
        Event::SharedMapping(m) => format!(
            "#{index:<7} --- the next mmap maps shared file {} ({} +{:#x}, {} bytes of its {}) ---",
            m.file,
            String::from_utf8_lossy(&m.path),
            m.offset,
            m.contents.len(),
            m.file_size
        ),
        Event::Exec(x) => format!(
            "#{index:<7} +++ exec {} (sha256 {}, {} bytes) +++",
            String::from_utf8_lossy(&x.binary.path),
            &x.binary.sha256.hex()[..16],
            x.binary.size
        ),
        Event::Preempted { regs, .. } => format!(
            "#{index:<7} --- preempted in user code at registers and state digest rip={:#x} \
             rsp={:#x} ---",
            regs.rip, regs.rsp
        ),
    }
}

/// Which task each event belongs to, followed through the stream: the events after a
/// [`Event::Switch`] are its `to` task's; before the first switch, the first task's.
#[derive(Debug, Clone, Copy)]
pub struct Tasks {
    current: Option<u32>,
}

impl Tasks {
    /// Starting with the recording's first task, `first` when known ([`first_task`]).
    pub fn new(first: Option<u32>) -> Tasks {
        Tasks { current: first }
    }

    /// The task `event` belongs to (for a switch, the task it switches to).
    pub fn on(&mut self, event: &Event) -> Option<u32> {
        if let Event::Switch { to, .. } = event {
            self.current = Some(*to);
        }
        self.current
    }
}

/// The recording's first task, named by the first switch away from it; `None` for a
/// recording of one task, whose events need no task named.
pub fn first_task(
    events: impl IntoIterator<Item = impl std::borrow::Borrow<Event>>,
) -> Option<u32> {
    events.into_iter().find_map(|e| match e.borrow() {
        Event::Switch { from, .. } => Some(*from),
        _ => None,
    })
}

/// [`line`] prefixed with the task, as `strace -f` does, when there is more than one.
pub fn task_line(index: u64, task: Option<u32>, event: &Event) -> String {
    match task {
        Some(t) => format!("[pid {t:>6}] {}", line(index, event)),
        None => line(index, event),
    }
}

/// A flat, stable view of one event for `--json`.
#[derive(Serialize, Debug)]
pub struct JsonEvent {
    /// Event index.
    pub index: u64,
    /// `syscall`, `signal`, `rdtsc`, `cpuid`, `exit`, `aborted`, `switch`, `blocked`,
    /// `newtask` or `exec`.
    pub kind: &'static str,
    /// `REWIND_TICKS` at the event, where recorded.
    pub ticks: Option<u64>,
    /// Syscall or signal name.
    pub name: Option<String>,
    /// Syscall number or signal number.
    pub number: Option<u64>,
    /// Syscall arguments.
    pub args: Option<[u64; 6]>,
    /// Syscall path argument.
    pub path: Option<String>,
    /// Raw syscall result, or the exit code.
    pub result: Option<i64>,
    /// Errno name for a failed call.
    pub errno: Option<&'static str>,
    /// `(address, length)` of each memory range the call wrote.
    pub writes: Vec<(u64, u64)>,
    /// Instruction pointer, where recorded.
    pub rip: Option<u64>,
    /// Signal placement, or the abort reason.
    pub detail: Option<String>,
    /// Value of rdtsc or the cpuid answer.
    pub value: Option<Vec<u64>>,
    /// The recording-time id of the task the event belongs to, in a recording of more than
    /// one task.
    pub task: Option<u32>,
}

/// The JSON view of event `index` of task `task` (see [`Tasks`]).
pub fn json(index: u64, task: Option<u32>, event: &Event) -> JsonEvent {
    let mut j = JsonEvent {
        index,
        kind: event.kind(),
        ticks: None,
        name: None,
        number: None,
        args: None,
        path: None,
        result: None,
        errno: None,
        writes: Vec::new(),
        rip: None,
        detail: None,
        value: None,
        task,
    };
    match event {
        Event::Syscall(s) => {
            j.ticks = Some(s.ticks);
            j.name = sysno::name(s.nr).map(str::to_owned);
            j.number = Some(s.nr);
            j.args = Some(s.args);
            j.path = s
                .path
                .as_ref()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            j.result = Some(s.ret);
            j.errno = s.errno().and_then(errno_name);
            j.writes = s.writes.iter().map(|w| (w.addr.0, w.data.len())).collect();
            j.rip = Some(s.rip.0);
            j.detail = s.is_buffered().then(|| "buffered".to_string());
        }
        Event::Signal(g) => {
            j.ticks = Some(g.ticks);
            j.name = signal_name(g.signo).map(str::to_owned);
            j.number = Some(g.signo as u64);
            j.rip = Some(g.regs.rip);
            j.detail = Some(if crate::chaos::is_synthetic(&g.siginfo) {
                format!("{} (chaos)", placement(&g.placement))
            } else {
                placement(&g.placement)
            });
        }
        Event::Rdtsc(r) => {
            j.ticks = Some(r.ticks);
            j.rip = Some(r.rip.0);
            j.value = Some(vec![r.value]);
        }
        Event::Cpuid(c) => {
            j.ticks = Some(c.ticks);
            j.rip = Some(c.rip.0);
            j.value = Some(c.answer.iter().map(|&v| v as u64).collect());
        }
        Event::Exit(e) => j.result = Some(i64::from(e.code())),
        Event::Aborted { reason } => j.detail = Some(reason.clone()),
        Event::Switch { to, .. } => j.number = Some(u64::from(*to)),
        Event::Blocked { nr, rip } => {
            j.name = sysno::name(*nr).map(str::to_owned);
            j.number = Some(*nr);
            j.rip = Some(rip.0);
        }
        Event::NewTask { tid } | Event::NewThread { tid } => j.number = Some(u64::from(*tid)),
        Event::Outside => {}
        Event::SharedMapping(m) => {
            j.number = Some(u64::from(m.file));
            j.path = Some(String::from_utf8_lossy(&m.path).into_owned());
        }
        Event::Exec(x) => j.path = Some(String::from_utf8_lossy(&x.binary.path).into_owned()),
        Event::Preempted { regs, .. } => {
            j.rip = Some(regs.rip);
            j.detail = Some("at registers and state digest".into());
        }
    }
    j
}
