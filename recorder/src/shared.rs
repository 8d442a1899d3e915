//! Files mapped MAP_SHARED. Each gets a number the first time one is mapped, and every
//! shared mmap of it is preceded by `Event::SharedMapping` naming that number: replay
//! backs each number with one memory file, so that what one task writes through its
//! mapping shows through every other mapping of the file, in every task (Linux built as
//! UML maps its physical-memory file at several addresses, and its helpers share them).
//!
//! Replay refreshes a file's bytes from the recorded contents at each mmap, so writes
//! through a descriptor to a range nobody has mapped need nothing more. A write,
//! truncation or fallocate reaching a range some task has mapped at that moment would
//! change memory the program reads without any mmap: it is refused, naming the mapping.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use tracee::{Addr, Pid, Stopped};

use crate::error::{Error, Result};
use crate::session::Session;

/// The recording's shared files by (device, inode), with their numbers.
#[derive(Default)]
pub(crate) struct SharedFiles {
    numbers: HashMap<(u64, u64), u32>,
}

impl SharedFiles {
    fn number(&mut self, file: (u64, u64)) -> u32 {
        let next = u32::try_from(self.numbers.len()).unwrap_or(u32::MAX);
        *self.numbers.entry(file).or_insert(next)
    }

    /// Whether task `pid`'s descriptor `fd` is a file some task maps MAP_SHARED.
    pub(crate) fn maps_fd(&self, pid: tracee::Pid, fd: i32) -> bool {
        use std::os::unix::fs::MetadataExt;
        !self.numbers.is_empty()
            && std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                .is_ok_and(|m| self.numbers.contains_key(&(m.dev(), m.ino())))
    }
}

/// Whether mmap flags share the mapping with the file (MAP_SHARED or
/// MAP_SHARED_VALIDATE).
fn maps_shared(flags: u64) -> bool {
    let kind = flags & 0x0f;
    kind == libc::MAP_SHARED as u64 || kind == libc::MAP_SHARED_VALIDATE as u64
}

/// The part of a file a call writes or truncates.
struct Reach {
    fd_or_path: Target,
    /// Where it begins ([`AT_POSITION`]: at the descriptor's file position).
    start: u64,
    /// How many bytes from there; `None`: everything from there on.
    len: Option<u64>,
}

enum Target {
    Fd(i32),
    Path(PathBuf),
}

impl Session {
    /// After a successful mmap(addr, len, prot, flags, fd, off): what it mapped, if it
    /// mapped a regular file MAP_SHARED, with the bytes of the mapped range as they are.
    pub(crate) fn shared_mapping(
        &mut self,
        args: [u64; 6],
        ret: i64,
    ) -> Result<Option<trace::SharedMapping>> {
        if ret < 0 || args[3] & libc::MAP_ANONYMOUS as u64 != 0 || !maps_shared(args[3]) {
            return Ok(None);
        }
        let pid = self.task.pid;
        let fd = tracee::abi::as_c_int(args[4]);
        let proc_path = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
        let io = |op| {
            let path = proc_path.clone();
            move |source| Error::Io { op, path, source }
        };
        let f = std::fs::File::open(&proc_path).map_err(io("open mapped file"))?;
        let meta = f.metadata().map_err(io("stat mapped file"))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let (offset, size) = (args[5], meta.size());
        let len = args[1].min(size.saturating_sub(offset));
        let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        f.read_exact_at(&mut bytes, offset)
            .map_err(io("read mapped file"))?;
        let path = tracee::maps::fd_path(pid, fd).unwrap_or(proc_path);
        Ok(Some(trace::SharedMapping {
            file: self.shared.number((meta.dev(), meta.ino())),
            path: path.into_os_string().into_encoded_bytes(),
            file_size: size,
            offset,
            contents: crate::files::data(&mut self.writer, bytes)?,
        }))
    }

    /// At the seccomp stop of call `nr`: why it is refused, if it writes into a part of a
    /// shared file that a task of the recording has mapped now.
    pub(crate) fn write_into_shared_mapping(
        &self,
        s: &Stopped,
        nr: u64,
        args: [u64; 6],
    ) -> Result<Option<String>> {
        if self.shared.numbers.is_empty() {
            return Ok(None);
        }
        let Some(reach) = reach(s, nr, args) else {
            return Ok(None);
        };
        let pid = s.pid();
        let proc_path = match &reach.fd_or_path {
            Target::Fd(fd) => format!("/proc/{pid}/fd/{fd}").into(),
            Target::Path(p) => p.clone(),
        };
        // A path that does not exist, or a descriptor the call will refuse, reaches
        // nothing mapped.
        let Ok(meta) = std::fs::metadata(&proc_path) else {
            return Ok(None);
        };
        let file = (meta.dev(), meta.ino());
        if !meta.is_file() || !self.shared.numbers.contains_key(&file) {
            return Ok(None);
        }
        let start = match (&reach.fd_or_path, reach.start) {
            (Target::Fd(fd), AT_POSITION) => {
                tracee::maps::fd_position(pid, *fd).map_err(|source| Error::Io {
                    op: "read the position of",
                    path: proc_path.clone(),
                    source,
                })?
            }
            (_, start) => start,
        };
        let end = reach.len.map(|len| start.saturating_add(len));
        // Growing the file makes pages past its old end readable.
        let start = start.min(meta.size());
        for task in self.task_pids() {
            let Ok(maps) = tracee::maps::read_maps(task) else {
                continue;
            };
            for m in maps {
                let len = m.end.raw() - m.start.raw();
                let (from, to) = (m.offset, m.offset.saturating_add(len));
                let overlaps = to > start && end.is_none_or(|end| from < end);
                if m.is_shared() && (m.dev, m.inode) == file && overlaps {
                    return Ok(Some(format!(
                        "it writes bytes {start}..{} of {}, which task {task} has mapped \
                         MAP_SHARED at {} (file bytes {from}..{to}): replay could not show the \
                         change through that mapping",
                        end.map_or_else(|| "its end".to_string(), |e| e.to_string()),
                        m.path,
                        m.start,
                    )));
                }
            }
        }
        Ok(None)
    }
}

/// A [`Reach`] start: the descriptor's file position.
const AT_POSITION: u64 = u64::MAX;

/// What call `nr` writes or truncates, if it does. Arguments the tracee's memory does
/// not hold make the call fail with EFAULT: it reaches nothing.
fn reach(s: &Stopped, nr: u64, args: [u64; 6]) -> Option<Reach> {
    let fd = |i: usize| Target::Fd(tracee::abi::as_c_int(args[i]));
    let at_pos = AT_POSITION;
    // An `loff_t *` argument: NULL means the descriptor's position.
    let offset_at = |ptr: u64| {
        if ptr == 0 {
            Some(at_pos)
        } else {
            s.read_u64(Addr::new(ptr)).ok()
        }
    };
    let reach = |fd_or_path, start, len| {
        Some(Reach {
            fd_or_path,
            start,
            len,
        })
    };
    let path = |dirfd: i32, at: u64| path_of(s, dirfd, at).map(Target::Path);
    let nr = i64::try_from(nr).unwrap_or(-1);
    match nr {
        libc::SYS_write => reach(fd(0), at_pos, Some(args[2])),
        libc::SYS_pwrite64 => reach(fd(0), args[3], Some(args[2])),
        libc::SYS_writev => reach(fd(0), at_pos, Some(iov_len(s, args[1], args[2])?)),
        // pwritev2's offset -1 is the descriptor's position, as AT_POSITION.
        libc::SYS_pwritev | libc::SYS_pwritev2 => {
            reach(fd(0), args[3], Some(iov_len(s, args[1], args[2])?))
        }
        libc::SYS_ftruncate => reach(fd(0), args[1], None),
        libc::SYS_fallocate => reach(fd(0), args[2], None),
        libc::SYS_sendfile => reach(fd(0), at_pos, Some(args[3])),
        libc::SYS_copy_file_range | libc::SYS_splice => {
            reach(fd(2), offset_at(args[3])?, Some(args[4]))
        }
        libc::SYS_truncate => reach(path(libc::AT_FDCWD, args[0])?, args[1], None),
        libc::SYS_creat => reach(path(libc::AT_FDCWD, args[0])?, 0, None),
        libc::SYS_open if args[1] & libc::O_TRUNC as u64 != 0 => {
            reach(path(libc::AT_FDCWD, args[0])?, 0, None)
        }
        libc::SYS_openat if args[2] & libc::O_TRUNC as u64 != 0 => {
            reach(path(tracee::abi::as_c_int(args[0]), args[1])?, 0, None)
        }
        // struct open_how begins with the u64 flags.
        libc::SYS_openat2 if s.read_u64(Addr::new(args[2])).ok()? & libc::O_TRUNC as u64 != 0 => {
            reach(path(tracee::abi::as_c_int(args[0]), args[1])?, 0, None)
        }
        _ => None,
    }
}

/// The bytes an iovec array of `count` entries at `at` spans.
fn iov_len(s: &Stopped, at: u64, count: u64) -> Option<u64> {
    // The kernel refuses more than UIO_MAXIOV entries.
    let mut total = 0u64;
    for i in 0..count.min(1024) {
        let len = s.read_u64(Addr::new(at.wrapping_add(i * 16 + 8))).ok()?;
        total = total.saturating_add(len);
    }
    Some(total)
}

/// Where the host finds the tracee's path argument at `at` (resolved against its working
/// directory or directory descriptor `dirfd` through /proc), if it can be read.
fn path_of(s: &Stopped, dirfd: i32, at: u64) -> Option<PathBuf> {
    let path = s.read_cstr(Addr::new(at), 4096).ok()?;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&path));
    if path.is_absolute() {
        return Some(path);
    }
    let pid: Pid = s.pid();
    let base = if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    Some(Path::new(&base).join(path))
}
