//! The oops at umk's SIGSEGV handler: the host's siginfo (`rsi`) and ucontext (`rdx`) give
//! the fault address and the registers of the faulting instruction, from which the crash
//! report and the faulting task's stack are read.

use guest::memory::{self, le_u64};

use crate::collect::Reader;
use crate::error::Result;
use crate::events::{Crash, Regs};

/// `uc_mcontext.gregs` in the x86-64 `ucontext_t`.
const UC_GREGS: u64 = 40;
/// gregs r8 … eflags, in `REG_*` order.
const NGREGS: usize = 18;
/// si_code of a general protection fault, which has no address.
const SI_KERNEL: i32 = 0x80;

/// The crash and its stack (the faulting instruction first), read at the handler's entry.
pub(crate) fn read(rd: &Reader<'_>, g: &trace::Gprs) -> Result<(Crash, Vec<u64>)> {
    let mem = &*rd.tl;
    let signal = memory::u32_at(mem, g.rsi, "siginfo.si_signo")? as i32;
    let code = memory::u32_at(mem, g.rsi + 8, "siginfo.si_code")? as i32;
    let addr = memory::u64_at(mem, g.rsi + 16, "siginfo.si_addr")?;
    let raw = memory::bytes(mem, g.rdx + UC_GREGS, NGREGS * 8, "the fault's ucontext")?;
    let r = |i: usize| le_u64(&raw, i * 8);
    let regs = Regs {
        r8: r(0),
        r9: r(1),
        r10: r(2),
        r11: r(3),
        r12: r(4),
        r13: r(5),
        r14: r(6),
        r15: r(7),
        rdi: r(8),
        rsi: r(9),
        rbp: r(10),
        rbx: r(11),
        rdx: r(12),
        rax: r(13),
        rcx: r(14),
        rsp: r(15),
        rip: r(16),
        eflags: r(17),
    };
    let fault_addr = (code != SI_KERNEL).then_some(addr);
    let code_bytes = rd.tl.read_memory(regs.rip, 16).unwrap_or_default();
    let mut stack = vec![regs.rip];
    rd.rbp_chain(regs.rbp, &mut stack);
    Ok((
        Crash {
            signal,
            fault_addr,
            regs,
            code: code_bytes,
        },
        stack,
    ))
}
