//! The guest binary, parsed once and queried many times: function symbols by address and
//! every symbol by name (raw, demangled, and without the Rust hash suffix), source frames
//! with inlining through DWARF (addr2line over gimli/object), the bytes of its code, and
//! its identity. Addresses given out and taken in are run-time addresses: a
//! position-independent program is moved by where the loader put it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

use crate::error::{Error, Result};

/// One source-level frame at an address: inlined frames come first (innermost first),
/// the function that physically contains the address last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Demangled, without the Rust hash suffix.
    pub function: String,
    /// Source path, shortened to start at the crate directory (`kernel/src/sync/mod.rs`)
    /// so what is shown does not depend on where the guest was built.
    pub file: Option<String>,
    /// Source line.
    pub line: Option<u32>,
    /// Inlined into the frame after it.
    pub inlined: bool,
}

impl Frame {
    /// ` file:line` as scripts/decode_stacktrace.sh appends it to a frame: nothing when
    /// DWARF has no file for the address (no `?`).
    pub fn place(&self) -> String {
        match self.file {
            Some(_) => format!(" {}", self.location()),
            None => String::new(),
        }
    }

    /// `file:line`, or `?` when DWARF has no line for the address.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => "?".to_string(),
        }
    }
}

/// The function symbol containing an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolHit {
    /// Demangled, without the Rust hash suffix.
    pub name: String,
    /// Offset of the address in the function.
    pub offset: u64,
    /// The function's size (0 for hand-written assembly without one).
    pub size: u64,
}

struct Sym {
    addr: u64,
    size: u64,
    name: String,
}

/// A parsed guest binary.
pub struct Binary {
    path: PathBuf,
    /// Run-time minus link-time address (non-zero only for a relocated PIE).
    slide: u64,
    /// Function symbols sorted by link-time address, one per address.
    syms: Vec<Sym>,
    /// Raw, demangled and hash-less names to link-time addresses.
    /// Every distinct link-time address of each name (raw and demangled), ascending.
    by_name: BTreeMap<String, Vec<u64>>,
    /// Executable sections: (link-time address, bytes).
    code: Vec<(u64, Vec<u8>)>,
    build_id: Option<Vec<u8>>,
    has_debug_info: bool,
    loader: Option<addr2line::Loader>,
}

/// Demangles a symbol name without the Rust hash suffix (`umk::sched::schedule`); other
/// names come back as they are.
pub fn demangle(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

/// Shortens a DWARF path to start at the crate (or std library) directory: the component
/// before the last `/src/`.
pub fn short_path(path: &str) -> String {
    if let Some(i) = path.rfind("/src/") {
        let head = &path[..i];
        let start = head.rfind('/').map_or(0, |j| j + 1);
        return path[start..].to_string();
    }
    path.to_string()
}

/// The GNU build-id of the ELF in `data`, if it has one.
pub fn build_id(data: &[u8]) -> Option<Vec<u8>> {
    let file = object::File::parse(data).ok()?;
    file.build_id().ok().flatten().map(<[u8]>::to_vec)
}

/// The bytes of the file at `path`.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `data`, the file at `path`, parsed as an object file.
pub(crate) fn parse_elf<'a>(path: &Path, data: &'a [u8]) -> Result<object::File<'a>> {
    object::File::parse(data).map_err(|e| Error::NotElf {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

impl Binary {
    /// Loads the ELF at `path` as linked (a static, non-PIE binary: link addresses are
    /// run-time addresses).
    pub fn load(path: &Path) -> Result<Binary> {
        Binary::load_at(path, None)
    }

    /// Loads `path` as the program ran: `at_entry` is its entry address (auxv AT_ENTRY),
    /// which moves every symbol of a position-independent binary by where the loader put
    /// it. A binary without DWARF loads (symbols only; frames then have no lines).
    pub fn load_at(path: &Path, at_entry: Option<u64>) -> Result<Binary> {
        let data = read_file(path)?;
        let file = parse_elf(path, &data)?;
        let slide = match (file.kind(), at_entry) {
            (object::ObjectKind::Dynamic, Some(entry)) => entry.wrapping_sub(file.entry()),
            _ => 0,
        };
        let mut syms = Vec::new();
        let mut by_name = BTreeMap::new();
        for s in file.symbols() {
            let Ok(raw) = s.name() else { continue };
            if raw.is_empty() || s.address() == 0 {
                continue;
            }
            let name = demangle(raw);
            add_name(&mut by_name, raw, s.address());
            add_name(&mut by_name, &name, s.address());
            if s.kind() == SymbolKind::Text {
                syms.push(Sym {
                    addr: s.address(),
                    size: s.size(),
                    name,
                });
            }
        }
        // A stripped PIE may still export what a debugger looks for dynamically.
        for s in file.dynamic_symbols() {
            if let (false, Ok(name)) = (s.is_undefined(), s.name()) {
                add_name(&mut by_name, name, s.address());
            }
        }
        // Several symbols may share an address (aliases); the sort keeps a stable,
        // name-ordered choice so output never depends on symbol table order.
        syms.sort_by(|a, b| (a.addr, &a.name).cmp(&(b.addr, &b.name)));
        syms.dedup_by_key(|s| s.addr);
        let code = file
            .sections()
            .filter(|s| s.kind() == SectionKind::Text)
            .filter_map(|s| Some((s.address(), s.data().ok()?.to_vec())))
            .collect();
        let has_debug_info = file.section_by_name(".debug_info").is_some();
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        let loader = addr2line::Loader::new(path).ok();
        Ok(Binary {
            path: path.to_path_buf(),
            slide,
            syms,
            by_name,
            code,
            build_id,
            has_debug_info,
            loader,
        })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it has DWARF (`.debug_info`): without it frames have no file or line.
    pub fn has_debug_info(&self) -> bool {
        self.has_debug_info
    }

    /// Its GNU build-id.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// Run-time address of the symbol `name` (raw or demangled: `umk_lock_acquire`,
    /// `umk::sched::exit_current`), when it names one address.
    pub fn address(&self, name: &str) -> Option<u64> {
        match self.addresses(name).as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Every run-time address `name` has: several for a generic function whose
    /// instantiations demangle alike (as gdb puts a breakpoint at each location).
    pub fn addresses(&self, name: &str) -> Vec<u64> {
        self.by_name.get(name).map_or_else(Vec::new, |v| {
            v.iter().map(|a| a.wrapping_add(self.slide)).collect()
        })
    }

    /// [`Binary::address`], or an error naming the symbol and the binary (missing, or
    /// several functions).
    pub fn require(&self, name: &str) -> Result<u64> {
        match self.addresses(name).as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::NoSymbol {
                name: name.to_string(),
                path: self.path.clone(),
            }),
            many => Err(Error::AmbiguousSymbol {
                name: name.to_string(),
                count: many.len(),
                path: self.path.clone(),
            }),
        }
    }

    /// The function symbol containing `addr`.
    pub fn symbol(&self, addr: u64) -> Option<SymbolHit> {
        let link = addr.wrapping_sub(self.slide);
        let i = self
            .syms
            .partition_point(|s| s.addr <= link)
            .checked_sub(1)?;
        let s = &self.syms[i];
        // A zero-sized symbol (hand-written assembly) claims up to the next symbol, and no
        // further than its section's end: past the last one (`_fini`) lie other objects'
        // code (a shared library's), not its.
        let end = if s.size > 0 {
            s.addr.saturating_add(s.size)
        } else {
            let section_end = self
                .code
                .iter()
                .find(|(start, bytes)| {
                    (*start..start.saturating_add(bytes.len() as u64)).contains(&s.addr)
                })
                .map_or(s.addr.saturating_add(1), |(start, bytes)| {
                    start.saturating_add(bytes.len() as u64)
                });
            self.syms
                .get(i + 1)
                .map_or(section_end, |n| n.addr.min(section_end))
        };
        (link < end).then(|| SymbolHit {
            name: s.name.clone(),
            offset: link - s.addr,
            size: s.size,
        })
    }

    /// Source frames at `addr` (an exact instruction address), innermost first; the last
    /// one is the function that contains it. Empty outside every function.
    pub fn frames(&self, addr: u64) -> Vec<Frame> {
        let link = addr.wrapping_sub(self.slide);
        let mut out = Vec::new();
        if let Some(Ok(mut iter)) = self.loader.as_ref().map(|l| l.find_frames(link)) {
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

    /// `func+0x1f/0x80`, as the kernel prints a code address (the bare address outside
    /// every function).
    pub fn symbol_offset(&self, addr: u64) -> String {
        match self.symbol(addr) {
            Some(s) => format!("{}+{:#x}/{:#x}", s.name, s.offset, s.size),
            None => format!("{addr:#x}"),
        }
    }

    /// One address as a debugger names it: `0x…401234 in func+0x1f/0x80 at file:line`
    /// (the line of the function that contains it; inlined frames are in [`Binary::frames`]).
    pub fn describe(&self, addr: u64) -> String {
        let mut s = format!("{addr:#018x}");
        if self.symbol(addr).is_some() {
            s.push_str(&format!(" in {}", self.symbol_offset(addr)));
        }
        if let Some(f) = self.frames(addr).last().filter(|f| f.line.is_some()) {
            s.push_str(&format!(" at {}", f.location()));
        }
        s
    }

    /// `len` bytes of code at `addr` from the executable sections (fewer at the end of a
    /// section, none outside them).
    pub fn code_bytes(&self, addr: u64, len: usize) -> &[u8] {
        let link = addr.wrapping_sub(self.slide);
        for (start, bytes) in &self.code {
            let Some(off) = link
                .checked_sub(*start)
                .and_then(|o| usize::try_from(o).ok())
            else {
                continue;
            };
            if off < bytes.len() {
                return &bytes[off..off.saturating_add(len).min(bytes.len())];
            }
        }
        &[]
    }

    /// The code of the function containing `addr`: its start and bytes.
    pub fn function_code(&self, addr: u64) -> Option<(u64, &[u8])> {
        let s = self.symbol(addr)?;
        let start = addr - s.offset;
        let bytes = self.code_bytes(start, usize::try_from(s.size).ok()?);
        (!bytes.is_empty()).then_some((start, bytes))
    }
}

/// Notes that `name` is at `addr` (each distinct address once, ascending).
fn add_name(by_name: &mut BTreeMap<String, Vec<u64>>, name: &str, addr: u64) {
    let v = by_name.entry(name.to_string()).or_default();
    if let Err(i) = v.binary_search(&addr) {
        v.insert(i, addr);
    }
}

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
    fn a_missing_binary_is_a_clear_error() {
        let e = Binary::load(Path::new("/nonexistent/umk")).err().unwrap();
        assert!(e.to_string().contains("reading /nonexistent/umk"), "{e}");
    }

    #[test]
    fn the_test_binary_itself_resolves_both_ways() {
        // A PIE as run: its entry is where the loader put it, so AT_ENTRY from the kernel
        // gives the slide; here the binary is read as linked.
        let exe = std::env::current_exe().unwrap();
        let b = Binary::load(&exe).unwrap();
        let main = b.address("main").expect("a test binary has main");
        let hit = b.symbol(main).expect("main is a function");
        assert_eq!((hit.name.as_str(), hit.offset), ("main", 0));
        assert!(!b.frames(main).is_empty());
    }

    #[test]
    fn the_last_symbol_claims_no_address_past_its_section() {
        // The test binary ends its code with `_fini` (crti's, of no size, with GNU ld):
        // an address far past it, where a shared library would be, is no function of it.
        let b = Binary::load(&std::env::current_exe().unwrap()).unwrap();
        let last = b.syms.last().expect("symbols");
        assert_eq!(b.symbol(last.addr).map(|h| h.name), Some(last.name.clone()));
        assert_eq!(b.symbol(last.addr + (1 << 32)), None);
    }
}
