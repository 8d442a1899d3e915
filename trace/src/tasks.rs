//! Who ran each event: the tasks of a recording and the processes they form, read once
//! from the event stream (`Switch`, `NewTask`, `NewThread`, `Exec`, `Exit`, `Outside`).
//!
//! The stream is the schedule: the events up to the first `Switch` are the first task's,
//! and the events after a `Switch { to }` are `to`'s, up to the next. The first task's
//! recording-time id is named by the first switch away from it (a recording with one task
//! never names it). `rewind ps`, `replay -p` and the replayer's focus on one process all
//! read this one model.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::{Event, ExitStatus};

/// One task (a thread of some process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its recording-time id; `None` for the first task of a recording that never names it.
    pub tid: Option<u32>,
    /// Index of its process in [`TaskTree::processes`].
    pub process: usize,
    /// The `NewTask`/`NewThread` event that created it (`None` for the first task).
    pub created_at: Option<u64>,
}

/// One process: a thread group, named by its first task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The id of the task that started it (the leader's tid is the pid).
    pub pid: Option<u32>,
    /// Index of the process that created it.
    pub parent: Option<usize>,
    /// The event that created it (`None` for the recording's first process).
    pub created_at: Option<u64>,
    /// Its tasks, indices in [`TaskTree::tasks`], the leader first.
    pub tasks: Vec<usize>,
    /// Each exec it made: the `Exec` event and the program's path.
    pub execs: Vec<(u64, Vec<u8>)>,
    /// The first and one past the last event its tasks ran.
    pub events: Range<u64>,
    /// How its leader ended, when the recording holds that.
    pub exit: Option<ExitStatus>,
}

impl Process {
    /// The program it ran last (its last exec's), if it exec'd.
    pub fn program(&self) -> Option<&[u8]> {
        self.execs.last().map(|(_, p)| p.as_slice())
    }
}

/// The tasks and processes of a recording, and which task ran each event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskTree {
    /// Every task, in the order created (the first task first).
    pub tasks: Vec<Task>,
    /// Every process, in the order created.
    pub processes: Vec<Process>,
    /// Whether each new task is known to be a thread or a process: traces before format 6
    /// said `NewTask` for both.
    pub threads_known: bool,
    /// `(first event, task)` for each stretch of the schedule, in event order.
    runs: Vec<(u64, usize)>,
}

impl TaskTree {
    /// Reads the tree off the events of a trace of format `version`.
    pub fn of(events: &[Event], version: u32) -> TaskTree {
        let mut b = TaskTreeBuilder::new(version);
        events.iter().for_each(|ev| b.push(ev));
        b.finish()
    }

    /// Registers task `tid`, created at event `at` by process `by`, in `by` (a thread) or
    /// in a new process.
    fn add(&mut self, tid: u32, at: Option<u64>, by: Option<usize>, thread: bool) -> usize {
        let k = self.tasks.len();
        let process = match by {
            Some(p) if thread => p,
            _ => {
                self.processes.push(Process {
                    pid: Some(tid),
                    parent: by,
                    created_at: at,
                    tasks: Vec::new(),
                    execs: Vec::new(),
                    events: 0..0,
                    exit: None,
                });
                self.processes.len() - 1
            }
        };
        self.processes[process].tasks.push(k);
        self.tasks.push(Task {
            tid: Some(tid),
            process,
            created_at: at,
        });
        k
    }

    /// The task that runs event `n` (and the stretch before it, from the previous event's
    /// boundary): for `n` past the end, the task that ran last.
    pub fn owner(&self, n: u64) -> usize {
        let i = self.runs.partition_point(|&(start, _)| start <= n);
        self.runs[i.saturating_sub(1)].1
    }

    /// The process of the task that runs event `n`.
    pub fn process_of_event(&self, n: u64) -> usize {
        self.tasks[self.owner(n)].process
    }

    /// The process with pid `pid`, or the one task `pid` is a thread of.
    pub fn find(&self, pid: u32) -> Option<usize> {
        self.processes
            .iter()
            .position(|p| p.pid == Some(pid))
            .or_else(|| {
                self.tasks
                    .iter()
                    .find(|t| t.tid == Some(pid))
                    .map(|t| t.process)
            })
    }

    /// The last event before `n` that process `p` runs.
    pub fn last_run_before(&self, p: usize, n: u64) -> Option<u64> {
        let i = self.runs.partition_point(|&(start, _)| start < n);
        self.runs[..i]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(j, &(start, task))| {
                if self.tasks[task].process != p {
                    return None;
                }
                let end = self.runs.get(j + 1).map_or(u64::MAX, |r| r.0);
                Some(end.min(n).saturating_sub(1).max(start))
            })
    }
}

/// Builds a [`TaskTree`] one event at a time, for a reader that streams the events.
#[derive(Debug, Clone)]
pub struct TaskTreeBuilder {
    tree: TaskTree,
    version: u32,
    by_tid: BTreeMap<u32, usize>,
    /// The task that runs the next event.
    cur: usize,
    /// The next event's index.
    next: u64,
}

impl TaskTreeBuilder {
    /// A builder for a trace of format `version`, before its first event.
    pub fn new(version: u32) -> TaskTreeBuilder {
        TaskTreeBuilder {
            tree: TaskTree {
                tasks: vec![Task {
                    tid: None,
                    process: 0,
                    created_at: None,
                }],
                processes: vec![Process {
                    pid: None,
                    parent: None,
                    created_at: None,
                    tasks: vec![0],
                    execs: Vec::new(),
                    events: 0..0,
                    exit: None,
                }],
                threads_known: true,
                runs: vec![(0, 0)],
            },
            version,
            by_tid: BTreeMap::new(),
            cur: 0,
            next: 0,
        }
    }

    /// Takes in the next event.
    pub fn push(&mut self, ev: &Event) {
        let (i, cur) = (self.next, self.cur);
        self.next += 1;
        let t = &mut self.tree;
        let p = t.tasks[cur].process;
        let span = &mut t.processes[p].events;
        if span.is_empty() {
            *span = i..i + 1;
        } else {
            span.end = i + 1;
        }
        match ev {
            Event::Switch { from, to } => {
                if t.tasks[cur].tid.is_none() {
                    t.tasks[cur].tid = Some(*from);
                    t.processes[p].pid.get_or_insert(*from);
                    self.by_tid.insert(*from, cur);
                }
                // A task never created is the trace's own invention; it gets a process
                // of its own, so that it is listed and owns its events.
                self.cur = match self.by_tid.get(to) {
                    Some(&k) => k,
                    None => {
                        let k = t.add(*to, None, None, false);
                        self.by_tid.insert(*to, k);
                        k
                    }
                };
                t.runs.push((i + 1, self.cur));
            }
            Event::NewTask { tid } | Event::NewThread { tid } => {
                let thread = matches!(ev, Event::NewThread { .. });
                if !thread && self.version < 6 {
                    t.threads_known = false;
                }
                if !self.by_tid.contains_key(tid) {
                    let k = t.add(*tid, Some(i), Some(p), thread);
                    self.by_tid.insert(*tid, k);
                }
            }
            Event::Exec(x) => t.processes[p].execs.push((i, x.binary.path.clone())),
            Event::Exit(e) if t.processes[p].tasks.first() == Some(&cur) => {
                t.processes[p].exit = Some(*e);
            }
            _ => {}
        }
    }

    /// The tree of the events taken in.
    pub fn finish(self) -> TaskTree {
        self.tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch(from: u32, to: u32) -> Event {
        Event::Switch { from, to }
    }

    fn exit(code: i32) -> Event {
        Event::Exit(ExitStatus::Exited(code))
    }

    #[test]
    fn a_fork_and_a_thread_make_two_processes_of_three_tasks() {
        // 0 forks 11; 11 starts thread 12; 12 runs, 11 ends, 0 ends.
        let events = vec![
            Event::NewTask { tid: 11 },
            switch(10, 11),
            Event::NewThread { tid: 12 },
            switch(11, 12),
            exit(0),
            switch(12, 11),
            exit(3),
            switch(11, 10),
            exit(0),
        ];
        let t = TaskTree::of(&events, 6);
        assert!(t.threads_known);
        assert_eq!(t.processes.len(), 2);
        assert_eq!(t.processes[0].pid, Some(10));
        assert_eq!(t.processes[1].pid, Some(11));
        assert_eq!(t.processes[1].parent, Some(0));
        assert_eq!(t.processes[1].tasks, vec![1, 2]);
        assert_eq!(t.processes[1].exit, Some(ExitStatus::Exited(3)));
        assert_eq!(t.processes[0].exit, Some(ExitStatus::Exited(0)));
        assert_eq!(t.processes[1].events, 2..8);
        assert_eq!(t.owner(0), 0);
        assert_eq!(t.owner(1), 0);
        assert_eq!(t.owner(2), 1);
        assert_eq!(t.owner(4), 2);
        assert_eq!(t.owner(100), 0);
        assert_eq!(t.find(12), Some(1));
        assert_eq!(t.find(99), None);
        assert_eq!(t.last_run_before(1, 8), Some(7));
        assert_eq!(t.last_run_before(0, 8), Some(1));
        assert_eq!(t.last_run_before(1, 2), None);
    }

    #[test]
    fn an_old_trace_does_not_say_which_tasks_are_threads() {
        let t = TaskTree::of(&[Event::NewTask { tid: 2 }, switch(1, 2)], 5);
        assert!(!t.threads_known);
    }

    #[test]
    fn a_switch_to_a_task_never_created_gets_a_process_of_its_own() {
        let t = TaskTree::of(&[switch(1, 7), exit(0)], 6);
        assert_eq!(t.processes.len(), 2);
        assert_eq!(t.process_of_event(1), 1);
    }
}
