//! ubd: UML's block driver. Disks are host files (optionally under a COW file). Requests
//! are slab objects passed to the disk "controller" through a host pipe, as UML's driver
//! hands them to its I/O thread; the controller runs in the timer interrupt (and in the
//! idle loop), performs the host I/O and completes each request through its `end_io`.
//!
//! Two locks, as the seed's 14 Oct 2002 fix has them: `ubd_lock` (a mutex) guards the
//! device table for configuration and hot-plug; `ubd_io_lock` (a spinlock) guards the
//! I/O side that the interrupt uses, and is always taken with interrupts off
//! (`lock_irqsave`) because the disk interrupt takes it too.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::cow::{CowDisk, CowError, CowHeader, Disk, RawDisk};
use super::dev::{check_request, BlockDevice, BlockError, SECTOR_SIZE};
use super::hostfile::HostFile;
use crate::exec_point::preempt_point;
use crate::host::file::{self, Fd};
use crate::host::Errno;
use crate::mm::slab::{self, CacheId};
use crate::sched::task::State;
use crate::sched::wait::WaitQueue;
use crate::sync::global::Global;
use crate::sync::{Mutex, SpinLock};

pub const MAX_UBD: usize = crate::boot::args::MAX_UBD;

crate::lock_class!(UBD_LOCK_CLASS, "ubd_lock");
crate::lock_class!(UBD_IO_LOCK_CLASS, "ubd_io_lock");

/// Per-device configuration, guarded by `ubd_lock`.
#[derive(Clone, Copy, Default)]
pub struct DevInfo {
    pub present: bool,
    /// Mounted or otherwise in use: cannot be removed.
    pub busy: bool,
    pub cow: bool,
}

pub static UBD_LOCK: Mutex<[DevInfo; MAX_UBD]> = Mutex::new(
    &UBD_LOCK_CLASS,
    [DevInfo {
        present: false,
        busy: false,
        cow: false,
    }; MAX_UBD],
);

struct IoState {
    disks: [Option<Disk<HostFile>>; MAX_UBD],
    in_flight: usize,
}

static UBD_IO: SpinLock<IoState> = SpinLock::new(
    &UBD_IO_LOCK_CLASS,
    IoState {
        disks: [const { None }; MAX_UBD],
        in_flight: 0,
    },
);

/// The pipe to the controller: (read end, write end).
static PIPE: Global<Option<(Fd, Fd)>> = Global::new("ubd pipe", None);
static IO_DONE: WaitQueue = WaitQueue::new_io("ubd io");
static REQ_CACHE: Global<Option<CacheId>> = Global::new("ubd request cache", None);

/// Bug-scenario knobs (bugs/): each restores a historical mistake of UML's driver.
pub static QUEUE_LOCK_IS_DEVICE_LOCK: AtomicBool = AtomicBool::new(false);
pub static IGNORE_SUBMIT_ERRORS: AtomicBool = AtomicBool::new(false);
/// Requests the controller completes per interrupt (a slow disk); 0 = all pending.
pub static CONTROLLER_BATCH: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    Read = 0,
    Write = 1,
}

/// A block request. Lives in the `ubd_request` slab cache; freed by whoever its `end_io`
/// says, which is what the `uaf` scenario gets wrong.
#[repr(C)]
pub struct Request {
    pub magic: u32,
    pub op: Op,
    pub dev: u32,
    pub status: i32,
    pub sector: u64,
    pub buf: *mut u8,
    pub len: usize,
    pub done: bool,
    pub end_io: fn(*mut Request),
    /// Free for the submitter's use (the scenarios keep their bookkeeping here).
    pub private: usize,
}

pub const REQUEST_MAGIC: u32 = 0x5542_4431; // "UBD1"

#[derive(Debug)]
pub enum UbdError {
    NoSuchDevice(usize),
    Exists(usize),
    Busy(usize),
    Open { path: String, errno: Errno },
    Cow { path: String, err: CowError },
    NoMemory,
}

impl core::fmt::Display for UbdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UbdError::NoSuchDevice(n) => write!(f, "ubd{n}: no such device"),
            UbdError::Exists(n) => write!(f, "ubd{n}: device already configured"),
            UbdError::Busy(n) => write!(f, "ubd{n}: device is busy"),
            UbdError::Open { path, errno } => write!(f, "cannot open '{path}': {errno}"),
            UbdError::Cow { path, err } => write!(f, "'{path}': {err}"),
            UbdError::NoMemory => write!(f, "out of memory"),
        }
    }
}

/// Creates the request cache and the controller pipe.
pub fn init() -> Result<(), Errno> {
    REQ_CACHE.with(|c| *c = Some(slab::create("ubd_request", core::mem::size_of::<Request>())));
    let (r, w) = file::pipe(0)?;
    // The read end is drained without blocking; the write end blocks when the pipe is
    // full, so that a timer signal can interrupt it (the `lostwake` story).
    let fl = file::fcntl(r, file::F_GETFL, 0)?;
    file::fcntl(r, file::F_SETFL, fl | file::O_NONBLOCK)?;
    let _ = file::fcntl(w, file::F_SETPIPE_SZ, 4096);
    PIPE.with(|p| *p = Some((r, w)));
    Ok(())
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Opens the host files of a `ubdN=` spec: `IMG`, `IMG,COW` (COW created if missing),
/// or a lone COW file naming its backing file.
pub fn open_disk(image: &[u8], cow: Option<&[u8]>) -> Result<Disk<HostFile>, UbdError> {
    let open = |p: &[u8], w: bool| {
        HostFile::open(p, w).map_err(|errno| UbdError::Open {
            path: lossy(p),
            errno,
        })
    };
    fn cow_err(p: &[u8]) -> impl Fn(CowError) -> UbdError + '_ {
        move |err| UbdError::Cow {
            path: lossy(p),
            err,
        }
    }
    match cow {
        Some(cow_path) => {
            let backing = open(image, false)?;
            match HostFile::open(cow_path, true) {
                Ok(c) => CowDisk::open(c, backing)
                    .map(Disk::Cow)
                    .map_err(cow_err(cow_path)),
                Err(Errno::ENOENT) => {
                    let c = HostFile::create(cow_path).map_err(|errno| UbdError::Open {
                        path: lossy(cow_path),
                        errno,
                    })?;
                    CowDisk::create(c, backing, image)
                        .map(Disk::Cow)
                        .map_err(cow_err(cow_path))
                }
                Err(errno) => Err(UbdError::Open {
                    path: lossy(cow_path),
                    errno,
                }),
            }
        }
        None => {
            let mut f = open(image, true)?;
            let mut magic = [0u8; 4];
            use super::backing::BackingFile;
            if f.len().unwrap_or(0) >= 4
                && f.read_at(0, &mut magic).is_ok()
                && u32::from_be_bytes(magic) == super::cow::COW_MAGIC
            {
                let header = CowHeader::read(&mut f).map_err(cow_err(image))?;
                let backing = open(&header.backing_file, false)?;
                CowDisk::open(f, backing)
                    .map(Disk::Cow)
                    .map_err(cow_err(image))
            } else {
                RawDisk::open(f).map(Disk::Raw).map_err(cow_err(image))
            }
        }
    }
}

/// Adds a device at boot (before the scheduler runs) or from `config`.
fn install(n: usize, disk: Disk<HostFile>, devs: &mut [DevInfo; MAX_UBD]) {
    let cow = matches!(disk, Disk::Cow(_));
    devs[n] = DevInfo {
        present: true,
        busy: false,
        cow,
    };
    UBD_IO.lock_irqsave().disks[n] = Some(disk);
}

/// Registers a device opened at boot.
pub fn add_boot_device(n: usize, disk: Disk<HostFile>) {
    let mut devs = UBD_LOCK.lock();
    install(n, disk, &mut devs);
}

pub fn sectors(n: usize) -> Option<u64> {
    UBD_IO
        .lock_irqsave()
        .disks
        .get(n)?
        .as_ref()
        .map(|d| d.sectors())
}

pub fn set_busy(n: usize, busy: bool) {
    UBD_LOCK.lock()[n].busy = busy;
}

/// Hot-plugs `ubdN` (mconsole `config ubdN=IMG[,COW]`): holds `ubd_lock` across the whole
/// operation, including reading the partition table, as UML's ubd_config did.
pub fn config(n: usize, image: &[u8], cow: Option<&[u8]>) -> Result<String, UbdError> {
    if n >= MAX_UBD {
        return Err(UbdError::NoSuchDevice(n));
    }
    let mut devs = UBD_LOCK.lock();
    if devs[n].present {
        return Err(UbdError::Exists(n));
    }
    let disk = open_disk(image, cow)?;
    install(n, disk, &mut devs);
    let report = read_partition_table(n);
    crate::printk!("{}", report);
    Ok(report)
}

/// Unplugs `ubdN` (mconsole `remove ubdN`).
pub fn remove(n: usize) -> Result<(), UbdError> {
    if n >= MAX_UBD {
        return Err(UbdError::NoSuchDevice(n));
    }
    let mut devs = UBD_LOCK.lock();
    if !devs[n].present {
        return Err(UbdError::NoSuchDevice(n));
    }
    if devs[n].busy {
        return Err(UbdError::Busy(n));
    }
    devs[n] = DevInfo::default();
    let disk = UBD_IO.lock_irqsave().disks[n].take();
    drop(disk);
    crate::printk!("ubd{}: removed", n);
    Ok(())
}

/// Reads sector 0 and describes it, as add_disk's partition scan does.
fn read_partition_table(n: usize) -> String {
    let mut sector = [0u8; SECTOR_SIZE];
    match do_io(n, Op::Read, 0, &mut sector) {
        Err(e) => alloc::format!("ubd{n}: partition table read failed: {e}"),
        Ok(()) if sector[510] == 0x55 && sector[511] == 0xaa => {
            let mut s = alloc::format!(" ubd{n}:");
            for p in 0..4 {
                let kind = sector[446 + p * 16 + 4];
                if kind != 0 {
                    s.push_str(&alloc::format!(" ubd{n}{}", p + 1));
                }
            }
            s
        }
        Ok(()) => alloc::format!(
            " ubd{n}: unknown partition table ({} sectors)",
            sectors(n).unwrap_or(0)
        ),
    }
}

fn req_cache() -> CacheId {
    REQ_CACHE.with(|c| c.expect("ubd not initialised"))
}

/// Allocates a request from the `ubd_request` cache.
pub fn alloc_request(
    dev: usize,
    op: Op,
    sector: u64,
    buf: *mut u8,
    len: usize,
    end_io: fn(*mut Request),
) -> Option<*mut Request> {
    let req = slab::alloc(req_cache())? as *mut Request;
    // SAFETY: a fresh slab object of the right size and alignment, owned by the caller.
    unsafe {
        req.write(Request {
            magic: REQUEST_MAGIC,
            op,
            dev: dev as u32,
            status: 0,
            sector,
            buf,
            len,
            done: false,
            end_io,
            private: 0,
        });
    }
    Some(req)
}

/// Returns a request to its cache.
pub fn free_request(req: *mut Request) {
    slab::free(req_cache(), req as usize);
}

/// Completion for synchronous I/O: mark done and wake the waiters.
fn end_sync(req: *mut Request) {
    // SAFETY: the submitter keeps the request alive until it sees `done`.
    unsafe { (*req).done = true };
    IO_DONE.wake_all();
}

/// Submits `req` to the controller.
// Requests travel as raw pointers, as they do through UML's pipe; every one comes from
// `alloc_request`.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn submit(req: *mut Request) -> Result<(), BlockError> {
    preempt_point();
    let busy = UBD_IO.lock_irqsave().in_flight > 0;
    if busy && QUEUE_LOCK_IS_DEVICE_LOCK.load(Ordering::Relaxed) {
        // Before the ubd_io_lock split the queue was restarted under the device lock.
        let _restart = UBD_LOCK.lock();
    }
    UBD_IO.lock_irqsave().in_flight += 1;
    let w = PIPE
        .with(|p| p.map(|(_, w)| w))
        .expect("ubd not initialised");
    let word = (req as u64).to_ne_bytes();
    loop {
        match file::write(w, &word) {
            Ok(8) => return Ok(()),
            Ok(_) | Err(Errno::EINTR) | Err(Errno::EAGAIN)
                if IGNORE_SUBMIT_ERRORS.load(Ordering::Relaxed) =>
            {
                // The historical bug: the return value is not checked, so the request
                // never reaches the controller and its completion never comes.
                return Ok(());
            }
            Ok(_) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => {
                // The pipe is full: drain it ourselves, then retry.
                run_controller(0);
            }
            Err(errno) => {
                UBD_IO.lock_irqsave().in_flight -= 1;
                // SAFETY: the request was not handed to the controller.
                let sector = unsafe { (*req).sector };
                return Err(BlockError::Io { sector, errno });
            }
        }
    }
}

/// Synchronous I/O on device `n`.
pub fn do_io(n: usize, op: Op, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
    let total = sectors(n).ok_or(BlockError::Io {
        sector,
        errno: Errno(6),
    })?; // ENXIO
    check_request(sector, buf.len(), total)?;
    let req = alloc_request(n, op, sector, buf.as_mut_ptr(), buf.len(), end_sync).ok_or(
        BlockError::Io {
            sector,
            errno: Errno(12),
        },
    )?;
    submit(req)?;
    // SAFETY: the request stays allocated until we free it below; the controller only
    // writes `status` and `done`.
    IO_DONE.wait_until(State::Uninterruptible, || unsafe {
        core::ptr::read_volatile(&(*req).done)
    });
    // SAFETY: as above.
    let status = unsafe { (*req).status };
    free_request(req);
    if status != 0 {
        return Err(BlockError::Io {
            sector,
            errno: Errno(-status),
        });
    }
    Ok(())
}

/// Whether requests are waiting for the controller.
pub fn has_pending() -> bool {
    UBD_IO.lock_irqsave().in_flight > 0
}

/// The controller: takes up to `batch` requests (0 = all) from the pipe, performs them on
/// the host and completes them.
pub fn run_controller(batch: usize) {
    let Some((r, _)) = PIPE.with(|p| *p) else {
        return;
    };
    let mut done = 0;
    loop {
        let want = if batch == 0 {
            64
        } else {
            (batch - done).min(64)
        };
        if want == 0 {
            break;
        }
        let mut words = [0u8; 64 * 8];
        let n = match file::read(r, &mut words[..want * 8]) {
            Ok(n) if n > 0 => n / 8,
            _ => break,
        };
        for k in 0..n {
            let mut w = [0u8; 8];
            w.copy_from_slice(&words[k * 8..k * 8 + 8]);
            let req = u64::from_ne_bytes(w) as *mut Request;
            perform(req);
            done += 1;
        }
    }
}

fn perform(req: *mut Request) {
    // SAFETY: the pipe only carries pointers to live requests; the submitter keeps them
    // alive until end_io runs.
    let r = unsafe { &mut *req };
    let result = {
        let mut io = UBD_IO.lock_irqsave();
        io.in_flight = io.in_flight.saturating_sub(1);
        match io.disks.get_mut(r.dev as usize).and_then(|d| d.as_mut()) {
            None => Err(BlockError::Io {
                sector: r.sector,
                errno: Errno(6),
            }),
            Some(disk) => {
                // SAFETY: `buf` and `len` describe the submitter's buffer, which outlives
                // the request.
                let buf = unsafe { core::slice::from_raw_parts_mut(r.buf, r.len) };
                match r.op {
                    Op::Read => disk.read_sectors(r.sector, buf),
                    Op::Write => disk.write_sectors(r.sector, buf),
                }
            }
        }
    };
    r.status = match result {
        Ok(()) => 0,
        Err(BlockError::Io { errno, .. }) => -errno.0,
        Err(_) => -5,
    };
    (r.end_io)(req);
}

/// The disk's interrupt, raised with the timer.
pub fn timer_irq() {
    if has_pending() {
        run_controller(CONTROLLER_BATCH.load(Ordering::Relaxed));
    }
}

/// A `BlockDevice` over `ubdN`, for the filesystem.
pub struct UbdBlock {
    pub dev: usize,
    sectors: u64,
}

impl UbdBlock {
    pub fn new(dev: usize) -> Option<UbdBlock> {
        Some(UbdBlock {
            dev,
            sectors: sectors(dev)?,
        })
    }
}

impl BlockDevice for UbdBlock {
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        do_io(self.dev, Op::Read, sector, buf)
    }

    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        // The controller only reads from a write request's buffer.
        let mut copy = alloc::vec::Vec::from(buf);
        do_io(self.dev, Op::Write, sector, &mut copy)
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }
}
