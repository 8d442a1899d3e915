//! The six bug scenarios with their race windows widened (bug_window=1): each reaches its
//! own report and, where it panics, dies by SIGABRT as a crashed kernel should. A clean
//! workload under the same settings does not panic, and a bad scenario name is refused.

use std::io::Write;
use std::time::{Duration, Instant};

use testsupport::{arg, make_ext2, run_umk, run_umk_fed, script, Run, Scratch};

const SIGABRT: i32 = 6;

/// Boots umk on a fresh image with `lines` as init script and `extra` arguments.
fn boot(tag: &str, lines: &[&str], extra: &[&str]) -> Run {
    let d = Scratch::new(tag);
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[("etc/motd", "motd\n")]);
    let s = script(&d, "init", lines);
    let mut args = vec!["mem=32M".to_string(), arg("ubd0", &img), arg("init", &s)];
    args.extend(extra.iter().map(|a| a.to_string()));
    run_umk(&args)
}

/// Runs `bug NAME` with bug_window=1. If the scenario fails to fire, the script goes on
/// and halts, so a miss fails fast instead of hanging.
fn scenario(name: &str) -> Run {
    let bug = format!("bug {name}");
    boot(
        &format!("umk-bug-{name}"),
        &[&bug, "echo scenario returned", "halt"],
        &["bug_window=1"],
    )
}

/// The kernel panicked with `reason` (printed and closed) and died by SIGABRT.
#[track_caller]
fn assert_panicked(r: &Run, reason: &str) {
    assert_eq!(
        r.signal(),
        Some(SIGABRT),
        "expected death by SIGABRT\n{}",
        r.dump()
    );
    let start = format!("Kernel panic - not syncing: {reason}");
    r.assert_stdout_has(&[&start, &format!("---[ end {start}")]);
    assert!(!r.stdout.contains("System halted."), "{}", r.dump());
}

/// Index of `needle` in stdout, failing the test if it is missing.
#[track_caller]
fn pos(r: &Run, needle: &str) -> usize {
    r.stdout
        .find(needle)
        .unwrap_or_else(|| panic!("stdout lacks {needle:?}\n{}", r.dump()))
}

/// The hung-task report's `task:NAME ...` line for `name`.
#[track_caller]
fn task_line<'a>(r: &'a Run, name: &str) -> &'a str {
    let key = format!("task:{name} ");
    r.stdout
        .lines()
        .find(|l| l.contains(&key))
        .unwrap_or_else(|| panic!("no hung-task line for {name}\n{}", r.dump()))
}

#[test]
fn abba_deadlock_is_reported_by_the_hung_task_detector() {
    let r = scenario("abba");
    assert_panicked(&r, "hung_task: blocked tasks");
    let info1 = pos(&r, "INFO: task abba-1:3 blocked for more than 2 seconds.");
    let info2 = pos(&r, "INFO: task abba-2:4 blocked for more than 2 seconds.");
    let a = task_line(&r, "abba-1");
    assert!(
        a.contains("state:D")
            && a.contains("waiting on mutex abba_lock_b")
            && a.ends_with("held by pid 4"),
        "{a}"
    );
    let b = task_line(&r, "abba-2");
    assert!(
        b.contains("state:D")
            && b.contains("waiting on mutex abba_lock_a")
            && b.ends_with("held by pid 3"),
        "{b}"
    );
    let locks = pos(&r, "Showing all locks held in the system:");
    r.assert_stdout_has(&[
        "1 lock(s) held by abba-1/3:",
        "(abba_lock_a), at: kernel/src/bugs/abba.rs",
        "1 lock(s) held by abba-2/4:",
        "(abba_lock_b), at: kernel/src/bugs/abba.rs",
    ]);
    let panic = pos(&r, "Kernel panic - not syncing: hung_task");
    assert!(
        info1 < locks && info2 < locks && locks < panic,
        "report out of order\n{}",
        r.dump()
    );
    assert!(
        r.stdout.contains("CPU: 0 PID: 1 Comm: khungtaskd"),
        "{}",
        r.dump()
    );
    assert!(!r.stdout.contains("scenario returned"), "{}", r.dump());
}

#[test]
fn hotplug_self_deadlock_on_ubd_lock() {
    let r = scenario("hotplug");
    assert_panicked(&r, "hung_task: blocked tasks");
    let info = r
        .stdout
        .lines()
        .find(|l| l.contains("INFO: task init:"))
        .unwrap_or_else(|| panic!("init not reported\n{}", r.dump()));
    assert!(info.ends_with("blocked for more than 2 seconds."), "{info}");
    let line = task_line(&r, "init");
    let pid = line
        .split("pid:")
        .nth(1)
        .and_then(|p| p.split_whitespace().next())
        .unwrap();
    assert!(
        line.contains("waiting on mutex ubd_lock (")
            && line.ends_with(&format!("held by pid {pid}")),
        "init should wait on a ubd_lock it holds itself: {line}"
    );
    r.assert_stdout_has(&[
        &format!("lock(s) held by init/{pid}:"),
        "(ubd_lock), at: kernel/src/block/ubd.rs",
    ]);
}

#[test]
fn uaf_faults_on_slab_poison() {
    let r = scenario("uaf");
    assert_panicked(&r, "Fatal exception");
    let gpf = pos(
        &r,
        "general protection fault, probably for non-canonical address 0x6b6b6b6b6b6b6b6b",
    );
    assert!(gpf < pos(&r, "Kernel panic - not syncing: Fatal exception"));
    r.assert_stdout_has(&["Oops: ", "RIP: 0x", "Call Trace:"]);
}

#[test]
fn lostwake_leaves_writeback_waiter_hung() {
    let r = scenario("lostwake");
    assert_panicked(&r, "hung_task: blocked tasks");
    let info = r
        .stdout
        .lines()
        .find(|l| l.contains("INFO: task lostwake-wb:"))
        .unwrap_or_else(|| panic!("lostwake-wb not reported\n{}", r.dump()));
    assert!(info.ends_with("blocked for more than 2 seconds."), "{info}");
    let line = task_line(&r, "lostwake-wb");
    assert!(
        line.contains("state:D") && line.contains("waiting on io writeback"),
        "{line}"
    );
}

#[test]
fn irqrace_corrupts_the_job_list() {
    let r = scenario("irqrace");
    assert_eq!(r.signal(), Some(SIGABRT), "{}", r.dump());
    let reason = ["list_add corruption", "list_del corruption"]
        .into_iter()
        .find(|c| {
            r.stdout
                .contains(&format!("Kernel panic - not syncing: {c}"))
        });
    let reason = reason.unwrap_or_else(|| panic!("no list corruption panic\n{}", r.dump()));
    assert_panicked(&r, reason);
}

#[test]
fn input_ctrl_t_during_keymap_rebuild_dereferences_null() {
    let d = Scratch::new("umk-bug-input");
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[]);
    let s = script(&d, "init", &["bug input"]);
    let args = vec![
        "mem=32M".to_string(),
        arg("ubd0", &img),
        arg("init", &s),
        "bug_window=1".to_string(),
    ];
    let r = run_umk_fed(&args, |mut stdin| {
        // Type Ctrl-T now and then for up to 10 s; stdin stays open meanwhile, so the
        // console never sees end of input. A write fails once the kernel is gone.
        std::thread::sleep(Duration::from_millis(300));
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if stdin
                .write_all(&[0x14])
                .and_then(|()| stdin.flush())
                .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_panicked(&r, "Fatal exception");
    let armed = pos(&r, "input: keyboard status on Ctrl-T enabled");
    let oops = pos(
        &r,
        "BUG: kernel NULL pointer dereference, address: 0x0000000000000010",
    );
    assert!(
        armed < oops && oops < pos(&r, "Kernel panic - not syncing: Fatal exception"),
        "{}",
        r.dump()
    );
}

#[test]
fn hung_task_report_without_panic_keeps_the_kernel_alive() {
    // hung_task_panic=0: the deadlock is reported but the kernel runs on; init is stuck, so
    // the management console is what inspects and halts it.
    let d = Scratch::new("umk-bug-nopanic");
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[]);
    let s = script(&d, "init", &["bug abba", "echo scenario returned", "halt"]);
    let sock = d.path("mc.sock");
    let args = vec![
        "mem=32M".to_string(),
        arg("ubd0", &img),
        arg("init", &s),
        arg("mconsole", &sock),
        "bug_window=1".to_string(),
        "hung_task_timeout=1".to_string(),
        "hung_task_panic=0".to_string(),
    ];
    let kernel = std::thread::spawn(move || run_umk(&args));
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            !kernel.is_finished(),
            "umk ended before opening its mconsole socket"
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no mconsole socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The detector checks every second and reports after one; leave it ample time.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !kernel.is_finished(),
        "umk ended although hung_task_panic=0"
    );
    let mc = |req: &str| {
        testsupport::tool(
            "uml_mconsole",
            &[sock.display().to_string(), req.to_string()],
        )
    };
    let tasks = mc("sysrq t");
    assert!(tasks.status.success(), "{}", tasks.dump());
    let abba1 = tasks
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("abba-1 "))
        .unwrap_or_else(|| panic!("{}", tasks.dump()));
    assert!(
        abba1.contains("UNINTERRUPTIBLE") && abba1.contains("mutex abba_lock_b"),
        "{abba1}"
    );
    let halt = mc("halt");
    assert!(halt.status.success(), "{}", halt.dump());
    let r = kernel.join().unwrap();
    r.assert_success();
    let a = task_line(&r, "abba-1");
    assert!(a.contains("waiting on mutex abba_lock_b"), "{a}");
    r.assert_stdout_has(&[
        "INFO: task abba-1:",
        "blocked for more than 1 seconds.",
        "Showing all locks held in the system:",
        "System halted.",
    ]);
    assert!(!r.stdout.contains("Kernel panic"), "{}", r.dump());
    assert!(!r.stdout.contains("scenario returned"), "{}", r.dump());
}

#[test]
fn clean_workload_with_widened_windows_does_not_panic() {
    let r = boot(
        "umk-bug-clean",
        &["stress 2 2", "sleep 2.5", "sysrq d", "uptime", "halt"],
        &["bug_window=1", "hung_task_timeout=1", "hung_task_panic=1"],
    );
    r.assert_success();
    assert_eq!(r.section("stress 2 2"), "stress: 2 tasks x 2 rounds: ok\n");
    assert!(
        !r.stdout.contains("Kernel panic") && !r.stdout.contains("INFO: task"),
        "{}",
        r.dump()
    );
    r.assert_stdout_has(&["System halted."]);
}

#[test]
fn unknown_scenario_is_refused_and_the_kernel_continues() {
    let r = boot(
        "umk-bug-nosuch",
        &["bug nosuch", "echo still here", "halt"],
        &["bug_window=1"],
    );
    r.assert_success();
    let out = r.section("bug nosuch");
    assert!(
        out.contains(
            "bug: unknown scenario 'nosuch' (one of: abba, hotplug, uaf, lostwake, irqrace, input)"
        ),
        "{out}"
    );
    assert_eq!(r.section("echo still here"), "still here\n");
    assert!(!r.stdout.contains("Kernel panic"), "{}", r.dump());
}
