//! Reading a trace: check the life-cycle marker and version, decode the header, and
//! iterate the events chunk by chunk. Damage is reported with file and byte offset; a
//! partial last chunk is expected (and reported) only in an incomplete trace.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::blob::{BlobHash, BlobStore};
use crate::chunk::{self, FRAME_LEN};
use crate::error::{io, Error, Result};
use crate::event::Event;
use crate::header::Header;
use crate::version::{
    bincode_config, BLOBS_DIR, EVENTS_FILE, FORMAT_VERSION, HEADER_FILE, HEADER_MAGIC,
    INCOMPLETE_FILE, VERSION_FILE,
};

/// An opened trace.
#[derive(Debug)]
pub struct TraceReader {
    dir: PathBuf,
    complete: bool,
    version: u32,
    header: Header,
    blobs: BlobStore,
    /// Set when the trace was unpacked from a pack: the directory lives as long as this.
    unpacked: Option<std::sync::Arc<crate::pack::Unpacked>>,
}

fn parse_version(path: &Path) -> Result<u32> {
    let text = fs::read(path).map_err(io("read", path))?;
    let s = std::str::from_utf8(&text).unwrap_or("").trim();
    let v: u32 = s.parse().map_err(|_| Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        what: format!(
            "version marker is not a number: {:?}",
            String::from_utf8_lossy(&text)
        ),
    })?;
    check_version(path, v)?;
    Ok(v)
}

fn check_version(path: &Path, v: u32) -> Result<()> {
    if v > FORMAT_VERSION {
        return Err(Error::FutureVersion {
            path: path.to_path_buf(),
            found: v,
            supported: FORMAT_VERSION,
        });
    }
    if v == 0 {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: "format version 0".into(),
        });
    }
    Ok(())
}

fn read_header(path: &Path) -> Result<Header> {
    let bytes = fs::read(path).map_err(io("read", path))?;
    let corrupt = |offset: u64, what: String| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    };
    if bytes.len() < 16 {
        return Err(corrupt(
            0,
            format!(
                "header file is {} bytes, shorter than its 16-byte frame",
                bytes.len()
            ),
        ));
    }
    if bytes[..4] != HEADER_MAGIC {
        return Err(corrupt(0, format!("bad header magic {:02x?}", &bytes[..4])));
    }
    let word = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    check_version(path, word(4))?;
    let len = word(8) as usize;
    if bytes.len() - 16 != len {
        return Err(corrupt(
            8,
            format!(
                "header body is {} bytes, frame says {len}",
                bytes.len() - 16
            ),
        ));
    }
    let body = &bytes[16..];
    let crc = crc32fast::hash(body);
    if crc != word(12) {
        return Err(corrupt(
            12,
            format!(
                "header checksum mismatch (stored {:#010x}, computed {crc:#010x})",
                word(12)
            ),
        ));
    }
    let (header, _): (Header, usize) = bincode::serde::decode_from_slice(body, bincode_config())
        .map_err(|e| corrupt(16, format!("header does not decode: {e}")))?;
    Ok(header)
}

impl TraceReader {
    /// Opens the trace in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let version_path = dir.join(VERSION_FILE);
        let incomplete_path = dir.join(INCOMPLETE_FILE);
        let (complete, version) = if version_path.exists() {
            (true, parse_version(&version_path)?)
        } else if incomplete_path.exists() {
            (false, parse_version(&incomplete_path)?)
        } else {
            return Err(Error::NotATrace { path: dir });
        };
        let header_path = dir.join(HEADER_FILE);
        if !complete && !header_path.exists() {
            return Err(Error::Incomplete {
                path: header_path,
                what: "the recorder stopped before the program started (no header)".into(),
            });
        }
        let header = read_header(&header_path)?;
        Ok(TraceReader {
            blobs: BlobStore::new(dir.join(BLOBS_DIR)),
            dir,
            complete,
            version,
            header,
            unpacked: None,
        })
    }

    /// Opens `path`, a trace directory or a packed trace (`rewind pack`). A pack is
    /// checked entry by entry and unpacked into a temporary directory that is removed
    /// when the last clone of the reader's handle to it is dropped.
    pub fn open_any(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Self::open(path);
        }
        let unpacked = crate::pack::Unpacked::new(path)?;
        let mut reader = Self::open(unpacked.dir())?;
        reader.unpacked = Some(std::sync::Arc::new(unpacked));
        Ok(reader)
    }

    /// Whether the trace came from a pack.
    pub fn is_packed(&self) -> bool {
        self.unpacked.is_some()
    }

    /// For a packed trace, the guest binary unpacked from it (executable, verified
    /// against the header's SHA-256): run this instead of `header().binary.path`.
    pub fn packed_binary(&self) -> Option<PathBuf> {
        self.unpacked
            .as_ref()
            .map(|u| u.dir().join(crate::pack::BINARY_ENTRY))
    }

    /// The chaos parameters, if the trace was recorded with `--chaos`.
    pub fn chaos(&self) -> Result<Option<crate::chaos::ChaosInfo>> {
        crate::chaos::ChaosInfo::read(&self.dir)
    }

    /// The trace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the recorder closed the trace (`version` present rather than `incomplete`).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Format version of the trace.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Iterates the events from the first.
    pub fn events(&self) -> Result<EventIter> {
        let path = self.dir.join(EVENTS_FILE);
        let file = File::open(&path).map_err(io("open", &path))?;
        Ok(EventIter {
            file: BufReader::with_capacity(1 << 16, file),
            path,
            offset: 0,
            next_index: 0,
            pending: Vec::new().into_iter(),
            complete: self.complete,
            finished: false,
            partial_tail: None,
        })
    }

    /// Reads a blob.
    pub fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        self.blobs.get(hash)
    }
}

/// Iterator over `(index, event)`; see [`TraceReader::events`].
pub struct EventIter {
    file: BufReader<File>,
    path: PathBuf,
    offset: u64,
    next_index: u64,
    pending: std::vec::IntoIter<Event>,
    complete: bool,
    finished: bool,
    partial_tail: Option<u64>,
}

/// Reads as much as is there; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl EventIter {
    /// For an incomplete trace, the byte offset of the partial chunk the reader stopped
    /// at, once iteration has reached it.
    pub fn partial_tail(&self) -> Option<u64> {
        self.partial_tail
    }

    /// Index the next event will have.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    fn partial(&mut self, what: String) -> Option<Result<(u64, Event)>> {
        self.finished = true;
        if self.complete {
            Some(Err(Error::Truncated {
                path: self.path.clone(),
                offset: self.offset,
                what,
            }))
        } else {
            self.partial_tail = Some(self.offset);
            None
        }
    }

    fn corrupt(&mut self, what: String) -> Option<Result<(u64, Event)>> {
        self.finished = true;
        Some(Err(Error::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            what,
        }))
    }

    fn next_chunk(&mut self) -> Option<Result<(u64, Event)>> {
        let mut frame_bytes = [0u8; FRAME_LEN];
        let got = match read_full(&mut self.file, &mut frame_bytes) {
            Ok(n) => n,
            Err(e) => {
                self.finished = true;
                return Some(Err(Error::Io {
                    op: "read",
                    path: self.path.clone(),
                    source: e,
                }));
            }
        };
        if got == 0 {
            self.finished = true;
            return None;
        }
        if got < FRAME_LEN {
            return self.partial(format!("chunk frame has {got} of {FRAME_LEN} bytes"));
        }
        let frame = match chunk::parse_frame(&frame_bytes) {
            Ok(f) => f,
            Err(what) => return self.corrupt(what),
        };
        if frame.first_event != self.next_index {
            return self.corrupt(format!(
                "chunk starts at event {}, expected {}",
                frame.first_event, self.next_index
            ));
        }
        let mut payload = vec![0u8; frame.compressed_len as usize];
        let got = match read_full(&mut self.file, &mut payload) {
            Ok(n) => n,
            Err(e) => {
                self.finished = true;
                return Some(Err(Error::Io {
                    op: "read",
                    path: self.path.clone(),
                    source: e,
                }));
            }
        };
        if got < payload.len() {
            return self.partial(format!(
                "chunk payload has {got} of {} bytes",
                payload.len()
            ));
        }
        let events = match chunk::decode(&frame_bytes, &frame, &payload) {
            Ok(e) => e,
            Err(what) => return self.corrupt(what),
        };
        self.offset += (FRAME_LEN + payload.len()) as u64;
        self.pending = events.into_iter();
        self.next()
    }
}

impl Iterator for EventIter {
    type Item = Result<(u64, Event)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.next() {
            let i = self.next_index;
            self.next_index += 1;
            return Some(Ok((i, e)));
        }
        if self.finished {
            return None;
        }
        self.next_chunk()
    }
}
