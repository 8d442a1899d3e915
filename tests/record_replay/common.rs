//! What the modules of this test share: the recording helpers of the support crate, C
//! compilation, and an in-process replay into a buffer.

pub use testsupport::cc;
pub use testsupport::record::{events, record, record_umk, rewrite};

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
