//! The shipped recordings (corpus/NAME/recording.rwpack): recordings of umk's bug
//! scenarios kept in git, for tests that need such a recording but are not about making
//! one — replaying them costs no recording and needs no recorder.

use std::path::PathBuf;

/// corpus/`name`/ in the workspace.
pub fn dir(name: &str) -> PathBuf {
    crate::workspace().join("corpus").join(name)
}

/// The shipped pack of scenario `name` (e.g. "abba").
pub fn pack(name: &str) -> PathBuf {
    let p = dir(name).join("recording.rwpack");
    assert!(p.is_file(), "no shipped recording at {}", p.display());
    p
}
