//! The syscall buffer (the preload library and the recorder's drain): every call it
//! buffers records and replays identically, the same program recorded without it
//! replays the same, and its hard cases hold — a buffer that overflows, records pending
//! at a fork, signals arriving while a loop makes only buffered calls, a program killed
//! with records in the buffer — and a tampered buffered event is refused.

use std::path::{Path, PathBuf};

use crate::common::*;
use trace::{Event, ExitStatus, SyscallEvent};

const EXITED_0: ExitStatus = ExitStatus::Exited(0);

/// Makes each call the library buffers, on a file and on /dev/null, and prints what the
/// program saw (so a replay that served a wrong result prints something else).
const EVERY_CALL: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    char buf[64];
    long nsec = 0;
    for (int i = 0; i < 200; i++) {
        int n = snprintf(buf, sizeof buf, "line %d\n", i);
        if (write(fd, buf, n) != n) return 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        nsec ^= ts.tv_nsec;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) return 2;
    long total = 0, got;
    while ((got = read(fd, buf, sizeof buf)) > 0) total += got;
    char p[5] = {0};
    if (pread(fd, p, 4, 5) != 4 || pwrite(fd, "L", 1, 0) != 1) return 3;
    struct timeval tv;
    gettimeofday(&tv, 0);
    time_t now = time(0), also;
    time(&also);
    int null = open("/dev/null", O_WRONLY);
    if (write(null, "zz", 2) != 2) return 4;
    printf("total %ld at5 %s pid %d ppid %d uid %d clocks %ld %ld %ld %ld\n", total, p,
           (int)getpid(), (int)getppid(), (int)getuid(), nsec, (long)tv.tv_usec,
           (long)now, (long)also);
    return 0;
}
"#;

/// The file the programs write, named by their first argument.
fn out_file(dir: &Path) -> String {
    dir.join("program.out").display().to_string()
}

fn syscalls(evs: &[Event]) -> impl Iterator<Item = &SyscallEvent> {
    evs.iter().filter_map(|e| match e {
        Event::Syscall(s) => Some(s),
        _ => None,
    })
}

fn buffered_names(evs: &[Event]) -> std::collections::BTreeSet<&'static str> {
    syscalls(evs)
        .filter(|s| s.is_buffered())
        .filter_map(|s| trace::sysno::name(s.nr))
        .collect()
}

/// Records `exe arg` in `dir/name` without the syscall buffer.
fn record_unbuffered(dir: &Path, name: &str, exe: &Path, arg: &str) -> (PathBuf, Vec<u8>) {
    let (rec, trace, out) = record_with(dir, name, exe, &[arg], |o| o.syscall_buffer = None);
    assert_eq!(rec.exit, EXITED_0);
    (trace, out)
}

#[test]
fn every_buffered_call_records_and_replays_identically() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "every", EVERY_CALL);
    let (rec, t, out) = record(d.path(), &exe, &[&out_file(d.path())]);
    assert_eq!(rec.exit, EXITED_0);
    let evs = events(&t);
    let names = buffered_names(&evs);
    for call in [
        "read",
        "write",
        "fstat",
        "lseek",
        "pread64",
        "pwrite64",
        "clock_gettime",
        "gettimeofday",
        "time",
        "getpid",
        "getppid",
        "getuid",
    ] {
        assert!(names.contains(call), "no buffered {call} in {names:?}");
    }
    // Each write to the file went through the buffer: no ptrace stop for any of them.
    let traced_writes = syscalls(&evs)
        .filter(|s| s.nr == libc::SYS_write as u64 && s.args[0] == 3 && !s.is_buffered())
        .count();
    assert_eq!(traced_writes, 0);
    for i in 0..20 {
        let o = replay(&t);
        assert_eq!(o.exit, Some(EXITED_0), "run {i}");
        assert_eq!(o.console, out, "run {i}");
        assert_eq!(o.events, evs.len() as u64, "run {i}");
    }
}

#[test]
fn the_same_program_recorded_without_the_buffer_replays_the_same() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "every", EVERY_CALL);
    let file = out_file(d.path());
    let (_, with, with_out) = record(d.path(), &exe, &[&file]);
    let (without, without_out) = record_unbuffered(d.path(), "plain", &exe, &file);
    let plain = events(&without);
    assert!(
        buffered_names(&plain).is_empty(),
        "nothing is buffered without the library"
    );
    // Times and pids differ between the two runs; the file the program read back does not.
    let field = |out: &[u8], key: &str| {
        let s = String::from_utf8_lossy(out).into_owned();
        let mut w = s.split_whitespace();
        w.position(|x| x == key)
            .and_then(|_| w.next().map(str::to_owned))
    };
    assert_eq!(field(&with_out, "total"), field(&without_out, "total"));
    assert_eq!(field(&with_out, "at5"), field(&without_out, "at5"));
    replays_identically(&with, &with_out, EXITED_0);
    replays_identically(&without, &without_out, EXITED_0);
    // The library asks once per descriptor (the file, /dev/null) whether it can wait.
    let checks = syscalls(&events(&with))
        .filter(|s| s.is_buffered() && s.nr == libc::SYS_fstat as u64)
        .count();
    assert_eq!(checks, 2);
}

/// 40 000 clock reads (about 80 bytes of buffer each) overflow the 1 MiB buffer: the
/// library makes its traced flush call and starts over.
const OVERFLOW: &str = r#"
#include <stdio.h>
#include <time.h>
int main(void) {
    long x = 0;
    for (int i = 0; i < 40000; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x += ts.tv_nsec & 1;
    }
    printf("odd %ld\n", x);
    return 0;
}
"#;

#[test]
fn a_buffer_that_overflows_is_flushed_and_replays() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "overflow", OVERFLOW);
    let (rec, t, out) = record(d.path(), &exe, &[]);
    assert_eq!(rec.exit, EXITED_0);
    let evs = events(&t);
    let flushes = syscalls(&evs)
        .filter(|s| s.nr == trace::sysno::SYSCALLBUF_FLUSH)
        .count();
    assert!(flushes >= 2, "{flushes} flushes");
    let clocks = syscalls(&evs)
        .filter(|s| s.nr == libc::SYS_clock_gettime as u64 && s.is_buffered())
        .count();
    assert_eq!(clocks, 40_000, "every clock read is in the trace, buffered");
    replays_identically(&t, &out, EXITED_0);
    // Without its flush the replayed library's traced call finds a buffered event.
    let dropped = d.path().join("dropped");
    let mut at = None;
    rewrite_all(
        &t,
        &dropped,
        |_| {},
        |i, e| match e {
            Event::Syscall(s) if s.nr == trace::sysno::SYSCALLBUF_FLUSH && at.is_none() => {
                at = Some(i);
                vec![]
            }
            other => vec![other],
        },
    );
    let why = refusal(&dropped);
    assert!(why.contains(&format!("event {}", at.unwrap())), "{why}");
}

/// Buffered writes pending when the parent forks; the child writes through its copy of
/// the buffer, then the parent again after waiting for it.
const FORK: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 50; i++) write(fd, "p", 1);
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 70; i++) write(fd, "c", 1);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    for (int i = 0; i < 30; i++) write(fd, "q", 1);
    printf("child %d\n", WEXITSTATUS(st));
    return 0;
}
"#;

#[test]
fn records_pending_at_a_fork_belong_to_the_parent_and_replay() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "fork", FORK);
    let (rec, t, out) = record(d.path(), &exe, &[&out_file(d.path())]);
    assert_eq!(rec.exit, EXITED_0);
    assert_eq!(std::fs::read(out_file(d.path())).unwrap().len(), 150);
    let evs = events(&t);
    let tree = trace::tasks::TaskTree::of(&evs, trace::FORMAT_VERSION);
    let mut by_process = std::collections::BTreeMap::<usize, Vec<u8>>::new();
    for (i, e) in evs.iter().enumerate() {
        if let Event::Syscall(s) = e {
            if s.is_buffered() && s.nr == libc::SYS_write as u64 {
                let byte = s
                    .output
                    .as_ref()
                    .and_then(|o| o.bytes.as_ref())
                    .map(|_| s.args[2]);
                assert_eq!(byte, Some(1));
                by_process
                    .entry(tree.process_of_event(i as u64))
                    .or_default()
                    .push(0);
            }
        }
    }
    let counts: Vec<usize> = by_process.values().map(Vec::len).collect();
    assert_eq!(
        counts,
        vec![80, 70],
        "parent's 50 + 30 writes, the child's 70"
    );
    replays_identically(&t, &out, EXITED_0);
}

/// A loop of buffered clock reads that only ends when three SIGALRMs have been handled:
/// signals reach it at the traced flush calls, and the handler's own write, made while
/// the interrupted call holds the buffer, takes the traced path.
const SIGNALS: &str = r#"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t hits;
static int fd;
static void on_alarm(int s) { (void)s; hits++; write(fd, "!", 1); }
int main(int argc, char **argv) {
    (void)argc;
    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    signal(SIGALRM, on_alarm);
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &it, 0);
    long reads = 0;
    while (hits < 3) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        reads++;
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    printf("hits %d after %ld reads\n", (int)hits, reads);
    return 0;
}
"#;

#[test]
fn signals_during_a_loop_of_buffered_calls_are_delivered_and_replay() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "signals", SIGNALS);
    let (rec, t, out) = record(d.path(), &exe, &[&out_file(d.path())]);
    assert_eq!(rec.exit, EXITED_0);
    assert!(rec.signals >= 3, "{} signals", rec.signals);
    let evs = events(&t);
    // Delivered at the flush, inside the library: the handler's write went traced.
    let handler_writes = syscalls(&evs)
        .filter(|s| s.nr == libc::SYS_write as u64 && s.args[2] == 1 && !s.is_buffered())
        .count();
    assert!(
        handler_writes >= 3,
        "{handler_writes} traced handler writes"
    );
    replays_identically(&t, &out, EXITED_0);
}

/// Copies `t` to `to` with the `n`th buffered event passed through `edit`.
fn tamper_buffered(t: &Path, to: &Path, n: usize, edit: impl Fn(&mut SyscallEvent)) -> u64 {
    let mut seen = 0;
    let mut at = None;
    rewrite(t, to, |i, e| match e {
        Event::Syscall(mut s) if s.is_buffered() => {
            if seen == n {
                edit(&mut s);
                at = Some(i);
            }
            seen += 1;
            Event::Syscall(s)
        }
        other => other,
    });
    at.expect("that many buffered events")
}

#[test]
fn a_tampered_buffered_event_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "every", EVERY_CALL);
    let (_, t, _) = record(d.path(), &exe, &[&out_file(d.path())]);
    // Another count for a buffered write: the replayed program asks for the real one.
    let counted = d.path().join("counted");
    let at = tamper_buffered(&t, &counted, 1, |s| s.args[2] += 1);
    let why = refusal(&counted);
    assert!(why.contains(&format!("event {at}")), "{why}");
    // A buffered call moved elsewhere: the replayed one is made from the untraced entry.
    let moved = d.path().join("moved");
    let at = tamper_buffered(&t, &moved, 5, |s| s.rip = trace::RemoteAddr(s.rip.0 + 0x10));
    let why = refusal(&moved);
    assert!(why.contains(&format!("event {at}")), "{why}");
}

/// Buffered writes still in the buffer when the program execs another: the exec filter
/// stops the execve, and the recorder drains them before the old image is gone.
const EXEC: &str = r#"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 40; i++) write(fd, "e", 1);
    execl("/bin/echo", "echo", "after exec", (char *)0);
    return 1;
}
"#;

#[test]
fn records_pending_at_an_exec_are_drained_before_it() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "exec", EXEC);
    let (rec, t, out) = record(d.path(), &exe, &[&out_file(d.path())]);
    assert_eq!(rec.exit, EXITED_0);
    assert_eq!(out, b"after exec\n");
    let evs = events(&t);
    let exec_at = evs
        .iter()
        .position(|e| matches!(e, Event::Exec(_)))
        .expect("an exec event");
    let before = syscalls(&evs[..exec_at])
        .filter(|s| s.is_buffered() && s.nr == libc::SYS_write as u64)
        .count();
    assert_eq!(
        before, 40,
        "every write before the exec is recorded before it"
    );
    replays_identically(&t, &out, EXITED_0);
}

#[test]
fn programs_a_shell_runs_are_buffered_and_never_see_the_library() {
    let d = tempfile::tempdir().unwrap();
    let file = out_file(d.path());
    let script = format!("dd if=/dev/zero of={file} bs=1k count=20 2>/dev/null; env");
    let (rec, t, out) = record(d.path(), "/bin/sh", &["-c", &script]);
    assert_eq!(rec.exit, EXITED_0);
    let env = String::from_utf8_lossy(&out);
    assert!(env.contains("PATH="), "{env}");
    assert!(!env.contains("LD_PRELOAD"), "the library shows: {env}");
    let evs = events(&t);
    let tree = trace::tasks::TaskTree::of(&evs, trace::FORMAT_VERSION);
    let in_children = evs
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            matches!(e, Event::Syscall(s) if s.is_buffered() && s.nr == libc::SYS_write as u64)
                && tree.process_of_event(*i as u64) != 0
        })
        .count();
    assert!(
        in_children >= 20,
        "dd's 20 writes are buffered: {in_children}"
    );
    replays_identically(&t, &out, EXITED_0);
}
