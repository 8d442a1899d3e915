//! COW format tests against the real tools: `uml_mkcow` and `uml_moo` (uml-utilities).

use super::*;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("umk-cow-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(31)
                .wrapping_add(seed ^ (i >> 9) as u8)
        })
        .collect()
}

/// Compares without dumping megabytes: reports lengths and the first difference.
fn same(a: &[u8], b: &[u8], what: &str) {
    let first = a.iter().zip(b).position(|(x, y)| x != y);
    assert!(
        a.len() == b.len() && first.is_none(),
        "{what}: lengths {} vs {}, first difference at {first:?}",
        a.len(),
        b.len()
    );
}

fn rw(p: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(p).unwrap()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const SECTORS: usize = 100;

fn write_through(disk: &mut CowDisk<File>, expect: &mut [u8]) {
    let writes: [(u64, usize, u8); 3] = [(3, 3, 7), (99, 1, 9), (8, 16, 11)];
    for (s, n, seed) in writes {
        let data = pattern(n * 512, seed);
        disk.write_sectors(s, &data).unwrap();
        expect[s as usize * 512..][..data.len()].copy_from_slice(&data);
    }
    let mut all = vec![0u8; SECTORS * 512];
    disk.read_sectors(0, &mut all).unwrap();
    same(&all, expect, "read back");
    assert!(disk.is_cowed(3) && disk.is_cowed(5) && !disk.is_cowed(6) && disk.is_cowed(99));
}

#[test]
fn uml_mkcow_file_opens_and_merges_with_uml_moo() {
    let d = scratch_dir("mkcow");
    let (b, c, m) = (d.join("backing"), d.join("cow"), d.join("merged"));
    let base = pattern(SECTORS * 512, 1);
    std::fs::write(&b, &base).unwrap();
    run(Command::new("uml_mkcow").arg(&c).arg(&b));

    let mut disk = CowDisk::open(rw(&c), File::open(&b).unwrap()).unwrap();
    assert_eq!(disk.sectors(), SECTORS as u64);
    assert_eq!(disk.header().backing_file, b.as_os_str().as_encoded_bytes());
    let mut all = vec![0u8; SECTORS * 512];
    disk.read_sectors(0, &mut all).unwrap();
    same(&all, &base, "initial read");

    let mut expect = base.clone();
    write_through(&mut disk, &mut expect);
    drop(disk);
    // Reopening sees the persisted bitmap.
    let mut disk = CowDisk::open(rw(&c), File::open(&b).unwrap()).unwrap();
    disk.read_sectors(0, &mut all).unwrap();
    same(&all, &expect, "reopened read");

    run(Command::new("uml_moo").arg(&c).arg(&m));
    same(&std::fs::read(&m).unwrap(), &expect, "merged");
    same(&std::fs::read(&b).unwrap(), &base, "backing untouched");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn created_cow_matches_uml_mkcow_and_uml_moo_accepts_it() {
    let d = scratch_dir("create");
    let (b, c, c2, m) = (
        d.join("backing"),
        d.join("cow"),
        d.join("cow2"),
        d.join("merged"),
    );
    let base = pattern(SECTORS * 512, 2);
    std::fs::write(&b, &base).unwrap();
    let mut disk = CowDisk::create(
        File::create(&c).unwrap(),
        File::open(&b).unwrap(),
        b.as_os_str().as_encoded_bytes(),
    )
    .unwrap();
    run(Command::new("uml_mkcow").arg(&c2).arg(&b));
    let theirs = CowHeader::read(&mut File::open(&c2).unwrap()).unwrap();
    assert_eq!(*disk.header(), theirs);
    assert_eq!(
        std::fs::metadata(&c).unwrap().len(),
        std::fs::metadata(&c2).unwrap().len()
    );

    let mut expect = base.clone();
    // `create` hands back a disk with a write-only file; reopen read-write for reads.
    drop(disk);
    disk = CowDisk::open(rw(&c), File::open(&b).unwrap()).unwrap();
    write_through(&mut disk, &mut expect);
    drop(disk);
    run(Command::new("uml_moo").arg(&c).arg(&m));
    same(&std::fs::read(&m).unwrap(), &expect, "merged");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_headers_are_typed_errors() {
    let d = scratch_dir("bad");
    let (b, c) = (d.join("backing"), d.join("cow"));
    std::fs::write(&b, pattern(64 * 512, 3)).unwrap();
    run(Command::new("uml_mkcow").arg(&c).arg(&b));
    let good = std::fs::read(&c).unwrap();
    let open = |bytes: &[u8]| {
        std::fs::write(&c, bytes).unwrap();
        CowDisk::open(rw(&c), File::open(&b).unwrap()).map(|_| ())
    };
    assert_eq!(open(&good), Ok(()));

    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(open(&bad), Err(CowError::BadMagic(_))));
    let mut bad = good.clone();
    bad[7] = 2;
    assert_eq!(open(&bad), Err(CowError::UnsupportedVersion(2)));
    let mut bad = good.clone();
    bad[26] = 0x13; // alignment not a power of two
    assert!(matches!(
        open(&bad),
        Err(CowError::BadHeader {
            field: "alignment",
            ..
        })
    ));
    assert!(matches!(
        open(&good[..100]),
        Err(CowError::Truncated { .. })
    ));
    assert!(matches!(open(&[]), Err(CowError::Truncated { .. })));

    // A backing file that changed size is refused.
    std::fs::write(&c, &good).unwrap();
    std::fs::write(&b, pattern(65 * 512, 3)).unwrap();
    let e = CowDisk::open(rw(&c), File::open(&b).unwrap())
        .err()
        .unwrap();
    assert_eq!(
        e,
        CowError::SizeMismatch {
            header: 64 * 512,
            backing: 65 * 512
        }
    );
    assert!(e.to_string().contains("33280"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn raw_disk_and_range_checks() {
    let d = scratch_dir("raw");
    let p = d.join("img");
    std::fs::write(&p, pattern(8 * 512, 4)).unwrap();
    let mut disk = Disk::Raw(RawDisk::open(rw(&p)).unwrap());
    assert_eq!(disk.sectors(), 8);
    let data = pattern(1024, 5);
    disk.write_sectors(6, &data).unwrap();
    let mut back = vec![0u8; 1024];
    disk.read_sectors(6, &mut back).unwrap();
    same(&back, &data, "raw");
    assert!(matches!(
        disk.read_sectors(7, &mut back),
        Err(BlockError::OutOfRange { .. })
    ));
    assert_eq!(
        disk.read_sectors(0, &mut back[..100]),
        Err(BlockError::Misaligned { len: 100 })
    );
    let _ = std::fs::remove_dir_all(&d);
}
