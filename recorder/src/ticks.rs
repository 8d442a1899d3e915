//! The execution-point ABI, recorder side. A guest that exports
//!
//! ```text
//! REWIND_TICKS:       u64   incremented at every preemption point
//! REWIND_TICK_TARGET: u64   when REWIND_TICKS == REWIND_TICK_TARGET the guest runs `int3`
//! ```
//!
//! (plain `#[no_mangle] static mut` u64s; natively the target is `u64::MAX`) lets the
//! recorder deliver an asynchronous signal at an exact, replayable point: at the signal's
//! delivery stop it reads `REWIND_TICKS`, writes `ticks + 1` to the target and suppresses
//! the signal; at the `int3`'s SIGTRAP it logs `Placement::Tick { ticks }`, resets the
//! target to `u64::MAX` and delivers the held signal instead of the SIGTRAP, so the handler
//! runs right there. Replay writes each logged tick as the target and does the same.
//! Any other guest kernel can adopt the ABI by exporting the two symbols.

use std::path::Path;

use object::{Object, ObjectSymbol};

use crate::error::{Error, Result};

/// Symbol name of the tick counter.
pub const TICKS_SYMBOL: &str = "REWIND_TICKS";
/// Symbol name of the trap target.
pub const TARGET_SYMBOL: &str = "REWIND_TICK_TARGET";
/// The target value that never traps.
pub const NEVER: u64 = u64::MAX;

/// Link-time addresses of the two symbols, and whether the binary is position-independent
/// (then the load bias must be added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickSymbols {
    /// `REWIND_TICKS` as linked.
    pub ticks: u64,
    /// `REWIND_TICK_TARGET` as linked.
    pub target: u64,
    /// ET_DYN: addresses are relative to the load base.
    pub relocatable: bool,
}

/// Looks the symbols up in the ELF at `path`; `None` when the binary does not export both.
pub fn find(path: &Path, data: &[u8]) -> Result<Option<TickSymbols>> {
    let file = match object::File::parse(data) {
        Ok(f) => f,
        Err(e) => {
            return Err(Error::Io {
                op: "parse ELF",
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            })
        }
    };
    let mut ticks = None;
    let mut target = None;
    for sym in file.symbols() {
        match sym.name() {
            Ok(TICKS_SYMBOL) => ticks = Some(sym.address()),
            Ok(TARGET_SYMBOL) => target = Some(sym.address()),
            _ => {}
        }
    }
    let relocatable = file.kind() == object::ObjectKind::Dynamic;
    Ok(match (ticks, target) {
        (Some(ticks), Some(target)) => Some(TickSymbols {
            ticks,
            target,
            relocatable,
        }),
        _ => None,
    })
}

/// The GNU build-id of the ELF, if it has one.
pub fn build_id(data: &[u8]) -> Option<Vec<u8>> {
    let file = object::File::parse(data).ok()?;
    file.build_id().ok().flatten().map(<[u8]>::to_vec)
}
