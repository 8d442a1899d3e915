//! The host side of a test: scratch directories, init scripts and `key=path` arguments,
//! C programs compiled with cc, ext2 images made by mke2fs and checked by e2fsck and
//! debugfs, and file digests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{tool, Run};

/// Compiles `src` with the system C compiler (`cc -O1`) into `dir/name`.
pub fn cc(dir: &Path, name: &str, src: &str) -> PathBuf {
    cc_with(dir, name, src, &[])
}

/// Compiles `src` with `cc -O1` and `flags` into `dir/name`.
pub fn cc_with(dir: &Path, name: &str, src: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&c, src).expect("writing the C source");
    let out = Command::new("cc")
        .arg("-O1")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&c)
        .output()
        .expect("running cc");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// A fresh scratch directory under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty directory named after `tag`, the process and a counter.
    pub fn new(tag: &str) -> Scratch {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("rewind-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating scratch dir");
        Scratch(dir)
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes an ext2 image of `size` (e.g. "16M") at `image` from the files in `files`
/// (relative path, contents).
pub fn make_ext2(image: &Path, size: &str, files: &[(&str, &str)]) {
    let src = image.with_extension("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    for (rel, contents) in files {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&src)
        .arg(image)
        .arg(size)
        .output()
        .expect("running mke2fs");
    assert!(
        out.status.success(),
        "mke2fs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes an init script of shell lines and returns its path.
pub fn script(dir: &Scratch, name: &str, lines: &[&str]) -> PathBuf {
    let p = dir.path(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&p, text).expect("writing init script");
    p
}

/// An executable script, for `rewind gdb --gdb`, that runs the real gdb in batch mode
/// with the arguments `rewind gdb` gives it, then each of `commands` as an `-ex`.
pub fn gdb_batch_wrapper(dir: &Scratch, name: &str, commands: &[&str]) -> PathBuf {
    let p = dir.path(name);
    let mut text = String::from("#!/bin/sh\nexec gdb -batch -nx \"$@\"");
    for c in commands {
        assert!(!c.contains('\''), "a gdb command with a quote: {c}");
        text.push_str(&format!(" -ex '{c}'"));
    }
    text.push('\n');
    std::fs::write(&p, text).expect("writing the gdb wrapper");
    let mut perms = std::fs::metadata(&p)
        .expect("the gdb wrapper")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&p, perms).expect("making the gdb wrapper executable");
    p
}

/// `key=path` as one argument.
pub fn arg(key: &str, path: &Path) -> String {
    format!("{key}={}", path.display())
}

/// Runs `e2fsck -fn` on an image and asserts that it finds nothing to fix.
#[track_caller]
pub fn assert_fsck_clean(image: &Path) {
    let r = tool("e2fsck", &[std::ffi::OsStr::new("-fn"), image.as_os_str()]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "e2fsck -fn {} is not clean\n{}",
        image.display(),
        r.dump()
    );
}

/// `debugfs -R REQUEST IMAGE`; returns stdout (debugfs reports errors on stderr).
pub fn debugfs(image: &Path, request: &str) -> Run {
    tool(
        "debugfs",
        &[
            std::ffi::OsStr::new("-R"),
            std::ffi::OsStr::new(request),
            image.as_os_str(),
        ],
    )
}

/// debugfs exits 0 even when a request fails; its complaints are the stderr lines other
/// than its version banner.
pub fn debugfs_errors(r: &Run) -> Vec<&str> {
    r.stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .collect()
}

/// The contents of `path` inside an ext2 image, read by debugfs.
#[track_caller]
pub fn debugfs_cat(image: &Path, path: &str) -> String {
    let r = debugfs(image, &format!("cat {path}"));
    assert!(
        r.status.success() && debugfs_errors(&r).is_empty(),
        "debugfs cat {path} failed\n{}",
        r.dump()
    );
    r.stdout
}

/// The names in directory `path` of an ext2 image, as `debugfs ls -l` lists them.
#[track_caller]
pub fn debugfs_ls(image: &Path, path: &str) -> Vec<String> {
    let r = debugfs(image, &format!("ls -l {path}"));
    assert!(
        r.status.success() && debugfs_errors(&r).is_empty(),
        "debugfs ls {path} failed\n{}",
        r.dump()
    );
    r.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect()
}

/// The sha256 of a file, by the host's sha256sum.
pub fn sha256(path: &Path) -> String {
    let r = tool("sha256sum", &[path]);
    assert!(r.status.success(), "{}", r.dump());
    r.stdout.split_whitespace().next().unwrap().to_string()
}
