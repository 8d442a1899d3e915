//! `rewind pack`: a packed umk recording dumps exactly like its directory, unpacks to the
//! recorded binary, and a flipped byte or a cut-short file is refused with the entry and
//! offset named, never a panic.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{run_with_timeout, Run, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

fn rewind(args: &[&std::ffi::OsStr]) -> Run {
    let mut c = Command::new(REWIND);
    c.args(args).env_remove("RUST_BACKTRACE");
    run_with_timeout(c, std::time::Duration::from_secs(60), None)
}

/// A chaos recording of umk halting right away, and its pack.
fn recorded(d: &Scratch) -> (PathBuf, PathBuf) {
    let init = support::script(d, "init", &["echo packed", "halt"]);
    let dir = d.path("trace");
    let umk = support::umk_binary();
    let r = rewind(&[
        "record".as_ref(),
        "--chaos".as_ref(),
        "9".as_ref(),
        "-o".as_ref(),
        dir.as_os_str(),
        "--".as_ref(),
        umk.as_os_str(),
        support::arg("init", &init).as_ref(),
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
        support::sha256(&bin),
        support::sha256(support::umk_binary()),
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
        support::sha256(&out.join("binary")),
        support::sha256(support::umk_binary())
    );
    // The binary is stored once even though the trace also holds it as a blob.
    let size = std::fs::metadata(&pack).unwrap().len();
    let bin_size = std::fs::metadata(support::umk_binary()).unwrap().len();
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
