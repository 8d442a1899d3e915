//! Host files and pipes: the backing store of ubd disks, the console's stdin/stdout, and
//! the `init=` script. Paths are passed as byte strings and NUL-terminated here.

use super::syscall::{nr, syscall3, syscall4, syscall6, Errno, SysResult};

pub const O_RDONLY: usize = 0;
pub const O_WRONLY: usize = 1;
pub const O_RDWR: usize = 2;
pub const O_CREAT: usize = 0o100;
pub const O_EXCL: usize = 0o200;
pub const O_TRUNC: usize = 0o1000;
pub const O_NONBLOCK: usize = 0o4000;
pub const O_CLOEXEC: usize = 0o2000000;
const AT_FDCWD: isize = -100;

pub const STDIN: Fd = Fd(0);
pub const STDOUT: Fd = Fd(1);
pub const STDERR: Fd = Fd(2);

/// A host file descriptor owned by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd(pub i32);

/// Longest host path umk accepts (ubd images, init scripts, sockets).
pub const PATH_MAX: usize = 256;

/// Copies `path` into a NUL-terminated buffer.
pub fn cpath(path: &[u8]) -> Result<[u8; PATH_MAX], Errno> {
    if path.len() >= PATH_MAX || path.contains(&0) {
        return Err(Errno(36)); // ENAMETOOLONG
    }
    let mut buf = [0u8; PATH_MAX];
    buf[..path.len()].copy_from_slice(path);
    Ok(buf)
}

pub fn open(path: &[u8], flags: usize, mode: usize) -> Result<Fd, Errno> {
    let p = cpath(path)?;
    syscall4(
        nr::OPENAT,
        AT_FDCWD as usize,
        p.as_ptr() as usize,
        flags | O_CLOEXEC,
        mode,
    )
    .map(|fd| Fd(fd as i32))
}

pub fn close(fd: Fd) {
    let _ = syscall3(nr::CLOSE, fd.0 as usize, 0, 0);
}

pub fn read(fd: Fd, buf: &mut [u8]) -> SysResult {
    syscall3(
        nr::READ,
        fd.0 as usize,
        buf.as_mut_ptr() as usize,
        buf.len(),
    )
}

pub fn write(fd: Fd, buf: &[u8]) -> SysResult {
    syscall3(nr::WRITE, fd.0 as usize, buf.as_ptr() as usize, buf.len())
}

/// Writes all of `buf`, retrying short writes and EINTR (console output must not be lost
/// to a timer signal).
pub fn write_all(fd: Fd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn pread(fd: Fd, buf: &mut [u8], offset: u64) -> SysResult {
    syscall4(
        nr::PREAD64,
        fd.0 as usize,
        buf.as_mut_ptr() as usize,
        buf.len(),
        offset as usize,
    )
}

pub fn pwrite(fd: Fd, buf: &[u8], offset: u64) -> SysResult {
    syscall4(
        nr::PWRITE64,
        fd.0 as usize,
        buf.as_ptr() as usize,
        buf.len(),
        offset as usize,
    )
}

/// Reads exactly `buf.len()` bytes at `offset`; a short file reads as zeros past its end,
/// the way a sparse disk image does.
pub fn pread_exact(fd: Fd, buf: &mut [u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => {
                buf[done..].fill(0);
                return Ok(());
            }
            Ok(n) => done += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn pwrite_all(fd: Fd, buf: &[u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match pwrite(fd, &buf[done..], offset + done as u64) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn fsync(fd: Fd) -> Result<(), Errno> {
    syscall3(nr::FSYNC, fd.0 as usize, 0, 0).map(|_| ())
}

pub fn ftruncate(fd: Fd, len: u64) -> Result<(), Errno> {
    syscall3(nr::FTRUNCATE, fd.0 as usize, len as usize, 0).map(|_| ())
}

/// Size of a host file in bytes.
pub fn size(fd: Fd) -> Result<u64, Errno> {
    // struct stat is 144 bytes on x86_64; st_size is at offset 48.
    let mut st = [0u64; 18];
    syscall3(nr::FSTAT, fd.0 as usize, st.as_mut_ptr() as usize, 0)?;
    Ok(st[6])
}

/// Modification time of a host file (seconds), as UML's COW header records it.
pub fn mtime(fd: Fd) -> Result<u64, Errno> {
    let mut st = [0u64; 18];
    syscall3(nr::FSTAT, fd.0 as usize, st.as_mut_ptr() as usize, 0)?;
    Ok(st[11])
}

pub fn unlink(path: &[u8]) -> Result<(), Errno> {
    let p = cpath(path)?;
    syscall3(nr::UNLINK, p.as_ptr() as usize, 0, 0).map(|_| ())
}

pub fn pipe(flags: usize) -> Result<(Fd, Fd), Errno> {
    let mut fds = [0i32; 2];
    syscall3(nr::PIPE2, fds.as_mut_ptr() as usize, flags, 0)?;
    Ok((Fd(fds[0]), Fd(fds[1])))
}

pub const F_SETFL: usize = 4;
pub const F_GETFL: usize = 3;
pub const F_SETOWN: usize = 8;
pub const F_SETSIG: usize = 10;
pub const F_SETPIPE_SZ: usize = 1031;
pub const O_ASYNC: usize = 0o20000;

pub fn fcntl(fd: Fd, cmd: usize, arg: usize) -> SysResult {
    syscall3(nr::FCNTL, fd.0 as usize, cmd, arg)
}

/// Whether `fd` has input ready, without blocking.
pub fn poll_readable(fd: Fd) -> Result<bool, Errno> {
    // struct pollfd { int fd; short events; short revents; }
    let mut pfd: [i32; 2] = [fd.0, 1]; // POLLIN
    let n = syscall6(nr::POLL, pfd.as_mut_ptr() as usize, 1, 0, 0, 0, 0)?;
    Ok(n > 0 && (pfd[1] >> 16) != 0)
}
