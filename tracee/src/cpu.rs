//! The host CPU: CPUID, the time stamp counter, CPU pinning, whether the kernel can trap
//! rdtsc (PR_SET_TSC) and cpuid (ARCH_SET_CPUID) for a tracee, and which instruction a
//! trapped SIGSEGV stopped at.

use core::arch::x86_64;

/// A time-stamp-counter instruction at the faulting rip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TscInsn {
    /// `0f 31`
    Rdtsc,
    /// `0f 01 f9`
    Rdtscp,
}

/// Recognizes the instruction bytes at a SIGSEGV that PR_TSC_SIGSEGV raised.
pub fn decode_tsc(bytes: &[u8]) -> Option<TscInsn> {
    match bytes {
        [0x0f, 0x31, ..] => Some(TscInsn::Rdtsc),
        [0x0f, 0x01, 0xf9, ..] => Some(TscInsn::Rdtscp),
        _ => None,
    }
}

/// Runs CPUID on the host: `[eax, ebx, ecx, edx]`.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID is available on every x86_64 CPU and has no side effects.
    let r = unsafe { x86_64::__cpuid_count(leaf, subleaf) };
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// Reads the host's time stamp counter.
pub fn rdtsc() -> u64 {
    #[allow(unused_unsafe)]
    // SAFETY: RDTSC is available on every x86_64 CPU; the recorder itself does not run
    // with PR_SET_TSC, so it does not fault.
    unsafe {
        x86_64::_rdtsc()
    }
}

/// Reads the time stamp counter and IA32_TSC_AUX, as rdtscp does.
pub fn rdtscp() -> (u64, u32) {
    let mut aux = 0u32;
    #[allow(unused_unsafe)]
    // SAFETY: `aux` is a valid u32 to write; RDTSCP exists on every CPU this runs on
    // (checked by the caller through CPUID 0x80000001 EDX bit 27 before use).
    let v = unsafe { x86_64::__rdtscp(&mut aux) };
    (v, aux)
}

/// The CPU the calling thread runs on.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).ok()
}

/// Pins the calling thread to `cpu`; children forked afterwards inherit the pin.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).map_err(std::io::Error::from)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(std::io::Error::from)
}

/// Undoes `pin_current_thread`: lets the calling thread run on every CPU it may use.
pub fn unpin_current_thread() -> std::io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for c in 0..nix::sched::CpuSet::count() {
        let _ = set.set(c);
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(std::io::Error::from)
}

const ARCH_GET_CPUID: i32 = 0x1011;
const ARCH_SET_CPUID: i32 = 0x1012;

/// Whether this kernel and CPU support CPUID faulting. Probed on a throwaway thread, as
/// the setting is per thread.
pub fn cpuid_faulting_supported() -> bool {
    std::thread::spawn(|| {
        // SAFETY: arch_prctl with integer arguments; turning faulting on and straight off
        // again on this short-lived thread, which runs no cpuid in between.
        unsafe {
            if libc::syscall(libc::SYS_arch_prctl, ARCH_GET_CPUID, 0) < 0 {
                return false;
            }
            if libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0 {
                return false;
            }
            libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 1);
        }
        true
    })
    .join()
    .unwrap_or(false)
}

/// The arch_prctl code that turns CPUID faulting on (argument 0) or off (1).
pub const ARCH_SET_CPUID_CODE: u64 = ARCH_SET_CPUID as u64;

/// Whether PR_SET_TSC is available (it is on x86_64 Linux unless seccomp forbids prctl).
pub fn tsc_trapping_supported() -> bool {
    let mut mode: libc::c_int = 0;
    // SAFETY: PR_GET_TSC writes one int through the pointer, which points at `mode`.
    unsafe { libc::prctl(libc::PR_GET_TSC, &mut mode as *mut libc::c_int, 0, 0, 0) == 0 }
}

/// Whether the calling thread may run on `cpu` (its affinity mask allows it).
pub fn cpu_allowed(cpu: usize) -> bool {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .ok()
        .and_then(|set| set.is_set(cpu).ok())
        .unwrap_or(false)
}

/// `AT_MINSIGSTKSZ`: the size of the signal frame this kernel builds on this CPU (it
/// grows with the XSAVE area), if the kernel says.
pub const AT_MINSIGSTKSZ: u64 = 51;

/// This host's signal frame size (`AT_MINSIGSTKSZ` of this process), if the kernel says.
pub fn signal_frame_size() -> Option<u64> {
    // SAFETY: getauxval only reads this process's auxiliary vector.
    let v = unsafe { libc::getauxval(AT_MINSIGSTKSZ as libc::c_ulong) };
    (v != 0).then_some(v)
}
