//! The store of whole-file blobs kept across recordings (`recorder::filestore`): a second
//! recording of the same program links the blobs the first one stored instead of
//! compressing them again, and a file changed in between is read again, never served
//! from the store.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::*;
use trace::ExitStatus;

const PROGRAM: &str = r#"
#include <stdio.h>
int main(void) { printf("VERSION\n"); return 0; }
"#;

/// Records `exe` into `dir/name` with the store at `store`; returns the trace and stdout.
fn record_with_store(dir: &Path, name: &str, exe: &Path, store: &Path) -> (PathBuf, Vec<u8>) {
    let (rec, trace, out) = record_with(dir, name, exe, &[], |o| {
        o.syscall_buffer = None;
        o.file_cache = Some(store.to_path_buf());
    });
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    (trace, out)
}

/// The (file name, link count) of each blob of `trace`.
fn blobs(trace: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(trace.join("blobs"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().nlink(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_second_recording_links_the_stored_blobs_and_a_changed_file_is_read_again() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let exe = cc(d.path(), "versioned", &PROGRAM.replace("VERSION", "one"));
    let (first, out) = record_with_store(d.path(), "first", &exe, &store);
    assert_eq!(out, b"one\n");
    let (second, out2) = record_with_store(d.path(), "second", &exe, &store);
    assert_eq!(out2, b"one\n");
    let (a, b) = (blobs(&first), blobs(&second));
    assert_eq!(
        a.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        b.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "the same files, the same blobs"
    );
    // Each blob of the second trace is the store's file: the first trace's, the store's
    // and its own link.
    assert!(b.iter().all(|(_, links)| *links >= 3), "{b:?}");
    replays_identically(&second, &out2, ExitStatus::Exited(0));

    // The program rebuilt in place: its identity changed, so it is read again.
    std::fs::remove_file(&exe).unwrap();
    let exe = cc(d.path(), "versioned", &PROGRAM.replace("VERSION", "two"));
    let (third, out3) = record_with_store(d.path(), "third", &exe, &store);
    assert_eq!(out3, b"two\n");
    let fresh: Vec<String> = blobs(&third)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !b.iter().any(|(m, _)| m == n))
        .collect();
    assert_eq!(
        fresh.len(),
        1,
        "only the rebuilt binary is a new blob: {fresh:?}"
    );
    replays_identically(&third, &out3, ExitStatus::Exited(0));
}
