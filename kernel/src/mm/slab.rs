//! Named slab caches (`kmem_cache`). Each object slot is followed by an 8-byte trailer:
//! the free-list link while the object is free, an allocation mark while it is in use
//! (so a double free is caught). Freed objects are filled with POISON_FREE, and the poison
//! is checked when the object is handed out again, catching writes after free as SLUB's
//! poisoning does.
//!
//! The cache table is exported as `UMK_SLAB_CACHES` (layout in kernel/PROBES.md) so that
//! the analyzer can name the cache of an address; `umk_alloc` / `umk_free` are its probes.

use super::page::{self, PAGE_SIZE, PG_SLAB};
use super::POISON_FREE;
use crate::sync::global::Global;

pub const MAX_CACHES: usize = 32;
const CACHE_NAME_LEN: usize = 24;
const ALLOC_MARK: u64 = 0xa5a5_a5a5_5a5a_5a5a;
const MIN_OBJS_PER_SLAB: usize = 8;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct CacheInfo {
    pub name: [u8; CACHE_NAME_LEN],
    pub obj_size: u32,
    pub stride: u32,
    pub active: u32,
    pub total: u32,
    pub slabs: u32,
    pub pages_per_slab: u32,
    pub free_head: u64,
}

impl CacheInfo {
    pub const EMPTY: CacheInfo = CacheInfo {
        name: [0; CACHE_NAME_LEN],
        obj_size: 0,
        stride: 0,
        active: 0,
        total: 0,
        slabs: 0,
        pages_per_slab: 0,
        free_head: 0,
    };

    pub fn name(&self) -> &str {
        let n = self
            .name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(CACHE_NAME_LEN);
        core::str::from_utf8(&self.name[..n]).unwrap_or("?")
    }
}

#[no_mangle]
pub static UMK_SLAB_CACHES: Global<[CacheInfo; MAX_CACHES]> =
    Global::new("slab caches", [CacheInfo::EMPTY; MAX_CACHES]);

/// A handle to a slab cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheId(pub u8);

/// The probe point for every allocation (kernel/PROBES.md).
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_alloc(cache: usize, ptr: usize, size: usize) {
    // The tag keeps the linker from folding identical probes into one address.
    core::hint::black_box((cache, ptr, size, 1u32));
}

/// The probe point for every free (kernel/PROBES.md).
#[inline(never)]
#[no_mangle]
pub extern "C" fn umk_free(cache: usize, ptr: usize, size: usize) {
    // The tag keeps the linker from folding identical probes into one address.
    core::hint::black_box((cache, ptr, size, 2u32));
}

/// Creates a cache of `size`-byte objects, or returns the existing one of that name.
pub fn create(name: &'static str, size: usize) -> CacheId {
    let id = UMK_SLAB_CACHES.with(|caches| {
        if let Some(i) = caches
            .iter()
            .position(|c| c.stride != 0 && c.name() == name)
        {
            return CacheId(i as u8);
        }
        let i = caches
            .iter()
            .position(|c| c.stride == 0)
            .expect("slab cache table full");
        let c = &mut caches[i];
        *c = CacheInfo::EMPTY;
        let n = name.len().min(CACHE_NAME_LEN - 1);
        c.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        c.obj_size = size as u32;
        c.stride = ((size + 8 + 15) & !15) as u32;
        c.pages_per_slab = (c.stride as usize * MIN_OBJS_PER_SLAB)
            .div_ceil(PAGE_SIZE)
            .max(1) as u32;
        CacheId(i as u8)
    });
    NAMES.with(|n| n[id.0 as usize] = name);
    id
}

fn trailer(c: &CacheInfo, obj: usize) -> *mut u64 {
    (obj + c.obj_size as usize) as *mut u64
}

/// Adds one slab's objects to the cache's free list.
fn grow(id: CacheId, c: &mut CacheInfo) -> bool {
    let pages = c.pages_per_slab as usize;
    let Some(base) = page::alloc_pages_as(pages, PG_SLAB, id.0 as u32) else {
        return false;
    };
    let count = pages * PAGE_SIZE / c.stride as usize;
    for k in (0..count).rev() {
        let obj = base + k * c.stride as usize;
        // SAFETY: the slab pages were just allocated for this cache; obj..obj+stride is
        // inside them.
        unsafe {
            core::ptr::write_bytes(obj as *mut u8, POISON_FREE, c.obj_size as usize);
            trailer(c, obj).write(c.free_head);
        }
        c.free_head = obj as u64;
    }
    c.total += count as u32;
    c.slabs += 1;
    true
}

/// Allocates one object; `None` when memory is exhausted.
pub fn alloc(id: CacheId) -> Option<usize> {
    let (obj, size) = UMK_SLAB_CACHES.with(|caches| {
        let c = &mut caches[id.0 as usize];
        if c.free_head == 0 && !grow(id, c) {
            return None;
        }
        let obj = c.free_head as usize;
        // SAFETY: free-list entries are objects of this cache's slabs.
        unsafe {
            c.free_head = trailer(c, obj).read();
            trailer(c, obj).write(ALLOC_MARK);
        }
        c.active += 1;
        Some((obj, c.obj_size as usize))
    })?;
    // SAFETY: the object is ours now, `size` bytes long.
    let bytes = unsafe { core::slice::from_raw_parts(obj as *const u8, size) };
    if let Some(off) = bytes.iter().position(|&b| b != POISON_FREE) {
        let name = cache_name(id);
        panic!("BUG {name}: Poison overwritten: object 0x{obj:x} was written at offset {off} after it was freed (byte 0x{:02x})", bytes[off]);
    }
    umk_alloc(id.0 as usize, obj, size);
    Some(obj)
}

/// Frees `obj`, poisoning it.
pub fn free(id: CacheId, obj: usize) {
    let size = UMK_SLAB_CACHES.with(|caches| {
        let c = &mut caches[id.0 as usize];
        // SAFETY: `obj` is an object of this cache (the page descriptor said so).
        let mark = unsafe { trailer(c, obj).read() };
        if mark != ALLOC_MARK {
            return Err(c.obj_size as usize);
        }
        // SAFETY: as above; the object is being returned to the cache.
        unsafe {
            core::ptr::write_bytes(obj as *mut u8, POISON_FREE, c.obj_size as usize);
            trailer(c, obj).write(c.free_head);
        }
        c.free_head = obj as u64;
        c.active -= 1;
        Ok(c.obj_size as usize)
    });
    match size {
        Ok(size) => umk_free(id.0 as usize, obj, size),
        Err(_) => panic!(
            "BUG {}: double free or invalid free of object 0x{obj:x}",
            cache_name(id)
        ),
    }
}

pub fn cache_name(id: CacheId) -> &'static str {
    NAMES.with(|n| n[id.0 as usize])
}

/// The names as Rust strings (the exported table holds them as bytes for debuggers).
static NAMES: Global<[&'static str; MAX_CACHES]> =
    Global::new("slab cache names", [""; MAX_CACHES]);

/// A copy of every live cache's statistics, for `free` and /proc/slabinfo-style output.
pub fn stats(out: &mut [CacheInfo; MAX_CACHES]) -> usize {
    UMK_SLAB_CACHES.with(|caches| {
        let mut n = 0;
        for c in caches.iter().filter(|c| c.stride != 0) {
            out[n] = *c;
            n += 1;
        }
        n
    })
}
