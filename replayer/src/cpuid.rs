//! CPUID, replayer side (mirror of `recorder::cpuid`). Three cases, fixed per replay:
//!
//! - The recording ran `cpuid` natively (its host lacked CPUID faulting): it runs natively
//!   at replay too, so the replay CPU must answer the leaves a program branches on as the
//!   recording's did: vendor and maximum leaf (0), family/model/features (1, without the
//!   APIC id) and extended features (7). A different CPU is refused before the start.
//! - The recording trapped every `cpuid` and this host can too: each trap gets its
//!   recorded answer.
//! - The recording trapped every `cpuid` and this host cannot (a hypervisor that refuses
//!   ARCH_SET_CPUID): the recording still lists every execution, in order, each with its
//!   address, so the next one is found again with a temporary breakpoint at the recorded
//!   address — placed only over the bytes of a `cpuid`, and the first time execution
//!   reaches it is that execution, because the recording trapped each one there was. The
//!   breakpoint's trap then gets the recorded answer. A `cpuid` the recording did not have
//!   would run natively here without a trap: the replay finds it at the next event it
//!   reaches, which is not the one the recording has.
//!
//! Either way a recorded answer may name instruction-set features; one this CPU lacks is
//! refused where the program is told of it, before it can use it.

use trace::{CpuidInfo, CpuidRecord, Event, RemoteAddr};
use tracee::{Regs, Stopped};

use crate::error::Result;
use crate::session::{Engine, Kind};

/// The `cpuid` instruction.
pub(crate) const CPUID: [u8; 2] = [0x0f, 0xa2];

/// How this replay answers `cpuid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Natively, as at record time.
    Native,
    /// Trapped by CPUID faulting.
    Faulting,
    /// Found by a temporary breakpoint at the next recorded `cpuid`.
    Breakpoint,
}

impl Mode {
    /// How a recording with `info` is replayed on this host.
    pub(crate) fn for_recording(info: &CpuidInfo) -> Mode {
        if !info.faulting {
            Mode::Native
        } else if tracee::cpu::cpuid_faulting_supported() {
            Mode::Faulting
        } else {
            Mode::Breakpoint
        }
    }
}

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

/// The instruction-set feature bits of a leaf (eax, ebx, ecx, edx): what a program may go
/// on to execute once told. Leaf 1 ECX bit 31 says a hypervisor is present, not a feature;
/// leaf 7 EDX is mostly speculation-control flags and is left out.
fn feature_bits(leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
    match (leaf, subleaf) {
        (1, _) => Some([0, 0, 0x7fff_ffff, !0]),
        (7, 0) => Some([0, !0, !0, 0]),
        (0x8000_0001, _) => Some([0, 0, !0, !0]),
        _ => None,
    }
}

/// The features a recorded answer claims that this CPU lacks, by register, if any.
fn missing_features(c: &CpuidRecord) -> Option<String> {
    let mask = feature_bits(c.leaf, c.subleaf)?;
    let host = tracee::cpu::cpuid(c.leaf, c.subleaf);
    let names = ["eax", "ebx", "ecx", "edx"];
    let missing: Vec<String> = (0..4)
        .filter(|&i| c.answer[i] & mask[i] & !host[i] != 0)
        .map(|i| {
            format!(
                "{} bits {:#010x}",
                names[i],
                c.answer[i] & mask[i] & !host[i]
            )
        })
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

impl Engine {
    /// The recorded `cpuid` at its instruction: check it is the recorded one, that this
    /// CPU has the features it reports, and write its answer.
    pub(crate) fn on_cpuid(&mut self, s: Stopped, mut regs: Regs, ev: &Event) -> Result<()> {
        let Event::Cpuid(c) = ev else {
            let rip = regs.rip();
            return Err(self.diverged(crate::describe(ev), format!("a cpuid at rip {rip:#x}")));
        };
        // cpuid reads its leaf from eax and its subleaf from ecx, the low halves.
        let leaf = tracee::abi::low32(regs.rax());
        let subleaf = tracee::abi::low32(regs.rcx());
        if c.rip != RemoteAddr(regs.rip()) || leaf != c.leaf || subleaf != c.subleaf {
            return Err(self.diverged(
                format!(
                    "cpuid leaf {:#x} subleaf {:#x} at rip {}",
                    c.leaf, c.subleaf, c.rip
                ),
                format!(
                    "cpuid leaf {leaf:#x} subleaf {subleaf:#x} at rip {:#x}",
                    regs.rip()
                ),
            ));
        }
        let record = CpuidRecord {
            leaf: c.leaf,
            subleaf: c.subleaf,
            answer: c.answer,
        };
        if let Some(missing) = missing_features(&record) {
            return Err(self.diverged(
                format!(
                    "a CPU with the features cpuid leaf {:#x} reported at record time",
                    c.leaf
                ),
                format!("this CPU lacks {missing}, which the program would go on to use"),
            ));
        }
        regs.set_rax(u64::from(c.answer[0]));
        regs.set_rbx(u64::from(c.answer[1]));
        regs.set_rcx(u64::from(c.answer[2]));
        regs.set_rdx(u64::from(c.answer[3]));
        regs.set_rip(regs.rip() + CPUID.len() as u64);
        self.t(s.set_regs(&regs))?;
        self.applied();
        self.at_boundary(s, Kind::SignalDelivery);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_this_cpu_has_are_not_missing_and_a_feature_it_lacks_is() {
        let host = tracee::cpu::cpuid(1, 0);
        let same = CpuidRecord {
            leaf: 1,
            subleaf: 0,
            answer: host,
        };
        assert_eq!(missing_features(&same), None);
        // Leaf 1 ECX bit 16 is reserved: no CPU has it.
        let bit = 1u32 << 16;
        assert_eq!(host[2] & bit, 0);
        let more = CpuidRecord {
            answer: [host[0], host[1], host[2] | bit, host[3]],
            ..same
        };
        let why = missing_features(&more).expect("a missing feature");
        assert!(why.contains(&format!("ecx bits {bit:#010x}")), "{why}");
        // The hypervisor bit is not a feature.
        let hv = CpuidRecord {
            answer: [host[0], host[1], host[2] | 1 << 31, host[3]],
            ..same
        };
        assert_eq!(missing_features(&hv), None);
    }
}
