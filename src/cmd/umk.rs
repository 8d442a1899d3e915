//! Finding the umk binary for commands that run it (`demo`): `$REWIND_UMK`, then the
//! binary cargo built beside `rewind`, then a fresh `cargo build` of it when `rewind` runs
//! from its source tree — so `cargo run --release -- demo` needs nothing built by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Path of a usable umk binary.
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
    let sibling = dir.join("umk");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    if workspace.join("kernel/Cargo.toml").is_file() {
        // Build (or bring up to date) the kernel with the same profile as rewind itself.
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace)
            .args(["build", "--quiet", "-p", "umk", "--bin", "umk"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().context("running cargo to build umk")?;
        if !status.success() {
            bail!("building umk failed ({status})");
        }
    }
    if sibling.is_file() {
        return Ok(sibling);
    }
    bail!("umk binary not found at {} (build it with `cargo build -p umk --release` or set REWIND_UMK)", sibling.display())
}
