//! README's main command, end to end: `rewind demo` records umk's ABBA deadlock with chaos
//! until it happens, packs it, replays it as recorded and writes the lock-order diagram
//! and report.

use std::process::Command;

use testsupport::Scratch;

#[test]
fn demo_records_replays_and_draws_the_deadlock() {
    let d = Scratch::new("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["demo", "--dir"])
        .arg(&d.0)
        .env("REWIND_UMK", testsupport::umk_binary())
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
    // graphviz writes a DOCTYPE, which roxmltree refuses unless told otherwise.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(&svg, opts).expect("locks.svg is well-formed XML");
    assert!(svg.contains("abba_lock_a") && svg.contains("abba_lock_b"));
    let html = std::fs::read_to_string(report.join("index.html")).expect("index.html");
    assert!(html.contains("<svg"), "index.html inlines the diagrams");
    let pack = std::fs::metadata(d.0.join("abba.rwpack")).expect("packed trace");
    assert!(pack.len() > 0);
}
