//! Shared helpers for the end-to-end tests: the umk binary (built on demand with the same
//! profile as the tests), scratch directories, and ext2 images made with mke2fs. Member
//! crates' tests include this file with `#[path]` rather than keeping copies.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the including crate may be the root package or a member).
pub fn workspace() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("kernel/Cargo.toml").is_file() {
        here
    } else {
        here.parent()
            .expect("a workspace member has a parent directory")
    }
}

/// Path of the umk binary, built once per test process with cargo (same profile as the
/// test binary, so `cargo test --release` tests the release kernel).
pub fn umk_binary() -> &'static Path {
    static UMK: OnceLock<PathBuf> = OnceLock::new();
    UMK.get_or_init(|| {
        // Test executables live in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> directory");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace())
            .args(["build", "--quiet", "-p", "umk", "--bin", "umk"]);
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

/// Compiles `src` with the system C compiler (`cc -O1`) into `dir/name`.
pub fn cc(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&c, src).expect("writing the C source");
    let out = Command::new("cc")
        .args(["-O1", "-o"])
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
    pub fn new(tag: &str) -> Scratch {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("rewind-test-{tag}-{}-{n}", std::process::id()));
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

/// What a finished process left behind.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The signal that killed the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(&self.status)
    }

    /// Everything the process printed, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Asserts that stdout contains every one of `needles`.
    #[track_caller]
    pub fn assert_stdout_has(&self, needles: &[&str]) {
        for n in needles {
            assert!(
                self.stdout.contains(n),
                "stdout lacks {n:?}\n{}",
                self.dump()
            );
        }
    }

    /// Asserts a clean exit with status 0.
    #[track_caller]
    pub fn assert_success(&self) {
        assert_eq!(
            self.status.code(),
            Some(0),
            "expected exit status 0\n{}",
            self.dump()
        );
    }

    /// Asserts death by SIGABRT, as a kernel panic ends.
    #[track_caller]
    pub fn assert_aborted(&self) {
        assert_eq!(
            self.signal(),
            Some(6),
            "expected death by SIGABRT\n{}",
            self.dump()
        );
    }

    /// The console output of the script line `cmd`: from the shell's echo of it
    /// (`umk# CMD`) up to the next prompt. Panics if the line never ran.
    #[track_caller]
    pub fn section(&self, cmd: &str) -> &str {
        let marker = format!("umk# {cmd}\n");
        let start = self
            .stdout
            .find(&marker)
            .unwrap_or_else(|| panic!("script line {cmd:?} never ran\n{}", self.dump()))
            + marker.len();
        let rest = &self.stdout[start..];
        let end = rest.find("umk# ").unwrap_or(rest.len());
        &rest[..end]
    }
}

/// Runs `cmd` with stdout and stderr captured and stdin null (or fed by `feed`, which gets
/// the child's stdin and runs on its own thread). Kills the process and fails the test
/// with whatever it printed if it runs longer than `timeout`.
pub fn run_with_timeout(
    mut cmd: Command,
    timeout: std::time::Duration,
    feed: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>>,
) -> Run {
    use std::io::Read;
    use std::process::Stdio;
    cmd.stdin(if feed.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let feeder = match (feed, child.stdin.take()) {
        (Some(f), Some(stdin)) => Some(std::thread::spawn(move || f(stdin))),
        _ => None,
    };
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + timeout;
    let (status, timed_out) = loop {
        if let Some(st) = child.try_wait().expect("waiting for child") {
            break (st, false);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            break (child.wait().expect("waiting for killed child"), true);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let run = Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    if timed_out {
        panic!(
            "{cmd:?} did not finish within {timeout:?}; killed\n{}",
            run.dump()
        );
    }
    run
}

/// The default guard for one umk run.
pub const UMK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs umk with `args` and stdin null, under [`UMK_TIMEOUT`].
pub fn run_umk<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let mut cmd = Command::new(umk_binary());
    cmd.args(args);
    run_with_timeout(cmd, UMK_TIMEOUT, None)
}

/// Runs umk with `args`, feeding its stdin from `feed` on a separate thread.
pub fn run_umk_fed<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    feed: impl FnOnce(std::process::ChildStdin) + Send + 'static,
) -> Run {
    let mut cmd = Command::new(umk_binary());
    cmd.args(args);
    run_with_timeout(cmd, UMK_TIMEOUT, Some(Box::new(feed)))
}

/// Runs a host tool (e2fsck, debugfs, uml_moo, ...) with a 30 s guard.
pub fn tool<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_with_timeout(cmd, std::time::Duration::from_secs(30), None)
}

/// Writes an init script of shell lines and returns its path.
pub fn script(dir: &Scratch, name: &str, lines: &[&str]) -> PathBuf {
    let p = dir.path(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&p, text).expect("writing init script");
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
