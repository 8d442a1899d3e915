//! A replay proves itself: a tampered trace or a different binary is caught with a
//! precise message.

use crate::common::*;
use trace::Event;

#[test]
fn changed_syscall_result_is_a_divergence_at_that_event() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "handler",
        "#include <signal.h>\n#include <string.h>\nstatic void h(int s){(void)s;}\n\
         int main(void){ struct sigaction sa; memset(&sa,0,sizeof sa); sa.sa_handler=h;\n\
         return sigaction(SIGUSR1,&sa,0); }\n",
    );
    let (_, t, _) = record(d.path(), &exe, &[]);
    let evs = events(&t);
    let nr = trace::sysno::number("rt_sigaction").unwrap();
    let (idx, _) = evs
        .iter()
        .enumerate()
        .find(|(_, e)| matches!(e, Event::Syscall(s) if s.nr == nr))
        .map(|(i, e)| (i as u64, e.clone()))
        .expect("the program installs a signal handler");
    let bad = d.path().join("bad");
    rewrite(&t, &bad, |i, e| match e {
        Event::Syscall(mut s) if i == idx => {
            s.ret = -22;
            Event::Syscall(s)
        }
        e => e,
    });
    let err = replayer::replay(&bad, Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("at event {idx}"))
            && err.contains("rt_sigaction returning -22")
            && err.contains("returned 0"),
        "{err}"
    );
}

#[test]
fn changed_syscall_arguments_are_a_divergence_with_both_calls() {
    let d = tempfile::tempdir().unwrap();
    let (_, t, _) = record(d.path(), "date", &["+%s"]);
    let evs = events(&t);
    let nr = trace::sysno::number("write").unwrap();
    let idx = evs
        .iter()
        .position(|e| matches!(e, Event::Syscall(s) if s.nr == nr))
        .unwrap() as u64;
    let bad = d.path().join("bad");
    rewrite(&t, &bad, |i, e| match e {
        Event::Syscall(mut s) if i == idx => {
            s.args[2] += 1;
            Event::Syscall(s)
        }
        e => e,
    });
    let opts = replayer::ReplayOptions {
        console: replayer::Console::Buffer(Vec::new()),
        pace: false,
    };
    let err = replayer::replay(&bad, opts).unwrap_err().to_string();
    assert!(err.contains(&format!("at event {idx}")), "{err}");
    assert!(
        err.contains("expected write(0x1") && err.contains("found write(0x1"),
        "{err}"
    );
}

#[test]
fn a_different_binary_is_refused_naming_the_recorded_one() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(
        d.path(),
        "prog",
        "#include <stdio.h>\nint main(void){ puts(\"one\"); return 0; }\n",
    );
    let (_, t, _) = record(d.path(), &exe, &[]);
    cc(
        d.path(),
        "prog",
        "#include <stdio.h>\nint main(void){ puts(\"two\"); return 1; }\n",
    );
    let err = replayer::replay(&t, Default::default()).unwrap_err();
    assert!(
        matches!(err, replayer::Error::BinaryMismatch { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "recorded with {}",
            exe.canonicalize().unwrap().display()
        )) && msg.contains("refusing"),
        "{msg}"
    );
}

/// The auxv entry that says the kernel's signal frame size.
const AT_MINSIGSTKSZ: u64 = 51;

const HANDLERS: &str = r#"
#include <signal.h>
#include <string.h>
#include <unistd.h>
static void on_usr1(int s) { (void)s; write(1, "usr1\n", 5); }
static void on_segv(int s) { (void)s; write(1, "segv\n", 5); _exit(3); }
int main(int argc, char **argv) {
    (void)argv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, 0);
    if (argc > 1)
        *(volatile int *)0 = 1;
    raise(SIGUSR1);
    return 0;
}
"#;

/// A signal handler runs on a frame the size of this CPU's XSAVE area: a recording whose
/// frames were another size (here: its header's AT_MINSIGSTKSZ made so) is refused where
/// a handler would be entered — a queued signal's and a fault's alike — and replays where
/// the sizes agree.
#[test]
fn a_handler_is_not_entered_on_a_signal_frame_of_another_size() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "handlers", HANDLERS);
    for (args, tag) in [(&[][..], "usr1"), (&["fault"][..], "segv")] {
        let (rec, t, out) = testsupport::record::record_in(d.path(), tag, &exe, args);
        assert_eq!(out, format!("{tag}\n").into_bytes());
        replays_identically(&t, &out, rec.exit);
        let other = d.path().join(format!("{tag}-other-frames"));
        testsupport::record::rewrite_all(
            &t,
            &other,
            |h| {
                for (key, v) in &mut h.auxv {
                    if *key == AT_MINSIGSTKSZ {
                        *v += 256;
                    }
                }
            },
            |_, e| vec![e],
        );
        let err = refusal(&other);
        let signo = if tag == "usr1" {
            libc::SIGUSR1
        } else {
            libc::SIGSEGV
        };
        assert!(
            err.contains(&format!("the handler of signal {signo} entered"))
                && err.contains("at record time (the CPUs' XSAVE areas differ)"),
            "{err}"
        );
    }
}

/// A trace naming a device as its binary (a hostile header) is refused without reading
/// it: `/dev/zero` would never end, nor fit in memory.
#[test]
fn a_binary_path_that_is_not_a_regular_file_is_refused_unread() {
    let d = tempfile::tempdir().unwrap();
    let (_, t, _) = record(d.path(), "/bin/true", &[]);
    let bad = d.path().join("bad");
    testsupport::record::rewrite_all(
        &t,
        &bad,
        |h| {
            h.binary.path = b"/dev/zero".to_vec();
            h.program = b"/dev/zero".to_vec();
        },
        |_, e| vec![e],
    );
    let err = replayer::replay(&bad, Default::default()).unwrap_err();
    assert!(
        matches!(err, replayer::Error::BinaryMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("is not a regular file"), "{err}");
}
