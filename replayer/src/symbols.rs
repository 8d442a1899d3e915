//! Symbols of the guest binary: addresses of named functions (for breakpoints and probes),
//! and symbolized backtraces (function, file:line via DWARF with addr2line) by walking the
//! frame-pointer chain, which umk keeps everywhere (`force-frame-pointers`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSymbol};

use crate::error::{Error, Result};

/// A parsed binary: symbol table and DWARF, loaded once and queried many times.
/// Addresses given out and taken in are run-time addresses.
pub struct Symbols {
    path: PathBuf,
    /// Run-time minus link-time address (non-zero only for a relocated PIE).
    slide: u64,
    /// Link-time addresses.
    by_name: BTreeMap<String, u64>,
    /// start → (end, name), functions only.
    by_addr: BTreeMap<u64, (u64, String)>,
    loader: Option<addr2line::Loader>,
}

/// One symbolized frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The return address (or rip for the innermost frame).
    pub pc: u64,
    /// Function name (demangled) and offset, if known.
    pub function: Option<(String, u64)>,
    /// Source file and line, if known.
    pub location: Option<(String, u32)>,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#018x}", self.pc)?;
        if let Some((name, off)) = &self.function {
            write!(f, " in {name}+{off:#x}")?;
        }
        if let Some((file, line)) = &self.location {
            write!(f, " at {file}:{line}")?;
        }
        Ok(())
    }
}

impl Symbols {
    /// Loads the symbols of the ELF at `path` (a static, non-PIE binary: link addresses
    /// are run-time addresses).
    pub fn load(path: &Path) -> Result<Symbols> {
        Symbols::load_at(path, None)
    }

    /// Loads the symbols of `path` as the program ran: `at_entry` is its entry address
    /// (auxv AT_ENTRY), which moves every symbol of a position-independent binary by
    /// where the loader put it.
    pub fn load_at(path: &Path, at_entry: Option<u64>) -> Result<Symbols> {
        let err = |why: String| Error::Symbols {
            path: path.to_path_buf(),
            why,
        };
        let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let file = object::File::parse(&*data).map_err(|e| err(e.to_string()))?;
        let slide = match (file.kind(), at_entry) {
            (object::ObjectKind::Dynamic, Some(entry)) => entry.wrapping_sub(file.entry()),
            _ => 0,
        };
        let mut by_name = BTreeMap::new();
        let mut by_addr = BTreeMap::new();
        for sym in file.symbols() {
            let Ok(name) = sym.name() else { continue };
            if name.is_empty() || sym.address() == 0 {
                continue;
            }
            by_name.insert(name.to_string(), sym.address());
            if sym.kind() == object::SymbolKind::Text {
                let demangled = addr2line::demangle_auto(name.into(), None).into_owned();
                // Rust paths are found by their demangled name too (`umk::shell::…`),
                // without the trailing hash.
                let plain = match demangled.rsplit_once("::h") {
                    Some((p, h)) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => p,
                    _ => demangled.as_str(),
                };
                by_name.entry(plain.to_string()).or_insert(sym.address());
                by_addr.insert(
                    sym.address(),
                    (sym.address() + sym.size().max(1), demangled),
                );
            }
        }
        // A stripped PIE may still export what a debugger looks for dynamically.
        for sym in file.dynamic_symbols() {
            if let (false, Ok(name)) = (sym.is_undefined(), sym.name()) {
                by_name.entry(name.to_string()).or_insert(sym.address());
            }
        }
        let loader = addr2line::Loader::new(path).ok();
        Ok(Symbols {
            path: path.to_path_buf(),
            slide,
            by_name,
            by_addr,
            loader,
        })
    }

    /// The binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Address of the symbol `name`.
    pub fn address(&self, name: &str) -> Result<u64> {
        self.by_name
            .get(name)
            .map(|a| a.wrapping_add(self.slide))
            .ok_or_else(|| Error::Symbols {
                path: self.path.clone(),
                why: format!("no symbol {name:?}"),
            })
    }

    /// Symbolizes one address.
    pub fn frame(&self, pc: u64) -> Frame {
        let link = pc.wrapping_sub(self.slide);
        let function = self
            .by_addr
            .range(..=link)
            .next_back()
            .filter(|(_, (end, _))| link < *end)
            .map(|(start, (_, name))| (name.clone(), link - start));
        let location = self.loader.as_ref().and_then(|l| {
            let loc = l.find_location(link).ok().flatten()?;
            Some((loc.file?.to_string(), loc.line?))
        });
        Frame {
            pc,
            function,
            location,
        }
    }

    /// A backtrace from `rip`/`rbp`, reading the stack with `read_u64`; stops at a null or
    /// non-increasing frame pointer or after `max` frames.
    pub fn backtrace(
        &self,
        rip: u64,
        rbp: u64,
        max: usize,
        mut read_u64: impl FnMut(u64) -> Option<u64>,
    ) -> Vec<Frame> {
        let mut out = vec![self.frame(rip)];
        let mut fp = rbp;
        while out.len() < max && fp != 0 {
            let (Some(next), Some(ret)) = (read_u64(fp), read_u64(fp + 8)) else {
                break;
            };
            if ret == 0 {
                break;
            }
            // Return addresses point after the call: symbolize the call itself.
            let mut f = self.frame(ret - 1);
            f.pc = ret;
            out.push(f);
            if next <= fp {
                break;
            }
            fp = next;
        }
        out
    }
}

#[cfg(test)]
impl Symbols {
    /// A table from (name, address) pairs, for tests of what reads guest memory.
    pub(crate) fn from_pairs(pairs: &[(&str, u64)]) -> Symbols {
        Symbols {
            path: PathBuf::from("(test)"),
            slide: 0,
            by_name: pairs.iter().map(|&(n, a)| (n.to_string(), a)).collect(),
            by_addr: BTreeMap::new(),
            loader: None,
        }
    }
}
