//! A program that ptraces its own children, as Linux built as UML does at boot
//! (arch/um/os-Linux/start_up.c: a forked child asks with PTRACE_TRACEME, its parent
//! changes one of its system calls with PTRACE_SYSCALL and PEEKUSER/POKEUSER, emulates
//! one with PTRACE_SYSEMU_SINGLESTEP, reads its registers, kills it). Each child leaves
//! the recording at its PTRACE_TRACEME (`Event::Outside`); replay has no such child and
//! gives the parent what it learnt from it. Tampered with, the replay refuses.

use crate::common::*;
use trace::{Event, ExitStatus, MemWrite};

const PROBES: &str = include_str!("progs/uml_probes.c");

const EXPECTED: &str = "change a call's number: child says 0\n\
                        emulate a call: child says 0 after steps\n\
                        registers read: 0\n\
                        killed: 9\n";

fn recorded(d: &std::path::Path) -> (std::path::PathBuf, Vec<Event>) {
    let exe = cc(d, "uml_probes", PROBES);
    let (rec, t, out) = record(d, &exe, &[]);
    assert_eq!(String::from_utf8_lossy(&out), EXPECTED);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    replays_identically(&t, &out, rec.exit);
    let evs = events(&t);
    (t, evs)
}

#[test]
fn uml_start_up_probes_record_and_replay_without_their_children() {
    let d = tempfile::tempdir().unwrap();
    let (_, evs) = recorded(d.path());
    let outside = evs.iter().filter(|e| matches!(e, Event::Outside)).count();
    assert_eq!(
        outside, 3,
        "each probe child left the recording at its PTRACE_TRACEME"
    );
    // The parent's ptrace calls are recorded with what they returned: its PEEKUSER of
    // orig_rax read the child's getpid.
    let peeked: Vec<u64> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Syscall(s)
                if s.nr == libc::SYS_ptrace as u64 && s.args[0] == libc::PTRACE_PEEKUSER as u64 =>
            {
                s.writes.first().and_then(|w| match &w.data {
                    trace::Data::Inline(b) => b
                        .get(..8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap())),
                    _ => None,
                })
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        peeked.last(),
        Some(&(libc::SYS_getpid as u64)),
        "{peeked:?}"
    );
}

#[test]
fn a_ptracee_stop_tampered_with_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (t, _) = recorded(d.path());
    // The parent's first played wait4 tells it the child stopped with SIGSTOP; say
    // SIGTRAP instead and the parent takes another path than the recording's.
    let bad = d.path().join("bad");
    let changed = std::cell::Cell::new(false);
    rewrite(&t, &bad, |_, e| match e {
        Event::Syscall(mut s) if s.nr == libc::SYS_wait4 as u64 && s.ret > 0 && !changed.get() => {
            changed.set(true);
            s.writes = vec![MemWrite {
                addr: s.writes[0].addr,
                data: trace::Data::Inline(((libc::SIGTRAP << 8) | 0x7f).to_le_bytes().to_vec()),
            }];
            Event::Syscall(s)
        }
        e => e,
    });
    assert!(changed.get());
    let err = refusal(&bad);
    assert!(err.contains("diverged"), "{err}");
}

#[test]
fn a_child_that_left_replayed_as_ending_there_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (t, _) = recorded(d.path());
    // Without its Outside event the child would run on at replay; recorded as an exit
    // there instead, the child's own next calls do not match.
    let bad = d.path().join("bad");
    rewrite(&t, &bad, |_, e| match e {
        Event::Outside => Event::Exit(ExitStatus::Exited(0)),
        e => e,
    });
    let err = refusal(&bad);
    assert!(err.contains("diverged"), "{err}");
}
