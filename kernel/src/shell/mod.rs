//! The console shell: the init task runs the `init=` script and then reads commands from
//! the console. Each command is a small function; a bad command line prints an error and
//! never takes the kernel down (only `bug` scenarios are meant to).

mod commands;
mod stress;

use alloc::string::String;
use alloc::vec::Vec;

pub use commands::free_report;

use crate::host::file;
use crate::host::Errno;

/// Reads a host script of shell lines (the `init=` argument).
pub fn load_script(path: &[u8]) -> Result<Vec<String>, Errno> {
    let fd = file::open(path, file::O_RDONLY, 0)?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(e) => {
                file::close(fd);
                return Err(e);
            }
        }
    }
    file::close(fd);
    Ok(String::from_utf8_lossy(&data)
        .lines()
        .map(String::from)
        .collect())
}

/// The init task (pid 1's job): mount root, run the script, then serve the console.
pub fn init_task(has_root: bool, script: Option<Vec<String>>) {
    if has_root {
        if let Err(e) = crate::rootfs::mount_root() {
            crate::printk!("VFS: Cannot mount root fs on ubd0: {}", e);
        }
    } else {
        crate::printk!("VFS: no ubd0 given, running without a root filesystem");
    }
    crate::printk!("Run init as init process");
    if let Some(lines) = script {
        for line in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            crate::kprintln!("umk# {}", line);
            commands::run(line);
        }
    }
    loop {
        crate::kprint!("umk# ");
        match crate::drivers::console::read_line() {
            Some(line) => {
                let line = line.trim();
                if !line.is_empty() {
                    commands::run(line);
                }
            }
            None => {
                crate::kprintln!();
                crate::printk!("console: end of input, halting");
                crate::system::halt();
            }
        }
    }
}
