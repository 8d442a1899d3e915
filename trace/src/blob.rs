//! Content-addressed blobs: file contents and large system call outputs, stored once per
//! distinct content under `blobs/<sha256 hex>`, zstd-compressed. Written to a temporary
//! name and renamed, so a killed recorder never leaves a half blob under a real name.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};

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

    /// Reads a blob back and checks its hash.
    pub fn get(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        let path = self.path(hash);
        let compressed = fs::read(&path).map_err(|e| Error::Blob {
            hash: hash.hex(),
            what: format!("cannot read {}: {e}", path.display()),
        })?;
        let bytes = zstd::stream::decode_all(&compressed[..]).map_err(|e| Error::Blob {
            hash: hash.hex(),
            what: format!("{}: not a valid zstd stream: {e}", path.display()),
        })?;
        if BlobHash::of(&bytes) != *hash {
            return Err(Error::Blob {
                hash: hash.hex(),
                what: format!("{}: contents do not match the hash", path.display()),
            });
        }
        Ok(bytes)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
