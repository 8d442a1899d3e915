//! Format version and the trace directory's life cycle (file names).

/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 7;

/// The first format version whose recordings trace every execve after the first program's
/// (`tracee::syscalls::exec_fence`) and hold one that failed as an ordinary
/// `Event::Syscall`; an older recording has no event for a failed execve. It also added
/// `Event::Preempted`.
pub const FAILED_EXECVE_RECORDED: u32 = 7;

/// The oldest format version this build reads. Versions 3 to 7 only added event kinds
/// (3: the task events of a recording with more than one process; 4: `Event::Outside`;
/// 5: `Event::SharedMapping`; 6: `Event::NewThread`, after which `NewTask` is a process;
/// 7: see [`FAILED_EXECVE_RECORDED`]), so an older trace, which holds none of them, reads
/// as it always did.
pub const OLDEST_READABLE_VERSION: u32 = 2;

/// Present while the recorder is writing; holds the version in decimal.
pub const INCOMPLETE_FILE: &str = "incomplete";
/// `INCOMPLETE_FILE` renamed when the trace is closed.
pub const VERSION_FILE: &str = "version";
/// The header file.
pub const HEADER_FILE: &str = "header";
/// The chunked event stream.
pub const EVENTS_FILE: &str = "events";
/// Directory of blobs named by hash.
pub const BLOBS_DIR: &str = "blobs";
/// The end record of a closed trace (see `end`).
pub const END_FILE: &str = "end";

/// Magic at the start of the header file.
pub const HEADER_MAGIC: [u8; 4] = *b"RWHD";
/// Magic at the start of every event chunk.
pub const CHUNK_MAGIC: [u8; 4] = *b"RWEV";

/// Largest header file the reader accepts (a real one is a few KiB: argv, env, auxv,
/// mappings, CPUID records).
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// Most events in one trace, so the reader's memory stays bounded whatever the chunk
/// counts say: 2^24 is 10 hours of umk at 440 events/s, 12 minutes of a program making
/// 22 000 recorded system calls a second. The writer refuses to append past it.
pub const MAX_TRACE_EVENTS: u64 = 1 << 24;

/// Bincode configuration shared by writer and reader. The limit bounds what a corrupt
/// length field can make the reader allocate: no header or event is larger than its file
/// or chunk, both capped at 16 MiB.
pub(crate) fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 16 << 20 }>()
}
