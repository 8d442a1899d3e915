//! The shipped corpus (corpus/NAME/): each recording replays 20 times to the ending its
//! recorded.toml names, with the console and analyzer report its scenario.toml expects;
//! the recordings were made from the kernel sources in this tree; and every scenario still
//! reproduces when re-recorded with the kernel built now — into a scratch directory, never
//! over the shipped files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testsupport::{run_with_timeout, sha256, workspace, Run, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");
const SCENARIOS: [&str; 6] = ["abba", "hotplug", "uaf", "lostwake", "irqrace", "input"];
const REPLAYS: usize = 20;

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

/// Replays the shipped pack REPLAYS times and analyzes it once.
fn check_shipped(name: &str) {
    let dir = corpus(name);
    let scenario = toml_file(&dir.join("scenario.toml"));
    let expect = scenario["expect"].as_table().expect("[expect]");
    let recorded = toml_file(&dir.join("recorded.toml"));
    let ending = recorded["ending"].as_str().expect("ending");
    let pack = dir.join("recording.rwpack");
    let size = std::fs::metadata(&pack).expect("shipped pack").len();
    assert_eq!(
        Some(size as i64),
        recorded["pack_bytes"].as_integer(),
        "{name}: the pack is not the one recorded.toml describes"
    );

    let mut endings = Vec::new();
    for n in 1..=REPLAYS {
        let r = rewind(
            &["replay".as_ref(), pack.as_os_str()],
            Duration::from_secs(120),
        );
        let last = r
            .stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("rewind: replayed program"))
            .unwrap_or_else(|| panic!("{name} replay {n}: no ending\n{}", r.dump()))
            .to_string();
        for line in strings(expect, "console") {
            assert!(
                r.stdout.contains(&line),
                "{name} replay {n}: console lacks {line:?}\n{}",
                r.dump()
            );
        }
        endings.push((last, r.status.code()));
    }
    let want = format!("rewind: replayed program {ending}");
    let matching = endings.iter().filter(|(e, _)| *e == want).count();
    assert_eq!(
        matching, REPLAYS,
        "{name}: {matching}/{REPLAYS} replays ended as recorded ({want}); endings: {endings:?}"
    );
    assert!(
        endings.iter().all(|(_, c)| *c == endings[0].1),
        "{endings:?}"
    );

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
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed\n{}", r.stdout));
        assert!(
            line.contains("up to date"),
            "umk changed since corpus/{name} was recorded; re-record it deliberately with \
             `cargo run --release -- corpus record {name}` and commit the result:\n{line}"
        );
    }
}

#[test]
fn every_scenario_reproduces_with_the_kernel_built_now() {
    let d = Scratch::new("corpus-rerecord");
    let shipped: Vec<String> = SCENARIOS
        .iter()
        .map(|n| sha256(&corpus(n).join("recording.rwpack")))
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
        assert_eq!(
            &sha256(&corpus(n).join("recording.rwpack")),
            before,
            "corpus/{n} was overwritten"
        );
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
