//! Where traces go when no `-o` is given, as rr does it: a per-user directory
//! (`$XDG_DATA_HOME/rewind`, else `~/.local/share/rewind`) holding `PROGRAM-N` traces and
//! a `latest` symlink to the newest.

use std::io;
use std::path::{Path, PathBuf};

/// The per-user trace directory.
pub fn default_root() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("rewind");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".local/share/rewind");
    }
    PathBuf::from("rewind-traces")
}

/// Reserves a fresh `root/NAME-N` for `program` (creating it, so two recorders never
/// pick the same one).
pub fn new_trace_dir(root: &Path, program: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    let name = program
        .file_name()
        .map_or_else(|| "trace".into(), |n| n.to_string_lossy().into_owned());
    for n in 0u32.. {
        let dir = root.join(format!("{name}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free trace name"))
}

/// Points `root/latest` at `dir` (replaced atomically).
pub fn update_latest(root: &Path, dir: &Path) -> io::Result<()> {
    let target = dir
        .file_name()
        .map_or_else(|| dir.to_path_buf(), PathBuf::from);
    let tmp = root.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)?;
    std::fs::rename(&tmp, root.join("latest"))
}

/// The trace a command means: `given`, or the latest one.
pub fn resolve(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| default_root().join("latest"), Path::to_path_buf)
}
