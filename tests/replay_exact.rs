//! Replays that used to be silently wrong, through the real `rewind` command: the
//! environment in its order, output sent by any call (copy_file_range, sendfile, pwrite),
//! signals landing in loops that make no system call, the signal state a program
//! inherits, and the net under all of them — a trace whose recorded output bytes were
//! altered is refused at that event.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testsupport::{cc, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");
/// The interpreter itself: a `python3` found first in PATH may be a pyenv shim, a shell
/// script that execs the real one (a second exec, which the recorder refuses).
const PYTHON: &str = "/usr/bin/python3";

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rewind record -o DIR -- PROGRAM ARGS…`, started by `launcher` (e.g. `env -i …`), with
/// stdout to a file; returns the trace and what the program printed.
fn record(d: &Scratch, name: &str, launcher: &[&str], program: &[&str]) -> (PathBuf, Vec<u8>) {
    let t = d.path(&format!("{name}.trace"));
    let out_file = d.path(&format!("{name}.out"));
    let mut cmd = match launcher.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(REWIND);
            c
        }
        None => Command::new(REWIND),
    };
    let out = cmd
        .args(["record", "-o"])
        .arg(&t)
        .arg("--")
        .args(program)
        .stdout(std::fs::File::create(&out_file).unwrap())
        .output()
        .unwrap();
    ok(&out, "record");
    (t, std::fs::read(&out_file).unwrap())
}

/// `rewind replay TRACE` with stdout to a file (a file, as when recorded, so programs
/// that pick their calls by the kind of stdout make the same ones); returns it.
fn replay(d: &Scratch, t: &Path) -> Vec<u8> {
    let f = d.path("replay.out");
    let out = Command::new(REWIND)
        .arg("replay")
        .arg(t)
        .stdout(std::fs::File::create(&f).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    ok(&out, "replay");
    std::fs::read(&f).unwrap()
}

fn replays_identically(d: &Scratch, t: &Path, recorded: &[u8], times: usize) {
    for i in 0..times {
        let got = replay(d, t);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(recorded),
            "replay {i} of {}",
            t.display()
        );
    }
}

/// Execs `argv[2..]` with the environment `argv[1]` (entries separated by `;`), as
/// given: env(1) would drop the duplicate.
const EXECENV: &str = r#"
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    char *env[16]; int n = 0;
    for (char *e = strtok(argv[1], ";"); e && n < 15; e = strtok(0, ";")) env[n++] = e;
    env[n] = 0;
    execve(argv[2], argv + 2, env);
    return 127;
}
"#;

#[test]
fn the_environment_and_argv_reach_the_program_byte_for_byte_in_order() {
    let d = Scratch::new("exact-env");
    let execenv = cc(&d.path(""), "execenv", EXECENV);
    // Unsorted, with a duplicate name and an empty value.
    let launcher = [
        execenv.to_str().unwrap(),
        "ZED=1;ALPHA=2;ZED=3;MID=;PATH=/usr/bin:/bin",
    ];
    let (t, out) = record(&d, "env", &launcher, &["/usr/bin/env"]);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "ZED=1\nALPHA=2\nZED=3\nMID=\nPATH=/usr/bin:/bin\n"
    );
    replays_identically(&d, &t, &out, 3);
    let (t, out) = record(&d, "sh", &launcher, &["/bin/sh", "-c", "echo hi \"$ZED\""]);
    assert_eq!(out, b"hi 3\n");
    replays_identically(&d, &t, &out, 3);
    let (t, out) = record(
        &d,
        "bash",
        &launcher,
        &["/bin/bash", "-c", "for i in 1 2 3; do echo $RANDOM; done"],
    );
    assert_eq!(out.split(|&b| b == b'\n').count(), 4, "{out:?}");
    replays_identically(&d, &t, &out, 3);
}

#[test]
fn output_sent_by_copy_file_range_sendfile_and_pwrite_reaches_the_replay() {
    let d = Scratch::new("exact-output");
    let input = d.path("input.txt");
    let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &text).unwrap();
    // coreutils cat copies with copy_file_range when stdout is a file.
    let (t_cat, out) = record(&d, "cat", &[], &["cat", input.to_str().unwrap()]);
    assert_eq!(out, text.as_bytes());
    let dump = Command::new(REWIND)
        .arg("dump")
        .arg(&t_cat)
        .output()
        .unwrap();
    ok(&dump, "dump");
    assert!(
        String::from_utf8_lossy(&dump.stdout).contains("copy_file_range"),
        "cat did not use copy_file_range here, so this test checks nothing new"
    );
    let py = "import os,sys\nf=os.open(sys.argv[1],os.O_RDONLY)\nn=os.sendfile(1,f,0,300)\n\
              os.write(1,b'|%d\\n'%n)\n";
    let script = d.path("send.py");
    std::fs::write(&script, py).unwrap();
    let (t_py, out_py) = record(
        &d,
        "sendfile",
        &[],
        &[PYTHON, script.to_str().unwrap(), input.to_str().unwrap()],
    );
    assert_eq!(&out_py[..300], &text.as_bytes()[..300]);
    let src = "#include <unistd.h>\nint main(void){ write(1, \"a\\n\", 2);\n\
               return pwrite(1, \"b\\n\", 2, 2) == 2 ? 0 : 1; }\n";
    let exe = cc(&d.path(""), "pwrite", src);
    let (t_pw, out_pw) = record(&d, "pwrite", &[], &[exe.to_str().unwrap()]);
    assert_eq!(out_pw, b"a\nb\n");
    // The replay needs none of the files.
    std::fs::remove_file(&input).unwrap();
    std::fs::remove_file(&script).unwrap();
    replays_identically(&d, &t_cat, &out, 2);
    replays_identically(&d, &t_py, &out_py, 2);
    replays_identically(&d, &t_pw, &out_pw, 2);
}

/// A SIGALRM handler counting into a global while main spins without system calls, then
/// a `while (!flag);` that only the handler can end: loops that change nothing until a
/// signal does, where a signal is placed by registers and state digest.
const SPIN: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
static volatile int alarms, flag;
static void on_alarm(int s) { (void)s; if (++alarms == 8) flag = 1; }
int main(void) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 3000}, {0, 3000}};
    setitimer(ITIMER_REAL, &it, 0);
    while (alarms < 6) ;
    while (!flag) ;
    printf("alarms %d\n", alarms);
    return 0;
}
"#;

/// The same handler while main does work without system calls, its passes told apart
/// only by memory: a branch counter would be needed to place the signal.
const WORK: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
static volatile unsigned long spins;
static volatile int alarms;
static void on_alarm(int s) { (void)s; alarms++; }
int main(void) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 3000}, {0, 3000}};
    setitimer(ITIMER_REAL, &it, 0);
    while (alarms < 6) spins++;
    printf("spins %lu\n", spins);
    return 0;
}
"#;

#[test]
fn signals_in_loops_without_system_calls_replay_exactly_or_are_refused() {
    let d = Scratch::new("exact-spin");
    let exe = cc(&d.path(""), "spin", SPIN);
    let (t, out) = record(&d, "spin", &[], &[exe.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out), "alarms 8\n");
    let dump = Command::new(REWIND).arg("dump").arg(&t).output().unwrap();
    let placed = String::from_utf8_lossy(&dump.stdout)
        .matches("at registers")
        .count();
    assert!(placed >= 6, "only {placed} signals placed by registers");
    replays_identically(&d, &t, &out, 20);

    // Placing by registers alone would land in another pass and print another count.
    let exe = cc(&d.path(""), "work", WORK);
    let t = d.path("work.trace");
    let rec = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&t)
        .arg("--")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(!rec.status.success(), "the work loop recorded: {rec:?}");
    let err = String::from_utf8_lossy(&rec.stderr);
    assert!(
        err.contains("SIGALRM held for") && err.contains("cannot be placed where a replay would"),
        "{err}"
    );
    // The trace is closed at the refusal, and its replay says where it ends.
    let rep = Command::new(REWIND).arg("replay").arg(&t).output().unwrap();
    assert!(!rep.status.success());
    assert!(
        String::from_utf8_lossy(&rep.stderr).contains("SIGALRM held for"),
        "{rep:?}"
    );
}

/// Prints whether SIGUSR1 is blocked and SIGUSR2 ignored, as the program finds them
/// (rt_sigprocmask and rt_sigaction run for real at replay too).
const SIGSTATE: &str = r#"
#include <signal.h>
#include <stdio.h>
int main(void) {
    sigset_t set; sigprocmask(SIG_BLOCK, 0, &set);
    struct sigaction old; sigaction(SIGUSR2, 0, &old);
    printf("usr1 blocked %d usr2 ignored %d\n", sigismember(&set, SIGUSR1),
           old.sa_handler == SIG_IGN);
    return 0;
}
"#;

/// Blocks SIGUSR1, ignores SIGUSR2, then execs its arguments: what nohup, `trap ''` and
/// a shell's background jobs hand down.
const LAUNCHER: &str = r#"
#include <signal.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, 0);
    signal(SIGUSR2, SIG_IGN);
    execvp(argv[1], argv + 1);
    return 127;
}
"#;

#[test]
fn an_inherited_blocked_mask_and_sig_ign_are_restored_at_replay() {
    let d = Scratch::new("exact-sigstate");
    let prog = cc(&d.path(""), "sigstate", SIGSTATE);
    let launcher = cc(&d.path(""), "launcher", LAUNCHER);
    let (t, out) = record(
        &d,
        "sigstate",
        &[launcher.to_str().unwrap()],
        &[prog.to_str().unwrap()],
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "usr1 blocked 1 usr2 ignored 1\n"
    );
    // Replayed from a process that blocks and ignores nothing.
    replays_identically(&d, &t, &out, 3);
}

#[test]
fn altered_output_bytes_in_a_trace_are_refused_at_that_event() {
    let d = Scratch::new("exact-tamper");
    let src = "#include <unistd.h>\nint main(void){ write(1, \"hello\\n\", 6); return 0; }\n";
    let exe = cc(&d.path(""), "hello", src);
    let (t, out) = record(&d, "hello", &[], &[exe.to_str().unwrap()]);
    assert_eq!(out, b"hello\n");
    let r = trace::TraceReader::open(&t).unwrap();
    let events: Vec<(u64, trace::Event)> = r.events().unwrap().map(|e| e.unwrap()).collect();
    let write = trace::sysno::number("write").unwrap();
    let at = events
        .iter()
        .find(|(_, e)| matches!(e, trace::Event::Syscall(s) if s.nr == write && s.args[0] == 1))
        .map(|(i, _)| *i)
        .expect("the write to stdout is recorded");
    let bad = d.path("bad");
    let mut w = trace::TraceWriter::create(&bad).unwrap();
    w.write_header(r.header()).unwrap();
    for (i, e) in events {
        let e = match e {
            trace::Event::Syscall(mut s) if i == at => {
                let o = s.output.as_mut().expect("the write's output is recorded");
                o.bytes = Some(trace::Data::Inline(b"jello\n".to_vec()));
                trace::Event::Syscall(s)
            }
            e => e,
        };
        w.append(&e).unwrap();
    }
    for entry in std::fs::read_dir(t.join("blobs")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), bad.join("blobs").join(entry.file_name())).unwrap();
    }
    w.finish().unwrap();
    let out = Command::new(REWIND)
        .arg("replay")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("at event {at}"))
            && err.contains("write(0x1")
            && err.contains("byte 0 of what it sends is 0x68 'h', the recording's is 0x6a 'j'"),
        "{err}"
    );
    // Nothing of the altered output reached the replay's stdout.
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ello"),
        "{out:?}"
    );
}
