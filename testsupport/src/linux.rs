//! Linux built as UML for the tests: `linux/build` run once per test process (it reuses
//! a build whose inputs did not change, and builds one, 10 to 20 minutes on 2 cores,
//! when there is none), and KUnit's own command line.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// kunit.py's arguments (tools/testing/kunit/kunit_kernel.py), with simulated time so
/// that no host timer interrupts the run.
pub const KUNIT_ARGS: &[&str] = &[
    "mem=256M",
    "console=tty",
    "kunit.enable=1",
    "kunit_shutdown=halt",
    "time-travel=inf-cpu",
];

/// The kernel binary `linux/build` makes (target/linux/linux).
pub fn kernel() -> &'static Path {
    static KERNEL: OnceLock<PathBuf> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let script = crate::umk::workspace().join("linux/build");
        let out = std::process::Command::new(&script)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(out.status.success(), "{} failed", script.display());
        let text = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(text.lines().last().unwrap_or("").trim());
        assert!(
            path.is_file(),
            "linux/build printed {text:?}, not the kernel's path"
        );
        path
    })
}
