//! Symbolization for the reports. The guest binary itself is `guest::Binary`, the one
//! parse-once model gdb, `replay -i` and the analyzer share; this module adds what only
//! reports need: the [`Resolve`] seam (so engines can be tested with a table of made-up
//! frames), the kernel's stack layout, lock call sites, and umk's probe functions.

use std::collections::BTreeMap;
use std::path::Path;

use guest::stack::lookup_addr;
pub use guest::{Binary, Frame, SymbolHit};

use crate::error::{Error, Result};

/// What the report writers need from a symbolizer.
pub trait Resolve {
    /// Source frames at `addr` (an exact instruction address), innermost first.
    fn frames(&self, addr: u64) -> Vec<Frame>;
    /// The symbol containing `addr`.
    fn symbol(&self, addr: u64) -> Option<SymbolHit>;
}

/// Resolves nothing: reports then show raw addresses (used when no binary is at hand).
pub struct NoSymbols;

impl Resolve for NoSymbols {
    fn frames(&self, _addr: u64) -> Vec<Frame> {
        Vec::new()
    }
    fn symbol(&self, _addr: u64) -> Option<SymbolHit> {
        None
    }
}

impl Resolve for Binary {
    fn frames(&self, addr: u64) -> Vec<Frame> {
        Binary::frames(self, addr)
    }
    fn symbol(&self, addr: u64) -> Option<SymbolHit> {
        Binary::symbol(self, addr)
    }
}

/// Opens the guest binary for a report. A missing file, a non-ELF file or one without
/// `.debug_info` is an error that says which: a report without lines is not worth writing.
pub fn open(path: &Path) -> Result<Binary> {
    let bin = Binary::load(path)?;
    if !bin.has_debug_info() {
        return Err(Error::NoDebugInfo {
            path: path.to_path_buf(),
        });
    }
    Ok(bin)
}

/// Addresses of probe functions, checked to be distinct: a breakpoint on a folded address
/// would report every merged probe as the same one.
pub fn probe_addresses(bin: &Binary, names: &[&str]) -> Result<Vec<u64>> {
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    let mut out = Vec::with_capacity(names.len());
    for &name in names {
        let addr = bin.require(name)?;
        if let Some(first) = seen.insert(addr, name) {
            return Err(Error::ProbesFolded {
                first: first.to_string(),
                second: name.to_string(),
                addr,
                path: bin.path().to_path_buf(),
            });
        }
        out.push(addr);
    }
    Ok(out)
}

/// `func+0x1f/0x80`, as the kernel prints a code address.
pub fn symbol_offset(res: &dyn Resolve, addr: u64) -> String {
    match res.symbol(addr) {
        Some(s) => format!("{}+{:#x}/{:#x}", s.name, s.offset, s.size),
        None => format!("{addr:#x}"),
    }
}

/// A stack in the kernel's layout as scripts/decode_stacktrace.sh prints it, one line per
/// frame, inlined frames expanded:
///
/// ```text
///  core::ptr::read_volatile core/src/ptr/mod.rs:1700 [inline]
///  umk::bugs::uaf::checksum_request_data+0x1c/0x80 kernel/src/bugs/uaf.rs:33
/// ```
///
/// `first_is_pc`: the first entry is an instruction address (a crash), not a return address.
pub fn format_stack(res: &dyn Resolve, stack: &[u64], first_is_pc: bool, indent: &str) -> String {
    let mut out = String::new();
    for (i, &addr) in stack.iter().enumerate() {
        let probe = lookup_addr(addr, !(first_is_pc && i == 0));
        let frames = res.frames(probe);
        let sym = symbol_offset(res, addr);
        if frames.is_empty() {
            out.push_str(&format!("{indent}{sym}\n"));
            continue;
        }
        for f in &frames {
            if f.inlined {
                out.push_str(&format!("{indent}{}{} [inline]\n", f.function, f.place()));
            } else {
                out.push_str(&format!("{indent}{sym}{}\n", f.place()));
            }
        }
    }
    if stack.is_empty() {
        out.push_str(&format!("{indent}(no stack)\n"));
    }
    out
}

/// Whether a frame is inside umk's lock implementation, which every lock site passes
/// through and no report wants as "the site".
fn is_lock_internal(f: &Frame) -> bool {
    let file = f.file.as_deref().unwrap_or("");
    file.ends_with("src/sync/mutex.rs")
        || file.ends_with("src/sync/spinlock.rs")
        || file.ends_with("src/sync/mod.rs")
}

/// The first frame of a lock operation's stack outside the lock implementation: what
/// lockdep prints after `at:`. Falls back to the innermost frame.
pub fn call_site(res: &dyn Resolve, stack: &[u64]) -> Option<(u64, Frame)> {
    let mut first = None;
    for &addr in stack {
        let frames = res.frames(lookup_addr(addr, true));
        // Innermost first: the first frame outside the lock code is where the caller
        // wrote the lock operation, even when the lock code was inlined into it.
        if let Some(f) = frames.iter().find(|f| !is_lock_internal(f)) {
            return Some((addr, f.clone()));
        }
        if first.is_none() {
            first = frames.last().cloned().map(|f| (addr, f));
        }
    }
    first
}

/// `func+0xoff/0xsize (file:line)` of a lock operation's call site.
pub fn site_text(res: &dyn Resolve, stack: &[u64]) -> String {
    match call_site(res, stack) {
        Some((addr, f)) => format!("{} ({})", symbol_offset(res, addr), f.location()),
        None => stack
            .first()
            .map_or_else(|| "?".to_string(), |a| format!("{a:#x}")),
    }
}

/// `file:line` of a lock operation's call site, for graph labels.
pub fn site_location(res: &dyn Resolve, stack: &[u64]) -> String {
    match call_site(res, stack) {
        Some((_, f)) => f.location(),
        None => stack
            .first()
            .map_or_else(|| "?".to_string(), |a| format!("{a:#x}")),
    }
}

/// A fixed table of frames, for tests and for reports written without the binary.
#[derive(Debug, Default, Clone)]
pub struct StaticSymbols {
    /// Function symbols: start address → (name, size).
    pub functions: BTreeMap<u64, (String, u64)>,
    /// Exact lookup address → frames (innermost first).
    pub lines: BTreeMap<u64, Vec<Frame>>,
}

impl StaticSymbols {
    /// Adds a function `[start, start+size)` whose every address maps to `file:line`.
    pub fn function(&mut self, start: u64, size: u64, name: &str, file: &str, line: u32) {
        self.functions.insert(start, (name.to_string(), size));
        self.lines.insert(
            start,
            vec![Frame {
                function: name.to_string(),
                file: Some(file.to_string()),
                line: Some(line),
                inlined: false,
            }],
        );
    }
}

impl Resolve for StaticSymbols {
    fn frames(&self, addr: u64) -> Vec<Frame> {
        if let Some(f) = self.lines.get(&addr) {
            return f.clone();
        }
        match self.functions.range(..=addr).next_back() {
            Some((start, (_, size))) if addr < start + size => {
                self.lines.get(start).cloned().unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    fn symbol(&self, addr: u64) -> Option<SymbolHit> {
        let (start, (name, size)) = self.functions.range(..=addr).next_back()?;
        (addr < start + size).then(|| SymbolHit {
            name: name.clone(),
            offset: addr - start,
            size: *size,
        })
    }
}

/// umk's probe functions (kernel/PROBES.md), in the order collectors arm them.
pub const PROBE_FUNCTIONS: [&str; 9] = [
    "umk_lock_acquire",
    "umk_lock_acquired",
    "umk_lock_release",
    "umk_alloc",
    "umk_free",
    "umk_context_switch",
    "umk_irq_enter",
    "umk_irq_exit",
    "umk_task_exit",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_is_a_clear_error() {
        let e = open(Path::new("/nonexistent/umk"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("reading /nonexistent/umk"), "{e}");
    }
}
