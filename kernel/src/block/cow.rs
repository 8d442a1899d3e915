//! Disk images as umk's ubd driver sees them: a plain image (`RawDisk`) or UML's
//! copy-on-write overlay (`CowDisk`), in the exact on-disk format of UML's cow_user.c,
//! so that `uml_mkcow` files open here and `uml_moo` merges what umk wrote.
//!
//! COW file layout (version 3, all integers big-endian, header packed):
//! `magic u32 | version u32 | mtime u32 | size u64 | sectorsize u32 | alignment u32 |
//! cow_format u32 | backing_file [4096]`, then the sector bitmap at the header size
//! rounded up to `alignment` (bit `s % 8` of byte `s / 8`; set = sector `s` lives in the
//! COW file), then the data area at the bitmap end rounded up to `alignment`, where
//! sector `s` sits at `data_offset + s * sectorsize` whether or not it was written.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::backing::BackingFile;
use super::dev::{check_request, BlockDevice, BlockError, SECTOR_SIZE};
use crate::host::Errno;

/// "OOOM" read big-endian; UML calls it MOOO.
pub const COW_MAGIC: u32 = 0x4f4f_4f4d;
/// The only COW version umk reads and writes.
pub const COW_VERSION: u32 = 3;
/// Length of the header's backing-file path field (UML's PATH_LEN_V3).
pub const COW_PATH_LEN: usize = 4096;
/// Bytes of the packed v3 header.
pub const COW_HEADER_LEN: usize = 32 + COW_PATH_LEN;
/// Alignment `uml_mkcow` and UML use for the bitmap and data area.
pub const COW_DEFAULT_ALIGNMENT: u32 = 4096;
/// cow_format value of the (only) bitmap format.
const COW_BITMAP: u32 = 0;

/// Why a disk image could not be opened or created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CowError {
    /// A host call failed while doing `what`.
    Io { what: &'static str, errno: Errno },
    /// The file does not start with the COW magic.
    BadMagic(u32),
    /// A COW version other than 3.
    UnsupportedVersion(u32),
    /// A cow_format other than the bitmap.
    UnsupportedFormat(u32),
    /// A header field that makes no sense; `field` names it.
    BadHeader { field: &'static str, value: u64 },
    /// The backing file's size differs from the one recorded when the COW was made.
    SizeMismatch { header: u64, backing: u64 },
    /// The backing file changed since the COW file was made.
    MtimeMismatch { header: u32, backing: u64 },
    /// The COW file ends before its bitmap does.
    Truncated { len: u64, needed: u64 },
    /// The backing-file path does not fit the header.
    PathTooLong(usize),
}

impl fmt::Display for CowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CowError::Io { what, errno } => write!(f, "COW: {what}: {errno}"),
            CowError::BadMagic(m) => {
                write!(f, "COW: bad magic {m:#010x} (expected {COW_MAGIC:#010x})")
            }
            CowError::UnsupportedVersion(v) => {
                write!(f, "COW: unsupported version {v} (only {COW_VERSION})")
            }
            CowError::UnsupportedFormat(v) => write!(f, "COW: unsupported cow_format {v}"),
            CowError::BadHeader { field, value } => {
                write!(f, "COW: header field {field} has invalid value {value}")
            }
            CowError::SizeMismatch { header, backing } => write!(
                f,
                "COW: backing file is {backing} bytes but the COW header records {header}"
            ),
            CowError::MtimeMismatch { header, backing } => write!(
                f,
                "COW: backing file mtime {backing} differs from the COW header's {header}"
            ),
            CowError::Truncated { len, needed } => {
                write!(f, "COW: file is {len} bytes, its bitmap ends at {needed}")
            }
            CowError::PathTooLong(n) => {
                write!(
                    f,
                    "COW: backing path of {n} bytes exceeds {}",
                    COW_PATH_LEN - 1
                )
            }
        }
    }
}

fn io(what: &'static str) -> impl Fn(Errno) -> CowError {
    move |errno| CowError::Io { what, errno }
}

fn be32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

fn round_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

/// A parsed v3 COW header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CowHeader {
    /// Backing file path as stored (absolute, without the NUL).
    pub backing_file: Vec<u8>,
    /// Backing file mtime when the COW was created (32-bit, as UML stores it).
    pub mtime: u32,
    /// Backing file size in bytes.
    pub size: u64,
    pub sector_size: u32,
    pub alignment: u32,
}

impl CowHeader {
    /// Reads and validates the header at the start of `cow`.
    pub fn read<F: BackingFile>(cow: &mut F) -> Result<CowHeader, CowError> {
        let len = cow.len().map_err(io("stat COW file"))?;
        if len < 8 {
            return Err(CowError::Truncated {
                len,
                needed: COW_HEADER_LEN as u64,
            });
        }
        let mut head = [0u8; 8];
        cow.read_at(0, &mut head).map_err(io("read COW header"))?;
        let magic = be32(&head, 0);
        if magic != COW_MAGIC {
            return Err(CowError::BadMagic(magic));
        }
        let version = be32(&head, 4);
        if version != COW_VERSION {
            return Err(CowError::UnsupportedVersion(version));
        }
        if len < COW_HEADER_LEN as u64 {
            return Err(CowError::Truncated {
                len,
                needed: COW_HEADER_LEN as u64,
            });
        }
        let mut raw = vec![0u8; COW_HEADER_LEN];
        cow.read_at(0, &mut raw).map_err(io("read COW header"))?;
        let h = CowHeader::parse(&raw)?;
        if len < h.bitmap_offset() + h.bitmap_len() {
            return Err(CowError::Truncated {
                len,
                needed: h.bitmap_offset() + h.bitmap_len(),
            });
        }
        Ok(h)
    }

    /// Parses a header from its `COW_HEADER_LEN` raw bytes.
    pub fn parse(raw: &[u8]) -> Result<CowHeader, CowError> {
        let Some(raw) = raw.get(..COW_HEADER_LEN) else {
            return Err(CowError::Truncated {
                len: raw.len() as u64,
                needed: COW_HEADER_LEN as u64,
            });
        };
        let magic = be32(raw, 0);
        if magic != COW_MAGIC {
            return Err(CowError::BadMagic(magic));
        }
        let version = be32(raw, 4);
        if version != COW_VERSION {
            return Err(CowError::UnsupportedVersion(version));
        }
        let sector_size = be32(raw, 20);
        if sector_size as usize != SECTOR_SIZE {
            return Err(CowError::BadHeader {
                field: "sectorsize",
                value: sector_size.into(),
            });
        }
        let alignment = be32(raw, 24);
        if alignment == 0 || !alignment.is_power_of_two() || alignment > (1 << 24) {
            return Err(CowError::BadHeader {
                field: "alignment",
                value: alignment.into(),
            });
        }
        let format = be32(raw, 28);
        if format != COW_BITMAP {
            return Err(CowError::UnsupportedFormat(format));
        }
        let size = be64(raw, 12);
        if size > (1u64 << 56) {
            return Err(CowError::BadHeader {
                field: "size",
                value: size,
            });
        }
        let path = &raw[32..];
        let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
        Ok(CowHeader {
            backing_file: path[..end].to_vec(),
            mtime: be32(raw, 8),
            size,
            sector_size,
            alignment,
        })
    }

    /// The raw header bytes, as UML's write_cow_header lays them out.
    pub fn encode(&self) -> Result<Vec<u8>, CowError> {
        if self.backing_file.len() > COW_PATH_LEN - 1 {
            return Err(CowError::PathTooLong(self.backing_file.len()));
        }
        let mut raw = vec![0u8; COW_HEADER_LEN];
        raw[0..4].copy_from_slice(&COW_MAGIC.to_be_bytes());
        raw[4..8].copy_from_slice(&COW_VERSION.to_be_bytes());
        raw[8..12].copy_from_slice(&self.mtime.to_be_bytes());
        raw[12..20].copy_from_slice(&self.size.to_be_bytes());
        raw[20..24].copy_from_slice(&self.sector_size.to_be_bytes());
        raw[24..28].copy_from_slice(&self.alignment.to_be_bytes());
        raw[28..32].copy_from_slice(&COW_BITMAP.to_be_bytes());
        raw[32..32 + self.backing_file.len()].copy_from_slice(&self.backing_file);
        Ok(raw)
    }

    /// Backing sectors covered by the bitmap.
    pub fn sectors(&self) -> u64 {
        self.size.div_ceil(u64::from(self.sector_size))
    }

    pub fn bitmap_offset(&self) -> u64 {
        round_up(COW_HEADER_LEN as u64, self.alignment.into())
    }

    pub fn bitmap_len(&self) -> u64 {
        self.sectors().div_ceil(8)
    }

    pub fn data_offset(&self) -> u64 {
        round_up(
            self.bitmap_offset() + self.bitmap_len(),
            self.alignment.into(),
        )
    }
}

/// A plain disk image: sector `s` is at byte `s * 512` of the file.
pub struct RawDisk<F: BackingFile> {
    file: F,
    sectors: u64,
}

impl<F: BackingFile> RawDisk<F> {
    /// Wraps an image file; a trailing partial sector is not addressable.
    pub fn open(file: F) -> Result<RawDisk<F>, CowError> {
        let len = file.len().map_err(io("stat disk image"))?;
        Ok(RawDisk {
            file,
            sectors: len / SECTOR_SIZE as u64,
        })
    }

    pub fn into_inner(self) -> F {
        self.file
    }
}

impl<F: BackingFile> BlockDevice for RawDisk<F> {
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(sector, buf.len(), self.sectors)?;
        self.file
            .read_at(sector * SECTOR_SIZE as u64, buf)
            .map_err(|errno| BlockError::Io { sector, errno })
    }

    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(sector, buf.len(), self.sectors)?;
        self.file
            .write_at(sector * SECTOR_SIZE as u64, buf)
            .map_err(|errno| BlockError::Io { sector, errno })
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }
}

/// A COW overlay: writes go to the COW file, reads come from it for sectors written
/// since the overlay was made and from the (never written) backing file otherwise.
pub struct CowDisk<F: BackingFile> {
    cow: F,
    backing: F,
    header: CowHeader,
    /// In-memory copy of the on-disk bitmap; every change is written through.
    bitmap: Vec<u8>,
    sectors: u64,
}

impl<F: BackingFile> CowDisk<F> {
    /// Opens an existing COW file over its backing file, checking that the backing file
    /// is still the one the COW was made for (same size and mtime, as UML does).
    pub fn open(mut cow: F, backing: F) -> Result<CowDisk<F>, CowError> {
        let header = CowHeader::read(&mut cow)?;
        let blen = backing.len().map_err(io("stat backing file"))?;
        if blen != header.size {
            return Err(CowError::SizeMismatch {
                header: header.size,
                backing: blen,
            });
        }
        let mtime = backing.mtime().map_err(io("stat backing file"))?;
        // UML keeps only the low 32 bits of the mtime.
        if mtime as u32 != header.mtime {
            return Err(CowError::MtimeMismatch {
                header: header.mtime,
                backing: mtime,
            });
        }
        let mut bitmap = vec![0u8; header.bitmap_len() as usize];
        cow.read_at(header.bitmap_offset(), &mut bitmap)
            .map_err(io("read COW bitmap"))?;
        let sectors = header.size / SECTOR_SIZE as u64;
        Ok(CowDisk {
            cow,
            backing,
            header,
            bitmap,
            sectors,
        })
    }

    /// Makes `cow` (an empty, writable file) a new COW overlay for `backing`, exactly as
    /// `uml_mkcow` would. `backing_path` is recorded in the header and should be
    /// absolute: UML and `uml_moo` open the backing file by it.
    pub fn create(mut cow: F, backing: F, backing_path: &[u8]) -> Result<CowDisk<F>, CowError> {
        let size = backing.len().map_err(io("stat backing file"))?;
        let mtime = backing.mtime().map_err(io("stat backing file"))?;
        let header = CowHeader {
            backing_file: backing_path.to_vec(),
            mtime: mtime as u32,
            size,
            sector_size: SECTOR_SIZE as u32,
            alignment: COW_DEFAULT_ALIGNMENT,
        };
        let raw = header.encode()?;
        cow.write_at(0, &raw).map_err(io("write COW header"))?;
        let bitmap = vec![0u8; header.bitmap_len() as usize];
        cow.write_at(header.bitmap_offset(), &bitmap)
            .map_err(io("write COW bitmap"))?;
        // Like init_cow_file: one byte at the very end sets the file length, leaving
        // the data area sparse.
        let last = (header.data_offset() + size).saturating_sub(1);
        if last >= header.bitmap_offset() + header.bitmap_len() {
            cow.write_at(last, &[0]).map_err(io("extend COW file"))?;
        }
        let sectors = size / SECTOR_SIZE as u64;
        Ok(CowDisk {
            cow,
            backing,
            header,
            bitmap,
            sectors,
        })
    }

    pub fn header(&self) -> &CowHeader {
        &self.header
    }

    /// Whether sector `s` has been written into the COW file.
    pub fn is_cowed(&self, s: u64) -> bool {
        self.bitmap
            .get((s / 8) as usize)
            .is_some_and(|b| b & (1 << (s % 8)) != 0)
    }

    pub fn into_inner(self) -> (F, F) {
        (self.cow, self.backing)
    }

    fn data_pos(&self, sector: u64) -> u64 {
        self.header.data_offset() + sector * SECTOR_SIZE as u64
    }
}

impl<F: BackingFile> BlockDevice for CowDisk<F> {
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let count = check_request(sector, buf.len(), self.sectors)?;
        // One host read per run of sectors that live in the same file.
        let mut i = 0;
        while i < count {
            let s = sector + i;
            let cowed = self.is_cowed(s);
            let mut n = 1;
            while i + n < count && self.is_cowed(s + n) == cowed {
                n += 1;
            }
            let lo = (i as usize) * SECTOR_SIZE;
            let hi = lo + (n as usize) * SECTOR_SIZE;
            let chunk = &mut buf[lo..hi];
            let r = if cowed {
                let pos = self.data_pos(s);
                self.cow.read_at(pos, chunk)
            } else {
                self.backing.read_at(s * SECTOR_SIZE as u64, chunk)
            };
            r.map_err(|errno| BlockError::Io { sector: s, errno })?;
            i += n;
        }
        Ok(())
    }

    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        let count = check_request(sector, buf.len(), self.sectors)?;
        if count == 0 {
            return Ok(());
        }
        let pos = self.data_pos(sector);
        self.cow
            .write_at(pos, buf)
            .map_err(|errno| BlockError::Io { sector, errno })?;
        // Data first, then the bitmap: a crash in between loses the write but never
        // exposes stale COW data.
        for s in sector..sector + count {
            if let Some(b) = self.bitmap.get_mut((s / 8) as usize) {
                *b |= 1 << (s % 8);
            }
        }
        let first = (sector / 8) as usize;
        let last = ((sector + count - 1) / 8) as usize;
        let off = self.header.bitmap_offset() + first as u64;
        self.cow
            .write_at(off, &self.bitmap[first..=last])
            .map_err(|errno| BlockError::Io { sector, errno })
    }

    fn sectors(&self) -> u64 {
        self.sectors
    }
}

/// Either kind of disk image, so the driver handles both alike.
pub enum Disk<F: BackingFile> {
    Raw(RawDisk<F>),
    Cow(CowDisk<F>),
}

impl<F: BackingFile> BlockDevice for Disk<F> {
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        match self {
            Disk::Raw(d) => d.read_sectors(sector, buf),
            Disk::Cow(d) => d.read_sectors(sector, buf),
        }
    }

    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        match self {
            Disk::Raw(d) => d.write_sectors(sector, buf),
            Disk::Cow(d) => d.write_sectors(sector, buf),
        }
    }

    fn sectors(&self) -> u64 {
        match self {
            Disk::Raw(d) => d.sectors(),
            Disk::Cow(d) => d.sectors(),
        }
    }
}

#[cfg(test)]
mod tests;
