//! x86_64 user registers, with names for the system call ABI.

/// The tracee's general-purpose registers (`user_regs_struct`).
#[derive(Clone, Copy)]
pub struct Regs(pub libc::user_regs_struct);

impl Regs {
    /// The system call number at a syscall or seccomp stop (`orig_rax`).
    pub fn syscall_nr(&self) -> u64 {
        self.0.orig_rax
    }

    /// The six syscall argument registers.
    pub fn syscall_args(&self) -> [u64; 6] {
        let r = &self.0;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
    }

    /// The return value register, signed.
    pub fn syscall_ret(&self) -> i64 {
        self.0.rax as i64
    }

    /// Sets the return value register.
    pub fn set_syscall_ret(&mut self, v: i64) {
        self.0.rax = v as u64;
    }

    /// Instruction pointer.
    pub fn rip(&self) -> u64 {
        self.0.rip
    }

    /// Stack pointer.
    pub fn rsp(&self) -> u64 {
        self.0.rsp
    }

    /// The registers in `user_regs_struct` order.
    pub fn to_array(&self) -> [u64; 27] {
        let r = &self.0;
        [
            r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx,
            r.rdx, r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base,
            r.gs_base, r.ds, r.es, r.fs, r.gs,
        ]
    }

    /// Whether the registers a program can observe are equal; `orig_rax` and the
    /// resume-flag bit of eflags are kernel bookkeeping and ignored.
    pub fn same_user_state(&self, other: &Regs) -> bool {
        let mut a = self.to_array();
        let mut b = other.to_array();
        a[15] = 0;
        b[15] = 0;
        const RF: u64 = 1 << 16;
        a[18] &= !RF;
        b[18] &= !RF;
        a == b
    }
}

impl std::fmt::Debug for Regs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.0;
        write!(
            f,
            "Regs {{ rip: {:#x}, rsp: {:#x}, rax: {:#x}, orig_rax: {:#x}, rdi: {:#x}, rsi: {:#x}, rdx: {:#x} }}",
            r.rip, r.rsp, r.rax, r.orig_rax, r.rdi, r.rsi, r.rdx
        )
    }
}
