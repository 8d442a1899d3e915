//! `--timeout`: a thread that kills the tracee if the recording runs too long, so a hung
//! guest ends as a trace closed as aborted-by-timeout instead of a recorder that never
//! returns. The recording thread keeps its blocking wait (no polling cost); it sees the
//! tracee die and asks [`Watchdog::fired`] whether that was us.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracee::Pid;

/// A running timer for one tracee.
pub(crate) struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    /// Kills `pid` after `after` unless stopped first.
    pub fn start(pid: Pid, after: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(after) {
                // Flag first: the recording thread checks it when it sees the death.
                flag.store(true, Ordering::SeqCst);
                tracee::task::send_kill(pid);
            }
        });
        Watchdog {
            cancel: Some(tx),
            thread: Some(thread),
            fired,
        }
    }

    /// The flag the session checks.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.fired.clone()
    }

    /// Stops the timer (the tracee is gone, or about to be reaped); returns whether it
    /// had fired.
    pub fn stop(mut self) -> bool {
        self.cancel.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.cancel.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
