//! Memory of a replay from /proc: the processes a `rewind gdb` stub keeps (the live
//! tracee and its checkpoint forks, all children of the stub) with their RSS and PSS
//! from `smaps_rollup`. PSS splits each shared copy-on-write page among its sharers, so
//! the PSS sum is what the checkpoints really cost.

use serde::Serialize;

/// One process's memory, in kilobytes.
#[derive(Clone, Debug, Serialize)]
pub struct ProcMem {
    pub pid: u32,
    pub comm: String,
    pub rss_kb: u64,
    pub pss_kb: u64,
}

/// What a stub and its children use.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// The stub itself (the replayer, its trace and timeline).
    pub stub: Option<ProcMem>,
    /// Its children: the tracee and the checkpoints.
    pub children: Vec<ProcMem>,
}

impl Snapshot {
    pub fn children_pss_kb(&self) -> u64 {
        self.children.iter().map(|p| p.pss_kb).sum()
    }

    pub fn children_rss_kb(&self) -> u64 {
        self.children.iter().map(|p| p.rss_kb).sum()
    }

    /// The largest child's RSS: what one tracee alone occupies.
    pub fn single_rss_kb(&self) -> u64 {
        self.children.iter().map(|p| p.rss_kb).max().unwrap_or(0)
    }
}

/// The stub `pid` and its children, now.
pub fn snapshot(pid: u32) -> Snapshot {
    Snapshot {
        stub: proc_mem(pid),
        children: children_of(pid).into_iter().filter_map(proc_mem).collect(),
    }
}

/// Pids whose parent is `ppid` (from each /proc/PID/stat).
pub fn children_of(ppid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat_ppid(pid) == Some(ppid))
        .collect();
    pids.sort_unstable();
    pids
}

/// The parent pid field of /proc/PID/stat (after the parenthesised command name, which
/// may itself hold spaces and parentheses).
fn stat_ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

/// The ppid in a /proc/PID/stat line.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn proc_mem(pid: u32) -> Option<ProcMem> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let (rss_kb, pss_kb) = parse_rollup(&rollup);
    Some(ProcMem {
        pid,
        comm: comm.trim().to_string(),
        rss_kb,
        pss_kb,
    })
}

/// `Rss:` and `Pss:` (kB) of a smaps_rollup text.
pub fn parse_rollup(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}
