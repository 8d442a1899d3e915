//! What the modules of this test share: the recording helpers of the support crate, C
//! compilation, and an in-process replay into a buffer.

pub use testsupport::record::{events, record, record_umk, record_with, rewrite, rewrite_all};
pub use testsupport::{cc, cc_with};

/// Replays `trace` in-process into a buffer.
pub fn replay(trace: &std::path::Path) -> replayer::Outcome {
    replayer::replay(
        trace,
        replayer::ReplayOptions {
            console: replayer::Console::Buffer(Vec::new()),
            pace: false,
        },
    )
    .unwrap_or_else(|e| panic!("replay of {} failed: {e}", trace.display()))
}

/// Replays `trace`, which must be refused: the error, as printed.
#[track_caller]
pub fn refusal(trace: &std::path::Path) -> String {
    let options = replayer::ReplayOptions {
        console: replayer::Console::Buffer(Vec::new()),
        pace: false,
    };
    match replayer::replay(trace, options) {
        Ok(o) => panic!("{} replayed to {:?}", trace.display(), o.exit),
        Err(e) => e.to_string(),
    }
}

/// Replays `trace` 3 times (20 under `REWIND_SOAK=1`); each must print `stdout` and end
/// with `exit`.
#[track_caller]
pub fn replays_identically(trace: &std::path::Path, stdout: &[u8], exit: trace::ExitStatus) {
    for i in 0..testsupport::repetitions(3, 20) {
        let out = replay(trace);
        assert_eq!(out.exit, Some(exit), "run {i}: end differs");
        assert!(
            out.console == stdout,
            "run {i}: console differs\n--- recorded ---\n{}\n--- replayed ---\n{}",
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(&out.console)
        );
    }
}
