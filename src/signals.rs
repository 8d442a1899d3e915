//! SIGINT and SIGTERM: remove the private directories that packed traces were unpacked
//! into, then exit with 128 + the signal number. A `Drop` does not run when a signal
//! kills the process, so without this every Ctrl-C during `rewind replay PACK` would
//! leave an unpacked trace (and its guest binary) in the temp dir.
//!
//! While `rewind gdb` runs gdb in the foreground, Ctrl-C belongs to gdb: it reaches gdb
//! (same process group), which interrupts the replay through the remote protocol. So
//! [`SigintToChild`] makes this process ignore SIGINT for as long as it lives; SIGTERM
//! still cleans up and exits.

use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

static SIGINT_IS_CHILDS: AtomicBool = AtomicBool::new(false);

/// Starts the thread that handles SIGINT and SIGTERM.
pub fn install() -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("rewind-signals".into())
        .spawn(move || {
            for signo in signals.forever() {
                if signo == SIGINT && SIGINT_IS_CHILDS.load(Ordering::SeqCst) {
                    continue;
                }
                trace::pack::remove_unpacked_dirs();
                std::process::exit(128 + signo);
            }
        })?;
    Ok(())
}

/// While alive, SIGINT is left to a foreground child (gdb) instead of ending rewind.
pub struct SigintToChild(());

impl SigintToChild {
    /// Hands SIGINT to the child until dropped.
    pub fn new() -> Self {
        SIGINT_IS_CHILDS.store(true, Ordering::SeqCst);
        SigintToChild(())
    }
}

impl Drop for SigintToChild {
    fn drop(&mut self) {
        SIGINT_IS_CHILDS.store(false, Ordering::SeqCst);
    }
}
