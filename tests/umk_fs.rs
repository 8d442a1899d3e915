//! umk's ext2 driver against the host's e2fsprogs: what umk writes, e2fsck finds clean
//! and debugfs reads back byte for byte; what mke2fs wrote (including files that need
//! indirect blocks), umk reads back exactly.

use testsupport::{
    arg, assert_fsck_clean, debugfs, debugfs_cat, debugfs_errors, debugfs_ls, make_ext2, run_umk,
    script, Scratch,
};

/// `n` distinct lines of `width` characters (plus newline), so a misplaced block shows.
fn numbered_lines(n: usize, width: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!("{i:05}-{}", "abcdefghijklmnopqrstuvwxyz".repeat(4))
                .chars()
                .take(width)
                .collect()
        })
        .collect()
}

#[test]
fn files_written_by_umk_are_clean_ext2_for_e2fsprogs() {
    let d = Scratch::new("umk-fs-write");
    let img = d.path("disk.img");
    make_ext2(
        &img,
        "16M",
        &[
            ("etc/motd", "from mke2fs\n"),
            ("old/victim.txt", "remove me\n"),
        ],
    );

    // 200 lines of 80 bytes + newline: 16200 bytes, past the 12 direct 1 KiB blocks.
    let big = numbered_lines(200, 80);
    let mut lines: Vec<String> = vec![
        "echo hello from umk > /hello.txt".into(),
        "echo first > /notes".into(),
        "echo second >> /notes".into(),
        "echo third >> /notes".into(),
        "echo overwritten > /over".into(),
        "echo replaced > /over".into(),
        "mkdir /newdir".into(),
        "mkdir /newdir/sub".into(),
        "echo inner file > /newdir/sub/inner.txt".into(),
        "rm /old/victim.txt".into(),
        "echo temporary > /tmpfile".into(),
        "rm /tmpfile".into(),
        "mkdir /gone".into(),
        "rmdir /gone".into(),
        "stress 4 3".into(),
    ];
    lines.push(format!("echo {} > /big.txt", big[0]));
    lines.extend(big[1..].iter().map(|l| format!("echo {l} >> /big.txt")));
    lines.extend([
        "cat /notes".into(),
        "ls /newdir".into(),
        "sync".into(),
        "halt".into(),
    ]);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let s = script(&d, "init", &refs);
    let r = run_umk(&["mem=32M".to_string(), arg("ubd0", &img), arg("init", &s)]);
    r.assert_success();
    assert_eq!(
        r.section("stress 4 3"),
        "stress: 4 tasks x 3 rounds: ok\n",
        "{}",
        r.dump()
    );
    assert_eq!(r.section("cat /notes"), "first\nsecond\nthird\n");
    assert!(r.section("ls /newdir").contains(" sub\n"), "{}", r.dump());
    assert!(
        !["echo:", "mkdir:", "rm:", "rmdir:", "sync:"]
            .iter()
            .any(|e| r.stdout.contains(e)),
        "a command failed\n{}",
        r.dump()
    );

    assert_fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/hello.txt"), "hello from umk\n");
    assert_eq!(debugfs_cat(&img, "/notes"), "first\nsecond\nthird\n");
    assert_eq!(debugfs_cat(&img, "/over"), "replaced\n");
    assert_eq!(debugfs_cat(&img, "/newdir/sub/inner.txt"), "inner file\n");
    assert_eq!(debugfs_cat(&img, "/etc/motd"), "from mke2fs\n");
    let expected_big: String = big.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(expected_big.len(), 16200);
    let got_big = debugfs_cat(&img, "/big.txt");
    assert!(
        got_big == expected_big,
        "big.txt differs: {} bytes, expected {}",
        got_big.len(),
        expected_big.len()
    );
    let stat = debugfs(&img, "stat /big.txt");
    assert!(
        stat.stdout.contains("(IND)"),
        "big.txt should use an indirect block\n{}",
        stat.dump()
    );

    assert_eq!(debugfs_ls(&img, "/newdir"), [".", "..", "sub"]);
    assert_eq!(debugfs_ls(&img, "/newdir/sub"), [".", "..", "inner.txt"]);
    assert_eq!(
        debugfs_ls(&img, "/old"),
        [".", ".."],
        "rm left /old/victim.txt"
    );
    // stress removes its own files and leaves its empty directory.
    assert_eq!(debugfs_ls(&img, "/stress"), [".", ".."]);
    let root = debugfs_ls(&img, "/");
    for gone in ["tmpfile", "gone"] {
        assert!(
            !root.iter().any(|n| n == gone),
            "/{gone} still exists: {root:?}"
        );
    }
    for present in [
        "hello.txt",
        "notes",
        "over",
        "newdir",
        "big.txt",
        "etc",
        "old",
        "stress",
        "lost+found",
    ] {
        assert!(
            root.iter().any(|n| n == present),
            "/{present} missing: {root:?}"
        );
    }
    let victim = debugfs(&img, "stat /old/victim.txt");
    assert!(
        debugfs_errors(&victim)
            .iter()
            .any(|l| l.contains("File not found")),
        "{}",
        victim.dump()
    );

    // A second boot sees what the first wrote.
    let s2 = script(
        &d,
        "init2",
        &[
            "cat /hello.txt",
            "cat /newdir/sub/inner.txt",
            "cat /big.txt",
            "halt",
        ],
    );
    let r2 = run_umk(&["mem=32M".to_string(), arg("ubd0", &img), arg("init", &s2)]);
    r2.assert_success();
    assert_eq!(r2.section("cat /hello.txt"), "hello from umk\n");
    assert_eq!(r2.section("cat /newdir/sub/inner.txt"), "inner file\n");
    assert!(
        r2.section("cat /big.txt") == expected_big,
        "umk read back big.txt wrongly\n{}",
        r2.dump()
    );
    assert_fsck_clean(&img);
}

#[test]
fn umk_reads_files_made_by_mke2fs_including_indirect_blocks() {
    let d = Scratch::new("umk-fs-read");
    let img = d.path("disk.img");
    // 40 KiB: direct blocks plus an indirect block; 300 KiB: past the 268 KiB a single
    // indirect block maps, so the double-indirect block is used too.
    let medium: String = numbered_lines(500, 80)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let large: String = numbered_lines(3800, 80)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(large.len() > 268 * 1024);
    make_ext2(
        &img,
        "16M",
        &[
            ("data/medium.txt", &medium),
            ("data/large.txt", &large),
            ("a/b/c/deep.txt", "deep\n"),
        ],
    );
    let stat = debugfs(&img, "stat /data/large.txt");
    assert!(
        stat.stdout.contains("(DIND)"),
        "large.txt should use a double-indirect block\n{}",
        stat.dump()
    );
    let s = script(
        &d,
        "init",
        &[
            "ls /data",
            "cat /data/medium.txt",
            "cat /data/large.txt",
            "cat /a/b/c/deep.txt",
            "halt",
        ],
    );
    let r = run_umk(&["mem=32M".to_string(), arg("ubd0", &img), arg("init", &s)]);
    r.assert_success();
    let ls = r.section("ls /data");
    assert!(
        ls.contains(&format!("{} medium.txt", medium.len()))
            && ls.contains(&format!("{} large.txt", large.len())),
        "{ls}"
    );
    assert!(
        r.section("cat /data/medium.txt") == medium,
        "medium.txt read back wrongly"
    );
    assert!(
        r.section("cat /data/large.txt") == large,
        "large.txt read back wrongly"
    );
    assert_eq!(r.section("cat /a/b/c/deep.txt"), "deep\n");
    assert_fsck_clean(&img);
}

#[test]
fn failing_fs_commands_report_errors_and_leave_the_fs_clean() {
    let d = Scratch::new("umk-fs-errors");
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[("etc/motd", "motd\n")]);
    let s = script(
        &d,
        "init",
        &[
            "mkdir /etc",
            "rmdir /etc",
            "rm /etc",
            "rm /nope",
            "ls /nope",
            "cat /etc",
            "echo x > /nodir/file",
            "rmdir /etc/motd",
            "echo survived > /ok",
            "halt",
        ],
    );
    let r = run_umk(&["mem=16M".to_string(), arg("ubd0", &img), arg("init", &s)]);
    r.assert_success();
    assert_eq!(r.section("mkdir /etc"), "mkdir: /etc: file exists\n");
    assert_eq!(
        r.section("rmdir /etc"),
        "rmdir: /etc: directory not empty\n"
    );
    assert_eq!(r.section("rm /etc"), "rm: /etc: is a directory\n");
    assert_eq!(
        r.section("rm /nope"),
        "rm: /nope: no such file or directory\n"
    );
    assert_eq!(
        r.section("ls /nope"),
        "ls: /nope: no such file or directory\n"
    );
    for cmd in ["cat /etc", "echo x > /nodir/file", "rmdir /etc/motd"] {
        let out = r.section(cmd);
        let name = cmd.split_whitespace().next().unwrap();
        assert!(
            out.starts_with(&format!("{name}: ")) && out.lines().count() == 1,
            "{cmd}: {out:?}"
        );
    }
    assert_fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/ok"), "survived\n");
    assert_eq!(debugfs_cat(&img, "/etc/motd"), "motd\n");
    assert!(!debugfs_ls(&img, "/").iter().any(|n| n == "nodir"));
}
