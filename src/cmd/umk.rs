//! Finding the umk binary for commands that run it (`demo`, `corpus`): `$REWIND_UMK`, then
//! the binary cargo built beside `rewind`, then a fresh `cargo build` of it when `rewind`
//! runs from its source tree — so `cargo run --release -- demo` needs nothing built by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The source tree `rewind` was built from, when it is still there.
pub fn workspace() -> Option<&'static Path> {
    let w = Path::new(env!("CARGO_MANIFEST_DIR"));
    w.join("kernel/Cargo.toml").is_file().then_some(w)
}

/// Path of a usable umk binary built with the same profile as `rewind` itself.
pub fn locate() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REWIND_UMK") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("REWIND_UMK={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("finding the rewind executable")?;
    let dir = exe.parent().context("rewind executable has no directory")?;
    let release = dir.file_name().is_some_and(|n| n == "release");
    build(if release { "release" } else { "dev" }, dir)
}

/// umk built with cargo profile `profile` (the corpus ships a `corpus`-profile build).
pub fn locate_profile(profile: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the rewind executable")?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("rewind executable is not in a cargo target directory")?;
    build(profile, &target.join(profile))
}

/// Builds (or brings up to date) umk with `profile` when the source tree is here, and
/// returns the binary expected in `out_dir`.
fn build(profile: &str, out_dir: &Path) -> Result<PathBuf> {
    if let Some(workspace) = workspace() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace)
            .args([
                "build",
                "--quiet",
                "-p",
                "umk",
                "--bin",
                "umk",
                "--profile",
                profile,
            ])
            .status()
            .context("running cargo to build umk")?;
        if !status.success() {
            bail!("building umk (profile {profile}) failed ({status})");
        }
    }
    let bin = out_dir.join("umk");
    if bin.is_file() {
        return Ok(bin);
    }
    bail!(
        "umk binary not found at {} (build it with `cargo build -p umk --profile {profile}` \
         or set REWIND_UMK)",
        bin.display()
    )
}
