//! The checkpoint store: stopped forks of the tracee (rr's method) kept beside the engine
//! [`Snapshot`] taken with each, found by position; the one scratch copy a forward run
//! leaves where it began; restoring a copy into the engine; and the thinning that keeps at
//! most a given number spread over the whole recording. When the timeline takes one is
//! the timeline's policy (see `timeline`); what one is and how it comes back is here.

use std::collections::BTreeMap;

use tracee::Stopped;

use crate::error::{Error, Result};
use crate::position::Position;
use crate::session::{Engine, Snapshot};

/// A stopped copy of the tracee and the engine state that goes with it.
struct Saved {
    proc: Stopped,
    snap: Snapshot,
}

impl Saved {
    /// Forks the engine's live tracee, which must be at a known position.
    fn of(engine: &mut Engine) -> Result<Saved> {
        let snap = engine.snapshot().ok_or_else(|| {
            Error::Invalid("no checkpoint where the position is unknown or inside a call".into())
        })?;
        let proc = engine.fork_live()?;
        Ok(Saved { proc, snap })
    }
}

/// The checkpoints and the scratch copy; all are killed when it is dropped.
pub(crate) struct Checkpoints {
    held: BTreeMap<Position, Saved>,
    /// A copy where the latest forward run from a known position began: what a position
    /// computation after a hit re-executes from.
    scratch: Option<Saved>,
    /// Most checkpoints kept.
    max: usize,
}

impl Checkpoints {
    pub(crate) fn new(max: usize) -> Checkpoints {
        Checkpoints {
            held: BTreeMap::new(),
            scratch: None,
            max,
        }
    }

    /// Positions of the checkpoints held, in order.
    pub(crate) fn positions(&self) -> Vec<Position> {
        self.held.keys().copied().collect()
    }

    /// Positions of the checkpoints before `here`, in order.
    pub(crate) fn before(&self, here: Position) -> Vec<Position> {
        self.held.range(..here).map(|(p, _)| *p).collect()
    }

    /// Whether a checkpoint is held at `pos`.
    pub(crate) fn contains(&self, pos: &Position) -> bool {
        self.held.contains_key(pos)
    }

    /// Whether a checkpoint is held anywhere in the interval before event `n`.
    pub(crate) fn any_before_event(&self, n: u64) -> bool {
        self.held.keys().any(|p| p.event == n)
    }

    /// Where the scratch copy is, if there is one.
    pub(crate) fn scratch_position(&self) -> Option<Position> {
        self.scratch.as_ref().map(|s| s.snap.position())
    }

    /// Forks a checkpoint of the engine where it is (a known position), then thins.
    pub(crate) fn take(&mut self, engine: &mut Engine) -> Result<Position> {
        let saved = Saved::of(engine)?;
        let pos = saved.snap.position();
        self.held.insert(pos, saved);
        self.thin();
        Ok(pos)
    }

    /// Forks the scratch copy where the engine is (a known position), replacing the last.
    pub(crate) fn take_scratch(&mut self, engine: &mut Engine) -> Result<()> {
        let saved = Saved::of(engine)?;
        if let Some(old) = self.scratch.replace(saved) {
            let _ = old.proc.kill();
        }
        Ok(())
    }

    fn thin(&mut self) {
        while self.held.len() > self.max {
            // Keep e0; drop every second one of the rest.
            let keys: Vec<Position> = self.held.keys().copied().skip(1).step_by(2).collect();
            for k in keys {
                if let Some(ck) = self.held.remove(&k) {
                    let _ = ck.proc.kill();
                }
            }
        }
    }

    /// The latest copy to restore for going to `target`: a checkpoint or the scratch copy
    /// at or before it.
    pub(crate) fn base_for(&self, target: &Position) -> Option<Position> {
        let ck = self.held.range(..=*target).next_back().map(|(p, _)| *p);
        ck.max(self.scratch_position().filter(|p| p <= target))
    }

    /// Restores the checkpoint at `at` (or the scratch copy there) into `engine`: its live
    /// tracee becomes a fresh copy, and the checkpoint stays for the next time.
    pub(crate) fn restore(&mut self, at: Position, engine: &mut Engine) -> Result<()> {
        let from_scratch = !self.held.contains_key(&at) && self.scratch_position() == Some(at);
        let saved = if from_scratch {
            self.scratch.take()
        } else {
            self.held.remove(&at)
        }
        .ok_or_else(|| Error::Invalid(format!("no checkpoint at {at}")))?;
        let (kept, fresh) = engine.t(saved.proc.fork_stopped())?;
        let kept = Saved {
            proc: kept,
            snap: saved.snap,
        };
        if from_scratch {
            self.scratch = Some(kept);
        } else {
            self.held.insert(at, kept);
        }
        engine.restore(&saved.snap, fresh);
        Ok(())
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        for (_, ck) in std::mem::take(&mut self.held) {
            let _ = ck.proc.kill();
        }
        if let Some(ck) = self.scratch.take() {
            let _ = ck.proc.kill();
        }
    }
}
