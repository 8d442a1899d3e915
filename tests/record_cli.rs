//! `rewind record` as a user runs it: the program's stdin, stdout and exit status pass
//! through, and traces land in the per-user directory with a `latest` link.

use std::io::Write;
use std::process::{Command, Stdio};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

#[test]
fn exit_status_passes_through() {
    let d = tempfile::tempdir().unwrap();
    let st = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(d.path().join("t"))
        .args(["--", "sh", "-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(7));
}

#[test]
fn death_by_signal_is_128_plus_signal() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("t");
    let st = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&trace)
        .args([
            "--",
            "/usr/bin/python3",
            "-c",
            "import os,signal; os.kill(os.getpid(), signal.SIGTERM)",
        ])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(128 + 15));
    let out = Command::new(REWIND)
        .arg("dump")
        .arg(&trace)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("--- SIGTERM at exit of"), "{text}");
    assert!(
        text.trim_end().ends_with("+++ killed by SIGTERM +++"),
        "{text}"
    );
}

#[test]
fn stdin_and_stdout_pass_through() {
    let d = tempfile::tempdir().unwrap();
    let mut child = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(d.path().join("t"))
        .args(["--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello\nworld\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello\nworld\n");
    // What cat read from its stdin is in the trace.
    let dump = Command::new(REWIND)
        .args(["dump", "--json"])
        .arg(d.path().join("t"))
        .output()
        .unwrap();
    let reads: Vec<serde_json::Value> = String::from_utf8(dump.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["name"] == "read" && v["args"][0] == 0)
        .collect();
    assert_eq!(reads[0]["result"], 12, "{reads:?}");
}

#[test]
fn default_directory_and_latest_link() {
    let home = tempfile::tempdir().unwrap();
    let run = || {
        let st = Command::new(REWIND)
            .env("XDG_DATA_HOME", home.path())
            .args(["record", "--", "true"])
            .status()
            .unwrap();
        assert!(st.success());
    };
    run();
    run();
    let root = home.path().join("rewind");
    assert!(root.join("true-0/version").exists());
    assert!(root.join("true-1/version").exists());
    assert_eq!(
        std::fs::read_link(root.join("latest")).unwrap(),
        std::path::Path::new("true-1")
    );
    // `rewind dump` without a trace reads the latest.
    let out = Command::new(REWIND)
        .env("XDG_DATA_HOME", home.path())
        .arg("dump")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("+++ exited with 0 +++"));
}

#[test]
fn missing_program_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(d.path().join("t"))
        .args(["--", "no-such-program-xyz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no-such-program-xyz") && err.contains("no such executable"),
        "{err}"
    );
}
