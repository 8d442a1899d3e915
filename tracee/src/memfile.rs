//! Memory files of the tracer that its tracees map: the tracee opens one through
//! `/proc/<tracer>/fd/<n>` (a path the tracer computes, never one read from a trace), so
//! every tracee that maps it and the tracer itself see the same pages.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::sys::memfd::{memfd_create, MFdFlags};

/// A new, empty memory file, closed on exec.
pub fn create(name: &str) -> std::io::Result<File> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC).map_err(std::io::Error::from)?;
    Ok(File::from(fd))
}

/// The path through which a tracee opens `file`, which this process holds.
pub fn path_for_tracee(file: &File) -> String {
    format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd())
}
