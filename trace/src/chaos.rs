//! The `chaos` file of a trace recorded with `--chaos`: the seed and parameters that chose
//! where the recorder placed interrupts. It is informational (replay needs only the
//! events, which record every placement), so it lives beside the header rather than in
//! it: old readers ignore the file, and the bincode header keeps its layout.
//!
//! Format: `key=value` lines in ASCII, e.g. `seed=7`, `max_delay=64`, `mean_gap=2000`.

use std::fs;
use std::path::Path;

use crate::error::{io, Error, Result};

/// File name inside the trace directory.
pub const CHAOS_FILE: &str = "chaos";

/// `si_code` of the SIGALRMs the recorder adds under chaos: `SI_USER` with `si_pid` 0, a
/// sender that cannot exist (a kill(2) always carries a real pid), so the trace tells
/// them apart from the host timer's `SI_KERNEL` ones.
pub const SYNTHETIC_SI_CODE: i32 = 0;

/// How a recording was perturbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosInfo {
    /// The seed of the placement generator.
    pub seed: u64,
    /// A held signal was delivered 1..=1+max_delay ticks after it arrived.
    pub max_delay: u64,
    /// Extra timer interrupts came every 1..2*mean_gap ticks.
    pub mean_gap: u64,
}

impl ChaosInfo {
    /// Writes `dir/chaos`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CHAOS_FILE);
        let text = format!(
            "seed={}\nmax_delay={}\nmean_gap={}\n",
            self.seed, self.max_delay, self.mean_gap
        );
        fs::write(&path, text).map_err(io("write", &path))
    }

    /// Reads `dir/chaos`; `None` when the trace was recorded without chaos.
    pub fn read(dir: &Path) -> Result<Option<ChaosInfo>> {
        let path = dir.join(CHAOS_FILE);
        // Three short lines; a larger file is not one the recorder wrote.
        const MAX_CHAOS_BYTES: u64 = 4096;
        match fs::metadata(&path) {
            Ok(m) if m.len() > MAX_CHAOS_BYTES => {
                return Err(Error::Corrupt {
                    path,
                    offset: 0,
                    what: format!(
                        "chaos file is {} bytes, more than the {MAX_CHAOS_BYTES}-byte limit",
                        m.len()
                    ),
                })
            }
            _ => {}
        }
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let mut info = ChaosInfo {
            seed: 0,
            max_delay: 0,
            mean_gap: 0,
        };
        let mut seen_seed = false;
        let mut offset = 0u64;
        for line in text.split(|&b| b == b'\n') {
            let here = offset;
            offset += line.len() as u64 + 1;
            if line.is_empty() {
                continue;
            }
            let corrupt = |what: String| Error::Corrupt {
                path: path.clone(),
                offset: here,
                what,
            };
            let line =
                std::str::from_utf8(line).map_err(|_| corrupt("chaos line is not UTF-8".into()))?;
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| corrupt(format!("chaos line {line:?} is not key=value")))?;
            let value: u64 = value
                .parse()
                .map_err(|_| corrupt(format!("chaos value {value:?} is not a number")))?;
            match key {
                "seed" => {
                    info.seed = value;
                    seen_seed = true;
                }
                "max_delay" => info.max_delay = value,
                "mean_gap" => info.mean_gap = value,
                // Newer recorders may add parameters; they do not affect replay.
                _ => {}
            }
        }
        if !seen_seed {
            return Err(Error::Corrupt {
                path,
                offset: 0,
                what: "chaos file has no seed".into(),
            });
        }
        Ok(Some(info))
    }
}

/// Whether a recorded signal's siginfo marks it as one the recorder added under chaos.
pub fn is_synthetic(siginfo: &[u8]) -> bool {
    let word = |o: usize| {
        siginfo
            .get(o..o + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    word(8) == Some(SYNTHETIC_SI_CODE) && word(16) == Some(0)
}
