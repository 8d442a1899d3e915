//! Whole-file blobs kept across recordings, so that a recording's start-up does not
//! read, hash and compress the same C library and loader every time: under the trace
//! root (`.files/`, hidden from `rewind ls`), an index from a file's identity to its content hash, and the
//! compressed blobs themselves, which a new trace hard-links (or copies) into its own
//! `blobs/`. rr hard-links its trace files for the same reason.
//!
//! A blob's age is its mtime: when it was kept, or last linked into a trace (`lookup`
//! stamps it). A file's identity is device, inode, size, mtime and ctime (with nanoseconds): any
//! write changes the ctime, which no program can set back, so a file that changed is
//! never taken for the one indexed. The store is only a cache: what cannot be read or
//! written is read from the file instead, and a trace never depends on it (its blobs are
//! its own links; a reader checks each blob's hash).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use trace::{BlobHash, TraceWriter};

/// The store's directory, `$REWIND_FILE_CACHE` (`off`: none) or `ROOT/.files`. A
/// per-user root is needed: with neither `$HOME` nor `$XDG_DATA_HOME` the root is relative
/// to wherever the recorder runs, and a cache there would litter every working directory.
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os("REWIND_FILE_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => Some(crate::tracedir::default_root())
            .filter(|root| root.is_absolute())
            .map(|root| root.join(".files")),
    }
}

/// The cross-recording store of whole-file blobs.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

/// The identity the index is keyed by, as a file name.
fn identity(m: &std::fs::Metadata) -> String {
    format!(
        "{}-{}-{}-{}.{}-{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    )
}

fn parse_hash(hex: &str) -> Option<BlobHash> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(BlobHash(out))
}

impl FileStore {
    /// The store in `dir`, created if missing; `None` if it cannot be. Once a day it
    /// drops the blobs no trace links any more that were not used for a week.
    pub fn open(dir: PathBuf) -> Option<FileStore> {
        std::fs::create_dir_all(dir.join("index")).ok()?;
        std::fs::create_dir_all(dir.join("blobs")).ok()?;
        let store = FileStore { dir };
        store.prune_daily();
        Some(store)
    }

    fn prune_daily(&self) {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let marker = self.dir.join("pruned");
        let age = |p: &std::path::Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
        };
        if age(&marker).is_some_and(|a| a < DAY) || std::fs::write(&marker, b"").is_err() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.dir.join("blobs")) else {
            return;
        };
        for e in entries.flatten() {
            let unlinked = e.metadata().is_ok_and(|m| m.nlink() == 1);
            if unlinked && age(&e.path()).is_some_and(|a| a > 7 * DAY) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// A name for a file being written, unique among this process's threads.
    fn tmp(&self, sub: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(sub)
            .join(format!(".tmp-{}-{n}", std::process::id()))
    }

    fn blob(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join("blobs").join(hash.hex())
    }

    /// The hash of the file with metadata `m`, if indexed and its blob is kept.
    pub fn lookup(&self, m: &std::fs::Metadata) -> Option<(BlobHash, PathBuf)> {
        let text = std::fs::read_to_string(self.dir.join("index").join(identity(m))).ok()?;
        let hash = parse_hash(&text)?;
        let blob = self.blob(&hash);
        // Stamped as used, for `prune_daily`; the link itself changes only the ctime.
        let used = std::fs::File::options()
            .write(true)
            .open(&blob)
            .and_then(|f| f.set_modified(SystemTime::now()));
        used.is_ok().then_some((hash, blob))
    }

    /// Keeps the blob `hash` that `writer` just stored for the file with metadata `m`.
    /// Best effort: a store that cannot be written is simply not used next time.
    pub fn keep(&self, writer: &TraceWriter, m: &std::fs::Metadata, hash: &BlobHash) {
        let blob = self.blob(hash);
        if !blob.is_file() {
            let tmp = self.tmp("blobs");
            let linked = std::fs::hard_link(writer.blob_file(hash), &tmp)
                .or_else(|_| std::fs::copy(writer.blob_file(hash), &tmp).map(|_| ()));
            if linked.is_err() || std::fs::rename(&tmp, &blob).is_err() {
                let _ = std::fs::remove_file(&tmp);
                return;
            }
        }
        let tmp = self.tmp("index");
        if std::fs::write(&tmp, hash.hex()).is_ok()
            && std::fs::rename(&tmp, self.dir.join("index").join(identity(m))).is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
