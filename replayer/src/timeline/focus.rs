//! The timeline seen from one process of a multi-process recording, as `rr replay -p`
//! shows it: breakpoints, watchpoints and syscall catches stop only in the process in
//! focus, and a step (forward or back) is one of its instructions, the other processes
//! running unseen in between. Positions stay the recording's own, so `goto` and `when`
//! mean the same with or without a focus.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use trace::tasks::Process;
use trace::{Event, Gprs, TaskTree};

use super::{StopReason, Timeline};
use crate::error::{Error, Result};
use crate::position::Position;
use crate::session::{Focus, Goal, Reached};

/// A thread of the process a debugger looks at, and its registers here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Its recording-time id.
    pub tid: u32,
    /// It is the one running.
    pub current: bool,
    pub regs: Gprs,
}

impl Timeline {
    /// The tasks and processes of the recording.
    pub fn task_tree(&self) -> &TaskTree {
        &self.tree
    }

    /// The threads of the process a debugger looks at (the one in focus, or the
    /// recording's only one) that rest where their registers can be read, the running
    /// one first; `None` when that process has one task, or the recording several
    /// processes and none in focus (the running task is then the one thread).
    pub fn threads(&self) -> Option<Vec<Thread>> {
        let tree = &self.tree;
        let process = match self.engine.focus() {
            Some(f) => f.process,
            None if tree.processes.len() == 1 => 0,
            None => return None,
        };
        let p = &tree.processes[process];
        if p.tasks.len() < 2 {
            return None;
        }
        let mine: Vec<u32> = p.tasks.iter().filter_map(|&k| tree.tasks[k].tid).collect();
        let mut out: Vec<Thread> = self
            .engine
            .task_states()
            .into_iter()
            .filter_map(|(tid, current, regs)| {
                let tid = tid.or(tree.tasks[0].tid)?;
                Some(Thread {
                    tid,
                    current,
                    regs: regs?,
                })
            })
            .filter(|t| mine.contains(&t.tid))
            .collect();
        out.sort_by_key(|t| (!t.current, t.tid));
        Some(out)
    }

    /// Puts the debugger's view on the process with pid (or a thread with tid) `pid`, and
    /// returns where its program starts: after its first exec, or where it first runs if
    /// it never execs. The timeline does not move.
    pub fn focus_process(&mut self, pid: u32) -> Result<Position> {
        let tree = self.tree.clone();
        if !tree.threads_known {
            return Err(Error::Invalid(format!(
                "this recording (format {}) does not say which of its tasks are threads: \
                 record it again to debug one process",
                self.header().format_version
            )));
        }
        let process = tree.find(pid).ok_or_else(|| {
            Error::Invalid(format!(
                "no process or thread {pid} in this recording (`rewind ps` lists them)"
            ))
        })?;
        let p = &tree.processes[process];
        let start = match p.execs.first() {
            Some(&(at, _)) => Position::event(at + 1),
            None => Position::event(p.events.start),
        };
        self.engine.set_focus(Some(Focus { tree, process }));
        Ok(start)
    }

    /// The program the process in focus starts in (its first exec's, checked against the
    /// recorded hash; without an exec, the recording's binary) and where the loader put
    /// its entry point (AT_ENTRY), for a debugger's symbols.
    pub fn focus_program(&self) -> Result<(PathBuf, Option<u64>)> {
        let exec = self.focused().and_then(|p| p.execs.first());
        let entry = |auxv: &[(u64, u64)]| {
            auxv.iter()
                .find(|(k, _)| *k == libc::AT_ENTRY)
                .map(|&(_, v)| v)
        };
        match exec.and_then(|&(at, _)| self.engine.event(at)) {
            Some(Event::Exec(x)) => {
                let path = PathBuf::from(OsStr::from_bytes(&x.binary.path));
                crate::files::check_binary(&self.data().path, &x.binary, &path)?;
                Ok((path, entry(&x.auxv)))
            }
            _ => Ok((self.binary().to_path_buf(), entry(&self.header().auxv))),
        }
    }

    /// The auxiliary vector of the program a debugger looks at (that of the first exec of
    /// the process in focus, or the recording's), as the program saw it: a debugger
    /// reads where a position-independent program was loaded from it.
    pub fn auxv(&self) -> Vec<(u64, u64)> {
        let exec = self.focused().and_then(|p| p.execs.first());
        match exec.and_then(|&(at, _)| self.engine.event(at)) {
            Some(Event::Exec(x)) => x.auxv.clone(),
            _ => self.header().auxv.clone(),
        }
    }

    /// The process in focus, if one was chosen.
    pub fn focused(&self) -> Option<&Process> {
        self.engine.focus().map(|f| &f.tree.processes[f.process])
    }

    /// Whether event `n` is run by the process in focus (always, without a focus).
    pub(super) fn in_focus_at(&self, n: u64) -> bool {
        self.engine.focus().is_none_or(|f| f.runs(n))
    }

    /// On to the next event boundary (of the process in focus, if one was chosen).
    pub fn next_boundary(&mut self) -> Result<StopReason> {
        let n = self.engine.next_event() + 1;
        if n > self.events().len() as u64 {
            return Ok(StopReason::EndOfHistory);
        }
        self.seek(&Position::event(n))?;
        self.run_to_focus()
    }

    /// From a point where another process runs, on to the next event boundary where the
    /// process in focus does.
    pub(super) fn run_to_focus(&mut self) -> Result<StopReason> {
        while !self.engine.in_focus() {
            let n = self.engine.next_event() + 1;
            match self.engine.run(Goal::Boundary(n), false)? {
                Reached::Exited(e) => return Ok(StopReason::Exited(e)),
                Reached::End => return Ok(StopReason::EndOfHistory),
                _ => {}
            }
        }
        Ok(StopReason::Done)
    }

    /// After a step back from `from` that landed where another process runs: on back to
    /// the last instruction the process in focus ran before, or to `from` at the start of
    /// its history.
    pub(super) fn back_into_focus(&mut self, from: Position) -> Result<StopReason> {
        let here = self.position()?;
        if self.in_focus_at(here.event) {
            return Ok(StopReason::Done);
        }
        let Some(f) = self.engine.focus() else {
            return Ok(StopReason::Done);
        };
        // The last event an instruction of the process made (a switch or an exit is the
        // schedule's, and runs none).
        let (tree, process) = (f.tree.clone(), f.process);
        let mut upto = here.event;
        let executed = loop {
            match tree.last_run_before(process, upto) {
                Some(j) if self.engine.event(j).and_then(Event::ticks).is_some() => break Some(j),
                Some(j) => upto = j,
                None => break None,
            }
        };
        match executed {
            Some(j) => self.last_instruction_of(j),
            None => {
                self.seek(&from)?;
                Ok(StopReason::StartOfHistory)
            }
        }
    }
}
