//! Files mapped MAP_SHARED, replayer side (mirror of `recorder::shared`): each number an
//! `Event::SharedMapping` names is one memory file of the replayer's, and every mmap of
//! that number maps it at the recorded address, opened by the tracee itself through
//! /proc (`tracee::memfile`). What one task writes through a mapping then shows through
//! every other, in every task, as it did at record time. Each mmap first gives the file
//! the recorded size and the recorded bytes of the range it maps: the same bytes, when
//! the replay has been exact, and those a write(2) put there while nothing mapped them.

use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use trace::{SharedMapping, SyscallEvent};
use tracee::{Addr, Stopped};

use crate::error::{Error, Result};
use crate::session::{Engine, Kind};
use crate::tasks::Call;

/// Most bytes the memory files may hold together (the union, in each file, of the
/// ranges mappings filled): a trace naming large contents under many numbers cannot make
/// the replayer hold memory without bound. Linux as UML with mem=1G needs a quarter.
pub(crate) const MAX_SHARED_BYTES: u64 = 4 << 30;

/// The memory file behind each shared file number.
#[derive(Default)]
pub(crate) struct SharedFiles {
    files: HashMap<u32, File>,
    /// The ranges filled in each file, disjoint, by start.
    filled: HashMap<u32, BTreeMap<u64, u64>>,
    /// Their total length.
    total: u64,
}

impl SharedFiles {
    /// Counts `[start, end)` of file `file` filled; `Err` with the total it would reach
    /// past [`MAX_SHARED_BYTES`].
    fn admit(&mut self, file: u32, start: u64, end: u64) -> std::result::Result<(), u64> {
        let ranges = self.filled.entry(file).or_default();
        // The ranges it touches merge with it into one.
        let (mut from, mut to, mut covered) = (start, end, 0u64);
        let touching: Vec<(u64, u64)> = ranges
            .range(..=end)
            .filter(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for &(s, e) in &touching {
            from = from.min(s);
            to = to.max(e);
            covered += e - s;
        }
        let total = self.total - covered + (to - from);
        if total > MAX_SHARED_BYTES {
            return Err(total);
        }
        for (s, _) in touching {
            ranges.remove(&s);
        }
        ranges.insert(from, to);
        self.total = total;
        Ok(())
    }
}

impl Engine {
    /// At the seccomp stop of the mmap that `Event::SharedMapping` `m` describes: its
    /// `Syscall` event, next, maps it.
    pub(crate) fn on_shared_mapping(&mut self, s: Stopped, m: &SharedMapping) -> Result<()> {
        let regs = self.t(s.regs())?;
        if regs.syscall_nr() != libc::SYS_mmap as u64 {
            let found =
                crate::syscalls::describe_call(regs.syscall_nr(), &regs.syscall_args(), regs.rip());
            let _ = s.kill();
            return Err(self.diverged(format!("an mmap of shared file {}", m.file), found));
        }
        self.put_live(s);
        self.cur_mut().call = Call::MappingShared(Box::new(m.clone()));
        self.applied();
        self.at_boundary_in_call();
        Ok(())
    }

    /// The `Syscall` event `sc` of the mmap `m` describes, at its seccomp stop: the
    /// recorded address is given shared file `m.file`'s memory file.
    pub(crate) fn on_shared_mmap(
        &mut self,
        s: Stopped,
        sc: &SyscallEvent,
        m: &SharedMapping,
    ) -> Result<()> {
        let regs = self.t(s.regs())?;
        if let Err(e) = self.check_call(&s, &regs, sc) {
            self.put_live(s);
            return Err(e);
        }
        let what = format!("shared file {} mapped at {:#x}", m.file, sc.ret);
        // The event describes this very mmap: the offset it asked for, a mapping made.
        if sc.nr != libc::SYS_mmap as u64
            || sc.ret < 0
            || sc.mapping.is_some()
            || sc.args[5] != m.offset
        {
            self.put_live(s);
            return Err(self.diverged(
                what,
                crate::syscalls::describe_call(sc.nr, &sc.args, sc.rip.0),
            ));
        }
        // The contents fill the mapped range, no more.
        if m.contents.len() > sc.args[1] {
            self.put_live(s);
            return Err(self.diverged(
                what,
                format!(
                    "{} bytes of contents for a mapping of {} bytes",
                    m.contents.len(),
                    sc.args[1]
                ),
            ));
        }
        let end = m.offset.saturating_add(m.contents.len());
        if let Err(total) = self.shared_files_mut().admit(m.file, m.offset, end) {
            self.put_live(s);
            return Err(self.diverged(
                what,
                format!(
                    "filling bytes {}..{end} of it would make the shared files hold {total} \
                     bytes, more than a replay holds ({MAX_SHARED_BYTES})",
                    m.offset
                ),
            ));
        }
        let s = self.anonymous_at(s, regs, sc, what.clone())?;
        let contents = self.data_bytes(&m.contents, m.contents.len())?;
        let (event, file) = (self.next_event(), m.file);
        let io = |op: &'static str| {
            move |source| Error::SharedFile {
                event,
                file,
                op,
                source,
            }
        };
        let mem = match self.shared_files_mut().files.entry(file) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                v.insert(tracee::memfile::create("rewind-shared").map_err(io("create"))?)
            }
        };
        mem.set_len(m.file_size).map_err(io("resize"))?;
        mem.write_all_at(&contents, m.offset).map_err(io("fill"))?;
        let path = tracee::memfile::path_for_tracee(mem);
        // The fresh anonymous mapping is the scratch space for the path: the shared one
        // replaces it.
        let at = sc.ret as u64;
        let mut bytes = path.into_bytes();
        bytes.push(0);
        self.t(s.write_bytes(Addr::new(at), &bytes))?;
        let flags = (libc::O_RDWR | libc::O_CLOEXEC) as u64;
        let (s, fd) = self.t(s.inject_syscall(
            libc::SYS_openat as u64,
            [libc::AT_FDCWD as u64, at, flags, 0, 0, 0],
        ))?;
        if fd < 0 {
            self.put_live(s);
            return Err(self.diverged(
                what,
                format!("the tracee's openat of its memory file returned {fd}"),
            ));
        }
        let map_flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let (s, got) = self.t(s.inject_syscall(
            libc::SYS_mmap as u64,
            [at, sc.args[1], sc.args[2], map_flags, fd as u64, m.offset],
        ))?;
        let (s, _) = self.t(s.inject_syscall(libc::SYS_close as u64, [fd as u64, 0, 0, 0, 0, 0]))?;
        if got != sc.ret {
            self.put_live(s);
            return Err(self.diverged(what, format!("the mmap of its memory file returned {got}")));
        }
        let mut back = regs;
        back.set_syscall_ret(sc.ret);
        self.t(s.set_regs(&back))?;
        self.applied();
        // inject_syscall leaves a signal-delivery stop.
        self.at_boundary(s, Kind::SignalDelivery);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_ranges_count_once_and_the_total_is_bounded() {
        let mut f = SharedFiles::default();
        f.admit(0, 0, 4096).unwrap();
        // The same page again, and one overlapping it, add only what is new.
        f.admit(0, 0, 4096).unwrap();
        f.admit(0, 2048, 8192).unwrap();
        assert_eq!(f.total, 8192);
        // Another file counts apart; a gap stays a gap.
        f.admit(1, 1 << 20, (1 << 20) + 4096).unwrap();
        assert_eq!(f.total, 8192 + 4096);
        // A range bridging two merges them.
        f.admit(0, 8192, 16384).unwrap();
        assert_eq!(f.filled[&0].len(), 1);
        assert_eq!(f.total, 16384 + 4096);
        // Past the bound: refused, nothing counted.
        assert!(f.admit(2, 0, MAX_SHARED_BYTES).is_err());
        assert_eq!(f.total, 16384 + 4096);
    }
}
