//! The x86-64 registers gdb is served, with the ones the stub cannot know marked
//! unavailable (`x` in a `g` reply): a switched-out task keeps only what its context
//! switch saved, and gdb shows the rest as `<unavailable>` instead of a made-up zero.

use gdbstub::arch::{Arch, Registers};
use gdbstub_arch::x86::reg::id::X86_64CoreRegId;
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use gdbstub_arch::x86::X86_64_SSE;

/// gdb's `i386:x86-64` with SSE, as `gdbstub_arch` describes it, over [`Regs`].
pub enum Amd64 {}

impl Arch for Amd64 {
    type Usize = u64;
    type Registers = Regs;
    type RegId = X86_64CoreRegId;
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        X86_64_SSE::target_description_xml()
    }
}

/// The general registers in gdb's order (`X86_64CoreRegs::regs`), then rip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gpr {
    Rax = 0,
    Rbx,
    Rcx,
    Rdx,
    Rsi,
    Rdi,
    Rbp,
    Rsp,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    Rip,
}

/// The registers a switched-out task loses: the System V caller-saved ones.
pub const CALLER_SAVED: [Gpr; 9] = [
    Gpr::Rax,
    Gpr::Rcx,
    Gpr::Rdx,
    Gpr::Rsi,
    Gpr::Rdi,
    Gpr::R8,
    Gpr::R9,
    Gpr::R10,
    Gpr::R11,
];

/// The callee-saved registers a context switch pushes.
pub const CALLEE_SAVED: [Gpr; 6] = [Gpr::Rbx, Gpr::Rbp, Gpr::R12, Gpr::R13, Gpr::R14, Gpr::R15];

/// gdb's core registers, and which of the general ones are unknown.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Regs {
    pub core: X86_64CoreRegs,
    /// Bit `Gpr as usize` set: that register is unavailable.
    unavailable: u32,
}

impl Regs {
    /// `core` with every register known.
    pub fn known(core: X86_64CoreRegs) -> Regs {
        Regs {
            core,
            unavailable: 0,
        }
    }

    /// Marks `regs` unavailable.
    pub fn without(mut self, regs: &[Gpr]) -> Regs {
        for &r in regs {
            self.unavailable |= 1 << r as u32;
        }
        self
    }

    /// Whether `r` is unavailable.
    pub fn is_unavailable(&self, r: Gpr) -> bool {
        self.unavailable & (1 << r as u32) != 0
    }
}

impl Registers for Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.core.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        // The general registers and rip come first, eight bytes each.
        let mut at = 0usize;
        self.core.gdb_serialize(|b| {
            let unknown = at < 17 * 8 && self.unavailable & (1 << (at / 8)) != 0;
            write_byte(if unknown { None } else { b });
            at += 1;
        });
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.unavailable = 0;
        self.core.gdb_deserialize(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialized(r: &Regs) -> Vec<Option<u8>> {
        let mut out = Vec::new();
        r.gdb_serialize(|b| out.push(b));
        out
    }

    #[test]
    fn unavailable_registers_are_x_and_the_others_their_bytes() {
        let mut core = X86_64CoreRegs::default();
        core.regs[Gpr::Rbx as usize] = 0x1122_3344_5566_7788;
        core.regs[Gpr::Rcx as usize] = 7;
        core.rip = 0xdead_beef;
        let full = serialized(&Regs::known(core.clone()));
        let part = Regs::known(core).without(&CALLER_SAVED);
        let cut = serialized(&part);
        assert_eq!(full.len(), cut.len());
        for (i, (a, b)) in full.iter().zip(&cut).enumerate() {
            let unknown = i < 17 * 8 && CALLER_SAVED.iter().any(|&r| i / 8 == r as usize);
            assert_eq!(*b, if unknown { None } else { *a }, "byte {i}");
        }
        assert!(part.is_unavailable(Gpr::Rcx) && !part.is_unavailable(Gpr::Rbx));
        assert_eq!(cut[8..16], 0x1122_3344_5566_7788u64.to_le_bytes().map(Some));
        assert_eq!(part.pc(), 0xdead_beef);
    }
}
