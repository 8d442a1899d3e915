//! A trace has no power over the host: the replayer runs the program under its own
//! seccomp filter, never the one a trace header carries, and the system calls that really
//! run in the replayed program — seen by the kernel's raw_syscalls tracepoint through
//! `perf`, since strace cannot attach to a traced process — are only the reviewed few.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testsupport::{cc, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

/// Creates a file, removes another, writes to both, and connects to a unix socket: every
/// one of these must stay in the recording at replay.
const BUSY: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    int fd = open(argv[1], O_CREAT | O_WRONLY | O_TRUNC, 0644);
    write(fd, "created\n", 8);
    close(fd);
    unlink(argv[2]);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a; memset(&a, 0, sizeof a); a.sun_family = AF_UNIX;
    strncpy(a.sun_path, argv[3], sizeof a.sun_path - 1);
    int c = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("fd %d connect %d\n", fd, c);
    return 0;
}
"#;

struct Recorded {
    _d: Scratch,
    trace: PathBuf,
    created: PathBuf,
    victim: PathBuf,
    socket: PathBuf,
    stdout: String,
}

/// Records BUSY with a live listener, then removes everything it touched.
fn record_busy() -> Recorded {
    let d = Scratch::new("host");
    let exe = cc(&d.path(""), "busy", BUSY);
    let created = d.path("created.txt");
    let victim = d.path("victim.txt");
    let socket = d.path("sock");
    std::fs::write(&victim, "keep me\n").unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let trace = d.path("trace");
    let out = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&trace)
        .arg("--")
        .arg(&exe)
        .args([&created, &victim, &socket])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.ends_with("connect 0\n"), "{stdout}");
    assert!(created.exists() && !victim.exists());
    drop(listener);
    std::fs::remove_file(&socket).unwrap();
    std::fs::remove_file(&created).unwrap();
    std::fs::write(&victim, "keep me\n").unwrap();
    Recorded {
        _d: d,
        trace,
        created,
        victim,
        socket,
        stdout,
    }
}

impl Recorded {
    /// A replay that succeeded, printed what was recorded and touched nothing.
    fn replayed_untouched(&self, out: &std::process::Output) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), self.stdout);
        self.host_untouched();
    }

    /// No file created, the victim intact, nobody listening or connected.
    fn host_untouched(&self) {
        assert!(
            !self.created.exists(),
            "the replay created {:?}",
            self.created
        );
        assert_eq!(std::fs::read_to_string(&self.victim).unwrap(), "keep me\n");
        assert!(!self.socket.exists());
    }
}

/// Copies `from` to `to` with `edit` applied to the header.
fn with_header(from: &Path, to: &Path, edit: impl FnOnce(&mut trace::Header)) {
    let r = trace::TraceReader::open(from).unwrap();
    let mut h = r.header().clone();
    edit(&mut h);
    let mut w = trace::TraceWriter::create(to).unwrap();
    w.write_header(&h).unwrap();
    for e in r.events().unwrap() {
        w.append(&e.unwrap().1).unwrap();
    }
    for entry in std::fs::read_dir(from.join("blobs")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("blobs").join(entry.file_name())).unwrap();
    }
    w.finish().unwrap();
}

/// A classic BPF instruction as the header stores it (code, jt, jf, k).
fn bpf(code: u64, jt: u64, jf: u64, k: u64) -> u64 {
    code | jt << 16 | jf << 24 | k << 32
}
const RET: u64 = 0x06;
const SECCOMP_RET_ALLOW: u64 = 0x7fff_0000;
const SECCOMP_RET_TRACE: u64 = 0x7ff0_0000;

fn refused_quickly(trace: &Path, command: &[&str]) -> String {
    let mut cmd = Command::new(REWIND);
    cmd.args(command).arg(trace);
    // run_with_timeout fails the test if the command hangs.
    let out = testsupport::run_with_timeout(cmd, Duration::from_secs(20), None);
    assert!(
        !out.status.success(),
        "{command:?} accepted {}",
        trace.display()
    );
    out.stderr
}

#[test]
fn a_header_filter_that_allows_everything_or_traps_execve_is_refused() {
    let r = record_busy();
    let allow_all = r._d.path("allow-all");
    with_header(&r.trace, &allow_all, |h| {
        h.seccomp_filter = vec![bpf(RET, 0, 0, SECCOMP_RET_ALLOW)];
    });
    let trap_exec = r._d.path("trap-execve");
    with_header(&r.trace, &trap_exec, |h| {
        h.seccomp_filter = vec![
            bpf(0x20, 0, 0, 0),                // ld [nr]
            bpf(0x15, 0, 1, 59),               // jeq execve
            bpf(RET, 0, 0, SECCOMP_RET_TRACE), // trace
            bpf(RET, 0, 0, SECCOMP_RET_ALLOW), // allow
        ];
    });
    for t in [&allow_all, &trap_exec] {
        for cmd in [&["replay"][..], &["analyze", "locks"]] {
            let err = refused_quickly(t, cmd);
            assert!(err.contains("system call filter"), "{cmd:?}: {err}");
            r.host_untouched();
        }
    }
    // The untouched trace still replays, and still touches nothing.
    let out = Command::new(REWIND)
        .arg("replay")
        .arg(&r.trace)
        .output()
        .unwrap();
    r.replayed_untouched(&out);
}

/// The calls a replayed program may really make: what the filter lets through (memory
/// layout, signal set-up), what the replayer executes on purpose (rt_sigaction, the exit,
/// an anonymous stand-in for a file mapping and its mprotect), and what it injects
/// (arch_prctl for CPUID faulting, seccomp for the filter that stops every later execve,
/// which only adds stops). Everything else is cancelled at its seccomp stop and
/// never reaches sys_enter.
const REVIEWED: &[&str] = &[
    "mprotect",
    "munmap",
    "brk",
    "madvise",
    "mremap",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "arch_prctl",
    "seccomp",
    "set_robust_list",
    "sigaltstack",
    "mmap",
    "rt_sigaction",
    "exit",
    "exit_group",
];

#[test]
fn only_the_reviewed_system_calls_really_run_during_replay() {
    if Command::new("perf").arg("--version").output().is_err() {
        panic!("perf is needed (Debian: linux-perf); .ci/run installs it");
    }
    let r = record_busy();
    let data = r._d.path("perf.data");
    let out = Command::new("perf")
        .args(["record", "-q", "-e", "raw_syscalls:sys_enter", "-o"])
        .arg(&data)
        .arg("--")
        .arg(REWIND)
        .arg("replay")
        .arg(&r.trace)
        .output()
        .unwrap();
    r.replayed_untouched(&out);
    let script = Command::new("perf")
        .args(["script", "-F", "comm,trace", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        script.status.success(),
        "{}",
        String::from_utf8_lossy(&script.stderr)
    );
    // After its exec the tracee is `busy`; before, the replayer's forked child.
    let mut seen = BTreeSet::new();
    for line in String::from_utf8_lossy(&script.stdout).lines() {
        let mut f = line.split_whitespace();
        if f.next() != Some("busy") {
            continue;
        }
        // `busy NR 158 (…)`: the tracepoint's id field.
        let nr: u64 = f
            .skip_while(|w| *w != "NR")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no NR in {line:?}"));
        seen.insert(trace::sysno::name(nr).map_or(format!("#{nr}"), str::to_owned));
    }
    assert!(
        seen.contains("exit_group"),
        "perf saw none of the tracee's calls: {seen:?}"
    );
    let extra: Vec<&String> = seen
        .iter()
        .filter(|n| !REVIEWED.contains(&n.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "calls outside the reviewed list ran: {extra:?} (all: {seen:?})"
    );
}
