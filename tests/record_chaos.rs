//! `rewind record --chaos` and `--until` on umk: chaos adds tick-placed timer interrupts
//! that `dump` marks, `--until crash` turns the flaky `irqrace` scenario into one kept
//! trace, and a clean workload exhausts `--max-runs` with every run accounted for and
//! nothing left behind.

use std::path::Path;
use std::process::Command;

use testsupport::{make_ext2, run_with_timeout, Run, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

/// The release umk: chaos placement is about ticks, but the scenarios' work loops are
/// sized for an optimized kernel.
fn umk() -> &'static Path {
    testsupport::umk_release_binary()
}

fn script(d: &Scratch, lines: &[&str]) -> String {
    let p = testsupport::script(d, "init", lines);
    testsupport::arg("init", &p)
}

fn rewind(args: &[&std::ffi::OsStr]) -> Run {
    let mut c = Command::new(REWIND);
    c.args(args).env_remove("RUST_BACKTRACE");
    run_with_timeout(c, std::time::Duration::from_secs(120), None)
}

fn record(out: &Path, extra: &[&str], guest: &[String]) -> Run {
    let mut args: Vec<&std::ffi::OsStr> = vec!["record".as_ref(), "-o".as_ref(), out.as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.push("--".as_ref());
    args.push(umk().as_os_str());
    args.extend(guest.iter().map(std::ffi::OsStr::new));
    rewind(&args)
}

fn signals(trace: &Path) -> Vec<trace::SignalEvent> {
    let r = trace::open(trace).unwrap();
    assert!(r.is_complete());
    r.events()
        .unwrap()
        .filter_map(|e| match e.unwrap().1 {
            trace::Event::Signal(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// `--until`'s line naming the run it kept.
#[track_caller]
fn reproduction_line(r: &Run) -> &str {
    r.stderr
        .lines()
        .find(|l| l.contains("bug reproduced on run"))
        .unwrap_or_else(|| panic!("no reproduction line\n{}", r.dump()))
}

/// The trace's last event is the program's death by SIGABRT (umk's panic).
#[track_caller]
fn assert_ends_in_sigabrt(reader: &trace::TraceReader) {
    let last = reader.events().unwrap().last().unwrap().unwrap().1;
    assert_eq!(
        last,
        trace::Event::Exit(trace::ExitStatus::Signaled {
            signo: 6,
            core: false
        })
    );
}

#[test]
fn chaos_adds_tick_placed_interrupts_that_dump_shows() {
    let d = Scratch::new("chaos-stress");
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[]);
    let guest = vec![
        testsupport::arg("ubd0", &img),
        script(&d, &["mount ubd0", "stress 2 20", "halt"]),
    ];
    let plain = d.path("plain");
    record(&plain, &[], &guest).assert_success();
    let chaos = d.path("chaos");
    record(&chaos, &["--chaos", "5"], &guest).assert_success();

    let before = signals(&plain);
    let after = signals(&chaos);
    let synthetic: Vec<_> = after
        .iter()
        .filter(|s| trace::chaos::is_synthetic(&s.siginfo))
        .collect();
    assert!(
        after.len() > before.len() && !synthetic.is_empty(),
        "chaos run has {} signals ({} synthetic), plain run {}",
        after.len(),
        synthetic.len(),
        before.len()
    );
    assert!(before
        .iter()
        .all(|s| !trace::chaos::is_synthetic(&s.siginfo)));
    for s in &synthetic {
        assert_eq!(s.signo, 14, "synthetic interrupts are SIGALRMs");
        assert_eq!(s.placement, trace::Placement::Tick { ticks: s.ticks });
    }

    let dump = rewind(&["dump".as_ref(), "--header".as_ref(), chaos.as_os_str()]);
    dump.assert_success();
    assert!(
        dump.stdout.contains("# chaos seed 5 "),
        "no chaos line in the header dump\n{}",
        dump.dump()
    );
    let marked = dump
        .stdout
        .lines()
        .filter(|l| l.contains("(chaos)"))
        .count();
    assert_eq!(marked, synthetic.len(), "{}", dump.stdout);
    let plain_dump = rewind(&["dump".as_ref(), "--header".as_ref(), plain.as_os_str()]);
    assert!(
        !plain_dump.stdout.contains("# chaos") && !plain_dump.stdout.contains("(chaos)"),
        "{}",
        plain_dump.stdout
    );
}

/// Without the execution-point ABI chaos can only move task switches: a program with one
/// task gives it no choice to make, and `--until` says so after one run instead of
/// trying every seed.
#[test]
fn until_stops_at_once_for_a_single_task_program_without_ticks() {
    let d = Scratch::new("chaos-true");
    let out = d.path("t");
    let r = rewind(&[
        "record".as_ref(),
        "--chaos".as_ref(),
        "1".as_ref(),
        "--until".as_ref(),
        "crash".as_ref(),
        "--max-runs".as_ref(),
        "5".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--".as_ref(),
        "/bin/true".as_ref(),
    ]);
    assert_ne!(r.status.code(), Some(0), "{}", r.dump());
    assert!(
        r.stderr.contains("run 1 (seed 1)")
            && r.stderr.contains("one task and no execution-point ABI"),
        "{}",
        r.dump()
    );
    assert!(!out.exists(), "a discarded run left {}", out.display());
}

#[test]
fn until_crash_reproduces_irqrace_and_keeps_one_trace() {
    let d = Scratch::new("until-irqrace");
    let guest = vec![script(&d, &["bug irqrace", "halt"])];
    let traces = d.path("traces");
    std::fs::create_dir(&traces).unwrap();
    let out = traces.join("irqrace");
    let r = record(&out, &["--until", "crash", "--max-runs", "10"], &guest);
    assert_eq!(r.status.code(), Some(0), "{}", r.dump());
    let line = reproduction_line(&r);
    assert!(line.contains("killed by SIGABRT"), "{line}");
    eprintln!("measured: {line}");
    let kept: Vec<_> = std::fs::read_dir(&traces).unwrap().collect();
    assert_eq!(kept.len(), 1, "exactly one trace is kept");
    let reader = trace::open(&out).unwrap();
    assert!(reader.chaos().unwrap().is_some());
    assert_ends_in_sigabrt(&reader);
}

#[test]
fn until_hang_keeps_the_deadlock_the_guests_hung_task_detector_turned_into_a_panic() {
    let d = Scratch::new("until-abba");
    // abba deadlocks when a timer lands in its window; umk's hung-task detector then
    // reports both tasks and panics (SIGABRT), well before the recorder's timeout.
    let guest = vec![script(&d, &["bug abba", "halt"])];
    let out = d.path("abba");
    let r = record(&out, &["--until", "hang", "--max-runs", "40"], &guest);
    assert_eq!(r.status.code(), Some(0), "{}", r.dump());
    let line = reproduction_line(&r);
    assert!(
        line.contains("hung (the guest's hung-task detector panicked; killed by SIGABRT)"),
        "{line}"
    );
    eprintln!("measured: {line}");
    let reader = trace::open(&out).unwrap();
    assert_ends_in_sigabrt(&reader);
}

#[test]
fn until_hang_on_runs_that_all_crash_names_the_goal_that_would_keep_them() {
    let d = Scratch::new("until-irqrace-hang");
    // irqrace with its window widened corrupts the job list and panics on every run: a
    // crash, no hung task.
    let guest = vec![
        "bug_window=1".to_string(),
        script(&d, &["bug irqrace", "halt"]),
    ];
    let traces = d.path("traces");
    std::fs::create_dir(&traces).unwrap();
    let out = traces.join("irqrace");
    let r = record(
        &out,
        &["--until", "hang", "--max-runs", "1", "--chaos", "1"],
        &guest,
    );
    assert_ne!(r.status.code(), Some(0), "{}", r.dump());
    assert!(
        r.stderr.contains(
            "no hang in 1 runs (seeds 1-1): 1 killed by SIGABRT; every run crashed: \
             `--until crash` would have kept the first (seed 1)"
        ),
        "{}",
        r.dump()
    );
    assert_eq!(std::fs::read_dir(&traces).unwrap().count(), 0);
}

#[test]
fn until_crash_on_a_clean_workload_accounts_for_every_run_and_keeps_nothing() {
    let d = Scratch::new("until-clean");
    // Long enough for timer interrupts, so that the seed matters to every run.
    let guest = vec![script(&d, &["sleep 0.1", "halt"])];
    let traces = d.path("traces");
    std::fs::create_dir(&traces).unwrap();
    let out = traces.join("clean");
    let r = record(&out, &["--until", "crash", "--max-runs", "2"], &guest);
    assert_ne!(r.status.code(), Some(0), "{}", r.dump());
    assert!(
        r.stderr
            .contains("no crash in 2 runs (seeds 1-2): 2 exited 0"),
        "{}",
        r.dump()
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.dump());
    assert_eq!(std::fs::read_dir(&traces).unwrap().count(), 0);
}

#[test]
fn a_hang_is_stopped_at_the_timeout_and_closed_as_aborted() {
    let d = Scratch::new("until-hang");
    let guest = vec![script(&d, &["sleep 30", "halt"])];
    let out = d.path("hang");
    let r = record(
        &out,
        &[
            "--until",
            "hang",
            "--timeout",
            "1",
            "--max-runs",
            "1",
            "--chaos",
            "3",
        ],
        &guest,
    );
    assert_eq!(r.status.code(), Some(0), "{}", r.dump());
    assert!(
        r.stderr
            .contains("bug reproduced on run 1 (seed 3): hung (stopped at the timeout)"),
        "{}",
        r.dump()
    );
    let reader = trace::open(&out).unwrap();
    assert!(reader.is_complete());
    match reader.events().unwrap().last().unwrap().unwrap().1 {
        trace::Event::Aborted { reason } => {
            assert!(reason.contains("aborted-by-timeout"), "{reason}")
        }
        other => panic!("last event {other:?}"),
    }
}

#[test]
fn until_stops_at_once_when_the_guest_fails_before_any_interrupt() {
    // A missing disk image: umk refuses it before booting, the same way under every seed.
    let d = Scratch::new("until-no-disk");
    let missing = d.path("missing.img");
    let guest = vec![
        testsupport::arg("ubd0", &missing),
        script(&d, &["bug abba"]),
    ];
    let out = d.path("trace");
    let r = record(&out, &["--until", "crash", "--max-runs", "5"], &guest);
    assert_ne!(r.status.code(), Some(0), "{}", r.dump());
    assert!(
        r.stderr.contains(&format!(
            "umk: ubd0: cannot open '{}': ENOENT",
            missing.display()
        )),
        "umk's own message reaches the user\n{}",
        r.dump()
    );
    assert!(
        r.stderr.contains(
            "run 1 (seed 1) exited 2 before any interrupt reached it or another task could \
             run: the program ended before its racy part"
        ),
        "{}",
        r.dump()
    );
    assert!(!r.stderr.contains("run 2 (seed 2)"), "{}", r.dump());
    assert!(!out.exists(), "the discarded run's trace is gone");
}
