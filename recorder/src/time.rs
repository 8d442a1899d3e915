//! The time stamp counter as a source of nondeterminism: with PR_SET_TSC(PR_TSC_SIGSEGV)
//! every `rdtsc`/`rdtscp` in the tracee raises SIGSEGV (si_code SI_KERNEL); the recorder
//! reads the host's counter, writes it into the tracee's registers, steps over the
//! instruction and logs the value. (Clock system calls are covered by the syscall table.)

use trace::{Event, RdtscEvent, RemoteAddr};
use tracee::cpu::TscInsn;
use tracee::{Regs, Resume, Running, Stopped};

use crate::error::Result;
use crate::session::Session;

impl Session {
    /// Emulates a trapped `rdtsc`/`rdtscp` and logs it.
    pub(crate) fn on_rdtsc(
        &mut self,
        s: Stopped,
        mut regs: Regs,
        insn: TscInsn,
    ) -> Result<Running> {
        let (value, aux, len) = match insn {
            TscInsn::Rdtsc => (tracee::cpu::rdtsc(), None, 2),
            TscInsn::Rdtscp => {
                let (v, a) = tracee::cpu::rdtscp();
                (v, Some(a), 3)
            }
        };
        let ticks = self.read_ticks(&s)?;
        let rip = regs.rip();
        regs.set_rax(value & 0xffff_ffff);
        regs.set_rdx(value >> 32);
        if let Some(a) = aux {
            regs.set_rcx(u64::from(a));
        }
        regs.set_rip(regs.rip() + len);
        self.t(s.set_regs(&regs))?;
        self.append(Event::Rdtsc(RdtscEvent {
            rip: RemoteAddr(rip),
            value,
            aux,
            ticks,
        }))?;
        self.t(s.resume(Resume::Cont(None)))
    }
}
