//! Files, replayer side (mirror of `recorder::files`): the binary to run is found where it
//! was recorded and must have the recorded hash; file contents come from trace blobs.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use trace::{BlobHash, Header};

use crate::error::{Error, Result};

/// The program to exec, as the recorder exec'd it: the same string (so the initial stack
/// is identical), resolved through the recorded $PATH when it has no slash.
pub fn program_path(h: &Header) -> PathBuf {
    let prog = Path::new(OsStr::from_bytes(&h.program));
    if h.program.contains(&b'/') {
        return prog.to_path_buf();
    }
    let path = h
        .env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    let cwd = Path::new(OsStr::from_bytes(&h.cwd));
    for dir in path.split(|&b| b == b':') {
        let cand = Path::new(OsStr::from_bytes(dir)).join(prog);
        if cwd.join(&cand).is_file() {
            return cand;
        }
    }
    prog.to_path_buf()
}

/// Refuses a binary whose contents differ from the recorded one.
pub fn check_binary(trace: &Path, h: &Header, cwd: &Path, program: &Path) -> Result<()> {
    let expected = PathBuf::from(OsStr::from_bytes(&h.binary.path));
    let found = cwd.join(program);
    let mismatch = |why: String| Error::BinaryMismatch {
        trace: trace.to_path_buf(),
        expected: expected.clone(),
        expected_sha: h.binary.sha256.hex(),
        found: found.clone(),
        why,
    };
    let bytes = std::fs::read(&found).map_err(|e| mismatch(format!("cannot be read ({e})")))?;
    if bytes.len() as u64 != h.binary.size || BlobHash::of(&bytes) != h.binary.sha256 {
        let build = recorder::ticks::build_id(&bytes);
        let hex = |b: &Option<Vec<u8>>| {
            b.as_ref().map_or("none".to_string(), |v| {
                v.iter().map(|x| format!("{x:02x}")).collect()
            })
        };
        return Err(mismatch(format!(
            "has sha256 {} and build-id {} (recorded build-id {})",
            BlobHash::of(&bytes).hex(),
            hex(&build),
            hex(&h.binary.build_id)
        )));
    }
    Ok(())
}
