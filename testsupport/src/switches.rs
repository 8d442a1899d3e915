//! Environment switches that choose how much the suite does, so that a developer's
//! `cargo test` stays fast while CI and soak runs do everything:
//!
//! * `REWIND_SOAK=1`: tests that replay one recording many times to show the replay is
//!   deterministic do their soak count (20) instead of their default (3).
//! * `REWIND_SLOW_TESTS=1`: run the tests that rebuild or re-record everything (set by
//!   .ci/run). Without it they say on stderr that they were skipped and how to run them.

use std::io::Write;

/// How many times to repeat: `soak` under `REWIND_SOAK=1`, else `default`.
pub fn repetitions(default: usize, soak: usize) -> usize {
    if switch_on("REWIND_SOAK") {
        soak
    } else {
        default
    }
}

/// True if the slow tests are asked for (`REWIND_SLOW_TESTS=1`). Otherwise prints, on
/// stderr, that `test` was skipped and how to run it, and returns false.
pub fn slow_tests(test: &str) -> bool {
    if switch_on("REWIND_SLOW_TESTS") {
        return true;
    }
    // Straight to the stderr handle: the test harness captures eprintln! of tests that
    // pass, and this line must be seen in a plain `cargo test`.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: a slow test; run it with REWIND_SLOW_TESTS=1 (.ci/run sets it), e.g. \
         REWIND_SLOW_TESTS=1 cargo test --release --test corpus"
    );
    false
}

/// A switch is on when set to anything but empty or "0".
fn switch_on(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}
