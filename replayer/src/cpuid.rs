//! CPUID, replayer side (mirror of `recorder::cpuid`). With faulting on at record time,
//! each trapped `cpuid` gets its recorded answer. Without it (this host's case: the
//! hypervisor refuses ARCH_SET_CPUID), `cpuid` runs natively at replay too, so the replay
//! CPU must answer the leaves a program branches on as the recording's did: vendor and
//! maximum leaf (0), family/model/features (1, without the APIC id) and extended features
//! (7). A different CPU is refused before the replay starts.

use trace::{CpuidInfo, Event, RemoteAddr};
use tracee::{Regs, Stopped};

use crate::error::Result;
use crate::session::{Engine, Kind};

/// Why this CPU cannot replay a recording made without CPUID faulting, if it cannot.
pub fn check_host(info: &CpuidInfo) -> Option<String> {
    if info.faulting {
        return None;
    }
    for rec in &info.records {
        let mask: [u32; 4] = match (rec.leaf, rec.subleaf) {
            (0, 0) => [!0, !0, !0, !0],
            // EBX[31:24] is the initial APIC id: the CPU it ran on, not what it is.
            (1, 0) => [!0, 0x00ff_ffff, !0, !0],
            (7, 0) => [!0, !0, !0, !0],
            _ => continue,
        };
        let host = tracee::cpu::cpuid(rec.leaf, rec.subleaf);
        if (0..4).any(|i| host[i] & mask[i] != rec.answer[i] & mask[i]) {
            return Some(format!(
                "CPUID leaf {:#x} answers {:08x?} here but {:08x?} in the recording, which ran \
                 cpuid natively (no CPUID faulting): replay needs the same CPU model",
                rec.leaf, host, rec.answer
            ));
        }
    }
    None
}

impl Engine {
    /// A trapped `cpuid`: check it is the recorded one and write its answer.
    pub(crate) fn on_cpuid(&mut self, s: Stopped, mut regs: Regs, ev: &Event) -> Result<()> {
        let Event::Cpuid(c) = ev else {
            let rip = regs.rip();
            return Err(self.diverged(crate::describe(ev), format!("a cpuid at rip {rip:#x}")));
        };
        // cpuid reads its leaf from eax, the low half of rax.
        let leaf = tracee::abi::low32(regs.rax());
        if c.rip != RemoteAddr(regs.rip()) || leaf != c.leaf {
            return Err(self.diverged(
                format!("cpuid leaf {:#x} at rip {}", c.leaf, c.rip),
                format!("cpuid leaf {leaf:#x} at rip {:#x}", regs.rip()),
            ));
        }
        regs.set_rax(u64::from(c.answer[0]));
        regs.set_rbx(u64::from(c.answer[1]));
        regs.set_rcx(u64::from(c.answer[2]));
        regs.set_rdx(u64::from(c.answer[3]));
        regs.set_rip(regs.rip() + 2);
        self.t(s.set_regs(&regs))?;
        self.applied();
        self.at_boundary(s, Kind::SignalDelivery);
        Ok(())
    }
}
