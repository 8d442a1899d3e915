//! Kernel panics and oopses. A panic prints Linux's `Kernel panic - not syncing: …` with
//! the task, its registers, a frame-pointer call trace and raw stack words, then aborts
//! with SIGABRT so that a recorder sees a crash, at an exact instruction, not an exit.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::{backtrace, Regs};
use crate::printk::LineBuf;
use crate::sched::task;

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Rust `panic!` in the kernel: a kernel panic.
pub fn rust_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let regs = Regs::here();
    let mut msg = LineBuf::new();
    let _ = write!(msg, "{}", info.message());
    if let Some(loc) = info.location() {
        let _ = write!(msg, " (at {}:{})", loc.file(), loc.line());
    }
    panic_with(core::str::from_utf8(msg.as_bytes()).unwrap_or("?"), &regs)
}

/// A fault taken in kernel code (SIGSEGV): an oops, then a panic.
pub fn oops(addr: u64, general_protection: bool, regs: &Regs) -> ! {
    if general_protection {
        crate::printk!(
            "general protection fault, probably for non-canonical address {:#018x}",
            regs_fault_hint(addr, regs)
        );
    } else if addr < 4096 {
        crate::printk!(
            "BUG: kernel NULL pointer dereference, address: {:#018x}",
            addr
        );
    } else {
        crate::printk!(
            "BUG: unable to handle page fault for address: {:#018x}",
            addr
        );
    }
    crate::printk!("Oops: 0000 [#1] PREEMPT");
    panic_with("Fatal exception", regs)
}

/// For a general protection fault the host reports address 0; the poisoned pointer is in
/// one of the registers, and the most useful guess is the one that looks like poison.
fn regs_fault_hint(addr: u64, regs: &Regs) -> u64 {
    let all = [
        regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.r8, regs.r9, regs.r10,
        regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
    ];
    all.into_iter()
        .find(|&r| r & 0xffff_0000_0000_0000 != 0 && r < 0xffff_8000_0000_0000)
        .unwrap_or(addr)
}

fn panic_with(msg: &str, regs: &Regs) -> ! {
    if PANICKING.swap(true, Ordering::Relaxed) {
        crate::host::process::abort();
    }
    crate::host::process::stop_timer();
    let cur = crate::sched::current();
    let t = task::snapshot(cur);
    crate::printk!("Kernel panic - not syncing: {}", msg);
    crate::printk!(
        "CPU: 0 PID: {} Comm: {} umk {}",
        t.pid,
        t.name(),
        crate::VERSION
    );
    crate::printk!(
        "RIP: {:#018x} RSP: {:#018x} EFLAGS: {:08x}",
        regs.rip,
        regs.rsp,
        regs.eflags
    );
    crate::printk!(
        "RAX: {:016x} RBX: {:016x} RCX: {:016x}",
        regs.rax,
        regs.rbx,
        regs.rcx
    );
    crate::printk!(
        "RDX: {:016x} RSI: {:016x} RDI: {:016x}",
        regs.rdx,
        regs.rsi,
        regs.rdi
    );
    crate::printk!(
        "RBP: {:016x} R08: {:016x} R09: {:016x}",
        regs.rbp,
        regs.r8,
        regs.r9
    );
    crate::printk!(
        "R10: {:016x} R11: {:016x} R12: {:016x}",
        regs.r10,
        regs.r11,
        regs.r12
    );
    crate::printk!(
        "R13: {:016x} R14: {:016x} R15: {:016x}",
        regs.r13,
        regs.r14,
        regs.r15
    );
    let (lo, hi) = if t.stack_hi != 0 {
        (t.stack_lo, t.stack_hi)
    } else {
        (regs.rsp, regs.rsp.saturating_add(256 * 1024))
    };
    let mut frames = [0u64; 24];
    let n = backtrace(regs.rbp, lo, hi, &mut frames);
    crate::printk!("Call Trace:");
    for f in &frames[..n] {
        crate::printk!(" [<{:016x}>]", f);
    }
    crate::printk!("Stack:");
    let mut line = LineBuf::new();
    let mut sp = regs.rsp & !7;
    for i in 0..32 {
        if sp < lo || sp + 8 > hi {
            break;
        }
        // SAFETY: sp lies within the task's stack, checked above.
        let word = unsafe { *(sp as *const u64) };
        let _ = write!(line, " {word:016x}");
        if i % 4 == 3 {
            crate::printk!("{}", core::str::from_utf8(line.as_bytes()).unwrap_or(""));
            line = LineBuf::new();
        }
        sp += 8;
    }
    crate::printk!("---[ end Kernel panic - not syncing: {} ]---", msg);
    crate::host::process::abort()
}
