//! The execution-point ABI as a binary exports it. A guest that exports
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
//! Any guest kernel can adopt the ABI by exporting the two symbols.

use object::{Object, ObjectSymbol};

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

/// Looks the symbols up in the ELF `data`: `Ok(None)` when it does not export both, an
/// error (the parser's reason) when it is not an ELF file at all.
pub fn find(data: &[u8]) -> Result<Option<TickSymbols>, String> {
    let file = object::File::parse(data).map_err(|e| e.to_string())?;
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
