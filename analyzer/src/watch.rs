//! The second, targeted pass of a use-after-free analysis: hardware watchpoints on the
//! freed object from its free to the crash, and the instruction behind each access.

use std::path::Path;

use guest::Binary;
use replayer::{Position, StopReason, Timeline, WatchKind};

use crate::collect::{Reader, FAULT_HANDLER};
use crate::disasm::disassemble;
use crate::error::{Error, Result};
use crate::events::Regs;
use crate::kasan::{Access, ObjRecord};

/// Most debug-register slots the CPU has; each covers at most 8 aligned bytes.
pub const WATCH_SLOTS: usize = 4;

/// The 8-byte words of `obj` to watch: the faulting word first, then its neighbours
/// alternately after and before, all inside the object — four slots cover 32 bytes.
pub fn watched_words(obj: &ObjRecord, fault: u64) -> Vec<u64> {
    let start = obj.ptr & !7;
    let end = obj.ptr + obj.size.max(1);
    let first = if obj.contains(fault) {
        fault & !7
    } else {
        start
    };
    let mut out = vec![first];
    let mut k = 1u64;
    while out.len() < WATCH_SLOTS && (first + 8 * k < end || first >= start + 8 * k) {
        if first + 8 * k < end {
            out.push(first + 8 * k);
        }
        if out.len() < WATCH_SLOTS && first >= start + 8 * k {
            out.push(first - 8 * k);
        }
        k += 1;
    }
    out
}

/// Replays from the free of the object at `ptr` (found from `from`, the mark before it)
/// to the crash at `to`, with read/write watchpoints on `words`, and returns every access
/// to them: position, task, stack (the accessing instruction first) and the accessed
/// address. x86 reports data breakpoints after the access; the instruction is found by
/// decoding the function up to the reported rip. The run ends at the kernel's fault
/// handler (the crash) or past `to`.
pub fn watch_object(
    tl: &mut Timeline,
    bin: &Binary,
    trace_dir: &Path,
    words: &[u64],
    from: &Position,
    ptr: u64,
    to: &Position,
) -> Result<Vec<Access>> {
    let err = |op: &'static str| {
        move |e: replayer::Error| Error::Replay {
            op,
            trace: trace_dir.to_path_buf(),
            source: Box::new(e),
        }
    };
    for b in tl.breakpoints() {
        tl.remove_breakpoint(b);
    }
    tl.seek(from).map_err(err("seeking to the free in"))?;
    // The mark may lie before the free: run to the probe that frees this very object, so
    // the poisoning itself is not reported as an access.
    let free = bin.require("umk_free")?;
    tl.set_breakpoint(free);
    loop {
        match tl.run_forward().map_err(err("running to the free in"))? {
            StopReason::Breakpoint(_) => {
                let g = tl.regs().map_err(err("reading registers in"))?;
                if g.rsi == ptr {
                    break;
                }
            }
            _ => return Ok(Vec::new()),
        }
    }
    tl.remove_breakpoint(free);
    let fault_handler = bin.address(FAULT_HANDLER);
    if let Some(f) = fault_handler {
        tl.set_breakpoint(f);
    }
    for &w in words.iter().take(WATCH_SLOTS) {
        tl.set_watchpoint(w, 8, WatchKind::ReadWrite)
            .map_err(err("setting a watchpoint in"))?;
    }
    let mut out = Vec::new();
    while let StopReason::Watchpoint(_) = tl
        .run_forward()
        .map_err(err("watching the freed object in"))?
    {
        let pos = tl.mark_here();
        if pos > *to {
            break;
        }
        let g = tl.regs().map_err(err("reading registers in"))?;
        let rd = Reader::new(&mut *tl, trace_dir, bin)?;
        let task = rd.current()?;
        let (insn_addr, addr, size, write) = accessing_insn(bin, &Regs::from(&g), words);
        let mut stack = vec![insn_addr];
        rd.rbp_chain(g.rbp, &mut stack);
        out.push(Access {
            pos,
            task,
            stack,
            addr,
            size,
            write,
        });
        // A reused object can be hammered; the first accesses tell the story.
        if out.len() >= 256 {
            break;
        }
    }
    for &w in words {
        tl.remove_watchpoint(w);
    }
    if let Some(f) = fault_handler {
        tl.remove_breakpoint(f);
    }
    Ok(out)
}

/// The instruction that just accessed a watched word (the one ending at rip, found by
/// decoding the containing function), its address operand evaluated with the registers
/// after it, and whether it wrote. Falls back to the first watched word when the
/// instruction cannot be found or its base register was overwritten by the access itself.
fn accessing_insn(bin: &Binary, regs: &Regs, words: &[u64]) -> (u64, u64, u8, bool) {
    let fallback = (regs.rip, words.first().copied().unwrap_or(0), 8, false);
    let Some((start, bytes)) = bin.function_code(regs.rip.saturating_sub(1)) else {
        return fallback;
    };
    let Ok(insns) = disassemble(bytes, start, usize::MAX / 2) else {
        return fallback;
    };
    let Some(insn) = insns
        .iter()
        .find(|i| i.addr + i.bytes.len() as u64 == regs.rip)
    else {
        return fallback;
    };
    let write = insn
        .operands
        .split(", ")
        .next()
        .is_some_and(|d| d.contains('['))
        && !matches!(insn.mnemonic.as_str(), "cmp" | "test" | "push");
    let Some(m) = insn.mem.iter().find(|m| m.base.as_deref() != Some("rip")) else {
        return (insn.addr, fallback.1, 8, write);
    };
    let addr = m
        .address(|r| regs.get(r))
        .filter(|a| words.iter().any(|w| a & !7 == *w))
        .unwrap_or(fallback.1);
    (insn.addr, addr, m.size, write)
}
