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
