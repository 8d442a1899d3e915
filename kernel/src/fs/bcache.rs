//! The buffer cache: filesystem blocks held in memory between the filesystem and its
//! block device. Write-back: modified blocks reach the device on `sync` or when evicted
//! (least recently used first) to keep the cache within its block budget.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::FsError;
use crate::block::dev::{BlockDevice, SECTOR_SIZE};
use crate::exec_point::preempt_point;

struct Buf {
    data: Vec<u8>,
    dirty: bool,
    last_use: u64,
}

/// Cache statistics, for the shell and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub writebacks: u64,
}

pub struct BufferCache {
    dev: Box<dyn BlockDevice>,
    block_size: usize,
    capacity: usize,
    bufs: BTreeMap<u64, Buf>,
    clock: u64,
    stats: CacheStats,
}

impl BufferCache {
    /// A cache of at most `capacity` (at least 4) blocks of `block_size` bytes, a
    /// multiple of the sector size.
    pub fn new(dev: Box<dyn BlockDevice>, block_size: usize, capacity: usize) -> BufferCache {
        BufferCache {
            dev,
            block_size,
            capacity: capacity.max(4),
            bufs: BTreeMap::new(),
            clock: 0,
            stats: CacheStats::default(),
        }
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Whole blocks the device holds.
    pub fn device_blocks(&self) -> u64 {
        self.dev.sectors() / (self.block_size / SECTOR_SIZE) as u64
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Block `blk`, read from the device if not cached.
    pub fn read(&mut self, blk: u64) -> Result<&[u8], FsError> {
        Ok(&self.load(blk, true)?.data)
    }

    /// Block `blk` for modification: it is written back later.
    pub fn modify(&mut self, blk: u64) -> Result<&mut [u8], FsError> {
        let b = self.load(blk, true)?;
        b.dirty = true;
        Ok(&mut b.data)
    }

    /// Block `blk` zero-filled without reading it, for blocks about to be overwritten
    /// or freshly allocated.
    pub fn zeroed(&mut self, blk: u64) -> Result<&mut [u8], FsError> {
        let b = self.load(blk, false)?;
        b.data.fill(0);
        b.dirty = true;
        Ok(&mut b.data)
    }

    /// Writes every dirty block back, in block order.
    pub fn sync(&mut self) -> Result<(), FsError> {
        let spb = (self.block_size / SECTOR_SIZE) as u64;
        for (&blk, b) in self.bufs.iter_mut() {
            preempt_point();
            if b.dirty {
                self.dev.write_sectors(blk * spb, &b.data)?;
                b.dirty = false;
                self.stats.writebacks += 1;
            }
        }
        Ok(())
    }

    /// Forgets every cached block; dirty data is lost unless `sync` ran first.
    pub fn into_device(self) -> Box<dyn BlockDevice> {
        self.dev
    }

    fn load(&mut self, blk: u64, read: bool) -> Result<&mut Buf, FsError> {
        self.clock += 1;
        if self.bufs.contains_key(&blk) {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
            if self.bufs.len() >= self.capacity {
                self.evict()?;
            }
            let mut data = vec![0u8; self.block_size];
            if read {
                let spb = (self.block_size / SECTOR_SIZE) as u64;
                self.dev.read_sectors(blk * spb, &mut data)?;
            }
            self.bufs.insert(
                blk,
                Buf {
                    data,
                    dirty: false,
                    last_use: 0,
                },
            );
        }
        let clock = self.clock;
        match self.bufs.get_mut(&blk) {
            Some(b) => {
                b.last_use = clock;
                Ok(b)
            }
            None => Err(FsError::Corrupt {
                what: "buffer cache entry",
                block: blk,
            }),
        }
    }

    /// Drops the least recently used block, writing it back first if dirty.
    fn evict(&mut self) -> Result<(), FsError> {
        let mut victim: Option<(u64, u64)> = None;
        for (&blk, b) in &self.bufs {
            preempt_point();
            if victim.is_none_or(|(_, used)| b.last_use < used) {
                victim = Some((blk, b.last_use));
            }
        }
        let Some((blk, _)) = victim else {
            return Ok(());
        };
        if let Some(b) = self.bufs.get(&blk) {
            if b.dirty {
                let spb = (self.block_size / SECTOR_SIZE) as u64;
                self.dev.write_sectors(blk * spb, &b.data)?;
                self.stats.writebacks += 1;
            }
        }
        self.bufs.remove(&blk);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::dev::BlockError;
    use alloc::rc::Rc;
    use core::cell::RefCell;

    /// An in-memory disk that counts writes.
    struct MemDisk(Rc<RefCell<(Vec<u8>, usize)>>);

    impl BlockDevice for MemDisk {
        fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
            let d = self.0.borrow();
            let off = sector as usize * SECTOR_SIZE;
            buf.copy_from_slice(&d.0[off..off + buf.len()]);
            Ok(())
        }
        fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
            let mut d = self.0.borrow_mut();
            let off = sector as usize * SECTOR_SIZE;
            d.0[off..off + buf.len()].copy_from_slice(buf);
            d.1 += 1;
            Ok(())
        }
        fn sectors(&self) -> u64 {
            (self.0.borrow().0.len() / SECTOR_SIZE) as u64
        }
    }

    #[test]
    fn write_back_lru_and_sync() {
        let disk = Rc::new(RefCell::new((vec![0u8; 64 * 1024], 0)));
        let mut c = BufferCache::new(Box::new(MemDisk(disk.clone())), 1024, 4);
        assert_eq!(c.device_blocks(), 64);
        for blk in 0..4u64 {
            c.modify(blk).unwrap()[0] = blk as u8 + 1;
        }
        assert_eq!(disk.borrow().1, 0, "write-back: nothing written yet");
        c.read(0).unwrap(); // block 1 is now least recently used
        c.read(10).unwrap();
        assert_eq!(disk.borrow().1, 1);
        assert_eq!(
            disk.borrow().0[1024],
            2,
            "evicted dirty block 1 was written back"
        );
        assert_eq!(c.read(1).unwrap()[0], 2, "re-read after eviction");
        c.sync().unwrap();
        assert_eq!(disk.borrow().0[0], 1);
        let writes = disk.borrow().1;
        c.sync().unwrap();
        assert_eq!(disk.borrow().1, writes, "clean blocks are not rewritten");
        assert!(c.stats().hits >= 1 && c.stats().misses >= 6);
    }
}
