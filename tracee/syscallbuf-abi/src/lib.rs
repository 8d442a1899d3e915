//! The syscall buffer's ABI, shared by the preload library (`rewind-preload`, which
//! writes it inside the recorded program) and the recorder (which drains it): fixed
//! addresses, the buffer header and the record layout. Nothing else lives here, so both
//! sides read one definition.
//!
//! # How it works
//!
//! The library maps one page of code at [`ENTRY_PAGE`] holding `syscall; ret`. The
//! recording's seccomp filter lets a call whose instruction pointer is [`UNTRACED_RIP`]
//! run without a stop; every other call from anywhere is traced as before. The library
//! performs a call there, then appends a record (number, arguments, result and the
//! memory the call read or wrote) to the buffer at [`BUFFER`]. At its next ptrace stop
//! the recorder reads the records it has not seen, turns each into an ordinary syscall
//! event, and notes how far it read in the header's `drained` word, which the library
//! never reads. When a record would not fit, the library makes the traced call
//! [`FLUSH_NR`] (the recorder drains there) and starts over at the buffer's beginning.
//!
//! At replay the filter has no exception: every call from the entry page stops, the
//! replayer serves it from its event as any recorded call, and the library, seeing the
//! same results, takes the same paths and fills its buffer the same way.
#![no_std]
#![forbid(unsafe_code)]

/// Where the library maps the page holding its untraced `syscall; ret`.
pub const ENTRY_PAGE: u64 = 0x6000_0000_0000;
/// The instruction pointer seccomp sees for a call made from the entry page: the
/// address after its `syscall` instruction.
pub const UNTRACED_RIP: u64 = ENTRY_PAGE + 2;
/// The code at the entry page: `syscall; ret`.
pub const ENTRY_CODE: [u8; 3] = [0x0f, 0x05, 0xc3];
/// Where the buffer is mapped (header, then records).
pub const BUFFER: u64 = ENTRY_PAGE + 0x1000;
/// The buffer's size, header included.
pub const BUFFER_SIZE: u64 = 1 << 20;
/// The first word of a buffer the library set up.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RWSYSBUF");
/// The call the library makes, traced, when its buffer is full: no kernel has it (it
/// fails with ENOSYS), so made outside a recording it does nothing.
pub const FLUSH_NR: u64 = 0x5257;
/// The largest transfer the library buffers; bigger ones take the traced path.
pub const MAX_TRANSFER: u64 = 64 * 1024;

/// Offsets of the header's words, from [`BUFFER`].
pub mod header {
    /// [`super::MAGIC`].
    pub const MAGIC: u64 = 0;
    /// Bytes of records after the header, as the library wrote them.
    pub const USED: u64 = 8;
    /// Bytes of records the recorder has turned into events (the library only zeroes it).
    pub const DRAINED: u64 = 16;
    /// Nonzero while the library is inside a buffered call: a signal handler's call then
    /// takes the traced path.
    pub const BUSY: u64 = 24;
    /// The header's size; records start here.
    pub const SIZE: u64 = 64;
}

/// A record's fixed part: `size: u32, chunks: u32, nr, args[6], ret` (all little-endian),
/// then `chunks` memory chunks, each `addr: u64, len: u64` and `len` bytes padded to 8.
pub const RECORD_HEAD: u64 = 8 + 8 + 6 * 8 + 8;
/// A chunk's fixed part.
pub const CHUNK_HEAD: u64 = 16;

/// `n` rounded up to a multiple of 8, as records and chunks are laid out.
pub const fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

/// The calls the library may buffer. The recorder refuses a record of any other: only
/// these were checked to write nothing but what their record carries, and never block.
pub const BUFFERABLE: [u64; 12] = [
    0,   // read
    1,   // write
    5,   // fstat
    8,   // lseek
    17,  // pread64
    18,  // pwrite64
    39,  // getpid
    96,  // gettimeofday
    102, // getuid
    110, // getppid
    201, // time
    228, // clock_gettime
];
