//! `rewind pack`: a packed umk recording dumps exactly like its directory, unpacks to the
//! recorded binary, and a flipped byte or a cut-short file is refused with the entry and
//! offset named, never a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use testsupport::{run_with_timeout, Run, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

fn rewind(args: &[&std::ffi::OsStr]) -> Run {
    let mut c = Command::new(REWIND);
    c.args(args).env_remove("RUST_BACKTRACE");
    run_with_timeout(c, std::time::Duration::from_secs(60), None)
}

/// A chaos recording of umk halting right away, and its pack.
fn recorded(d: &Scratch) -> (PathBuf, PathBuf) {
    let init = testsupport::script(d, "init", &["echo packed", "halt"]);
    let dir = d.path("trace");
    let umk = testsupport::umk_binary();
    let r = rewind(&[
        "record".as_ref(),
        "--chaos".as_ref(),
        "9".as_ref(),
        "-o".as_ref(),
        dir.as_os_str(),
        "--".as_ref(),
        umk.as_os_str(),
        testsupport::arg("init", &init).as_ref(),
    ]);
    r.assert_success();
    let pack = d.path("trace.rwpack");
    let p = rewind(&[
        "pack".as_ref(),
        dir.as_os_str(),
        "-o".as_ref(),
        pack.as_os_str(),
    ]);
    p.assert_success();
    (dir, pack)
}

fn dump(path: &Path, extra: &str) -> Run {
    rewind(&["dump".as_ref(), extra.as_ref(), path.as_os_str()])
}

#[test]
fn a_pack_dumps_like_its_directory_and_unpacks_the_binary() {
    let d = Scratch::new("pack-roundtrip");
    let (dir, pack) = recorded(&d);
    for flag in ["--header", "--json"] {
        let a = dump(&dir, flag);
        let b = dump(&pack, flag);
        a.assert_success();
        b.assert_success();
        assert_eq!(a.stdout, b.stdout, "dump {flag} differs");
    }
    assert!(dump(&pack, "--header").stdout.contains("# chaos seed 9 "));

    let reader = trace::open(&pack).unwrap();
    assert!(reader.is_packed());
    let bin = reader.packed_binary().unwrap();
    assert_eq!(
        testsupport::sha256(&bin),
        testsupport::sha256(testsupport::umk_binary()),
        "the packed binary is the recorded one"
    );
    let out = d.path("unpacked");
    rewind(&[
        "pack".as_ref(),
        "--unpack".as_ref(),
        pack.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .assert_success();
    assert_eq!(
        testsupport::sha256(&out.join("binary")),
        testsupport::sha256(testsupport::umk_binary())
    );
    // The binary is stored once even though the trace also holds it as a blob.
    let size = std::fs::metadata(&pack).unwrap().len();
    let bin_size = std::fs::metadata(testsupport::umk_binary()).unwrap().len();
    assert!(
        size < bin_size,
        "pack {size} B is not deduplicated (binary {bin_size} B)"
    );
}

fn entry(pack: &Path, name: &str) -> trace::pack::Entry {
    let p = trace::pack::Pack::open(pack).unwrap();
    p.entries().iter().find(|e| e.name == name).unwrap().clone()
}

#[track_caller]
fn assert_refused(r: &Run, needles: &[&str]) {
    assert_ne!(r.status.code(), Some(0), "{}", r.dump());
    assert!(!r.stderr.contains("panicked"), "{}", r.dump());
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}\n{}", r.dump());
    }
}

#[test]
fn a_tampered_pack_is_refused_naming_entry_and_offset() {
    let d = Scratch::new("pack-tamper");
    let (_, pack) = recorded(&d);
    let events = entry(&pack, "events");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(events.offset + events.len / 2) as usize] ^= 0x20;
    let bad = d.path("flipped.rwpack");
    std::fs::write(&bad, &bytes).unwrap();
    let r = dump(&bad, "--header");
    assert_refused(
        &r,
        &[
            &format!("packed entry `events` at byte offset {}", events.offset),
            "sha256",
        ],
    );

    // A byte of the table of contents.
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[24] ^= 1;
    std::fs::write(&bad, &bytes).unwrap();
    assert_refused(
        &dump(&bad, "--header"),
        &["table of contents", "byte offset 20"],
    );
}

#[test]
fn a_truncated_pack_is_refused_naming_entry_and_offset() {
    let d = Scratch::new("pack-truncated");
    let (_, pack) = recorded(&d);
    let bytes = std::fs::read(&pack).unwrap();
    // The entry stored last (the binary shares its bytes with its blob, which the table
    // lists first, so that is the one named).
    let opened = trace::pack::Pack::open(&pack).unwrap();
    let end = opened.entries().iter().map(|e| e.offset).max().unwrap();
    let last = opened
        .entries()
        .iter()
        .find(|e| e.offset == end)
        .unwrap()
        .clone();
    let cut = d.path("cut.rwpack");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    assert_refused(
        &dump(&cut, "--header"),
        &[
            &format!(
                "packed entry `{}` at byte offset {}",
                last.name, last.offset
            ),
            "truncated",
        ],
    );
    std::fs::write(&cut, &bytes[..30]).unwrap();
    assert_refused(&dump(&cut, "--header"), &["table of contents", "truncated"]);
}

/// The last line `rewind replay` prints about how the program ended.
fn ending(r: &Run) -> String {
    r.stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("rewind: replayed program"))
        .unwrap_or_else(|| panic!("no ending\n{}", r.dump()))
        .to_string()
}

/// What a developer receiving the file has: the pack alone in an empty directory. The
/// umk it was recorded from, the disk image, the init script and the trace directory are
/// gone, yet replay, analysis and gdb work from the pack, and replay ends as the recording.
#[test]
fn a_pack_alone_in_an_empty_directory_replays_analyzes_and_debugs() {
    let d = Scratch::new("pack-alone-src");
    // A private copy of umk at a path of its own, deleted below like a user's build tree.
    let build = d.path("build");
    std::fs::create_dir_all(&build).unwrap();
    let umk = build.join("umk");
    std::fs::copy(testsupport::umk_binary(), &umk).unwrap();
    let img = d.path("disk.img");
    testsupport::make_ext2(&img, "8M", &[("etc/motd", "motd\n")]);
    let init = testsupport::script(&d, "init", &["bug abba", "halt"]);
    let trace = d.path("trace");
    let rec = rewind(&[
        "record".as_ref(),
        "-o".as_ref(),
        trace.as_os_str(),
        "--".as_ref(),
        umk.as_os_str(),
        "mem=32M".as_ref(),
        testsupport::arg("ubd0", &img).as_ref(),
        testsupport::arg("init", &init).as_ref(),
        "bug_window=1".as_ref(),
    ]);
    assert_eq!(rec.signal(), None, "{}", rec.dump());
    let pack = d.path("abba.rwpack");
    rewind(&[
        "pack".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        pack.as_os_str(),
    ])
    .assert_success();
    let recorded = ending(&rewind(&["replay".as_ref(), trace.as_os_str()]));
    assert!(recorded.contains("killed by signal 6"), "{recorded}");

    let alone = Scratch::new("pack-alone");
    std::fs::copy(&pack, alone.path("abba.rwpack")).unwrap();
    drop(d);
    assert!(!umk.exists() && !img.exists() && !trace.exists());

    let here = |args: &[&str]| {
        let mut c = Command::new(REWIND);
        c.args(args)
            .current_dir(&alone.0)
            .env_remove("RUST_BACKTRACE");
        run_with_timeout(c, std::time::Duration::from_secs(120), None)
    };
    for _ in 0..3 {
        assert_eq!(ending(&here(&["replay", "abba.rwpack"])), recorded);
    }
    let locks = here(&["analyze", "locks", "abba.rwpack"]);
    assert!(
        locks
            .stdout
            .contains("DEADLOCK: blocked tasks wait for each other"),
        "{}",
        locks.dump()
    );
    assert!(
        locks.stdout.contains("one_way"),
        "stacks need the packed symbols\n{}",
        locks.stdout
    );

    // The real gdb, launched by `rewind gdb` on the unpacked binary: run to the end of the
    // recording, then list the guest's tasks (from the packed binary's task table).
    let wrapper =
        testsupport::gdb_batch_wrapper(&alone, "gdb-batch", &["continue", "info threads"]);
    let g = here(&["gdb", "abba.rwpack", "--gdb", wrapper.to_str().unwrap()]);
    assert!(g.status.success(), "{}", g.dump());
    for needle in [
        "No more reverse-execution history",
        "abba-1 D waiting on mutex abba_lock_b",
        "abba-2 D waiting on mutex abba_lock_a",
    ] {
        assert!(g.stdout.contains(needle), "lacks {needle:?}\n{}", g.dump());
    }
}
