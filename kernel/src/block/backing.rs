//! Host files that hold disk images: the byte-addressed storage under `RawDisk` and
//! `CowDisk`. umk implements it for host fds; unit tests implement it for `std::fs::File`.

use crate::host::Errno;

/// A host file used as disk storage.
pub trait BackingFile {
    /// Fills all of `buf` from byte `off`; reading past end of file is an error.
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Writes all of `buf` at byte `off`, extending the file if needed.
    fn write_at(&mut self, off: u64, buf: &[u8]) -> Result<(), Errno>;
    /// Current file length in bytes.
    fn len(&self) -> Result<u64, Errno>;
    /// Last modification time, in seconds since the epoch.
    fn mtime(&self) -> Result<u64, Errno>;
    /// Whether the file holds no bytes.
    fn is_empty(&self) -> Result<bool, Errno> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
impl BackingFile for std::fs::File {
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, off).map_err(io_errno)
    }

    fn write_at(&mut self, off: u64, buf: &[u8]) -> Result<(), Errno> {
        std::os::unix::fs::FileExt::write_all_at(self, buf, off).map_err(io_errno)
    }

    fn len(&self) -> Result<u64, Errno> {
        Ok(self.metadata().map_err(io_errno)?.len())
    }

    fn mtime(&self) -> Result<u64, Errno> {
        let m = std::os::unix::fs::MetadataExt::mtime(&self.metadata().map_err(io_errno)?);
        Ok(m as u64)
    }
}

#[cfg(test)]
fn io_errno(e: std::io::Error) -> Errno {
    // A short read has no errno; report it as EIO like a failing disk would.
    Errno(e.raw_os_error().unwrap_or(5))
}
