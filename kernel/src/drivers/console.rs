//! The console: output is printk's; input arrives from the host's stdin by SIGIO or, where
//! the host cannot signal (a regular file), by polling at every timer tick. A small line
//! discipline assembles lines (with backspace) for the shell, and control characters go to
//! the console's keyboard handler.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::host::file::{self, STDIN};
use crate::sched::task::State;
use crate::sched::wait::WaitQueue;
use crate::sync::global::Global;

struct Ldisc {
    partial: Vec<u8>,
    lines: VecDeque<String>,
    eof: bool,
}

static LDISC: Global<Ldisc> = Global::new(
    "console ldisc",
    Ldisc {
        partial: Vec::new(),
        lines: VecDeque::new(),
        eof: false,
    },
);
static READERS: WaitQueue = WaitQueue::new("console input");
static READY: AtomicBool = AtomicBool::new(false);

/// Control-character hook (the `input` bug scenario installs one); runs in interrupt
/// context with the byte typed.
static CONTROL_HOOK: Global<Option<fn(u8)>> = Global::new("console control hook", None);

/// Arms SIGIO on stdin where the host supports it; polling covers the rest.
pub fn init() {
    let pid = crate::host::process::getpid();
    if file::fcntl(STDIN, file::F_SETOWN, pid as usize).is_ok() {
        if let Ok(fl) = file::fcntl(STDIN, file::F_GETFL, 0) {
            let _ = file::fcntl(STDIN, file::F_SETFL, fl | file::O_ASYNC);
        }
    }
    crate::irq::register_io(poll_input);
    READY.store(true, Ordering::Relaxed);
}

pub fn set_control_hook(hook: Option<fn(u8)>) {
    CONTROL_HOOK.with(|h| *h = hook);
}

/// Reads whatever input the host has for us (interrupt context).
pub fn poll_input() {
    if !READY.load(Ordering::Relaxed) || LDISC.with(|l| l.eof) {
        return;
    }
    let mut buf = [0u8; 256];
    while let Ok(true) = file::poll_readable(STDIN) {
        match file::read(STDIN, &mut buf) {
            Ok(0) => {
                LDISC.with(|l| l.eof = true);
                break;
            }
            Ok(n) => {
                for &b in &buf[..n] {
                    receive(b);
                }
                if n < buf.len() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    READERS.wake_all();
}

fn receive(b: u8) {
    match b {
        b'\n' | b'\r' => LDISC.with(|l| {
            let line = String::from_utf8_lossy(&l.partial).into_owned();
            l.partial.clear();
            l.lines.push_back(line);
        }),
        0x7f | 0x08 => LDISC.with(|l| {
            l.partial.pop();
        }),
        0x00..=0x1f => {
            if let Some(hook) = CONTROL_HOOK.with(|h| *h) {
                hook(b);
            }
        }
        _ => LDISC.with(|l| l.partial.push(b)),
    }
}

/// Waits for the next line typed on the console; `None` at end of input.
pub fn read_line() -> Option<String> {
    let mut line = None;
    READERS.wait_until(State::Interruptible, || {
        LDISC.with(|l| {
            line = l.lines.pop_front();
            line.is_some() || l.eof
        })
    });
    line
}
