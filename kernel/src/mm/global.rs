//! The Rust global allocator for the kernel binary: `Box`, `Vec` and friends come from
//! kmalloc, so every Rust allocation is visible to the slab statistics and the probes.

use core::alloc::{GlobalAlloc, Layout};

pub struct KernelAllocator;

// SAFETY: kmalloc returns unique, suitably aligned blocks of at least `size` bytes (or
// null), and kfree takes back exactly what kmalloc handed out.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        super::kmalloc::kmalloc(layout.size(), layout.align()).unwrap_or(0) as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        super::kmalloc::kfree(ptr as usize)
    }
}
