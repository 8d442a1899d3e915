//! Stand-ins: a program the recording executed, run by a replay from the bytes the trace
//! holds instead of from the host's file, which may be missing or another build. The
//! kernel lays out a new program's stack from the execve path, so a stand-in is named
//! exactly as long as the recorded path (relative to the replay's launch directory), and
//! a dynamically linked one names a stand-in of the recorded dynamic loader in its
//! `PT_INTERP` the same way: a replay from a pack runs none of the host's binaries. What
//! a renamed string changes in the new program's memory is put back at the exec stop
//! ([`Patch`]).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use object::read::elf::{FileHeader, ProgramHeader};
use trace::InitialMapping;

/// Largest dynamic loader a stand-in is made from (the trace does not record its size;
/// glibc's is a quarter of a megabyte).
pub(crate) const MAX_LOADER_BYTES: u64 = 64 << 20;

/// Bytes a stand-in put in the new program's memory where the recording had others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Patch {
    pub addr: u64,
    pub standin: Vec<u8>,
    pub recorded: Vec<u8>,
}

/// A file's identity, `(st_dev, st_ino)`.
pub(crate) type FileId = (u64, u64);

/// A program image made into a stand-in file.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    /// The placed program, which /proc/PID/exe must be at the exec stop (another replay
    /// of the same directory may have replaced the name since).
    pub program: FileId,
    /// Where the recording mapped its loader, and the placed loader that must be mapped
    /// there.
    pub loader: Option<(u64, FileId)>,
    /// The loader's path in the program's mapped headers, to put back.
    pub patch: Option<Patch>,
}

impl Placed {
    /// At the exec stop of a program started as this stand-in: the kernel started the
    /// placed files, and the loader path in the program's mapped headers is put back to
    /// the recorded one.
    pub(crate) fn settle(&self, s: &tracee::Stopped) -> Result<(), String> {
        self.check(s.pid().as_raw())?;
        let Some(p) = &self.patch else {
            return Ok(());
        };
        let at = tracee::Addr::new(p.addr);
        let found = s
            .read_vec(at, p.standin.len())
            .map_err(|e| format!("reading the program's loader path at {:#x}: {e}", p.addr))?;
        if found != p.standin {
            return Err(format!(
                "the program's loader path at {:#x} is {:?}, not the stand-in's {:?}",
                p.addr,
                String::from_utf8_lossy(&found),
                String::from_utf8_lossy(&p.standin)
            ));
        }
        s.write_bytes(at, &p.recorded)
            .map_err(|e| format!("putting back the loader path at {:#x}: {e}", p.addr))
    }

    /// Checks at the exec stop of `pid` that the kernel started the placed files.
    fn check(&self, pid: i32) -> Result<(), String> {
        let exe = file_id(Path::new(&format!("/proc/{pid}/exe")))?;
        if exe != self.program {
            return Err(
                "the program started is not the stand-in placed for it (another \
                        replay of the same directory replaced it)"
                    .into(),
            );
        }
        let Some((start, want)) = self.loader else {
            return Ok(());
        };
        let maps = tracee::maps::read_maps(tracee::Pid::from_raw(pid))
            .map_err(|e| format!("reading the new program's mappings: {e}"))?;
        let found = maps.iter().find(|m| m.start.raw() == start);
        if found.map(|m| (m.dev, m.inode)) != Some(want) {
            return Err(format!(
                "the dynamic loader mapped at {start:#x} is {}, not the stand-in placed for \
                 the recorded one",
                found.map_or("nothing".into(), |m| m.path.clone())
            ));
        }
        Ok(())
    }
}

fn file_id(path: &Path) -> Result<FileId, String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The `PT_INTERP` of an ELF image: its file offset and the path (without its NUL).
pub(crate) fn interpreter(elf: &[u8]) -> Option<(u64, Vec<u8>)> {
    let header = object::elf::FileHeader64::<object::Endianness>::parse(elf).ok()?;
    let endian = header.endian().ok()?;
    let segments = header.program_headers(endian, elf).ok()?;
    let interp = segments
        .iter()
        .find(|p| p.p_type(endian) == object::elf::PT_INTERP)?;
    let path = interp.interpreter(endian, elf).ok()??;
    Some((interp.p_offset(endian), path.to_vec()))
}

/// The file behind the dynamic loader's mapping at an exec stop: the one file mapped
/// there besides the program itself. `None` for a static program; an error when more
/// than one other file is mapped (no kernel maps more).
pub(crate) fn loader_mapping<'a>(
    mappings: &'a [InitialMapping],
    program: &[u8],
) -> Result<Option<&'a InitialMapping>, String> {
    let mut others = mappings
        .iter()
        .filter(|m| m.file.is_some() && m.path != program);
    let first = others.next();
    if let Some(other) = others.find(|m| Some(&m.path) != first.map(|f| &f.path)) {
        return Err(format!(
            "the exec stop maps {} besides the program, and also {}",
            String::from_utf8_lossy(&first.map(|f| f.path.clone()).unwrap_or_default()),
            String::from_utf8_lossy(&other.path)
        ));
    }
    Ok(first)
}

/// Places `dir/name`, an executable file of `image` (the recorded program, at
/// `program`'s recorded path) whose `PT_INTERP` names a stand-in of the recorded loader
/// placed beside it: `loader` is the loader's recorded mapping and its bytes.
/// `mappings` are the recorded ones at the exec stop: they say where the
/// loader's path is in memory.
pub(crate) fn place_program(
    dir: &Path,
    name: &Path,
    image: Vec<u8>,
    program: &[u8],
    mappings: &[InitialMapping],
    loader: Option<(&InitialMapping, Vec<u8>)>,
) -> Result<Placed, String> {
    let mut bytes = image;
    let mut placed_loader = None;
    let mut patch = None;
    if let (Some((offset, recorded)), Some((loader_map, loader_bytes))) =
        (interpreter(&bytes), loader)
    {
        let loader_name = [b'_', b'-']
            .iter()
            .filter_map(|&pad| same_length_name(&recorded, Path::new("ld.so"), pad))
            .find(|n| n != name)
            .ok_or_else(|| {
                format!(
                    "the recorded dynamic loader path {:?} is too short to stand in for",
                    String::from_utf8_lossy(&recorded)
                )
            })?;
        let standin = loader_name.as_os_str().as_bytes().to_vec();
        usize::try_from(offset)
            .ok()
            .and_then(|at| bytes.get_mut(at..at.checked_add(standin.len())?))
            .ok_or("a PT_INTERP past the end of the program")?
            .copy_from_slice(&standin);
        let addr = mapped_at(mappings, program, offset).ok_or_else(|| {
            format!(
                "no recorded mapping of {} holds its PT_INTERP (file offset {offset:#x})",
                String::from_utf8_lossy(program)
            )
        })?;
        place(dir, &loader_name, |at| write_if_changed(at, &loader_bytes))?;
        patch = Some(Patch {
            addr,
            standin,
            recorded,
        });
        placed_loader = Some((loader_map.start.0, file_id(&dir.join(&loader_name))?));
    }
    place(dir, name, |at| write_if_changed(at, &bytes))?;
    Ok(Placed {
        program: file_id(&dir.join(name))?,
        loader: placed_loader,
        patch,
    })
}

/// The address of file offset `offset` of `program` in the recorded mappings.
fn mapped_at(mappings: &[InitialMapping], program: &[u8], offset: u64) -> Option<u64> {
    mappings.iter().find_map(|m| {
        let len = m.end.0.checked_sub(m.start.0)?;
        let end = m.offset.checked_add(len)?;
        (m.path == program && m.file.is_some() && (m.offset..end).contains(&offset))
            .then(|| m.start.0.wrapping_add(offset - m.offset))
    })
}

/// Creates `cwd/name` with `make`, making its directories first.
pub(crate) fn place(
    cwd: &Path,
    name: &Path,
    make: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let at = cwd.join(name);
    let parent = at.parent().unwrap_or(cwd);
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    make(&at).map_err(|e| format!("placing the stand-in {}: {e}", at.display()))
}

/// Makes `at` an executable file holding `bytes`. Two programs of the recording may get
/// the same stand-in name (same path length and file name): the file is replaced when
/// its contents differ, through a rename, so a program already started from the old one
/// keeps it.
pub(crate) fn write_if_changed(at: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read(at).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = at.with_file_name(format!(
        ".{}.{}",
        at.file_name()
            .map_or("standin".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .and_then(|()| std::fs::rename(&tmp, at))
        .map_err(|e| e.to_string())
}

/// A relative path (`./…`) of exactly `recorded.len()` bytes ending in the recorded file's
/// name where it fits, padded with `pad`; components are kept under the 255-byte name
/// limit.
pub(crate) fn same_length_name(recorded: &[u8], packed: &Path, pad: u8) -> Option<PathBuf> {
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
    use trace::BlobHash;

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

    #[test]
    fn the_loader_path_of_a_dynamic_program_is_found_and_a_static_one_has_none() {
        let sh = std::fs::read(std::fs::canonicalize("/bin/sh").unwrap()).unwrap();
        let (offset, path) = interpreter(&sh).expect("/bin/sh is dynamically linked");
        let at = usize::try_from(offset).unwrap();
        assert_eq!(&sh[at..at + path.len()], &path[..]);
        assert!(
            path.starts_with(b"/") && path.ends_with(b".so.2"),
            "{path:?}"
        );
        assert_eq!(interpreter(b"\x7fELF not really"), None);
        assert_eq!(interpreter(&[]), None);
    }

    fn mapping(start: u64, end: u64, offset: u64, path: &[u8]) -> InitialMapping {
        InitialMapping {
            start: trace::RemoteAddr(start),
            end: trace::RemoteAddr(end),
            perms: "r--p".into(),
            offset,
            path: path.to_vec(),
            file: Some(BlobHash::of(path)),
        }
    }

    #[test]
    fn the_loader_is_the_one_other_file_mapped_at_the_exec_stop() {
        let maps = [
            mapping(0x1000, 0x3000, 0, b"/bin/prog"),
            mapping(0x3000, 0x4000, 0x2000, b"/bin/prog"),
            mapping(0x9000, 0xa000, 0, b"/lib/ld.so"),
            mapping(0xa000, 0xb000, 0x1000, b"/lib/ld.so"),
        ];
        let ld = loader_mapping(&maps, b"/bin/prog").unwrap().unwrap();
        assert_eq!(ld.path, b"/lib/ld.so");
        assert_eq!(mapped_at(&maps, b"/bin/prog", 0x2318), Some(0x3318));
        assert_eq!(mapped_at(&maps, b"/bin/prog", 0x3000), None);
        assert!(loader_mapping(&maps[..2], b"/bin/prog").unwrap().is_none());
        let mut odd = maps.to_vec();
        odd.push(mapping(0xc000, 0xd000, 0, b"/lib/other.so"));
        assert!(loader_mapping(&odd, b"/bin/prog").is_err());
    }
}
