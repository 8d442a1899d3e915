//! The one frame-pointer walker. umk (and Linux with CONFIG_FRAME_POINTER) keeps rbp as a
//! chain of `[saved rbp, return address]` pairs; the walk stops where the chain leaves
//! the guest's code (a signal's host stack, a task's trampoline), at a null, misaligned or
//! non-increasing frame pointer, or after `max` frames — so a corrupt stack ends a
//! backtrace early instead of inventing frames.

use crate::binary::Binary;
use crate::memory::{self, Memory};

/// Return addresses up the chain from `rbp`, appended to `out` until it holds `max`.
pub fn walk(bin: &Binary, mem: &dyn Memory, mut rbp: u64, max: usize, out: &mut Vec<u64>) {
    while out.len() < max && rbp != 0 && rbp & 7 == 0 {
        // One read per frame: at an analyzer's probe stop every guest read is a host
        // system call, and stacks are read at every stop.
        let Ok(frame) = memory::bytes(mem, rbp, 16, "a stack frame") else {
            break;
        };
        let (next, ret) = (memory::le_u64(&frame, 0), memory::le_u64(&frame, 8));
        if ret == 0 || bin.symbol(ret - 1).is_none() {
            break;
        }
        out.push(ret);
        // Frames grow down, so callers sit above: anything else is not a frame.
        if next <= rbp {
            break;
        }
        rbp = next;
    }
}

/// A backtrace from a stop at `pc` with frame pointer `rbp`: `pc` first, then the return
/// addresses of its callers.
pub fn backtrace(bin: &Binary, mem: &dyn Memory, pc: u64, rbp: u64, max: usize) -> Vec<u64> {
    let mut out = vec![pc];
    walk(bin, mem, rbp, max, &mut out);
    out
}

/// The address to look up for a stack entry: return addresses point after the call, whose
/// line is the one a developer wants, so they are looked up one byte back.
pub fn lookup_addr(addr: u64, is_return: bool) -> u64 {
    if is_return {
        addr.saturating_sub(1)
    } else {
        addr
    }
}

/// A backtrace as gdb prints one, inlined frames expanded:
///
/// ```text
/// #0  0x0000000000401234 in umk::sync::mutex::lock+0x1f/0x80 at kernel/src/sync/mutex.rs:40
/// #1  0x0000000000405678 in umk::bugs::abba::worker (inlined) at kernel/src/bugs/abba.rs:22
/// ```
pub fn format_backtrace(bin: &Binary, stack: &[u64]) -> String {
    let mut out = String::new();
    for (i, &addr) in stack.iter().enumerate() {
        let lookup = lookup_addr(addr, i > 0);
        let frames = bin.frames(lookup);
        // A return address is named in its caller, as the kernel's %pB does: a call that
        // ends a function returns just past its last byte.
        let sym = bin
            .symbol(lookup)
            .map(|s| format!("{}+{:#x}/{:#x}", s.name, s.offset + (addr - lookup), s.size));
        let outer = sym
            .clone()
            .or_else(|| frames.last().map(|f| f.function.clone()))
            .unwrap_or_else(|| "??".to_string());
        if frames.is_empty() {
            out.push_str(&format!("#{i:<2} {addr:#018x} in {outer}\n"));
        }
        for f in &frames {
            let loc = f.location();
            if f.inlined {
                out.push_str(&format!(
                    "#{i:<2} {addr:#018x} in {} (inlined) at {loc}\n",
                    f.function
                ));
            } else {
                out.push_str(&format!("#{i:<2} {addr:#018x} in {outer} at {loc}\n"));
            }
        }
    }
    out
}
