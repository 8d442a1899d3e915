//! Helpers for replayer tests: compile small C programs, record them with the real
//! recorder, build umk, and rewrite traces (for tampering tests).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use trace::{Event, TraceReader, TraceWriter};

// Not every test binary that includes this module compiles C.
#[allow(unused_imports)]
pub use testsupport::cc;

/// Records `program args` into `dir/trace`; returns the recording and its stdout.
pub fn record(
    dir: &Path,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> (recorder::Recording, PathBuf, Vec<u8>) {
    record_in(dir, "trace", program, args, None)
}

/// As `record`, into `dir/name`, with optional stdin file.
pub fn record_in(
    dir: &Path,
    name: &str,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    _stdin: Option<&Path>,
) -> (recorder::Recording, PathBuf, Vec<u8>) {
    let out = dir.join(name);
    let stdout = dir.join(format!("{name}.stdout"));
    let mut opts = recorder::RecordOptions::new(program.as_ref(), args.iter().copied());
    opts.out_dir = Some(out.clone());
    opts.stdout = Some(std::fs::File::create(&stdout).unwrap().into());
    let rec = recorder::record(&opts).unwrap_or_else(|e| panic!("recording failed: {e}"));
    drop(opts);
    (rec, out, std::fs::read(&stdout).unwrap())
}

/// Replays `trace` into a buffer.
pub fn replay(trace: &Path) -> replayer::Outcome {
    replayer::replay(
        trace,
        replayer::ReplayOptions {
            console: replayer::Console::Buffer(Vec::new()),
            pace: false,
        },
    )
    .unwrap_or_else(|e| panic!("replay of {} failed: {e}", trace.display()))
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    testsupport::workspace().to_path_buf()
}

/// umk, built once per test process in this target directory's profile.
pub fn umk() -> &'static Path {
    testsupport::umk_binary()
}

/// An ext2 image with `files`, made by mke2fs.
pub fn make_ext2(image: &Path, files: &[(&str, &str)]) {
    testsupport::make_ext2(image, "8M", files);
}

/// Records umk with an init script of `lines` (plus `extra` arguments) into `dir/name`.
pub fn record_umk(
    dir: &Path,
    name: &str,
    lines: &[&str],
    extra: &[&str],
) -> (recorder::Recording, PathBuf, Vec<u8>) {
    let img = dir.join(format!("{name}.img"));
    make_ext2(&img, &[("motd", "motd\n")]);
    let script = dir.join(format!("{name}.init"));
    std::fs::write(&script, lines.join("\n") + "\n").unwrap();
    let mut args = vec![
        "mem=32M".to_string(),
        format!("ubd0={}", img.display()),
        format!("init={}", script.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = record_in(dir, name, umk(), &argv, None);
    // The replay must not need the disk image or the script.
    std::fs::remove_file(&img).unwrap();
    std::fs::remove_file(&script).unwrap();
    r
}

/// Copies trace `from` to `to`, passing every event through `edit`.
pub fn rewrite(from: &Path, to: &Path, mut edit: impl FnMut(u64, Event) -> Event) {
    let r = TraceReader::open(from).unwrap();
    let mut w = TraceWriter::create(to).unwrap();
    w.write_header(r.header()).unwrap();
    for item in r.events().unwrap() {
        let (i, e) = item.unwrap();
        w.append(&edit(i, e)).unwrap();
    }
    for entry in std::fs::read_dir(from.join("blobs")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("blobs").join(entry.file_name())).unwrap();
    }
    w.finish().unwrap();
}

/// All events of a trace.
pub fn events(trace: &Path) -> Vec<Event> {
    let r = TraceReader::open(trace).unwrap();
    r.events().unwrap().map(|e| e.unwrap().1).collect()
}
