//! x86_64 user registers, with names for the system call ABI.

/// The tracee's general-purpose registers (`user_regs_struct`). Read and changed through
/// named accessors; [`Regs::to_array`] and [`Regs::from_array`] are the kernel-order words
/// other crates convert from and to (`trace::Gprs` speaks the same order).
#[derive(Clone, Copy)]
pub struct Regs(pub(crate) libc::user_regs_struct);

/// A getter and a setter per named register.
macro_rules! named {
    ($($reg:ident / $set:ident),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($reg), "`.")]
            pub fn $reg(&self) -> u64 {
                self.0.$reg
            }

            #[doc = concat!("Sets `", stringify!($reg), "`.")]
            pub fn $set(&mut self, v: u64) {
                self.0.$reg = v;
            }
        )*
    };
}

/// Setters only, for registers nobody outside reads by name.
macro_rules! set_only {
    ($($reg:ident / $set:ident),* $(,)?) => {
        $(
            #[doc = concat!("Sets `", stringify!($reg), "`.")]
            pub fn $set(&mut self, v: u64) {
                self.0.$reg = v;
            }
        )*
    };
}

impl Regs {
    named!(rax / set_rax, rcx / set_rcx, r11 / set_r11, rip / set_rip);
    set_only!(
        rbx / set_rbx,
        rdx / set_rdx,
        rdi / set_rdi,
        rsi / set_rsi,
        r8 / set_r8,
        r9 / set_r9,
        r10 / set_r10,
        orig_rax / set_orig_rax,
    );

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

    /// Stack pointer.
    pub fn rsp(&self) -> u64 {
        self.0.rsp
    }

    /// The flags register.
    pub fn eflags(&self) -> u64 {
        self.0.eflags
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

    /// The registers from the 27 words of `user_regs_struct`, in its order (the inverse of
    /// [`Regs::to_array`]; every field is one of them).
    pub fn from_array(a: [u64; 27]) -> Regs {
        let [r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs] =
            a;
        Regs(libc::user_regs_struct {
            r15,
            r14,
            r13,
            r12,
            rbp,
            rbx,
            r11,
            r10,
            r9,
            r8,
            rax,
            rcx,
            rdx,
            rsi,
            rdi,
            orig_rax,
            rip,
            cs,
            eflags,
            rsp,
            ss,
            fs_base,
            gs_base,
            ds,
            es,
            fs,
            gs,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_round_trips_every_field_in_kernel_order() {
        let words: [u64; 27] = std::array::from_fn(|i| 0x1000 + i as u64);
        let r = Regs::from_array(words);
        assert_eq!(r.to_array(), words);
        assert_eq!(r.rip(), 0x1000 + 16);
        assert_eq!(r.syscall_nr(), 0x1000 + 15);
    }
}
