//! Every kind of recording the recorder's tests make replays to the same console output
//! and the same end, several times in a row (3; 20 with `REWIND_SOAK=1`); the replay
//! writes nothing on the host.

use crate::common::*;
use trace::ExitStatus;

#[test]
fn ls_replays() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(d.path(), "/bin/ls", &["-l", "/"]);
    assert!(!out.is_empty());
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn ps_replays_the_recorded_process_list() {
    // procps asks for the NUMA memory policy (get_mempolicy, set_mempolicy).
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(d.path(), "ps", &["-e", "-o", "pid=,comm="]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert!(String::from_utf8_lossy(&out).lines().count() > 1, "{out:?}");
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn date_replays_the_recorded_time() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record(d.path(), "date", &["+%s.%N"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn python_time_and_urandom_replay_and_write_no_file() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("out.txt");
    let script = format!(
        "import time,os; t=time.time(); r=os.urandom(8).hex(); print(t, r); open({:?},'w').write(r)",
        file.display().to_string()
    );
    let (rec, t, out) = record(d.path(), "/usr/bin/python3", &["-c", &script]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    std::fs::remove_file(&file).unwrap();
    for _ in 0..testsupport::repetitions(3, 20) {
        let o = replay(&t);
        assert_eq!(o.console, out);
        assert_eq!(o.exit, Some(rec.exit));
    }
    assert!(!file.exists(), "the replay re-created {}", file.display());
}

#[test]
fn cat_replays_without_its_input_file() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("input.txt");
    let content: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&file, &content).unwrap();
    // Into a pipe, so that cat reads the file into memory and writes it (to a regular
    // file it would use copy_file_range, whose bytes never pass through the process).
    let (mut rd, wr) = std::io::pipe().unwrap();
    let drain = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut rd, &mut v).unwrap();
        v
    });
    let mut opts = recorder::RecordOptions::new("cat", [file.as_os_str()]);
    let t = d.path().join("trace");
    opts.out_dir = Some(t.clone());
    opts.stdout = Some(wr.into());
    let rec = recorder::record(&opts).unwrap();
    drop(opts);
    let out = drain.join().unwrap();
    assert_eq!(out, content.as_bytes());
    std::fs::remove_file(&file).unwrap();
    replays_identically(&t, &out, rec.exit);
}

/// A busy loop that spins on the flag the handler sets: the timer signals land by
/// registers (no syscalls, no tick ABI), then interrupt pause().
const SIGALRM: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
static volatile sig_atomic_t ticks;
static void on_alarm(int s) { (void)s; ticks++; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
    setitimer(ITIMER_REAL, &it, 0);
    while (ticks < 5) ;
    while (ticks < 10) pause();
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    printf("%d\n", (int)ticks);
    return 0;
}
"#;

#[test]
fn sigalrm_busy_loop_and_pause_replay() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "alarm", SIGALRM);
    let (rec, t, out) = record(d.path(), &exe, &[]);
    let placements: Vec<trace::Placement> = events(&t)
        .iter()
        .filter_map(|e| match e {
            trace::Event::Signal(s) => Some(s.placement),
            _ => None,
        })
        .collect();
    assert!(
        placements
            .iter()
            .any(|p| matches!(p, trace::Placement::Registers { .. })),
        "{placements:?}"
    );
    assert!(
        placements
            .iter()
            .any(|p| matches!(p, trace::Placement::SyscallExit { .. })),
        "{placements:?}"
    );
    replays_identically(&t, &out, rec.exit);
}

const RDTSC_CPUID: &str = r#"
#include <stdio.h>
#include <stdint.h>
#include <cpuid.h>
#include <x86intrin.h>
int main(void) {
    uint64_t a = __rdtsc();
    unsigned int aux;
    uint64_t b = __rdtscp(&aux);
    unsigned int eax, ebx, ecx, edx;
    __cpuid(0, eax, ebx, ecx, edx);
    printf("%llu %llu %u %u %u\n", (unsigned long long)a, (unsigned long long)b, aux, eax, ebx);
    return 0;
}
"#;

#[test]
fn rdtsc_and_cpuid_replay() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "tsc", RDTSC_CPUID);
    let (rec, t, out) = record(d.path(), &exe, &[]);
    assert!(events(&t)
        .iter()
        .any(|e| matches!(e, trace::Event::Rdtsc(_))));
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn umk_boot_and_halt_replays_without_its_disk() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record_umk(
        d.path(),
        "boot",
        &["ls /", "cat /motd", "sleep 1", "halt"],
        &["hz=250"],
    );
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let console = String::from_utf8_lossy(&out);
    assert!(console.contains("System halted"), "{console}");
    replays_identically(&t, &out, rec.exit);
}

#[test]
fn umk_uaf_crash_replays_with_the_same_signal_at_the_same_rip() {
    let d = tempfile::tempdir().unwrap();
    let (rec, t, out) = record_umk(d.path(), "uaf", &["bug uaf", "halt"], &["bug_window=1"]);
    let ExitStatus::Signaled { signo, .. } = rec.exit else {
        panic!(
            "uaf did not crash: {:?}\n{}",
            rec.exit,
            String::from_utf8_lossy(&out)
        );
    };
    assert_eq!(signo, 6);
    let recorded = events(&t)
        .iter()
        .rev()
        .find_map(|e| match e {
            trace::Event::Signal(s) => Some(s.clone()),
            _ => None,
        })
        .expect("the fatal SIGABRT is a recorded signal");
    assert_eq!(recorded.signo, 6);
    for _ in 0..3 {
        let o = replay(&t);
        assert_eq!(o.console, out);
        assert!(
            matches!(o.exit, Some(ExitStatus::Signaled { signo: 6, .. })),
            "{:?}",
            o.exit
        );
        let (sig, regs) = o.last_signal.expect("a last signal");
        assert_eq!(sig, 6);
        assert_eq!(regs.rip, recorded.regs.rip, "died at a different rip");
        assert_eq!(regs.rsp, recorded.regs.rsp);
    }
}
