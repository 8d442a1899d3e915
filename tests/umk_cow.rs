//! UML copy-on-write disks: umk writes through a COW file (made by uml_mkcow, or created
//! by umk itself) and never touches the backing file; uml_moo merges the COW file into a
//! new image that e2fsprogs finds clean and that holds what umk wrote.

use std::path::Path;

use testsupport::{
    arg, assert_fsck_clean, debugfs_cat, debugfs_ls, make_ext2, run_umk, script, sha256, tool,
    Scratch,
};

const WRITES: &[&str] = &[
    "echo written through cow > /cowfile",
    "mkdir /cowdir",
    "echo nested > /cowdir/n.txt",
    "rm /etc/motd",
    "stress 2 2",
    "halt",
];

fn make_backing(d: &Scratch) -> std::path::PathBuf {
    let backing = d.path("backing.img");
    make_ext2(
        &backing,
        "16M",
        &[("etc/motd", "backing motd\n"), ("etc/keep", "kept\n")],
    );
    backing
}

/// Boots umk on `ubd0` running the write workload and checks that it succeeded.
fn write_through(d: &Scratch, ubd0: &str) {
    let s = script(d, "writes", WRITES);
    let r = run_umk(&[
        "mem=32M".to_string(),
        format!("ubd0={ubd0}"),
        arg("init", &s),
    ]);
    r.assert_success();
    assert_eq!(
        r.section("stress 2 2"),
        "stress: 2 tasks x 2 rounds: ok\n",
        "{}",
        r.dump()
    );
    for cmd in &WRITES[..4] {
        assert_eq!(r.section(cmd), "", "{cmd} printed something\n{}", r.dump());
    }
}

/// Merges `cow` with uml_moo into `merged` and checks the result holds the workload's
/// changes on top of the backing image.
fn merge_and_check(cow: &Path, merged: &Path) {
    let moo = tool("uml_moo", &[cow, merged]);
    assert!(moo.status.success(), "uml_moo failed\n{}", moo.dump());
    assert_fsck_clean(merged);
    assert_eq!(debugfs_cat(merged, "/cowfile"), "written through cow\n");
    assert_eq!(debugfs_cat(merged, "/cowdir/n.txt"), "nested\n");
    assert_eq!(debugfs_cat(merged, "/etc/keep"), "kept\n");
    assert_eq!(debugfs_ls(merged, "/etc"), [".", "..", "keep"]);
}

/// The backing image is unchanged: same bytes, and still without the workload's files.
fn check_backing_untouched(backing: &Path, hash_before: &str) {
    assert_eq!(
        sha256(backing),
        hash_before,
        "umk modified the backing file"
    );
    assert_fsck_clean(backing);
    assert_eq!(debugfs_cat(backing, "/etc/motd"), "backing motd\n");
    let root = debugfs_ls(backing, "/");
    assert!(
        !root.iter().any(|n| n == "cowfile" || n == "cowdir"),
        "{root:?}"
    );
}

/// A second boot through the COW file sees the first boot's writes.
fn reboot_and_read(d: &Scratch, ubd0: &str) {
    let s = script(d, "reads", &["cat /cowfile", "ls /etc", "halt"]);
    let r = run_umk(&[
        "mem=32M".to_string(),
        format!("ubd0={ubd0}"),
        arg("init", &s),
    ]);
    r.assert_success();
    assert_eq!(r.section("cat /cowfile"), "written through cow\n");
    let etc = r.section("ls /etc");
    assert!(etc.contains(" keep\n") && !etc.contains("motd"), "{etc}");
}

#[test]
fn lone_cow_file_made_by_uml_mkcow() {
    let d = Scratch::new("umk-cow-lone");
    let backing = make_backing(&d);
    let cow = d.path("disk.cow");
    let mk = tool("uml_mkcow", &[&cow, &backing]);
    assert!(mk.status.success(), "uml_mkcow failed\n{}", mk.dump());
    let before = sha256(&backing);
    let cow_s = cow.display().to_string();
    write_through(&d, &cow_s);
    check_backing_untouched(&backing, &before);
    reboot_and_read(&d, &cow_s);
    merge_and_check(&cow, &d.path("merged.img"));
}

#[test]
fn backing_and_cow_pair_made_by_uml_mkcow() {
    let d = Scratch::new("umk-cow-pair");
    let backing = make_backing(&d);
    let cow = d.path("disk.cow");
    let mk = tool("uml_mkcow", &[&cow, &backing]);
    assert!(mk.status.success(), "uml_mkcow failed\n{}", mk.dump());
    let before = sha256(&backing);
    let pair = format!("{},{}", backing.display(), cow.display());
    write_through(&d, &pair);
    check_backing_untouched(&backing, &before);
    reboot_and_read(&d, &pair);
    merge_and_check(&cow, &d.path("merged.img"));
}

#[test]
fn umk_creates_a_missing_cow_file_that_uml_moo_understands() {
    let d = Scratch::new("umk-cow-new");
    let backing = make_backing(&d);
    let cow = d.path("new.cow");
    assert!(!cow.exists());
    let before = sha256(&backing);
    write_through(&d, &format!("{},{}", backing.display(), cow.display()));
    assert!(cow.is_file(), "umk did not create {}", cow.display());
    let cow_len = std::fs::metadata(&cow).unwrap().len();
    assert!(
        cow_len > std::fs::metadata(&backing).unwrap().len(),
        "COW file ({cow_len} bytes) cannot hold the whole disk"
    );
    check_backing_untouched(&backing, &before);
    // The COW file umk made names its backing file, so it also works alone.
    reboot_and_read(&d, &cow.display().to_string());
    merge_and_check(&cow, &d.path("merged.img"));
    // The merged image boots in umk as a plain disk.
    let merged = d.path("merged.img");
    let s = script(&d, "merged", &["cat /cowdir/n.txt", "halt"]);
    let r = run_umk(&["mem=32M".to_string(), arg("ubd0", &merged), arg("init", &s)]);
    r.assert_success();
    assert_eq!(r.section("cat /cowdir/n.txt"), "nested\n");
}

#[test]
fn stale_or_bogus_cow_files_are_refused_at_boot() {
    let d = Scratch::new("umk-cow-bad");
    let backing = make_backing(&d);
    let cow = d.path("disk.cow");
    let mk = tool("uml_mkcow", &[&cow, &backing]);
    assert!(mk.status.success(), "uml_mkcow failed\n{}", mk.dump());
    // The backing file changed after the COW was made (UML detects this by mtime).
    let touch = std::process::Command::new("touch")
        .args(["-d", "2001-02-03 04:05:06"])
        .arg(&backing)
        .status()
        .expect("running touch");
    assert!(touch.success());
    for ubd0 in [
        cow.display().to_string(),
        format!("{},{}", backing.display(), cow.display()),
    ] {
        let r = run_umk(&[format!("ubd0={ubd0}")]);
        assert_eq!(r.status.code(), Some(2), "{}", r.dump());
        assert!(r.stdout.is_empty(), "{}", r.dump());
        assert!(
            r.stderr.contains("ubd0") && r.stderr.contains("mtime"),
            "{}",
            r.dump()
        );
    }
    // A file that is not a COW file at all.
    let junk = d.path("junk.cow");
    std::fs::write(&junk, vec![0x5au8; 8192]).unwrap();
    let r = run_umk(&[format!("ubd0={},{}", backing.display(), junk.display())]);
    assert_eq!(r.status.code(), Some(2), "{}", r.dump());
    assert!(r.stdout.is_empty(), "{}", r.dump());
    assert!(
        r.stderr.contains("junk.cow") && r.stderr.contains("bad magic"),
        "{}",
        r.dump()
    );
}
