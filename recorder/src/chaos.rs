//! Chaos recording (`--chaos SEED`): the recorder chooses where asynchronous signals land,
//! so it can choose badly on purpose. A seeded generator (splitmix64: tiny, no dependency,
//! and the same sequence on every host) decides
//!
//! * how many extra preemption points a held signal waits before delivery
//!   (`1 + 0..=max_delay` instead of always the next one), and
//! * where to add timer interrupts the host never sent: a synthetic SIGALRM at a tick
//!   `1..2*mean_gap` ahead whenever nothing else is armed. umk treats every SIGALRM as a
//!   timer interrupt, so each adds a tick and possibly a preemption;
//! * where the tasks of a program with several (threads, processes) switch: at a syscall
//!   exit where another task can run, the running one is parked there with odds of one
//!   in [`SWITCH_ODDS`] instead of only once its time slice is over. A syscall exit is an
//!   exact place (the end of an event), so this moves a race's window without guessing.
//!
//! Every placement is an ordinary `Placement::Tick` signal event and every switch an
//! ordinary `Event::Switch`, so a chaos recording replays exactly like any other; the
//! seed is kept in the trace's `chaos` file only to say how it was made. The placement
//! also depends on host timing (when real signals arrive, when a blocked task wakes), so
//! one seed does not always give the same run — `--until` tries several. Interrupts need
//! the execution-point ABI (a tick to aim at); without it only the schedule moves.

use trace::ChaosInfo;

/// Default upper bound of the extra delay of a held signal, in ticks.
pub const DEFAULT_MAX_DELAY: u64 = 64;
/// Default mean distance between synthetic timer interrupts, in ticks.
pub const DEFAULT_MEAN_GAP: u64 = 2000;
/// At a syscall exit where another task can run, the running one switches away with
/// odds of one in this many.
pub const SWITCH_ODDS: u64 = 4;

/// What `--chaos` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosOptions {
    /// Generator seed.
    pub seed: u64,
    /// A held signal is delivered 1..=1+max_delay ticks after its delivery stop.
    pub max_delay: u64,
    /// Synthetic SIGALRMs come every 1..2*mean_gap ticks (0: none).
    pub mean_gap: u64,
}

impl ChaosOptions {
    /// The defaults with `seed`.
    pub fn new(seed: u64) -> Self {
        ChaosOptions {
            seed,
            max_delay: DEFAULT_MAX_DELAY,
            mean_gap: DEFAULT_MEAN_GAP,
        }
    }

    /// What the trace's `chaos` file records.
    pub fn info(&self) -> ChaosInfo {
        ChaosInfo {
            seed: self.seed,
            max_delay: self.max_delay,
            mean_gap: self.mean_gap,
        }
    }
}

/// splitmix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub(crate) struct Chaos {
    state: u64,
    opts: ChaosOptions,
}

impl Chaos {
    pub fn new(opts: ChaosOptions) -> Self {
        Chaos {
            state: opts.seed,
            opts,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant at these ranges.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Ticks from now at which to deliver a held signal: at least 1.
    pub fn delay(&mut self) -> u64 {
        1 + self.below(self.opts.max_delay + 1)
    }

    /// Whether the running task switches away at this syscall exit.
    pub fn switch(&mut self) -> bool {
        self.below(SWITCH_ODDS) == 0
    }

    /// Ticks from now to the next synthetic interrupt, or `None` when disabled.
    pub fn gap(&mut self) -> Option<u64> {
        let m = self.opts.mean_gap;
        (m > 0).then(|| 1 + self.below(2 * m - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_choices_and_ranges_hold() {
        let mut a = Chaos::new(ChaosOptions::new(7));
        let mut b = Chaos::new(ChaosOptions::new(7));
        let mut c = Chaos::new(ChaosOptions::new(8));
        let xs: Vec<u64> = (0..100).map(|_| a.delay()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.delay()).collect();
        let zs: Vec<u64> = (0..100).map(|_| c.delay()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.iter().all(|&d| (1..=1 + DEFAULT_MAX_DELAY).contains(&d)));
        for _ in 0..1000 {
            let g = a.gap().unwrap();
            assert!((1..2 * DEFAULT_MEAN_GAP).contains(&g));
        }
        let mut off = Chaos::new(ChaosOptions {
            mean_gap: 0,
            ..ChaosOptions::new(1)
        });
        assert_eq!(off.gap(), None);
        let switches = (0..4000).filter(|_| a.switch()).count();
        assert!((700..1300).contains(&switches), "{switches} of 4000");
    }
}
