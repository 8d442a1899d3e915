//! Truncations the x86-64 Linux ABI defines, made explicit once.
//!
//! A system call argument register is 64 bits wide, but the kernel reads an `int` or
//! `unsigned int` argument (a file descriptor, a signal number, an `fcntl`/`prctl`
//! command, a `cpuid` leaf in `eax`/`ecx`) as the register's low 32 bits and ignores the
//! rest. Code that interprets such an argument must read it the same way, or it would
//! disagree with the kernel about what the tracee asked for.

use libc::c_int;

/// The low 32 bits of `reg`, as the kernel (or the CPU, for `cpuid`'s `eax`/`ecx`) reads
/// a 32-bit argument passed in a 64-bit register.
#[must_use]
// why: the x86-64 syscall ABI and the ISA define 32-bit arguments as the register's low
// half; the upper bits are ignored by the kernel, so dropping them is the definition.
#[allow(clippy::cast_possible_truncation)]
pub const fn low32(reg: u64) -> u32 {
    reg as u32
}

/// An `int` system call argument (a file descriptor, a signal number, a command) as the
/// kernel reads it from `reg`: the low 32 bits, as a signed C `int`.
#[must_use]
pub const fn as_c_int(reg: u64) -> c_int {
    low32(reg) as c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_low_half_as_the_kernel_does() {
        assert_eq!(low32(0xdead_beef_0000_0007), 7);
        assert_eq!(as_c_int(0xffff_ffff_ffff_ff9c), -100); // AT_FDCWD sign-extended
        assert_eq!(as_c_int(0x0000_0000_ffff_ff9c), -100); // AT_FDCWD zero-extended
        assert_eq!(as_c_int(0x1_0000_0003), 3);
    }
}
