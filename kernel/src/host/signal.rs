//! Host signals: umk's interrupt lines. SIGALRM is the timer interrupt and SIGIO the
//! console's. Handlers are installed with umk's own restorer (there is no libc to supply
//! one) and without SA_RESTART, so a timer tick interrupts a blocking host call as a
//! hardware interrupt would.

use core::arch::global_asm;

use super::syscall::{nr, syscall4, Errno};

pub const SIGABRT: i32 = 6;
pub const SIGSEGV: i32 = 11;
pub const SIGALRM: i32 = 14;
pub const SIGIO: i32 = 29;

const SA_SIGINFO: u64 = 0x4;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SIG_DFL: usize = 0;

/// The kernel's `struct sigaction` for x86_64 (not libc's).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

global_asm!(
    ".globl umk_sigreturn",
    "umk_sigreturn:",
    "mov rax, {nr}",
    "syscall",
    "ud2",
    nr = const nr::RT_SIGRETURN,
);

extern "C" {
    fn umk_sigreturn();
}

/// An interrupt handler: receives the signal number and the host's siginfo and ucontext.
pub type Handler = extern "C" fn(i32, usize, usize);

/// Installs `handler` for `sig`, blocking `also_block` while it runs. `restart` chooses
/// SA_RESTART: interrupt lines leave it off on purpose.
pub fn install(sig: i32, handler: Handler, also_block: &[i32], restart: bool) -> Result<(), Errno> {
    let mut mask = 0u64;
    for s in also_block {
        mask |= 1 << (s - 1);
    }
    let act = KernelSigaction {
        handler: handler as *const () as usize,
        flags: SA_SIGINFO | SA_RESTORER | if restart { SA_RESTART } else { 0 },
        restorer: umk_sigreturn as *const () as usize,
        mask,
    };
    syscall4(
        nr::RT_SIGACTION,
        sig as usize,
        &act as *const _ as usize,
        0,
        8,
    )
    .map(|_| ())
}

/// Restores the default action for `sig` (used before aborting so the host sees the crash).
pub fn reset_default(sig: i32) {
    let act = KernelSigaction {
        handler: SIG_DFL,
        flags: SA_RESTORER,
        restorer: umk_sigreturn as *const () as usize,
        mask: 0,
    };
    let _ = syscall4(
        nr::RT_SIGACTION,
        sig as usize,
        &act as *const _ as usize,
        0,
        8,
    );
}

const SIG_BLOCK: usize = 0;
const SIG_UNBLOCK: usize = 1;

/// Blocks or unblocks host delivery of `sigs` (used around the context switch-free
/// critical sections of the idle loop).
pub fn set_blocked(sigs: &[i32], blocked: bool) {
    let mut mask = 0u64;
    for s in sigs {
        mask |= 1 << (s - 1);
    }
    let how = if blocked { SIG_BLOCK } else { SIG_UNBLOCK };
    let _ = syscall4(nr::RT_SIGPROCMASK, how, &mask as *const u64 as usize, 0, 8);
}
