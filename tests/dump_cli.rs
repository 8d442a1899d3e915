//! `rewind dump` on good and bad traces: one event a line, JSON for tools, and clear
//! messages with file and byte offset for damaged, truncated, killed or future traces.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

fn record(trace: &Path, cmd: &[&str]) {
    let st = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(trace)
        .arg("--")
        .args(cmd)
        .status()
        .unwrap();
    assert!(st.success());
}

fn dump(trace: &Path, extra: &[&str]) -> Output {
    Command::new(REWIND)
        .arg("dump")
        .args(extra)
        .arg(trace)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn dump_lines_and_json() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t");
    record(&t, &["date"]);
    let out = dump(&t, &[]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.lines().next().unwrap().starts_with("#0 "), "{s}");
    assert!(s.contains("clock_gettime(0, 0x"), "{s}");
    assert!(s.contains("openat(AT_FDCWD, \"/etc/ld.so.cache\""), "{s}");
    assert!(s.lines().last().unwrap().contains("+++ exited with 0 +++"));
    let json = dump(&t, &["--json"]);
    let lines: Vec<serde_json::Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), s.lines().count());
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["index"], i as u64);
    }
    assert!(lines.iter().any(|v| v["kind"] == "rdtsc"));
    assert!(lines
        .iter()
        .any(|v| v["name"] == "openat" && v["path"] == "/etc/ld.so.cache"));
    let header = dump(&t, &["--header"]);
    assert!(text(&header.stdout).contains("# binary /usr/bin/date sha256 "));
}

#[test]
fn flipped_byte_in_a_chunk_is_reported_with_offset() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t");
    record(&t, &["date"]);
    let ev = t.join("events");
    let mut b = std::fs::read(&ev).unwrap();
    b[40] ^= 0x01;
    std::fs::write(&ev, b).unwrap();
    let out = dump(&t, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("events: corrupt at byte offset 0") && err.contains("checksum"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn truncated_trace_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t");
    record(&t, &["date"]);
    let ev = t.join("events");
    let len = std::fs::metadata(&ev).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ev)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let out = dump(&t, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("truncated at byte offset") && err.contains("events"),
        "{err}"
    );
}

#[test]
fn future_version_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t");
    record(&t, &["true"]);
    let newer = trace::FORMAT_VERSION + 1;
    std::fs::write(t.join("version"), format!("{newer}\n")).unwrap();
    let out = dump(&t, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("version {newer} is newer")) && err.contains("version"),
        "{err}"
    );
}

#[test]
fn trace_of_a_killed_recorder_reads_up_to_its_last_chunk() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t");
    // A program that makes system calls forever.
    let mut child = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&t)
        .args(["--", "sh", "-c", "while :; do echo tick; done"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until at least one chunk is on disk.
    let ev = t.join("events");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&ev).map_or(0, |m| m.len()) < 4096 {
        assert!(std::time::Instant::now() < deadline, "no chunk written");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(t.join("incomplete").exists() && !t.join("version").exists());
    let out = dump(&t, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout).lines().count();
    assert!(lines > 100, "only {lines} events");
    let err = text(&out.stderr);
    assert!(err.contains("trace is incomplete"), "{err}");
    assert!(text(&out.stdout).contains("write(1, "));
}

#[test]
fn not_a_trace() {
    let d = tempfile::tempdir().unwrap();
    let out = dump(d.path(), &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not a rewind trace"));
}
