//! kmalloc: power-of-two slab caches from 16 bytes to 2 KiB, whole pages above that.

use core::sync::atomic::{AtomicBool, Ordering};

use super::page::{self, PAGE_SIZE, PG_HEAD, PG_SLAB};
use super::slab::{self, CacheId};

const SIZES: [usize; 8] = [16, 32, 64, 128, 256, 512, 1024, 2048];
const NAMES: [&str; 8] = [
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-128",
    "kmalloc-256",
    "kmalloc-512",
    "kmalloc-1024",
    "kmalloc-2048",
];
/// Cache index reported to `umk_alloc`/`umk_free` for whole-page allocations.
pub const LARGE_CACHE: usize = 0xff;

static READY: AtomicBool = AtomicBool::new(false);

/// Creates the kmalloc caches; they take cache indices 0..8 in order.
pub fn init() {
    for name_size in NAMES.iter().zip(SIZES) {
        slab::create(name_size.0, name_size.1);
    }
    READY.store(true, Ordering::Relaxed);
}

/// Allocates `size` bytes aligned to `align` (up to a page).
pub fn kmalloc(size: usize, align: usize) -> Option<usize> {
    if !READY.load(Ordering::Relaxed) || align > PAGE_SIZE {
        return None;
    }
    if align <= 16 {
        if let Some(i) = SIZES.iter().position(|&s| s >= size) {
            return slab::alloc(CacheId(i as u8));
        }
    }
    let pages = size.div_ceil(PAGE_SIZE).max(1);
    let ptr = page::alloc_pages(pages)?;
    slab::umk_alloc(LARGE_CACHE, ptr, size);
    Some(ptr)
}

/// Frees what `kmalloc` returned.
pub fn kfree(ptr: usize) {
    match page::describe(ptr) {
        Some((PG_SLAB, cache)) => slab::free(CacheId(cache as u8), ptr),
        Some((PG_HEAD, pages)) => {
            page::free_pages(ptr, pages as usize);
            slab::umk_free(LARGE_CACHE, ptr, pages as usize * PAGE_SIZE);
        }
        other => panic!("BUG: kfree of 0x{ptr:x}, which kmalloc did not hand out ({other:?})"),
    }
}
