//! `rewind decode` on a guest's own report, as decode_stacktrace.sh decodes a kernel log:
//! the shipped lostwake recording's hung-task report, replayed, comes out with every
//! call-trace address named (function, offset, `file:line`) and the frames inlined there
//! on lines of their own marked `[inline]`; the other lines pass through unchanged.

use std::io::Write;
use std::process::{Command, Stdio};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

#[test]
fn a_hung_task_reports_call_trace_is_symbolized_and_other_lines_pass_through() {
    let pack = testsupport::corpus::pack("lostwake", replayer::host_mismatch_of);
    let replay = Command::new(REWIND)
        .arg("replay")
        .arg(&pack)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&replay.stdout).into_owned();
    assert!(log.contains("blocked for more than"), "{log}");
    let mut child = Command::new(REWIND)
        .arg("decode")
        .arg(&pack)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let decoded = String::from_utf8_lossy(&out.stdout).into_owned();
    // The writer, blocked in its wait: named with its source line.
    let writer = decoded
        .lines()
        .find(|l| l.contains("[<") && l.contains("umk::bugs::lostwake::writer+0x"))
        .unwrap_or_else(|| panic!("no decoded writer frame\n{decoded}"));
    assert!(writer.contains("kernel/src/bugs/lostwake.rs:"), "{writer}");
    assert!(
        decoded.lines().any(|l| l.ends_with("[inline]")),
        "no inlined frame\n{decoded}"
    );
    // Every input line is there, in order, some with more after them; added lines are
    // inlined frames.
    let mut added = 0;
    let mut inputs = log.lines();
    let mut next = inputs.next();
    for l in decoded.lines() {
        match next {
            Some(i) if l.starts_with(i) => next = inputs.next(),
            _ => {
                assert!(
                    l.ends_with("[inline]"),
                    "an added line that is not a frame: {l}"
                );
                added += 1;
            }
        }
    }
    assert_eq!(next, None, "input lines lost\n{decoded}");
    assert!(added > 0);
}
