//! Console input typed into a recording: bytes fed to the program's stdin through a pipe
//! at a fixed pace, so a scenario that needs a keystroke during a race (umk's `bug input`:
//! Ctrl-T while the keymap is rebuilt) records unattended. The pipe stays open until the
//! recording ends, so the program never sees end of input. What the program reads is in
//! the trace like any other read; the feed only shapes the recorded run.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to type and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFeed {
    /// The bytes of one keystroke (or line).
    pub bytes: Vec<u8>,
    /// Wait this long after the start before the first one.
    pub after: Duration,
    /// Then type them again at this interval…
    pub every: Duration,
    /// …for this long (once when zero).
    pub repeat_for: Duration,
}

/// The typing thread of one recording; dropping it stops the typing and closes the pipe.
pub(crate) struct Feeder {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    /// Makes the pipe and starts typing into it; returns the read end for the tracee.
    pub(crate) fn start(feed: &InputFeed) -> std::io::Result<(Feeder, OwnedFd)> {
        let (read, write) = tracee::pipe()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let feed = feed.clone();
        let thread = std::thread::spawn(move || {
            let mut pipe = File::from(write);
            let end = Instant::now() + feed.after + feed.repeat_for;
            let mut wait = feed.after;
            loop {
                if !matches!(
                    stopped.recv_timeout(wait),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
                // A failed write means the program is gone.
                if pipe.write_all(&feed.bytes).is_err() || Instant::now() >= end {
                    break;
                }
                wait = feed.every;
            }
            // Keep the pipe open (no end of input) until the recording ends.
            let _ = stopped.recv();
        });
        Ok((
            Feeder {
                stop: Some(stop),
                thread: Some(thread),
            },
            read,
        ))
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
