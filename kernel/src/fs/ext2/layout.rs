//! ext2 on-disk structures: superblock, group descriptors and inodes kept as their raw
//! little-endian bytes with typed accessors, so fields this code does not interpret
//! survive a read-modify-write unchanged.

use alloc::vec::Vec;

pub const EXT2_MAGIC: u16 = 0xef53;
pub const ROOT_INO: u32 = 2;
pub const SUPERBLOCK_OFFSET: u64 = 1024;
pub const SUPERBLOCK_LEN: usize = 1024;
pub const GROUP_DESC_LEN: usize = 32;
pub const GOOD_OLD_INODE_SIZE: usize = 128;
pub const N_DIRECT: usize = 12;

pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const INCOMPAT_FILETYPE: u32 = 0x2;
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
pub const RO_COMPAT_BTREE_DIR: u32 = 0x4;

/// Inode flag: directory has an htree index (readable linearly; dropped on change).
pub const INDEX_FL: u32 = 0x1000;

pub const S_IFMT: u16 = 0xf000;
pub const S_IFREG: u16 = 0x8000;
pub const S_IFDIR: u16 = 0x4000;
pub const S_IFLNK: u16 = 0xa000;

pub const XATTR_MAGIC: u32 = 0xea02_0000;

pub fn le16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

pub fn le32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

pub fn set16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

pub fn set32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

macro_rules! fields {
    ($( $get:ident / $set:ident : $ty:ident @ $off:expr ; )*) => {
        $(
            pub fn $get(&self) -> $ty {
                fields!(@get $ty, &self.raw, $off)
            }
            #[allow(dead_code)]
            pub fn $set(&mut self, v: $ty) {
                fields!(@set $ty, &mut self.raw, $off, v)
            }
        )*
    };
    (@get u16, $b:expr, $off:expr) => { le16($b, $off) };
    (@get u32, $b:expr, $off:expr) => { le32($b, $off) };
    (@set u16, $b:expr, $off:expr, $v:expr) => { set16($b, $off, $v) };
    (@set u32, $b:expr, $off:expr, $v:expr) => { set32($b, $off, $v) };
}

/// The primary superblock (1024 bytes at byte 1024).
pub struct Superblock {
    pub raw: Vec<u8>,
}

impl Superblock {
    fields! {
        inodes_count / set_inodes_count: u32 @ 0;
        blocks_count / set_blocks_count: u32 @ 4;
        r_blocks_count / set_r_blocks_count: u32 @ 8;
        free_blocks / set_free_blocks: u32 @ 12;
        free_inodes / set_free_inodes: u32 @ 16;
        first_data_block / set_first_data_block: u32 @ 20;
        log_block_size / set_log_block_size: u32 @ 24;
        blocks_per_group / set_blocks_per_group: u32 @ 32;
        inodes_per_group / set_inodes_per_group: u32 @ 40;
        mtime / set_mtime: u32 @ 44;
        wtime / set_wtime: u32 @ 48;
        mnt_count / set_mnt_count: u16 @ 52;
        magic / set_magic: u16 @ 56;
        state / set_state: u16 @ 58;
        rev_level / set_rev_level: u32 @ 76;
        first_ino_raw / set_first_ino_raw: u32 @ 84;
        inode_size_raw / set_inode_size_raw: u16 @ 88;
        feature_compat / set_feature_compat: u32 @ 92;
        feature_incompat / set_feature_incompat: u32 @ 96;
        feature_ro_compat / set_feature_ro_compat: u32 @ 100;
        want_extra_isize / set_want_extra_isize: u16 @ 0x15e;
    }

    pub fn inode_size(&self) -> usize {
        if self.rev_level() == 0 {
            GOOD_OLD_INODE_SIZE
        } else {
            self.inode_size_raw() as usize
        }
    }

    pub fn first_ino(&self) -> u32 {
        if self.rev_level() == 0 {
            11
        } else {
            self.first_ino_raw()
        }
    }
}

/// One 32-byte group descriptor.
pub struct GroupDesc<'a> {
    pub raw: &'a [u8],
}

impl GroupDesc<'_> {
    pub fn block_bitmap(&self) -> u32 {
        le32(self.raw, 0)
    }
    pub fn inode_bitmap(&self) -> u32 {
        le32(self.raw, 4)
    }
    pub fn inode_table(&self) -> u32 {
        le32(self.raw, 8)
    }
    pub fn free_blocks(&self) -> u16 {
        le16(self.raw, 12)
    }
    pub fn free_inodes(&self) -> u16 {
        le16(self.raw, 14)
    }
    pub fn used_dirs(&self) -> u16 {
        le16(self.raw, 16)
    }
}

/// Offsets of the mutable group-descriptor counters.
pub const GD_FREE_BLOCKS: usize = 12;
pub const GD_FREE_INODES: usize = 14;
pub const GD_USED_DIRS: usize = 16;

/// One inode, `inode_size` raw bytes.
#[derive(Clone)]
pub struct Inode {
    pub raw: Vec<u8>,
}

impl Inode {
    fields! {
        mode / set_mode: u16 @ 0;
        uid_lo / set_uid_lo: u16 @ 2;
        size_lo / set_size_lo: u32 @ 4;
        atime / set_atime: u32 @ 8;
        ctime / set_ctime: u32 @ 12;
        mtime / set_mtime: u32 @ 16;
        dtime / set_dtime: u32 @ 20;
        gid_lo / set_gid_lo: u16 @ 24;
        links / set_links: u16 @ 26;
        blocks512 / set_blocks512: u32 @ 28;
        flags / set_flags: u32 @ 32;
        file_acl / set_file_acl: u32 @ 104;
        size_hi / set_size_hi: u32 @ 108;
        uid_hi / set_uid_hi: u16 @ 120;
        gid_hi / set_gid_hi: u16 @ 122;
        extra_isize / set_extra_isize: u16 @ 128;
        crtime / set_crtime: u32 @ 144;
    }

    pub fn block(&self, i: usize) -> u32 {
        le32(&self.raw, 40 + 4 * i)
    }

    pub fn set_block(&mut self, i: usize, v: u32) {
        set32(&mut self.raw, 40 + 4 * i, v)
    }

    pub fn kind_bits(&self) -> u16 {
        self.mode() & S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.kind_bits() == S_IFDIR
    }

    pub fn is_reg(&self) -> bool {
        self.kind_bits() == S_IFREG
    }

    /// File size; the high word is the size only for regular files (it is the ACL of
    /// directories on revision 0).
    pub fn size(&self) -> u64 {
        let hi = if self.is_reg() {
            u64::from(self.size_hi())
        } else {
            0
        };
        (hi << 32) | u64::from(self.size_lo())
    }

    pub fn set_size(&mut self, size: u64) {
        self.set_size_lo(size as u32);
        if self.is_reg() {
            self.set_size_hi((size >> 32) as u32);
        }
    }
}
