//! ext2 tests against e2fsprogs: images made by `mke2fs -d`, checked after our writes by
//! `e2fsck -fn` and read back with `debugfs`.

use super::*;
use crate::block::dev::{check_request, BlockError};
use crate::host::Errno;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::string::ToString;

/// A disk image file as a block device.
struct FileDev {
    file: File,
    sectors: u64,
}

impl BlockDevice for FileDev {
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(sector, buf.len(), self.sectors)?;
        self.file
            .read_exact_at(buf, sector * 512)
            .map_err(|_| BlockError::Io {
                sector,
                errno: Errno(5),
            })
    }
    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(sector, buf.len(), self.sectors)?;
        self.file
            .write_all_at(buf, sector * 512)
            .map_err(|_| BlockError::Io {
                sector,
                errno: Errno(5),
            })
    }
    fn sectors(&self) -> u64 {
        self.sectors
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("umk-ext2-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("src")).unwrap();
    d
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn mkfs(d: &Path, block_size: u32, size: &str) -> PathBuf {
    let img = d.join("img");
    let out = Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext2",
            "-b",
            &block_size.to_string(),
            "-d",
        ])
        .arg(d.join("src"))
        .arg(&img)
        .arg(size)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

fn mount(img: &Path) -> Result<Ext2, FsError> {
    let file = OpenOptions::new().read(true).write(true).open(img).unwrap();
    let sectors = file.metadata().unwrap().len() / 512;
    // A small cache so that eviction and write-back are exercised.
    Ext2::mount_with_cache(
        Box::new(FileDev { file, sectors }),
        Box::new(|| 1_700_000_000),
        16,
    )
}

fn fsck(img: &Path) {
    let out = Command::new("e2fsck").arg("-fn").arg(img).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0) && !text.contains('?'),
        "e2fsck found problems:\n{text}"
    );
}

fn debugfs_cat(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn names(fs: &mut Ext2, path: &str) -> Vec<String> {
    let mut v: Vec<String> = fs
        .read_dir(path)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    v.sort();
    v
}

#[test]
fn reads_mke2fs_tree() {
    let d = scratch("read");
    let src = d.join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello, umk\n").unwrap();
    std::fs::write(src.join("sub/deeper/big"), pattern(300_000, 1)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    for i in 0..150 {
        std::fs::write(
            src.join(format!("sub/file-with-a-longish-name-{i:03}")),
            format!("{i}"),
        )
        .unwrap();
    }
    let img = mkfs(&d, 1024, "8M");
    let mut fs = mount(&img).unwrap();
    assert_eq!(
        names(&mut fs, "/"),
        [".", "..", "empty", "hello.txt", "link", "lost+found", "sub"]
    );
    assert_eq!(fs.read_file("/hello.txt").unwrap(), b"hello, umk\n");
    assert_eq!(fs.read_file("empty").unwrap(), b"");
    assert!(fs.read_file("/sub/deeper/big").unwrap() == pattern(300_000, 1));
    assert_eq!(
        fs.read_file("/sub/file-with-a-longish-name-149").unwrap(),
        b"149"
    );
    assert_eq!(fs.read_dir("/sub").unwrap().len(), 153);
    assert_eq!(fs.read_link("/link").unwrap(), b"hello.txt");
    let st = fs.stat("/sub/deeper/big").unwrap();
    assert_eq!(
        (st.kind, st.size, st.links),
        (FileKind::Regular, 300_000, 1)
    );
    assert_eq!(fs.stat("/sub").unwrap().kind, FileKind::Directory);
    let e = fs
        .read_dir("/sub")
        .unwrap()
        .into_iter()
        .find(|e| e.name == "deeper")
        .unwrap();
    assert_eq!(e.kind, FileKind::Directory);

    assert_eq!(
        fs.read_file("/nope"),
        Err(FsError::NotFound("/nope".into()))
    );
    assert_eq!(
        fs.read_file("/sub/nope/x"),
        Err(FsError::NotFound("/sub/nope".into()))
    );
    assert_eq!(
        fs.read_dir("/hello.txt/x"),
        Err(FsError::NotADirectory("/hello.txt".into()))
    );
    assert_eq!(
        fs.read_dir("/hello.txt"),
        Err(FsError::NotADirectory("/hello.txt".into()))
    );
    assert_eq!(
        fs.read_file("/sub"),
        Err(FsError::IsADirectory("/sub".into()))
    );
    assert_eq!(
        FsError::NotFound("/nope".into()).to_string(),
        "/nope: no such file or directory"
    );
    drop(fs);
    fsck(&img);
    let _ = std::fs::remove_dir_all(&d);
}

fn write_workload(block_size: u32) {
    let d = scratch(&format!("write{block_size}"));
    std::fs::write(d.join("src/old"), pattern(40_000, 9)).unwrap();
    let img = mkfs(&d, block_size, "16M");
    let mut fs = mount(&img).unwrap();
    let free0 = fs.statfs();
    let bs = block_size as usize;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("/small", b"tiny".to_vec()),
        ("/multi", pattern(3 * bs + 17, 2)),
        ("/indirect", pattern(13 * bs + 7, 3)),
        ("/double", pattern((12 + bs / 4 + 5) * bs + 100, 4)),
    ];
    for (p, data) in &files {
        fs.write_file(p, data, false).unwrap();
    }
    for (p, data) in &files {
        assert!(fs.read_file(p).unwrap() == *data, "{p}");
    }
    // Overwrite truncates: the old 40 KB file becomes 5 bytes and frees its blocks.
    let before = fs.statfs().free_blocks;
    fs.write_file("/old", b"short", false).unwrap();
    assert!(fs.statfs().free_blocks > before);
    fs.write_file("/old", b" and appended", true).unwrap();
    let tail = pattern(2 * bs, 5);
    fs.write_file("/old", &tail, true).unwrap();
    let mut want = b"short and appended".to_vec();
    want.extend_from_slice(&tail);
    assert_eq!(fs.read_file("/old").unwrap(), want);

    fs.mkdir("/d").unwrap();
    fs.mkdir("/d/e").unwrap();
    assert_eq!(fs.mkdir("/d"), Err(FsError::Exists("/d".into())));
    assert_eq!(fs.stat("/d").unwrap().links, 3);
    fs.write_file("/d/e/f", b"nested", false).unwrap();
    assert_eq!(fs.rmdir("/d"), Err(FsError::NotEmpty("/d".into())));
    assert_eq!(
        fs.rmdir("/d/e/f"),
        Err(FsError::NotADirectory("/d/e/f".into()))
    );
    assert_eq!(fs.unlink("/d"), Err(FsError::IsADirectory("/d".into())));
    assert_eq!(
        fs.write_file("/d", b"x", false),
        Err(FsError::IsADirectory("/d".into()))
    );
    assert_eq!(
        fs.write_file("/small/x", b"x", false),
        Err(FsError::NotADirectory("/small".into()))
    );
    assert_eq!(fs.unlink("/d/zz"), Err(FsError::NotFound("/d/zz".into())));
    assert_eq!(fs.mkdir("/"), Err(FsError::InvalidPath("/".into())));
    // Enough entries to spill the directory into more blocks, then remove half.
    for i in 0..(bs / 16) {
        fs.write_file(
            &format!("/d/entry-number-{i:04}"),
            &pattern(i, i as u32),
            false,
        )
        .unwrap();
    }
    for i in (0..(bs / 16)).step_by(2) {
        fs.unlink(&format!("/d/entry-number-{i:04}")).unwrap();
    }
    assert_eq!(fs.read_dir("/d").unwrap().len(), 3 + bs / 32);
    fs.mkdir("/gone").unwrap();
    fs.write_file("/gone/x", &pattern(5 * bs, 6), false)
        .unwrap();
    fs.unlink("/gone/x").unwrap();
    fs.rmdir("/gone").unwrap();
    assert_eq!(fs.stat("/gone"), Err(FsError::NotFound("/gone".into())));
    fs.sync().unwrap();
    fsck(&img);

    for (p, data) in &files {
        assert!(debugfs_cat(&img, p) == *data, "debugfs cat {p}");
    }
    assert_eq!(debugfs_cat(&img, "/d/e/f"), b"nested");
    assert_eq!(debugfs_cat(&img, "/old"), want);

    // Deleting everything returns the free counts to what they were.
    for (p, _) in &files {
        fs.unlink(p).unwrap();
    }
    fs.unlink("/d/e/f").unwrap();
    fs.rmdir("/d/e").unwrap();
    for i in (1..(bs / 16)).step_by(2) {
        fs.unlink(&format!("/d/entry-number-{i:04}")).unwrap();
    }
    fs.write_file("/old", &pattern(40_000, 9), false).unwrap();
    let after = fs.statfs();
    // "/d" keeps its grown directory blocks, as in Linux ext2.
    let d_blocks = fs.stat("/d").unwrap().blocks / (bs as u64 / 512);
    assert_eq!(after.free_blocks + d_blocks, free0.free_blocks);
    assert_eq!(after.free_inodes + 1, free0.free_inodes);
    let dev = fs.unmount().unwrap();
    drop(dev);
    fsck(&img);
    let mut fs = mount(&img).unwrap();
    assert!(fs.read_file("/old").unwrap() == pattern(40_000, 9));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn write_1k_blocks() {
    write_workload(1024);
}

#[test]
fn write_4k_blocks() {
    write_workload(4096);
}

#[test]
fn full_disk_is_no_space_and_stays_consistent() {
    let d = scratch("full");
    let img = mkfs(&d, 1024, "1M");
    let mut fs = mount(&img).unwrap();
    let free = fs.statfs().free_blocks as usize;
    let r = fs.write_file("/huge", &pattern((free + 10) * 1024, 7), false);
    assert_eq!(r, Err(FsError::NoSpace));
    assert_eq!(fs.statfs().free_blocks, 0);
    assert_eq!(fs.mkdir("/dir"), Err(FsError::NoSpace));
    fs.sync().unwrap();
    fsck(&img);
    fs.unlink("/huge").unwrap();
    assert_eq!(fs.statfs().free_blocks as usize, free);
    fs.write_file("/ok", b"fits again", false).unwrap();
    fs.sync().unwrap();
    fsck(&img);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_images_are_refused() {
    let d = scratch("bad");
    let img = mkfs(&d, 1024, "2M");
    let mut raw = std::fs::read(&img).unwrap();
    raw[1024 + 56] = 0; // superblock magic
    let bad = d.join("bad");
    std::fs::write(&bad, &raw).unwrap();
    assert!(matches!(mount(&bad), Err(FsError::Corrupt { what, .. }) if what.contains("magic")));

    let e4 = d.join("e4");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&e4)
        .arg("4M")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = mount(&e4).err().unwrap();
    assert!(matches!(err, FsError::Unsupported(_)), "{err}");

    let e2 = d.join("e2");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-O", "extent"])
        .arg(&e2)
        .arg("4M")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = mount(&e2).err().unwrap();
    assert_eq!(err, FsError::Unsupported("extents".into()));

    // A directory entry with an impossible rec_len is Corrupt, not a panic.
    let mut fs = mount(&img).unwrap();
    fs.write_file("/f", b"x", false).unwrap();
    fs.unmount().unwrap();
    let out = Command::new("debugfs")
        .arg("-R")
        .arg("blocks /")
        .arg(&img)
        .output()
        .unwrap();
    let root_blk: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let mut raw = std::fs::read(&img).unwrap();
    raw[root_blk as usize * 1024 + 4] = 3; // "." rec_len = 3
    std::fs::write(&img, &raw).unwrap();
    let mut fs = mount(&img).unwrap();
    assert!(matches!(
        fs.read_dir("/"),
        Err(FsError::Corrupt {
            what: "directory entry rec_len",
            ..
        })
    ));
    assert!(matches!(fs.read_file("/f"), Err(FsError::Corrupt { .. })));
    let _ = std::fs::remove_dir_all(&d);
}
