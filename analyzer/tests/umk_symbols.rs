//! Symbolization against the real umk binary (built on demand with the test profile, as
//! the workspace's end-to-end tests do).

use std::path::Path;
use std::process::Command;

use analyzer::disasm::disassemble;
use analyzer::symbols::{self, Binary};
use analyzer::Error;

fn umk_binary() -> &'static Path {
    testsupport::umk_binary()
}

/// Each test opens its own: the DWARF context caches lazily and is not Sync.
fn symbolizer() -> Binary {
    symbols::open(umk_binary()).expect("opening umk")
}

/// umk tags each probe body so that no two share an address (kernel/PROBES.md); a
/// breakpoint on one must never catch another.
#[test]
fn every_probe_has_its_own_address() {
    let s = symbolizer();
    let addrs =
        symbols::probe_addresses(&s, &symbols::PROBE_FUNCTIONS).expect("distinct probe addresses");
    assert_eq!(addrs.len(), symbols::PROBE_FUNCTIONS.len());
}

#[test]
fn probe_symbol_resolves_to_the_sync_module() {
    let s = symbolizer();
    let addr = s.require("umk_lock_acquire").unwrap();
    let frames = s.frames(addr);
    let outer = frames.last().expect("frames for umk_lock_acquire");
    assert_eq!(outer.function, "umk_lock_acquire", "{frames:?}");
    assert_eq!(outer.file.as_deref(), Some("kernel/src/sync/mod.rs"));
    assert!(outer.line.is_some());
    assert!(!outer.inlined);
    let sym = s.symbol(addr).unwrap();
    assert_eq!(sym.offset, 0);
    assert!(sym.size > 0);
}

#[test]
fn address_inside_abba_has_file_and_line() {
    let s = symbolizer();
    let start = s.require("umk::bugs::abba::one_way").unwrap();
    let size = s.symbol(start).unwrap().size;
    // Every address of the function symbolizes to it; optimized code has stretches
    // without a line (line 0), so look for the addresses that have one.
    let mut with_line = 0;
    for off in 0..size {
        let frames = s.frames(start + off);
        let outer = frames.last().unwrap();
        assert_eq!(outer.function, "umk::bugs::abba::one_way", "{frames:?}");
        if let Some(line) = outer.line {
            assert_eq!(outer.file.as_deref(), Some("kernel/src/bugs/abba.rs"));
            assert!((1..=56).contains(&line), "line {line}");
            with_line += 1;
        }
    }
    assert!(with_line > 0, "no address of one_way has a line");
    let sym = s.symbol(start + size / 2).unwrap();
    assert_eq!(sym.name, "umk::bugs::abba::one_way");
    assert_eq!(sym.offset, size / 2);
}

#[test]
fn functions_start_with_a_frame_pointer_push() {
    let s = symbolizer();
    let start = s.require("umk::bugs::abba::one_way").unwrap();
    let bytes = s.code_bytes(start, 16);
    assert!(!bytes.is_empty());
    let insns = disassemble(bytes, start, 1).unwrap();
    // umk is built with frame pointers everywhere (.cargo/config.toml).
    assert_eq!(insns[0].text(), "push rbp");
    assert_eq!(insns[0].addr, start);
    let (fstart, code) = s.function_code(start + 4).unwrap();
    assert_eq!(fstart, start);
    assert!(disassemble(code, fstart, 1000).unwrap().len() > 3);
}

#[test]
fn bad_binaries_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("rewind-ana-sym-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("not-elf");
    std::fs::write(&text, "hello").unwrap();
    let e = symbols::open(&text).err().unwrap();
    assert!(matches!(e, Error::BadElf { .. }), "{e}");

    let stripped = dir.join("umk-stripped");
    let ok = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(umk_binary())
        .arg(&stripped)
        .status()
        .expect("objcopy (binutils) runs");
    assert!(ok.success());
    let e = symbols::open(&stripped).err().unwrap();
    assert!(matches!(e, Error::NoDebugInfo { .. }), "{e}");
    assert!(e.to_string().contains("no debug info"), "{e}");

    let e = symbolizer().require("no_such_symbol").unwrap_err();
    assert!(e.to_string().contains("no_such_symbol"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A generic method's instantiations demangle alike (`Mutex<T>::lock`): the name is
/// refused as one address rather than resolved to one of them silently, and every
/// location is there for whoever wants them all (a breakpoint at each, as gdb sets).
#[test]
fn a_name_shared_by_a_generics_instantiations_is_no_single_address() {
    let s = symbolizer();
    let name = "umk::sync::mutex::Mutex<T>::lock";
    let all = s.addresses(name);
    assert!(all.len() > 1, "{name}: {all:x?}");
    assert!(all.windows(2).all(|w| w[0] < w[1]), "distinct, ascending");
    assert_eq!(s.address(name), None);
    let err = s.require(name).unwrap_err().to_string();
    assert!(
        err.contains(&format!("names {} functions", all.len())),
        "{err}"
    );
    for a in all {
        assert_eq!(s.symbol(a).unwrap().name, name);
    }
    // A name with one address is still one.
    assert!(s.address("umk_lock_acquire").is_some());
}
