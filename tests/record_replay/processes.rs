//! Programs that fork and exec: shell pipelines, command substitution, gcc driving cc1
//! and as, make, python's subprocess (vfork), a C fork + pipe + wait, a `#!` script and
//! a pyenv-style shim, pthreads and python threads each replay to the same output and
//! end, several times in a row; every event is named with its task; and each new kind of
//! event, tampered with, is refused.

use std::path::Path;

use crate::common::*;
use trace::{Event, ExitStatus, TaskTree};

/// The tasks the trace names: the first one and every one created, in order.
fn tasks(evs: &[Event]) -> Vec<u32> {
    TaskTree::of(evs, trace::FORMAT_VERSION)
        .tasks
        .iter()
        .filter_map(|t| t.tid)
        .collect()
}

/// Records `sh -c script` and checks it replays identically and forked at least
/// `processes - 1` times; returns the trace and its events.
fn shell(d: &Path, script: &str, processes: usize) -> (std::path::PathBuf, Vec<Event>) {
    let (rec, t, out) = record(d, "/bin/sh", &["-c", script]);
    assert_eq!(rec.exit, ExitStatus::Exited(0), "{script}");
    let evs = events(&t);
    assert!(
        tasks(&evs).len() >= processes,
        "{script}: {} tasks",
        tasks(&evs).len()
    );
    replays_identically(&t, &out, rec.exit);
    (t, evs)
}

#[test]
fn a_shell_pipeline_replays_with_every_process() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(
        d.path(),
        "/bin/bash",
        &["-c", "seq 1000 | sort -rn | head -3"],
    );
    assert_eq!(out, b"1000\n999\n998\n");
    let evs = events(&t);
    let execs = evs.iter().filter(|e| matches!(e, Event::Exec(_))).count();
    assert_eq!(execs, 3, "seq, sort and head each exec'd");
    // Each process ends with its own exit, the first (bash) last.
    let exits = evs.iter().filter(|e| matches!(e, Event::Exit(_))).count();
    assert_eq!(exits, 4);
    assert!(matches!(
        evs.last(),
        Some(Event::Exit(ExitStatus::Exited(0)))
    ));
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn a_replay_that_reports_progress_ends_as_a_plain_one() {
    // rewind replay draws a bar from these reports: stopping at event boundaries on the
    // way must change nothing, in a tree of processes too.
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(d.path(), "/bin/sh", &["-c", "seq 300 | sort -rn | head -2"]);
    assert_eq!(out, b"300\n299\n");
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let observed = replayer::replay_observed(
        &t,
        replayer::ReplayOptions {
            console: replayer::Console::Buffer(Vec::new()),
            pace: false,
        },
        Some(Box::new(move |done, total| {
            log.borrow_mut().push((done, total))
        })),
    )
    .unwrap();
    assert_eq!(observed.exit, Some(rec.exit));
    assert_eq!(observed.console, out);
    let plain = replay(&t);
    assert_eq!(observed.events, plain.events);
    let seen = seen.borrow();
    let total = events(&t).len() as u64;
    // Up to a hundred: in a tree of processes some late boundaries are no stopping
    // points, so the stepping can end early and the run go on to the end in one.
    assert!(
        seen.len() >= 2 && seen[0].0 < total,
        "reports on the way: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert_eq!(seen.last(), Some(&(total, total)));
}

#[test]
fn every_event_belongs_to_a_task_the_trace_created() {
    let d = tempfile::tempdir().unwrap();
    let (_, evs) = shell(d.path(), "echo one | cat; echo two | cat", 3);
    let known = tasks(&evs);
    let mut cursor = trace::dump::Tasks::new(trace::dump::first_task(&evs));
    let mut seen = std::collections::BTreeSet::new();
    for e in &evs {
        let task = cursor.on(e).expect("every event has a task");
        assert!(known.contains(&task), "{task} is not a task of the trace");
        seen.insert(task);
    }
    assert_eq!(seen.len(), known.len(), "every task has events");
}

#[test]
fn command_substitution_replays_the_recorded_time() {
    let d = tempfile::tempdir().unwrap();
    shell(d.path(), "x=$(date +%N); echo $x", 2);
}

#[test]
fn a_c_fork_pipe_and_wait_replay_with_the_recorded_pids() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "forkpipe",
        "#include <stdio.h>\n#include <unistd.h>\n#include <sys/wait.h>\n\
         int main(void){ int p[2]; pipe(p); pid_t c = fork();\n\
         if (c == 0) { close(p[0]); for (int i = 0; i < 5; i++) { char b[64];\n\
           int n = snprintf(b, sizeof b, \"child %d of %d\\n\", i, getpid());\n\
           write(p[1], b, n); usleep(1000); } _exit(7); }\n\
         close(p[1]); char buf[256]; ssize_t n;\n\
         while ((n = read(p[0], buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);\n\
         int st; waitpid(c, &st, 0); printf(\"child %d exited %d\\n\", c, WEXITSTATUS(st));\n\
         return 0; }\n",
    );
    let (rec, t, out) = record(d.path(), &exe, &[]);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.contains("exited 7"), "{text}");
    // The child's pid as the program printed it is the recorded one at replay too.
    let evs = events(&t);
    let child = tasks(&evs)[1];
    assert!(text.contains(&format!("child 4 of {child}")), "{text}");
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn gcc_replays_its_cc1_and_as() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("small.c");
    std::fs::write(&src, "int twice(int x) { return 2 * x; }\n").unwrap();
    let obj = d.path().join("small.o");
    let (rec, t, out) = record(
        d.path(),
        "gcc",
        &["-c", src.to_str().unwrap(), "-o", obj.to_str().unwrap()],
    );
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert!(tasks(&events(&t)).len() >= 3, "gcc, cc1 and as");
    std::fs::remove_file(&obj).unwrap();
    replays_identically(&t, &out, rec.exit);
    assert!(!obj.exists(), "the replay wrote {}", obj.display());
}

#[test]
fn make_of_a_two_file_project_replays() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(
        p.join("main.c"),
        "int util(void);\nint main(void){return util();}\n",
    )
    .unwrap();
    std::fs::write(p.join("util.c"), "int util(void){return 0;}\n").unwrap();
    std::fs::write(
        p.join("Makefile"),
        "prog: main.o util.o\n\tcc -o prog main.o util.o\n%.o: %.c\n\tcc -c $< -o $@\n",
    )
    .unwrap();
    let (rec, t, out) = record(
        p,
        "make",
        &["-C", p.to_str().unwrap(), "--no-print-directory"],
    );
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert!(String::from_utf8_lossy(&out).contains("cc -o prog"));
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn python_subprocess_replays_through_vfork() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(
        d.path(),
        "/usr/bin/python3",
        &[
            "-c",
            "import subprocess; r = subprocess.run(['echo', 'from the child'], \
             capture_output=True); print(r.returncode, r.stdout)",
        ],
    );
    assert_eq!(out, b"0 b'from the child\\n'\n");
    replays_identically(&t, &out, rec.exit);
}

/// Python's `multiprocessing.Pool`: worker processes forked from a process with three
/// helper threads, tasks and results through pipes, SIGCHLD at the end interrupting the
/// parent's wait4 (the kernel restarts it: no handler runs).
#[test]
fn python_multiprocessing_pool_replays() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(
        d.path(),
        "/usr/bin/python3",
        &[
            "-c",
            "import multiprocessing as mp\n\
             def sq(x): return x * x\n\
             if __name__ == '__main__':\n    \
             with mp.Pool(2) as p: print(p.map(sq, range(8)))\n",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "[0, 1, 4, 9, 16, 25, 36, 49]\n"
    );
    assert!(tasks(&events(&t)).len() >= 3, "no worker processes");
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn a_script_and_a_shim_that_execs_the_interpreter_replay() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("count.sh");
    std::fs::write(&script, "#!/bin/sh\nseq 3 | tac\n").unwrap();
    let shim = d.path().join("python3");
    std::fs::write(&shim, "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n").unwrap();
    for f in [&script, &shim] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (rec, t, out) = record(d.path(), &script, &[]);
    assert_eq!(out, b"3\n2\n1\n");
    replays_identically(&t, &out, rec.exit);
    let (rec, t, out) = testsupport::record::record_in(
        d.path(),
        "shim",
        &shim,
        &["-c", "print('through the shim')"],
    );
    assert_eq!(out, b"through the shim\n");
    let execs = events(&t)
        .iter()
        .filter(|e| matches!(e, Event::Exec(_)))
        .count();
    assert_eq!(execs, 1, "the shim's exec of python");
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn pthreads_with_a_mutex_and_a_condition_variable_replay_their_schedule() {
    let d = tempfile::tempdir().unwrap();
    // Three threads take turns through a condition variable: every turn is a futex wait
    // and wake, so the recorded schedule switches at each.
    let exe = cc(
        d.path(),
        "turns",
        "#include <pthread.h>\n#include <stdio.h>\n\
         static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;\n\
         static pthread_cond_t c = PTHREAD_COND_INITIALIZER;\n\
         static int turn, counter;\n\
         static void *worker(void *arg) { long id = (long)arg;\n\
           for (int i = 0; i < 5; i++) { pthread_mutex_lock(&m);\n\
             while (turn != id) pthread_cond_wait(&c, &m);\n\
             printf(\"thread %ld: counter %d\\n\", id, ++counter);\n\
             turn = (turn + 1) % 3; pthread_cond_broadcast(&c); pthread_mutex_unlock(&m); }\n\
           return 0; }\n\
         int main(void) { pthread_t t[3]; setvbuf(stdout, 0, _IONBF, 0);\n\
           for (long i = 0; i < 3; i++) pthread_create(&t[i], 0, worker, (void *)i);\n\
           for (int i = 0; i < 3; i++) pthread_join(t[i], 0);\n\
           printf(\"total %d\\n\", counter); return 0; }\n",
    );
    let (rec, t, out) = record(d.path(), &exe, &[]);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.ends_with("total 15\n"), "{text}");
    let evs = events(&t);
    assert_eq!(tasks(&evs).len(), 4, "the main thread and three workers");
    let tree = TaskTree::of(&evs, trace::FORMAT_VERSION);
    assert_eq!(
        tree.processes.len(),
        1,
        "threads are not processes: {tree:?}"
    );
    assert_eq!(tree.processes[0].tasks.len(), 4);
    let blocked = evs
        .iter()
        .filter(|e| matches!(e, Event::Blocked { nr, .. } if *nr == libc::SYS_futex as u64))
        .count();
    assert!(blocked > 0, "no futex wait blocked");
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn python_threads_sharing_a_counter_under_a_lock_replay() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(
        d.path(),
        "/usr/bin/python3",
        &[
            "-c",
            "import threading
lock = threading.Lock(); n = [0]
def w(i):
    for k in range(3):
        with lock:
            n[0] += 1; print('thread', i, 'counter', n[0], flush=True)
ts = [threading.Thread(target=w, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]; print('total', n[0])
",
        ],
    );
    assert!(String::from_utf8_lossy(&out).ends_with("total 12\n"));
    assert!(tasks(&events(&t)).len() >= 5);
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn exit_from_a_thread_while_the_others_wait_ends_every_thread_as_recorded() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "ender",
        "#include <pthread.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n\
         static void *sleeper(void *a) { (void)a; for (;;) pause(); return 0; }\n\
         static void *ender(void *a) { (void)a; usleep(2000); puts(\"ending\"); fflush(stdout);\n\
           exit(5); }\n\
         int main(void) { pthread_t t; for (int i = 0; i < 3; i++) pthread_create(&t, 0, sleeper, 0);\n\
           pthread_create(&t, 0, ender, 0); for (;;) pause(); }\n",
    );
    let (rec, t, out) = record(d.path(), &exe, &[]);
    assert_eq!(rec.exit, ExitStatus::Exited(5));
    let evs = events(&t);
    let exits = evs.iter().filter(|e| matches!(e, Event::Exit(_))).count();
    assert_eq!(exits, 5, "every thread's end");
    replays_identically(&t, &out, rec.exit);
}

/// node: V8's worker threads and libuv's loop, a timer and a promise. V8 asks for a memory
/// protection key, which no recording hands out (PKRU changes without a call).
#[test]
fn node_with_its_worker_threads_replays() {
    let d = tempfile::tempdir().unwrap();
    let script = "setTimeout(() => console.log(require('fs').readdirSync('/').length, \
                  [3, 1, 2].sort()), 20); Promise.resolve(7).then(console.log)";
    let (rec, t, out) = record(d.path(), "node", &["-e", script]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert!(String::from_utf8_lossy(&out).starts_with("7\n"), "{out:?}");
    assert!(tasks(&events(&t)).len() > 2, "node runs threads");
    replays_identically(&t, &out, rec.exit);
}

/// Two threads that take two mutexes in opposite order, meeting at a barrier while each
/// holds its first: every task ends up blocked in a futex. `--timeout` stops the
/// recording there (the kill of a thread group reaps its threads before its leader, or
/// the recorder would wait for the leader forever), and the replay reaches that point.
#[test]
fn a_deadlock_of_every_thread_is_stopped_at_the_timeout_and_replays_to_it() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "abba",
        "#include <pthread.h>\n#include <stdio.h>\n\
         static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;\n\
         static pthread_barrier_t both;\n\
         static void *ab(void *x) { (void)x; pthread_mutex_lock(&a); pthread_barrier_wait(&both);\n\
           pthread_mutex_lock(&b); puts(\"ab\"); return 0; }\n\
         static void *ba(void *x) { (void)x; pthread_mutex_lock(&b); pthread_barrier_wait(&both);\n\
           pthread_mutex_lock(&a); puts(\"ba\"); return 0; }\n\
         int main(void) { pthread_t x, y; pthread_barrier_init(&both, 0, 2);\n\
           pthread_create(&x, 0, ab, 0); pthread_create(&y, 0, ba, 0);\n\
           pthread_join(x, 0); pthread_join(y, 0); return 0; }\n",
    );
    let trace = d.path().join("trace");
    let mut opts = recorder::RecordOptions::new(exe.as_os_str(), std::iter::empty::<&str>());
    opts.out_dir = Some(trace.clone());
    opts.timeout = Some(std::time::Duration::from_secs(1));
    let rec = recorder::record(&opts).expect("a recording stopped at the timeout");
    assert!(rec.timed_out, "{:?}", rec.exit);
    let evs = events(&trace);
    assert_eq!(tasks(&evs).len(), 3, "the main thread and two more");
    let futex = trace::sysno::number("futex").unwrap();
    let blocked = evs
        .iter()
        .filter(|e| matches!(e, Event::Blocked { nr, .. } if *nr == futex))
        .count();
    assert!(blocked >= 3, "each thread blocked in a futex: {blocked}");
    for _ in 0..testsupport::repetitions(3, 20) {
        let out = replay(&trace);
        assert_eq!(out.exit, None);
        let why = out.aborted.expect("the recorder's reason");
        assert!(why.contains("did not finish in time"), "{why}");
        assert_eq!(
            out.events,
            evs.len() as u64 - 1,
            "every event before the abort"
        );
    }
}

/// A refused call in a thread group's leader while its other thread waits in the kernel
/// (node calls pkey_alloc so): the recording stops with the refusal and every task is
/// reaped — killing the leader and waiting for it first would wait forever, since a
/// leader is only reported after its other threads.
#[test]
fn a_refused_call_in_a_threaded_program_ends_the_recording_and_every_thread() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "refused",
        "#include <pthread.h>\n#include <unistd.h>\n#include <sys/syscall.h>\n\
         static void *sleeper(void *a) { (void)a; for (;;) pause(); return 0; }\n\
         int main(void) { pthread_t t; pthread_create(&t, 0, sleeper, 0); usleep(20000);\n\
           return (int)syscall(SYS_kexec_load, 0, 0, 0, 0); }\n",
    );
    let trace = d.path().join("trace");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = trace.clone();
    std::thread::spawn(move || {
        let mut opts = recorder::RecordOptions::new(exe.as_os_str(), std::iter::empty::<&str>());
        opts.out_dir = Some(out);
        let _ = tx.send(
            recorder::record(&opts)
                .map(|r| r.exit)
                .map_err(|e| e.to_string()),
        );
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the recorder returned (it did not wait forever for the leader)");
    let err = result.expect_err("kexec_load is refused");
    assert!(err.contains("unknown system call kexec_load"), "{err}");
    let evs = events(&trace);
    assert_eq!(tasks(&evs).len(), 2, "the main thread and the sleeper");
    assert!(
        matches!(evs.last(), Some(Event::Aborted { .. })),
        "{:?}",
        evs.last()
    );
}

/// A divergence in a thread group's leader while its threads live: the replay stops with
/// it and every thread is reaped (waiting for the leader first would never end).
#[test]
fn a_divergence_in_a_threaded_replay_ends_it_and_every_thread() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "joiner",
        "#include <pthread.h>\n#include <unistd.h>\n\
         static void *sleeper(void *a) { (void)a; usleep(50000); return 0; }\n\
         int main(void) { pthread_t t; pthread_create(&t, 0, sleeper, 0);\n\
           pthread_join(t, 0); return 0; }\n",
    );
    let (_, t, _) = record(d.path(), &exe, &[]);
    let first = tasks(&events(&t))[0];
    let futex = trace::sysno::number("futex").unwrap();
    let bad = d.path().join("bad");
    let mut current = first;
    let mut changed = false;
    rewrite(&t, &bad, |_, e| match e {
        Event::Switch { to, .. } => {
            current = to;
            e
        }
        Event::Blocked { nr, rip } if nr == futex && current == first && !changed => {
            changed = true;
            Event::Blocked { nr: 0, rip }
        }
        e => e,
    });
    assert!(changed, "the leader blocks in pthread_join");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(refusal(&bad));
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the replay returned (it did not wait forever for the leader)");
    assert!(err.contains("diverged"), "{err}");
}

/// The pipeline's trace, re-written by `edit` (which must change something), replayed:
/// the error it fails with.
fn tampered(edit: impl Fn(u64, Event) -> Option<Event>) -> String {
    let d = tempfile::tempdir().unwrap();
    let (_, t, _) = record(d.path(), "/bin/sh", &["-c", "echo a | cat"]);
    let changed = std::cell::Cell::new(false);
    let bad = d.path().join("bad");
    rewrite(&t, &bad, |i, e| match edit(i, e.clone()) {
        Some(new) => {
            changed.set(true);
            new
        }
        None => e,
    });
    assert!(changed.get(), "the edit found its event");
    refusal(&bad)
}

#[test]
fn a_switch_to_a_task_that_does_not_exist_is_refused() {
    let first = std::cell::Cell::new(true);
    let err = tampered(|_, e| match e {
        Event::Switch { from, .. } if first.replace(false) => Some(Event::Switch { from, to: 1 }),
        _ => None,
    });
    assert!(
        err.contains("a switch to task 1") && err.contains("no task 1 exists"),
        "{err}"
    );
}

#[test]
fn a_switch_from_a_task_that_is_not_running_is_refused() {
    // The second switch: the first one is what names the first task.
    let seen = std::cell::Cell::new(0);
    let err = tampered(|_, e| match e {
        Event::Switch { from, to } => {
            seen.set(seen.get() + 1);
            (seen.get() == 2).then_some(Event::Switch { from: from + 1, to })
        }
        _ => None,
    });
    assert!(
        err.contains("is running") && err.contains("a switch from task"),
        "{err}"
    );
}

#[test]
fn a_new_task_with_another_id_is_refused_at_the_fork() {
    let first = std::cell::Cell::new(true);
    let err = tampered(|_, e| match e {
        Event::NewTask { tid } if first.replace(false) => Some(Event::NewTask { tid: tid + 1 }),
        _ => None,
    });
    assert!(
        err.contains("returning task") && err.contains("recorded"),
        "{err}"
    );
}

#[test]
fn a_new_process_said_to_be_a_thread_is_refused_at_the_fork() {
    let first = std::cell::Cell::new(true);
    let err = tampered(|_, e| match e {
        Event::NewTask { tid } if first.replace(false) => Some(Event::NewThread { tid }),
        _ => None,
    });
    assert!(
        err.contains("a thread") && err.contains("a process created (clone flags"),
        "{err}"
    );
}

#[test]
fn a_new_thread_said_to_be_a_process_is_refused_at_the_clone() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "onethread",
        "#include <pthread.h>\n\
         static void *f(void *a) { return a; }\n\
         int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); return pthread_join(t, 0); }\n",
    );
    let (rec, t, _) = record(d.path(), &exe, &[]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let bad = d.path().join("bad");
    let mut changed = false;
    rewrite(&t, &bad, |_, e| match e {
        Event::NewThread { tid } if !changed => {
            changed = true;
            Event::NewTask { tid }
        }
        e => e,
    });
    assert!(changed, "the recording has a NewThread");
    let err = refusal(&bad);
    assert!(
        err.contains("a process") && err.contains("a thread created (clone flags"),
        "{err}"
    );
}

#[test]
fn ps_lists_a_pipelines_processes_and_replay_p_steps_in_one_of_them() {
    const REWIND: &str = env!("CARGO_BIN_EXE_rewind");
    let d = tempfile::tempdir().unwrap();
    let (rec, t, _) = record(d.path(), "/bin/sh", &["-c", "echo a | cat; echo b"]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let run = std::process::Command::new(REWIND)
        .arg("ps")
        .arg(&t)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{text}");
    let tree = TaskTree::of(&events(&t), trace::FORMAT_VERSION);
    let pid = |k: usize| tree.processes[k].pid.unwrap().to_string();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), tree.processes.len(), "{text}");
    let cat = rows
        .iter()
        .find(|r| r.last().is_some_and(|c| c.ends_with("/cat")))
        .unwrap_or_else(|| panic!("no cat row\n{text}"));
    assert_eq!(cat[1], pid(0), "cat's parent is the shell\n{text}");
    assert_eq!(cat[2], "0", "cat exited 0\n{text}");
    // On cat, from its exec: every step stays in cat, back and forth.
    let cat_pid: u32 = cat[0].parse().unwrap();
    let k = tree.find(cat_pid).unwrap();
    let mut child = std::process::Command::new(REWIND)
        .args(["replay", "-i", "-p", cat[0]])
        .arg(&t)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"pos\nnext\nnext\nnext\npos\nrs 3\npos\ns 2000\npos\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let positions: Vec<replayer::Position> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(positions.len() >= 4, "{text}");
    for p in &positions {
        assert_eq!(
            tree.process_of_event(p.event),
            k,
            "{p} is not cat's\n{text}"
        );
    }
}

/// At the end of `trace`'s replay (its last live point), a step back and a step forward
/// come back to the same position, which it returns.
fn end_round_trip(trace: &Path) -> replayer::Position {
    let mut tl = replayer::Timeline::open(trace).unwrap();
    tl.seek_end().unwrap();
    tl.seek_last_live().unwrap();
    let end = tl.position().unwrap();
    assert_eq!(tl.step_back().unwrap(), replayer::StopReason::Done);
    let before = tl.position().unwrap();
    assert_ne!(before, end);
    assert_eq!(tl.step_forward().unwrap(), replayer::StopReason::Done);
    assert_eq!(tl.position().unwrap(), end, "a step forward from {before}");
    end
}

#[test]
fn a_pipelines_end_steps_back_and_forward_to_the_same_point() {
    let d = tempfile::tempdir().unwrap();
    let (_, t, _) = record(d.path(), "/bin/sh", &["-c", "echo a | cat"]);
    let end = end_round_trip(&t);
    // The last live point is the shell's exit_group, the recording's last call.
    let evs = events(&t);
    assert!(
        matches!(&evs[end.event as usize], Event::Syscall(sc) if sc.nr == libc::SYS_exit_group as u64),
        "{end}: {:?}",
        evs[end.event as usize]
    );
}

#[test]
fn a_blocked_call_that_is_another_call_is_refused() {
    let first = std::cell::Cell::new(true);
    let err = tampered(|_, e| match e {
        Event::Blocked { rip, .. } if first.replace(false) => Some(Event::Blocked {
            nr: trace::sysno::number("getppid").unwrap(),
            rip,
        }),
        _ => None,
    });
    assert!(err.contains("getppid blocking at"), "{err}");
}

#[test]
fn an_exec_of_another_binary_is_refused_naming_it() {
    let err = tampered(|_, e| match e {
        Event::Exec(mut x) => {
            x.binary.sha256 = trace::BlobHash::of(b"another program");
            Some(Event::Exec(x))
        }
        _ => None,
    });
    assert!(err.contains("/usr/bin/cat") || err.contains("cat"), "{err}");
    assert!(
        err.contains(&trace::BlobHash::of(b"another program").hex()),
        "{err}"
    );
}

#[test]
fn a_signal_let_through_only_by_sigsuspend_or_ppoll_replays_under_that_mask() {
    let d = tempfile::tempdir().unwrap();
    // SIGALRM is blocked but for the call's own mask; the handler sees the program's mask
    // put back in its frame, and the program reports the mask after it.
    for (name, wait) in [
        ("suspend", "sigsuspend(&old)"),
        ("ppoll", "ppoll(0, 0, 0, &old)"),
    ] {
        let exe = cc(
            d.path(),
            name,
            &format!(
                "#define _GNU_SOURCE\n#include <signal.h>\n#include <poll.h>\n#include <stdio.h>\n\
                 #include <sys/time.h>\nstatic volatile int got;\nstatic void h(int s){{ got = s; }}\n\
                 int main(void){{ signal(SIGALRM, h); sigset_t m, old, now;\n\
                 sigemptyset(&m); sigaddset(&m, SIGALRM); sigprocmask(SIG_BLOCK, &m, &old);\n\
                 struct itimerval t = {{{{0, 0}}, {{0, 20000}}}}; setitimer(ITIMER_REAL, &t, 0);\n\
                 int r = {wait}; sigprocmask(SIG_BLOCK, 0, &now);\n\
                 printf(\"%d got %d blocked %d\\n\", r, got, sigismember(&now, SIGALRM));\n\
                 return 0; }}\n"
            ),
        );
        let (rec, t, out) =
            testsupport::record::record_in(d.path(), &format!("{name}.trace"), &exe, &[]);
        assert_eq!(out, b"-1 got 14 blocked 1\n", "{name}");
        replays_identically(&t, &out, rec.exit);
    }
    // dash blocks SIGCHLD and waits for a background job this way.
    shell(d.path(), "sleep 0.05 & echo started; wait; echo done", 2);
}

/// A forked child writes through a MAP_SHARED file mapping it inherited; its parent,
/// which waited for it, reads the byte: replay shares the page between them as the
/// recording did, though the file itself is gone by then.
#[test]
fn a_shared_file_mapping_a_forked_child_writes_replays_in_its_parent() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("shared.bin");
    std::fs::write(&data, [0u8; 4096]).unwrap();
    let exe = cc(
        d.path(),
        "sharer",
        "#include <fcntl.h>\n#include <stdio.h>\n#include <sys/mman.h>\n#include <sys/wait.h>\n\
         #include <unistd.h>\n\
         int main(int argc, char **argv){ (void)argc; int fd = open(argv[1], O_RDWR);\n\
         char *p = mmap(0, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0);\n\
         if (fork() == 0) { p[0] = 42; _exit(0); } wait(0); printf(\"%d\\n\", p[0]); return 0; }\n",
    );
    let (rec, t, out) = record(d.path(), &exe, &[data.to_str().unwrap()]);
    assert_eq!(out, b"42\n");
    std::fs::remove_file(&data).unwrap();
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn a_task_leaving_the_recording_without_asking_to_be_ptraced_is_refused() {
    // `Event::Outside` ends a task at replay; only after its own PTRACE_TRACEME may it.
    let first = std::cell::Cell::new(true);
    let err = tampered(|_, e| match e {
        Event::Syscall(sc) if sc.nr == libc::SYS_write as u64 && first.replace(false) => {
            Some(Event::Outside)
        }
        _ => None,
    });
    assert!(
        err.contains("leaving the recording") && err.contains("PTRACE_TRACEME"),
        "{err}"
    );
}

/// Every boundary of a pipeline's recording where a task rests is reachable by seeking
/// from the start, including those right after a fork's new-task event and a blocked
/// call (once passed by, and the seek ran on to the end). One where none rests (after a
/// task's exit call or end, before the switch away from it) is refused, naming where the
/// replay is (or, past the program's exit call, that it ended first).
#[test]
fn every_boundary_of_a_pipeline_where_a_task_rests_is_reachable() {
    let d = tempfile::tempdir().unwrap();
    let (t, evs) = shell(d.path(), "seq 300 | sort -rn | head -2", 3);
    let mut tl = replayer::timeline::Timeline::open(&t).unwrap();
    let mut reached = 0;
    for k in 0..evs.len() as u64 {
        let target = replayer::position::Position::event(k);
        match tl.seek(&target) {
            Ok(()) => {
                assert_eq!(tl.position().unwrap(), target);
                reached += 1;
            }
            Err(e) => {
                let e = e.to_string();
                // Past the first task's exit call only ends and switches are left.
                let only_ends_follow = evs[k as usize..]
                    .iter()
                    .all(|e| matches!(e, Event::Exit(_) | Event::Switch { .. }));
                assert!(
                    e.contains("already at event")
                        || (only_ends_follow && e.contains("the program ended first")),
                    "e{k}: {e}"
                );
            }
        }
    }
    assert!(
        reached * 10 > evs.len() * 9,
        "{reached} of {} reached",
        evs.len()
    );
}

/// The main thread spins on a flag without a system call until the thread it started
/// sets it; that thread first sleeps, so the spin is under way when it could run.
const SPIN_ON_FLAG: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static volatile int flag;
static void *setter(void *arg) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, 0);
    write(1, "setter sets the flag\n", 21);
    flag = 1;
    return arg;
}
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, setter, 0);
    while (!flag)
        ;
    write(1, "main saw the flag\n", 18);
    pthread_join(t, 0);
    return 0;
}
"#;

#[test]
fn a_thread_spinning_on_a_flag_is_preempted_where_replay_finds_it_again() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc_with(d.path(), "spin", SPIN_ON_FLAG, &["-O1", "-pthread"]);
    // One task runs at a time: without a preemption inside user code the setter would
    // never run and the spin never end; the timeout turns that into a failure.
    let (rec, t, out) = record_with(d.path(), "trace", &exe, &[], |o| {
        o.timeout = Some(std::time::Duration::from_secs(20));
    });
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "setter sets the flag\nmain saw the flag\n"
    );
    let evs = events(&t);
    let preempted = evs
        .iter()
        .filter(|e| matches!(e, Event::Preempted { .. }))
        .count();
    assert!(preempted >= 1, "no preemption in the spin");
    replays_identically(&t, &out, rec.exit);

    let refused = |name: &str, edit: &dyn Fn(&mut trace::Gprs, &mut trace::BlobHash)| {
        let tampered = d.path().join(name);
        rewrite(&t, &tampered, |_, e| match e {
            Event::Preempted {
                mut regs,
                mut state,
            } => {
                edit(&mut regs, &mut state);
                Event::Preempted { regs, state }
            }
            e => e,
        });
        refusal(&tampered)
    };
    // Another state digest names a point the spin never reaches: refused, not spun on.
    let msg = refused("tampered", &|_, state| state.0[0] ^= 1);
    assert!(
        msg.contains("preemption") && msg.contains("same registers and state"),
        "{msg}"
    );
    // A point outside the task's memory cannot be marked: refused before the spin.
    let msg = refused("tampered-rip", &|regs, _| regs.rip = 8);
    assert!(
        msg.contains("preemption") && msg.contains("no breakpoint can be set at 0x8"),
        "{msg}"
    );
    // So are other registers there.
    let msg = refused("tampered-regs", &|regs, _| regs.rbx ^= 0x10);
    assert!(
        msg.contains("preemption") && msg.contains("same registers and state"),
        "{msg}"
    );
}

/// The parent blocks in a read of a pipe; its child sends it SIGURG (ignored by default)
/// before it writes. Under ptrace an ignored signal still interrupts the read, which the
/// kernel restarts once no handler ran.
const IGNORED_SIGNAL_IN_A_READ: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    int p[2];
    if (pipe(p)) return 1;
    pid_t c = fork();
    if (c == 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, 0);
        kill(getppid(), SIGURG);
        nanosleep(&ts, 0);
        write(p[1], "late\n", 5);
        _exit(0);
    }
    char buf[16];
    ssize_t n = read(p[0], buf, sizeof buf);
    printf("read %zd: %.*s", n, (int)n, buf);
    int st;
    waitpid(c, &st, 0);
    printf("child %d\n", WEXITSTATUS(st));
    return 0;
}
"#;

#[test]
fn a_call_an_ignored_signal_interrupted_is_restarted_at_replay_as_it_was() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "urg", IGNORED_SIGNAL_IN_A_READ);
    let (rec, t, out) = record(d.path(), &exe, &[]);
    assert_eq!(String::from_utf8_lossy(&out), "read 5: late\nchild 0\n");
    let evs = events(&t);
    let interrupted = evs.windows(2).any(|w| {
        matches!(
            (&w[0], &w[1]),
            (Event::Syscall(sc), Event::Signal(g))
                if sc.nr == libc::SYS_read as u64
                    && sc.ret == -512
                    && g.signo == libc::SIGURG
        )
    });
    assert!(
        interrupted,
        "the read was not interrupted by SIGURG at record time"
    );
    replays_identically(&t, &out, rec.exit);

    // Without the signal (as when the recorder holds one for a later place) the kernel
    // still restarted the interrupted read at record time: so does the replay, and the
    // program never sees the restart code.
    let held = d.path().join("held");
    let mut removed = None;
    rewrite_all(
        &t,
        &held,
        |_| {},
        |i, e| match e {
            Event::Signal(g) if g.signo == libc::SIGURG => {
                removed = Some(i);
                vec![]
            }
            // A signal at a later call's exit names that call by its index, one less now.
            Event::Signal(mut g) => {
                if let (trace::Placement::SyscallExit { event }, Some(r)) =
                    (&mut g.placement, removed)
                {
                    if *event > r {
                        *event -= 1;
                    }
                }
                vec![Event::Signal(g)]
            }
            e => vec![e],
        },
    );
    replays_identically(&held, &out, rec.exit);
}

/// glibc's own spin loop: the main thread waits in `pthread_spin_lock` for a lock its
/// second thread holds across a sleep.
const GLIBC_SPINLOCK: &str = r#"
#include <pthread.h>
#include <time.h>
#include <unistd.h>
static pthread_spinlock_t lock;
static volatile int taken;
static void *holder(void *arg) {
    pthread_spin_lock(&lock);
    taken = 1;
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, 0);
    write(1, "holder unlocks\n", 15);
    pthread_spin_unlock(&lock);
    return arg;
}
int main(void) {
    pthread_spin_init(&lock, 0);
    pthread_t t;
    pthread_create(&t, 0, holder, 0);
    while (!taken)
        ;
    pthread_spin_lock(&lock);
    write(1, "main has the lock\n", 18);
    pthread_spin_unlock(&lock);
    pthread_join(t, 0);
    return 0;
}
"#;

#[test]
fn a_thread_in_glibcs_spin_lock_is_preempted_and_replays() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc_with(d.path(), "spinlock", GLIBC_SPINLOCK, &["-pthread"]);
    let (rec, t, out) = record_with(d.path(), "trace", &exe, &[], |o| {
        o.timeout = Some(std::time::Duration::from_secs(20));
    });
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "holder unlocks\nmain has the lock\n"
    );
    let preempted = events(&t)
        .iter()
        .filter(|e| matches!(e, Event::Preempted { .. }))
        .count();
    assert!(preempted >= 1, "no preemption while main spun");
    replays_identically(&t, &out, rec.exit);
}

/// The main thread computes for a while with its second thread ready to run (once its
/// sleep is over): the loop's state changes on every pass, so no point of it could be
/// found again at replay, and it keeps the CPU until its next call.
const COMPUTE_WHILE_ANOTHER_WAITS: &str = r#"
#include <pthread.h>
#include <time.h>
#include <unistd.h>
static void *other(void *arg) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, 0);
    write(1, "other ran\n", 10);
    return arg;
}
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, other, 0);
    volatile unsigned long x = 1;
    for (long i = 0; i < 100000000; i++)
        x = x * 31 + i;
    write(1, "main computed\n", 14);
    pthread_join(t, 0);
    return 0;
}
"#;

#[test]
fn a_thread_that_computes_is_not_preempted_where_no_point_repeats() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc_with(
        d.path(),
        "compute",
        COMPUTE_WHILE_ANOTHER_WAITS,
        &["-pthread"],
    );
    // The loop runs some 100 ms without a call, the other thread ready after 5 ms: the
    // alarm probes the loop (at 20 and 60 ms here) and leaves it the CPU each time.
    let (rec, t, out) = record(d.path(), &exe, &[]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert_eq!(String::from_utf8_lossy(&out), "main computed\nother ran\n");
    assert!(
        !events(&t)
            .iter()
            .any(|e| matches!(e, Event::Preempted { .. })),
        "preempted in a loop whose state never repeats"
    );
    replays_identically(&t, &out, rec.exit);
}

/// A thread that is not its process's leader spins until its own timer's handler sets a
/// flag: the signal is held while it spins, and the recorder stops that thread (not its
/// leader) to find the place.
const SIGNAL_TO_A_SPINNING_THREAD: &str = r#"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
static volatile int fired;
static void on_alarm(int sig) { (void)sig; fired = 1; }
static void *spinner(void *arg) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &s, 0);
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 5000;
    setitimer(ITIMER_REAL, &it, 0);
    while (!fired)
        ;
    write(1, "the thread saw its alarm\n", 25);
    return arg;
}
int main(void) {
    signal(SIGALRM, on_alarm);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &s, 0);
    pthread_t t;
    pthread_create(&t, 0, spinner, 0);
    pthread_join(t, 0);
    return 0;
}
"#;

#[test]
fn a_signal_for_a_spinning_thread_that_is_not_the_leader_is_placed_and_replays() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc_with(
        d.path(),
        "thsig",
        SIGNAL_TO_A_SPINNING_THREAD,
        &["-pthread"],
    );
    let (rec, t, out) = record_with(d.path(), "trace", &exe, &[], |o| {
        o.timeout = Some(std::time::Duration::from_secs(20));
    });
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert_eq!(String::from_utf8_lossy(&out), "the thread saw its alarm\n");
    let placed = events(&t).iter().any(|e| {
        matches!(e, Event::Signal(g)
            if g.signo == libc::SIGALRM
                && matches!(g.placement, trace::Placement::Registers { .. }))
    });
    assert!(placed, "the alarm was not placed by registers in the spin");
    replays_identically(&t, &out, rec.exit);
}
