//! Content-addressed blobs: file contents and large system call outputs, stored once per
//! distinct content under `blobs/<sha256 hex>`, zstd-compressed. Written to a temporary
//! name and renamed, so a killed recorder never leaves a half blob under a real name.
//!
//! A blob is read with the length the event referring to it records and decompressed as a
//! stream that stops one byte past it, so a small file that expands to gigabytes (a zstd
//! bomb) costs at most that length; no blob may exceed [`MAX_BLOB_BYTES`].

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};

/// Largest blob a trace may hold (uncompressed): the whole contents of a file the program
/// mapped, or one system call's output. The writer refuses larger ones.
pub const MAX_BLOB_BYTES: u64 = 1 << 30;

/// SHA-256 of a blob's uncompressed contents.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    /// Hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        BlobHash(Sha256::digest(bytes).into())
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for BlobHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl std::fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobHash({})", &self.hex()[..16])
    }
}

/// The `blobs/` directory of one trace.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// The store in `dir` (which must exist to read or write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BlobStore { dir: dir.into() }
    }

    fn path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join(hash.hex())
    }

    /// Whether a blob is present.
    pub fn contains(&self, hash: &BlobHash) -> bool {
        self.path(hash).exists()
    }

    /// Stores `bytes` unless already present; returns its hash and the bytes written to
    /// disk (0 when deduplicated).
    pub fn put(&self, bytes: &[u8]) -> Result<(BlobHash, u64)> {
        if bytes.len() as u64 > MAX_BLOB_BYTES {
            return Err(Error::Usage(
                "blob larger than a trace may hold (1 GiB, the reader's limit)",
            ));
        }
        let hash = BlobHash::of(bytes);
        let path = self.path(&hash);
        if path.exists() {
            return Ok((hash, 0));
        }
        let compressed = zstd::bulk::compress(bytes, 3).map_err(io("compress blob", &path))?;
        let tmp = self.dir.join(format!(".tmp-{}", hash.hex()));
        fs::write(&tmp, &compressed).map_err(io("write blob", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename blob", &path))?;
        Ok((hash, compressed.len() as u64))
    }

    /// Stores the blob `hash` from `file`, a blob of the same format elsewhere (another
    /// trace's, or a cache of them): hard-linked where the file system allows, copied
    /// otherwise. Returns the bytes it takes (0 when already present). Its contents are
    /// not checked here; a reader checks every blob's hash as it decompresses it.
    pub fn put_from(&self, hash: &BlobHash, file: &Path) -> Result<u64> {
        let path = self.path(hash);
        if path.exists() {
            return Ok(0);
        }
        if fs::hard_link(file, &path).is_err() {
            let tmp = self.dir.join(format!(".tmp-{}", hash.hex()));
            fs::copy(file, &tmp).map_err(io("copy blob", file))?;
            fs::rename(&tmp, &path).map_err(io("rename blob", &path))?;
        }
        Ok(fs::metadata(&path).map_err(io("stat blob", &path))?.len())
    }

    /// Where blob `hash` is (or would be) stored.
    pub fn file(&self, hash: &BlobHash) -> PathBuf {
        self.path(hash)
    }

    /// Reads a blob back, expecting `len` uncompressed bytes (the length recorded where
    /// the blob is referred to), and checks its length and hash. Decompression is
    /// streamed and stops one byte past `len`.
    pub fn get(&self, hash: &BlobHash, len: u64) -> Result<Vec<u8>> {
        // Grows with what really decompresses, not with what the trace claims.
        let mut bytes = Vec::with_capacity(len.min(1 << 20) as usize);
        self.decode(hash, len, &mut bytes)?;
        Ok(bytes)
    }

    /// Reads back a blob whose length the trace does not record (a file behind an
    /// initial mapping): at most `max` bytes, its hash checked.
    pub fn get_at_most(&self, hash: &BlobHash, max: u64) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.decode_checked(hash, max, false, &mut bytes)?;
        Ok(bytes)
    }

    /// Checks that a blob decompresses to `len` bytes with its hash, keeping none of it.
    pub fn verify(&self, hash: &BlobHash, len: u64) -> Result<()> {
        self.decode(hash, len, &mut std::io::sink())
    }

    fn decode(&self, hash: &BlobHash, len: u64, sink: &mut dyn Write) -> Result<()> {
        self.decode_checked(hash, len, true, sink)
    }

    /// Decompresses into `sink`, stopping one byte past `len`: more is an error, and so is
    /// less when `exact`.
    fn decode_checked(
        &self,
        hash: &BlobHash,
        len: u64,
        exact: bool,
        sink: &mut dyn Write,
    ) -> Result<()> {
        let path = self.path(hash);
        let err = |what: String| Error::Blob {
            hash: hash.hex(),
            what,
        };
        if len > MAX_BLOB_BYTES {
            return Err(err(format!(
                "the trace says it holds {len} bytes, more than a blob may ({MAX_BLOB_BYTES})"
            )));
        }
        let file = fs::File::open(&path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let decoder = zstd::stream::read::Decoder::new(file).map_err(|e| {
            err(format!(
                "{}: cannot start decompressing: {e}",
                path.display()
            ))
        })?;
        let mut hashing = HashingWriter {
            inner: sink,
            hasher: Sha256::new(),
        };
        let got = std::io::copy(&mut decoder.take(len + 1), &mut hashing)
            .map_err(|e| err(format!("{}: not a valid zstd stream: {e}", path.display())))?;
        if got > len {
            return Err(err(format!(
                "{}: decompresses to more than the {len} bytes the trace says it holds",
                path.display()
            )));
        }
        if got < len && exact {
            return Err(err(format!(
                "{}: decompresses to {got} bytes, the trace says {len}",
                path.display()
            )));
        }
        if BlobHash(hashing.hasher.finalize().into()) != *hash {
            return Err(err(format!(
                "{}: contents do not match the hash",
                path.display()
            )));
        }
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Passes bytes on while hashing them.
struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
