//! The umk binary: the freestanding entry point (`_start`), the panic handler, the global
//! allocator, and the memory primitives the compiler expects from a C library.
#![no_std]
#![no_main]

use core::arch::global_asm;

#[global_allocator]
static ALLOCATOR: umk::mm::global::KernelAllocator = umk::mm::global::KernelAllocator;

// The host enters here with argc at the stack pointer; align and call into Rust.
global_asm!(
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call umk_start",
    "ud2",
);

#[no_mangle]
extern "C" fn umk_start(sp: *const usize) -> ! {
    umk::boot::start(sp)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    umk::panic::rust_panic(info)
}

// The compiler lowers copies to these symbols; with no libc, umk supplies them. They use
// `rep movsb`/`rep stosb` so that they cannot be compiled back into calls to themselves.

#[no_mangle]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees [src, src+n) and [dst, dst+n) are valid and disjoint.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _, options(nostack, preserves_flags))
    };
    dst
}

#[no_mangle]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n == 0 {
        return dst;
    }
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize + n) {
        // SAFETY: forward copy is safe when dst does not start inside src.
        unsafe {
            core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _, options(nostack, preserves_flags))
        };
    } else {
        // SAFETY: backward copy (direction flag set, then cleared) for overlapping ranges.
        unsafe {
            core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _, options(nostack));
        }
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees [dst, dst+n) is valid for writes.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8, options(nostack, preserves_flags))
    };
    dst
}

#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller guarantees both ranges are valid for n bytes.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

#[no_mangle]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded with the caller's guarantees.
    unsafe { memcmp(a, b, n) }
}

/// The precompiled `alloc` library was built with unwinding and references this symbol on
/// its cleanup paths; umk aborts on panic, so these paths are never taken.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    umk::host::process::abort()
}

/// Referenced by the same precompiled cleanup paths as `_Unwind_Resume`; never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[no_mangle]
unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller passes a NUL-terminated string.
    while unsafe { core::ptr::read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}
