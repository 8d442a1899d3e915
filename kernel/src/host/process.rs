//! The host process itself: exit, abort, pid, waiting for the next interrupt, the interval
//! timer and the host clock.

use super::signal;
use super::syscall::{nr, syscall3, syscall6, Errno};

pub fn exit(code: i32) -> ! {
    loop {
        let _ = syscall3(nr::EXIT_GROUP, code as usize, 0, 0);
    }
}

pub fn getpid() -> i32 {
    syscall3(nr::GETPID, 0, 0, 0).unwrap_or(0) as i32
}

/// Dies by SIGABRT so that a recorder or shell sees a crash, not an exit.
pub fn abort() -> ! {
    signal::reset_default(signal::SIGABRT);
    signal::set_blocked(&[signal::SIGABRT], false);
    let _ = syscall3(nr::KILL, getpid() as usize, signal::SIGABRT as usize, 0);
    exit(134)
}

/// Sleeps until a signal arrives: the idle task's "hlt".
pub fn wait_for_interrupt() {
    let _ = syscall3(nr::PAUSE, 0, 0, 0);
}

/// Starts the interval timer that raises SIGALRM every `usec` microseconds.
pub fn start_timer(usec: u64) -> Result<(), Errno> {
    // struct itimerval { timeval interval; timeval value; }
    let tv = [
        usec / 1_000_000,
        usec % 1_000_000,
        usec / 1_000_000,
        usec % 1_000_000,
    ];
    syscall3(nr::SETITIMER, 0, tv.as_ptr() as usize, 0).map(|_| ())
}

pub fn stop_timer() {
    let tv = [0u64; 4];
    let _ = syscall3(nr::SETITIMER, 0, tv.as_ptr() as usize, 0);
}

/// Host monotonic time in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = [0u64; 2];
    let _ = syscall6(nr::CLOCK_GETTIME, 1, ts.as_mut_ptr() as usize, 0, 0, 0, 0);
    ts[0] * 1_000_000_000 + ts[1]
}

/// Host wall-clock time in seconds (UML's COW header and `uptime`'s date use it).
pub fn realtime_secs() -> u64 {
    let mut ts = [0u64; 2];
    let _ = syscall6(nr::CLOCK_GETTIME, 0, ts.as_mut_ptr() as usize, 0, 0, 0, 0);
    ts[0]
}
