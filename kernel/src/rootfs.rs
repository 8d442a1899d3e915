//! The mounted filesystems: ubd0's ext2 as root, and any others mounted by the shell under
//! `/mnt/ubdN`. Each is behind its own mutex (one big lock per filesystem, as early Linux
//! had its BKL), so concurrent tasks serialise on it and sleep while it waits for I/O.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::block::ubd::{self, UbdBlock};
use crate::fs::ext2::Ext2;
use crate::fs::FsError;
use crate::sync::Mutex;

crate::lock_class!(ROOTFS_LOCK_CLASS, "rootfs_lock");
crate::lock_class!(MNT_LOCK_CLASS, "mnt_lock");

pub static ROOT: Mutex<Option<Ext2>> = Mutex::new(&ROOTFS_LOCK_CLASS, None);
static MOUNTS: Mutex<Vec<(usize, Ext2)>> = Mutex::new(&MNT_LOCK_CLASS, Vec::new());

fn clock() -> crate::fs::ext2::Clock {
    // Filesystem times are boot time plus uptime, so they replay exactly.
    let boot = crate::boot::boot_time();
    Box::new(move || (boot + crate::time::uptime().0) as u32)
}

fn mount_dev(n: usize) -> Result<Ext2, String> {
    let dev = UbdBlock::new(n).ok_or_else(|| format!("ubd{n}: no such device"))?;
    let fs = Ext2::mount(Box::new(dev), clock()).map_err(|e| format!("ubd{n}: {e}"))?;
    ubd::set_busy(n, true);
    Ok(fs)
}

/// Mounts ubd0 as root.
pub fn mount_root() -> Result<(), String> {
    let fs = mount_dev(0)?;
    let st = fs.statfs();
    crate::printk!(
        "EXT2-fs (ubd0): mounted filesystem, {} blocks of {} bytes, {} free",
        st.blocks,
        st.block_size,
        st.free_blocks
    );
    *ROOT.lock() = Some(fs);
    Ok(())
}

/// Mounts `ubdN` at `/mnt/ubdN`.
pub fn mount(n: usize) -> Result<(), String> {
    if n == 0 || MOUNTS.lock().iter().any(|(d, _)| *d == n) {
        return Err(format!("ubd{n}: already mounted"));
    }
    let fs = mount_dev(n)?;
    MOUNTS.lock().push((n, fs));
    crate::printk!("EXT2-fs (ubd{}): mounted filesystem on /mnt/ubd{}", n, n);
    Ok(())
}

/// Lists mounts as `mount` prints them.
pub fn mounts() -> Vec<String> {
    let mut out = Vec::new();
    if ROOT.lock().is_some() {
        out.push(String::from("/dev/ubd0 on / type ext2 (rw)"));
    }
    for (n, _) in MOUNTS.lock().iter() {
        out.push(format!("/dev/ubd{n} on /mnt/ubd{n} type ext2 (rw)"));
    }
    out
}

/// Runs `f` on the filesystem holding `path`, with the path relative to that filesystem.
pub fn with_fs<R>(
    path: &str,
    f: impl FnOnce(&mut Ext2, &str) -> Result<R, FsError>,
) -> Result<R, String> {
    if let Some(rest) = path.strip_prefix("/mnt/ubd") {
        let (num, sub) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Ok(n) = num.parse::<usize>() {
            let mut mounts = MOUNTS.lock();
            if let Some((_, fs)) = mounts.iter_mut().find(|(d, _)| *d == n) {
                let sub = if sub.is_empty() { "/" } else { sub };
                return f(fs, sub).map_err(|e| format!("{e}"));
            }
        }
    }
    let mut root = ROOT.lock();
    let fs = root
        .as_mut()
        .ok_or_else(|| String::from("no root filesystem mounted (boot with ubd0=IMAGE)"))?;
    f(fs, path).map_err(|e| format!("{e}"))
}

/// Writes every dirty buffer and superblock.
pub fn sync_all() -> Result<(), String> {
    if let Some(fs) = ROOT.lock().as_mut() {
        fs.sync().map_err(|e| format!("ubd0: {e}"))?;
    }
    for (n, fs) in MOUNTS.lock().iter_mut() {
        fs.sync().map_err(|e| format!("ubd{n}: {e}"))?;
    }
    Ok(())
}
