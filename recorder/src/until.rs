//! `--until crash|hang|exit-nonzero`: re-record with successive chaos seeds until the run
//! ends the way asked, keep that trace and delete the others. Each run is exactly one
//! `rewind record --chaos SEED -o DIR` (see `RecordOptions::with_seed`), so a job engine
//! can run the seeds in parallel instead of this loop when one machine is not enough.

use std::fmt;
use std::path::PathBuf;

use trace::ExitStatus;

use crate::{record, tracedir, RecordOptions, Recording};

/// How the run must end to count as the bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Killed by a signal (a umk panic aborts).
    Crash,
    /// Still running at the timeout.
    Hang,
    /// Exited with a non-zero status.
    ExitNonzero,
}

impl std::str::FromStr for Goal {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "crash" => Ok(Goal::Crash),
            "hang" => Ok(Goal::Hang),
            "exit-nonzero" => Ok(Goal::ExitNonzero),
            _ => Err(format!(
                "unknown goal {s:?} (one of: crash, hang, exit-nonzero)"
            )),
        }
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Goal::Crash => "crash",
            Goal::Hang => "hang",
            Goal::ExitNonzero => "non-zero exit",
        })
    }
}

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal (not the recorder's timeout kill).
    Crashed(i32),
    /// Stopped by the recorder at the timeout.
    Hung,
    /// Killed by this signal after the guest's own hung-task detector reported blocked
    /// tasks and panicked (see `guest::console`): a hang the guest caught itself.
    GuestHang(i32),
}

impl Outcome {
    /// Classifies a finished recording.
    pub fn of(rec: &Recording) -> Outcome {
        match rec.exit {
            _ if rec.timed_out => Outcome::Hung,
            ExitStatus::Exited(c) => Outcome::Exited(c),
            ExitStatus::Signaled { signo, .. } => Outcome::Crashed(signo),
        }
    }

    /// Whether this is what `goal` looks for.
    pub fn matches(self, goal: Goal) -> bool {
        match (self, goal) {
            (Outcome::Crashed(_), Goal::Crash)
            | (Outcome::Hung, Goal::Hang)
            | (Outcome::GuestHang(_), Goal::Hang | Goal::Crash) => true,
            (Outcome::Exited(c), Goal::ExitNonzero) => c != 0,
            _ => false,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exited(c) => write!(f, "exited {c}"),
            Outcome::Crashed(s) => f.write_str(&killed_by(*s)),
            Outcome::Hung => f.write_str("hung (stopped at the timeout)"),
            Outcome::GuestHang(s) => write!(
                f,
                "hung (the guest's hung-task detector panicked; {})",
                killed_by(*s)
            ),
        }
    }
}

fn killed_by(signo: i32) -> String {
    trace::ExitStatus::Signaled { signo, core: false }.to_string()
}

/// Whether the crashed run in `dir` was the guest's hung-task panic: its console output
/// (the writes the trace keeps whole, which a kernel's line-at-a-time console always is)
/// ends in one. A trace that cannot be read is not one.
fn guest_hang(dir: &std::path::Path) -> Option<String> {
    // The end of the console is what says how it ended; keep that much.
    const TAIL: usize = 64 << 10;
    let reader = trace::open(dir).ok()?;
    let mut console = Vec::new();
    for item in reader.events().ok()? {
        let Ok((_, trace::Event::Syscall(sc))) = item else {
            continue;
        };
        if let Some(trace::Output {
            console: Some(_),
            bytes: Some(trace::Data::Inline(bytes)),
            ..
        }) = sc.output
        {
            console.extend_from_slice(&bytes);
            if console.len() > 2 * TAIL {
                console.drain(..console.len() - TAIL);
            }
        }
    }
    guest::console::hung_task_panic(&console)
}

/// What to look for and how long.
#[derive(Debug, Clone, Copy)]
pub struct UntilOptions {
    /// The ending that counts as the bug.
    pub goal: Goal,
    /// Seed of the first run; run k uses `first_seed + k - 1`.
    pub first_seed: u64,
    /// Give up after this many runs.
    pub max_runs: u32,
}

/// One run, for the accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// 1-based run number.
    pub run: u32,
    /// Its chaos seed.
    pub seed: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// The run that reproduced the bug.
#[derive(Debug)]
pub struct Reproduced {
    /// Every run, the last being the one kept.
    pub runs: Vec<Run>,
    /// The kept recording.
    pub recording: Recording,
}

impl Reproduced {
    /// The kept run.
    pub fn last(&self) -> Run {
        *self
            .runs
            .last()
            .expect("a reproduction has at least one run")
    }
}

/// `"5 exited 0, 2 killed by SIGABRT"`, most frequent first.
pub fn tally(runs: &[Run]) -> String {
    let mut counts: Vec<(Outcome, usize)> = Vec::new();
    for r in runs {
        match counts.iter_mut().find(|(o, _)| *o == r.outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.outcome, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
        .iter()
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// When every run ended one other way that a goal would have kept, says so: "every run
/// crashed: `--until crash` would have kept the first (seed 1)".
fn other_goal(goal: Goal, runs: &[Run]) -> String {
    let every = |m: fn(Outcome) -> bool| !runs.is_empty() && runs.iter().all(|r| m(r.outcome));
    let first = runs.first().map_or(0, |r| r.seed);
    let (what, other) = if goal != Goal::Crash && every(|o| o.matches(Goal::Crash)) {
        ("crashed", Goal::Crash)
    } else if goal != Goal::Hang && every(|o| o.matches(Goal::Hang)) {
        ("hung", Goal::Hang)
    } else if goal != Goal::ExitNonzero && every(|o| o.matches(Goal::ExitNonzero)) {
        ("exited non-zero", Goal::ExitNonzero)
    } else {
        return String::new();
    };
    let flag = match other {
        Goal::Crash => "crash",
        Goal::Hang => "hang",
        Goal::ExitNonzero => "exit-nonzero",
    };
    format!("; every run {what}: `--until {flag}` would have kept the first (seed {first})")
}

/// Why `record_until` gave up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UntilError {
    /// Every run ended some other way; their traces were deleted.
    #[error(
        "no {goal} in {} runs (seeds {}-{}): {}{}",
        runs.len(),
        runs.first().map_or(0, |r| r.seed),
        runs.last().map_or(0, |r| r.seed),
        tally(runs),
        other_goal(*goal, runs)
    )]
    NotReproduced {
        /// What was looked for.
        goal: Goal,
        /// The runs made.
        runs: Vec<Run>,
    },
    /// A run ended before any interrupt reached it or two tasks could have switched, so
    /// every seed would end it the same way (a missing disk image, a bad argument, a
    /// program with one task and no ticks): no point in more runs.
    #[error(
        "run {} (seed {}) {} before any interrupt reached it or another task could run: \
         the program ended before its racy part, or has none that chaos can move (one task \
         and no execution-point ABI), so no other seed can change that (its output says \
         why){}",
        runs.last().map_or(0, |r| r.run),
        runs.last().map_or(0, |r| r.seed),
        runs.last().map_or(String::new(), |r| r.outcome.to_string()),
        if runs.len() > 1 { format!("; runs so far: {}", tally(runs)) } else { String::new() }
    )]
    SeedIndependent {
        /// The runs made, the last being the seed-independent one.
        runs: Vec<Run>,
    },
    /// `max_runs` was 0.
    #[error("--max-runs must be at least 1")]
    NoRuns,
    /// A run could not be recorded (its trace, if any, is kept for inspection).
    #[error("run {run} (seed {seed}) failed after {} earlier run(s) ({}): {source}",
        earlier.len(), if earlier.is_empty() { "none".to_string() } else { tally(earlier) })]
    Record {
        /// 1-based run number.
        run: u32,
        /// Its seed.
        seed: u64,
        /// The runs before it.
        earlier: Vec<Run>,
        /// The recorder's error, boxed: it is large and this is the rare path, so the
        /// `Result` of every run stays small.
        source: Box<crate::Error>,
    },
    /// A discarded run's trace could not be deleted.
    #[error("deleting the trace of run {run} in {}: {source}", dir.display())]
    Discard {
        /// 1-based run number.
        run: u32,
        /// Its trace directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The output descriptor could not be duplicated for a run.
    #[error("run {run}: duplicating the program's stdout: {source}")]
    Stdout {
        /// 1-based run number.
        run: u32,
        /// The error.
        source: std::io::Error,
    },
}

/// Records `base` with seeds `first_seed`, `first_seed + 1`, … until a run ends as
/// `until.goal` asks, calling `progress` after each run. With `base.out_dir` set, every
/// run records into that directory (deleted between runs), so the kept trace ends up
/// there; otherwise each run takes a fresh default directory and `latest` points at the
/// kept one.
pub fn record_until(
    base: &RecordOptions,
    until: UntilOptions,
    mut progress: impl FnMut(&Run, &Recording),
) -> std::result::Result<Reproduced, UntilError> {
    if until.max_runs == 0 {
        return Err(UntilError::NoRuns);
    }
    let mut runs = Vec::new();
    for k in 1..=until.max_runs {
        let seed = until.first_seed.wrapping_add(u64::from(k - 1));
        let opts = base
            .with_seed(seed, base.out_dir.clone())
            .map_err(|source| UntilError::Stdout { run: k, source })?;
        let recording = record(&opts).map_err(|source| UntilError::Record {
            run: k,
            seed,
            earlier: runs.clone(),
            source: Box::new(source),
        })?;
        let outcome = match Outcome::of(&recording) {
            Outcome::Crashed(s) if guest_hang(&recording.dir).is_some() => Outcome::GuestHang(s),
            o => o,
        };
        let run = Run {
            run: k,
            seed,
            outcome,
        };
        runs.push(run);
        progress(&run, &recording);
        if run.outcome.matches(until.goal) {
            return Ok(Reproduced { runs, recording });
        }
        std::fs::remove_dir_all(&recording.dir).map_err(|source| UntilError::Discard {
            run: k,
            dir: recording.dir.clone(),
            source,
        })?;
        if recording.signals == 0 && recording.schedule_choices == 0 {
            forget_latest(base);
            return Err(UntilError::SeedIndependent { runs });
        }
    }
    forget_latest(base);
    Err(UntilError::NotReproduced {
        goal: until.goal,
        runs,
    })
}

/// `latest` points at a deleted run after a failed search; drop it rather than leave it
/// dangling.
fn forget_latest(base: &RecordOptions) {
    if base.out_dir.is_none() {
        let _ = std::fs::remove_file(tracedir::default_root().join("latest"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, outcome: Outcome) -> Run {
        Run {
            run: u32::try_from(seed).unwrap(),
            seed,
            outcome,
        }
    }

    #[test]
    fn outcomes_match_goals() {
        assert!(Outcome::Crashed(6).matches(Goal::Crash));
        assert!(!Outcome::Hung.matches(Goal::Crash));
        assert!(Outcome::Hung.matches(Goal::Hang));
        assert!(Outcome::Exited(1).matches(Goal::ExitNonzero));
        assert!(!Outcome::Exited(0).matches(Goal::ExitNonzero));
        assert!(!Outcome::Crashed(6).matches(Goal::ExitNonzero));
        assert_eq!("exit-nonzero".parse::<Goal>(), Ok(Goal::ExitNonzero));
        assert!("segv".parse::<Goal>().is_err());
        assert!(Outcome::GuestHang(6).matches(Goal::Hang));
        assert!(Outcome::GuestHang(6).matches(Goal::Crash));
        assert!(!Outcome::Crashed(6).matches(Goal::Hang));
    }

    #[test]
    fn a_search_that_only_found_another_ending_says_which_goal_keeps_it() {
        let runs = vec![run(1, Outcome::Crashed(11)), run(2, Outcome::Crashed(6))];
        let e = UntilError::NotReproduced {
            goal: Goal::Hang,
            runs,
        };
        assert_eq!(
            e.to_string(),
            "no hang in 2 runs (seeds 1-2): 1 killed by SIGABRT, 1 killed by SIGSEGV; every run \
             crashed: `--until crash` would have kept the first (seed 1)"
        );
    }

    #[test]
    fn not_reproduced_message_accounts_for_every_run() {
        let runs = vec![
            run(1, Outcome::Exited(0)),
            run(2, Outcome::Hung),
            run(3, Outcome::Exited(0)),
        ];
        let e = UntilError::NotReproduced {
            goal: Goal::Crash,
            runs,
        };
        assert_eq!(
            e.to_string(),
            "no crash in 3 runs (seeds 1-3): 2 exited 0, 1 hung (stopped at the timeout)"
        );
    }
}
