//! Filesystems: the types every filesystem shares (errors, directory entries, stat
//! results), the buffer cache of filesystem blocks, and the ext2 implementation.

pub mod bcache;
pub mod ext2;

use alloc::string::String;
use core::fmt;

use crate::block::dev::BlockError;

/// Why a filesystem operation failed. Paths are the ones the caller passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsError {
    NotFound(String),
    NotADirectory(String),
    IsADirectory(String),
    Exists(String),
    NotEmpty(String),
    /// A path that names no file (empty, "/", or ending in "." or "..") where one is needed.
    InvalidPath(String),
    NameTooLong(String),
    /// The operation is not supported on this kind of file (e.g. writing a device node).
    NotRegular(String),
    TooManyLinks(String),
    FileTooBig,
    NoSpace,
    /// On-disk data makes no sense: `what` names it, `block` is where it was found.
    Corrupt {
        what: &'static str,
        block: u64,
    },
    /// An inode number outside the filesystem.
    BadInode(u32),
    /// The image uses a feature this implementation does not handle.
    Unsupported(String),
    Io(BlockError),
}

impl From<BlockError> for FsError {
    fn from(e: BlockError) -> FsError {
        FsError::Io(e)
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NotFound(p) => write!(f, "{p}: no such file or directory"),
            FsError::NotADirectory(p) => write!(f, "{p}: not a directory"),
            FsError::IsADirectory(p) => write!(f, "{p}: is a directory"),
            FsError::Exists(p) => write!(f, "{p}: file exists"),
            FsError::NotEmpty(p) => write!(f, "{p}: directory not empty"),
            FsError::InvalidPath(p) => write!(f, "{p:?}: invalid path for this operation"),
            FsError::NameTooLong(p) => write!(f, "{p}: file name too long"),
            FsError::NotRegular(p) => write!(f, "{p}: not a regular file"),
            FsError::TooManyLinks(p) => write!(f, "{p}: too many links"),
            FsError::FileTooBig => write!(f, "file too big for the block map"),
            FsError::NoSpace => write!(f, "no space left on device"),
            FsError::Corrupt { what, block } => {
                write!(f, "filesystem corrupt: bad {what} (block {block})")
            }
            FsError::BadInode(i) => write!(f, "filesystem corrupt: bad inode number {i}"),
            FsError::Unsupported(feat) => write!(f, "unsupported filesystem feature: {feat}"),
            FsError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// What kind of file an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Unknown,
}

/// One name in a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub inode: u32,
    pub kind: FileKind,
    pub size: u64,
}

/// Metadata of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub inode: u32,
    pub kind: FileKind,
    /// Permission bits and file type, as in st_mode.
    pub mode: u16,
    pub links: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Space used, in 512-byte units (st_blocks).
    pub blocks: u64,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
}

/// Whole-filesystem usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub block_size: u32,
    pub blocks: u64,
    pub free_blocks: u64,
    /// Free blocks kept for root; included in `free_blocks`.
    pub reserved_blocks: u64,
    pub inodes: u64,
    pub free_inodes: u64,
}
