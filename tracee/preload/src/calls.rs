//! The interposed C library functions and the buffered path they share: decide whether
//! a call may be buffered, make it from the entry page, append its record. `mmap` is
//! interposed only to notice MAP_SHARED file mappings (see `SHARED_FILE_MAPPED`).

use core::sync::atomic::{AtomicBool, Ordering};

use syscallbuf_abi::{self as abi, header};

use crate::entry::{self, traced, untraced};

#[link(name = "c")]
extern "C" {
    fn __errno_location() -> *mut i32;
}

/// The memory a call's record carries, besides its number, arguments and result.
#[derive(Clone, Copy)]
enum Out {
    Nothing,
    /// Up to `max` bytes at `addr`, as many as the call returned (read, write, …).
    Counted {
        addr: u64,
        max: u64,
    },
    /// `len` bytes at `addr` when the call succeeded (fstat, clock_gettime, …).
    Whole {
        addr: u64,
        len: u64,
    },
}

impl Out {
    fn room(self) -> u64 {
        match self {
            Out::Nothing => 0,
            Out::Counted { max, .. } => abi::CHUNK_HEAD + abi::align8(max),
            Out::Whole { len, .. } => abi::CHUNK_HEAD + abi::align8(len),
        }
    }

    /// The chunk for result `ret`, if any.
    fn chunk(self, ret: i64) -> Option<(u64, u64)> {
        match self {
            Out::Nothing => None,
            Out::Counted { addr, max } => u64::try_from(ret).ok().map(|n| (addr, n.min(max))),
            Out::Whole { addr, len } => (ret >= 0).then_some((addr, len)),
        }
    }
}

const CAPACITY: u64 = abi::BUFFER_SIZE - header::SIZE;

/// Makes call `nr` from the entry page and logs it, or returns `None` when it must take
/// the traced path: the library is off, a signal handler interrupted a buffered call
/// (its own calls then go traced, leaving the half-made record alone), or it is too big.
fn buffered(nr: u64, a: [u64; 6], out: Out) -> Option<i64> {
    let need = abi::RECORD_HEAD + out.room();
    if !crate::READY.load(Ordering::Relaxed) || need > CAPACITY || entry::word(header::BUSY) != 0 {
        return None;
    }
    entry::set_word(header::BUSY, 1);
    let mut at = entry::word(header::USED);
    if at > CAPACITY || need > CAPACITY - at {
        // The recorder drains the buffer at this traced call's stop.
        traced(abi::FLUSH_NR, [0; 6]);
        entry::set_word(header::USED, 0);
        entry::set_word(header::DRAINED, 0);
        at = 0;
    }
    let ret = untraced(nr, a);
    let chunk = out.chunk(ret);
    let size = abi::RECORD_HEAD + chunk.map_or(0, |(_, len)| abi::CHUNK_HEAD + abi::align8(len));
    entry::put(at, size | (u64::from(chunk.is_some()) << 32));
    entry::put(at + 8, nr);
    for (i, v) in a.iter().enumerate() {
        entry::put(at + 16 + 8 * i as u64, *v);
    }
    entry::put(at + 64, ret as u64);
    if let Some((addr, len)) = chunk {
        let c = at + abi::RECORD_HEAD;
        entry::put(c, addr);
        entry::put(c + 8, len);
        // SAFETY: the kernel just read or wrote `len` bytes at `addr` for this call (it
        // returned success, or that count), and `need` reserved room for them.
        unsafe { entry::copy_in(c + abi::CHUNK_HEAD, addr, len) };
    }
    entry::set_word(header::USED, at + size);
    entry::set_word(header::BUSY, 0);
    Some(ret)
}

/// Whether reads and writes on `fd` return without waiting on anything: regular files
/// and the memory devices. Asked with a buffered `fstat`, so replay answers the same.
fn never_waits(fd: i32) -> bool {
    const S_IFMT: u64 = 0o170_000;
    const S_IFREG: u64 = 0o100_000;
    const S_IFCHR: u64 = 0o020_000;
    // /dev/null, zero, full, random, urandom: major 1, minors 3, 5, 7, 8, 9.
    const MEMORY_DEVICES: [u64; 5] = [0x103, 0x105, 0x107, 0x108, 0x109];
    let mut st = [0u64; 18];
    let addr = st.as_mut_ptr() as u64;
    let out = Out::Whole { addr, len: 144 };
    if buffered(5, [fd as u64, addr, 0, 0, 0, 0], out) != Some(0) {
        return false;
    }
    let (mode, rdev) = (st[3] & S_IFMT, st[5]);
    mode == S_IFREG || (mode == S_IFCHR && MEMORY_DEVICES.contains(&rdev))
}

/// A call's result as the C library returns it: `-1` with errno set for an error.
fn libc_result(ret: i64) -> i64 {
    if (-4095..0).contains(&ret) {
        // SAFETY: the C library's per-thread errno, valid for the calling thread.
        unsafe { *__errno_location() = -ret as i32 };
        return -1;
    }
    ret
}

/// Set once the program maps a file MAP_SHARED: from then on its writes are traced, so
/// the recorder can check each against the shared mappings at the moment it happens.
static SHARED_FILE_MAPPED: AtomicBool = AtomicBool::new(false);

/// A transfer on `fd`: buffered when it never waits and is not too big, else traced.
fn transfer(nr: u64, fd: i32, a: [u64; 6], buf: u64, n: u64) -> i64 {
    let writes = nr == 1 || nr == 18;
    let ret = if n <= abi::MAX_TRANSFER
        && crate::READY.load(Ordering::Relaxed)
        && !(writes && SHARED_FILE_MAPPED.load(Ordering::Relaxed))
        && never_waits(fd)
    {
        buffered(nr, a, Out::Counted { addr: buf, max: n })
    } else {
        None
    };
    libc_result(ret.unwrap_or_else(|| traced(nr, a)))
}

/// Any other buffered call.
fn simple(nr: u64, a: [u64; 6], out: Out) -> i64 {
    libc_result(buffered(nr, a, out).unwrap_or_else(|| traced(nr, a)))
}

#[no_mangle]
extern "C" fn read(fd: i32, buf: *mut u8, n: usize) -> isize {
    let a = [fd as u64, buf as u64, n as u64, 0, 0, 0];
    transfer(0, fd, a, buf as u64, n as u64) as isize
}

#[no_mangle]
extern "C" fn write(fd: i32, buf: *const u8, n: usize) -> isize {
    let a = [fd as u64, buf as u64, n as u64, 0, 0, 0];
    transfer(1, fd, a, buf as u64, n as u64) as isize
}

#[no_mangle]
extern "C" fn pread64(fd: i32, buf: *mut u8, n: usize, off: i64) -> isize {
    let a = [fd as u64, buf as u64, n as u64, off as u64, 0, 0];
    transfer(17, fd, a, buf as u64, n as u64) as isize
}

#[no_mangle]
extern "C" fn pread(fd: i32, buf: *mut u8, n: usize, off: i64) -> isize {
    pread64(fd, buf, n, off)
}

#[no_mangle]
extern "C" fn pwrite64(fd: i32, buf: *const u8, n: usize, off: i64) -> isize {
    let a = [fd as u64, buf as u64, n as u64, off as u64, 0, 0];
    transfer(18, fd, a, buf as u64, n as u64) as isize
}

#[no_mangle]
extern "C" fn pwrite(fd: i32, buf: *const u8, n: usize, off: i64) -> isize {
    pwrite64(fd, buf, n, off)
}

#[no_mangle]
extern "C" fn lseek64(fd: i32, off: i64, whence: i32) -> i64 {
    simple(
        8,
        [fd as u64, off as u64, whence as u64, 0, 0, 0],
        Out::Nothing,
    )
}

#[no_mangle]
extern "C" fn lseek(fd: i32, off: i64, whence: i32) -> i64 {
    lseek64(fd, off, whence)
}

#[no_mangle]
extern "C" fn clock_gettime(clock: i32, ts: *mut u64) -> i32 {
    let out = Out::Whole {
        addr: ts as u64,
        len: 16,
    };
    simple(228, [clock as u64, ts as u64, 0, 0, 0, 0], out) as i32
}

#[no_mangle]
extern "C" fn gettimeofday(tv: *mut u64, tz: *mut u64) -> i32 {
    let a = [tv as u64, tz as u64, 0, 0, 0, 0];
    if tv.is_null() || !tz.is_null() {
        // Two outputs (or none): rare, and not worth a second chunk kind.
        return libc_result(traced(96, a)) as i32;
    }
    let out = Out::Whole {
        addr: tv as u64,
        len: 16,
    };
    simple(96, a, out) as i32
}

#[no_mangle]
extern "C" fn time(tloc: *mut i64) -> i64 {
    let out = match tloc.is_null() {
        true => Out::Nothing,
        false => Out::Whole {
            addr: tloc as u64,
            len: 8,
        },
    };
    simple(201, [tloc as u64, 0, 0, 0, 0, 0], out)
}

#[no_mangle]
extern "C" fn getpid() -> i32 {
    simple(39, [0; 6], Out::Nothing) as i32
}

#[no_mangle]
extern "C" fn getppid() -> i32 {
    simple(110, [0; 6], Out::Nothing) as i32
}

#[no_mangle]
extern "C" fn getuid() -> u32 {
    simple(102, [0; 6], Out::Nothing) as u32
}

#[no_mangle]
extern "C" fn mmap64(addr: u64, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> i64 {
    const MAP_TYPE: i32 = 0x0f;
    const MAP_PRIVATE: i32 = 0x02;
    const MAP_ANONYMOUS: i32 = 0x20;
    if flags & MAP_TYPE != MAP_PRIVATE && flags & MAP_ANONYMOUS == 0 {
        SHARED_FILE_MAPPED.store(true, Ordering::Relaxed);
    }
    let a = [
        addr,
        len as u64,
        prot as u64,
        flags as u64,
        fd as u64,
        off as u64,
    ];
    libc_result(traced(9, a))
}

#[no_mangle]
extern "C" fn mmap(addr: u64, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> i64 {
    mmap64(addr, len, prot, flags, fd, off)
}
