//! Reading a trace: check the life-cycle marker and version, decode the header, and
//! iterate the events chunk by chunk. Damage is reported with file and byte offset; a
//! partial last chunk is expected (and reported) only in an incomplete trace.
//!
//! A complete trace is checked against its end record (see `end`): at open, the header's
//! digest and the events file's length; at the end of iteration, the event count and the
//! events file's digest. Every chunk must carry the binding of this trace's header, so an
//! events file from another recording is refused at its first chunk.

use std::fs::{self, File};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::blob::{BlobHash, BlobStore};
use crate::chunk::{self, FRAME_LEN};
use crate::end::EndRecord;
use crate::error::{io, Error, Result};
use crate::event::Event;
use crate::header::Header;
use crate::version::{
    bincode_config, BLOBS_DIR, END_FILE, EVENTS_FILE, FORMAT_VERSION, HEADER_FILE, HEADER_MAGIC,
    INCOMPLETE_FILE, MAX_HEADER_BYTES, MAX_TRACE_EVENTS, OLDEST_READABLE_VERSION, VERSION_FILE,
};

/// An opened trace.
#[derive(Debug)]
pub struct TraceReader {
    dir: PathBuf,
    complete: bool,
    version: u32,
    header: Header,
    /// SHA-256 of the header file: chunks carry its first bytes.
    header_sha256: [u8; 32],
    /// The end record, for a complete trace.
    end: Option<EndRecord>,
    blobs: BlobStore,
    /// Set when the trace was unpacked from a pack: the directory lives as long as this.
    unpacked: Option<std::sync::Arc<crate::pack::Unpacked>>,
}

fn parse_version(path: &Path) -> Result<u32> {
    let len = fs::metadata(path).map_err(io("stat", path))?.len();
    if len > 64 {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            what: format!("version marker is {len} bytes long, not a number"),
        });
    }
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
    if v < OLDEST_READABLE_VERSION {
        return Err(Error::OldVersion {
            path: path.to_path_buf(),
            found: v,
            supported: OLDEST_READABLE_VERSION,
        });
    }
    Ok(())
}

/// Reads the header file of a trace whose version marker says `version`; returns the
/// header and the SHA-256 of the file.
fn read_header(path: &Path, version: u32) -> Result<(Header, [u8; 32])> {
    let corrupt = |offset: u64, what: String| Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let size = fs::metadata(path).map_err(io("stat", path))?.len();
    if size > MAX_HEADER_BYTES {
        return Err(corrupt(
            0,
            format!("header file is {size} bytes, more than the {MAX_HEADER_BYTES}-byte limit"),
        ));
    }
    let bytes = fs::read(path).map_err(io("read", path))?;
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
    if word(4) != version {
        return Err(corrupt(
            4,
            format!(
                "header is of format version {}, the version marker says {version}",
                word(4)
            ),
        ));
    }
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
    let (header, used): (Header, usize) = bincode::serde::decode_from_slice(body, bincode_config())
        .map_err(|e| corrupt(16, format!("header does not decode: {e}")))?;
    if used != body.len() {
        return Err(corrupt(
            16 + used as u64,
            format!("{} stray bytes after the header", body.len() - used),
        ));
    }
    if header.format_version != version {
        return Err(corrupt(
            16,
            format!(
                "header body says format version {}, its frame and version marker {version}",
                header.format_version
            ),
        ));
    }
    Ok((header, Sha256::digest(&bytes).into()))
}

/// Walks the frames of whole chunks in the first `len` bytes of an events file without
/// decompressing them: (events, chunks, bytes of whole chunks). For the message about a
/// truncated trace.
fn count_whole_chunks(path: &Path, len: u64) -> Result<(u64, u64, u64)> {
    let mut f = File::open(path).map_err(io("open", path))?;
    let (mut events, mut chunks, mut at) = (0u64, 0u64, 0u64);
    let mut frame = [0u8; FRAME_LEN];
    while at + FRAME_LEN as u64 <= len {
        f.seek(SeekFrom::Start(at)).map_err(io("seek", path))?;
        if read_full(&mut f, &mut frame).map_err(io("read", path))? < FRAME_LEN {
            break;
        }
        let Ok(fr) = chunk::parse_frame(&frame) else {
            break;
        };
        let next = at + FRAME_LEN as u64 + u64::from(fr.compressed_len);
        if next > len {
            break;
        }
        events += u64::from(fr.count);
        chunks += 1;
        at = next;
    }
    Ok((events, chunks, at))
}

/// Checks a complete trace's end record against its header and the events file's length.
fn check_end(dir: &Path, version: u32, header_sha256: &[u8; 32]) -> Result<EndRecord> {
    let end = EndRecord::read(&dir.join(END_FILE), version)?;
    if end.header_sha256 != *header_sha256 {
        return Err(Error::Corrupt {
            path: dir.join(HEADER_FILE),
            offset: 0,
            what: "the header file is not the one the trace was closed with (its sha256 \
                   differs from the end record's)"
                .into(),
        });
    }
    let events = dir.join(EVENTS_FILE);
    let len = fs::metadata(&events).map_err(io("stat", &events))?.len();
    if len < end.events_bytes {
        let (found, chunks, whole) = count_whole_chunks(&events, len)?;
        return Err(Error::Truncated {
            path: events,
            offset: whole,
            what: format!(
                "{} events expected ({} chunks, {} bytes, as the end record says), {found} \
                 found ({chunks} whole chunks in the {len}-byte events file)",
                end.events, end.chunks, end.events_bytes
            ),
        });
    }
    if len > end.events_bytes {
        return Err(Error::Corrupt {
            path: events,
            offset: end.events_bytes,
            what: format!(
                "the events file is {len} bytes, longer than the {} the end record says",
                end.events_bytes
            ),
        });
    }
    if end.events > MAX_TRACE_EVENTS {
        return Err(Error::Corrupt {
            path: dir.join(END_FILE),
            offset: 8,
            what: format!(
                "end record claims {} events, more than a trace may hold ({MAX_TRACE_EVENTS})",
                end.events
            ),
        });
    }
    Ok(end)
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
        let (header, header_sha256) = read_header(&header_path, version)?;
        let end = if complete {
            Some(check_end(&dir, version, &header_sha256)?)
        } else {
            None
        };
        Ok(TraceReader {
            blobs: BlobStore::new(dir.join(BLOBS_DIR)),
            dir,
            complete,
            version,
            header,
            header_sha256,
            end,
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

    /// For a complete trace, what its end record says it holds.
    pub fn end_record(&self) -> Option<&EndRecord> {
        self.end.as_ref()
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
            binding: chunk::binding_of(&self.header_sha256),
            digest: Sha256::new(),
            chunks: 0,
            end: self.end,
        })
    }

    /// Reads a blob whose uncompressed length the event referring to it records
    /// (`Data::Blob::len`, `FileMapping::file_size`): decompression stops past it.
    pub fn blob(&self, hash: &BlobHash, len: u64) -> Result<Vec<u8>> {
        self.blobs.get(hash, len)
    }

    /// Reads a blob whose length no event records (the file behind an initial mapping):
    /// at most `max` bytes.
    pub fn blob_at_most(&self, hash: &BlobHash, max: u64) -> Result<Vec<u8>> {
        self.blobs.get_at_most(hash, max)
    }

    /// Checks every blob `events` refer to, each distinct one once: it must decompress to
    /// the length the events record (decompression stops past it) with its hash, and no
    /// two events may give one blob different lengths. Memory holds none of the blobs.
    pub fn check_blobs<'a>(&self, events: impl IntoIterator<Item = &'a Event>) -> Result<()> {
        let mut checker = BlobChecker::default();
        for e in events {
            checker.check(self, e)?;
        }
        Ok(())
    }

    /// A line saying that the trace is incomplete and how far `events` (iterated to its
    /// end) went, or `None` for a complete trace. Every command prints it.
    pub fn incomplete_note(&self, events: &EventIter) -> Option<String> {
        if self.complete {
            return None;
        }
        let n = events.next_index();
        Some(match events.partial_tail() {
            Some(off) => format!(
                "{}: trace is incomplete (the recorder did not close it); it goes as far as \
                 event {n} ({n} events read), the events file ends in a partial chunk at byte \
                 offset {off}",
                self.dir.display()
            ),
            None => format!(
                "{}: trace is incomplete (the recorder did not close it); it goes as far as \
                 event {n} ({n} events read)",
                self.dir.display()
            ),
        })
    }
}

/// Checks the blobs events refer to, each distinct one once; see
/// [`TraceReader::check_blobs`].
#[derive(Debug, Default)]
pub struct BlobChecker {
    seen: std::collections::HashMap<BlobHash, u64>,
}

impl BlobChecker {
    /// Checks the blobs `event` refers to that were not checked before.
    pub fn check(&mut self, reader: &TraceReader, event: &Event) -> Result<()> {
        for (hash, len) in event.blobs() {
            match self.seen.get(&hash) {
                Some(&l) if l == len => continue,
                Some(&l) => {
                    return Err(Error::Blob {
                        hash: hash.hex(),
                        what: format!("events give it two lengths, {l} and {len} bytes"),
                    })
                }
                None => {}
            }
            reader.blobs.verify(&hash, len)?;
            self.seen.insert(hash, len);
        }
        Ok(())
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
    /// The binding every chunk must carry (this trace's header).
    binding: u32,
    /// SHA-256 of the whole chunks read so far, checked against the end record.
    digest: Sha256,
    /// Whole chunks read.
    chunks: u64,
    end: Option<EndRecord>,
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
            return self.check_end();
        }
        if got < FRAME_LEN {
            return self.partial(format!("chunk frame has {got} of {FRAME_LEN} bytes"));
        }
        let frame = match chunk::parse_frame(&frame_bytes) {
            Ok(f) => f,
            Err(what) => return self.corrupt(what),
        };
        if frame.binding != self.binding {
            return self.corrupt(format!(
                "chunk is bound to another header (binding {:#010x}, this trace's header \
                 {:#010x}): the events file was not recorded with this header",
                frame.binding, self.binding
            ));
        }
        if frame.first_event != self.next_index {
            return self.corrupt(format!(
                "chunk starts at event {}, expected {}",
                frame.first_event, self.next_index
            ));
        }
        let last = self.next_index + u64::from(frame.count);
        let most = self.end.map_or(MAX_TRACE_EVENTS, |e| e.events);
        if last > most {
            return self.corrupt(format!(
                "chunk takes the trace to {last} events, more than {}",
                match self.end {
                    Some(_) => format!("the end record's {most}"),
                    None => format!("a trace may hold ({most})"),
                }
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
        self.digest.update(frame_bytes);
        self.digest.update(&payload);
        self.chunks += 1;
        self.offset += (FRAME_LEN + payload.len()) as u64;
        self.pending = events.into_iter();
        self.next()
    }

    /// At the end of the events file of a complete trace: the count and digest must be
    /// the end record's.
    fn check_end(&mut self) -> Option<Result<(u64, Event)>> {
        let end = self.end?;
        if self.next_index != end.events || self.chunks != end.chunks {
            return Some(Err(Error::Truncated {
                path: self.path.clone(),
                offset: self.offset,
                what: format!(
                    "{} events expected ({} chunks, as the end record says), {} found ({} \
                     chunks)",
                    end.events, end.chunks, self.next_index, self.chunks
                ),
            }));
        }
        let digest: [u8; 32] = std::mem::take(&mut self.digest).finalize().into();
        if digest != end.events_sha256 {
            return Some(Err(Error::Corrupt {
                path: self.path.clone(),
                offset: 0,
                what: "the events file's sha256 differs from the end record's (the file was \
                       modified or replaced)"
                    .into(),
            }));
        }
        None
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
