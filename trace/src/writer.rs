//! Writing a trace: create the directory marked `incomplete`, write the header, append
//! events in whole chunks, store blobs, and on `finish` fsync, write the end record
//! (event count and digests, see `end`) and rename `incomplete` to `version`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::blob::{BlobHash, BlobStore};
use crate::chunk::{self, MAX_CHUNK_EVENTS, MAX_CHUNK_RAW};
use crate::end::EndRecord;
use crate::error::{io, Error, Result};
use crate::event::Event;
use crate::header::Header;
use crate::version::{
    bincode_config, BLOBS_DIR, END_FILE, EVENTS_FILE, FORMAT_VERSION, HEADER_FILE, HEADER_MAGIC,
    INCOMPLETE_FILE, MAX_HEADER_BYTES, MAX_TRACE_EVENTS, VERSION_FILE,
};

/// A chunk is cut when it holds this many uncompressed bytes…
const CHUNK_BYTES: usize = 256 << 10;
/// …or this many events (the reader's limit)…
const CHUNK_EVENTS: u32 = MAX_CHUNK_EVENTS;
/// …or when the oldest buffered event is this old, so a killed recorder loses little.
const CHUNK_AGE: Duration = Duration::from_millis(250);

/// Sizes written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// Events appended.
    pub events: u64,
    /// Chunks written.
    pub chunks: u64,
    /// Bytes in the events file.
    pub event_bytes: u64,
    /// Compressed bytes of blobs written (deduplicated blobs count once).
    pub blob_bytes: u64,
    /// Bytes of the header file.
    pub header_bytes: u64,
}

impl TraceStats {
    /// All bytes on disk.
    pub fn total_bytes(&self) -> u64 {
        self.event_bytes + self.blob_bytes + self.header_bytes
    }
}

/// Writes one trace directory.
pub struct TraceWriter {
    dir: PathBuf,
    events_path: PathBuf,
    events: File,
    blobs: BlobStore,
    raw: Vec<u8>,
    raw_count: u32,
    first_pending: u64,
    oldest_pending: Option<Instant>,
    next_index: u64,
    header_written: bool,
    /// SHA-256 of the header file, for the chunk binding and the end record.
    header_sha256: [u8; 32],
    /// SHA-256 of the events file so far, for the end record.
    events_sha256: Sha256,
    stats: TraceStats,
}

impl TraceWriter {
    /// Creates `dir` (which must not exist or be empty) as an incomplete trace.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() {
            let mut entries = fs::read_dir(&dir).map_err(io("read directory", &dir))?;
            if entries.next().is_some() {
                return Err(Error::Io {
                    op: "create trace in",
                    path: dir,
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "directory is not empty",
                    ),
                });
            }
        }
        fs::create_dir_all(dir.join(BLOBS_DIR)).map_err(io("create directory", &dir))?;
        let incomplete = dir.join(INCOMPLETE_FILE);
        fs::write(&incomplete, format!("{FORMAT_VERSION}\n")).map_err(io("write", &incomplete))?;
        let events_path = dir.join(EVENTS_FILE);
        let events = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&events_path)
            .map_err(io("create", &events_path))?;
        Ok(TraceWriter {
            blobs: BlobStore::new(dir.join(BLOBS_DIR)),
            dir,
            events_path,
            events,
            raw: Vec::with_capacity(CHUNK_BYTES + 4096),
            raw_count: 0,
            first_pending: 0,
            oldest_pending: None,
            next_index: 0,
            header_written: false,
            header_sha256: [0; 32],
            events_sha256: Sha256::new(),
            stats: TraceStats::default(),
        })
    }

    /// The trace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the header; must come before the first event.
    pub fn write_header(&mut self, header: &Header) -> Result<()> {
        if self.header_written {
            return Err(Error::Usage("header written twice"));
        }
        if header.format_version != FORMAT_VERSION {
            return Err(Error::Usage(
                "header of another format version than this writer's",
            ));
        }
        let body = bincode::serde::encode_to_vec(header, bincode_config()).map_err(|source| {
            Error::Encode {
                what: "header",
                source,
            }
        })?;
        let len = u32::try_from(body.len())
            .ok()
            .filter(|&n| u64::from(n) + 16 <= MAX_HEADER_BYTES)
            .ok_or(Error::Usage("header larger than the reader's 16 MiB limit"))?;
        let mut out = Vec::with_capacity(body.len() + 16);
        out.extend_from_slice(&HEADER_MAGIC);
        out.extend_from_slice(&header.format_version.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        let path = self.dir.join(HEADER_FILE);
        let tmp = self.dir.join(".header.tmp");
        fs::write(&tmp, &out).map_err(io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename header to", &path))?;
        self.stats.header_bytes = out.len() as u64;
        self.header_sha256 = Sha256::digest(&out).into();
        self.header_written = true;
        Ok(())
    }

    /// Appends an event and returns its index. Cuts a chunk when one is due.
    pub fn append(&mut self, event: &Event) -> Result<u64> {
        if !self.header_written {
            return Err(Error::Usage("event appended before the header"));
        }
        if self.next_index >= MAX_TRACE_EVENTS {
            return Err(Error::Usage(
                "the trace holds the most events a trace may (2^24, the reader's limit)",
            ));
        }
        let before = self.raw.len();
        bincode::serde::encode_into_std_write(event, &mut self.raw, bincode_config()).map_err(
            |source| Error::Encode {
                what: "event",
                source,
            },
        )?;
        if self.raw.len() > MAX_CHUNK_RAW as usize {
            // Keep every chunk within the reader's limit: flush what came before this
            // event, then start the next chunk with it.
            let this = self.raw.split_off(before);
            if this.len() > MAX_CHUNK_RAW as usize {
                return Err(Error::Usage(
                    "event larger than a chunk may be (16 MiB, the reader's limit)",
                ));
            }
            self.flush_chunk()?;
            self.raw = this;
        }
        if self.raw_count == 0 {
            self.first_pending = self.next_index;
            self.oldest_pending = Some(Instant::now());
        }
        self.raw_count += 1;
        let index = self.next_index;
        self.next_index += 1;
        self.stats.events += 1;
        let old = self
            .oldest_pending
            .is_some_and(|t| t.elapsed() >= CHUNK_AGE);
        if self.raw.len() >= CHUNK_BYTES || self.raw_count >= CHUNK_EVENTS || old {
            self.flush_chunk()?;
        }
        Ok(index)
    }

    /// Index the next appended event will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Writes buffered events as one chunk, with a single `write`.
    pub fn flush_chunk(&mut self) -> Result<()> {
        if self.raw_count == 0 {
            return Ok(());
        }
        let binding = chunk::binding_of(&self.header_sha256);
        let bytes = chunk::encode(&self.raw, self.raw_count, self.first_pending, binding)
            .map_err(io("compress chunk for", &self.events_path))?;
        self.events
            .write_all(&bytes)
            .map_err(io("append chunk to", &self.events_path))?;
        self.events_sha256.update(&bytes);
        self.stats.chunks += 1;
        self.stats.event_bytes += bytes.len() as u64;
        self.raw.clear();
        self.raw_count = 0;
        self.oldest_pending = None;
        Ok(())
    }

    /// Stores a blob (deduplicated by content hash).
    pub fn put_blob(&mut self, bytes: &[u8]) -> Result<BlobHash> {
        let (hash, written) = self.blobs.put(bytes)?;
        self.stats.blob_bytes += written;
        Ok(hash)
    }

    /// Stores blob `hash` from `file`, a blob of the same format kept elsewhere (see
    /// [`crate::blob::BlobStore::put_from`]).
    pub fn put_blob_from(&mut self, hash: &BlobHash, file: &Path) -> Result<()> {
        self.stats.blob_bytes += self.blobs.put_from(hash, file)?;
        Ok(())
    }

    /// Where this trace keeps blob `hash`.
    pub fn blob_file(&self, hash: &BlobHash) -> PathBuf {
        self.blobs.file(hash)
    }

    /// Sizes so far.
    pub fn stats(&self) -> TraceStats {
        self.stats
    }

    /// Flushes, syncs, writes the end record and marks the trace complete.
    pub fn finish(mut self) -> Result<TraceStats> {
        if !self.header_written {
            return Err(Error::Usage("trace finished without a header"));
        }
        self.flush_chunk()?;
        self.events
            .sync_all()
            .map_err(io("sync", &self.events_path))?;
        let end = EndRecord {
            events: self.stats.events,
            chunks: self.stats.chunks,
            events_bytes: self.stats.event_bytes,
            events_sha256: self.events_sha256.clone().finalize().into(),
            header_sha256: self.header_sha256,
        };
        let end_path = self.dir.join(END_FILE);
        let tmp = self.dir.join(".end.tmp");
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&end.encode(FORMAT_VERSION))
            .and_then(|()| f.sync_all())
            .map_err(io("write", &tmp))?;
        drop(f);
        fs::rename(&tmp, &end_path).map_err(io("rename end record to", &end_path))?;
        let from = self.dir.join(INCOMPLETE_FILE);
        let to = self.dir.join(VERSION_FILE);
        fs::rename(&from, &to).map_err(io("rename incomplete to", &to))?;
        if let Ok(d) = File::open(&self.dir) {
            // Best effort: the rename is what marks completion, make it durable.
            let _ = d.sync_all();
        }
        Ok(self.stats)
    }
}
