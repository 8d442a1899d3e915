//! The syscall buffer's in-process half (see `syscallbuf-abi` for the protocol):
//! `rewind record` preloads this library into dynamically linked programs. It interposes
//! the C library's `read`, `write`, `pread`, `pwrite`, `lseek`, `clock_gettime`,
//! `gettimeofday`, `time`, `getpid`, `getppid` and `getuid` (and watches `mmap`), makes each call from the
//! untraced entry page when the call cannot block, and logs it to the buffer the
//! recorder drains at its next stop. A call it does not buffer is made as an ordinary
//! (traced) system call, so the program sees the C library's semantics either way.
//!
//! Only calls that return by themselves are buffered: the recorder runs one task at a
//! time and could not switch away from a call it never sees. Reads and writes are
//! buffered on regular files and on /dev/null, /dev/zero, /dev/full, /dev/random and
//! /dev/urandom, which the library learns with an `fstat` that is itself buffered (so
//! replay, serving it from the trace, takes the same decision).
//!
//! Everything here runs inside the recorded program, before and beside its own code:
//! no allocation, no locks, no Rust runtime beyond `core`.
#![no_std]
// Built as a test harness (`clippy --all-targets`), its `write` and `read` would replace
// the harness's own: there is nothing to test in-process, so that build is empty.
#![cfg(not(test))]

mod calls;
mod entry;
mod env;

use core::sync::atomic::{AtomicBool, Ordering};

use syscallbuf_abi as abi;

/// Set once the entry page and buffer are mapped (per process: a fork inherits it, an
/// exec starts over).
static READY: AtomicBool = AtomicBool::new(false);

/// Maps the entry page and the buffer at their fixed addresses. If either address is
/// taken the library stays off and every call takes the traced path.
extern "C" fn init() {
    env::hide();
    const PROT_RW: u64 = 0x1 | 0x2;
    const PROT_RX: u64 = 0x1 | 0x4;
    const MAP_PRIVATE_ANON_NOREPLACE: u64 = 0x02 | 0x20 | 0x10_0000;
    let map = |addr: u64, len: u64| {
        entry::traced(
            9,
            [addr, len, PROT_RW, MAP_PRIVATE_ANON_NOREPLACE, u64::MAX, 0],
        ) as u64
            == addr
    };
    if !map(abi::ENTRY_PAGE, 0x1000) {
        return;
    }
    if !map(abi::BUFFER, abi::BUFFER_SIZE) {
        entry::traced(11, [abi::ENTRY_PAGE, 0x1000, 0, 0, 0, 0]);
        return;
    }
    entry::install_code();
    if entry::traced(10, [abi::ENTRY_PAGE, 0x1000, PROT_RX, 0, 0, 0]) != 0 {
        return;
    }
    entry::set_word(abi::header::MAGIC, abi::MAGIC);
    READY.store(true, Ordering::Relaxed);
}

/// Runs `init` when the dynamic loader loads the library, before the program's code.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

/// Nothing here panics (no indexing, no arithmetic that overflows); if something did,
/// the program dies at once rather than run on with a half-written record.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    entry::traced(231, [127, 0, 0, 0, 0, 0]);
    loop {}
}

/// The precompiled `core` this library links was built to unwind, and some of its code
/// that lands here names the unwinder's personality routine. Nothing here unwinds (the
/// library is built with panic=abort and `panic` exits), so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}
