//! Running programs from a test: captured stdout and stderr, a timeout that kills a hung
//! child and fails the test with what it printed, and assertions on the result.

use std::process::Command;

use crate::umk_binary;

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
