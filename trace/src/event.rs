//! The event stream: one serde enum, each variant documented with why it is enough for
//! the replayer to reproduce that piece of nondeterminism. Events are numbered from 0 in
//! the order the recorder appended them; an execution point is `(event index, ticks)`.

use serde::{Deserialize, Serialize};

use crate::blob::BlobHash;

/// A tracee address as stored in the trace (x86_64, so always 64 bits wide).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct RemoteAddr(pub u64);

impl std::fmt::Display for RemoteAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The general-purpose registers, in `user_regs_struct` order.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Gprs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Gprs {
    /// Builds the registers from the 27 words of `user_regs_struct`, in kernel order (what
    /// `tracee::Regs::to_array` returns), so recorder and replayer convert the same way.
    pub fn from_user_regs(a: [u64; 27]) -> Gprs {
        let [r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs] =
            a;
        Gprs {
            r15,
            r14,
            r13,
            r12,
            rbp,
            rbx,
            r11,
            r10,
            r9,
            r8,
            rax,
            rcx,
            rdx,
            rsi,
            rdi,
            orig_rax,
            rip,
            cs,
            eflags,
            rsp,
            ss,
            fs_base,
            gs_base,
            ds,
            es,
            fs,
            gs,
        }
    }

    /// The 27 words of `user_regs_struct`, in kernel order (what `tracee::Regs::from_array`
    /// takes): the inverse of [`Gprs::from_user_regs`].
    pub fn to_user_regs(&self) -> [u64; 27] {
        let g = self;
        [
            g.r15, g.r14, g.r13, g.r12, g.rbp, g.rbx, g.r11, g.r10, g.r9, g.r8, g.rax, g.rcx,
            g.rdx, g.rsi, g.rdi, g.orig_rax, g.rip, g.cs, g.eflags, g.rsp, g.ss, g.fs_base,
            g.gs_base, g.ds, g.es, g.fs, g.gs,
        ]
    }
}

/// Bytes that a system call wrote into tracee memory.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Small outputs are kept in the event itself.
    Inline(Vec<u8>),
    /// Large outputs (file and socket reads) are stored once per content as a blob.
    Blob {
        /// Content hash of the blob holding these bytes.
        hash: BlobHash,
        /// Length in bytes.
        len: u64,
    },
}

impl Data {
    /// Number of bytes written.
    pub fn len(&self) -> u64 {
        match self {
            Data::Inline(v) => v.len() as u64,
            Data::Blob { len, .. } => *len,
        }
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One contiguous range of tracee memory written by the kernel during a system call.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MemWrite {
    /// Where the bytes go.
    pub addr: RemoteAddr,
    /// What was there after the call returned.
    pub data: Data,
}

/// A file mapped by `mmap`: the replayer maps anonymous memory at the same address and
/// fills it from the blob, so it needs neither the file nor the host's page cache.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    /// The file's path as the host saw it (for messages only).
    pub path: Vec<u8>,
    /// The whole file's contents as of the mapping.
    pub file: BlobHash,
    /// File size at mapping time; pages past it read as zeros.
    pub file_size: u64,
    /// Offset in the file where the mapping starts.
    pub offset: u64,
    /// Mapping length in bytes.
    pub len: u64,
}

/// A recorded system call. The replayer checks `nr`, `args` (and `path`) against what the
/// tracee does, then either executes the call (calls that shape the address space) or
/// skips it and injects `ret` and `writes`: those are every byte the kernel wrote, taken
/// from the per-syscall output table, so nothing else of the host is needed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SyscallEvent {
    /// x86_64 syscall number.
    pub nr: u64,
    /// The six argument registers at entry (rdi, rsi, rdx, r10, r8, r9).
    pub args: [u64; 6],
    /// Raw return value (rax at syscall exit): `-4095..=-1` is `-errno`, and
    /// `-512..=-516` are the kernel's restart codes when a signal interrupted the call.
    pub ret: i64,
    /// `REWIND_TICKS` at entry (0 for programs without the execution-point ABI).
    pub ticks: u64,
    /// Address of the instruction after `syscall`, to check the replay is at the same place.
    pub rip: RemoteAddr,
    /// The path argument, read at entry, for calls that take one.
    pub path: Option<Vec<u8>>,
    /// Memory the kernel wrote, in the order the recorder read it back.
    pub writes: Vec<MemWrite>,
    /// For a successful file-backed `mmap`: the file contents behind it.
    pub mapping: Option<FileMapping>,
    /// For a call that sent bytes out of the process (write, pwrite, writev, sendto,
    /// sendmsg, sendfile, copy_file_range, …): what it sent, so replay can check that the
    /// replayed program sends the same and echo console output.
    pub output: Option<Output>,
}

impl SyscallEvent {
    /// Whether the syscall buffer made this call without a stop: it was made from the
    /// buffer's untraced entry, which nothing else maps.
    pub fn is_buffered(&self) -> bool {
        self.rip.0 == syscallbuf_abi::UNTRACED_RIP
    }
}

/// Where the recorder's own stdout and stderr were, as the tracee's descriptor reached them.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The recorder's standard output.
    Stdout,
    /// The recorder's standard error.
    Stderr,
}

/// Outputs up to this many bytes are kept whole in [`Output::bytes`], so a divergence can
/// name the first differing byte; longer ones keep their SHA-256 only (unless they went to
/// the console from outside tracee memory, see [`Output::bytes`]).
pub const OUTPUT_INLINE: u64 = 1024;

/// The bytes one system call sent out of the process.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Number of bytes sent (the call's result).
    pub len: u64,
    /// SHA-256 of the bytes sent, in order.
    pub sha256: BlobHash,
    /// The bytes themselves: for outputs of at most [`OUTPUT_INLINE`] bytes, and for
    /// console output that did not come from tracee memory (sendfile, copy_file_range),
    /// which replay must echo from here.
    pub bytes: Option<Data>,
    /// The descriptor led to the recorder's stdout or stderr: replay echoes it there.
    pub console: Option<Stream>,
}

impl SyscallEvent {
    /// The errno, if the call failed.
    pub fn errno(&self) -> Option<i32> {
        if (-4095..=-1).contains(&self.ret) {
            i32::try_from(-self.ret).ok()
        } else {
            None
        }
    }
}

/// Where an asynchronous signal was delivered. Each placement names a point the replayer
/// can reach deterministically without hardware counters.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// At umk's preemption point where `REWIND_TICKS == ticks` (execution-point ABI):
    /// replay writes `ticks` to `REWIND_TICK_TARGET`, runs to the `int3`, and delivers
    /// the signal instead of the SIGTRAP.
    Tick {
        /// Value of `REWIND_TICKS` at the trap.
        ticks: u64,
    },
    /// As the system call recorded in event `event` returned, before any user instruction
    /// ran (the signal interrupted that call, or arrived while it was in the kernel): the
    /// call's `ret` is the interrupted result (EINTR, a partial count or a restart code).
    SyscallExit {
        /// Index of the interrupted or just-finished syscall event.
        event: u64,
    },
    /// Instead of entering the next recorded system call: the tracee's `syscall`
    /// instruction was cancelled, the signal delivered with rip at that instruction and
    /// rax = the syscall number, and the call re-issued after the handler (the next
    /// syscall event records it). Replay checks nr/args at the seccomp stop, cancels the
    /// same way and injects.
    SyscallEntry,
    /// Fallback for a program that ran without system calls or preemption points for a
    /// while: the signal was delivered where the tracee was stopped, identified by its full
    /// register set (`SignalEvent::regs`) and a digest of the rest of its state. Replay
    /// runs to `regs.rip` until the registers match and the digest does too. Two points
    /// with equal registers, FPU/vector state and writable memory, with no system call
    /// between them, have the same future, so the first such point is as good as the one
    /// recorded: the placement is exact even in a loop that revisits its registers.
    Registers {
        /// SHA-256 of the FPU/vector state and every writable mapping's bytes at delivery
        /// (see `tracee::Stopped::state_digest`).
        state: BlobHash,
    },
}

/// An asynchronous signal delivered to the tracee. Synchronous faults are not recorded:
/// they recur by themselves at replay, where they are checked.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SignalEvent {
    /// Signal number.
    pub signo: i32,
    /// The raw 128-byte `siginfo_t` the handler receives (replay sets it with
    /// PTRACE_SETSIGINFO before injecting).
    pub siginfo: Vec<u8>,
    /// Where it was delivered.
    pub placement: Placement,
    /// `REWIND_TICKS` at delivery (0 without the ABI).
    pub ticks: u64,
    /// Registers at delivery, to check (and, for `Placement::Registers`, to find) the point.
    pub regs: Gprs,
}

/// An `rdtsc` or `rdtscp` trapped with PR_SET_TSC and emulated by the recorder. Replay
/// traps the same instruction (same `rip`) and writes `value` (and `aux`) back.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdtscEvent {
    /// Address of the instruction.
    pub rip: RemoteAddr,
    /// The time stamp counter value returned in edx:eax.
    pub value: u64,
    /// For `rdtscp`, the value returned in ecx (IA32_TSC_AUX).
    pub aux: Option<u32>,
    /// `REWIND_TICKS` at the instruction.
    pub ticks: u64,
}

/// A `cpuid` trapped by CPUID faulting and emulated (RDRAND/RDSEED hidden). Only present
/// when the host supports CPUID faulting (see `Header::cpuid`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidEvent {
    /// Address of the instruction.
    pub rip: RemoteAddr,
    /// eax at the instruction.
    pub leaf: u32,
    /// ecx at the instruction.
    pub subleaf: u32,
    /// eax, ebx, ecx, edx as returned.
    pub answer: [u32; 4],
    /// `REWIND_TICKS` at the instruction.
    pub ticks: u64,
}

/// How the recorded program ended.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal.
    Signaled {
        /// Signal number.
        signo: i32,
        /// Whether it dumped core.
        core: bool,
    },
}

impl ExitStatus {
    /// Decodes the status word wait(2) reports (what `tracee::Exit::wait_status` returns),
    /// so recorder and replayer convert a tracee's end the same way.
    pub fn from_wait_status(w: i32) -> ExitStatus {
        match w & 0x7f {
            0 => ExitStatus::Exited((w >> 8) & 0xff),
            signo => ExitStatus::Signaled {
                signo,
                core: w & 0x80 != 0,
            },
        }
    }

    /// The shell convention: the status, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled { signo, .. } => 128 + signo,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    /// `exited 0`, `killed by SIGABRT` (`, core dumped`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitStatus::Exited(c) => write!(f, "exited {c}"),
            ExitStatus::Signaled { signo, core } => {
                match crate::names::signal_name(signo) {
                    Some(n) => write!(f, "killed by {n}")?,
                    None => write!(f, "killed by signal {signo}")?,
                }
                if core {
                    f.write_str(", core dumped")?;
                }
                Ok(())
            }
        }
    }
}

/// One entry of the event stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A system call whose effects had to be recorded.
    Syscall(SyscallEvent),
    /// An asynchronous signal and where it landed.
    Signal(SignalEvent),
    /// A trapped time stamp counter read.
    Rdtsc(RdtscEvent),
    /// A trapped CPUID.
    Cpuid(CpuidEvent),
    /// The current task ended. In a recording of one process this is the program's end,
    /// always the last event of a complete recording of a full run; with more, each task
    /// ends with one, and the last task's is the last event.
    Exit(ExitStatus),
    /// The recorder stopped before the program ended (unsupported system call, a thread
    /// or child being created, …); replay can go up to here and no further.
    Aborted {
        /// Why, as the recorder reported it.
        reason: String,
    },
    /// The recorder moved from task `from` to task `to` (recording-time thread ids, stable
    /// names that replay maps to whatever ids its tasks get). The events after this one,
    /// up to the next switch, are `to`'s. `from` rests where its last event left it (or,
    /// after `Blocked`, inside its call); `to` goes on from where its own last event left
    /// it. One task runs at a time, so this is the whole schedule: replay runs each task
    /// exactly over the stretches the recording ran it.
    Switch {
        /// The task that ran up to here.
        from: u32,
        /// The task that runs from here.
        to: u32,
    },
    /// The current task's next system call (`nr`, entered at `rip`) went into the kernel
    /// and did not come back at once (it waits for a pipe, a child, another task): the
    /// recorder ran other tasks meanwhile. The call's result is this task's next
    /// `Syscall` event. Replay brings the task to the same entry here, so that its user
    /// code ran over the same stretch of the schedule as at record time.
    Blocked {
        /// The call's number.
        nr: u64,
        /// Address of the instruction after its `syscall`.
        rip: RemoteAddr,
    },
    /// The current task's fork, vfork, clone or clone3 (its next `Syscall` event, whose
    /// result is `tid`) created task `tid`. Replay executes the call and maps `tid` to the
    /// task it created.
    NewTask {
        /// The new task's recording-time id.
        tid: u32,
    },
    /// The current task executed a new program (a successful execve; from format 7 on, a
    /// failed one is an ordinary `Syscall` event, before that it is none).
    Exec(ExecEvent),
    /// The current task left the recording: it made itself the ptracee of its parent
    /// (PTRACE_TRACEME, as UML's start-up probes do), and from here on it is outside
    /// world, seen only through its tracer's recorded `ptrace` and `wait4` results, as a
    /// process that never was recorded would be. Replay ends its task here.
    Outside,
    /// The current task's next event is an `mmap` with MAP_SHARED of a regular file, and
    /// this is what it mapped (that `Syscall` event has no `mapping`). Replay backs every
    /// mapping of one shared file number with one memory file of its own, so that what a
    /// task writes through one mapping shows through the others, in every task, as it did.
    SharedMapping(SharedMapping),
    /// As `NewTask`, for a task created in its creator's process (CLONE_THREAD), as the
    /// kernel reported it. From format 6 on, `NewTask` is a new process; in older traces
    /// it is either.
    NewThread {
        /// The new thread's recording-time id.
        tid: u32,
    },
    /// The recorder took the CPU from the current task inside its user code: it had run
    /// a long time without a system call while another task could run, in a loop that
    /// changes nothing (`while (!flag);` waiting for that other task). It rests where its
    /// registers are `regs` and the digest of the rest of its state is `state`; a
    /// `Switch` follows. As for `Placement::Registers`, two points with the same
    /// registers and state, no system call between them, have the same future, so replay
    /// stops the task at the first visit to `regs.rip` where both match. From format 7 on.
    Preempted {
        /// Registers where the task was stopped.
        regs: Gprs,
        /// SHA-256 of the FPU/vector state and every writable mapping's bytes there (see
        /// `tracee::Stopped::state_digest`).
        state: BlobHash,
    },
}

/// What an mmap with MAP_SHARED mapped (see [`Event::SharedMapping`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SharedMapping {
    /// The file's number in the recording: numbered from 0 in the order first mapped,
    /// one per file, whatever descriptor or path reached it.
    pub file: u32,
    /// The file's path as the host saw it (for messages only).
    pub path: Vec<u8>,
    /// The file's size at mapping time; pages past it are not readable.
    pub file_size: u64,
    /// Offset in the file where the mapping starts.
    pub offset: u64,
    /// The bytes of the mapped range as of the mapping (up to the file's end, if that
    /// comes first): only these, a file mapped a page at a time is not stored whole.
    pub contents: Data,
}

/// A program image the current task started with execve: what the exec stop of the
/// recording's first program puts in the [`crate::Header`], for a later one.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ExecEvent {
    /// The binary the kernel executed (for a script, its interpreter).
    pub binary: crate::BinaryId,
    /// The auxiliary vector as the program sees it (AT_SYSINFO_EHDR blanked).
    pub auxv: Vec<(u64, u64)>,
    /// Where the auxv's AT_SYSINFO_EHDR entry was blanked.
    pub vdso_hidden_at: Option<RemoteAddr>,
    /// The AT_RANDOM bytes, which replay writes back.
    pub at_random: Option<(RemoteAddr, [u8; 16])>,
    /// Registers at the exec stop, to check.
    pub regs: Gprs,
    /// Mappings at the exec stop, the files behind them stored as blobs.
    pub mappings: Vec<crate::InitialMapping>,
}

impl Event {
    /// The blobs this event refers to, with the uncompressed length it records for each.
    pub fn blobs(&self) -> Vec<(BlobHash, u64)> {
        if let Event::SharedMapping(SharedMapping {
            contents: Data::Blob { hash, len },
            ..
        }) = self
        {
            return vec![(*hash, *len)];
        }
        let Event::Syscall(sc) = self else {
            return Vec::new();
        };
        let data = sc
            .writes
            .iter()
            .map(|w| &w.data)
            .chain(sc.output.iter().filter_map(|o| o.bytes.as_ref()));
        let mut out: Vec<(BlobHash, u64)> = data
            .filter_map(|d| match d {
                Data::Blob { hash, len } => Some((*hash, *len)),
                Data::Inline(_) => None,
            })
            .collect();
        if let Some(m) = &sc.mapping {
            out.push((m.file, m.file_size));
        }
        out
    }

    /// REWIND_TICKS when the event was recorded (0 for a program without the ABI); `None`
    /// for the end of the program or of the recording, which record no execution point.
    pub fn ticks(&self) -> Option<u64> {
        match self {
            Event::Syscall(s) => Some(s.ticks),
            Event::Signal(s) => Some(s.ticks),
            Event::Rdtsc(r) => Some(r.ticks),
            Event::Cpuid(c) => Some(c.ticks),
            Event::Exit(_)
            | Event::Aborted { .. }
            | Event::Switch { .. }
            | Event::Blocked { .. }
            | Event::NewTask { .. }
            | Event::NewThread { .. }
            | Event::Exec(_)
            | Event::Outside
            | Event::SharedMapping(_)
            | Event::Preempted { .. } => None,
        }
    }

    /// A short name for the kind of event.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Syscall(_) => "syscall",
            Event::Signal(_) => "signal",
            Event::Rdtsc(_) => "rdtsc",
            Event::Cpuid(_) => "cpuid",
            Event::Exit(_) => "exit",
            Event::Aborted { .. } => "aborted",
            Event::Switch { .. } => "switch",
            Event::Blocked { .. } => "blocked",
            Event::NewTask { .. } => "newtask",
            Event::NewThread { .. } => "newthread",
            Event::Exec(_) => "exec",
            Event::Outside => "outside",
            Event::SharedMapping(_) => "sharedmapping",
            Event::Preempted { .. } => "preempted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_words_decode_to_the_exit_or_signal() {
        assert_eq!(ExitStatus::from_wait_status(0), ExitStatus::Exited(0));
        assert_eq!(ExitStatus::from_wait_status(3 << 8), ExitStatus::Exited(3));
        assert_eq!(
            ExitStatus::from_wait_status(11 | 0x80),
            ExitStatus::Signaled {
                signo: 11,
                core: true
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(9),
            ExitStatus::Signaled {
                signo: 9,
                core: false
            }
        );
    }

    #[test]
    fn user_regs_words_round_trip() {
        let words: [u64; 27] = std::array::from_fn(|i| 0x100 + i as u64);
        assert_eq!(Gprs::from_user_regs(words).to_user_regs(), words);
    }
}
