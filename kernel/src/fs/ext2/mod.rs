//! ext2 (revision 0 and 1) read and write, as `mke2fs -t ext2` makes it: the mounted
//! filesystem state and the path-level API the kernel's shell calls. On-disk layout,
//! allocation, block maps and directories live in the submodules.
//!
//! Supported: 1/2/4 KiB blocks, the features mke2fs sets by default for ext2
//! (ext_attr, resize_inode, dir_index, filetype, sparse_super, large_file). Indexed
//! (htree) directories are read linearly and lose their index flag when modified, as
//! old kernels did. Symlinks are not followed during path lookup.

mod bitmap;
mod bmap;
mod dir;
pub mod layout;

use ::alloc::boxed::Box;
use ::alloc::format;
use ::alloc::string::String;
use ::alloc::vec;
use ::alloc::vec::Vec;

use self::layout::*;
use super::bcache::{BufferCache, CacheStats};
use super::{DirEntry, FileKind, FsError, Stat, StatFs};
use crate::block::dev::{BlockDevice, SECTOR_SIZE};
use crate::exec_point::preempt_point;

/// Source of the current time, in seconds since the epoch.
pub type Clock = Box<dyn Fn() -> u32>;

/// Blocks the buffer cache holds unless told otherwise.
pub const DEFAULT_CACHE_BLOCKS: usize = 256;

/// ext2's limit on hard links to one inode.
const LINK_MAX: u16 = 32000;

/// A mounted ext2 filesystem.
pub struct Ext2 {
    cache: BufferCache,
    sb: Superblock,
    /// All group descriptors, raw.
    gdt: Vec<u8>,
    groups: u32,
    bs: usize,
    filetype: bool,
    /// Superblock or group descriptors changed since the last sync.
    meta_dirty: bool,
    clock: Clock,
}

fn feature_names(bits: u32, names: &[(u32, &str)]) -> String {
    let mut out = String::new();
    for &(bit, name) in names {
        if bits & bit != 0 {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
        }
    }
    let known = names.iter().fold(0, |acc, &(b, _)| acc | b);
    if bits & !known != 0 {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&format!("unknown({:#x})", bits & !known));
    }
    out
}

const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extents"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];

const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x1000, "readonly"),
    (0x2000, "project"),
    (0x8000, "verity"),
];

fn kind_of(mode: u16) -> FileKind {
    match mode & S_IFMT {
        0x8000 => FileKind::Regular,
        0x4000 => FileKind::Directory,
        0xa000 => FileKind::Symlink,
        0x2000 => FileKind::CharDevice,
        0x6000 => FileKind::BlockDevice,
        0x1000 => FileKind::Fifo,
        0xc000 => FileKind::Socket,
        _ => FileKind::Unknown,
    }
}

/// Splits an absolute or relative-to-root path into its non-empty components.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

impl Ext2 {
    /// Mounts the ext2 filesystem on `dev`; `clock` gives timestamps for changes.
    pub fn mount(dev: Box<dyn BlockDevice>, clock: Clock) -> Result<Ext2, FsError> {
        Ext2::mount_with_cache(dev, clock, DEFAULT_CACHE_BLOCKS)
    }

    /// As `mount`, with a buffer cache of `cache_blocks` blocks.
    pub fn mount_with_cache(
        mut dev: Box<dyn BlockDevice>,
        clock: Clock,
        cache_blocks: usize,
    ) -> Result<Ext2, FsError> {
        let mut raw = vec![0u8; SUPERBLOCK_LEN];
        dev.read_sectors(SUPERBLOCK_OFFSET / SECTOR_SIZE as u64, &mut raw)?;
        let sb = Superblock { raw };
        let bad = |what| FsError::Corrupt { what, block: 1 };
        if sb.magic() != EXT2_MAGIC {
            return Err(bad("superblock magic (not ext2)"));
        }
        if sb.rev_level() > 1 {
            return Err(FsError::Unsupported(format!("revision {}", sb.rev_level())));
        }
        if sb.feature_compat() & COMPAT_HAS_JOURNAL != 0 {
            return Err(FsError::Unsupported("has_journal (ext3/ext4)".into()));
        }
        let incompat = sb.feature_incompat() & !INCOMPAT_FILETYPE;
        if incompat != 0 {
            return Err(FsError::Unsupported(feature_names(
                incompat,
                INCOMPAT_NAMES,
            )));
        }
        let ro = sb.feature_ro_compat()
            & !(RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR);
        if ro != 0 {
            return Err(FsError::Unsupported(feature_names(ro, RO_COMPAT_NAMES)));
        }
        if sb.log_block_size() > 2 {
            return Err(bad("superblock block size"));
        }
        let bs = 1024usize << sb.log_block_size();
        let isz = sb.inode_size();
        if isz < GOOD_OLD_INODE_SIZE || !isz.is_power_of_two() || isz > bs {
            return Err(bad("superblock inode size"));
        }
        let (bpg, ipg) = (sb.blocks_per_group(), sb.inodes_per_group());
        if bpg == 0 || bpg as usize > bs * 8 || ipg == 0 || ipg as usize > bs * 8 {
            return Err(bad("superblock group geometry"));
        }
        if sb.first_data_block() != u32::from(bs == 1024) {
            return Err(bad("superblock first data block"));
        }
        let blocks = sb.blocks_count();
        if blocks <= sb.first_data_block() {
            return Err(bad("superblock block count"));
        }
        let groups = (blocks - sb.first_data_block()).div_ceil(bpg);
        if u64::from(sb.inodes_count()) > u64::from(groups) * u64::from(ipg)
            || sb.inodes_count() < sb.first_ino()
        {
            return Err(bad("superblock inode count"));
        }
        let mut cache = BufferCache::new(dev, bs, cache_blocks);
        if cache.device_blocks() < u64::from(blocks) {
            return Err(bad("superblock block count (larger than the device)"));
        }
        let gdt_len = groups as usize * GROUP_DESC_LEN;
        let mut gdt = Vec::with_capacity(gdt_len);
        let gdt_start = u64::from(sb.first_data_block()) + 1;
        for i in 0..gdt_len.div_ceil(bs) as u64 {
            preempt_point();
            gdt.extend_from_slice(cache.read(gdt_start + i)?);
        }
        gdt.truncate(gdt_len);
        let filetype = sb.feature_incompat() & INCOMPAT_FILETYPE != 0;
        let mut fs = Ext2 {
            cache,
            sb,
            gdt,
            groups,
            bs,
            filetype,
            meta_dirty: false,
            clock,
        };
        let table_blocks = (ipg as usize * isz).div_ceil(bs) as u64;
        for g in 0..groups {
            preempt_point();
            let d = fs.gd(g);
            let (bb, ib, it) = (d.block_bitmap(), d.inode_bitmap(), d.inode_table());
            let gb = gdt_start + (g as usize * GROUP_DESC_LEN / bs) as u64;
            for b in [bb, ib] {
                if fs
                    .check_block(u64::from(b), "group bitmap location")
                    .is_err()
                {
                    return Err(FsError::Corrupt {
                        what: "group descriptor bitmap location",
                        block: gb,
                    });
                }
            }
            let it = u64::from(it);
            if fs.check_block(it, "inode table").is_err() || it + table_blocks > u64::from(blocks) {
                return Err(FsError::Corrupt {
                    what: "group descriptor inode table location",
                    block: gb,
                });
            }
        }
        let root = fs.read_inode(ROOT_INO)?;
        if !root.is_dir() {
            return Err(FsError::Corrupt {
                what: "root inode (not a directory)",
                block: 0,
            });
        }
        let now = fs.now();
        fs.sb.set_mtime(now);
        let mounts = fs.sb.mnt_count().wrapping_add(1);
        fs.sb.set_mnt_count(mounts);
        fs.meta_dirty = true;
        Ok(fs)
    }

    fn now(&self) -> u32 {
        (self.clock)()
    }

    fn gd(&self, g: u32) -> GroupDesc<'_> {
        let off = g as usize * GROUP_DESC_LEN;
        GroupDesc {
            raw: self.gdt.get(off..off + GROUP_DESC_LEN).unwrap_or(&[]),
        }
    }

    fn inode_loc(&self, ino: u32) -> Result<(u64, usize), FsError> {
        if ino == 0 || ino > self.sb.inodes_count() {
            return Err(FsError::BadInode(ino));
        }
        let ipg = self.sb.inodes_per_group();
        let (g, idx) = ((ino - 1) / ipg, ((ino - 1) % ipg) as usize);
        let byte = idx * self.sb.inode_size();
        let blk = u64::from(self.gd(g).inode_table()) + (byte / self.bs) as u64;
        Ok((blk, byte % self.bs))
    }

    fn read_inode(&mut self, ino: u32) -> Result<Inode, FsError> {
        let (blk, off) = self.inode_loc(ino)?;
        let isz = self.sb.inode_size();
        let b = self.cache.read(blk)?;
        match b.get(off..off + isz) {
            Some(raw) => Ok(Inode { raw: raw.to_vec() }),
            None => Err(FsError::Corrupt {
                what: "inode table",
                block: blk,
            }),
        }
    }

    fn write_inode(&mut self, ino: u32, inode: &Inode) -> Result<(), FsError> {
        let (blk, off) = self.inode_loc(ino)?;
        let b = self.cache.modify(blk)?;
        match b.get_mut(off..off + inode.raw.len()) {
            Some(s) => {
                s.copy_from_slice(&inode.raw);
                Ok(())
            }
            None => Err(FsError::Corrupt {
                what: "inode table",
                block: blk,
            }),
        }
    }

    /// A fresh in-memory inode of `mode` with one link per `links`.
    fn new_inode(&self, mode: u16, links: u16) -> Inode {
        let isz = self.sb.inode_size();
        let mut i = Inode {
            raw: vec![0u8; isz],
        };
        let now = self.now();
        i.set_mode(mode);
        i.set_links(links);
        i.set_atime(now);
        i.set_ctime(now);
        i.set_mtime(now);
        if isz > GOOD_OLD_INODE_SIZE {
            // The extra fields up to and including i_crtime's neighbours: what Linux uses.
            let want = usize::from(self.sb.want_extra_isize());
            let extra = if want >= 4 && want.is_multiple_of(4) && want <= isz - GOOD_OLD_INODE_SIZE
            {
                want
            } else {
                (isz - GOOD_OLD_INODE_SIZE).min(32)
            };
            i.set_extra_isize(extra as u16);
            if extra >= 20 {
                i.set_crtime(now);
            }
        }
        i
    }

    /// Inode number of `path`.
    fn resolve(&mut self, path: &str) -> Result<u32, FsError> {
        let mut cur = ROOT_INO;
        let mut walked = String::new();
        for c in components(path) {
            preempt_point();
            let mut dir = self.read_inode(cur)?;
            if !dir.is_dir() {
                return Err(FsError::NotADirectory(walked));
            }
            walked.push('/');
            walked.push_str(c);
            cur = match self.lookup(cur, &mut dir, c.as_bytes())? {
                Some(i) => i,
                None => return Err(FsError::NotFound(walked)),
            };
        }
        Ok(cur)
    }

    /// The directory holding `path`'s last component, and that component.
    fn resolve_parent<'p>(&mut self, path: &'p str) -> Result<(u32, Inode, &'p str), FsError> {
        let trimmed = path.trim_end_matches('/');
        let (dir, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(FsError::InvalidPath(path.into()));
        }
        if name.len() > 255 {
            return Err(FsError::NameTooLong(path.into()));
        }
        let ino = self.resolve(dir)?;
        let inode = self.read_inode(ino)?;
        if !inode.is_dir() {
            return Err(FsError::NotADirectory(dir.into()));
        }
        Ok((ino, inode, name))
    }

    /// Lists a directory, "." and ".." included.
    pub fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let ino = self.resolve(path)?;
        let mut dir = self.read_inode(ino)?;
        if !dir.is_dir() {
            return Err(FsError::NotADirectory(path.into()));
        }
        let mut out = Vec::new();
        for (name, child, _) in self.list_dir(ino, &mut dir)? {
            preempt_point();
            let inode = self.read_inode(child)?;
            out.push(DirEntry {
                name: String::from_utf8_lossy(&name).into_owned(),
                inode: child,
                kind: kind_of(inode.mode()),
                size: inode.size(),
            });
        }
        Ok(out)
    }

    /// The whole contents of a regular file.
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FsError> {
        let ino = self.resolve(path)?;
        let mut inode = self.read_inode(ino)?;
        if inode.is_dir() {
            return Err(FsError::IsADirectory(path.into()));
        }
        if !inode.is_reg() {
            return Err(FsError::NotRegular(path.into()));
        }
        let size = inode.size();
        let bs = self.bs as u64;
        let goal = self.group_of_inode(ino);
        let mut out = Vec::with_capacity(size.min(1 << 24) as usize);
        for l in 0..size.div_ceil(bs) {
            preempt_point();
            let n = (size - l * bs).min(bs) as usize;
            match self.map_block(&mut inode, goal, l, false)? {
                Some((b, _)) => out.extend_from_slice(self.cache.read(b)?.get(..n).unwrap_or(&[])),
                None => out.resize(out.len() + n, 0),
            }
        }
        Ok(out)
    }

    /// The target of a symbolic link.
    pub fn read_link(&mut self, path: &str) -> Result<Vec<u8>, FsError> {
        let ino = self.resolve(path)?;
        let mut inode = self.read_inode(ino)?;
        if inode.kind_bits() != S_IFLNK {
            return Err(FsError::NotRegular(path.into()));
        }
        let size = (inode.size() as usize).min(self.bs);
        if !self.has_block_map(&inode) {
            return Ok(inode.raw.get(40..40 + size.min(60)).unwrap_or(&[]).to_vec());
        }
        let goal = self.group_of_inode(ino);
        match self.map_block(&mut inode, goal, 0, false)? {
            Some((b, _)) => Ok(self.cache.read(b)?.get(..size).unwrap_or(&[]).to_vec()),
            None => Ok(Vec::new()),
        }
    }

    /// Writes `data` to a regular file, creating it (mode 0644) if missing. Without
    /// `append` the file is truncated first; with it, data goes at the end.
    pub fn write_file(&mut self, path: &str, data: &[u8], append: bool) -> Result<(), FsError> {
        let (parent, mut pinode, name) = self.resolve_parent(path)?;
        let (ino, mut inode) = match self.lookup(parent, &mut pinode, name.as_bytes())? {
            Some(ino) => {
                let mut inode = self.read_inode(ino)?;
                if inode.is_dir() {
                    return Err(FsError::IsADirectory(path.into()));
                }
                if !inode.is_reg() {
                    return Err(FsError::NotRegular(path.into()));
                }
                if !append {
                    self.truncate_all(&mut inode)?;
                }
                (ino, inode)
            }
            None => {
                let ino = self.alloc_inode(self.group_of_inode(parent), false)?;
                let inode = self.new_inode(S_IFREG | 0o644, 1);
                self.write_inode(ino, &inode)?;
                if let Err(e) = self.add_entry(parent, &mut pinode, name.as_bytes(), ino, 1) {
                    self.free_inode(ino, false)?;
                    return Err(e);
                }
                self.write_inode(parent, &pinode)?;
                (ino, inode)
            }
        };
        let start = if append { inode.size() } else { 0 };
        let r = self.write_data(ino, &mut inode, start, data);
        let now = self.now();
        inode.set_mtime(now);
        inode.set_ctime(now);
        self.write_inode(ino, &inode)?;
        r
    }

    /// Copies `data` into the file at byte `pos`, allocating blocks; the inode's size
    /// covers whatever was written even if allocation fails part way.
    fn write_data(
        &mut self,
        ino: u32,
        inode: &mut Inode,
        mut pos: u64,
        data: &[u8],
    ) -> Result<(), FsError> {
        let bs = self.bs as u64;
        let goal = self.group_of_inode(ino);
        let mut rest = data;
        while !rest.is_empty() {
            preempt_point();
            let (lblk, boff) = (pos / bs, (pos % bs) as usize);
            let n = rest.len().min(self.bs - boff);
            let Some((blk, fresh)) = self.map_block(inode, goal, lblk, true)? else {
                return Err(FsError::NoSpace);
            };
            let b = if fresh || n == self.bs {
                self.cache.zeroed(blk)?
            } else {
                self.cache.modify(blk)?
            };
            if let Some(s) = b.get_mut(boff..boff + n) {
                s.copy_from_slice(&rest[..n]);
            }
            rest = &rest[n..];
            pos += n as u64;
            if pos > inode.size() {
                inode.set_size(pos);
                if pos > 0x7fff_ffff && self.sb.feature_ro_compat() & RO_COMPAT_LARGE_FILE == 0 {
                    let f = self.sb.feature_ro_compat() | RO_COMPAT_LARGE_FILE;
                    self.sb.set_feature_ro_compat(f);
                    self.meta_dirty = true;
                }
            }
        }
        Ok(())
    }

    /// Creates an empty directory (mode 0755).
    pub fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        let (parent, mut pinode, name) = self.resolve_parent(path)?;
        if self.lookup(parent, &mut pinode, name.as_bytes())?.is_some() {
            return Err(FsError::Exists(path.into()));
        }
        if pinode.links() >= LINK_MAX {
            return Err(FsError::TooManyLinks(path.into()));
        }
        let ino = self.alloc_inode(self.group_of_inode(parent), true)?;
        let mut inode = self.new_inode(S_IFDIR | 0o755, 2);
        let made = self.map_block(&mut inode, self.group_of_inode(ino), 0, true);
        let blk = match made {
            Ok(Some((b, _))) => b,
            Ok(None) | Err(_) => {
                self.free_inode(ino, true)?;
                return Err(made.err().unwrap_or(FsError::NoSpace));
            }
        };
        self.init_dir_block(blk, ino, parent)?;
        inode.set_size(self.bs as u64);
        self.write_inode(ino, &inode)?;
        if let Err(e) = self.add_entry(parent, &mut pinode, name.as_bytes(), ino, 2) {
            self.free_block(blk)?;
            self.free_inode(ino, true)?;
            return Err(e);
        }
        pinode.set_links(pinode.links() + 1);
        self.write_inode(parent, &pinode)
    }

    /// Removes a non-directory name; the file goes when its last link does.
    pub fn unlink(&mut self, path: &str) -> Result<(), FsError> {
        let (parent, mut pinode, name) = self.resolve_parent(path)?;
        let Some(ino) = self.lookup(parent, &mut pinode, name.as_bytes())? else {
            return Err(FsError::NotFound(path.into()));
        };
        let mut inode = self.read_inode(ino)?;
        if inode.is_dir() {
            return Err(FsError::IsADirectory(path.into()));
        }
        self.remove_entry(parent, &mut pinode, name.as_bytes())?;
        self.write_inode(parent, &pinode)?;
        inode.set_links(inode.links().saturating_sub(1));
        inode.set_ctime(self.now());
        if inode.links() == 0 {
            self.release(ino, &mut inode, false)?;
        }
        self.write_inode(ino, &inode)
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, path: &str) -> Result<(), FsError> {
        let (parent, mut pinode, name) = self.resolve_parent(path)?;
        let Some(ino) = self.lookup(parent, &mut pinode, name.as_bytes())? else {
            return Err(FsError::NotFound(path.into()));
        };
        let mut inode = self.read_inode(ino)?;
        if !inode.is_dir() {
            return Err(FsError::NotADirectory(path.into()));
        }
        if !self.dir_is_empty(ino, &mut inode)? {
            return Err(FsError::NotEmpty(path.into()));
        }
        self.remove_entry(parent, &mut pinode, name.as_bytes())?;
        pinode.set_links(pinode.links().saturating_sub(1));
        self.write_inode(parent, &pinode)?;
        inode.set_links(0);
        self.release(ino, &mut inode, true)?;
        self.write_inode(ino, &inode)
    }

    /// Frees an inode with no links left, its blocks and its xattr block.
    fn release(&mut self, ino: u32, inode: &mut Inode, dir: bool) -> Result<(), FsError> {
        self.truncate_all(inode)?;
        self.release_xattr(inode)?;
        inode.set_dtime(self.now());
        self.free_inode(ino, dir)
    }

    pub fn stat(&mut self, path: &str) -> Result<Stat, FsError> {
        let ino = self.resolve(path)?;
        let i = self.read_inode(ino)?;
        Ok(Stat {
            inode: ino,
            kind: kind_of(i.mode()),
            mode: i.mode(),
            links: i.links(),
            uid: u32::from(i.uid_lo()) | u32::from(i.uid_hi()) << 16,
            gid: u32::from(i.gid_lo()) | u32::from(i.gid_hi()) << 16,
            size: i.size(),
            blocks: u64::from(i.blocks512()),
            atime: i.atime(),
            mtime: i.mtime(),
            ctime: i.ctime(),
        })
    }

    pub fn statfs(&self) -> StatFs {
        StatFs {
            block_size: self.bs as u32,
            blocks: self.sb.blocks_count().into(),
            free_blocks: self.sb.free_blocks().into(),
            reserved_blocks: self.sb.r_blocks_count().into(),
            inodes: self.sb.inodes_count().into(),
            free_inodes: self.sb.free_inodes().into(),
        }
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Writes the superblock, group descriptors and every dirty block to the device.
    pub fn sync(&mut self) -> Result<(), FsError> {
        if self.meta_dirty {
            let now = self.now();
            self.sb.set_wtime(now);
            let (sb_blk, sb_off) = if self.bs == 1024 { (1, 0) } else { (0, 1024) };
            let raw = self.sb.raw.clone();
            if let Some(s) = self
                .cache
                .modify(sb_blk)?
                .get_mut(sb_off..sb_off + SUPERBLOCK_LEN)
            {
                s.copy_from_slice(&raw);
            }
            let gdt_start = u64::from(self.sb.first_data_block()) + 1;
            let gdt = self.gdt.clone();
            for (i, chunk) in gdt.chunks(self.bs).enumerate() {
                preempt_point();
                if let Some(s) = self
                    .cache
                    .modify(gdt_start + i as u64)?
                    .get_mut(..chunk.len())
                {
                    s.copy_from_slice(chunk);
                }
            }
            self.meta_dirty = false;
        }
        self.cache.sync()
    }

    /// Syncs and hands the device back.
    pub fn unmount(mut self) -> Result<Box<dyn BlockDevice>, FsError> {
        self.meta_dirty = true;
        self.sync()?;
        Ok(self.cache.into_device())
    }
}

#[cfg(test)]
mod tests;
