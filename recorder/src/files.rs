//! Files as a source of nondeterminism: file contents behind mappings and large read
//! results go into the trace as blobs, deduplicated by content hash (and, for whole
//! files, cached by identity so a file mapped five times is hashed once); the recorded
//! binary is identified by build-id and SHA-256, and a `#!` script by the line the kernel
//! follows.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use trace::{BinaryId, BlobHash, Data, TraceWriter};

use crate::error::{Error, Result};
use crate::filestore::FileStore;

/// Outputs at least this large are stored as blobs rather than inline in the event.
pub const BLOB_THRESHOLD: usize = 4096;

/// A file's identity: device, inode, mtime (s, ns) and size.
type Identity = (u64, u64, i64, i64, u64);

/// Whole-file blobs already stored in this recording, by file identity, and the store
/// that keeps them across recordings.
#[derive(Default)]
pub struct FileCache {
    by_identity: HashMap<Identity, (BlobHash, u64)>,
    store: Option<FileStore>,
}

impl FileCache {
    /// A cache that also uses the cross-recording store in `dir` (see `filestore`).
    pub fn with_store(dir: Option<std::path::PathBuf>) -> FileCache {
        FileCache {
            by_identity: HashMap::new(),
            store: dir.and_then(FileStore::open),
        }
    }

    /// Stores the whole contents of `file` (once per identity) and returns its hash and
    /// size.
    pub fn whole_file(
        &mut self,
        writer: &mut TraceWriter,
        mut file: File,
        path: &Path,
    ) -> Result<(BlobHash, u64)> {
        let io = |op| {
            move |source| Error::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        let m = file.metadata().map_err(io("stat"))?;
        let key = (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size());
        if let Some(hit) = self.by_identity.get(&key) {
            return Ok(*hit);
        }
        if let Some((hash, blob)) = self.store.as_ref().and_then(|s| s.lookup(&m)) {
            writer.put_blob_from(&hash, &blob)?;
            let hit = (hash, m.size());
            self.by_identity.insert(key, hit);
            return Ok(hit);
        }
        // A capacity hint only: read_to_end reads what is there.
        let mut bytes = Vec::with_capacity(usize::try_from(m.size()).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(io("read"))?;
        let hash = writer.put_blob(&bytes)?;
        if let Some(store) = &self.store {
            // Only a file that still is what was read is kept under its identity.
            if bytes.len() as u64 == m.size() {
                store.keep(writer, &m, &hash);
            }
        }
        let hit = (hash, bytes.len() as u64);
        self.by_identity.insert(key, hit);
        Ok(hit)
    }
}

/// Bytes a syscall wrote, inline when small, as a blob when large.
pub fn data(writer: &mut TraceWriter, bytes: Vec<u8>) -> Result<Data> {
    if bytes.len() >= BLOB_THRESHOLD {
        let len = bytes.len() as u64;
        let hash = writer.put_blob(&bytes)?;
        Ok(Data::Blob { hash, len })
    } else {
        Ok(Data::Inline(bytes))
    }
}

/// Identity of the binary at `path` (contents given).
pub fn binary_id(path: &Path, contents: &[u8]) -> BinaryId {
    BinaryId {
        path: path.as_os_str().as_encoded_bytes().to_vec(),
        build_id: guest::binary::build_id(contents),
        sha256: BlobHash::of(contents),
        size: contents.len() as u64,
    }
}

/// The error for an executable that is not an ELF file (`why`: the parser's reason).
pub fn not_elf(path: &Path, why: String) -> Error {
    Error::Io {
        op: "parse ELF",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    }
}
