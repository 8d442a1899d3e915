//! x86_64 specifics: the context switch, a new task's first frame, the breakpoint used by
//! the execution-point ABI, and reading the current registers for panic reports.

pub mod switch;

/// Traps into the tracer (`int3`). Only reached when a recorder set REWIND_TICK_TARGET.
#[inline(always)]
pub fn breakpoint() {
    // SAFETY: int3 raises SIGTRAP; a tracer consumes it. Natively the target is never hit.
    unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
}

/// General-purpose registers as a panic report prints them.
#[derive(Clone, Copy, Default, Debug)]
pub struct Regs {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub eflags: u64,
}

impl Regs {
    /// The caller's stack and frame pointers (for a panic raised in Rust code).
    #[inline(always)]
    pub fn here() -> Regs {
        let (rsp, rbp, rip): (u64, u64, u64);
        // SAFETY: reads three registers, touches no memory.
        unsafe {
            core::arch::asm!("mov {0}, rsp", "mov {1}, rbp", "lea {2}, [rip]", out(reg) rsp, out(reg) rbp, out(reg) rip, options(nomem, nostack));
        }
        Regs {
            rip,
            rsp,
            rbp,
            ..Regs::default()
        }
    }

    /// Registers saved by the host in a signal frame's ucontext (x86_64 `mcontext_t` gregs
    /// start at byte 40 of `ucontext_t`, in the order r8..r15, rdi, rsi, rbp, rbx, rdx,
    /// rax, rcx, rsp, rip, eflags).
    ///
    /// # Safety
    /// `ucontext` must be the third argument the host passed to an SA_SIGINFO handler.
    pub unsafe fn from_ucontext(ucontext: usize) -> Regs {
        let g = (ucontext + 40) as *const u64;
        // SAFETY: the caller guarantees `ucontext` points at a live ucontext_t whose gregs
        // array holds at least 18 entries.
        let r = |i: usize| unsafe { g.add(i).read() };
        Regs {
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
        }
    }
}

/// Walks the frame-pointer chain from `rbp` and returns up to `out.len()` return addresses.
/// Stops at a null, misaligned or out-of-range frame, so a corrupt stack ends the walk
/// instead of faulting.
pub fn backtrace(mut rbp: u64, stack_lo: u64, stack_hi: u64, out: &mut [u64]) -> usize {
    let mut n = 0;
    while n < out.len()
        && rbp != 0
        && rbp.is_multiple_of(8)
        && rbp >= stack_lo
        && rbp + 16 <= stack_hi
    {
        // SAFETY: rbp lies within the task's own stack [stack_lo, stack_hi), checked above.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        out[n] = ret;
        n += 1;
        if next <= rbp {
            break;
        }
        rbp = next;
    }
    n
}
