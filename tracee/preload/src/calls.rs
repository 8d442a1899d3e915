//! The interposed C library functions and the buffered path they share: decide whether
//! a call may be buffered, make it from the entry page, append its record. `mmap` is
//! interposed only to notice MAP_SHARED file mappings (see `SHARED_FILE_MAPPED`).

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use syscallbuf_abi::{self as abi, header};

use crate::entry::{self, traced, untraced};
use crate::env;

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

/// What the library knows of each descriptor below 1024: 0 nothing (not asked since it
/// last changed), 1 never waits, 2 may wait. A descriptor changes through `close`,
/// `dup2` and `dup3`, and a new one comes from the calls below that return one; the C
/// library's own closes and opens (fclose, popen) are not seen, so a number it reuses
/// keeps its old answer. A wrong "never waits" cannot make a recording wrong (every
/// buffered call is recorded with what it did); it could only let a read of a pipe wait
/// unseen, so such an fd is asked again whenever the program itself opens one.
static KNOWN: [AtomicU8; 1024] = [const { AtomicU8::new(0) }; 1024];

fn known(fd: i64) -> Option<&'static AtomicU8> {
    usize::try_from(fd).ok().and_then(|i| KNOWN.get(i))
}

/// Forgets what the library knew of `fd`.
fn forget(fd: i64) {
    if let Some(k) = known(fd) {
        k.store(0, Ordering::Relaxed);
    }
}

/// Whether reads and writes on `fd` return without waiting on anything: regular files
/// and the memory devices. Asked with a buffered `fstat`, so replay answers the same.
fn never_waits(fd: i32) -> bool {
    const S_IFMT: u64 = 0o170_000;
    const S_IFREG: u64 = 0o100_000;
    const S_IFCHR: u64 = 0o020_000;
    // /dev/null, zero, full, random, urandom: major 1, minors 3, 5, 7, 8, 9.
    const MEMORY_DEVICES: [u64; 5] = [0x103, 0x105, 0x107, 0x108, 0x109];
    let slot = known(i64::from(fd));
    match slot.map(|k| k.load(Ordering::Relaxed)) {
        Some(1) => return true,
        Some(2) => return false,
        _ => {}
    }
    let mut st = [0u64; 18];
    let addr = st.as_mut_ptr() as u64;
    let out = Out::Whole { addr, len: 144 };
    let answer = match buffered(5, [fd as u64, addr, 0, 0, 0, 0], out) {
        Some(0) => {
            let (mode, rdev) = (st[3] & S_IFMT, st[5]);
            mode == S_IFREG || (mode == S_IFCHR && MEMORY_DEVICES.contains(&rdev))
        }
        Some(_) => false,
        // Not asked (reentered, or the library is off): ask again next time.
        None => return false,
    };
    if let Some(k) = slot {
        k.store(if answer { 1 } else { 2 }, Ordering::Relaxed);
    }
    answer
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

type Execvpe = unsafe extern "C" fn(*const u8, *const *const u8, *const *const u8) -> i32;
type PosixSpawn = unsafe extern "C" fn(
    *mut i32,
    *const u8,
    *const c_void,
    *const c_void,
    *const *const u8,
    *const *const u8,
) -> i32;

/// The C library's `name`, or `None` (errno ENOSYS set) if it has none.
fn real(name: &[u8]) -> Option<*mut c_void> {
    let f = env::next(name);
    if f.is_null() {
        libc_result(-38);
        return None;
    }
    Some(f)
}

/// # Safety
/// As execve(2): `path` a string, `argv` and `envp` NULL-terminated string arrays.
#[no_mangle]
unsafe extern "C" fn execve(
    path: *const u8,
    argv: *const *const u8,
    envp: *const *const u8,
) -> i32 {
    // SAFETY: per the contract.
    unsafe {
        env::with_preload(envp, |e| {
            libc_result(traced(59, [path as u64, argv as u64, e as u64, 0, 0, 0])) as i32
        })
    }
}

/// # Safety
/// As execv(3).
#[no_mangle]
unsafe extern "C" fn execv(path: *const u8, argv: *const *const u8) -> i32 {
    // SAFETY: per the contract; `environ` is a valid environment.
    unsafe { execve(path, argv, env::current()) }
}

/// # Safety
/// As execvpe(3).
#[no_mangle]
unsafe extern "C" fn execvpe(
    file: *const u8,
    argv: *const *const u8,
    envp: *const *const u8,
) -> i32 {
    let Some(f) = real(b"execvpe\0") else {
        return -1;
    };
    // SAFETY: dlsym found the C library's execvpe, of this signature; the arguments are
    // the caller's, per the contract.
    unsafe {
        let f: Execvpe = core::mem::transmute::<*mut c_void, Execvpe>(f);
        env::with_preload(envp, |e| f(file, argv, e))
    }
}

/// # Safety
/// As execvp(3).
#[no_mangle]
unsafe extern "C" fn execvp(file: *const u8, argv: *const *const u8) -> i32 {
    // SAFETY: per the contract; `environ` is a valid environment.
    unsafe { execvpe(file, argv, env::current()) }
}

/// posix_spawn(3) or posix_spawnp(3) (`name`) with the library put back into `envp`.
///
/// # Safety
/// As posix_spawn(3).
unsafe fn spawn(
    name: &[u8],
    pid: *mut i32,
    path: *const u8,
    actions: *const c_void,
    attr: *const c_void,
    argv: *const *const u8,
    envp: *const *const u8,
) -> i32 {
    let Some(f) = real(name) else {
        return 38;
    };
    // SAFETY: dlsym found the C library's function of this signature; the arguments are
    // the caller's, per the contract.
    unsafe {
        let f: PosixSpawn = core::mem::transmute::<*mut c_void, PosixSpawn>(f);
        env::with_preload(envp, |e| f(pid, path, actions, attr, argv, e))
    }
}

/// # Safety
/// As posix_spawn(3).
#[no_mangle]
unsafe extern "C" fn posix_spawn(
    pid: *mut i32,
    path: *const u8,
    actions: *const c_void,
    attr: *const c_void,
    argv: *const *const u8,
    envp: *const *const u8,
) -> i32 {
    // SAFETY: per the contract.
    unsafe { spawn(b"posix_spawn\0", pid, path, actions, attr, argv, envp) }
}

/// # Safety
/// As posix_spawnp(3).
#[no_mangle]
unsafe extern "C" fn posix_spawnp(
    pid: *mut i32,
    file: *const u8,
    actions: *const c_void,
    attr: *const c_void,
    argv: *const *const u8,
    envp: *const *const u8,
) -> i32 {
    // SAFETY: per the contract.
    unsafe { spawn(b"posix_spawnp\0", pid, file, actions, attr, argv, envp) }
}

/// A traced call that returns a new descriptor (or -1): what the library knew of that
/// number is forgotten.
fn new_fd(nr: u64, a: [u64; 6]) -> i64 {
    let ret = traced(nr, a);
    forget(ret);
    libc_result(ret)
}

#[no_mangle]
extern "C" fn close(fd: i32) -> i32 {
    forget(i64::from(fd));
    libc_result(traced(3, [fd as u64, 0, 0, 0, 0, 0])) as i32
}

#[no_mangle]
extern "C" fn dup2(old: i32, new: i32) -> i32 {
    forget(i64::from(new));
    libc_result(traced(33, [old as u64, new as u64, 0, 0, 0, 0])) as i32
}

#[no_mangle]
extern "C" fn dup3(old: i32, new: i32, flags: i32) -> i32 {
    forget(i64::from(new));
    libc_result(traced(292, [old as u64, new as u64, flags as u64, 0, 0, 0])) as i32
}

#[no_mangle]
extern "C" fn dup(old: i32) -> i32 {
    new_fd(32, [old as u64, 0, 0, 0, 0, 0]) as i32
}

// open and openat are variadic in C; on x86-64 a variadic argument travels in the same
// register as a declared one, so the mode is read as the third (fourth) argument. The
// kernel ignores it unless O_CREAT or O_TMPFILE asks for it.
#[no_mangle]
extern "C" fn open(path: *const u8, flags: i32, mode: u32) -> i32 {
    const AT_FDCWD: i64 = -100;
    let a = [
        AT_FDCWD as u64,
        path as u64,
        flags as u64,
        u64::from(mode),
        0,
        0,
    ];
    new_fd(257, a) as i32
}

#[no_mangle]
extern "C" fn open64(path: *const u8, flags: i32, mode: u32) -> i32 {
    open(path, flags, mode)
}

#[no_mangle]
extern "C" fn openat(dir: i32, path: *const u8, flags: i32, mode: u32) -> i32 {
    let a = [dir as u64, path as u64, flags as u64, u64::from(mode), 0, 0];
    new_fd(257, a) as i32
}

#[no_mangle]
extern "C" fn openat64(dir: i32, path: *const u8, flags: i32, mode: u32) -> i32 {
    openat(dir, path, flags, mode)
}

#[no_mangle]
extern "C" fn pipe2(fds: *mut i32, flags: i32) -> i32 {
    let ret = libc_result(traced(293, [fds as u64, flags as u64, 0, 0, 0, 0]));
    if ret == 0 {
        // SAFETY: the kernel just wrote both descriptors there.
        let (r, w) = unsafe { (*fds, *fds.add(1)) };
        forget(i64::from(r));
        forget(i64::from(w));
    }
    ret as i32
}

#[no_mangle]
extern "C" fn pipe(fds: *mut i32) -> i32 {
    pipe2(fds, 0)
}

#[no_mangle]
extern "C" fn socket(domain: i32, kind: i32, protocol: i32) -> i32 {
    new_fd(41, [domain as u64, kind as u64, protocol as u64, 0, 0, 0]) as i32
}

#[no_mangle]
extern "C" fn accept4(fd: i32, addr: *mut c_void, len: *mut u32, flags: i32) -> i32 {
    new_fd(
        288,
        [fd as u64, addr as u64, len as u64, flags as u64, 0, 0],
    ) as i32
}

#[no_mangle]
extern "C" fn accept(fd: i32, addr: *mut c_void, len: *mut u32) -> i32 {
    accept4(fd, addr, len, 0)
}
