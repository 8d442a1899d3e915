//! Host unix datagram sockets: the transport of the management console (mconsole), the
//! way UML's os-Linux layer gives its mconsole driver a socket under the umid directory.
//! Only what a datagram server needs: bind, non-blocking receive with the sender's
//! address, reply to that address, and SIGIO on arrival.

use super::file::{self, Fd, F_SETFL, F_SETOWN, O_ASYNC, O_NONBLOCK};
use super::process;
use super::syscall::{nr, syscall3, syscall6, Errno};

const AF_UNIX: usize = 1;
const SOCK_DGRAM: usize = 2;
const SOCK_NONBLOCK: usize = 0o4000;
const SOCK_CLOEXEC: usize = 0o2000000;
const MSG_DONTWAIT: usize = 0x40;
const POLLIN: i32 = 0x1;

const ENAMETOOLONG: Errno = Errno(36);

/// `sizeof(struct sockaddr_un)`: a 2-byte family and a 108-byte path.
pub const SOCKADDR_UN_LEN: usize = 110;
const SUN_PATH_MAX: usize = SOCKADDR_UN_LEN - 2;

/// A unix socket address as the host kernel hands it out: the raw `sockaddr_un` and the
/// length it reported. Kept raw because peers may use abstract names (uml_mconsole binds
/// `"\0" + pid`), which are not NUL-terminated paths and must be echoed back byte-exact.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UnixAddr {
    raw: [u8; SOCKADDR_UN_LEN],
    len: u32,
}

impl UnixAddr {
    /// The address of a filesystem socket at `path`.
    pub fn from_path(path: &[u8]) -> Result<UnixAddr, Errno> {
        // The path needs its NUL inside sun_path so the host does not read past it.
        if path.len() >= SUN_PATH_MAX || path.contains(&0) {
            return Err(ENAMETOOLONG);
        }
        let mut raw = [0u8; SOCKADDR_UN_LEN];
        raw[..2].copy_from_slice(&(AF_UNIX as u16).to_ne_bytes());
        raw[2..2 + path.len()].copy_from_slice(path);
        Ok(UnixAddr {
            raw,
            len: (2 + path.len() + 1) as u32,
        })
    }

    /// The name part (after the family): a path, or `\0`-led bytes for an abstract name;
    /// empty for an unnamed (unbound) peer, which cannot be replied to.
    pub fn name(&self) -> &[u8] {
        let end = (self.len as usize).clamp(2, SOCKADDR_UN_LEN);
        &self.raw[2..end]
    }

    /// Whether a reply can be addressed to this peer.
    pub fn is_named(&self) -> bool {
        !self.name().is_empty()
    }
}

impl core::fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UnixAddr(")?;
        for &b in self.name() {
            if b == 0 {
                f.write_str("@")?; // abstract names are conventionally shown with '@'
            } else if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{:02x}", b)?;
            }
        }
        f.write_str(")")
    }
}

/// Creates a non-blocking unix datagram socket bound at `path`, replacing a stale socket
/// left by an earlier run (as UML does: a crashed instance never unlinks its mconsole).
pub fn bind_unix_dgram(path: &[u8]) -> Result<Fd, Errno> {
    let addr = UnixAddr::from_path(path)?;
    // A failed unlink is not reported: bind then fails with the error that matters
    // (EADDRINUSE, EACCES), and ENOENT is the normal case.
    let _ = file::unlink(path);
    let fd = syscall3(
        nr::SOCKET,
        AF_UNIX,
        SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
        0,
    )?;
    let fd = Fd(fd as i32);
    if let Err(e) = syscall3(
        nr::BIND,
        fd.0 as usize,
        addr.raw.as_ptr() as usize,
        addr.len as usize,
    ) {
        file::close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// Receives one datagram without blocking: `None` when nothing is queued. A datagram
/// longer than `buf` is cut to `buf.len()` (the rest is discarded by the host).
pub fn recv_from(fd: Fd, buf: &mut [u8]) -> Result<Option<(usize, UnixAddr)>, Errno> {
    let mut addr = UnixAddr {
        raw: [0; SOCKADDR_UN_LEN],
        len: SOCKADDR_UN_LEN as u32,
    };
    loop {
        addr.len = SOCKADDR_UN_LEN as u32;
        // MSG_DONTWAIT as well as O_NONBLOCK: `stop` must never hang here even if someone
        // cleared the file status flags.
        let ret = syscall6(
            nr::RECVFROM,
            fd.0 as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            MSG_DONTWAIT,
            addr.raw.as_mut_ptr() as usize,
            &mut addr.len as *mut u32 as usize,
        );
        match ret {
            Ok(n) => {
                addr.len = addr.len.min(SOCKADDR_UN_LEN as u32);
                return Ok(Some((n, addr)));
            }
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sends one datagram to `to` without blocking; EAGAIN means the peer's queue is full.
pub fn send_to(fd: Fd, buf: &[u8], to: &UnixAddr) -> Result<usize, Errno> {
    loop {
        let ret = syscall6(
            nr::SENDTO,
            fd.0 as usize,
            buf.as_ptr() as usize,
            buf.len(),
            MSG_DONTWAIT,
            to.raw.as_ptr() as usize,
            to.len as usize,
        );
        match ret {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Like [`send_to`], but rides out a full peer queue for up to `max_wait_ms`. A unix
/// datagram peer accepts only `net.unix.max_dgram_qlen` (10 by default) unread packets,
/// so a long multi-packet reply outruns even a client blocked in recvfrom.
pub fn send_to_patiently(
    fd: Fd,
    buf: &[u8],
    to: &UnixAddr,
    max_wait_ms: u32,
) -> Result<usize, Errno> {
    let mut waited = 0;
    loop {
        match send_to(fd, buf, to) {
            Err(Errno::EAGAIN) if waited < max_wait_ms => {
                // Writability of an unconnected datagram socket says nothing about the
                // peer's queue, so poll cannot wait for it: sleep a millisecond instead.
                let _ = syscall3(nr::POLL, 0, 0, 1);
                waited += 1;
            }
            other => return other,
        }
    }
}

/// Blocks until `fd` is readable or `timeout_ms` passes (negative: forever). A signal
/// ends the wait early with `Ok(false)`, so the caller re-checks its state.
pub fn wait_readable(fd: Fd, timeout_ms: i32) -> Result<bool, Errno> {
    // struct pollfd { int fd; short events; short revents; }
    let mut pfd: [i32; 2] = [fd.0, POLLIN];
    match syscall3(
        nr::POLL,
        pfd.as_mut_ptr() as usize,
        1,
        timeout_ms as isize as usize,
    ) {
        Ok(n) => Ok(n > 0 && (pfd[1] >> 16) != 0),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Asks the host to raise SIGIO at this process whenever a datagram arrives: UML's
/// "interrupt" for the mconsole. The caller must have a SIGIO handler installed first,
/// since SIGIO's default action kills the process.
pub fn enable_sigio(fd: Fd) -> Result<(), Errno> {
    file::fcntl(fd, F_SETOWN, process::getpid() as usize)?;
    file::fcntl(fd, F_SETFL, O_ASYNC | O_NONBLOCK)?;
    Ok(())
}
