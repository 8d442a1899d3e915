//! Linux built as UML (linux/build) under Rewind: a KUnit run, kunit.py's command line
//! with simulated time, records and replays to the same console output and end, five
//! times; packed, it replays with the kernel binary gone. Slow tests: the first run
//! builds the kernel (10 to 20 minutes on 2 cores); `REWIND_SLOW_TESTS=1` asks for them.

use std::path::Path;
use std::process::Command;

use testsupport::linux::{kernel, KUNIT_ARGS};
use testsupport::{run_with_timeout, Run, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

fn rewind(args: &[&std::ffi::OsStr]) -> Run {
    let mut c = Command::new(REWIND);
    c.args(args).env_remove("RUST_BACKTRACE");
    run_with_timeout(c, std::time::Duration::from_secs(300), None)
}

/// Records `linux` with kunit.py's arguments and `extra` into `trace`.
fn record_linux(linux: &Path, trace: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "record".as_ref(),
        "-o".as_ref(),
        trace.as_os_str(),
        "--".as_ref(),
        linux.as_os_str(),
    ];
    args.extend(KUNIT_ARGS.iter().chain(extra).map(std::ffi::OsStr::new));
    let r = rewind(&args);
    r.assert_success();
    r
}

/// `rewind gdb` on `trace` with the real gdb in batch mode running `cmds`.
fn gdb_batch(d: &Scratch, trace: &Path, cmds: &[&str]) -> Run {
    let wrapper = testsupport::gdb_batch_wrapper(d, "gdb-batch", cmds);
    let g = rewind(&[
        "gdb".as_ref(),
        trace.as_os_str(),
        "--gdb".as_ref(),
        wrapper.as_os_str(),
    ]);
    assert!(g.status.success(), "{}", g.dump());
    g
}

/// Records KUnit on `linux` into `trace`; returns what the kernel printed.
fn record_kunit(linux: &Path, trace: &Path) -> String {
    let r = record_linux(linux, trace, &[]);
    // KTAP: the plan, then one "ok N suite" line per suite, none failed.
    let suites = r.stdout.lines().filter(|l| l.starts_with("ok ")).count();
    let plan = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("1.."))
        .unwrap_or("none");
    assert_eq!(plan.parse::<usize>().ok(), Some(suites), "{}", r.dump());
    assert!(suites >= 20, "{}", r.dump());
    assert!(!r.stdout.contains("not ok"), "{}", r.dump());
    assert!(r.stdout.contains("reboot: System halted"), "{}", r.dump());
    r.stdout
}

/// Replays `trace` (a directory or a pack): its console output, checked to end as the
/// recording did.
fn replayed(trace: &Path, dir: Option<&Path>) -> String {
    let mut c = Command::new(REWIND);
    c.args(["replay".as_ref(), "-v".as_ref(), trace.as_os_str()])
        .env_remove("RUST_BACKTRACE");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let r = run_with_timeout(c, std::time::Duration::from_secs(300), None);
    r.assert_success();
    assert!(r.stderr.contains("Exited(0)"), "{}", r.dump());
    r.stdout
}

#[test]
fn a_kunit_run_records_and_replays_identically_five_times() {
    if !testsupport::slow_tests("a_kunit_run_records_and_replays_identically_five_times") {
        return;
    }
    let d = Scratch::new("linux-kunit");
    let trace = d.path("trace");
    let recorded = record_kunit(kernel(), &trace);
    for i in 0..5 {
        assert!(
            replayed(&trace, None) == recorded,
            "replay {i}: the console differs"
        );
    }
}

/// What a developer receiving a KUnit failure has: the pack alone, the kernel binary it
/// was recorded from deleted with its build tree.
#[test]
fn a_packed_kunit_run_replays_without_the_kernel_binary() {
    if !testsupport::slow_tests("a_packed_kunit_run_replays_without_the_kernel_binary") {
        return;
    }
    let d = Scratch::new("linux-kunit-pack");
    let build = d.path("build");
    std::fs::create_dir_all(&build).unwrap();
    let linux = build.join("linux");
    std::fs::copy(kernel(), &linux).unwrap();
    let trace = d.path("trace");
    let recorded = record_kunit(&linux, &trace);
    let pack = d.path("kunit.rwpack");
    rewind(&[
        "pack".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        pack.as_os_str(),
    ])
    .assert_success();
    let alone = Scratch::new("linux-kunit-alone");
    std::fs::copy(&pack, alone.path("kunit.rwpack")).unwrap();
    drop(d);
    assert!(!linux.exists() && !trace.exists());
    assert!(replayed(Path::new("kunit.rwpack"), Some(&alone.0)) == recorded);
}

/// The real gdb, launched by `rewind gdb` on a KUnit recording: a breakpoint in one
/// KUnit test case and one in the next, continued to both, then reverse-continue back
/// to the first, with Linux's symbols and the KUnit runner in the backtrace.
#[test]
fn gdb_reverse_continues_to_a_breakpoint_in_a_kunit_test() {
    if !testsupport::slow_tests("gdb_reverse_continues_to_a_breakpoint_in_a_kunit_test") {
        return;
    }
    let d = Scratch::new("linux-kunit-gdb");
    let trace = d.path("trace");
    record_kunit(kernel(), &trace);
    let cmds = [
        "set pagination off",
        "break example_simple_test",
        "break example_skip_test",
        "continue",
        "continue",
        "reverse-continue",
        "bt 2",
    ];
    let g = gdb_batch(&d, &trace, &cmds);
    let out = &g.stdout;
    let second = out
        .find("Breakpoint 2, example_skip_test")
        .unwrap_or_else(|| panic!("the second test's breakpoint was not hit\n{}", g.dump()));
    let back = out[second..]
        .find("Breakpoint 1, example_simple_test")
        .map(|i| &out[second + i..])
        .unwrap_or_else(|| panic!("reverse-continue did not come back\n{}", g.dump()));
    assert!(
        back.contains("kunit_run_case_internal") && back.contains("lib/kunit/test.c"),
        "{}",
        g.dump()
    );
}

/// gdb's thread list on a KUnit recording is Linux's task list, read through the kernel's
/// own DWARF: stopped in a test case, the current thread is the case's `kunit_try_catch`
/// kthread, running; the KUnit runner that started it sleeps, and its backtrace, from
/// the registers `switch_threads` saved, runs through the scheduler to the runner's wait;
/// and Linux's own gdb helpers `lx-ps` and `lx-dmesg` read the replay.
#[test]
fn gdb_threads_are_linux_tasks_and_a_sleeping_ones_backtrace_reaches_its_wait() {
    if !testsupport::slow_tests(
        "gdb_threads_are_linux_tasks_and_a_sleeping_ones_backtrace_reaches_its_wait",
    ) {
        return;
    }
    let d = Scratch::new("linux-kunit-threads");
    let trace = d.path("trace");
    record_kunit(kernel(), &trace);
    // Linux's own gdb helpers, from the build tree (they import its scripts/gdb/linux).
    let helpers = kernel().parent().unwrap().join("src/vmlinux-gdb.py");
    let source = format!("source {}", helpers.display());
    let cmds = [
        "set pagination off",
        "break example_simple_test",
        "continue",
        "info threads",
        "thread apply all bt 30",
        &source,
        "lx-ps",
        "lx-dmesg",
    ];
    let g = gdb_batch(&d, &trace, &cmds);
    let out = &g.stdout;
    let threads: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Id "))
        .skip(1)
        .take_while(|l| {
            l.trim_start()
                .starts_with(|c: char| c == '*' || c.is_ascii_digit())
        })
        .collect();
    assert!(
        threads.len() >= 10,
        "a kernel has its kthreads\n{}",
        g.dump()
    );
    let current: Vec<&&str> = threads.iter().filter(|l| l.starts_with('*')).collect();
    assert_eq!(current.len(), 1, "{}", g.dump());
    assert!(
        current[0].contains("kunit_try_catch R running")
            && current[0].contains("example_simple_test"),
        "{}",
        g.dump()
    );
    assert!(
        threads.iter().any(|l| l.contains("swapper"))
            && threads.iter().any(|l| l.contains("kthreadd")),
        "{}",
        g.dump()
    );
    // Some sleeping thread is the runner, waiting for the case's kthread to finish.
    let runner = out
        .split("\nThread ")
        .find(|t| t.contains("kunit_try_catch_run") && !t.contains("example_simple_test"))
        .unwrap_or_else(|| panic!("no thread waits in kunit_try_catch_run\n{}", g.dump()));
    assert!(
        runner.contains("schedule") && runner.contains("wait_for_completion"),
        "{runner}\n{}",
        g.dump()
    );
    // lx-ps walks the same list; lx-dmesg reads the kernel's log buffer out of the replay.
    let kthreadd = out.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() == 3 && w[0].starts_with("0x") && w[1] == "2" && w[2] == "kthreadd"
    });
    assert!(kthreadd, "lx-ps lists kthreadd as pid 2\n{}", g.dump());
    assert!(
        out.contains("] Lock dependency validator: Copyright"),
        "lx-dmesg prints the log\n{}",
        g.dump()
    );
}

/// The end of a KUnit recording, where UML's helper still waits in `poll` after the kernel
/// exited: `goto end` rests at the helper, a step back goes to the kernel's exit_group,
/// and a step forward returns to the helper.
#[test]
fn the_end_of_a_kunit_recording_steps_back_to_the_exit_and_forward_again() {
    if !testsupport::slow_tests(
        "the_end_of_a_kunit_recording_steps_back_to_the_exit_and_forward_again",
    ) {
        return;
    }
    let d = Scratch::new("linux-kunit-end");
    let trace = d.path("trace");
    record_kunit(kernel(), &trace);
    let mut tl = replayer::Timeline::open(&trace).unwrap();
    tl.seek_end().unwrap();
    tl.seek_last_live().unwrap();
    let end = tl.position().unwrap();
    assert_eq!(tl.step_back().unwrap(), replayer::StopReason::Done);
    let exit = tl.position().unwrap();
    let ev = &tl.events()[exit.event as usize];
    assert!(
        matches!(ev, trace::Event::Syscall(sc) if sc.nr == libc::SYS_exit_group as u64),
        "{exit}: {ev:?}"
    );
    assert_eq!(tl.step_forward().unwrap(), replayer::StopReason::Done);
    assert_eq!(tl.position().unwrap(), end);
}

/// Linux's own lockdep on a replay: the patched suite (linux/patches/0001) takes two
/// mutexes in both orders from two kthreads, one after the other, and PROVE_LOCKING
/// reports the possible circular dependency. The recording replays to the same report
/// three times, and `analyze locks`, stopped where lockdep grows its graph, names the two
/// classes as the kernel's report does (usage bits and wait types) and the cycle, closed
/// by the second kthread.
#[test]
fn lockdeps_report_of_a_lock_order_inversion_replays_and_analyze_names_the_cycle() {
    if !testsupport::slow_tests(
        "lockdeps_report_of_a_lock_order_inversion_replays_and_analyze_names_the_cycle",
    ) {
        return;
    }
    let d = Scratch::new("linux-kunit-lockdep");
    let trace = d.path("trace");
    let r = record_linux(
        kernel(),
        &trace,
        &[
            "kunit.filter_glob=rewind_lockdep",
            "rewind_lockdep_kunit.inversion=1",
        ],
    );
    let recorded = r.stdout.clone();
    for needle in [
        "WARNING: possible circular locking dependency detected",
        "rewind_lock_a",
        "rewind_lock_b",
        "ok 1 rewind_lockdep",
    ] {
        assert!(recorded.contains(needle), "lacks {needle:?}\n{}", r.dump());
    }
    for _ in 0..3 {
        assert!(replayed(&trace, None) == recorded);
    }
    let a = rewind(&["analyze".as_ref(), "locks".as_ref(), trace.as_os_str()]);
    a.assert_success();
    let text = &a.stdout;
    // Each class named as the kernel's own report names it, usage bits and wait types
    // included: `(rewind_lock_a){+.+.}-{3:3}`.
    for class in ["(rewind_lock_a)", "(rewind_lock_b)"] {
        let named = recorded
            .split_whitespace()
            .find(|w| w.starts_with(class) && w.len() > class.len())
            .unwrap_or_else(|| panic!("the kernel's report does not name {class}"))
            .trim_end_matches([',', ':']);
        assert!(text.contains(named), "lacks {named:?}\n{}", a.dump());
    }
    let potential = text
        .split("== Potential deadlocks (lock order) ==")
        .nth(1)
        .and_then(|t| t.split("== Actual deadlocks").next())
        .unwrap_or_default();
    assert!(
        potential.contains("rewind_lock_a")
            && potential.contains("rewind_lock_b")
            && potential.contains("rewind-ba"),
        "the cycle, closed by the second kthread\n{}",
        a.dump()
    );
}
