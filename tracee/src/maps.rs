//! The tracee's address space as /proc/PID/maps and /proc/PID/auxv show it, and the
//! files behind its descriptors.

use std::path::PathBuf;

use nix::unistd::Pid;

use crate::addr::Addr;

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Start address.
    pub start: Addr,
    /// End address (exclusive).
    pub end: Addr,
    /// `rwxp`-style permissions.
    pub perms: String,
    /// File offset.
    pub offset: u64,
    /// Device of the file behind it, as `st_dev` (0 for anonymous memory).
    pub dev: u64,
    /// Inode (0 for anonymous memory).
    pub inode: u64,
    /// Path or pseudo-name, empty for anonymous memory.
    pub path: String,
}

impl Mapping {
    /// Whether a regular file backs it.
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.starts_with('/')
    }

    /// Whether it is MAP_SHARED (what it holds is shared with whoever else maps it).
    pub fn is_shared(&self) -> bool {
        self.perms.ends_with('s')
    }

    /// What it maps, for messages: its path, or `anonymous memory`.
    pub fn what(&self) -> &str {
        if self.path.is_empty() {
            "anonymous memory"
        } else {
            &self.path
        }
    }
}

/// The first MAP_SHARED mapping of task `pid`, if it has one.
pub fn first_shared(pid: Pid) -> std::io::Result<Option<Mapping>> {
    Ok(read_maps(pid)?.into_iter().find(Mapping::is_shared))
}

/// Parses /proc/PID/maps.
pub fn read_maps(pid: Pid) -> std::io::Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "unparsable /proc/PID/maps line",
        )
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(6, ' ');
        let range = f.next().ok_or_else(bad)?;
        let perms = f.next().ok_or_else(bad)?.to_string();
        let offset = u64::from_str_radix(f.next().ok_or_else(bad)?, 16).map_err(|_| bad())?;
        let (major, minor) = f.next().and_then(|d| d.split_once(':')).ok_or_else(bad)?;
        let dev = libc::makedev(
            u32::from_str_radix(major, 16).map_err(|_| bad())?,
            u32::from_str_radix(minor, 16).map_err(|_| bad())?,
        );
        let inode: u64 = f.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let path = f.next().unwrap_or("").trim_start().to_string();
        let (s, e) = range.split_once('-').ok_or_else(bad)?;
        let start = u64::from_str_radix(s, 16).map_err(|_| bad())?;
        let end = u64::from_str_radix(e, 16).map_err(|_| bad())?;
        out.push(Mapping {
            start: Addr::new(start),
            end: Addr::new(end),
            perms,
            offset,
            dev,
            inode,
            path,
        });
    }
    Ok(out)
}

/// Reads /proc/PID/auxv as (type, value) pairs, up to AT_NULL.
pub fn read_auxv(pid: Pid) -> std::io::Result<Vec<(u64, u64)>> {
    let bytes = std::fs::read(format!("/proc/{pid}/auxv"))?;
    let mut out = Vec::new();
    for pair in bytes.chunks_exact(16) {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&pair[..8]);
        b.copy_from_slice(&pair[8..]);
        let (t, v) = (u64::from_le_bytes(a), u64::from_le_bytes(b));
        if t == 0 {
            break;
        }
        out.push((t, v));
    }
    Ok(out)
}

/// The path of the tracee's descriptor `fd` (readlink of /proc/PID/fd/FD).
pub fn fd_path(pid: Pid, fd: i32) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
}

/// Opens the file behind the tracee's descriptor `fd` for reading, as it is now (works
/// for deleted files too).
pub fn open_fd(pid: Pid, fd: i32) -> std::io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/{pid}/fd/{fd}"))
}

/// Device and inode of what the tracee's descriptor `fd` refers to (a file, pipe, socket
/// or terminal), to tell whether it reaches the same object as one of ours.
pub fn fd_identity(pid: Pid, fd: i32) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))?;
    Ok((m.dev(), m.ino()))
}

/// The file position of the tracee's descriptor `fd` (`pos:` of /proc/PID/fdinfo/FD).
pub fn fd_position(pid: Pid, fd: i32) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("pos:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("/proc/{pid}/fdinfo/{fd} has no pos"),
            )
        })
}

/// The tracee's working directory.
pub fn cwd(pid: Pid) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd"))
}

/// A process's blocked and ignored signals, one bit per signal (bit `n - 1` for `n`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalSets {
    /// Blocked (the signal mask).
    pub blocked: u64,
    /// Disposition SIG_IGN.
    pub ignored: u64,
}

/// The blocked mask and the ignored set of a process, from /proc/PID/status (`SigBlk`,
/// `SigIgn`; bit `n - 1` for signal `n`). For a tracee at its exec stop these are what
/// it inherited.
pub fn inherited_signals(pid: Pid) -> std::io::Result<SignalSets> {
    Ok(SignalSets {
        blocked: status_mask(pid, "SigBlk:")?,
        ignored: status_mask(pid, "SigIgn:")?,
    })
}

/// The signals a process has a handler for (`SigCgt`; bit `n - 1` for signal `n`).
pub fn caught_signals(pid: Pid) -> std::io::Result<u64> {
    status_mask(pid, "SigCgt:")
}

/// The thread group (process) id of thread `pid`, from /proc/PID/status (`Tgid`): equal
/// to `pid` for a group's leader.
pub fn thread_group_id(pid: Pid) -> std::io::Result<i32> {
    status_field(pid, "Tgid:", |v| v.parse().ok())
}

/// Whether task `pid` sleeps in the kernel (state `S` or `D` in /proc/PID/stat): inside a
/// call that waits for something, not running toward its return.
pub fn is_asleep(pid: Pid) -> std::io::Result<bool> {
    let stat = std::fs::read(format!("/proc/{pid}/stat"))?;
    // The state follows the command name, which may hold any byte but ends at the last ')'.
    let after = stat
        .iter()
        .rposition(|&b| b == b')')
        .and_then(|i| stat.get(i + 2))
        .copied();
    Ok(matches!(after, Some(b'S' | b'D')))
}

/// Whether tasks `a` and `b` share one address space (kcmp's `KCMP_VM`): threads of a
/// process, or a vfork child and its parent until the child execs or ends.
pub fn shares_memory(a: Pid, b: Pid) -> std::io::Result<bool> {
    const KCMP_VM: libc::c_long = 1;
    // SAFETY: kcmp takes five integers and touches no memory of ours for KCMP_VM.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(a.as_raw()),
            libc::c_long::from(b.as_raw()),
            KCMP_VM,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    match r {
        0 => Ok(true),
        r if r > 0 => Ok(false),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The parent process of `pid` (`PPid:` of /proc/PID/status).
pub fn parent_id(pid: Pid) -> std::io::Result<i32> {
    status_field(pid, "PPid:", |v| v.parse().ok())
}

/// A hexadecimal signal set of /proc/PID/status.
fn status_mask(pid: Pid, name: &str) -> std::io::Result<u64> {
    status_field(pid, name, |v| u64::from_str_radix(v, 16).ok())
}

/// The line `name` of /proc/PID/status, read by `parse`.
fn status_field<T>(pid: Pid, name: &str, parse: impl Fn(&str) -> Option<T>) -> std::io::Result<T> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| parse(v.trim()))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("/proc/{pid}/status has no {name}"),
            )
        })
}
