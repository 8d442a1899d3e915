//! Console output: `printk!` lines with Linux's `[seconds.micros]` uptime stamp, and
//! `kprint!` for raw console text (the shell's output). Output goes straight to the host's
//! stdout in one write per line, so a recorder sees each line as one event.

use core::fmt::{self, Write};

use crate::host::file::{write_all, STDOUT};

/// A fixed buffer that formats without allocating (printk works before mm is up and
/// inside the allocator's own error paths).
pub struct LineBuf {
    buf: [u8; 1024],
    len: usize,
}

impl LineBuf {
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; 1024],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn flush(&mut self) {
        let _ = write_all(STDOUT, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Prints a kernel log line stamped with the uptime.
pub fn printk_fmt(args: fmt::Arguments<'_>) {
    let mut line = LineBuf::new();
    let (secs, micros) = crate::time::uptime();
    let _ = write!(line, "[{secs:5}.{micros:06}] ");
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    line.flush();
}

/// Prints raw console text, optionally ending the line.
pub fn kprint_fmt(args: fmt::Arguments<'_>, newline: bool) {
    let mut line = LineBuf::new();
    let _ = line.write_fmt(args);
    if newline {
        let _ = line.write_str("\n");
    }
    line.flush();
}

#[macro_export]
macro_rules! printk {
    ($($arg:tt)*) => { $crate::printk::printk_fmt(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::printk::kprint_fmt(format_args!($($arg)*), false) };
}

#[macro_export]
macro_rules! kprintln {
    () => { $crate::printk::kprint_fmt(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::printk::kprint_fmt(format_args!($($arg)*), true) };
}
