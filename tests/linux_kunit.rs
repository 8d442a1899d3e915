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

/// Records KUnit on `linux` into `trace`; returns what the kernel printed.
fn record_kunit(linux: &Path, trace: &Path) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "record".as_ref(),
        "-o".as_ref(),
        trace.as_os_str(),
        "--".as_ref(),
        linux.as_os_str(),
    ];
    args.extend(KUNIT_ARGS.iter().map(std::ffi::OsStr::new));
    let r = rewind(&args);
    r.assert_success();
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
    let wrapper = testsupport::gdb_batch_wrapper(&d, "gdb-batch", &cmds);
    let g = rewind(&[
        "gdb".as_ref(),
        trace.as_os_str(),
        "--gdb".as_ref(),
        wrapper.as_os_str(),
    ]);
    assert!(g.status.success(), "{}", g.dump());
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
