//! Mappings, replayer side (mirror of `recorder::mmaps`): a file-backed `mmap` is executed
//! as an anonymous, fixed mapping at the address the recording got, filled with the file
//! bytes from the trace, then given the recorded protection (a MAP_SHARED one is
//! `shared`'s). No file of the host is opened.

use trace::{FileMapping, SyscallEvent};
use tracee::{Addr, Regs, Stopped};

use crate::error::Result;
use crate::session::{Engine, Kind};

impl Engine {
    /// rr's `process_mmap`: at the seccomp stop of a recorded file-backed mmap.
    pub(crate) fn on_mmap(
        &mut self,
        s: Stopped,
        regs: Regs,
        sc: &SyscallEvent,
        m: &FileMapping,
    ) -> Result<()> {
        let prot = sc.args[2];
        let writable = prot & libc::PROT_WRITE as u64 != 0;
        let what = format!(
            "mmap of {} at {:#x}",
            String::from_utf8_lossy(&m.path),
            sc.ret
        );
        let s = self.anonymous_at(s, regs, sc, what)?;
        let file = self.data().reader.blob(&m.file, m.file_size)?;
        let from = usize::try_from(m.offset)
            .unwrap_or(usize::MAX)
            .min(file.len());
        let to = from
            .saturating_add(usize::try_from(m.len).unwrap_or(usize::MAX))
            .min(file.len());
        if to > from {
            self.t(s.write_bytes(Addr::new(sc.ret as u64), &file[from..to]))?;
        }
        let mut s = s;
        if !writable || prot & libc::PROT_READ as u64 == 0 {
            let (st, ret) = self.t(s.inject_syscall(
                libc::SYS_mprotect as u64,
                [sc.ret as u64, m.len, prot, 0, 0, 0],
            ))?;
            s = st;
            if ret != 0 {
                self.put_live(s);
                return Err(self.diverged(
                    "mprotect of the replayed mapping".into(),
                    format!("it returned {ret}"),
                ));
            }
        }
        // The kernel preserves argument registers across a syscall; so does the replay.
        let mut back = regs;
        back.set_syscall_ret(sc.ret);
        self.t(s.set_regs(&back))?;
        let n = self.next_event();
        self.applied();
        // inject_syscall leaves a signal-delivery stop; without it this is the exit stop.
        let kind = if !writable || prot & libc::PROT_READ as u64 == 0 {
            Kind::SignalDelivery
        } else {
            Kind::SyscallExit(n)
        };
        self.at_boundary(s, kind);
        Ok(())
    }

    /// At the seccomp stop of the recorded mmap `sc`: makes it an anonymous, writable,
    /// fixed mapping at the address the recording got, run to its exit stop.
    pub(crate) fn anonymous_at(
        &mut self,
        s: Stopped,
        regs: Regs,
        sc: &SyscallEvent,
        what: String,
    ) -> Result<Stopped> {
        let mut r = regs;
        r.set_rdi(sc.ret as u64);
        r.set_rdx(sc.args[2] | libc::PROT_WRITE as u64 | libc::PROT_READ as u64);
        r.set_r10((libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED) as u64);
        r.set_r8(u64::MAX);
        r.set_r9(0);
        self.t(s.set_regs(&r))?;
        let s = self.run_to_exit_stop(s)?;
        let got = self.t(s.regs())?.syscall_ret();
        if got != sc.ret {
            self.put_live(s);
            return Err(self.diverged(
                what,
                format!("the anonymous replacement mapping returned {got}"),
            ));
        }
        Ok(s)
    }
}
