//! README's main command, end to end: `rewind demo` records umk's ABBA deadlock with chaos
//! until it happens, packs it, replays it as recorded and writes the lock-order diagram
//! and report — on a PATH with nothing but mke2fs, so the diagrams are drawn without
//! graphviz.

use std::path::{Path, PathBuf};
use std::process::Command;

use testsupport::Scratch;

/// mke2fs, wherever PATH or e2fsprogs (in /sbin) puts it.
fn mke2fs() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("mke2fs"))
        .find(|p| p.is_file())
        .expect("mke2fs (install e2fsprogs)")
}

/// A directory holding only a link to mke2fs, to be the whole PATH.
fn bare_path(d: &Scratch) -> PathBuf {
    let bin = d.path("bin");
    std::fs::create_dir_all(&bin).expect("creating bin/");
    std::os::unix::fs::symlink(mke2fs(), bin.join("mke2fs")).expect("linking mke2fs");
    bin
}

#[test]
fn demo_records_replays_and_draws_the_deadlock_without_graphviz() {
    let d = Scratch::new("demo");
    let bin = bare_path(&d);
    assert!(!bin.join("dot").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["demo", "--dir"])
        .arg(&d.0)
        .env("REWIND_UMK", testsupport::umk_binary())
        .env("PATH", &bin)
        .output()
        .expect("running rewind demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("reproduced on run"), "{stdout}");
    assert_eq!(stdout.matches(", as recorded (").count(), 3, "{stdout}");
    assert!(
        stdout.contains("WARNING: possible circular locking dependency detected"),
        "{stdout}"
    );
    assert!(stdout.contains("DEADLOCK:"), "{stdout}");
    let report = d.0.join("report");
    let svg = std::fs::read_to_string(report.join("locks.svg")).expect("locks.svg");
    let edges = testsupport::svg::edges(&svg);
    for cycle_edge in ["abba_lock_a -> abba_lock_b", "abba_lock_b -> abba_lock_a"] {
        assert!(
            edges.contains(&(cycle_edge.to_string(), "red".to_string())),
            "no red edge {cycle_edge} in {edges:?}"
        );
    }
    let dot = std::fs::read_to_string(report.join("locks.dot")).expect("locks.dot");
    assert!(dot.starts_with("digraph lockdep {"), "{dot}");
    let html = std::fs::read_to_string(report.join("index.html")).expect("index.html");
    assert!(
        html.contains("<div class=\"svg\">\n<svg "),
        "index.html inlines the diagrams"
    );
    assert!(
        !html.contains("<?xml"),
        "the SVG's prolog is dropped inline"
    );
    let pack = std::fs::metadata(d.0.join("abba.rwpack")).expect("packed trace");
    assert!(pack.len() > 0);
    assert!(Path::new(&report).join("timeline.json").is_file());
}
