//! Helpers for recorder tests: compile small C programs, record, read the trace back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use trace::{Event, TraceReader};

// Not every test binary that includes this module compiles C.
#[allow(unused_imports)]
pub use testsupport::cc;

/// Records `program args` into `dir/trace`, the program's stdout going to `dir/stdout`.
pub fn record(
    dir: &Path,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> (recorder::Recording, PathBuf) {
    let out = dir.join("trace");
    let mut opts = recorder::RecordOptions::new(program.as_ref(), args.iter().copied());
    opts.out_dir = Some(out.clone());
    opts.stdout = Some(std::fs::File::create(dir.join("stdout")).unwrap().into());
    let rec = recorder::record(&opts).unwrap_or_else(|e| panic!("recording failed: {e}"));
    (rec, out)
}

/// All events of a trace, which must be complete and undamaged.
pub fn events(trace: &Path) -> (TraceReader, Vec<Event>) {
    let r = TraceReader::open(trace).unwrap();
    assert!(r.is_complete());
    let evs = r.events().unwrap().map(|e| e.unwrap().1).collect();
    (r, evs)
}

/// The syscall events named `name`.
pub fn syscalls<'a>(evs: &'a [Event], name: &str) -> Vec<&'a trace::SyscallEvent> {
    let nr = trace::sysno::number(name).unwrap();
    evs.iter()
        .filter_map(|e| match e {
            Event::Syscall(s) if s.nr == nr => Some(s),
            _ => None,
        })
        .collect()
}

/// The bytes a memory write holds, inline or from its blob.
pub fn bytes(r: &TraceReader, d: &trace::Data) -> Vec<u8> {
    match d {
        trace::Data::Inline(v) => v.clone(),
        trace::Data::Blob { hash, len } => r.blob(hash, *len).unwrap(),
    }
}
