//! Files, replayer side (mirror of `recorder::files`): the binary to run (found where it
//! was recorded, or carried by the trace) must have the recorded hash, a `#!` script is
//! started through the recorded line; file contents come from trace blobs.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use trace::{BinaryId, BlobHash, Header};

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

/// Refuses a binary whose contents differ from the recorded one, `id`.
pub fn check_binary(trace: &Path, id: &BinaryId, found: &Path) -> Result<()> {
    let expected = PathBuf::from(OsStr::from_bytes(&id.path));
    let mismatch = |why: String| Error::BinaryMismatch {
        trace: trace.to_path_buf(),
        expected: expected.clone(),
        expected_sha: id.sha256.hex(),
        found: found.to_path_buf(),
        why,
    };
    // The path may be the trace's word (an exec's, a header's): never read a device, a
    // FIFO or a file larger than any binary a trace may carry.
    let meta = std::fs::metadata(found).map_err(|e| mismatch(format!("cannot be read ({e})")))?;
    if !meta.is_file() {
        return Err(mismatch("is not a regular file".into()));
    }
    if meta.len() > trace::pack::MAX_BINARY_BYTES {
        return Err(mismatch(format!(
            "is {} bytes, more than a recorded binary may be",
            meta.len()
        )));
    }
    let bytes = std::fs::read(found).map_err(|e| mismatch(format!("cannot be read ({e})")))?;
    if bytes.len() as u64 != id.size || BlobHash::of(&bytes) != id.sha256 {
        let build = guest::binary::build_id(&bytes);
        let hex = |b: &Option<Vec<u8>>| {
            b.as_ref().map_or("none".to_string(), |v| {
                v.iter().map(|x| format!("{x:02x}")).collect()
            })
        };
        return Err(mismatch(format!(
            "has sha256 {} and build-id {} (recorded build-id {})",
            BlobHash::of(&bytes).hex(),
            hex(&build),
            hex(&id.build_id)
        )));
    }
    Ok(())
}

/// Where and how the replay execs the guest: the working directory, the execve path and
/// the argv handed to it.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The working directory to start in.
    pub cwd: PathBuf,
    /// The path handed to execve, relative to `cwd` or absolute.
    pub program: PathBuf,
    /// The argv handed to execve. For a script, the kernel replaces argv\[0] with the
    /// `#!` line's interpreter, its argument and the script's path, which gives the
    /// recorded argv (`exec::start` checks it string by string).
    pub argv: Vec<Vec<u8>>,
    /// The file that is run (for symbols and the hash check): for a script, the
    /// interpreter.
    pub binary: PathBuf,
    /// Stand-in names that reach the initial stack in place of recorded strings, with the
    /// recorded bytes (of the same length) they are rewritten to at the exec stop.
    pub renamed: Vec<(Vec<u8>, Vec<u8>)>,
}

/// How to start the recording: from the recorded paths, or, when the trace carries the
/// binary (a pack, or a directory unpacked from one, with `binary` in it), from that.
///
/// The carried binary is linked under a name exactly as long as the recorded execve path,
/// so the kernel lays out the initial stack (which holds that string) at the same
/// addresses; the string's bytes are then rewritten at the exec stop (`exec::start`). A
/// script is started through a stand-in script of the same path length whose `#!` line
/// names a stand-in for the interpreter (as long as the recorded interpreter string, same
/// argument) linked to the carried binary: the kernel then builds the same argv, and the
/// stand-in strings in it are rewritten the same way. The stand-in needs only its first
/// line: what the interpreter reads of the script is recorded and emulated. Nothing else
/// in the replay touches host paths.
pub fn launch(trace: &Path, reader: &trace::TraceReader) -> Result<Launch> {
    let h = reader.header();
    let setup = |why: String| Error::Setup {
        trace: trace.to_path_buf(),
        why,
    };
    let carried = reader.packed_binary().or_else(|| {
        let unpacked = reader.dir().join(trace::pack::BINARY_ENTRY);
        unpacked.is_file().then_some(unpacked)
    });
    let user_args = match &h.script {
        Some(script) => script_args(h, script).map_err(setup)?,
        None => h.argv.get(1..).unwrap_or_default().to_vec(),
    };
    let Some(carried) = carried else {
        let cwd = PathBuf::from(OsStr::from_bytes(&h.cwd));
        let program = program_path(h);
        let (argv, binary) = match &h.script {
            Some(script) => {
                check_script(&cwd.join(&program), script, h).map_err(setup)?;
                let binary = PathBuf::from(OsStr::from_bytes(&h.binary.path));
                (with_argv0(&bytes(&program), user_args), binary)
            }
            None => (h.argv.clone(), cwd.join(&program)),
        };
        return Ok(Launch {
            cwd,
            program,
            argv,
            binary,
            renamed: Vec::new(),
        });
    };
    let cwd = reader.dir().join("launch");
    let too_short = |what: &str, path: &[u8]| {
        setup(format!(
            "the recorded {what} {:?} is too short to stand in for (needs 3+ bytes)",
            String::from_utf8_lossy(path)
        ))
    };
    let program = same_length_name(&h.program, &carried, b'_')
        .ok_or_else(|| too_short("program path", &h.program))?;
    let Some(script) = &h.script else {
        place(&cwd, &program, |at| link_or_copy(&carried, at)).map_err(setup)?;
        return Ok(Launch {
            cwd,
            renamed: vec![(bytes(&program), h.program.clone())],
            program,
            argv: h.argv.clone(),
            binary: carried,
        });
    };
    // Another padding byte keeps the two stand-ins apart when both names come out alike.
    let interpreter = [b'_', b'-']
        .iter()
        .filter_map(|&pad| same_length_name(&script.interpreter, &carried, pad))
        .find(|name| *name != program)
        .ok_or_else(|| too_short("#! interpreter", &script.interpreter))?;
    place(&cwd, &interpreter, |at| link_or_copy(&carried, at)).map_err(setup)?;
    let mut line = b"#!".to_vec();
    line.extend_from_slice(&bytes(&interpreter));
    if let Some(arg) = &script.arg {
        line.push(b' ');
        line.extend_from_slice(arg);
    }
    line.push(b'\n');
    place(&cwd, &program, |at| write_script(at, &line)).map_err(setup)?;
    Ok(Launch {
        cwd,
        argv: with_argv0(&bytes(&program), user_args),
        renamed: vec![
            (bytes(&program), h.program.clone()),
            (bytes(&interpreter), script.interpreter.clone()),
        ],
        program,
        binary: carried,
    })
}

/// The arguments after the script's path in the recorded argv, which must be the kernel's
/// splice of the recorded `#!` line: interpreter, its argument, the execve path.
fn script_args(h: &Header, script: &trace::Script) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut head = vec![script.interpreter.clone()];
    head.extend(script.arg.clone());
    head.push(h.program.clone());
    if !h.argv.starts_with(&head) {
        return Err(format!(
            "the recorded argv {:?} is not what the kernel makes of the script's #! line \
             {:?} (an interpreter that is itself a script, or binfmt_misc, is not supported)",
            lossy_all(&h.argv),
            lossy_all(&head)
        ));
    }
    Ok(h.argv[head.len()..].to_vec())
}

/// A script run from its recorded path must still start with the recorded `#!` line, and
/// that line must lead to the recorded interpreter: otherwise the kernel would start
/// another program than the recording did.
fn check_script(
    path: &Path,
    script: &trace::Script,
    h: &Header,
) -> std::result::Result<(), String> {
    let pack_hint = "(a packed trace, `rewind pack`, does not need the script)";
    let found = trace::Script::of(path).map_err(|e| {
        format!(
            "the recorded #! script {} cannot be read: {e} {pack_hint}",
            path.display()
        )
    })?;
    if found.as_ref() != Some(script) {
        return Err(format!(
            "the script {} no longer starts with the recorded #! line {:?} (found {:?}) \
             {pack_hint}",
            path.display(),
            line_text(Some(script)),
            line_text(found.as_ref())
        ));
    }
    // The kernel opens a relative interpreter from the working directory.
    let interpreter =
        Path::new(OsStr::from_bytes(&h.cwd)).join(OsStr::from_bytes(&script.interpreter));
    let resolved = std::fs::canonicalize(&interpreter).map_err(|e| {
        format!(
            "the #! interpreter {} cannot be found here ({e}) {pack_hint}",
            String::from_utf8_lossy(&script.interpreter)
        )
    })?;
    if resolved.as_os_str().as_bytes() != h.binary.path.as_slice() {
        return Err(format!(
            "the #! interpreter {} now leads to {}, the recording ran {}",
            String::from_utf8_lossy(&script.interpreter),
            resolved.display(),
            String::from_utf8_lossy(&h.binary.path)
        ));
    }
    Ok(())
}

fn line_text(s: Option<&trace::Script>) -> String {
    match s {
        None => "no #! line".into(),
        Some(s) => {
            let mut t = format!("#!{}", String::from_utf8_lossy(&s.interpreter));
            if let Some(a) = &s.arg {
                t.push(' ');
                t.push_str(&String::from_utf8_lossy(a));
            }
            t
        }
    }
}

fn lossy_all(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// An argv for execve: the kernel drops argv\[0] of a script, so any name does.
fn with_argv0(argv0: &[u8], rest: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut argv = vec![argv0.to_vec()];
    argv.extend(rest);
    argv
}

/// Creates `cwd/name` with `make` unless it is there already (an earlier replay of the
/// same directory made it).
fn place(
    cwd: &Path,
    name: &Path,
    make: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::result::Result<(), String> {
    let at = cwd.join(name);
    let parent = at.parent().unwrap_or(cwd);
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    make(&at).map_err(|e| format!("placing the stand-in {}: {e}", at.display()))
}

fn link_or_copy(from: &Path, at: &Path) -> std::io::Result<()> {
    if at.exists() {
        return Ok(());
    }
    std::fs::hard_link(from, at).or_else(|_| std::fs::copy(from, at).map(|_| ()))
}

fn write_script(at: &Path, line: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read(at).is_ok_and(|old| old == line) {
        return Ok(());
    }
    std::fs::write(at, line)?;
    std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o755))
}

/// A relative path (`./…`) of exactly `recorded.len()` bytes ending in the recorded file's
/// name where it fits, padded with `pad`; components are kept under the 255-byte name
/// limit.
fn same_length_name(recorded: &[u8], packed: &Path, pad: u8) -> Option<PathBuf> {
    const COMPONENT: usize = 200;
    let mut left = recorded.len().checked_sub(2).filter(|&n| n > 0)?;
    let base = Path::new(OsStr::from_bytes(recorded))
        .file_name()
        .or(packed.file_name())
        .map(|b| b.as_bytes().to_vec())
        .unwrap_or_default();
    let mut out = b"./".to_vec();
    while left > COMPONENT + 1 {
        out.extend(vec![pad; COMPONENT]);
        out.push(b'/');
        left -= COMPONENT + 1;
    }
    let keep = base.len().min(left);
    out.extend(vec![pad; left - keep]);
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
            let name = same_length_name(&recorded, packed, b'_').expect("a stand-in");
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
        assert_eq!(same_length_name(b"/a", packed, b'_'), None);
    }
}
