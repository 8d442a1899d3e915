//! Recording umk, the guest kernel, booting, sleeping on its timer and halting: the
//! execution-point ABI is found and every timer interrupt is a placed signal event.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

/// The umk binary of this test's profile, brought up to date by cargo.
fn umk() -> PathBuf {
    testsupport::umk_binary().to_path_buf()
}

#[test]
fn umk_boots_sleeps_and_halts_under_the_recorder() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t");
    let mut child = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&t)
        .arg("--")
        .arg(umk())
        .arg("hz=1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"sleep 1\nhalt\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(console.contains("System halted"), "{console}");

    let r = trace::TraceReader::open(&t).unwrap();
    assert!(r.is_complete());
    assert!(
        r.header().tick_abi.is_some(),
        "REWIND_TICKS not found in umk"
    );
    let evs: Vec<trace::Event> = r.events().unwrap().map(|e| e.unwrap().1).collect();
    assert!(matches!(
        evs.last(),
        Some(trace::Event::Exit(trace::ExitStatus::Exited(0)))
    ));
    // A second of a 1000 Hz timer: hundreds of interrupts, each a placed signal.
    let signals: Vec<&trace::SignalEvent> = evs
        .iter()
        .filter_map(|e| match e {
            trace::Event::Signal(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(signals.len() >= 100, "only {} timer signals", signals.len());
    assert!(signals.iter().all(|s| s.signo == libc_sigalrm()));
    for s in &signals {
        if let trace::Placement::Tick { ticks } = s.placement {
            assert_eq!(ticks, s.ticks);
        }
    }
    // The execution point only moves forward.
    let ticks: Vec<u64> = evs
        .iter()
        .filter_map(|e| match e {
            trace::Event::Syscall(s) => Some(s.ticks),
            trace::Event::Signal(s) => Some(s.ticks),
            _ => None,
        })
        .collect();
    assert!(
        ticks.windows(2).all(|w| w[0] <= w[1]),
        "ticks went backwards"
    );
    assert!(*ticks.last().unwrap() > 0);
    // The console output is in the trace as writes to fd 1.
    let write = trace::sysno::number("write").unwrap();
    assert!(evs
        .iter()
        .any(|e| matches!(e, trace::Event::Syscall(s) if s.nr == write && s.args[0] == 1)));
}

fn libc_sigalrm() -> i32 {
    14
}
