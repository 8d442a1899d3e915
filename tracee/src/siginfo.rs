//! `siginfo_t` kept as its raw 128 bytes, which is what the trace stores and what
//! PTRACE_SETSIGINFO takes back, with accessors for the fields the recorder reads.

/// Size of the kernel's `siginfo_t`.
pub const SIGINFO_LEN: usize = 128;

/// `si_code` values the recorder distinguishes.
pub mod code {
    /// Sent by kill(2).
    pub const SI_USER: i32 = 0;
    /// Sent by the kernel (e.g. the #GP of a trapped rdtsc).
    pub const SI_KERNEL: i32 = 0x80;
    /// Sent by tkill/tgkill.
    pub const SI_TKILL: i32 = -6;
    /// Sent by sigqueue.
    pub const SI_QUEUE: i32 = -1;
    /// From a POSIX timer.
    pub const SI_TIMER: i32 = -2;
}

/// A raw `siginfo_t`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigInfo(pub [u8; SIGINFO_LEN]);

impl SigInfo {
    fn i32_at(&self, o: usize) -> i32 {
        i32::from_le_bytes([self.0[o], self.0[o + 1], self.0[o + 2], self.0[o + 3]])
    }

    /// `si_signo`.
    pub fn signo(&self) -> i32 {
        self.i32_at(0)
    }

    /// `si_code`.
    pub fn code(&self) -> i32 {
        self.i32_at(8)
    }

    /// `si_pid` (meaningful for SI_USER, SI_TKILL, SI_QUEUE, SIGCHLD).
    pub fn pid(&self) -> i32 {
        self.i32_at(16)
    }

    /// `si_addr` (meaningful for faults).
    pub fn addr(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[16..24]);
        u64::from_le_bytes(b)
    }

    /// Whether the kernel raised it for an instruction the tracee executed (a fault or a
    /// trap), as opposed to a signal sent to it.
    pub fn is_synchronous_fault(&self) -> bool {
        use nix::libc::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
        let s = self.signo();
        (s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE || s == SIGTRAP)
            && (self.code() > 0)
    }
}

impl std::fmt::Debug for SigInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigInfo(signo {}, code {}, pid {}, addr {:#x})",
            self.signo(),
            self.code(),
            self.pid(),
            self.addr()
        )
    }
}
