//! Processes the program ptraces itself, left outside the recording. Linux built as UML
//! forks children at start-up that make themselves its ptracees (PTRACE_TRACEME) to probe
//! what the host's ptrace can do. The recorder is already their tracer, so it plays the
//! tracer's part for them: the child's PTRACE_TRACEME is answered, `Event::Outside` ends
//! its recorded life there, and from then on it runs as outside world, its stops handed to
//! its parent through emulated `ptrace` and `wait4` calls that act on the real child and
//! are recorded like any call's result and output. Replay emulates those results and needs
//! no child at all: what the program learnt from it is in the trace.
//!
//! Only the requests a tracer of this kind makes are played (options TRACESYSGOOD; the
//! resumes; reading and writing registers); any other is refused by name, never guessed.

use std::collections::BTreeMap;

use trace::Event;
use tracee::{Addr, Pid, Regs, Resume, Signal, Stop, Stopped, Waited};

use crate::error::{Error, Result};
use crate::session::{Flow, Session};
use crate::tasks::PendingCall;

/// `NT_PRSTATUS` and `NT_X86_XSTATE`, the register sets PTRACE_GETREGSET is played for.
const NT_PRSTATUS: u64 = 1;
const NT_X86_XSTATE: u64 = 0x202;
/// `sizeof(struct user_regs_struct)`.
const REGS_LEN: usize = 27 * 8;
const WAIT_OPTIONS: u64 =
    (libc::WNOHANG | libc::WUNTRACED | libc::__WALL | libc::__WNOTHREAD) as u32 as u64;

/// Where a child outside the recording stands, as its tracer would see it.
enum State {
    /// Running; a seccomp stop of the recorder's own filter is passed with `mode`.
    Running(Resume),
    /// At a ptrace stop its tracer sees as wait status `status` (`reported` once its
    /// tracer's wait4 returned it).
    Stopped {
        s: Stopped,
        status: i32,
        reported: bool,
    },
    /// Ended with wait status `status`.
    Ended { status: i32, reported: bool },
}

struct Child {
    /// Its tracer: the parent it asked with PTRACE_TRACEME.
    tracer: i32,
    /// PTRACE_O_TRACESYSGOOD: syscall stops report SIGTRAP|0x80.
    sysgood: bool,
    /// Its SIGSTOP was let through to stop its group, which its parent may be waiting
    /// for in the kernel with WUNTRACED (a real wait4 made before the child asked to be
    /// traced): the group stop ends that wait for real, and is its tracer's stop.
    stopping: bool,
    /// The parent's real wait4 returned the coming stop already.
    seen_by_parent: bool,
    state: State,
}

/// The children outside the recording, by pid.
#[derive(Default)]
pub(crate) struct Outside {
    children: BTreeMap<i32, Child>,
}

/// What an emulated call returns and writes into its caller's memory.
pub(crate) struct Emulated {
    pub ret: i64,
    pub writes: Vec<(u64, Vec<u8>)>,
    /// The caller leaves the recording after this call (its PTRACE_TRACEME).
    pub leaves: bool,
}

impl Emulated {
    fn ret(ret: i64) -> Self {
        Emulated {
            ret,
            writes: Vec::new(),
            leaves: false,
        }
    }

    fn err(errno: i32) -> Self {
        Emulated::ret(-i64::from(errno))
    }
}

/// An emulated call, or why the recorder refuses it.
pub(crate) type Played = std::result::Result<Emulated, String>;

fn stop_status(sig: i32) -> i32 {
    (sig << 8) | 0x7f
}

impl Outside {
    pub(crate) fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Whether `pid` is a child outside the recording.
    pub(crate) fn contains(&self, pid: i32) -> bool {
        self.children.contains_key(&pid)
    }

    /// `pid` left the recording, ptraced by `tracer`; it is at a stop, about to run on.
    pub(crate) fn adopt(&mut self, s: Stopped, tracer: i32) -> tracee::Result<()> {
        let pid = s.pid().as_raw();
        s.resume(Resume::Cont(None))?;
        self.children.insert(
            pid,
            Child {
                tracer,
                sysgood: false,
                stopping: false,
                seen_by_parent: false,
                state: State::Running(Resume::Cont(None)),
            },
        );
        Ok(())
    }

    /// A report `w` of child `pid`: the recorder's own seccomp stops are passed, every
    /// other stop is one its tracer will see.
    pub(crate) fn note(&mut self, pid: i32, w: Waited) -> std::result::Result<(), String> {
        let Some(child) = self.children.get_mut(&pid) else {
            return Err(format!("no child {pid} outside the recording"));
        };
        child.state = match (
            std::mem::replace(
                &mut child.state,
                State::Ended {
                    status: 0,
                    reported: true,
                },
            ),
            w,
        ) {
            (State::Running(mode), Waited::Stopped(s, Stop::Seccomp)) => {
                s.resume(mode).map_err(|e| e.to_string())?;
                State::Running(mode)
            }
            (State::Running(mode), Waited::Stopped(s, Stop::Signal(Signal::SIGSTOP)))
                if !child.stopping =>
            {
                s.resume(Resume::Cont(Some(Signal::SIGSTOP)))
                    .map_err(|e| e.to_string())?;
                child.stopping = true;
                State::Running(mode)
            }
            (_, Waited::Stopped(s, Stop::Signal(Signal::SIGSTOP))) if child.stopping => {
                child.stopping = false;
                State::Stopped {
                    s,
                    status: stop_status(libc::SIGSTOP),
                    reported: std::mem::take(&mut child.seen_by_parent),
                }
            }
            (_, Waited::Stopped(s, Stop::Syscall)) => {
                let trap = libc::SIGTRAP | if child.sysgood { 0x80 } else { 0 };
                State::Stopped {
                    s,
                    status: stop_status(trap),
                    reported: false,
                }
            }
            (_, Waited::Stopped(s, Stop::Signal(sig))) => State::Stopped {
                s,
                status: stop_status(sig as i32),
                reported: false,
            },
            (_, Waited::Stopped(s, other)) => {
                let _ = s.kill();
                return Err(format!(
                    "process {pid}, which the program ptraces, stopped with {other:?}: a \
                     ptracee that forks or execs is not supported"
                ));
            }
            (_, Waited::Exited(e)) => State::Ended {
                status: e.wait_status(),
                reported: false,
            },
        };
        Ok(())
    }

    /// The parent's real wait4 returned `pid` (a stop of its group, or its end): that
    /// report is not its tracer's to see again.
    fn seen_by_parent(&mut self, pid: i32) {
        let Some(child) = self.children.get_mut(&pid) else {
            return;
        };
        match &mut child.state {
            State::Stopped { reported, .. } | State::Ended { reported, .. } => *reported = true,
            State::Running(_) => child.seen_by_parent = true,
        }
    }

    /// Kills every child still alive (the recording ended or failed).
    pub(crate) fn kill_all(&mut self) {
        for (pid, child) in std::mem::take(&mut self.children) {
            match child.state {
                State::Stopped { s, .. } => {
                    let _ = s.kill();
                }
                State::Running(_) => tracee::task::kill_pid(Pid::from_raw(pid)),
                State::Ended { .. } => {}
            }
        }
    }
}

impl Session {
    /// The running task's real wait4 returned `pid`. For a child outside the recording
    /// that is the group stop its SIGSTOP made, whose report to the recorder is then
    /// already queued: it is collected now, so that the tracer's next requests find the
    /// child stopped, as they would natively.
    pub(crate) fn parent_waited(&mut self, pid: i32) -> Result<()> {
        self.outside.seen_by_parent(pid);
        while self.outside.children.get(&pid).is_some_and(|c| c.stopping) {
            self.await_report()?;
        }
        Ok(())
    }

    /// The emulated result of call `nr`, if it is one the recorder plays: a ptrace call,
    /// or a wait4 for a child outside the recording.
    pub(crate) fn played_call(
        &mut self,
        s: &Stopped,
        nr: u64,
        args: [u64; 6],
    ) -> Result<Option<Played>> {
        if nr == libc::SYS_ptrace as u64 {
            return self.play_ptrace(s, args).map(Some);
        }
        if nr == libc::SYS_wait4 as u64 {
            return self.play_wait4(args);
        }
        Ok(None)
    }

    /// Finishes a played call from its seccomp stop (`regs`): the kernel skips it, its
    /// result and writes are put in place, and it is recorded like any call. A caller
    /// that leaves the recording (PTRACE_TRACEME) ends its recorded life with
    /// `Event::Outside` and runs on as its parent's ptracee.
    pub(crate) fn complete_played(
        &mut self,
        s: Stopped,
        call: PendingCall,
        regs: Regs,
        played: Emulated,
    ) -> Result<Flow> {
        let s = match self.t(s.skip_syscall(&regs, "skipping a played call"))? {
            Ok(s) => s,
            Err(e) => return Ok(Flow::Exited(e)),
        };
        let mut back = self.t(s.regs())?;
        back.set_syscall_ret(played.ret);
        self.t(s.set_regs(&back))?;
        for (addr, bytes) in &played.writes {
            self.t(s.write_bytes(Addr::new(*addr), bytes))?;
        }
        if !played.leaves {
            return self.complete_call(s, call);
        }
        let mut event = call.event;
        event.ret = played.ret;
        self.append(Event::Syscall(event))?;
        self.append(Event::Outside)?;
        let tracer =
            self.t(
                tracee::maps::parent_id(s.pid()).map_err(|e| tracee::Error::Unexpected {
                    pid: s.pid().as_raw(),
                    op: "reading the parent of a ptracee",
                    what: e.to_string(),
                }),
            )?;
        let adopted = self.outside.adopt(s, tracer);
        self.t(adopted)?;
        Ok(Flow::Left)
    }

    fn play_ptrace(&mut self, s: &Stopped, a: [u64; 6]) -> Result<Played> {
        let me = self.task.pid.as_raw();
        let req = libc::c_uint::try_from(a[0]).unwrap_or(u32::MAX);
        if req == libc::PTRACE_TRACEME {
            let parent = tracee::maps::parent_id(self.task.pid).unwrap_or(0);
            if !self.tasks.contains(parent) {
                return Ok(Err(
                    "PTRACE_TRACEME by a process whose parent is not recorded: its tracer \
                     would be outside the recording"
                        .into(),
                ));
            }
            // What it writes to memory it shares with the recording, outside the
            // recording, no replay could reproduce (a UML userspace process maps guest
            // physical memory so).
            let shared = tracee::maps::first_shared(self.task.pid).map_err(|source| Error::Io {
                op: "read",
                path: format!("/proc/{}/maps", self.task.pid).into(),
                source,
            })?;
            if let Some(m) = shared {
                return Ok(Err(format!(
                    "PTRACE_TRACEME by a process that shares memory with the recording ({} \
                     mapped MAP_SHARED at {}): what it wrote there outside the recording could \
                     not be replayed (a UML userspace process is one; not supported yet)",
                    m.what(),
                    m.start
                )));
            }
            return Ok(Ok(Emulated {
                leaves: true,
                ..Emulated::ret(0)
            }));
        }
        let pid = tracee::abi::as_c_int(a[1]);
        let Some(child) = self
            .outside
            .children
            .get_mut(&pid)
            .filter(|c| c.tracer == me)
        else {
            return Ok(Err(format!(
                "ptrace request {req:#x} on process {pid}, which is not a ptracee of this \
                 process (only children that asked with PTRACE_TRACEME are played)"
            )));
        };
        let played = play_request(child, pid, req, a, s);
        self.t(played)
    }

    /// wait4 for a child outside the recording: its next stop or end, as its tracer sees
    /// it. `None` for a wait4 that concerns no such child (it runs as recorded).
    fn play_wait4(&mut self, a: [u64; 6]) -> Result<Option<Played>> {
        let me = self.task.pid.as_raw();
        let pid = tracee::abi::as_c_int(a[0]);
        if pid <= 0 {
            let pending = self.outside.children.values().any(|c| {
                c.tracer == me
                    && matches!(
                        c.state,
                        State::Stopped {
                            reported: false,
                            ..
                        } | State::Ended {
                            reported: false,
                            ..
                        }
                    )
            });
            return Ok(pending.then(|| {
                Err(format!(
                    "wait4({pid}) while a child the program ptraces has a stop to report: \
                     only waits naming that child are played"
                ))
            }));
        }
        if self
            .outside
            .children
            .get(&pid)
            .is_none_or(|c| c.tracer != me)
        {
            return Ok(None);
        }
        if a[2] & !WAIT_OPTIONS != 0 || a[3] != 0 {
            return Ok(Some(Err(format!(
                "wait4 for a ptracee with options {:#x} or a rusage buffer",
                a[2]
            ))));
        }
        let nohang = a[2] & libc::WNOHANG as u64 != 0;
        loop {
            let Some(child) = self.outside.children.get_mut(&pid) else {
                return Ok(Some(Ok(Emulated::err(libc::ECHILD))));
            };
            let status = match &mut child.state {
                State::Stopped {
                    status,
                    reported: reported @ false,
                    ..
                }
                | State::Ended {
                    status,
                    reported: reported @ false,
                } => {
                    *reported = true;
                    Some(*status)
                }
                State::Ended { reported: true, .. } => {
                    self.outside.children.remove(&pid);
                    return Ok(Some(Ok(Emulated::err(libc::ECHILD))));
                }
                // Running, or at a stop already reported, which only a SIGKILL ends
                // (natively too the wait would block until then).
                _ => None,
            };
            if let Some(status) = status {
                let writes = if a[1] != 0 {
                    vec![(a[1], status.to_le_bytes().to_vec())]
                } else {
                    Vec::new()
                };
                return Ok(Some(Ok(Emulated {
                    writes,
                    ..Emulated::ret(i64::from(pid))
                })));
            }
            if nohang {
                return Ok(Some(Ok(Emulated::ret(0))));
            }
            self.await_report()?;
        }
    }
}

/// Plays ptrace request `req` (arguments `a`, made by tracer `s`) on `child`, `pid`.
fn play_request(
    child: &mut Child,
    pid: i32,
    req: libc::c_uint,
    a: [u64; 6],
    s: &Stopped,
) -> tracee::Result<Played> {
    let mode: Option<fn(Option<Signal>) -> Resume> = match req {
        libc::PTRACE_CONT => Some(Resume::Cont),
        libc::PTRACE_SYSCALL => Some(Resume::Syscall),
        libc::PTRACE_SINGLESTEP => Some(Resume::Step),
        libc::PTRACE_SYSEMU => Some(Resume::SysEmu),
        libc::PTRACE_SYSEMU_SINGLESTEP => Some(Resume::SysEmuStep),
        _ => None,
    };
    if req == libc::PTRACE_KILL {
        child.state = match std::mem::replace(&mut child.state, State::Running(Resume::Cont(None)))
        {
            State::Stopped { s, .. } => {
                let e = s.kill()?;
                State::Ended {
                    status: e.wait_status(),
                    reported: false,
                }
            }
            State::Running(m) => {
                tracee::task::send_kill(Pid::from_raw(pid));
                State::Running(m)
            }
            ended => ended,
        };
        return Ok(Ok(Emulated::ret(0)));
    }
    // Every other request needs the child at a stop, or fails as the kernel fails it.
    let State::Stopped { s: cs, .. } = &child.state else {
        return Ok(Ok(Emulated::err(libc::ESRCH)));
    };
    if let Some(mode) = mode {
        // The signal to deliver, as the kernel takes it (an invalid one fails with EIO).
        let sig = match tracee::abi::as_c_int(a[3]) {
            0 => None,
            n => match Signal::try_from(n) {
                Ok(sig) => Some(sig),
                Err(_) => return Ok(Ok(Emulated::err(libc::EIO))),
            },
        };
        let State::Stopped { s: cs, .. } =
            std::mem::replace(&mut child.state, State::Running(mode(None)))
        else {
            unreachable!("matched as stopped above");
        };
        cs.resume(mode(sig))?;
        return Ok(Ok(Emulated::ret(0)));
    }
    let user_regs = |off: u64| {
        (off.is_multiple_of(8) && off < REGS_LEN as u64)
            .then(|| usize::try_from(off / 8).unwrap_or(0))
    };
    let played = match req {
        libc::PTRACE_SETOPTIONS => {
            if a[3] & !(libc::PTRACE_O_TRACESYSGOOD as u64) != 0 {
                return Ok(Err(format!(
                    "PTRACE_SETOPTIONS {:#x}: only PTRACE_O_TRACESYSGOOD is played",
                    a[3]
                )));
            }
            child.sysgood = a[3] != 0;
            Emulated::ret(0)
        }
        libc::PTRACE_PEEKUSER => match user_regs(a[2]) {
            Some(i) => {
                let word = cs.regs()?.to_array()[i];
                Emulated {
                    writes: vec![(a[3], word.to_le_bytes().to_vec())],
                    ..Emulated::ret(0)
                }
            }
            None => return Ok(Err(format!("PTRACE_PEEKUSER at offset {:#x}", a[2]))),
        },
        libc::PTRACE_POKEUSER => match user_regs(a[2]) {
            Some(i) => {
                let mut regs = cs.regs()?.to_array();
                regs[i] = a[3];
                cs.set_regs(&Regs::from_array(regs))?;
                Emulated::ret(0)
            }
            None => return Ok(Err(format!("PTRACE_POKEUSER at offset {:#x}", a[2]))),
        },
        libc::PTRACE_GETREGS => {
            let bytes = cs
                .regs()?
                .to_array()
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            Emulated {
                writes: vec![(a[3], bytes)],
                ..Emulated::ret(0)
            }
        }
        libc::PTRACE_GETFPREGS => Emulated {
            writes: vec![(a[3], cs.fpregs()?.to_vec())],
            ..Emulated::ret(0)
        },
        libc::PTRACE_GETREGSET if a[2] == NT_X86_XSTATE || a[2] == NT_PRSTATUS => {
            let data: Vec<u8> = if a[2] == NT_X86_XSTATE {
                cs.xstate()?
            } else {
                cs.regs()?
                    .to_array()
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect()
            };
            let base = s.read_u64(Addr::new(a[3]))?;
            let len = s.read_u64(Addr::new(a[3] + 8))?;
            let n = data.len().min(usize::try_from(len).unwrap_or(usize::MAX));
            Emulated {
                writes: vec![
                    (base, data[..n].to_vec()),
                    (a[3] + 8, (n as u64).to_le_bytes().to_vec()),
                ],
                ..Emulated::ret(0)
            }
        }
        _ => {
            return Ok(Err(format!(
                "ptrace request {req:#x} toward a ptracee is not played by the recorder"
            )))
        }
    };
    Ok(Ok(played))
}
