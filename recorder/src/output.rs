//! Recording what the program sends out (see `sent`): the bytes each output call sent,
//! read from tracee memory or from the file it copied, their SHA-256, and whether the
//! descriptor reached the recorder's own stdout or stderr, which replay echoes.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use trace::{Output, Stream, TraceWriter, OUTPUT_INLINE};
use tracee::syscalls::sent::{digest, Sent, Source};
use tracee::syscalls::Peek;
use tracee::{maps, Addr, Pid, Stopped};

/// Device and inode of an open file.
type Identity = (u64, u64);

/// What the recorder's console is, and which tracee descriptors reach it.
pub(crate) struct Console {
    stdout: Option<Identity>,
    stderr: Option<Identity>,
    /// (Task, descriptor) → stream, valid until a descriptor table may have changed.
    known: HashMap<(Pid, i32), Option<Stream>>,
}

fn own(fd: &str) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Console {
    /// The console as the tracee was started: its stdout (`stdout_fd` if the recorder
    /// redirected it, else ours) and our stderr.
    pub fn new(stdout_fd: Option<i32>) -> Console {
        Console {
            stdout: own(&stdout_fd.unwrap_or(1).to_string()),
            stderr: own("2"),
            known: HashMap::new(),
        }
    }

    /// Forgets what descriptors reached: after a call that may change what a descriptor
    /// refers to (`sent::may_change_descriptors`).
    pub fn invalidate(&mut self) {
        self.known.clear();
    }

    fn stream(&mut self, pid: Pid, fd: i32) -> Option<Stream> {
        if let Some(s) = self.known.get(&(pid, fd)) {
            return *s;
        }
        let id = maps::fd_identity(pid, fd).ok();
        let s = match id {
            None => None,
            Some(id) if Some(id) == self.stderr && (fd == 2 || Some(id) != self.stdout) => {
                Some(Stream::Stderr)
            }
            Some(id) if Some(id) == self.stdout => Some(Stream::Stdout),
            Some(_) => None,
        };
        self.known.insert((pid, fd), s);
        s
    }
}

/// The file offset a copying call reads from, noted at its entry.
pub(crate) fn source_offset(s: &Stopped, fd: i32, offset_ptr: u64) -> Option<u64> {
    if offset_ptr != 0 {
        s.read_u64(Addr::new(offset_ptr)).ok()
    } else {
        maps::fd_position(s.pid(), fd).ok()
    }
}

/// Reads what `sent` sent and makes the trace's record of it. `offset` is the source
/// position noted at entry, for calls that copy from a file.
pub(crate) fn record(
    pid: Pid,
    mem: &dyn Peek,
    writer: &mut TraceWriter,
    console: &mut Console,
    sent: &Sent,
    len: usize,
    offset: Option<u64>,
) -> std::result::Result<Output, String> {
    let stream = console.stream(pid, sent.fd);
    let inline = if len as u64 <= OUTPUT_INLINE { len } else { 0 };
    let (sha256, kept) = match &sent.source {
        Source::Memory(ranges) => digest(ranges, inline, |addr, buf| {
            let bytes = mem
                .peek(addr, buf.len())
                .ok_or_else(|| format!("the bytes it sent at {addr:#x} cannot be read"))?;
            buf.copy_from_slice(&bytes);
            Ok::<_, String>(())
        })?,
        Source::File { fd, .. } => {
            let at = offset.ok_or_else(|| {
                format!("the position of its source descriptor {fd} is unknown (not a file?)")
            })?;
            let file = maps::open_fd(pid, *fd)
                .map_err(|e| format!("opening its source descriptor {fd}: {e}"))?;
            // Console output the replay must echo from the trace is kept whole.
            let keep = if stream.is_some() { len } else { inline };
            digest(&[(at, len)], keep, |pos, buf| {
                file.read_exact_at(buf, pos).map_err(|e| {
                    format!("reading the {len} bytes it copied from descriptor {fd} at {at}: {e}")
                })
            })?
        }
    };
    let bytes = if kept.len() == len {
        Some(crate::files::data(writer, kept).map_err(|e| e.to_string())?)
    } else {
        None
    };
    Ok(Output {
        len: len as u64,
        sha256: trace::BlobHash(sha256),
        bytes,
        console: stream,
    })
}
