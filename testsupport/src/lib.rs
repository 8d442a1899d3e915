//! Shared support for Rewind's tests and benches: one dev-dependency instead of copies.
//!
//! * [`umk`]: the workspace root and the umk binary, built once per test process.
//! * [`process`]: running a program under a timeout and asserting on what it printed.
//! * [`host`]: scratch directories, init scripts, ext2 images and the host tools that
//!   check them (mke2fs, e2fsck, debugfs, sha256sum, cc).
//! * [`linux`]: Linux built as UML (linux/build) and KUnit's command line.
//! * [`golden`]: golden-file comparison with the `REWIND_BLESS=1` switch.
//! * [`switches`]: the `REWIND_SOAK` and `REWIND_SLOW_TESTS` environment switches.
//! * [`corpus`]: the shipped recordings under corpus/.
//! * [`svg`]: the analyzer's SVG diagrams read back (edges and their colours).
//! * `record` (feature `record`): recordings made in-process with the recorder.
//!
//! The most used items are re-exported here, so a test writes `testsupport::Scratch`.

pub mod corpus;
pub mod golden;
pub mod host;
pub mod linux;
pub mod process;
#[cfg(feature = "record")]
pub mod record;
pub mod svg;
pub mod switches;
pub mod umk;

pub use golden::golden;
pub use host::{
    arg, assert_fsck_clean, cc, cc_with, debugfs, debugfs_cat, debugfs_errors, debugfs_ls,
    gdb_batch_wrapper, make_ext2, script, sha256, Scratch,
};
pub use process::{run_umk, run_umk_fed, run_with_timeout, tool, Run, UMK_TIMEOUT};
pub use switches::{repetitions, slow_tests};
pub use umk::{umk_binary, umk_release_binary, workspace};
