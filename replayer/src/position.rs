//! Replay positions: printable, storable values that name one instruction-exact point of
//! a replay, and their text syntax.
//!
//! ```text
//! eN          the event boundary before event N: events 0..N have been applied (after a
//!             syscall event, the tracee is at that call's return; after a signal event,
//!             at the handler's first instruction); `e0` is the exec stop
//! eN+tK       in the interval before event N, at the guest's preemption point where
//!             REWIND_TICKS became K (absolute value, as `rewind dump` shows ticks); only
//!             for guests with the execution-point ABI
//! …+sJ        J single instructions further on from the point before
//! ```
//!
//! Canonical positions (those the timeline reports) never step across an event or a
//! preemption point: the steps count from the latest boundary or tick mark. Positions
//! order by (event, ticks, steps).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A point in a replay; see the module documentation for the syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The event boundary `eN` the point lies after (events before N applied).
    pub event: u64,
    /// A preemption point in that interval: the value REWIND_TICKS reached.
    pub ticks: Option<u64>,
    /// Single steps from the boundary or tick mark.
    pub steps: u64,
}

impl Position {
    /// The boundary before event `n`.
    pub const fn event(n: u64) -> Position {
        Position {
            event: n,
            ticks: None,
            steps: 0,
        }
    }

    /// The start of the recording (the exec stop).
    pub const START: Position = Position::event(0);

    /// The mark this position steps from (itself without steps).
    pub fn mark(&self) -> Position {
        Position { steps: 0, ..*self }
    }

    /// The same mark, `steps` instructions on.
    pub fn with_steps(&self, steps: u64) -> Position {
        Position { steps, ..*self }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.event)?;
        if let Some(t) = self.ticks {
            write!(f, "+t{t}")?;
        }
        if self.steps > 0 {
            write!(f, "+s{}", self.steps)?;
        }
        Ok(())
    }
}

impl FromStr for Position {
    type Err = Error;

    fn from_str(text: &str) -> Result<Position, Error> {
        let bad = |why: &str| Error::BadPosition {
            text: text.to_string(),
            why: why.to_string(),
        };
        let mut parts = text.trim().split('+');
        let first = parts.next().unwrap_or("");
        let event = first
            .strip_prefix('e')
            .ok_or_else(|| bad("must start with eN"))?
            .parse::<u64>()
            .map_err(|_| bad("event index is not a number"))?;
        let mut pos = Position::event(event);
        let mut seen_steps = false;
        for part in parts {
            let num = |s: &str| s.parse::<u64>().map_err(|_| bad("not a number after t/s"));
            if let Some(t) = part.strip_prefix('t') {
                if pos.ticks.is_some() || seen_steps {
                    return Err(bad("+tK must come once, before +sJ"));
                }
                pos.ticks = Some(num(t)?);
            } else if let Some(s) = part.strip_prefix('s') {
                if seen_steps {
                    return Err(bad("+sJ given twice"));
                }
                seen_steps = true;
                pos.steps = num(s)?;
            } else {
                return Err(bad("expected +tK or +sJ"));
            }
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in ["e0", "e1234", "e1234+t567", "e1234+t567+s12", "e7+s3"] {
            let p: Position = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(p.to_string().parse::<Position>().unwrap(), p);
        }
        let p: Position = "e5+t9+s2".parse().unwrap();
        assert_eq!(
            p,
            Position {
                event: 5,
                ticks: Some(9),
                steps: 2
            }
        );
        // `+s0` is accepted and printed canonically.
        assert_eq!("e3+s0".parse::<Position>().unwrap().to_string(), "e3");
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "", "1234", "e", "ex", "e1+x3", "e1+s2+t3", "e1+t2+t3", "e1+s", "e-1",
        ] {
            let e = text.parse::<Position>().unwrap_err().to_string();
            assert!(e.contains("bad position"), "{text}: {e}");
        }
    }

    #[test]
    fn orders_marks_before_their_steps() {
        let a: Position = "e10".parse().unwrap();
        let b: Position = "e10+s5".parse().unwrap();
        let c: Position = "e10+t3".parse().unwrap();
        let d: Position = "e11".parse().unwrap();
        assert!(a < b && b < c && c < d);
    }
}
