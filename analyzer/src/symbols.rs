//! Symbolization of the guest kernel from its ELF and DWARF: frames with inlining
//! (addr2line over gimli/object, parsed once and queried through a cached context),
//! symbol lookup both ways (probes need `umk_lock_acquire`'s address; reports need
//! `func+0xoff/0xsize`), and capstone disassembly of code a report shows.
//!
//! Engines do not take a [`Symbolizer`] directly but anything that can [`Resolve`]
//! addresses, so their reports can be tested with a table of made-up frames.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use capstone::arch::x86::X86OperandType;
use capstone::arch::{ArchDetail, ArchOperand, BuildsCapstone, BuildsCapstoneSyntax};
use capstone::Capstone;
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

use crate::error::{Error, Result};

/// One source-level frame at an address: inlined frames come first (innermost first),
/// the function that physically contains the address last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Demangled, without the Rust hash suffix.
    pub function: String,
    /// Source path, shortened to start at the crate directory (`kernel/src/sync/mod.rs`)
    /// so reports do not depend on where the guest was built.
    pub file: Option<String>,
    pub line: Option<u32>,
    pub inlined: bool,
}

impl Frame {
    /// `file:line`, or `?` when DWARF has no line for the address.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => "?".to_string(),
        }
    }
}

/// The ELF symbol containing an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolHit {
    /// Demangled, without the Rust hash suffix.
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

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

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    pub addr: u64,
    pub bytes: Vec<u8>,
    pub mnemonic: String,
    pub operands: String,
    /// Memory operands, in operand order.
    pub mem: Vec<MemOperand>,
}

impl Insn {
    /// `mov rax, qword ptr [rbx + 0x18]`
    pub fn text(&self) -> String {
        if self.operands.is_empty() {
            self.mnemonic.clone()
        } else {
            format!("{} {}", self.mnemonic, self.operands)
        }
    }
}

/// A memory operand `[base + index*scale + disp]` and the size of the access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemOperand {
    pub base: Option<String>,
    pub index: Option<String>,
    pub scale: i32,
    pub disp: i64,
    pub size: u8,
}

impl MemOperand {
    /// The effective address with the given register values; `None` if a register is
    /// unknown (or rip-relative, which the caller resolves with the next instruction).
    pub fn address(&self, reg: impl Fn(&str) -> Option<u64>) -> Option<u64> {
        let mut a = self.disp as u64;
        if let Some(b) = &self.base {
            a = a.wrapping_add(reg(b)?);
        }
        if let Some(i) = &self.index {
            a = a.wrapping_add(reg(i)?.wrapping_mul(self.scale as u64));
        }
        Some(a)
    }
}

/// Disassembles up to `max` instructions of x86-64 code at `addr`, Intel syntax.
pub fn disassemble(bytes: &[u8], addr: u64, max: usize) -> Result<Vec<Insn>> {
    let err = |e: capstone::Error| Error::Disassemble {
        addr,
        why: e.to_string(),
    };
    let cs = Capstone::new()
        .x86()
        .mode(capstone::arch::x86::ArchMode::Mode64)
        .syntax(capstone::arch::x86::ArchSyntax::Intel)
        .detail(true)
        .build()
        .map_err(err)?;
    let insns = cs.disasm_count(bytes, addr, max).map_err(err)?;
    let mut out = Vec::new();
    for i in insns.iter() {
        let mut mem = Vec::new();
        if let Ok(detail) = cs.insn_detail(i) {
            if let ArchDetail::X86Detail(_) = detail.arch_detail() {
                for op in detail.arch_detail().operands() {
                    if let ArchOperand::X86Operand(op) = op {
                        if let X86OperandType::Mem(m) = op.op_type {
                            let name = |r: capstone::RegId| {
                                if r.0 == 0 {
                                    None
                                } else {
                                    cs.reg_name(r)
                                }
                            };
                            mem.push(MemOperand {
                                base: name(m.base()),
                                index: name(m.index()),
                                scale: m.scale(),
                                disp: m.disp(),
                                size: op.size,
                            });
                        }
                    }
                }
            }
        }
        out.push(Insn {
            addr: i.address(),
            bytes: i.bytes().to_vec(),
            mnemonic: i.mnemonic().unwrap_or("?").to_string(),
            operands: i.op_str().unwrap_or("").to_string(),
            mem,
        });
    }
    if out.is_empty() {
        return Err(Error::Disassemble {
            addr,
            why: "no valid instruction".to_string(),
        });
    }
    Ok(out)
}

/// Shortens a DWARF path to start at the crate (or std library) directory: the component
/// before the last `/src/`. Reports must not depend on the directory the guest was built in.
pub fn short_path(path: &str) -> String {
    if let Some(i) = path.rfind("/src/") {
        let head = &path[..i];
        let start = head.rfind('/').map(|j| j + 1).unwrap_or(0);
        return path[start..].to_string();
    }
    path.to_string()
}

fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

struct Sym {
    addr: u64,
    size: u64,
    name: String,
}

/// The guest binary's symbols and DWARF, parsed once.
pub struct Symbolizer {
    path: PathBuf,
    loader: addr2line::Loader,
    /// Function symbols sorted by address.
    syms: Vec<Sym>,
    /// Raw and demangled names to addresses.
    by_name: BTreeMap<String, u64>,
    /// Executable sections: (address, bytes).
    code: Vec<(u64, Vec<u8>)>,
}

impl Symbolizer {
    /// Opens the guest ELF. A missing file, a non-ELF file or one without `.debug_info`
    /// is an error that says which.
    pub fn open(path: impl AsRef<Path>) -> Result<Symbolizer> {
        let path = path.as_ref().to_path_buf();
        let data = std::fs::read(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let file = object::File::parse(&*data).map_err(|e| Error::BadElf {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if file.section_by_name(".debug_info").is_none() {
            return Err(Error::NoDebugInfo { path });
        }
        let mut syms = Vec::new();
        let mut by_name = BTreeMap::new();
        for s in file.symbols() {
            let Ok(raw) = s.name() else { continue };
            if raw.is_empty() || s.address() == 0 {
                continue;
            }
            let name = demangle(raw);
            by_name.entry(raw.to_string()).or_insert(s.address());
            by_name.entry(name.clone()).or_insert(s.address());
            if s.kind() == SymbolKind::Text {
                syms.push(Sym {
                    addr: s.address(),
                    size: s.size(),
                    name,
                });
            }
        }
        // Several symbols may share an address (aliases); the sort keeps a stable,
        // name-ordered choice so reports never depend on symbol table order.
        syms.sort_by(|a, b| (a.addr, &a.name).cmp(&(b.addr, &b.name)));
        syms.dedup_by_key(|s| s.addr);
        let mut code = Vec::new();
        for sec in file.sections() {
            if sec.kind() == SectionKind::Text {
                if let Ok(bytes) = sec.data() {
                    code.push((sec.address(), bytes.to_vec()));
                }
            }
        }
        let loader = addr2line::Loader::new(&path).map_err(|e| Error::Dwarf {
            path: path.clone(),
            why: e.to_string(),
        })?;
        Ok(Symbolizer {
            path,
            loader,
            syms,
            by_name,
            code,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Address of a symbol by raw or demangled name (`umk_lock_acquire`,
    /// `umk::sched::exit_current`).
    pub fn symbol_address(&self, name: &str) -> Result<u64> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::NoSymbol {
                name: name.to_string(),
                path: self.path.clone(),
            })
    }

    /// Addresses of probe functions, checked to be distinct: a breakpoint on a folded
    /// address would report every merged probe as the same one.
    pub fn probe_addresses(&self, names: &[&str]) -> Result<Vec<u64>> {
        let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
        let mut out = Vec::with_capacity(names.len());
        for &name in names {
            let addr = self.symbol_address(name)?;
            if let Some(first) = seen.insert(addr, name) {
                return Err(Error::ProbesFolded {
                    first: first.to_string(),
                    second: name.to_string(),
                    addr,
                    path: self.path.clone(),
                });
            }
            out.push(addr);
        }
        Ok(out)
    }

    /// The code of the function containing `addr`: its start and bytes.
    pub fn function_code(&self, addr: u64) -> Option<(u64, &[u8])> {
        let s = self.symbol(addr)?;
        let start = addr - s.offset;
        let bytes = self.code_bytes(start, s.size as usize);
        (!bytes.is_empty()).then_some((start, bytes))
    }

    /// `len` bytes of code at `addr` from the ELF's executable sections (fewer at the end
    /// of a section, none outside them).
    pub fn code_bytes(&self, addr: u64, len: usize) -> &[u8] {
        for (start, bytes) in &self.code {
            if addr >= *start && addr < start + bytes.len() as u64 {
                let off = (addr - start) as usize;
                return &bytes[off..(off + len).min(bytes.len())];
            }
        }
        &[]
    }
}

impl Resolve for Symbolizer {
    fn frames(&self, addr: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        if let Ok(mut iter) = self.loader.find_frames(addr) {
            while let Ok(Some(f)) = iter.next() {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|n| n.demangle().ok())
                    .map(Cow::into_owned)
                    .or_else(|| self.symbol(addr).map(|s| s.name))
                    .unwrap_or_else(|| "??".to_string());
                let (file, line) = match &f.location {
                    Some(l) => (l.file.map(short_path), l.line),
                    None => (None, None),
                };
                out.push(Frame {
                    function,
                    file,
                    line,
                    inlined: true,
                });
            }
        }
        if let Some(last) = out.last_mut() {
            last.inlined = false;
        } else if let Some(s) = self.symbol(addr) {
            out.push(Frame {
                function: s.name,
                file: None,
                line: None,
                inlined: false,
            });
        }
        out
    }

    fn symbol(&self, addr: u64) -> Option<SymbolHit> {
        let i = self
            .syms
            .partition_point(|s| s.addr <= addr)
            .checked_sub(1)?;
        let s = &self.syms[i];
        // A zero-sized symbol (hand-written assembly) claims up to the next symbol.
        let end = if s.size > 0 {
            s.addr + s.size
        } else {
            self.syms.get(i + 1).map_or(u64::MAX, |n| n.addr)
        };
        (addr < end).then(|| SymbolHit {
            name: s.name.clone(),
            offset: addr - s.addr,
            size: s.size,
        })
    }
}

/// `func+0x1f/0x80`, as the kernel prints a code address.
pub fn symbol_offset(res: &dyn Resolve, addr: u64) -> String {
    match res.symbol(addr) {
        Some(s) => format!("{}+{:#x}/{:#x}", s.name, s.offset, s.size),
        None => format!("{addr:#x}"),
    }
}

/// The lookup address for a stack entry: return addresses point after the call, whose
/// line is the one a developer wants, so they are looked up one byte back.
fn probe_addr(addr: u64, is_return: bool) -> u64 {
    if is_return {
        addr.saturating_sub(1)
    } else {
        addr
    }
}

/// A stack in the kernel's layout, one line per frame, inlined frames expanded:
///
/// ```text
///  core::ptr::read_volatile (inlined) core/src/ptr/mod.rs:1700
///  umk::bugs::uaf::checksum_request_data+0x1c/0x80 kernel/src/bugs/uaf.rs:33
/// ```
///
/// `first_is_pc`: the first entry is an instruction address (a crash), not a return address.
pub fn format_stack(res: &dyn Resolve, stack: &[u64], first_is_pc: bool, indent: &str) -> String {
    let mut out = String::new();
    for (i, &addr) in stack.iter().enumerate() {
        let probe = probe_addr(addr, !(first_is_pc && i == 0));
        let frames = res.frames(probe);
        let sym = symbol_offset(res, addr);
        if frames.is_empty() {
            out.push_str(&format!("{indent}{sym}\n"));
            continue;
        }
        for f in &frames {
            if f.inlined {
                out.push_str(&format!(
                    "{indent}{} (inlined) {}\n",
                    f.function,
                    f.location()
                ));
            } else {
                out.push_str(&format!("{indent}{sym} {}\n", f.location()));
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
        let frames = res.frames(probe_addr(addr, true));
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
    fn short_paths_start_at_the_crate() {
        assert_eq!(
            short_path("/work/main/kernel/src/sync/mod.rs"),
            "kernel/src/sync/mod.rs"
        );
        assert_eq!(
            short_path("/rustc/abc/library/core/src/ptr/mod.rs"),
            "core/src/ptr/mod.rs"
        );
        assert_eq!(short_path("mod.rs"), "mod.rs");
    }

    #[test]
    fn memory_operands_compute_addresses() {
        // mov rax, qword ptr [rbx + 0x18]
        let insns = disassemble(&[0x48, 0x8b, 0x43, 0x18], 0x1000, 1).unwrap();
        assert_eq!(insns[0].text(), "mov rax, qword ptr [rbx + 0x18]");
        let m = &insns[0].mem[0];
        assert_eq!(m.size, 8);
        assert_eq!(m.address(|r| (r == "rbx").then_some(0x100)), Some(0x118));
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let e = Symbolizer::open("/nonexistent/umk")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("reading /nonexistent/umk"), "{e}");
    }
}
