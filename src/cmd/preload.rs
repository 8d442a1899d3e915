//! Finding the syscall buffer's preload library (`librewind_preload.so`) for `record`:
//! `$REWIND_PRELOAD`, then the one beside `rewind` (cargo puts both in its profile's
//! directory; a test binary sits one level down, in `deps/`), then a fresh `cargo build`
//! of it when `rewind`'s source tree is still where it was built.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// The library's file name.
const FILE: &str = "librewind_preload.so";

/// Path of the preload library.
pub fn locate() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REWIND_PRELOAD") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("REWIND_PRELOAD={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("finding the rewind executable")?;
    let dir = exe.parent().context("rewind executable has no directory")?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let beside = d.join(FILE);
        if beside.is_file() {
            return Ok(beside);
        }
    }
    if let Some(workspace) = super::umk::workspace() {
        let debug = dir.file_name().is_some_and(|n| n == "debug");
        let profile = if debug { "dev" } else { "release" };
        let built = super::umk::build_target(workspace, "rewind-preload", &["--lib"], profile)?;
        if let Some(so) = built.into_iter().find(|p| p.ends_with(FILE)) {
            return Ok(so);
        }
    }
    bail!(
        "no {FILE} beside {} (build it with `cargo build --release -p rewind-preload`, set \
         REWIND_PRELOAD=PATH, or record with --no-syscall-buffer)",
        exe.display()
    )
}
