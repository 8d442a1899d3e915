//! Finding the umk binary for commands that run it (`demo`, `corpus`): `$REWIND_UMK`, then
//! a fresh `cargo build` of it when `rewind`'s source tree is still where it was built
//! (so `cargo run --release -- demo` and a `cargo install --path .` build both need
//! nothing built by hand), then a umk installed beside `rewind`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The source tree `rewind` was built from, when it is still there.
pub fn workspace() -> Option<&'static Path> {
    let w = Path::new(env!("CARGO_MANIFEST_DIR"));
    w.join("kernel/Cargo.toml").is_file().then_some(w)
}

/// Path of a usable umk binary, built with the same profile as `rewind` itself.
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
    let debug = dir.file_name().is_some_and(|n| n == "debug");
    locate_profile(if debug { "dev" } else { "release" })
}

/// umk built with cargo profile `profile` (the corpus ships a `corpus`-profile build).
pub fn locate_profile(profile: &str) -> Result<PathBuf> {
    if let Some(workspace) = workspace() {
        return build(workspace, profile);
    }
    let exe = std::env::current_exe().context("finding the rewind executable")?;
    let beside = exe.with_file_name("umk");
    if beside.is_file() {
        return Ok(beside);
    }
    bail!(
        "no umk to run: rewind's source tree ({}) is gone and no umk is installed beside {}; \
         set REWIND_UMK=PATH to a umk binary (in a source tree, `cargo build --release -p \
         umk` makes target/release/umk)",
        env!("CARGO_MANIFEST_DIR"),
        exe.display()
    )
}

/// Builds (or brings up to date) umk with `profile` in the source tree and returns the
/// binary cargo reports, wherever its target directory is.
fn build(workspace: &Path, profile: &str) -> Result<PathBuf> {
    build_target(workspace, "umk", &["--bin", "umk"], profile)?
        .into_iter()
        .next()
        .with_context(|| format!("cargo built umk (profile {profile}) but named no executable"))
}

/// Builds package `package`'s target `what` with `profile` and returns the files cargo
/// reports for the targets named like the package: executables first, then every file.
pub fn build_target(
    workspace: &Path,
    package: &str,
    what: &[&str],
    profile: &str,
) -> Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--message-format=json-render-diagnostics",
        ])
        .args(["-p", package])
        .args(what)
        .args(["--profile", profile])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo to build {package} (install Rust with rustup)"))?;
    if !out.status.success() {
        bail!(
            "building {package} (profile {profile}) failed ({})",
            out.status
        );
    }
    let target = package.replace('-', "_");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let artifacts: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && (m["target"]["name"] == package || m["target"]["name"] == target.as_str())
        })
        .collect();
    let executables = artifacts
        .iter()
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from));
    let files = artifacts
        .iter()
        .flat_map(|m| m["filenames"].as_array().into_iter().flatten())
        .filter_map(|f| f.as_str().map(PathBuf::from));
    Ok(executables.chain(files).filter(|p| p.is_file()).collect())
}
