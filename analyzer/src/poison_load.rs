//! Finds the load that produced a poisoned pointer by running the replay backwards from
//! the fault.
//!
//! A general protection fault on slab poison gives no fault address: the object is named
//! by the load that read the poisoned pointer out of it. Searching the faulting function's
//! code for that load (`kasan::find_load`) needs the load's address registers to be
//! unchanged until the fault, which optimized code rarely guarantees (umk's release
//! `checksum_request_data` reuses `rdi` as the loop index right after loading the buffer
//! pointer through it). A replay has the exact registers at every instruction, so instead
//! we step back from the fault until the register no longer holds the poison: the
//! instruction there wrote it, and its memory operand evaluated with the registers at that
//! instruction is exactly the address it read.
//!
//! Unoptimized code copies the pointer through stack slots (register ← slot ← register ←
//! object) and un-inlined accessors; the search follows such copies, register moves and
//! small pointer arithmetic, until it reaches a load whose address is not a stack slot.

use replayer::{StopReason, Timeline};

use crate::disasm::{disassemble, Insn, MemOperand};
use crate::events::{Event, EventKind, Regs};
use crate::kasan::{is_poison, poisoned_register, FoundLoad};

/// Most instructions the search runs back from the fault. Each step back re-executes from
/// the previous mark, so the bound keeps a search that cannot succeed (the pointer came
/// from somewhere it does not follow) from costing minutes; the chains it follows span a
/// handful of instructions in release builds and a few dozen in debug ones.
pub const MAX_STEPS_BACK: u32 = 2000;

/// Steps back from the signal handler's entry to the faulting instruction: the signal's
/// delivery is one step, but allow for a few more in case the replay places it later.
const MAX_STEPS_TO_FAULT: u32 = 16;

/// Where the poisoned value is, going backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Loc {
    Reg(String),
    /// An 8-byte stack slot.
    Mem(u64),
}

/// For the crash among `events` (a general protection fault on a poisoned pointer),
/// positions `tl` at the faulting instruction — by running to `fault_handler` from the
/// crash's mark and stepping back — and runs back to the load; see the module
/// documentation. Removes every breakpoint and watchpoint of `tl`.
///
/// `None` when there is no such crash or the load was not found; a replay error also
/// gives `None`, since the static search and the report's inference still explain the
/// crash without it.
pub fn find_after_collection(
    tl: &mut Timeline,
    fault_handler: Option<u64>,
    events: &[Event],
) -> Option<FoundLoad> {
    let (pos, crash) = events.iter().find_map(|e| match &e.kind {
        EventKind::Crash(c) => Some((e.pos, c)),
        _ => None,
    })?;
    let (reg, value) = poisoned_register(crash)?;
    let handler = fault_handler?;
    let at_fault = (|| -> replayer::Result<bool> {
        for b in tl.breakpoints() {
            tl.remove_breakpoint(b);
        }
        tl.seek(&pos)?;
        // The crash's mark can be the handler's entry itself, where no breakpoint fires.
        if tl.regs()?.rip != handler {
            tl.set_breakpoint(handler);
            let stop = tl.run_forward();
            tl.remove_breakpoint(handler);
            if stop? != StopReason::Breakpoint(handler) {
                return Ok(false);
            }
        }
        for _ in 0..MAX_STEPS_TO_FAULT {
            if tl.step_back()? != StopReason::Done {
                return Ok(false);
            }
            // eflags as the kernel saved them in the ucontext can differ from ptrace's
            // (the resume flag), so they decide nothing.
            let mut here = Regs::from(&tl.regs()?);
            here.eflags = crash.regs.eflags;
            if here == crash.regs {
                return Ok(true);
            }
        }
        Ok(false)
    })();
    if !at_fault.ok()? {
        return None;
    }
    find_load(tl, &reg, value).ok().flatten()
}

/// From `tl` at the faulting instruction, where `reg` holds the poisoned `value`, runs
/// back to the load that read it from memory (through the copies the module documentation
/// lists), at most [`MAX_STEPS_BACK`] instructions.
pub fn find_load(tl: &mut Timeline, reg: &str, value: u64) -> replayer::Result<Option<FoundLoad>> {
    let mut loc = Loc::Reg(reg.to_string());
    let mut value = value;
    let mut via = Vec::new();
    for _ in 0..MAX_STEPS_BACK {
        if tl.step_back()? != StopReason::Done {
            return Ok(None);
        }
        let regs = Regs::from(&tl.regs()?);
        let holds = match &loc {
            Loc::Reg(r) => regs.get(r) == Some(value),
            Loc::Mem(a) => read_u64(tl, *a)? == Some(value),
        };
        if holds {
            continue;
        }
        // The instruction about to execute here is the one that wrote `loc`.
        let Some(insn) = insn_at(tl, regs.rip)? else {
            return Ok(None);
        };
        let pos = tl.position()?;
        let Some(step) = writer(&insn, &loc, &regs, value) else {
            return Ok(None);
        };
        match step {
            Step::Load(m) => {
                let Some(addr) = address(&m, &insn, &regs) else {
                    return Ok(None);
                };
                if is_stack_slot(&m) {
                    via.push((pos, insn));
                    loc = Loc::Mem(addr);
                    continue;
                }
                via.reverse();
                return Ok(Some(FoundLoad {
                    reg: reg.to_string(),
                    insn,
                    addr,
                    size: m.size,
                    pos,
                    via,
                }));
            }
            Step::From(r) => {
                let Some(v) = regs.get(&r) else {
                    return Ok(None);
                };
                via.push((pos, insn));
                loc = Loc::Reg(r);
                value = v;
            }
        }
    }
    Ok(None)
}

/// What the instruction that wrote the tracked location did.
enum Step {
    /// Loaded it from memory through this operand.
    Load(MemOperand),
    /// Copied it (or derived it, with a small offset) from this register, whose value
    /// before the instruction is still poison.
    From(String),
}

fn writer(insn: &Insn, loc: &Loc, regs: &Regs, value: u64) -> Option<Step> {
    let mut ops = insn.operands.split(", ").map(str::trim);
    let dst = ops.next()?;
    let src = ops.next();
    let poisoned = |r: &str| regs.get(r).is_some_and(is_poison);
    let m = insn.mem.first();
    match loc {
        Loc::Mem(slot) => {
            // A store of a register into the slot.
            let src = src?;
            let into_slot = m.and_then(|m| address(m, insn, regs)) == Some(*slot);
            (insn.mnemonic == "mov"
                && dst.contains('[')
                && into_slot
                && regs.get(src) == Some(value))
            .then(|| Step::From(src.to_string()))
        }
        Loc::Reg(_) => match insn.mnemonic.as_str() {
            "mov" => match (m, src) {
                (Some(m), Some(s)) if s.contains('[') => Some(Step::Load(m.clone())),
                (None, Some(s)) if poisoned(s) => Some(Step::From(s.to_string())),
                _ => None,
            },
            // Pointer arithmetic (`buf.add(i)`) keeps the poison's high bytes.
            "add" | "sub" if poisoned(dst) => Some(Step::From(dst.to_string())),
            "lea" => {
                let b = m?.base.as_deref()?;
                poisoned(b).then(|| Step::From(b.to_string()))
            }
            _ => None,
        },
    }
}

/// Stack slots are addressed off the stack or frame pointer; umk keeps frame pointers,
/// so `rbp` never addresses a heap object.
fn is_stack_slot(m: &MemOperand) -> bool {
    matches!(m.base.as_deref(), Some("rsp" | "rbp"))
}

fn address(m: &MemOperand, insn: &Insn, regs: &Regs) -> Option<u64> {
    // rip-relative operands count from the next instruction.
    let next = insn.addr + insn.bytes.len() as u64;
    m.address(|r| if r == "rip" { Some(next) } else { regs.get(r) })
}

fn insn_at(tl: &Timeline, rip: u64) -> replayer::Result<Option<Insn>> {
    let bytes = tl.read_memory(rip, 16)?;
    Ok(disassemble(&bytes, rip, 1)
        .ok()
        .and_then(|v| v.into_iter().next()))
}

fn read_u64(tl: &Timeline, addr: u64) -> replayer::Result<Option<u64>> {
    let b = tl.read_memory(addr, 8)?;
    Ok(b.try_into().ok().map(u64::from_le_bytes))
}
