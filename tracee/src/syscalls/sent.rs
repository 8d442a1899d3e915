//! What a system call sends out of the process: for every call that writes data to a
//! descriptor (write, pwrite, writev, pwritev, sendto, sendmsg, sendfile,
//! copy_file_range), where the bytes it sent are — in tracee memory, or in the file it
//! copied from — and which descriptor they went to. The recorder records them
//! (`trace::Output`); the replayer finds the same bytes in the replayed program's memory
//! and compares, so a replay that would send anything else stops at that event.

use super::outputs::iov;
use super::{Peek, Range};

/// Where the bytes a call sent come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// These ranges of tracee memory, in order (already cut to the call's result).
    Memory(Vec<Range>),
    /// A file the kernel copied from: descriptor `fd`, from `offset` (the explicit offset
    /// argument when the call has one, else the descriptor's position before the call).
    File {
        /// The source descriptor.
        fd: i32,
        /// Address of the call's `loff_t *` argument (0 when it uses the file position).
        offset_ptr: u64,
    },
}

/// One call's output: the descriptor written and the source of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The descriptor the bytes went to.
    pub fd: i32,
    /// Where they come from.
    pub source: Source,
}

/// The output of syscall `nr` with arguments `a` and result `ret`, if it is an output
/// call that sent something. `mem` reads the iovec arrays and message headers.
#[allow(non_upper_case_globals)]
pub fn sent(nr: u64, a: [u64; 6], ret: i64, mem: &dyn Peek) -> Option<Sent> {
    use libc::*;
    let n = usize::try_from(ret).ok().filter(|&n| n > 0)?;
    let nr = c_long::try_from(nr).ok()?;
    let fd = |i: usize| crate::abi::as_c_int(a[i]);
    let mut ranges = Vec::new();
    let (to, source) = match nr {
        SYS_write | SYS_pwrite64 | SYS_sendto => {
            ranges.push((a[1], n));
            (fd(0), Source::Memory(ranges))
        }
        SYS_writev | SYS_pwritev | SYS_pwritev2 => {
            iov(&mut ranges, mem, a[1], a[2], n);
            (fd(0), Source::Memory(ranges))
        }
        SYS_sendmsg => {
            // struct msghdr: name, namelen, iov, iovlen, …
            let iov_at = mem.peek_u64(a[1] + 16)?;
            let iovlen = mem.peek_u64(a[1] + 24)?;
            iov(&mut ranges, mem, iov_at, iovlen, n);
            (fd(0), Source::Memory(ranges))
        }
        SYS_sendfile => (
            fd(0),
            Source::File {
                fd: fd(1),
                offset_ptr: a[2],
            },
        ),
        SYS_copy_file_range => (
            fd(2),
            Source::File {
                fd: fd(0),
                offset_ptr: a[1],
            },
        ),
        _ => return None,
    };
    Some(Sent { fd: to, source })
}

/// Whether `nr` may make a descriptor refer to something else (so what reaches the
/// console must be looked up again): opening, closing, duplicating, and exec.
#[allow(non_upper_case_globals)]
pub fn may_change_descriptors(nr: u64) -> bool {
    use libc::*;
    let Ok(nr) = c_long::try_from(nr) else {
        return true;
    };
    !matches!(
        nr,
        SYS_read
            | SYS_pread64
            | SYS_readv
            | SYS_preadv
            | SYS_preadv2
            | SYS_lseek
            | SYS_fstat
            | SYS_newfstatat
            | SYS_statx
            | SYS_clock_gettime
            | SYS_gettimeofday
            | SYS_nanosleep
            | SYS_clock_nanosleep
            | SYS_poll
            | SYS_ppoll
            | SYS_select
            | SYS_pselect6
            | SYS_epoll_wait
            | SYS_epoll_pwait
            | SYS_rt_sigaction
            | SYS_setitimer
            | SYS_getitimer
            | SYS_getpid
            | SYS_kill
            | SYS_pause
            | SYS_fsync
            | SYS_fdatasync
            | SYS_recvfrom
            | SYS_recvmsg
            | SYS_futex
            | SYS_mmap
            | SYS_getrandom
    )
}

/// Bytes read a piece at a time, so that a call sending gigabytes costs no gigabytes.
const PIECE: usize = 64 << 10;

/// The SHA-256 of the bytes at `ranges` (read through `read`, a piece at a time), and
/// the first `keep` of them.
pub fn digest<E>(
    ranges: &[Range],
    keep: usize,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
) -> Result<([u8; 32], Vec<u8>), E> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; PIECE];
    for &(addr, len) in ranges {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE);
            read(addr + done as u64, &mut buf[..n])?;
            h.update(&buf[..n]);
            let room = keep.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&buf[..room]);
            done += n;
        }
    }
    Ok((h.finalize().into(), kept))
}

/// Whether `nr` sends bytes it copies from a file, whose position must then be read
/// before the call.
pub fn copies_from_file(nr: u64) -> bool {
    nr == libc::SYS_sendfile as u64 || nr == libc::SYS_copy_file_range as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Iov(Vec<(u64, u64)>);
    impl Peek for Iov {
        fn peek(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
            let i = usize::try_from((addr - 0x1000) / 8).ok()?;
            let word = self
                .0
                .get(i / 2)
                .map(|&(b, l)| if i % 2 == 0 { b } else { l })?;
            Some(word.to_le_bytes()[..len].to_vec())
        }
    }

    #[test]
    fn writev_sends_the_first_ret_bytes_of_its_iovecs() {
        let mem = Iov(vec![(0x5000, 3), (0x6000, 10), (0x7000, 4)]);
        let s = sent(libc::SYS_writev as u64, [1, 0x1000, 3, 0, 0, 0], 8, &mem).unwrap();
        assert_eq!(s.fd, 1);
        assert_eq!(s.source, Source::Memory(vec![(0x5000, 3), (0x6000, 5)]));
    }

    #[test]
    fn failed_or_empty_writes_send_nothing_and_copies_name_their_source() {
        let mem = Iov(vec![]);
        assert_eq!(
            sent(libc::SYS_write as u64, [1, 0x10, 5, 0, 0, 0], -9, &mem),
            None
        );
        assert_eq!(
            sent(libc::SYS_write as u64, [1, 0x10, 5, 0, 0, 0], 0, &mem),
            None
        );
        let s = sent(
            libc::SYS_copy_file_range as u64,
            [3, 0, 1, 0, 99, 0],
            99,
            &mem,
        )
        .unwrap();
        assert_eq!(
            s,
            Sent {
                fd: 1,
                source: Source::File {
                    fd: 3,
                    offset_ptr: 0
                }
            }
        );
        assert_eq!(
            sent(libc::SYS_read as u64, [0, 0x10, 5, 0, 0, 0], 5, &mem),
            None
        );
    }
}
