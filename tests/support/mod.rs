//! Shared helpers for the end-to-end tests: the umk binary (built on demand with the same
//! profile as the tests), scratch directories, and ext2 images made with mke2fs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the umk binary, built once per test process with cargo (same profile as the
/// test binary, so `cargo test --release` tests the release kernel).
pub fn umk_binary() -> &'static Path {
    static UMK: OnceLock<PathBuf> = OnceLock::new();
    UMK.get_or_init(|| {
        // Test executables live in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile> directory");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace()).args(["build", "--quiet", "-p", "umk", "--bin", "umk"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build -p umk");
        assert!(status.success(), "cargo build -p umk failed: {status}");
        let bin = profile_dir.join("umk");
        assert!(bin.is_file(), "umk not found at {}", bin.display());
        bin
    })
}

/// A fresh scratch directory under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rewind-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating scratch dir");
        Scratch(dir)
    }

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
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext2", "-d"]).arg(&src).arg(image).arg(size).output().expect("running mke2fs");
    assert!(out.status.success(), "mke2fs failed: {}", String::from_utf8_lossy(&out.stderr));
}
