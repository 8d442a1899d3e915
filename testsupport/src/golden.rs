//! Golden files: a test's text output compared with a file kept in git. Regenerate them
//! deliberately with `REWIND_BLESS=1` (then review the diff), never by hand-copying.

use std::path::Path;

/// Asserts that `actual` equals the contents of `path`; with `REWIND_BLESS` set, writes
/// `actual` there instead.
#[track_caller]
pub fn golden(path: &Path, actual: &str) {
    if std::env::var_os("REWIND_BLESS").is_some() {
        std::fs::write(path, actual)
            .unwrap_or_else(|e| panic!("writing golden file {}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "no golden file {} ({e}); run with REWIND_BLESS=1 to create it deliberately",
            path.display()
        )
    });
    assert!(
        want == actual,
        "differs from {} (REWIND_BLESS=1 regenerates it)\n--- expected ---\n{want}\n--- actual ---\n{actual}",
        path.display()
    );
}
