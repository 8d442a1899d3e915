//! What Linux built as UML does with its memory and helpers at boot: physical memory is
//! an unlinked file mapped MAP_SHARED at several addresses, written once with write(2)
//! where nothing maps it, and shared with helpers cloned with CLONE_VM and no exit
//! signal. The recording follows the helper and numbers the shared file
//! (`Event::SharedMapping`); replay backs it with one memory file, so the writes through
//! one mapping show through the others. Tampered with, the replay refuses; a write(2)
//! into a mapped page is refused at record time.

use crate::common::*;
use trace::{Event, ExitStatus};

const HELPERS: &str = include_str!("progs/uml_helpers.c");

const EXPECTED: &str = "stub page: 0x5a\nhelper doubled: 4160\nhelper killed: 9\n";

fn recorded(d: &std::path::Path) -> (std::path::PathBuf, Vec<Event>) {
    let exe = cc(d, "uml_helpers", HELPERS);
    let (rec, t, out) = record(d, &exe, &[]);
    assert_eq!(String::from_utf8_lossy(&out), EXPECTED);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let evs = events(&t);
    (t, evs)
}

fn shared_numbers(evs: &[Event]) -> Vec<u32> {
    evs.iter()
        .filter_map(|e| match e {
            Event::SharedMapping(m) => Some(m.file),
            _ => None,
        })
        .collect()
}

#[test]
fn uml_memory_and_a_clone_vm_helper_replay_sharing_their_pages() {
    let d = tempfile::tempdir().unwrap();
    let (t, evs) = recorded(d.path());
    assert_eq!(
        shared_numbers(&evs),
        [0, 0, 0],
        "three mappings of one file, one number"
    );
    let new_tasks = evs
        .iter()
        .filter(|e| matches!(e, Event::NewTask { .. }))
        .count();
    assert_eq!(new_tasks, 1, "the helper is followed");
    replays_identically(&t, EXPECTED.as_bytes(), ExitStatus::Exited(0));
}

/// The alias mapping backed by a file of its own no longer shows what the helper wrote
/// through the other: the printed sum differs from the recorded. Its event naming
/// another offset than the mmap asked for, or more contents than it maps, is refused
/// there. Without its event, the mmap
/// maps nothing and the first write there faults.
#[test]
fn an_alias_mapping_given_another_file_or_none_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (t, evs) = recorded(d.path());
    let last = evs
        .iter()
        .rposition(|e| matches!(e, Event::SharedMapping { .. }))
        .unwrap() as u64;
    let other = d.path().join("other");
    rewrite(&t, &other, |i, e| match e {
        Event::SharedMapping(mut m) if i == last => {
            m.file = 7;
            Event::SharedMapping(m)
        }
        e => e,
    });
    let err = refusal(&other);
    assert!(
        err.contains("diverged") && err.contains("expected write(0x1"),
        "{err}"
    );

    let offset = d.path().join("offset");
    rewrite(&t, &offset, |i, e| match e {
        Event::SharedMapping(mut m) if i == last => {
            m.offset += 4096;
            Event::SharedMapping(m)
        }
        e => e,
    });
    let err = refusal(&offset);
    assert!(
        err.contains(&format!("event {}", last + 1)) && err.contains("shared file 0 mapped at"),
        "{err}"
    );

    // Contents longer than the mapping would fill the memory file past it.
    let long = d.path().join("long");
    rewrite(&t, &long, |i, e| match e {
        Event::SharedMapping(mut m) if i == last => {
            m.contents = trace::Data::Inline(vec![0; 8192 + 1]);
            Event::SharedMapping(m)
        }
        e => e,
    });
    let err = refusal(&long);
    assert!(
        err.contains("8193 bytes of contents for a mapping of 8192"),
        "{err}"
    );

    let private = d.path().join("private");
    testsupport::record::rewrite_all(
        &t,
        &private,
        |_| {},
        |i, e| if i == last { vec![] } else { vec![e] },
    );
    let err = refusal(&private);
    assert!(
        err.contains("diverged") && err.contains("Signaled { signo: 11"),
        "{err}"
    );
}

/// A shared-mapping event before a call that is no mmap is refused where it stands.
#[test]
fn a_shared_mapping_event_before_another_call_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (t, evs) = recorded(d.path());
    let first = evs
        .iter()
        .find_map(|e| match e {
            Event::SharedMapping(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    let pipe = evs
        .iter()
        .position(|e| matches!(e, Event::Syscall(s) if s.nr == libc::SYS_pipe2 as u64 || s.nr == libc::SYS_pipe as u64))
        .unwrap() as u64;
    let bad = d.path().join("bad");
    testsupport::record::rewrite_all(
        &t,
        &bad,
        |_| {},
        |i, e| {
            if i == pipe {
                vec![Event::SharedMapping(first.clone()), e]
            } else {
                vec![e]
            }
        },
    );
    let err = refusal(&bad);
    assert!(
        err.contains(&format!("event {pipe}")) && err.contains("an mmap of shared file 0"),
        "{err}"
    );
}

#[test]
fn a_write_into_a_mapped_page_of_a_shared_file_is_refused_at_record_time() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "uml_helpers", HELPERS);
    let mut opts = recorder::RecordOptions::new(exe.as_os_str(), ["overwrite"]);
    opts.out_dir = Some(d.path().join("trace"));
    let err = recorder::record(&opts)
        .expect_err("the write is refused")
        .to_string();
    assert!(
        err.contains("write") && err.contains("mapped MAP_SHARED") && err.contains("/dev/shm"),
        "{err}"
    );
}

/// A UML userspace process is a forked child that asks to be ptraced while it shares
/// guest physical memory with the kernel: it would leave the recording and write that
/// memory unseen. Its PTRACE_TRACEME is refused, naming the shared mapping.
#[test]
fn a_child_sharing_memory_that_asks_to_be_ptraced_is_refused_naming_the_mapping() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "userspace",
        "#define _GNU_SOURCE\n#include <fcntl.h>\n#include <signal.h>\n#include <sys/mman.h>\n\
         #include <sys/ptrace.h>\n#include <sys/wait.h>\n#include <unistd.h>\n\
         int main(void) { int fd = open(\"/dev/shm\", O_RDWR | O_EXCL | O_TMPFILE, 0700);\n\
         if (fd < 0 || ftruncate(fd, 4096)) return 1;\n\
         volatile char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);\n\
         int pid = fork(); if (pid == 0) { ptrace(PTRACE_TRACEME, 0, 0, 0); raise(SIGSTOP);\n\
         p[0] = 1; _exit(0); }\n\
         int st; waitpid(pid, &st, 0); ptrace(PTRACE_CONT, pid, 0, 0); waitpid(pid, &st, 0);\n\
         return p[0]; }\n",
    );
    let mut opts = recorder::RecordOptions::new(exe.as_os_str(), std::iter::empty::<&str>());
    opts.out_dir = Some(d.path().join("trace"));
    let err = recorder::record(&opts)
        .expect_err("the child's PTRACE_TRACEME is refused")
        .to_string();
    assert!(
        err.contains("PTRACE_TRACEME") && err.contains("/dev/shm") && err.contains("MAP_SHARED"),
        "{err}"
    );
}
