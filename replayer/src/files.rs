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
pub fn check_binary(trace: &Path, h: &Header, found: &Path) -> Result<()> {
    let expected = PathBuf::from(OsStr::from_bytes(&h.binary.path));
    let mismatch = |why: String| Error::BinaryMismatch {
        trace: trace.to_path_buf(),
        expected: expected.clone(),
        expected_sha: h.binary.sha256.hex(),
        found: found.to_path_buf(),
        why,
    };
    let bytes = std::fs::read(found).map_err(|e| mismatch(format!("cannot be read ({e})")))?;
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

/// Where and how the replay execs the guest: the working directory and the execve path.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The working directory to start in.
    pub cwd: PathBuf,
    /// The path handed to execve, relative to `cwd` or absolute.
    pub program: PathBuf,
    /// The file that is run (for symbols and the hash check).
    pub binary: PathBuf,
}

/// How to start the recording: from the recorded paths, or, for a packed trace, from the
/// binary it carries. The packed binary is linked under a name exactly as long as the
/// recorded execve path, so the kernel lays out the initial stack (which holds that
/// string) at the same addresses; the string's bytes are then rewritten at the exec stop
/// (`exec::start`). Nothing else in the replay touches host paths: files are emulated.
pub fn launch(trace: &Path, reader: &trace::TraceReader) -> Result<Launch> {
    let h = reader.header();
    let Some(packed) = reader.packed_binary() else {
        let cwd = PathBuf::from(OsStr::from_bytes(&h.cwd));
        let program = program_path(h);
        let binary = cwd.join(&program);
        return Ok(Launch {
            cwd,
            program,
            binary,
        });
    };
    let setup = |why: String| Error::Setup {
        trace: trace.to_path_buf(),
        why,
    };
    let cwd = reader.dir().join("launch");
    let program = same_length_name(&h.program, &packed).ok_or_else(|| {
        setup(format!(
            "the recorded program path {:?} is too short to stand in for (needs 3+ bytes)",
            String::from_utf8_lossy(&h.program)
        ))
    })?;
    let linked = cwd.join(&program);
    if !linked.exists() {
        let parent = linked.parent().unwrap_or(&cwd);
        std::fs::create_dir_all(parent)
            .map_err(|e| setup(format!("creating {}: {e}", parent.display())))?;
        std::fs::hard_link(&packed, &linked)
            .or_else(|_| std::fs::copy(&packed, &linked).map(|_| ()))
            .map_err(|e| {
                setup(format!(
                    "placing the packed binary at {}: {e}",
                    linked.display()
                ))
            })?;
    }
    Ok(Launch {
        cwd,
        program,
        binary: packed,
    })
}

/// A relative path (`./…`) of exactly `recorded.len()` bytes ending in the packed file's
/// name where it fits; components are kept under the 255-byte name limit.
fn same_length_name(recorded: &[u8], packed: &Path) -> Option<PathBuf> {
    const COMPONENT: usize = 200;
    let mut left = recorded.len().checked_sub(2).filter(|&n| n > 0)?;
    let base = Path::new(OsStr::from_bytes(recorded))
        .file_name()
        .or(packed.file_name())
        .map(|b| b.as_bytes().to_vec())
        .unwrap_or_default();
    let mut out = b"./".to_vec();
    while left > COMPONENT + 1 {
        out.extend(vec![b'_'; COMPONENT]);
        out.push(b'/');
        left -= COMPONENT + 1;
    }
    let keep = base.len().min(left);
    out.extend(vec![b'_'; left - keep]);
    out.extend(&base[base.len() - keep..]);
    Some(PathBuf::from(OsStr::from_bytes(&out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_names_are_exactly_as_long_as_the_recorded_path() {
        let packed = Path::new("/tmp/x/binary");
        for len in [3usize, 4, 29, 203, 204, 255, 256, 600, 4000] {
            let mut recorded = vec![b'a'; len.saturating_sub(4)];
            recorded.extend_from_slice(b"/umk");
            recorded.truncate(len);
            let name = same_length_name(&recorded, packed).expect("a stand-in");
            let bytes = name.as_os_str().as_bytes();
            assert_eq!(bytes.len(), len, "{name:?}");
            assert!(bytes.starts_with(b"./"), "{name:?}");
            assert!(
                bytes.split(|&b| b == b'/').all(|c| c.len() <= 255),
                "a component over 255 bytes in {len}"
            );
            // The last component keeps as much of the recorded file name as fits.
            let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or_default();
            let base = recorded.rsplit(|&b| b == b'/').next().unwrap_or_default();
            let kept: Vec<u8> = last.iter().copied().skip_while(|&b| b == b'_').collect();
            assert!(base.ends_with(&kept), "{name:?}");
            assert!(kept == base || kept.len() == last.len(), "{name:?}");
        }
        assert_eq!(same_length_name(b"/a", packed), None);
    }
}
