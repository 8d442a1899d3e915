//! Memory management: umk's physical memory (one host mapping made at boot), a page
//! allocator over it, named slab caches with poisoning, kmalloc, and the Rust global
//! allocator on top.

pub mod global;
pub mod kmalloc;
pub mod page;
pub mod slab;

/// Byte written over freed slab objects (Linux's POISON_FREE), so a use-after-free reads
/// 0x6b6b6b6b… and a pointer loaded from freed memory is non-canonical.
pub const POISON_FREE: u8 = 0x6b;
