//! Disk images as host files: the `BackingFile` implementation over host fds that the ubd
//! driver gives to `RawDisk` and `CowDisk`.

use super::backing::BackingFile;
use crate::host::file::{self, Fd};
use crate::host::Errno;

/// An open host file, closed when dropped.
pub struct HostFile {
    fd: Fd,
}

const EIO: Errno = Errno(5);

impl HostFile {
    /// Opens `path` read-write, or read-only when `writable` is false.
    pub fn open(path: &[u8], writable: bool) -> Result<HostFile, Errno> {
        let flags = if writable {
            file::O_RDWR
        } else {
            file::O_RDONLY
        };
        file::open(path, flags, 0).map(|fd| HostFile { fd })
    }

    /// Creates `path` (failing if it exists) for a new COW file.
    pub fn create(path: &[u8]) -> Result<HostFile, Errno> {
        file::open(path, file::O_RDWR | file::O_CREAT | file::O_EXCL, 0o644)
            .map(|fd| HostFile { fd })
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        file::close(self.fd);
    }
}

impl BackingFile for HostFile {
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0;
        while done < buf.len() {
            match file::pread(self.fd, &mut buf[done..], off + done as u64) {
                Ok(0) => return Err(EIO),
                Ok(n) => done += n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn write_at(&mut self, off: u64, buf: &[u8]) -> Result<(), Errno> {
        file::pwrite_all(self.fd, buf, off)
    }

    fn len(&self) -> Result<u64, Errno> {
        file::size(self.fd)
    }

    fn mtime(&self) -> Result<u64, Errno> {
        file::mtime(self.fd)
    }
}
