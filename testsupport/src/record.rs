//! Recordings made in-process with the recorder (feature `record`): of a host program,
//! of umk running an init script, and one shared recording of umk's abba deadlock per
//! test process; and trace rewriting for tampering tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use trace::{Event, Header, TraceReader, TraceWriter};

use crate::{arg, make_ext2, script, umk_binary, Scratch};

/// A finished recording: what the recorder returned, the trace directory, and everything
/// the program printed on stdout.
pub type Recorded = (recorder::Recording, PathBuf, Vec<u8>);

/// Records `program args` into `dir/trace`.
pub fn record(dir: &Path, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Recorded {
    record_in(dir, "trace", program, args)
}

/// Records `program args` into `dir/name`, its stdout going to `dir/name.stdout`.
pub fn record_in(
    dir: &Path,
    name: &str,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
) -> Recorded {
    record_with(dir, name, program, args, |_| {})
}

/// As [`record_in`], with the options passed through `adjust` first (which starts from
/// what `rewind record` does by default: the syscall buffer on).
pub fn record_with(
    dir: &Path,
    name: &str,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    adjust: impl FnOnce(&mut recorder::RecordOptions),
) -> Recorded {
    let trace = dir.join(name);
    let stdout = dir.join(format!("{name}.stdout"));
    let mut opts = recorder::RecordOptions::new(program.as_ref(), args.iter().copied());
    opts.out_dir = Some(trace.clone());
    opts.stdout = Some(std::fs::File::create(&stdout).unwrap().into());
    opts.syscall_buffer = Some(crate::umk::preload_library().to_path_buf());
    adjust(&mut opts);
    let rec = recorder::record(&opts).unwrap_or_else(|e| panic!("recording failed: {e}"));
    // Closes the recording's copy of the stdout file before it is read back.
    drop(opts);
    (rec, trace, std::fs::read(&stdout).unwrap())
}

/// Records umk with an init script of `lines` (plus `extra` arguments) on an 8 MB ext2
/// disk into `dir/name`, then removes the disk and the script: a replay must not need them.
pub fn record_umk(dir: &Path, name: &str, lines: &[&str], extra: &[&str]) -> Recorded {
    let img = dir.join(format!("{name}.img"));
    make_ext2(&img, "8M", &[("motd", "motd\n")]);
    let init = dir.join(format!("{name}.init"));
    std::fs::write(&init, lines.join("\n") + "\n").unwrap();
    let mut args = vec!["mem=32M".to_string(), arg("ubd0", &img), arg("init", &init)];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = record_in(dir, name, umk_binary(), &argv);
    std::fs::remove_file(&img).unwrap();
    std::fs::remove_file(&init).unwrap();
    r
}

/// The trace of umk's abba scenario with bug_window=1 (it always deadlocks and ends in
/// the hung-task panic's SIGABRT), recorded once per test process with this profile's
/// umk. Its console output is in `console.txt` beside it.
pub fn abba() -> &'static Path {
    static TRACE: OnceLock<(Scratch, PathBuf)> = OnceLock::new();
    &TRACE
        .get_or_init(|| {
            let d = Scratch::new("abba");
            let img = d.path("disk.img");
            make_ext2(&img, "8M", &[("etc/motd", "motd\n")]);
            let s = script(&d, "init", &["bug abba", "echo scenario returned", "halt"]);
            let args = vec![
                "mem=32M".to_string(),
                arg("ubd0", &img),
                arg("init", &s),
                "bug_window=1".to_string(),
            ];
            let mut opts = recorder::RecordOptions::new(umk_binary(), args);
            let out = d.path("trace");
            opts.out_dir = Some(out.clone());
            let console = std::fs::File::create(d.path("console.txt")).unwrap();
            opts.stdout = Some(console.into());
            let rec = recorder::record(&opts).expect("recording abba");
            assert!(
                matches!(rec.exit, trace::ExitStatus::Signaled { signo: 6, .. }),
                "abba did not end in SIGABRT: {:?}",
                rec.exit
            );
            (d, out)
        })
        .1
}

/// Copies trace `from` to `to`, passing every event through `edit` (tampering tests).
pub fn rewrite(from: &Path, to: &Path, mut edit: impl FnMut(u64, Event) -> Event) {
    rewrite_all(from, to, |_| {}, |i, e| vec![edit(i, e)]);
}

/// Copies trace `from` to `to` with its header passed through `header` and each event
/// replaced by what `edit` makes of it (none, itself, others before or after it).
pub fn rewrite_all(
    from: &Path,
    to: &Path,
    header: impl FnOnce(&mut Header),
    mut edit: impl FnMut(u64, Event) -> Vec<Event>,
) {
    let r = TraceReader::open(from).unwrap();
    let mut w = TraceWriter::create(to).unwrap();
    let mut h = r.header().clone();
    header(&mut h);
    w.write_header(&h).unwrap();
    for item in r.events().unwrap() {
        let (i, e) = item.unwrap();
        for e in edit(i, e) {
            w.append(&e).unwrap();
        }
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
