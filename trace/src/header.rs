//! The trace header: everything about the recorded process that is fixed at exec time
//! (program, argv, env, auxv, the initial stack's random bytes, CPUID, mappings made by
//! the kernel's ELF loader) plus what identifies the binary.

use serde::{Deserialize, Serialize};

use crate::blob::BlobHash;
use crate::event::{Gprs, RemoteAddr};

/// Identity of the recorded binary: replay refuses a binary whose hash differs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BinaryId {
    /// Absolute path of the executable as it was run.
    pub path: Vec<u8>,
    /// GNU build-id note, if the ELF has one.
    pub build_id: Option<Vec<u8>>,
    /// SHA-256 of the file.
    pub sha256: BlobHash,
    /// Size in bytes.
    pub size: u64,
}

/// The execution-point ABI symbols found in the binary (see `guest::ticks`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickAbi {
    /// Address of `REWIND_TICKS`.
    pub ticks: RemoteAddr,
    /// Address of `REWIND_TICK_TARGET`.
    pub target: RemoteAddr,
}

/// One CPUID answer.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidRecord {
    /// eax input.
    pub leaf: u32,
    /// ecx input.
    pub subleaf: u32,
    /// eax, ebx, ecx, edx as the tracee sees them.
    pub answer: [u32; 4],
}

/// The CPU as the tracee saw it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CpuidInfo {
    /// Whether CPUID faulting was on. When it was not (the host or hypervisor lacks it,
    /// `ARCH_SET_CPUID` fails with ENODEV), the tracee ran `cpuid` natively: `records` is
    /// then the host's answers, and replay must check that its CPU answers the same.
    pub faulting: bool,
    /// The answers for the standard and extended leaves the recorder enumerated, as
    /// emulated (RDRAND/RDSEED hidden) when faulting was on.
    pub records: Vec<CpuidRecord>,
}

impl CpuidInfo {
    /// The recorded answer for `leaf`, subleaf 0.
    /// The recorded answer to `leaf` (subleaf 0): eax, ebx, ecx, edx.
    pub fn answer(&self, leaf: u32) -> Option<[u32; 4]> {
        self.records
            .iter()
            .find(|r| r.leaf == leaf && r.subleaf == 0)
            .map(|r| r.answer)
    }

    /// The vendor string leaf 0 spells in ebx, edx, ecx ("GenuineIntel"), printable
    /// ASCII only: the trace decides these bytes.
    pub fn vendor(&self) -> Option<String> {
        self.answer(0).map(|a| text(&[a[1], a[3], a[2]]))
    }

    /// The brand string of leaves 0x8000_0002..=0x8000_0004 ("Intel(R) Xeon(R) …"), when
    /// the recording has all three.
    pub fn brand(&self) -> Option<String> {
        let words = (0x8000_0002..=0x8000_0004)
            .map(|l| self.answer(l))
            .collect::<Option<Vec<_>>>()?;
        Some(text(&words.concat()))
    }
}

/// The ASCII text in CPUID registers' bytes, trimmed, without control characters.
fn text(regs: &[u32]) -> String {
    let s: String = regs
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .filter(|b| b.is_ascii_graphic() || *b == b' ')
        .map(char::from)
        .collect();
    s.trim().to_string()
}

/// A mapping present at the exec stop (the binary, its interpreter, the stack, the vDSO).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InitialMapping {
    /// Start address.
    pub start: RemoteAddr,
    /// End address (exclusive).
    pub end: RemoteAddr,
    /// Permissions as in /proc/PID/maps, e.g. `r-xp`.
    pub perms: String,
    /// File offset.
    pub offset: u64,
    /// Path or pseudo-name (`[stack]`, `[vdso]`), empty for anonymous memory.
    pub path: Vec<u8>,
    /// Contents of the whole backing file, for file mappings.
    pub file: Option<BlobHash>,
}

/// The `#!` line the kernel followed when the recorded program was a script: the
/// interpreter it ran (argv\[0] at exec) and the optional single argument after it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The interpreter path as the `#!` line spells it.
    pub interpreter: Vec<u8>,
    /// The rest of the line, if any (the kernel passes it as one argument).
    pub arg: Option<Vec<u8>>,
}

impl Script {
    /// The `#!` line of `program` as the kernel's binfmt_script reads it (the first line,
    /// at most 255 bytes: blanks, the interpreter up to a blank, then the rest trimmed as
    /// one argument), or `None` for a binary.
    pub fn of(program: &std::path::Path) -> std::io::Result<Option<Script>> {
        use std::io::Read;
        let mut head = [0u8; 256];
        let n = std::fs::File::open(program).and_then(|mut f| f.read(&mut head))?;
        Ok(Script::parse(&head[..n]))
    }

    fn parse(head: &[u8]) -> Option<Script> {
        let line = head.strip_prefix(b"#!")?;
        let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let line = &line[..end];
        let start = line.iter().position(|b| !blank(b))?;
        let line = &line[start..];
        let interp_end = line.iter().position(blank).unwrap_or(line.len());
        let interpreter = line[..interp_end].to_vec();
        let rest = &line[interp_end..];
        let arg = match (
            rest.iter().position(|b| !blank(b)),
            rest.iter().rposition(|b| !blank(b)),
        ) {
            (Some(a), Some(b)) => Some(rest[a..=b].to_vec()),
            _ => None,
        };
        Some(Script { interpreter, arg })
    }
}

/// Signal state the program inherited through exec: the blocked mask and the signals set
/// to SIG_IGN (bit `n - 1` for signal `n`), as /proc/PID/status showed them at the exec
/// stop. Replay starts the program with the same and checks it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InheritedSignals {
    /// SigBlk.
    pub blocked: u64,
    /// SigIgn.
    pub ignored: u64,
}

/// Everything the replayer needs before the first event.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Trace format version this header was written with.
    pub format_version: u32,
    /// Version of the recorder that wrote it.
    pub recorder_version: String,
    /// The program as given on the command line.
    pub program: Vec<u8>,
    /// argv, including argv\[0].
    pub argv: Vec<Vec<u8>>,
    /// The environment, `NAME=value` each.
    pub env: Vec<Vec<u8>>,
    /// Working directory at start.
    pub cwd: Vec<u8>,
    /// The binary that was executed (for a script, its interpreter).
    pub binary: BinaryId,
    /// Set when `program` was a `#!` script.
    pub script: Option<Script>,
    /// Blocked and ignored signals inherited at exec.
    pub signals: InheritedSignals,
    /// The auxiliary vector as the tracee sees it (AT_SYSINFO_EHDR already replaced by
    /// AT_IGNORE), pairs of (type, value).
    pub auxv: Vec<(u64, u64)>,
    /// Where the auxv's AT_SYSINFO_EHDR entry was blanked, if the kernel provided one.
    pub vdso_hidden_at: Option<RemoteAddr>,
    /// The 16 bytes AT_RANDOM points at; the kernel fills them randomly at each exec, so
    /// replay writes these back at its exec stop.
    pub at_random: Option<(RemoteAddr, [u8; 16])>,
    /// Registers at the exec stop.
    pub initial_regs: Gprs,
    /// Mappings at the exec stop.
    pub initial_mappings: Vec<InitialMapping>,
    /// CPUID as the tracee saw it.
    pub cpuid: CpuidInfo,
    /// The execution-point ABI, if the binary exports it.
    pub tick_abi: Option<TickAbi>,
    /// The seccomp BPF program installed before exec (8-byte `sock_filter`s). Replay never
    /// installs this one: it builds its own from its own table and refuses a trace whose
    /// filter differs, so that no trace decides which system calls really run.
    pub seccomp_filter: Vec<u64>,
    /// Whether the TSC was trapped (PR_SET_TSC); rdtsc events exist only if it was.
    pub tsc_trapped: bool,
    /// The CPU recorder and tracee were pinned to.
    pub cpu: Option<u32>,
    /// Seconds since the epoch when recording started (informational).
    pub started_unix: u64,
}

impl Header {
    /// The value of auxiliary-vector entry `kind` (AT_MINSIGSTKSZ, …), if recorded.
    pub fn auxv_value(&self, kind: u64) -> Option<u64> {
        auxv_value(&self.auxv, kind)
    }
}

/// The value of entry `kind` in an auxiliary vector (the header's, an exec's).
pub fn auxv_value(auxv: &[(u64, u64)], kind: u64) -> Option<u64> {
    auxv.iter().find(|(t, _)| *t == kind).map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_parse_as_the_kernel_does() {
        let s = Script::parse(b"#! /bin/sh  -e -x \t\necho").unwrap();
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg.as_deref(), Some(&b"-e -x"[..]));
        let s = Script::parse(b"#!/usr/bin/env\n").unwrap();
        assert_eq!((s.interpreter, s.arg), (b"/usr/bin/env".to_vec(), None));
        assert_eq!(Script::parse(b"\x7fELF"), None);
        assert_eq!(Script::parse(b"#!   \n"), None);
    }

    #[test]
    fn cpuid_vendor_and_brand_read_as_text_and_drop_what_is_not() {
        let word = |s: &[u8; 4]| u32::from_le_bytes(*s);
        let rec = |leaf, answer| CpuidRecord {
            leaf,
            subleaf: 0,
            answer,
        };
        let mut info = CpuidInfo {
            faulting: false,
            records: vec![rec(0, [0x1c, word(b"Genu"), word(b"ntel"), word(b"ineI")])],
        };
        assert_eq!(info.vendor().as_deref(), Some("GenuineIntel"));
        assert_eq!(info.brand(), None, "no brand leaves");
        let mut bytes = b"  Intel(R) Xeon\x1b[2J".to_vec();
        bytes.resize(48, 0);
        let brand: Vec<u32> = bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        for (i, l) in (0x8000_0002..=0x8000_0004u32).enumerate() {
            let a = &brand[i * 4..i * 4 + 4];
            info.records.push(rec(l, [a[0], a[1], a[2], a[3]]));
        }
        assert_eq!(info.brand().as_deref(), Some("Intel(R) Xeon[2J"));
    }
}
