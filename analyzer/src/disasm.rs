//! Instruction decoding with capstone: the code a report shows, and the memory operands
//! the use-after-free and poisoned-pointer passes evaluate with a stop's registers.

use capstone::arch::x86::X86OperandType;
use capstone::arch::{ArchDetail, ArchOperand, BuildsCapstone, BuildsCapstoneSyntax};
use capstone::Capstone;

use crate::error::{Error, Result};

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    pub addr: u64,
    pub bytes: Vec<u8>,
    pub mnemonic: String,
    pub operands: String,
    /// Memory operands, in operand order.
    pub mem: Vec<MemOperand>,
}

impl Insn {
    /// `mov rax, qword ptr [rbx + 0x18]`
    pub fn text(&self) -> String {
        if self.operands.is_empty() {
            self.mnemonic.clone()
        } else {
            format!("{} {}", self.mnemonic, self.operands)
        }
    }
}

/// A memory operand `[base + index*scale + disp]` and the size of the access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemOperand {
    pub base: Option<String>,
    pub index: Option<String>,
    pub scale: i32,
    pub disp: i64,
    pub size: u8,
}

impl MemOperand {
    /// The effective address with the given register values; `None` if a register is
    /// unknown (or rip-relative, which the caller resolves with the next instruction).
    pub fn address(&self, reg: impl Fn(&str) -> Option<u64>) -> Option<u64> {
        let mut a = self.disp as u64;
        if let Some(b) = &self.base {
            a = a.wrapping_add(reg(b)?);
        }
        if let Some(i) = &self.index {
            a = a.wrapping_add(reg(i)?.wrapping_mul(self.scale as u64));
        }
        Some(a)
    }
}

/// Disassembles up to `max` instructions of x86-64 code at `addr`, Intel syntax.
pub fn disassemble(bytes: &[u8], addr: u64, max: usize) -> Result<Vec<Insn>> {
    let err = |e: capstone::Error| Error::Disassemble {
        addr,
        why: e.to_string(),
    };
    let cs = Capstone::new()
        .x86()
        .mode(capstone::arch::x86::ArchMode::Mode64)
        .syntax(capstone::arch::x86::ArchSyntax::Intel)
        .detail(true)
        .build()
        .map_err(err)?;
    let insns = cs.disasm_count(bytes, addr, max).map_err(err)?;
    let mut out = Vec::new();
    for i in insns.iter() {
        let mut mem = Vec::new();
        if let Ok(detail) = cs.insn_detail(i) {
            if let ArchDetail::X86Detail(_) = detail.arch_detail() {
                for op in detail.arch_detail().operands() {
                    if let ArchOperand::X86Operand(op) = op {
                        if let X86OperandType::Mem(m) = op.op_type {
                            let name = |r: capstone::RegId| {
                                if r.0 == 0 {
                                    None
                                } else {
                                    cs.reg_name(r)
                                }
                            };
                            mem.push(MemOperand {
                                base: name(m.base()),
                                index: name(m.index()),
                                scale: m.scale(),
                                disp: m.disp(),
                                size: op.size,
                            });
                        }
                    }
                }
            }
        }
        out.push(Insn {
            addr: i.address(),
            bytes: i.bytes().to_vec(),
            mnemonic: i.mnemonic().unwrap_or("?").to_string(),
            operands: i.op_str().unwrap_or("").to_string(),
            mem,
        });
    }
    if out.is_empty() {
        return Err(Error::Disassemble {
            addr,
            why: "no valid instruction".to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_operands_compute_addresses() {
        // mov rax, qword ptr [rbx + 0x18]
        let insns = disassemble(&[0x48, 0x8b, 0x43, 0x18], 0x1000, 1).unwrap();
        assert_eq!(insns[0].text(), "mov rax, qword ptr [rbx + 0x18]");
        let m = &insns[0].mem[0];
        assert_eq!(m.size, 8);
        assert_eq!(m.address(|r| (r == "rbx").then_some(0x100)), Some(0x118));
    }
}
