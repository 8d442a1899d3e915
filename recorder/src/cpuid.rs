//! CPUID as a source of nondeterminism. With CPUID faulting (arch_prctl ARCH_SET_CPUID),
//! each `cpuid` in the tracee raises SIGSEGV; the recorder answers from the host with
//! RDRAND and RDSEED hidden (so programs cannot draw unrecorded random numbers) and logs
//! the answer. Without faulting (the host or hypervisor lacks it), `cpuid` runs natively:
//! the header then carries the host's answers, for replay to check its CPU against.

use trace::{CpuidRecord, Event, RemoteAddr};
use tracee::{Regs, Resume, Running, Stopped};

use crate::error::Result;
use crate::session::Session;

/// CPUID.1:ECX bit 30.
const RDRAND: u32 = 1 << 30;
/// CPUID.(7,0):EBX bit 18.
const RDSEED: u32 = 1 << 18;

/// The answer the tracee gets for `(leaf, subleaf)`.
pub fn answer(leaf: u32, subleaf: u32, hide_random: bool) -> [u32; 4] {
    let mut r = tracee::cpu::cpuid(leaf, subleaf);
    if hide_random {
        if leaf == 1 {
            r[2] &= !RDRAND;
        }
        if leaf == 7 && subleaf == 0 {
            r[1] &= !RDSEED;
        }
    }
    r
}

/// Leaves that take a subleaf in ecx.
fn has_subleaves(leaf: u32) -> bool {
    matches!(
        leaf,
        4 | 7 | 0xb | 0xd | 0xf | 0x10 | 0x12 | 0x14 | 0x17 | 0x18 | 0x1d | 0x1f | 0x8000_001d
    )
}

/// Every standard and extended leaf the CPU reports, as the tracee sees them.
pub fn records(hide_random: bool) -> Vec<CpuidRecord> {
    let mut out = Vec::new();
    for base in [0u32, 0x8000_0000] {
        let max = tracee::cpu::cpuid(base, 0)[0];
        if max < base {
            continue;
        }
        for leaf in base..=max.min(base + 0x40) {
            let subs = if has_subleaves(leaf) { 8 } else { 1 };
            for subleaf in 0..subs {
                out.push(CpuidRecord {
                    leaf,
                    subleaf,
                    answer: answer(leaf, subleaf, hide_random),
                });
            }
        }
    }
    out
}

impl Session {
    /// A trapped `cpuid` at `regs.rip`: answer it, log it, step over it.
    pub(crate) fn on_cpuid(&mut self, s: Stopped, mut regs: Regs) -> Result<Running> {
        // cpuid reads its leaf and subleaf from eax and ecx, the registers' low halves.
        let (leaf, subleaf) = (
            tracee::abi::low32(regs.rax()),
            tracee::abi::low32(regs.rcx()),
        );
        let a = answer(leaf, subleaf, true);
        let ticks = self.read_ticks(&s)?;
        let rip = regs.rip();
        regs.set_rax(u64::from(a[0]));
        regs.set_rbx(u64::from(a[1]));
        regs.set_rcx(u64::from(a[2]));
        regs.set_rdx(u64::from(a[3]));
        regs.set_rip(regs.rip() + 2);
        self.t(s.set_regs(&regs))?;
        self.append(Event::Cpuid(trace::CpuidEvent {
            rip: RemoteAddr(rip),
            leaf,
            subleaf,
            answer: a,
            ticks,
        }))?;
        self.t(s.resume(Resume::Cont(None)))
    }
}
