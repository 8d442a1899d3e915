//! The shipped corpus (corpus/NAME/): each recording replays to the ending its
//! recorded.toml names, with the console and analyzer report its scenario.toml expects —
//! once through `rewind replay`, then in-process with the replayer library, 3 times in all
//! (20 with `REWIND_SOAK=1`); the recordings were made from the kernel sources in this
//! tree; and every scenario still reproduces when re-recorded with the kernel built now —
//! into a scratch directory, never over the shipped files. That last test builds umk's
//! corpus profile and records every scenario until it reproduces (minutes): it runs only
//! with `REWIND_SLOW_TESTS=1`, which .ci/run sets.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testsupport::{run_with_timeout, sha256, workspace, Run, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");
const SCENARIOS: [&str; 6] = ["abba", "hotplug", "uaf", "lostwake", "irqrace", "input"];

/// Replays per scenario: 3, or 20 under `REWIND_SOAK=1`.
fn replays() -> usize {
    testsupport::repetitions(3, 20)
}

fn rewind<S: AsRef<std::ffi::OsStr>>(args: &[S], timeout: Duration) -> Run {
    let mut c = Command::new(REWIND);
    c.args(args).env_remove("RUST_BACKTRACE");
    run_with_timeout(c, timeout, None)
}

fn corpus(name: &str) -> PathBuf {
    workspace().join("corpus").join(name)
}

fn toml_file(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `rewind corpus record`)", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(t: &toml::Table, key: &str) -> Vec<String> {
    t.get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// How the CLI reports the end of a replay that died of a signal (`rewind replay` prints
/// `rewind: replayed program ` and this), from an in-process replay's outcome.
fn ending_of(out: &replayer::Outcome) -> Option<String> {
    match (out.exit, out.last_signal) {
        (Some(trace::ExitStatus::Signaled { signo, .. }), Some((_, regs))) => {
            Some(format!("killed by signal {signo} at rip {:#x}", regs.rip))
        }
        _ => None,
    }
}

/// Replays the shipped pack (once through the CLI, the other times in-process) and
/// analyzes it once.
fn check_shipped(name: &str) {
    let dir = corpus(name);
    let scenario = toml_file(&dir.join("scenario.toml"));
    let expect = scenario["expect"].as_table().expect("[expect]");
    // The one this host replays: the corpus ships one per kind of machine it runs on.
    let pack = testsupport::corpus::pack(name, replayer::host_mismatch_of);
    let recorded = toml_file(&testsupport::corpus::recorded(&pack));
    let ending = recorded["ending"].as_str().expect("ending");
    let size = std::fs::metadata(&pack).expect("shipped pack").len();
    assert_eq!(
        Some(size as i64),
        recorded["pack_bytes"].as_integer(),
        "{name}: the pack is not the one recorded.toml describes"
    );

    // What a user runs: the CLI, its console on stdout and its ending on stderr.
    let r = rewind(
        &["replay".as_ref(), pack.as_os_str()],
        Duration::from_secs(120),
    );
    let last = r
        .stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("rewind: replayed program"))
        .unwrap_or_else(|| panic!("{name} replay 1: no ending\n{}", r.dump()));
    assert_eq!(
        last,
        format!("rewind: replayed program {ending}"),
        "{name}: the CLI replay did not end as recorded\n{}",
        r.dump()
    );
    // The status a shell sees for death by signal N.
    assert!(
        r.status.code().is_some_and(|c| c > 128),
        "{name}: exit status\n{}",
        r.dump()
    );
    for line in strings(expect, "console") {
        assert!(
            r.stdout.contains(&line),
            "{name} replay 1: console lacks {line:?}\n{}",
            r.dump()
        );
    }
    // The repetitions are about the replay being deterministic, not about the CLI: run
    // them in-process, and require the very console the CLI printed.
    let n = replays();
    for i in 2..=n {
        let out = replayer::replay(
            &pack,
            replayer::ReplayOptions {
                console: replayer::Console::Buffer(Vec::new()),
                pace: false,
            },
        )
        .unwrap_or_else(|e| panic!("{name} replay {i}/{n}: {e}"));
        assert_eq!(
            ending_of(&out).as_deref(),
            Some(ending),
            "{name} replay {i}/{n}: ended {:?}, recorded {ending}",
            out.exit
        );
        assert!(
            String::from_utf8_lossy(&out.console) == r.stdout,
            "{name} replay {i}/{n}: console differs from the CLI replay's"
        );
    }

    let kind = expect["analyze"].as_str().expect("expect.analyze");
    let r = rewind(
        &["analyze".as_ref(), kind.as_ref(), pack.as_os_str()],
        Duration::from_secs(300),
    );
    assert!(r.status.success(), "{name}: analyze {kind}\n{}", r.dump());
    for line in strings(expect, "report") {
        assert!(
            r.stdout.contains(&line),
            "{name}: `rewind analyze {kind}` lacks {line:?}\n{}",
            r.stdout
        );
    }
    for line in strings(expect, "report_lacks") {
        assert!(
            !r.stdout.contains(&line),
            "{name}: `rewind analyze {kind}` shows {line:?}\n{}",
            r.stdout
        );
    }
}

#[test]
fn shipped_abba_replays_to_its_ending_and_analyzes_as_expected() {
    check_shipped("abba");
}

#[test]
fn shipped_hotplug_replays_to_its_ending_and_analyzes_as_expected() {
    check_shipped("hotplug");
}

#[test]
fn shipped_uaf_replays_to_its_ending_and_analyzes_as_expected() {
    check_shipped("uaf");
}

#[test]
fn shipped_lostwake_replays_to_its_ending_and_analyzes_as_expected() {
    check_shipped("lostwake");
}

#[test]
fn shipped_irqrace_replays_to_its_ending_and_analyzes_as_expected() {
    check_shipped("irqrace");
}

#[test]
fn shipped_input_replays_to_its_ending_and_analyzes_as_expected() {
    check_shipped("input");
}

#[test]
fn shipped_recordings_were_made_from_this_trees_kernel() {
    let r = rewind(&["corpus", "list"], Duration::from_secs(600));
    assert!(r.status.success(), "{}", r.dump());
    for name in SCENARIOS {
        let packs = testsupport::corpus::packs(name);
        assert!(!packs.is_empty(), "corpus/{name} ships no recording");
        for pack in packs {
            let file = pack.file_name().unwrap().to_string_lossy().into_owned();
            let line = r
                .stdout
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{name}/{file}:")))
                .unwrap_or_else(|| panic!("{name}/{file} not listed\n{}", r.stdout));
            assert!(
                line.contains("up to date"),
                "umk changed since corpus/{name}/{file} was recorded; re-record it deliberately \
                 with `cargo run --release -- corpus record {name}` on a machine of its kind \
                 and commit the result:\n{line}"
            );
        }
    }
}

#[test]
fn every_scenario_reproduces_with_the_kernel_built_now() {
    if !testsupport::slow_tests("every_scenario_reproduces_with_the_kernel_built_now") {
        return;
    }
    let d = Scratch::new("corpus-rerecord");
    let shipped: Vec<Vec<(PathBuf, String)>> = SCENARIOS
        .iter()
        .map(|n| {
            testsupport::corpus::packs(n)
                .into_iter()
                .map(|p| {
                    let h = sha256(&p);
                    (p, h)
                })
                .collect()
        })
        .collect();
    let r = rewind(
        &[
            "corpus".as_ref(),
            "record".as_ref(),
            "--all".as_ref(),
            "--out".as_ref(),
            d.0.as_os_str(),
        ],
        Duration::from_secs(1800),
    );
    assert!(r.status.success(), "{}", r.dump());
    for (n, before) in SCENARIOS.iter().zip(&shipped) {
        let fresh = toml_file(&d.path(n).join("recorded.toml"));
        let runs = fresh["runs"].as_integer().expect("runs");
        eprintln!("{n}: reproduced after {runs} run(s): {}", fresh["tally"]);
        assert!(
            r.stdout
                .contains(&format!("{n}: seed {} after {runs} run(s)", fresh["seed"])),
            "{}",
            r.stdout
        );
        assert!(d.path(n).join("recording.rwpack").is_file());
        for (pack, sha) in before {
            assert_eq!(&sha256(pack), sha, "{} was overwritten", pack.display());
        }
    }
}

#[test]
fn an_unknown_scenario_is_refused_by_name_before_anything_runs() {
    let d = Scratch::new("corpus-unknown");
    let r = rewind(
        &[
            "corpus".as_ref(),
            "record".as_ref(),
            "abba".as_ref(),
            "nosuch".as_ref(),
            "--out".as_ref(),
            d.0.as_os_str(),
        ],
        Duration::from_secs(60),
    );
    assert!(!r.status.success(), "{}", r.dump());
    assert!(
        r.stderr.contains(
            "unknown scenario \"nosuch\"; the corpus has: abba, hotplug, uaf, lostwake, irqrace, input"
        ),
        "{}",
        r.dump()
    );
    assert!(
        !d.path("abba").exists(),
        "abba was recorded before the refusal"
    );
}
