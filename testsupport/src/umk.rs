//! The workspace root and the umk binary. Every test and bench that runs umk gets it from
//! here, so there is one `cargo build -p umk` per test process and profile, into the
//! target directory the test binary itself lives in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root (this crate lives one level below it).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testsupport is a workspace member with a parent directory")
}

/// umk built with the same profile as the running test binary, so `cargo test --release`
/// tests the release kernel.
pub fn umk_binary() -> &'static Path {
    let release = profile_dir().file_name().is_some_and(|n| n == "release");
    built(if release { "release" } else { "dev" })
}

/// umk built with the release profile whatever the test's profile: for tests whose
/// workloads are sized for an optimized kernel (chaos placement, benches).
pub fn umk_release_binary() -> &'static Path {
    built("release")
}

/// target/<profile>/ of the running executable (tests and benches live in its deps/).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory")
        .to_path_buf()
}

/// umk of cargo profile `profile`, built (or found up to date) once per process.
fn built(profile: &'static str) -> &'static Path {
    cargo_built("umk", &["--bin", "umk"], profile, "umk")
}

/// The syscall buffer's preload library of this test's profile, built (or found up to
/// date) once per process: `cargo test` builds no cdylib.
pub fn preload_library() -> &'static Path {
    let release = profile_dir().file_name().is_some_and(|n| n == "release");
    let profile = if release { "release" } else { "dev" };
    cargo_built(
        "rewind-preload",
        &["--lib"],
        profile,
        "librewind_preload.so",
    )
}

/// `file` of package `package` (target `what`) built with `profile`, once per process.
fn cargo_built(
    package: &'static str,
    what: &[&str],
    profile: &'static str,
    file: &'static str,
) -> &'static Path {
    type Built = HashMap<(&'static str, &'static str), &'static Path>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    // Held across the build: two tests asking at once must not run two cargos.
    let mut map = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry((package, profile)).or_insert_with(|| {
        let target = profile_dir()
            .parent()
            .expect("the target directory")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--quiet", "-p", package])
            .args(what)
            .arg("--profile")
            .arg(profile)
            .status()
            .unwrap_or_else(|e| panic!("running cargo build -p {package}: {e}"));
        assert!(
            status.success(),
            "cargo build -p {package} --profile {profile} failed: {status}"
        );
        let dir = if profile == "dev" { "debug" } else { profile };
        let built = target.join(dir).join(file);
        assert!(built.is_file(), "{file} not found at {}", built.display());
        Box::leak(built.into_boxed_path())
    })
}
