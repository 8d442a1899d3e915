//! The two ways into the kernel (a `syscall` here, which the recording's filter traces,
//! and the entry page's, which it lets through) and the raw memory of the buffer.

use core::arch::asm;

use syscallbuf_abi as abi;

/// A system call from this library's own `syscall` instruction: traced like any other.
pub fn traced(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: a raw system call; the callers pass the arguments the call's contract asks
    // for (pointers the program handed them, or the library's own fixed mappings). The
    // kernel clobbers only rcx and r11, declared here.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A system call from the entry page, which the recording's filter runs without a stop.
/// Only called once `init` has mapped the page (`READY`).
pub fn untraced(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: as `traced`; the call lands on the entry page's `syscall; ret`, mapped
    // executable by `init` before READY was set, which returns here with the stack as
    // it was. Without `nostack` the compiler keeps the red zone clear for the `call`.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) abi::ENTRY_PAGE,
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
        );
    }
    ret
}

/// Writes `syscall; ret` into the entry page, while it is still writable.
pub fn install_code() {
    let page = abi::ENTRY_PAGE as *mut u8;
    for (i, b) in abi::ENTRY_CODE.iter().enumerate() {
        // SAFETY: `init` mapped the page read-write just before; the offsets are within it.
        unsafe { page.add(i).write_volatile(*b) };
    }
}

/// The buffer header's word at `offset` (an `abi::header` constant).
pub fn word(offset: u64) -> u64 {
    // SAFETY: the header lies at the start of the buffer `init` mapped; the offsets are
    // aligned words inside it. Volatile: the recorder reads and writes it from outside.
    unsafe { ((abi::BUFFER + offset) as *const u64).read_volatile() }
}

/// Sets the buffer header's word at `offset`.
pub fn set_word(offset: u64, value: u64) {
    // SAFETY: as `word`.
    unsafe { ((abi::BUFFER + offset) as *mut u64).write_volatile(value) }
}

/// Copies `len` bytes from `from` (memory the program handed a call) into the buffer at
/// byte `at` of the records area.
///
/// # Safety
/// `from..from + len` must be readable (the kernel just read or wrote it for the call)
/// and `at + len` within the records area.
pub unsafe fn copy_in(at: u64, from: u64, len: u64) {
    let to = (abi::BUFFER + abi::header::SIZE + at) as *mut u8;
    // SAFETY: per the contract; the two never overlap (the buffer is the library's own
    // mapping, which it never passes to a call).
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, to, len as usize) };
}

/// Stores a word into the records area at byte `at` (8-aligned, inside it).
pub fn put(at: u64, value: u64) {
    // SAFETY: callers reserve room for the record before writing it word by word, and
    // every record offset is a multiple of 8.
    unsafe {
        ((abi::BUFFER + abi::header::SIZE + at) as *mut u64).write_volatile(value);
    }
}
