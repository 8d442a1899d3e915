//! The block-device interface the filesystems sit on: 512-byte sectors addressed by
//! number, and the errors a device can report.

use core::fmt;

use crate::host::Errno;

/// Size of one sector, the unit of every `BlockDevice` transfer.
pub const SECTOR_SIZE: usize = 512;

/// Why a block transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The host refused the transfer that started at `sector`.
    Io { sector: u64, errno: Errno },
    /// The request reaches past the end of the device.
    OutOfRange {
        sector: u64,
        count: u64,
        sectors: u64,
    },
    /// The buffer is not a whole number of sectors.
    Misaligned { len: usize },
    /// The device cannot be written.
    ReadOnly,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Io { sector, errno } => {
                write!(f, "I/O error at sector {sector}: {errno}")
            }
            BlockError::OutOfRange {
                sector,
                count,
                sectors,
            } => write!(
                f,
                "sectors {sector}..{} are beyond the end of the device ({sectors} sectors)",
                sector.saturating_add(*count)
            ),
            BlockError::Misaligned { len } => {
                write!(
                    f,
                    "transfer of {len} bytes is not a multiple of {SECTOR_SIZE}"
                )
            }
            BlockError::ReadOnly => write!(f, "device is read-only"),
        }
    }
}

/// A disk of 512-byte sectors. Calls may block (the ubd driver sleeps on completion).
pub trait BlockDevice {
    /// Fills `buf` (a whole number of sectors) starting at `sector`.
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `buf` (a whole number of sectors) starting at `sector`.
    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError>;
    /// Device size in sectors.
    fn sectors(&self) -> u64;
}

/// Validates a transfer of `len` bytes at `sector` on a device of `sectors` sectors and
/// returns its length in sectors.
pub fn check_request(sector: u64, len: usize, sectors: u64) -> Result<u64, BlockError> {
    if !len.is_multiple_of(SECTOR_SIZE) {
        return Err(BlockError::Misaligned { len });
    }
    let count = (len / SECTOR_SIZE) as u64;
    match sector.checked_add(count) {
        Some(end) if end <= sectors => Ok(count),
        _ => Err(BlockError::OutOfRange {
            sector,
            count,
            sectors,
        }),
    }
}
