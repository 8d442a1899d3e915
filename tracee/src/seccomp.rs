//! Building and installing the seccomp BPF filter that decides which system calls stop
//! the tracee (SECCOMP_RET_TRACE) and which run without a ptrace stop.

/// What the filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run it; the tracer never sees it.
    Allow,
    /// Stop at PTRACE_EVENT_SECCOMP with this data.
    Trace(u16),
    /// Fail it with this errno without running it.
    Errno(u16),
}

impl Action {
    fn ret(self) -> u32 {
        const RET_ALLOW: u32 = 0x7fff_0000;
        const RET_TRACE: u32 = 0x7ff0_0000;
        const RET_ERRNO: u32 = 0x0005_0000;
        match self {
            Action::Allow => RET_ALLOW,
            Action::Trace(d) => RET_TRACE | u32::from(d),
            Action::Errno(e) => RET_ERRNO | u32::from(e),
        }
    }
}

/// A rule for one syscall number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Always this action.
    Always(u32, Action),
    /// `if args[arg] & mask != 0 { when_set } else { when_clear }` (low 32 bits of the arg).
    ArgMask {
        /// Syscall number.
        nr: u32,
        /// Argument index 0..6.
        arg: u8,
        /// Bits tested.
        mask: u32,
        /// Action when any bit is set.
        when_set: Action,
        /// Action when none is.
        when_clear: Action,
    },
}

/// A call made from one instruction address: the action taken before any rule by number
/// (the syscall buffer's untraced entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromAddress {
    /// The address after the `syscall` instruction, as `seccomp_data.instruction_pointer`.
    pub rip: u64,
    /// What the filter does with a call from there.
    pub action: Action,
}

/// A compiled filter, as the kernel's `sock_filter` array.
#[derive(Debug, Clone)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
}

/// A BPF opcode as `sock_filter.code` holds it. libc spells the opcode bits as `u32`;
/// the field is 16 bits (linux/filter.h), and a value that did not fit would fail the
/// build here rather than be cut.
// why: the classic-BPF ABI defines `code` as a __u16; the assert proves nothing is lost.
#[allow(clippy::cast_possible_truncation)]
const fn bpf_code(bits: u32) -> u16 {
    assert!(bits <= 0xffff, "a BPF opcode is 16 bits");
    bits as u16
}

const BPF_LD_W_ABS: u16 = bpf_code(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS);
const BPF_JEQ_K: u16 = bpf_code(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K);
const BPF_JGE_K: u16 = bpf_code(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K);
const BPF_JSET_K: u16 = bpf_code(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K);
const BPF_RET_K: u16 = bpf_code(libc::BPF_RET | libc::BPF_K);
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP: u32 = 8;
const OFF_ARGS: u32 = 16;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Program {
    /// Compiles `rules`; calls without a rule get `default`. Non-x86_64 and x32 calls
    /// are always traced, so the tracer can refuse them by name.
    pub fn compile(rules: &[Rule], default: Action) -> Program {
        Program::compile_with(None, rules, default)
    }

    /// As [`Program::compile`], with calls from `from.rip` (x86_64 ones) decided first.
    pub fn compile_with(from: Option<FromAddress>, rules: &[Rule], default: Action) -> Program {
        let trace_all = Action::Trace(0).ret();
        let mut p = vec![
            insn(BPF_LD_W_ABS, 0, 0, OFF_ARCH),
            insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            insn(BPF_RET_K, 0, 0, trace_all),
        ];
        if let Some(f) = from {
            // Both halves of the little-endian 64-bit instruction pointer must match.
            let b = f.rip.to_le_bytes();
            let low = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let high = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            p.extend([
                insn(BPF_LD_W_ABS, 0, 0, OFF_IP),
                insn(BPF_JEQ_K, 0, 3, low),
                insn(BPF_LD_W_ABS, 0, 0, OFF_IP + 4),
                insn(BPF_JEQ_K, 0, 1, high),
                insn(BPF_RET_K, 0, 0, f.action.ret()),
            ]);
        }
        p.extend([
            insn(BPF_LD_W_ABS, 0, 0, OFF_NR),
            insn(BPF_JGE_K, 0, 1, 0x4000_0000),
            insn(BPF_RET_K, 0, 0, trace_all),
        ]);
        for rule in rules {
            match *rule {
                Rule::Always(nr, action) => {
                    p.push(insn(BPF_JEQ_K, 0, 1, nr));
                    p.push(insn(BPF_RET_K, 0, 0, action.ret()));
                }
                Rule::ArgMask {
                    nr,
                    arg,
                    mask,
                    when_set,
                    when_clear,
                } => {
                    p.push(insn(BPF_JEQ_K, 0, 4, nr));
                    p.push(insn(BPF_LD_W_ABS, 0, 0, OFF_ARGS + 8 * u32::from(arg)));
                    p.push(insn(BPF_JSET_K, 0, 1, mask));
                    p.push(insn(BPF_RET_K, 0, 0, when_set.ret()));
                    p.push(insn(BPF_RET_K, 0, 0, when_clear.ret()));
                }
            }
        }
        p.push(insn(BPF_RET_K, 0, 0, default.ret()));
        Program { insns: p }
    }

    /// The program as the kernel reads a `sock_filter` array: 8 bytes per instruction.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.insns
            .iter()
            .flat_map(|i| {
                let mut b = [0u8; 8];
                b[0..2].copy_from_slice(&i.code.to_le_bytes());
                b[2] = i.jt;
                b[3] = i.jf;
                b[4..8].copy_from_slice(&i.k.to_le_bytes());
                b
            })
            .collect()
    }

    /// Its number of instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The instructions packed as u64s (code | jt << 16 | jf << 24 | k << 32), for the trace.
    pub fn to_words(&self) -> Vec<u64> {
        self.insns
            .iter()
            .map(|i| {
                u64::from(i.code)
                    | u64::from(i.jt) << 16
                    | u64::from(i.jf) << 24
                    | u64::from(i.k) << 32
            })
            .collect()
    }

    /// Rebuilds a program from `to_words` output.
    pub fn from_words(words: &[u64]) -> Program {
        let insns = words
            .iter()
            .map(|&w| {
                // The fields of `to_words`' packing, byte by byte: nothing to cut.
                let [c0, c1, jt, jf, k0, k1, k2, k3] = w.to_le_bytes();
                insn(
                    u16::from_le_bytes([c0, c1]),
                    jt,
                    jf,
                    u32::from_le_bytes([k0, k1, k2, k3]),
                )
            })
            .collect();
        Program { insns }
    }

    /// Installs the filter on the calling thread, after PR_SET_NO_NEW_PRIVS. Uses only
    /// async-signal-safe calls and no allocation, so it may run between fork and exec.
    pub fn install(&self) -> std::io::Result<()> {
        // `sock_fprog.len` is an unsigned short; a longer program must be refused, not
        // installed as its first `len % 65536` instructions. EINVAL is what the kernel
        // answers for a program over BPF_MAXINSNS, and needs no allocation after fork.
        let len = u16::try_from(self.insns.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let prog = libc::sock_fprog {
            len,
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `prog` points at `self.insns`, which outlives the call; the kernel copies
        // the filter before returning.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}
