//! A program killed from outside with SIGKILL while it was recorded: the replay runs to
//! the last recorded event, ends with the same SIGKILL and the same output, and the
//! timeline's end agrees with it.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::common::*;
use replayer::{Position, StopReason, Timeline};
use trace::{Event, ExitStatus};

const RUNS: usize = 3;
const SIGKILL: ExitStatus = ExitStatus::Signaled {
    signo: 9,
    core: false,
};

/// Prints its pid, then sleeps in clock_nanosleep until killed.
const SLEEPER: &str = r#"
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    struct timespec t = { 60, 0 };
    clock_nanosleep(CLOCK_MONOTONIC, 0, &t, 0);
    printf("woke up\n");
    return 0;
}
"#;

/// Prints its pid, then spins in user code without a system call until killed.
const SPINNER: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    volatile unsigned long n = 0;
    for (;;) n++;
}
"#;

/// Prints its pid, then reads the clock and appends to a file, both through the syscall
/// buffer, until killed: the kill finds records in the buffer.
const BUFFERED_SPINNER: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        write(fd, "x", 1);
    }
}
"#;

/// Records `exe` with its stdout on a pipe; once it printed its pid, sends it SIGKILL from
/// outside (kill(1)). Returns the trace and everything it printed.
fn record_killed(dir: &Path, exe: &Path, settle: std::time::Duration) -> (PathBuf, Vec<u8>) {
    record_killed_with(dir, exe, &[], None, settle)
}

/// As `record_killed`, with arguments and the syscall buffer's library.
fn record_killed_with(
    dir: &Path,
    exe: &Path,
    args: &[&str],
    preload: Option<PathBuf>,
    settle: std::time::Duration,
) -> (PathBuf, Vec<u8>) {
    let (rd, wr) = std::io::pipe().unwrap();
    let t = dir.join("trace");
    let mut opts = recorder::RecordOptions::new(exe.as_os_str(), args.iter().copied());
    opts.syscall_buffer = preload;
    opts.out_dir = Some(t.clone());
    opts.stdout = Some(wr.into());
    opts.timeout = Some(std::time::Duration::from_secs(30));
    let recording = std::thread::spawn(move || {
        let r = recorder::record(&opts);
        drop(opts);
        r
    });
    let mut rd = std::io::BufReader::new(rd);
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    let pid = line
        .trim()
        .strip_prefix("pid ")
        .unwrap_or_else(|| panic!("no pid line: {line:?}"));
    // Into the sleep, or well into the loop.
    std::thread::sleep(settle);
    let kill = std::process::Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let rec = recording.join().unwrap().expect("the recording succeeds");
    assert_eq!(rec.exit, SIGKILL);
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut rd, &mut rest).unwrap();
    let mut out = line.into_bytes();
    out.extend(rest);
    (t, out)
}

#[track_caller]
fn replays_to_sigkill(trace: &Path, stdout: &[u8]) {
    for i in 0..RUNS {
        let out = replay(trace);
        assert_eq!(out.exit, Some(SIGKILL), "run {i}: end differs");
        assert_eq!(
            out.console,
            stdout,
            "run {i}: console differs: {:?}",
            String::from_utf8_lossy(&out.console)
        );
        assert_eq!(out.events, events(trace).len() as u64, "run {i}");
    }
}

/// The timeline ends where `replay` does: the end is the position after the exit, and
/// its last live point is the boundary before the exit event.
#[track_caller]
fn timeline_agrees(trace: &Path) {
    let n = events(trace).len() as u64;
    let mut tl = Timeline::open(trace).unwrap();
    assert_eq!(tl.seek_end().unwrap(), StopReason::Exited(SIGKILL));
    assert_eq!(tl.position().unwrap(), Position::event(n));
    assert_eq!(tl.exited(), Some(SIGKILL));
    tl.seek_last_live().unwrap();
    assert_eq!(tl.position().unwrap(), Position::event(n - 1));
    assert!(tl.regs().is_ok());
    tl.seek(&Position::event(n)).unwrap();
    assert_eq!(tl.exited(), Some(SIGKILL));
    assert_eq!(tl.step_forward().unwrap(), StopReason::Exited(SIGKILL));
}

#[test]
fn killed_in_clock_nanosleep_replays_to_sigkill() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "sleeper", SLEEPER);
    let (t, out) = record_killed(d.path(), &exe, std::time::Duration::from_millis(200));
    assert!(out.starts_with(b"pid ") && !out.ends_with(b"woke up\n"));
    let evs = events(&t);
    // The recorder appends the call the tracee died in with -EINTR, then the exit.
    match &evs[evs.len() - 2] {
        Event::Syscall(s) => {
            assert_eq!(s.nr, libc::SYS_clock_nanosleep as u64);
            assert_eq!(s.ret, -(libc::EINTR as i64));
        }
        other => panic!("expected clock_nanosleep before the exit, found {other:?}"),
    }
    assert_eq!(evs.last(), Some(&Event::Exit(SIGKILL)));
    replays_to_sigkill(&t, &out);
    timeline_agrees(&t);
}

#[test]
fn killed_while_spinning_in_user_code_replays_to_sigkill() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "spinner", SPINNER);
    let (t, out) = record_killed(d.path(), &exe, std::time::Duration::from_millis(300));
    let evs = events(&t);
    assert!(
        matches!(&evs[evs.len() - 2], Event::Syscall(s) if s.nr == libc::SYS_write as u64),
        "the last call before the kill is the write of the pid: {:?}",
        &evs[evs.len() - 2]
    );
    assert_eq!(evs.last(), Some(&Event::Exit(SIGKILL)));
    replays_to_sigkill(&t, &out);
    timeline_agrees(&t);
}

#[test]
fn killed_with_records_in_the_syscall_buffer_replays_to_sigkill() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "buffered_spinner", BUFFERED_SPINNER);
    let file = d.path().join("spin.out");
    let preload = testsupport::umk::preload_library().to_path_buf();
    let (t, out) = record_killed_with(
        d.path(),
        &exe,
        &[&file.display().to_string()],
        Some(preload),
        std::time::Duration::from_millis(200),
    );
    let evs = events(&t);
    let buffered = evs
        .iter()
        .filter(|e| matches!(e, Event::Syscall(s) if s.is_buffered()))
        .count();
    assert!(
        buffered > 1000,
        "only {buffered} buffered calls before the kill"
    );
    assert_eq!(evs.last(), Some(&Event::Exit(SIGKILL)));
    replays_to_sigkill(&t, &out);
    timeline_agrees(&t);
}
