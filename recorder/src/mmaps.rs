//! Mappings as a source of nondeterminism: the files behind `mmap` calls and behind the
//! mappings the kernel's ELF loader made at exec are stored in the trace, so replay maps
//! the same bytes without the host's files.

use trace::{FileMapping, InitialMapping, RemoteAddr, TraceWriter};
use tracee::maps;
use tracee::Pid;

use crate::error::{Error, Result};
use crate::files::FileCache;

/// For a successful file-backed mmap(addr, len, prot, flags, fd, off): the file's contents.
pub fn on_mmap(
    cache: &mut FileCache,
    writer: &mut TraceWriter,
    pid: Pid,
    args: [u64; 6],
    ret: i64,
) -> Result<Option<FileMapping>> {
    if ret < 0 || args[3] & libc::MAP_ANONYMOUS as u64 != 0 {
        return Ok(None);
    }
    let fd = tracee::abi::as_c_int(args[4]);
    let path = maps::fd_path(pid, fd).unwrap_or_default();
    let file = maps::open_fd(pid, fd).map_err(|source| Error::Io {
        op: "open mapped file",
        path: path.clone(),
        source,
    })?;
    let (hash, size) = cache.whole_file(writer, file, &path)?;
    Ok(Some(FileMapping {
        path: path.as_os_str().as_encoded_bytes().to_vec(),
        file: hash,
        file_size: size,
        offset: args[5],
        len: args[1],
    }))
}

/// The mappings present at the exec stop, with the files behind them stored.
pub fn initial_mappings(
    cache: &mut FileCache,
    writer: &mut TraceWriter,
    pid: Pid,
) -> Result<Vec<InitialMapping>> {
    let proc_maps = std::path::PathBuf::from(format!("/proc/{pid}/maps"));
    let list = maps::read_maps(pid).map_err(|source| Error::Io {
        op: "read",
        path: proc_maps,
        source,
    })?;
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        let file = if m.is_file() {
            let path = std::path::PathBuf::from(&m.path);
            let f = std::fs::File::open(&path).map_err(|source| Error::Io {
                op: "open mapped file",
                path: path.clone(),
                source,
            })?;
            Some(cache.whole_file(writer, f, &path)?.0)
        } else {
            None
        };
        out.push(InitialMapping {
            start: RemoteAddr(m.start.raw()),
            end: RemoteAddr(m.end.raw()),
            perms: m.perms,
            offset: m.offset,
            path: m.path.into_bytes(),
            file,
        });
    }
    Ok(out)
}
