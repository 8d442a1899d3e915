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

/// Refuses a dynamic loader that is not the recorded one. The kernel maps the host's
/// file that the program's `PT_INTERP` names, which a replay from recorded paths runs
/// (a stand-in names the trace's copy instead): another build of it would run other code
/// than the recording did.
pub fn check_loader(
    pid: tracee::Pid,
    mappings: &[trace::InitialMapping],
    program: &[u8],
) -> std::result::Result<(), String> {
    let Some(m) = crate::standin::loader_mapping(mappings, program)? else {
        return Ok(());
    };
    let maps = tracee::maps::read_maps(pid)
        .map_err(|e| format!("reading the new program's mappings: {e}"))?;
    let recorded = String::from_utf8_lossy(&m.path);
    let Some(found) = maps
        .iter()
        .find(|x| x.start.raw() == m.start.0 && x.is_file())
    else {
        return Err(format!(
            "the recording's dynamic loader {recorded} was mapped at {:#x}, where this host's \
             is not",
            m.start.0
        ));
    };
    let path = Path::new(&found.path);
    let bytes = std::fs::metadata(path)
        .ok()
        .filter(|meta| meta.is_file() && meta.len() <= crate::standin::MAX_LOADER_BYTES)
        .and_then(|_| std::fs::read(path).ok());
    if bytes.as_deref().map(BlobHash::of) != m.file {
        return Err(format!(
            "this host's dynamic loader {} is not the recording's {recorded} (another build): \
             replay from a pack (`rewind pack`), which carries the recorded one",
            path.display()
        ));
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
    /// The stand-in the program (or a script's interpreter) starts as, when the trace
    /// carries the binary: then every program the recording executes later is started
    /// from the trace's copy too (`exec`), and `cwd` is the directory of the stand-ins.
    pub(crate) standin: Option<crate::standin::Placed>,
}

/// How to start the recording: from the recorded paths, or, when the trace carries the
/// binary (a pack, or a directory unpacked from one, with `binary` in it), from that.
///
/// The carried binary is copied under a name exactly as long as the recorded execve path
/// (`standin`, with the recorded dynamic loader beside it), so the kernel lays out the
/// initial stack (which holds that string) at the same addresses; the string's bytes are
/// then rewritten at the exec stop (`exec::start`). A script is started through a
/// stand-in script of the same path length whose `#!` line names a stand-in for the
/// interpreter (as long as the recorded interpreter string, same argument) made from the
/// carried binary: the kernel then builds the same argv, and the stand-in strings in it
/// are rewritten the same way. The stand-in needs only its first
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
            standin: None,
        });
    };
    let image = std::fs::read(&carried).map_err(|e| {
        setup(format!(
            "reading the carried binary {}: {e}",
            carried.display()
        ))
    })?;
    let cwd = reader.dir().join("launch");
    let too_short = |what: &str, path: &[u8]| {
        setup(format!(
            "the recorded {what} {:?} is too short to stand in for (needs 3+ bytes)",
            String::from_utf8_lossy(path)
        ))
    };
    let program = crate::standin::same_length_name(&h.program, &carried, b'_')
        .ok_or_else(|| too_short("program path", &h.program))?;
    let Some(script) = &h.script else {
        let placed = place_image(reader, &cwd, &program, image).map_err(setup)?;
        return Ok(Launch {
            cwd,
            renamed: vec![(bytes(&program), h.program.clone())],
            program,
            argv: h.argv.clone(),
            binary: carried,
            standin: Some(placed),
        });
    };
    // Another padding byte keeps the two stand-ins apart when both names come out alike.
    let interpreter = [b'_', b'-']
        .iter()
        .filter_map(|&pad| crate::standin::same_length_name(&script.interpreter, &carried, pad))
        .find(|name| *name != program)
        .ok_or_else(|| too_short("#! interpreter", &script.interpreter))?;
    let placed = place_image(reader, &cwd, &interpreter, image).map_err(setup)?;
    let mut line = b"#!".to_vec();
    line.extend_from_slice(&bytes(&interpreter));
    if let Some(arg) = &script.arg {
        line.push(b' ');
        line.extend_from_slice(arg);
    }
    line.push(b'\n');
    crate::standin::place(&cwd, &program, |at| {
        crate::standin::write_if_changed(at, &line)
    })
    .map_err(setup)?;
    Ok(Launch {
        cwd,
        argv: with_argv0(&bytes(&program), user_args),
        renamed: vec![
            (bytes(&program), h.program.clone()),
            (bytes(&interpreter), script.interpreter.clone()),
        ],
        program,
        binary: carried,
        standin: Some(placed),
    })
}

/// Places the recording's first program (`image`, the carried binary) as `cwd/name`,
/// with the dynamic loader the recording mapped at its exec stop.
fn place_image(
    reader: &trace::TraceReader,
    cwd: &Path,
    name: &Path,
    image: Vec<u8>,
) -> std::result::Result<crate::standin::Placed, String> {
    let h = reader.header();
    place_program(
        reader,
        cwd,
        name,
        image,
        &h.binary.path,
        &h.initial_mappings,
    )
}

/// Places `cwd/name` from `image`, a program the recording started from `path`, with the
/// dynamic loader it mapped (from `mappings`, the recorded ones at its exec stop) taken
/// from the trace's blobs.
pub(crate) fn place_program(
    reader: &trace::TraceReader,
    cwd: &Path,
    name: &Path,
    image: Vec<u8>,
    path: &[u8],
    mappings: &[trace::InitialMapping],
) -> std::result::Result<crate::standin::Placed, String> {
    let loader = match crate::standin::loader_mapping(mappings, path)? {
        Some(m) => {
            let hash = m.file.ok_or("a loader mapping without its file")?;
            let bytes = reader
                .blob_at_most(&hash, crate::standin::MAX_LOADER_BYTES)
                .map_err(|e| format!("the recorded dynamic loader: {e}"))?;
            Some((m, bytes))
        }
        None => None,
    };
    crate::standin::place_program(cwd, name, image, path, mappings, loader)
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
