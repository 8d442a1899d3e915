//! umk's slab caches (kernel/PROBES.md): `UMK_SLAB_CACHES` is an array of 32 `CacheInfo`
//! of 56 bytes, the name a NUL-padded `[u8; 24]` first; index 0xff means whole pages.

use super::{layout, Umk};
use crate::error::Result;
use crate::memory::{self, c_str, Memory};

const CACHE_INFO_SIZE: u64 = 56;
const NR_CACHES: u64 = 32;
const NAME_LEN: usize = 24;
/// The cache index of whole-page allocations.
pub const PAGES_CACHE: u64 = 0xff;

impl Umk {
    /// The name of slab cache `index` (`kmalloc-64`, `ubd_request`, `pages`); an index
    /// past the table is named by its number.
    pub fn cache_name(&self, mem: &dyn Memory, index: u64) -> Result<String> {
        if index == PAGES_CACHE {
            return Ok("pages".to_string());
        }
        if index >= NR_CACHES {
            return Ok(format!("cache-{index}"));
        }
        let base = self
            .caches
            .ok_or_else(|| layout("it has no UMK_SLAB_CACHES".to_string()))?;
        let raw = memory::bytes(
            mem,
            base + index * CACHE_INFO_SIZE,
            NAME_LEN,
            "a slab cache name",
        )?;
        Ok(c_str(&raw, 0, NAME_LEN))
    }
}
