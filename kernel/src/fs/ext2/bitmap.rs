//! Block and inode allocation: bitmap scans plus the free counts in the group
//! descriptors and the superblock, which are always changed together.

use super::layout::{GD_FREE_BLOCKS, GD_FREE_INODES, GD_USED_DIRS};
use super::Ext2;
use crate::exec_point::preempt_point;
use crate::fs::FsError;

/// Index of the first clear bit below `limit`, scanning a byte at a time.
fn find_clear(bitmap: &[u8], limit: usize) -> Option<usize> {
    for (i, &byte) in bitmap.iter().enumerate().take(limit.div_ceil(8)) {
        preempt_point();
        if byte == 0xff {
            continue;
        }
        for bit in 0..8 {
            let n = i * 8 + bit;
            if n < limit && byte & (1 << bit) == 0 {
                return Some(n);
            }
        }
    }
    None
}

impl Ext2 {
    fn gd_counter(&self, g: u32, off: usize) -> u16 {
        super::layout::le16(&self.gdt, g as usize * super::layout::GROUP_DESC_LEN + off)
    }

    fn gd_adjust(&mut self, g: u32, off: usize, delta: i32) {
        let v = (i32::from(self.gd_counter(g, off)) + delta).clamp(0, 0xffff) as u16;
        super::layout::set16(
            &mut self.gdt,
            g as usize * super::layout::GROUP_DESC_LEN + off,
            v,
        );
        self.meta_dirty = true;
    }

    /// Blocks in group `g` (the last group may be short).
    pub(super) fn blocks_in_group(&self, g: u32) -> u32 {
        let first = u64::from(self.sb.first_data_block());
        let bpg = u64::from(self.sb.blocks_per_group());
        let start = first + u64::from(g) * bpg;
        (u64::from(self.sb.blocks_count()).saturating_sub(start)).min(bpg) as u32
    }

    pub(super) fn group_of_inode(&self, ino: u32) -> u32 {
        (ino - 1) / self.sb.inodes_per_group()
    }

    /// Allocates one block, preferring group `goal`.
    pub(super) fn alloc_block(&mut self, goal: u32) -> Result<u64, FsError> {
        for i in 0..self.groups {
            preempt_point();
            let g = (goal + i) % self.groups;
            if self.gd_counter(g, GD_FREE_BLOCKS) == 0 {
                continue;
            }
            let bmp = u64::from(self.gd(g).block_bitmap());
            let limit = self.blocks_in_group(g) as usize;
            let Some(bit) = find_clear(self.cache.read(bmp)?, limit) else {
                continue;
            };
            if let Some(b) = self.cache.modify(bmp)?.get_mut(bit / 8) {
                *b |= 1 << (bit % 8);
            }
            self.gd_adjust(g, GD_FREE_BLOCKS, -1);
            let free = self.sb.free_blocks().saturating_sub(1);
            self.sb.set_free_blocks(free);
            let blk = u64::from(self.sb.first_data_block())
                + u64::from(g) * u64::from(self.sb.blocks_per_group())
                + bit as u64;
            return Ok(blk);
        }
        Err(FsError::NoSpace)
    }

    pub(super) fn free_block(&mut self, blk: u64) -> Result<(), FsError> {
        let blk = self.check_block(blk, "block pointer")?;
        let rel = blk - u64::from(self.sb.first_data_block());
        let bpg = u64::from(self.sb.blocks_per_group());
        let (g, bit) = ((rel / bpg) as u32, (rel % bpg) as usize);
        let bmp = u64::from(self.gd(g).block_bitmap());
        let byte = self.cache.modify(bmp)?.get_mut(bit / 8);
        match byte {
            Some(b) if *b & (1 << (bit % 8)) != 0 => *b &= !(1 << (bit % 8)),
            _ => {
                return Err(FsError::Corrupt {
                    what: "free of unallocated block",
                    block: blk,
                })
            }
        }
        self.gd_adjust(g, GD_FREE_BLOCKS, 1);
        let free = self.sb.free_blocks() + 1;
        self.sb.set_free_blocks(free);
        Ok(())
    }

    /// Allocates an inode number, preferring group `goal`.
    pub(super) fn alloc_inode(&mut self, goal: u32, dir: bool) -> Result<u32, FsError> {
        let ipg = self.sb.inodes_per_group();
        for i in 0..self.groups {
            preempt_point();
            let g = (goal + i) % self.groups;
            if self.gd_counter(g, GD_FREE_INODES) == 0 {
                continue;
            }
            let bmp = u64::from(self.gd(g).inode_bitmap());
            let first_ino = self.sb.first_ino();
            let bitmap = self.cache.read(bmp)?;
            // Reserved inodes are marked in the bitmap, but never trust that alone.
            let mut found = None;
            let mut from = 0usize;
            while let Some(bit) =
                find_clear(bitmap.get(from / 8..).unwrap_or(&[]), ipg as usize - from)
            {
                let n = from + bit;
                let ino = g * ipg + n as u32 + 1;
                if ino >= first_ino {
                    found = Some((n, ino));
                    break;
                }
                from = (n + 8) & !7;
                if from >= ipg as usize {
                    break;
                }
            }
            let Some((bit, ino)) = found else { continue };
            if let Some(b) = self.cache.modify(bmp)?.get_mut(bit / 8) {
                *b |= 1 << (bit % 8);
            }
            self.gd_adjust(g, GD_FREE_INODES, -1);
            if dir {
                self.gd_adjust(g, GD_USED_DIRS, 1);
            }
            let free = self.sb.free_inodes().saturating_sub(1);
            self.sb.set_free_inodes(free);
            return Ok(ino);
        }
        Err(FsError::NoSpace)
    }

    pub(super) fn free_inode(&mut self, ino: u32, dir: bool) -> Result<(), FsError> {
        let ipg = self.sb.inodes_per_group();
        let (g, bit) = ((ino - 1) / ipg, ((ino - 1) % ipg) as usize);
        let bmp = u64::from(self.gd(g).inode_bitmap());
        match self.cache.modify(bmp)?.get_mut(bit / 8) {
            Some(b) if *b & (1 << (bit % 8)) != 0 => *b &= !(1 << (bit % 8)),
            _ => {
                return Err(FsError::Corrupt {
                    what: "free of unallocated inode",
                    block: bmp,
                })
            }
        }
        self.gd_adjust(g, GD_FREE_INODES, 1);
        if dir {
            self.gd_adjust(g, GD_USED_DIRS, -1);
        }
        let free = self.sb.free_inodes() + 1;
        self.sb.set_free_inodes(free);
        Ok(())
    }
}
