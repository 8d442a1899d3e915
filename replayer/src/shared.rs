//! Files mapped MAP_SHARED, replayer side (mirror of `recorder::shared`): each number an
//! `Event::SharedMapping` names is one memory file of the replayer's, and every mmap of
//! that number maps it at the recorded address, opened by the tracee itself through
//! /proc (`tracee::memfile`). What one task writes through a mapping then shows through
//! every other, in every task, as it did at record time. Each mmap first gives the file
//! the recorded size and the recorded bytes of the range it maps: the same bytes, when
//! the replay has been exact, and those a write(2) put there while nothing mapped them.

use std::collections::hash_map::{Entry, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;

use trace::{SharedMapping, SyscallEvent};
use tracee::{Addr, Stopped};

use crate::error::{Error, Result};
use crate::session::{Engine, Kind};
use crate::tasks::Call;

/// The memory file behind each shared file number.
#[derive(Default)]
pub(crate) struct SharedFiles {
    files: HashMap<u32, File>,
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
