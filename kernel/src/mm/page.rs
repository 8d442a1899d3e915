//! The page allocator. Physical memory is an array of 4 KiB pages; a descriptor word per
//! page (kept at the start of memory, as `mem_map` is) says whether it is free, reserved,
//! part of a slab, or part of a multi-page allocation. Allocation is first-fit from a
//! rotating hint.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::global::Global;

pub const PAGE_SIZE: usize = 4096;

/// Kinds of page, in the low byte of a descriptor; the rest holds kind-specific data.
pub const PG_FREE: u32 = 0;
pub const PG_RESERVED: u32 = 1;
/// First page of a multi-page allocation; data = number of pages.
pub const PG_HEAD: u32 = 2;
pub const PG_TAIL: u32 = 3;
/// Page of a slab; data = cache index.
pub const PG_SLAB: u32 = 4;

struct PageMap {
    base: usize,
    pages: usize,
    /// Descriptor array (lives in the first pages of physical memory).
    descs: usize,
    hint: usize,
    free: usize,
}

static MAP: Global<PageMap> = Global::new(
    "page map",
    PageMap {
        base: 0,
        pages: 0,
        descs: 0,
        hint: 0,
        free: 0,
    },
);
static TOTAL_PAGES: AtomicUsize = AtomicUsize::new(0);

impl PageMap {
    fn desc(&self, i: usize) -> u32 {
        // SAFETY: i < pages and the descriptor array was laid out by `init`.
        unsafe { ((self.descs + i * 4) as *const u32).read() }
    }

    fn set(&mut self, i: usize, v: u32) {
        // SAFETY: as in `desc`; the map is borrowed mutably.
        unsafe { ((self.descs + i * 4) as *mut u32).write(v) }
    }
}

/// Takes over `[base, base+len)` as physical memory.
pub fn init(base: usize, len: usize) {
    MAP.with(|m| {
        m.base = base;
        m.pages = len / PAGE_SIZE;
        m.descs = base;
        let desc_pages = (m.pages * 4).div_ceil(PAGE_SIZE);
        // The host mapping is zeroed: every descriptor already reads PG_FREE.
        for i in 0..desc_pages {
            m.set(i, PG_RESERVED);
        }
        m.hint = desc_pages;
        m.free = m.pages - desc_pages;
    });
    TOTAL_PAGES.store(len / PAGE_SIZE, Ordering::Relaxed);
}

/// Allocates `n` contiguous pages; returns their address.
pub fn alloc_pages(n: usize) -> Option<usize> {
    alloc_pages_as(n, PG_HEAD, n as u32)
}

/// Allocates `n` contiguous pages tagged `kind` with `data` on the first page.
pub(crate) fn alloc_pages_as(n: usize, kind: u32, data: u32) -> Option<usize> {
    MAP.with(|m| {
        if n == 0 || n > m.free {
            return None;
        }
        let mut start = m.hint;
        for _pass in 0..2 {
            let mut run = 0;
            let mut i = start;
            while i < m.pages {
                if m.desc(i) == PG_FREE {
                    run += 1;
                    if run == n {
                        let first = i + 1 - n;
                        m.set(first, kind | (data << 8));
                        for p in first + 1..=i {
                            m.set(
                                p,
                                if kind == PG_SLAB {
                                    kind | (data << 8)
                                } else {
                                    PG_TAIL
                                },
                            );
                        }
                        m.free -= n;
                        m.hint = i + 1;
                        return Some(m.base + first * PAGE_SIZE);
                    }
                } else {
                    run = 0;
                }
                i += 1;
            }
            start = 0;
        }
        None
    })
}

/// Frees `n` pages at `addr`.
pub fn free_pages(addr: usize, n: usize) {
    MAP.with(|m| {
        let first = (addr - m.base) / PAGE_SIZE;
        for p in first..first + n {
            m.set(p, PG_FREE);
        }
        m.free += n;
    });
}

/// Descriptor (kind, data) of the page holding `addr`, if it is physical memory.
pub fn describe(addr: usize) -> Option<(u32, u32)> {
    MAP.with(|m| {
        if addr < m.base || addr >= m.base + m.pages * PAGE_SIZE {
            return None;
        }
        let d = m.desc((addr - m.base) / PAGE_SIZE);
        Some((d & 0xff, d >> 8))
    })
}

/// (total, free) pages.
pub fn stats() -> (usize, usize) {
    MAP.with(|m| (m.pages, m.free))
}
