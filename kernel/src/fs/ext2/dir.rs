//! Directories: linear lists of variable-length entries (inode, rec_len, name_len,
//! file_type, name) that tile each directory block exactly. Lookup, listing, insertion
//! (into slack space or a new block) and removal (merging into the previous entry).

use alloc::vec::Vec;

use super::layout::{le16, le32, set16, set32, Inode, INDEX_FL};
use super::Ext2;
use crate::exec_point::preempt_point;
use crate::fs::FsError;

/// One parsed entry of a directory block.
pub(super) struct RawEntry {
    pub off: usize,
    pub inode: u32,
    pub rec_len: usize,
    pub name_len: usize,
    pub ftype: u8,
}

/// Space an entry with a name of `len` bytes needs.
pub(super) fn rec_size(len: usize) -> usize {
    (8 + len + 3) & !3
}

/// Parses and validates all entries of one directory block.
pub(super) fn parse_block(b: &[u8], blk: u64, filetype: bool) -> Result<Vec<RawEntry>, FsError> {
    let bad = |what| FsError::Corrupt { what, block: blk };
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        if off + 8 > b.len() {
            return Err(bad("directory entry header"));
        }
        let rec_len = le16(b, off + 4) as usize;
        let name_len = if filetype {
            b[off + 6] as usize
        } else {
            le16(b, off + 6) as usize
        };
        if rec_len < 8 || !rec_len.is_multiple_of(4) || off + rec_len > b.len() {
            return Err(bad("directory entry rec_len"));
        }
        if 8 + name_len > rec_len {
            return Err(bad("directory entry name_len"));
        }
        let ftype = if filetype { b[off + 7] } else { 0 };
        out.push(RawEntry {
            off,
            inode: le32(b, off),
            rec_len,
            name_len,
            ftype,
        });
        off += rec_len;
    }
    Ok(out)
}

/// Writes an entry header and name at `off`.
fn put_entry(
    b: &mut [u8],
    off: usize,
    ino: u32,
    rec_len: usize,
    name: &[u8],
    ft: u8,
    filetype: bool,
) {
    set32(b, off, ino);
    set16(b, off + 4, rec_len as u16);
    if filetype {
        if let Some(s) = b.get_mut(off + 6..off + 8) {
            s.copy_from_slice(&[name.len() as u8, ft]);
        }
    } else {
        set16(b, off + 6, name.len() as u16);
    }
    if let Some(s) = b.get_mut(off + 8..off + 8 + name.len()) {
        s.copy_from_slice(name);
    }
}

impl Ext2 {
    /// Disk blocks of a directory, in order (holes are skipped).
    fn dir_blocks(&mut self, dir: &mut Inode, ino: u32) -> Result<Vec<u64>, FsError> {
        let n = dir.size().div_ceil(self.bs as u64);
        let mut out = Vec::new();
        let goal = self.group_of_inode(ino);
        for l in 0..n {
            preempt_point();
            if let Some((b, _)) = self.map_block(dir, goal, l, false)? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Every live entry of a directory: (name, inode, file_type).
    pub(super) fn list_dir(
        &mut self,
        ino: u32,
        dir: &mut Inode,
    ) -> Result<Vec<(Vec<u8>, u32, u8)>, FsError> {
        let mut out = Vec::new();
        for blk in self.dir_blocks(dir, ino)? {
            let b = self.cache.read(blk)?;
            for e in parse_block(b, blk, self.filetype)? {
                preempt_point();
                if e.inode != 0 {
                    let name = b.get(e.off + 8..e.off + 8 + e.name_len).unwrap_or(&[]);
                    out.push((name.to_vec(), e.inode, e.ftype));
                }
            }
        }
        Ok(out)
    }

    pub(super) fn lookup(
        &mut self,
        ino: u32,
        dir: &mut Inode,
        name: &[u8],
    ) -> Result<Option<u32>, FsError> {
        for blk in self.dir_blocks(dir, ino)? {
            let b = self.cache.read(blk)?;
            for e in parse_block(b, blk, self.filetype)? {
                preempt_point();
                if e.inode != 0 && b.get(e.off + 8..e.off + 8 + e.name_len) == Some(name) {
                    return Ok(Some(e.inode));
                }
            }
        }
        Ok(None)
    }

    /// Adds `name -> child` to directory `ino`; updates `dir` (size, times) in memory.
    pub(super) fn add_entry(
        &mut self,
        ino: u32,
        dir: &mut Inode,
        name: &[u8],
        child: u32,
        ftype: u8,
    ) -> Result<(), FsError> {
        let need = rec_size(name.len());
        let ft = self.filetype;
        let now = self.now();
        dir.set_flags(dir.flags() & !INDEX_FL);
        dir.set_mtime(now);
        dir.set_ctime(now);
        for blk in self.dir_blocks(dir, ino)? {
            let entries = parse_block(self.cache.read(blk)?, blk, ft)?;
            for e in entries {
                preempt_point();
                if e.inode == 0 && e.rec_len >= need {
                    let b = self.cache.modify(blk)?;
                    put_entry(b, e.off, child, e.rec_len, name, ftype, ft);
                    return Ok(());
                }
                let used = rec_size(e.name_len);
                if e.inode != 0 && e.rec_len >= used + need {
                    let b = self.cache.modify(blk)?;
                    set16(b, e.off + 4, used as u16);
                    put_entry(b, e.off + used, child, e.rec_len - used, name, ftype, ft);
                    return Ok(());
                }
            }
        }
        let lblk = dir.size().div_ceil(self.bs as u64);
        let goal = self.group_of_inode(ino);
        let Some((blk, _)) = self.map_block(dir, goal, lblk, true)? else {
            return Err(FsError::NoSpace);
        };
        let bs = self.bs;
        let b = self.cache.zeroed(blk)?;
        put_entry(b, 0, child, bs, name, ftype, ft);
        dir.set_size((lblk + 1) * bs as u64);
        Ok(())
    }

    /// Removes `name` from directory `ino`; returns the inode it named.
    pub(super) fn remove_entry(
        &mut self,
        ino: u32,
        dir: &mut Inode,
        name: &[u8],
    ) -> Result<Option<u32>, FsError> {
        for blk in self.dir_blocks(dir, ino)? {
            let b = self.cache.read(blk)?;
            let entries = parse_block(b, blk, self.filetype)?;
            let mut prev: Option<&RawEntry> = None;
            for e in &entries {
                preempt_point();
                if e.inode != 0 && b.get(e.off + 8..e.off + 8 + e.name_len) == Some(name) {
                    let child = e.inode;
                    let b = self.cache.modify(blk)?;
                    match prev {
                        Some(p) => set16(b, p.off + 4, (p.rec_len + e.rec_len) as u16),
                        None => set32(b, e.off, 0),
                    }
                    let now = self.now();
                    dir.set_flags(dir.flags() & !INDEX_FL);
                    dir.set_mtime(now);
                    dir.set_ctime(now);
                    return Ok(Some(child));
                }
                prev = Some(e);
            }
        }
        Ok(None)
    }

    /// Whether a directory holds nothing but "." and "..".
    pub(super) fn dir_is_empty(&mut self, ino: u32, dir: &mut Inode) -> Result<bool, FsError> {
        Ok(self
            .list_dir(ino, dir)?
            .iter()
            .all(|(n, _, _)| n == b"." || n == b".."))
    }

    /// Fills a new directory block with "." and "..".
    pub(super) fn init_dir_block(
        &mut self,
        blk: u64,
        ino: u32,
        parent: u32,
    ) -> Result<(), FsError> {
        let (bs, ft) = (self.bs, self.filetype);
        let b = self.cache.zeroed(blk)?;
        put_entry(b, 0, ino, 12, b".", 2, ft);
        put_entry(b, 12, parent, bs - 12, b"..", 2, ft);
        Ok(())
    }
}
