//! A recording that trapped every `cpuid` (CPUID faulting) replays with its recorded
//! answers on any host: trapped again where the host has faulting, else found by a
//! breakpoint at each recorded `cpuid` (this CI's hypervisor refuses ARCH_SET_CPUID). On a
//! host without faulting the recording of a probe is made into the one a faulting host
//! would have written: its header says faulting, and its events gain the `cpuid` answers
//! before the first call, at the probe's labels. A moved `cpuid`, another leaf, and an
//! answer naming a feature this CPU lacks are refused; a changed answer reaches the
//! program (and its output then differs from the recording's).

use std::path::{Path, PathBuf};

use crate::common::*;
use trace::{CpuidEvent, Event, ExitStatus, RemoteAddr, TraceReader};

/// No libc (whose start-up runs `cpuid` too): two `cpuid`s at labels, the vendor
/// string written out.
const PROBE: &str = r#"
static long sys(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
void _start(void) {
    unsigned a = 0, b, c = 0, d;
    __asm__ volatile(".globl probe0\nprobe0: cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    unsigned v[4] = { b, d, c, '\n' };
    unsigned a1 = 1, b1, c1 = 0, d1;
    __asm__ volatile(".globl probe1\nprobe1: cpuid" : "+a"(a1), "=b"(b1), "+c"(c1), "=d"(d1));
    sys(1, 1, (long)v, 13);
    sys(60, 0, 0, 0);
    for (;;) {}
}
"#;

/// The address of `name` in `exe` (a static, non-PIE binary).
fn symbol(exe: &Path, name: &str) -> u64 {
    let out = std::process::Command::new("nm").arg(exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"));
    u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap()
}

/// The probe's recording with both `cpuid`s trapped, its stdout and its end.
fn trapped(dir: &Path) -> (PathBuf, Vec<u8>, ExitStatus) {
    let flags = [
        "-static",
        "-nostdlib",
        "-no-pie",
        "-fno-pie",
        "-fno-stack-protector",
        "-fcf-protection=none",
    ];
    let exe = testsupport::host::cc_with(dir, "probe", PROBE, &flags);
    let (rec, t, out) = record(dir, &exe, &[]);
    assert_eq!(out.get(..12).map(<[u8]>::len), Some(12), "{out:?}");
    if TraceReader::open(&t).unwrap().header().cpuid.faulting {
        return (t, out, rec.exit);
    }
    let at = [symbol(&exe, "probe0"), symbol(&exe, "probe1")];
    let faulted = dir.join("trapped");
    testsupport::record::rewrite_all(
        &t,
        &faulted,
        |h| {
            h.cpuid.faulting = true;
            h.cpuid.records = recorder::cpuid::records(true);
        },
        |i, e| {
            let mut out = Vec::new();
            if i == 0 {
                for (leaf, rip) in [0, 1].into_iter().zip(at) {
                    out.push(Event::Cpuid(CpuidEvent {
                        rip: RemoteAddr(rip),
                        leaf,
                        subleaf: 0,
                        answer: recorder::cpuid::answer(leaf, 0, true),
                        ticks: 0,
                    }));
                }
            }
            out.push(e);
            out
        },
    );
    (faulted, out, rec.exit)
}

/// `trace` with each `cpuid` event passed through `edit`, replayed once: the error.
fn refused(dir: &Path, trace: &Path, edit: impl Fn(&mut CpuidEvent)) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let to = dir.join(format!("tampered-{n}"));
    rewrite(trace, &to, |_, mut e| {
        if let Event::Cpuid(c) = &mut e {
            edit(c);
        }
        e
    });
    refusal(&to)
}

#[test]
fn a_recording_that_trapped_cpuid_replays_with_its_answers() {
    let d = tempfile::tempdir().unwrap();
    let (t, out, exit) = trapped(d.path());
    let cpuids = events(&t)
        .iter()
        .filter(|e| matches!(e, Event::Cpuid(_)))
        .count();
    assert_eq!(cpuids, 2);
    replays_identically(&t, &out, exit);
}

#[test]
fn a_recorded_cpuid_answer_reaches_the_program() {
    let d = tempfile::tempdir().unwrap();
    let (t, _, _) = trapped(d.path());
    // Another vendor: the program writes what it was answered, which is not what the
    // recording sent.
    let err = refused(d.path(), &t, |c| {
        if c.leaf == 0 {
            c.answer[1] = u32::from_le_bytes(*b"Fake");
        }
    });
    assert!(err.contains("sending the recorded 13 bytes"), "{err}");
}

#[test]
fn a_moved_cpuid_or_another_leaf_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (t, _, _) = trapped(d.path());
    let moved = refused(d.path(), &t, |c| c.rip.0 += 1);
    assert!(
        moved.contains("diverged at event 0") && moved.contains("cpuid"),
        "{moved}"
    );
    let leaf = refused(d.path(), &t, |c| {
        if c.leaf == 1 {
            c.leaf = 2;
        }
    });
    assert!(
        leaf.contains("diverged at event 1") && leaf.contains("cpuid leaf 0x2"),
        "{leaf}"
    );
}

#[test]
fn an_answer_naming_a_feature_this_cpu_lacks_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (t, _, _) = trapped(d.path());
    // CPUID.1:ECX bit 16 is reserved: no CPU has it.
    let err = refused(d.path(), &t, |c| {
        if c.leaf == 1 {
            c.answer[2] |= 1 << 16;
        }
    });
    assert!(err.contains("this CPU lacks ecx bits 0x00010000"), "{err}");
}
