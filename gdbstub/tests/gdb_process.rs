//! The real gdb on one process of a recording that forked (`rewind gdb -p`, rr's
//! `replay -p`): a C program whose parent and child both call `work`, the child three
//! times and the parent twice. On the child, a breakpoint on `work` stops three times
//! forward and three times backward, always in the child (its `role` is 1), and a
//! reverse-stepi from `work`'s entry lands on the child's call; on the whole recording
//! the same breakpoint stops five times. The programs are position-independent: gdb
//! relocates their symbols from the recorded auxiliary vector the stub serves.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use rewind_gdb::{Server, ServerOptions};

const PROGRAM: &str = "#include <unistd.h>\n#include <sys/wait.h>\n\
    int role, calls;\n\
    __attribute__((noinline)) void work(int i) { calls += i; write(1, \"w\\n\", 2); }\n\
    int main(void) { pid_t c = fork(); role = (c == 0);\n\
      if (c == 0) { for (int i = 0; i < 3; i++) work(i); _exit(0); }\n\
      for (int i = 10; i < 12; i++) work(i);\n\
      waitpid(c, 0, 0); return 0; }\n";

/// The recording (made once), the program, and the child's pid as `rewind ps` lists it.
fn forked() -> &'static (tempfile::TempDir, PathBuf, PathBuf, u32) {
    static ONCE: OnceLock<(tempfile::TempDir, PathBuf, PathBuf, u32)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let exe = testsupport::host::cc_with(d.path(), "forkwork", PROGRAM, &["-g"]);
        let (rec, t, out) = testsupport::record::record(d.path(), &exe, &[]);
        assert_eq!(rec.exit, trace::ExitStatus::Exited(0));
        assert_eq!(out, b"w\nw\nw\nw\nw\n");
        let tree = trace::TaskTree::of(&testsupport::record::events(&t), trace::FORMAT_VERSION);
        assert_eq!(tree.processes.len(), 2, "{tree:?}");
        let child = tree.processes[1].pid.expect("the child's pid");
        (d, t, exe, child)
    })
}

/// gdb in batch mode with `cmds` against a stub on the recording, on `process` if given.
fn gdb(process: Option<u32>, cmds: &[&str]) -> String {
    let (_, trace, exe, _) = forked();
    let mut opts = ServerOptions::local(trace.clone(), 0);
    opts.process = process;
    let (out, binary) = common::gdb_session(opts, cmds);
    assert_eq!(&binary, exe, "gdb loads the program the process runs");
    out
}

/// The values gdb printed for `print EXPR` lines, in order (`$N = V`).
fn printed(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v.to_string()))
        .collect()
}

/// `print role` and `print i` after each of `n` `continue`s (or reverse-continues).
fn hits(dir: &str, n: usize) -> Vec<String> {
    let mut c = Vec::new();
    for _ in 0..n {
        c.extend([dir.to_string(), "print role".into(), "print i".into()]);
    }
    c
}

#[test]
fn a_breakpoint_on_one_process_stops_only_in_it_both_ways() {
    let child = forked().3;
    let mut cmds: Vec<String> = vec!["break work".into()];
    cmds.extend(hits("continue", 3));
    cmds.push("continue".into());
    cmds.extend(hits("reverse-continue", 3));
    cmds.push("reverse-stepi".into());
    cmds.push("print role".into());
    cmds.push("print $pc == work".into());
    cmds.push("stepi".into());
    cmds.push("print $pc == work".into());
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let out = gdb(Some(child), &cmds);
    let expected = [
        "1", "0", "1", "1", "1", "2", // forward: the child's three calls
        "1", "2", "1", "1", "1", "0", // backward: the same, last first
        "1", "0", "1", // the call in the child, then work's entry again
    ];
    assert_eq!(printed(&out), expected, "{out}");
    assert!(out.contains("No more reverse-execution history"), "{out}");
}

#[test]
fn without_a_process_the_same_breakpoint_stops_in_both() {
    let cmds = hits("continue", 5);
    let mut cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    cmds.insert(0, "break work");
    let out = gdb(None, &cmds);
    let v = printed(&out);
    let roles: Vec<&str> = v.iter().step_by(2).map(String::as_str).collect();
    assert_eq!(roles.iter().filter(|r| **r == "1").count(), 3, "{out}");
    assert_eq!(roles.iter().filter(|r| **r == "0").count(), 2, "{out}");
}

#[test]
fn a_pid_the_recording_does_not_have_is_refused_naming_ps() {
    let (_, trace, _, _) = forked();
    let mut opts = ServerOptions::local(trace.clone(), 0);
    opts.process = Some(1);
    let err = match Server::open(&opts) {
        Ok(_) => panic!("pid 1 accepted"),
        Err(e) => {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            text
        }
    };
    assert!(
        err.contains("no process or thread 1") && err.contains("rewind ps"),
        "{err}"
    );
}

const THREADED: &str = "#include <pthread.h>\n#include <unistd.h>\n\
    static pthread_barrier_t b;\n\
    __attribute__((noinline)) void parked(void) { pthread_barrier_wait(&b); }\n\
    static void *worker(void *a) { parked(); return a; }\n\
    __attribute__((noinline)) void all_started(void) { write(1, \"x\\n\", 2); }\n\
    int main(void) { pthread_t t[2]; pthread_barrier_init(&b, 0, 3);\n\
      for (int i = 0; i < 2; i++) pthread_create(&t[i], 0, worker, 0);\n\
      usleep(100000); all_started(); pthread_barrier_wait(&b);\n\
      for (int i = 0; i < 2; i++) pthread_join(t[i], 0); return 0; }\n";

/// A pthread program's threads are gdb's: stopped in `all_started`, main runs and the
/// two workers wait in the barrier, each with its own backtrace through `parked`.
#[test]
fn a_threaded_programs_threads_are_gdb_threads_with_their_own_stacks() {
    let d = tempfile::tempdir().unwrap();
    let exe = testsupport::host::cc_with(d.path(), "threads", THREADED, &["-g"]);
    let (rec, t, out) = testsupport::record::record(d.path(), &exe, &[]);
    assert_eq!(rec.exit, trace::ExitStatus::Exited(0));
    assert_eq!(out, b"x\n");
    let tree = trace::TaskTree::of(&testsupport::record::events(&t), trace::FORMAT_VERSION);
    let tids: Vec<u32> = tree.tasks.iter().filter_map(|t| t.tid).collect();
    assert_eq!(tids.len(), 3, "{tree:?}");
    let (out, _) = common::gdb_session(
        ServerOptions::local(t, 0),
        &[
            "break all_started",
            "continue",
            "info threads",
            "thread apply all bt",
        ],
    );
    for tid in &tids {
        assert!(
            out.contains(&format!("Thread 1.{tid} ")),
            "no thread {tid}\n{out}"
        );
    }
    let current: Vec<&str> = out.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(current.len(), 1, "{out}");
    assert!(current[0].contains("all_started"), "{out}");
    let parked = out
        .split("\nThread ")
        .filter(|t| t.contains(" parked () at ") && t.contains(" worker ("))
        .count();
    assert_eq!(parked, 2, "both workers wait in the barrier\n{out}");
}
