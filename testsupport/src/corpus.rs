//! The shipped recordings (corpus/NAME/recording.rwpack, and `recording.KIND.rwpack` for
//! the hosts that cannot replay that one): recordings of umk's bug scenarios kept in git,
//! for tests that need such a recording but are not about making one — replaying them
//! costs no recording and needs no recorder.
//!
//! A recording replays only on a host whose CPU builds signal frames of the recorded size
//! (and, when it ran `cpuid` natively, on the same CPU model), so the corpus ships one per
//! kind of machine its tests run on; [`pack`] picks the one this host replays.

use std::path::{Path, PathBuf};

/// corpus/`name`/ in the workspace.
pub fn dir(name: &str) -> PathBuf {
    crate::workspace().join("corpus").join(name)
}

/// Every shipped pack of scenario `name`, `recording.rwpack` first.
pub fn packs(name: &str) -> Vec<PathBuf> {
    let dir = dir(name);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("recording.") && n.ends_with(".rwpack"))
        })
        .collect();
    found.sort_by_key(|p| {
        (
            p.file_name() != Some("recording.rwpack".as_ref()),
            p.clone(),
        )
    });
    found
}

/// The `recorded.toml` that describes shipped `pack`.
pub fn recorded(pack: &Path) -> PathBuf {
    let name = pack.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let kind = name
        .strip_prefix("recording.")
        .and_then(|r| r.strip_suffix(".rwpack"));
    pack.with_file_name(match kind {
        Some(kind) => format!("recorded.{kind}.toml"),
        None => "recorded.toml".to_string(),
    })
}

/// The shipped pack of scenario `name` (e.g. "abba") that this host can replay, judged
/// by `mismatch` (the replayer's `host_mismatch_of`: why this host cannot replay a
/// recording). Fails, naming every pack's reason and the command that records one for
/// this host, when none fits.
pub fn pack<E: std::fmt::Display>(
    name: &str,
    mismatch: impl Fn(&Path) -> Result<Vec<String>, E>,
) -> PathBuf {
    let mut refused = Vec::new();
    for p in packs(name) {
        match mismatch(&p) {
            Ok(why) if why.is_empty() => return p,
            Ok(why) => refused.push(format!("{}: {}", p.display(), why.join("; "))),
            Err(e) => refused.push(format!("{}: {e}", p.display())),
        }
    }
    panic!(
        "no shipped recording of {name} replays on this host:\n  {}\nrecord one for this \
         kind of machine with `cargo run --release -- corpus record {name}` (it is written \
         beside the others) and commit it",
        refused.join("\n  ")
    )
}
