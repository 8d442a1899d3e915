//! The inode block map: logical file blocks to disk blocks through the 12 direct
//! pointers and the single, double and triple indirect trees, allocating on demand,
//! and freeing a whole map when a file is truncated or deleted.

use alloc::vec::Vec;

use super::layout::{le32, set32, Inode, N_DIRECT, XATTR_MAGIC};
use super::Ext2;
use crate::exec_point::preempt_point;
use crate::fs::FsError;

/// Where a logical block's pointer lives: inode slot, then indices per indirect level.
struct MapPath {
    slot: usize,
    idx: [u64; 3],
    depth: usize,
}

impl Ext2 {
    fn map_path(&self, lblk: u64) -> Result<MapPath, FsError> {
        let p = (self.bs / 4) as u64;
        let mut l = lblk;
        if l < N_DIRECT as u64 {
            return Ok(MapPath {
                slot: l as usize,
                idx: [0; 3],
                depth: 0,
            });
        }
        l -= N_DIRECT as u64;
        if l < p {
            return Ok(MapPath {
                slot: 12,
                idx: [l, 0, 0],
                depth: 1,
            });
        }
        l -= p;
        if l < p * p {
            return Ok(MapPath {
                slot: 13,
                idx: [l / p, l % p, 0],
                depth: 2,
            });
        }
        l -= p * p;
        if l < p * p * p {
            return Ok(MapPath {
                slot: 14,
                idx: [l / (p * p), (l / p) % p, l % p],
                depth: 3,
            });
        }
        Err(FsError::FileTooBig)
    }

    /// Validates a block number read from disk.
    pub(super) fn check_block(&self, blk: u64, what: &'static str) -> Result<u64, FsError> {
        if blk < u64::from(self.sb.first_data_block()) || blk >= u64::from(self.sb.blocks_count()) {
            return Err(FsError::Corrupt { what, block: blk });
        }
        Ok(blk)
    }

    fn alloc_counted(&mut self, inode: &mut Inode, goal: u32) -> Result<u64, FsError> {
        let blk = self.alloc_block(goal)?;
        let n = inode.blocks512() + (self.bs / 512) as u32;
        inode.set_blocks512(n);
        Ok(blk)
    }

    /// Disk block of logical block `lblk`, allocating it (and any indirect block on the
    /// way) if `alloc`. Returns the block and whether it was just allocated (a fresh
    /// block holds garbage and must be fully written or zeroed).
    pub(super) fn map_block(
        &mut self,
        inode: &mut Inode,
        goal: u32,
        lblk: u64,
        alloc: bool,
    ) -> Result<Option<(u64, bool)>, FsError> {
        let path = self.map_path(lblk)?;
        let mut cur = u64::from(inode.block(path.slot));
        let mut fresh = false;
        if cur == 0 {
            if !alloc {
                return Ok(None);
            }
            cur = self.alloc_counted(inode, goal)?;
            inode.set_block(path.slot, cur as u32);
            fresh = true;
            if path.depth > 0 {
                self.cache.zeroed(cur)?;
            }
        }
        self.check_block(cur, "block pointer")?;
        for level in 0..path.depth {
            let off = path.idx[level] as usize * 4;
            let mut next = u64::from(le32(self.cache.read(cur)?, off));
            fresh = false;
            if next == 0 {
                if !alloc {
                    return Ok(None);
                }
                next = self.alloc_counted(inode, goal)?;
                set32(self.cache.modify(cur)?, off, next as u32);
                fresh = true;
                if level + 1 < path.depth {
                    self.cache.zeroed(next)?;
                }
            }
            cur = self.check_block(next, "indirect block pointer")?;
        }
        Ok(Some((cur, fresh)))
    }

    /// Frees block `blk` and, for an indirect block of `depth` levels, all it maps.
    fn free_tree(&mut self, blk: u64, depth: usize) -> Result<(), FsError> {
        let blk = self.check_block(blk, "block pointer")?;
        if depth > 0 {
            let ptrs: Vec<u32> = self
                .cache
                .read(blk)?
                .chunks_exact(4)
                .map(|c| le32(c, 0))
                .collect();
            for p in ptrs {
                preempt_point();
                if p != 0 {
                    self.free_tree(u64::from(p), depth - 1)?;
                }
            }
        }
        self.free_block(blk)
    }

    /// Whether `i_block` holds block pointers (not a fast symlink or a device number).
    pub(super) fn has_block_map(&self, inode: &Inode) -> bool {
        if inode.is_reg() || inode.is_dir() {
            return true;
        }
        let acl_blocks = if inode.file_acl() != 0 {
            (self.bs / 512) as u32
        } else {
            0
        };
        inode.kind_bits() == super::layout::S_IFLNK && inode.blocks512() > acl_blocks
    }

    /// Frees every data block of `inode` and sets its size to zero.
    pub(super) fn truncate_all(&mut self, inode: &mut Inode) -> Result<(), FsError> {
        if self.has_block_map(inode) {
            for slot in 0..15 {
                preempt_point();
                let b = u64::from(inode.block(slot));
                if b != 0 {
                    let depth = slot.saturating_sub(N_DIRECT - 1);
                    self.free_tree(b, depth)?;
                    inode.set_block(slot, 0);
                }
            }
            let acl_blocks = if inode.file_acl() != 0 {
                (self.bs / 512) as u32
            } else {
                0
            };
            inode.set_blocks512(acl_blocks);
        }
        inode.set_size(0);
        Ok(())
    }

    /// Drops this inode's reference to its extended-attribute block.
    pub(super) fn release_xattr(&mut self, inode: &mut Inode) -> Result<(), FsError> {
        let acl = u64::from(inode.file_acl());
        if acl == 0 {
            return Ok(());
        }
        let acl = self.check_block(acl, "xattr block pointer")?;
        let blk = self.cache.read(acl)?;
        if le32(blk, 0) != XATTR_MAGIC {
            return Err(FsError::Corrupt {
                what: "xattr block magic",
                block: acl,
            });
        }
        let refs = le32(blk, 4);
        if refs > 1 {
            set32(self.cache.modify(acl)?, 4, refs - 1);
        } else {
            self.free_block(acl)?;
        }
        inode.set_file_acl(0);
        let n = inode.blocks512().saturating_sub((self.bs / 512) as u32);
        inode.set_blocks512(n);
        Ok(())
    }
}
