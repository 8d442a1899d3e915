//! Records real programs under real ptrace and checks that the trace holds what made
//! each run unique: clock values, random bytes, file contents, TSC reads, signals.

mod common;

use common::*;
use trace::{Event, ExitStatus, Placement};

#[test]
fn date_records_clock_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, trace) = record(dir.path(), "date", &["+%s"]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let printed: i64 = std::fs::read_to_string(dir.path().join("stdout"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (r, evs) = events(&trace);
    assert_eq!(evs.last(), Some(&Event::Exit(ExitStatus::Exited(0))));
    // With the vDSO hidden, the time comes from a recorded syscall.
    let clocks = syscalls(&evs, "clock_gettime");
    assert!(!clocks.is_empty(), "no clock_gettime recorded");
    assert_eq!(clocks[0].writes[0].data.len(), 16);
    let recorded_secs: Vec<i64> = clocks
        .iter()
        .filter(|c| c.args[0] == 0)
        .map(|c| i64::from_le_bytes(bytes(&r, &c.writes[0].data)[..8].try_into().unwrap()))
        .collect();
    assert!(
        recorded_secs.contains(&printed),
        "date printed {printed}, trace has {recorded_secs:?}"
    );
    assert!(r.header().vdso_hidden_at.is_some());
    assert!(
        r.header().auxv.iter().all(|&(t, _)| t != 33),
        "AT_SYSINFO_EHDR still visible"
    );
    assert!(r.header().at_random.is_some());
    assert_eq!(r.header().argv, vec![b"date".to_vec(), b"+%s".to_vec()]);
    // The binary's identity.
    let bin = std::fs::read("/usr/bin/date").unwrap();
    assert_eq!(r.header().binary.sha256, trace::BlobHash::of(&bin));
}

#[test]
fn ls_records_directory_reads_and_file_mappings() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, trace) = record(dir.path(), "/bin/ls", &["-l", "/"]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    // Output passes through: the same entries as a native `ls -1 /` (sizes and times of
    // /tmp and /proc may change in between, names do not).
    let native = std::process::Command::new("/bin/ls")
        .args(["-1", "/"])
        .output()
        .unwrap();
    let recorded = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
    let names: Vec<&str> = recorded
        .lines()
        .skip(1)
        .map(|l| l.split(" -> ").next().unwrap().rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        String::from_utf8(native.stdout)
            .unwrap()
            .lines()
            .collect::<Vec<_>>()
    );
    let (r, evs) = events(&trace);
    let dents = syscalls(&evs, "getdents64");
    assert!(
        dents.iter().any(|d| d.ret > 0 && !d.writes.is_empty()),
        "no directory read recorded"
    );
    // Every file-backed mmap has the file's bytes in a blob.
    let maps: Vec<_> = syscalls(&evs, "mmap")
        .into_iter()
        .filter_map(|m| m.mapping.as_ref())
        .collect();
    assert!(maps.iter().any(|m| m.path.ends_with(b"libc.so.6")));
    for m in &maps {
        assert_eq!(
            r.blob(&m.file, m.file_size).unwrap().len() as u64,
            m.file_size
        );
    }
    // The loader's own mappings (binary, ld.so) are in the header.
    assert!(r
        .header()
        .initial_mappings
        .iter()
        .any(|m| m.file.is_some() && m.path.ends_with(b"/ls")));
    // Metadata of every entry: statx or the newfstatat/lstat family.
    let stats = syscalls(&evs, "statx").len() + syscalls(&evs, "newfstatat").len();
    assert!(stats >= 10, "only {stats} stat calls");
}

#[test]
fn python_time_and_urandom_are_in_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let script = format!(
        "import time,os; t=time.time(); r=os.urandom(8).hex(); open({:?},'w').write(f'{{t!r}} {{r}}')",
        out.display().to_string()
    );
    let (rec, trace) = record(dir.path(), "/usr/bin/python3", &["-c", &script]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let printed = std::fs::read_to_string(&out).unwrap();
    let (t, rand) = printed.split_once(' ').unwrap();
    let t: f64 = t.parse().unwrap();
    let (r, evs) = events(&trace);
    // time.time() is clock_gettime(CLOCK_REALTIME): one recorded result matches it.
    let realtime: Vec<f64> = syscalls(&evs, "clock_gettime")
        .into_iter()
        .filter(|c| c.args[0] == 0)
        .map(|c| {
            let b = bytes(&r, &c.writes[0].data);
            let sec = i64::from_le_bytes(b[..8].try_into().unwrap()) as f64;
            let nsec = i64::from_le_bytes(b[8..16].try_into().unwrap()) as f64;
            sec + nsec * 1e-9
        })
        .collect();
    assert!(
        realtime.iter().any(|v| (v - t).abs() < 1e-6),
        "{t} not among {realtime:?}"
    );
    // os.urandom is getrandom: its recorded bytes are the printed ones.
    let randoms: Vec<String> = syscalls(&evs, "getrandom")
        .into_iter()
        .filter(|g| g.ret == 8)
        .map(|g| {
            bytes(&r, &g.writes[0].data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    assert!(
        randoms.iter().any(|h| h == rand),
        "{rand} not among {randoms:?}"
    );
}

#[test]
fn cat_file_contents_are_stored_as_a_deduplicated_blob() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.txt");
    let content: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&file, &content).unwrap();
    // Into a pipe, so cat reads the file into memory (to a regular file it would use
    // copy_file_range, which brings nothing into the process).
    let (mut rd, wr) = std::io::pipe().unwrap();
    let drain = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut rd, &mut s).unwrap();
        s
    });
    let mut opts = recorder::RecordOptions::new("cat", [file.as_os_str()]);
    opts.out_dir = Some(dir.path().join("trace"));
    opts.stdout = Some(wr.into());
    let rec = recorder::record(&opts).unwrap();
    drop(opts);
    let trace = dir.path().join("trace");
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert_eq!(drain.join().unwrap(), content);
    let (r, evs) = events(&trace);
    let reads: Vec<Vec<u8>> = syscalls(&evs, "read")
        .into_iter()
        .filter(|s| s.ret > 0)
        .flat_map(|s| s.writes.iter().map(|w| bytes(&r, &w.data)))
        .collect();
    assert!(
        reads.iter().any(|b| b == content.as_bytes()),
        "file contents not recorded"
    );
    let blob = syscalls(&evs, "read")
        .into_iter()
        .flat_map(|s| s.writes.iter())
        .find_map(|w| match w.data {
            trace::Data::Blob { hash, len } => Some((hash, len)),
            _ => None,
        })
        .expect("a large read is stored as a blob");
    assert_eq!(r.blob(&blob.0, blob.1).unwrap(), content.as_bytes());
}

const RDTSC_CPUID: &str = r#"
#include <stdio.h>
#include <stdint.h>
#include <cpuid.h>
#include <x86intrin.h>
int main(int argc, char **argv) {
    uint64_t a = __rdtsc();
    uint64_t b = __rdtsc();
    unsigned int eax, ebx, ecx, edx;
    __cpuid(0, eax, ebx, ecx, edx);
    unsigned int e1, b1, c1, d1;
    __cpuid(1, e1, b1, c1, d1);
    FILE *f = fopen(argv[1], "w");
    fprintf(f, "%llu %llu %u %u %u\n", (unsigned long long)a, (unsigned long long)b, eax, ebx, c1);
    fclose(f);
    return b > a ? 0 : 1;
}
"#;

#[test]
fn rdtsc_is_trapped_and_cpuid_answers_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "tsc", RDTSC_CPUID);
    let out = dir.path().join("out.txt");
    let (rec, trace) = record(dir.path(), &exe, &[out.to_str().unwrap()]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let printed = std::fs::read_to_string(&out).unwrap();
    let v: Vec<u64> = printed
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (r, evs) = events(&trace);
    assert!(r.header().tsc_trapped);
    let tscs: Vec<u64> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Rdtsc(t) => Some(t.value),
            _ => None,
        })
        .collect();
    assert!(
        tscs.contains(&v[0]) && tscs.contains(&v[1]),
        "printed {v:?}, recorded {tscs:?}"
    );
    // CPUID: trapped and logged where the host supports faulting, else the header holds
    // the host's answers, which must be what the program saw.
    let leaf = |l: u32| -> [u32; 4] {
        if r.header().cpuid.faulting {
            evs.iter()
                .find_map(|e| match e {
                    Event::Cpuid(c) if c.leaf == l => Some(c.answer),
                    _ => None,
                })
                .expect("cpuid event")
        } else {
            r.header()
                .cpuid
                .records
                .iter()
                .find(|c| c.leaf == l && c.subleaf == 0)
                .unwrap()
                .answer
        }
    };
    assert_eq!(u64::from(leaf(0)[0]), v[2]);
    assert_eq!(u64::from(leaf(0)[1]), v[3]);
    if r.header().cpuid.faulting {
        assert_eq!(v[4] & (1 << 30), 0, "RDRAND must be hidden");
    }
}

const SIGALRM: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
static volatile sig_atomic_t ticks;
static void on_alarm(int s) { (void)s; ticks++; }
int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
    setitimer(ITIMER_REAL, &it, 0);
    /* Busy loop without system calls that changes nothing until a signal does (one
       that counts in memory is refused: see tests/replay_exact.rs). */
    while (ticks < 5) ;
    /* Then blocking calls that the signal interrupts. */
    while (ticks < 10) pause();
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    FILE *f = fopen(argv[1], "w");
    fprintf(f, "%d\n", (int)ticks);
    fclose(f);
    return 0;
}
"#;

#[test]
fn sigalrm_in_a_busy_loop_and_in_pause_is_placed() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "alarm", SIGALRM);
    let out = dir.path().join("out.txt");
    let (rec, trace) = record(dir.path(), &exe, &[out.to_str().unwrap()]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let n: usize = std::fs::read_to_string(&out)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (_, evs) = events(&trace);
    let signals: Vec<(usize, &trace::SignalEvent)> = evs
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Signal(s) => Some((i, s)),
            _ => None,
        })
        .collect();
    // Every handler run is a recorded delivery.
    assert_eq!(
        signals.len(),
        n,
        "handler ran {n} times, {} signals recorded",
        signals.len()
    );
    assert!(signals.iter().all(|(_, s)| s.signo == libc::SIGALRM));
    // The busy loop's signals were placed by registers (no syscall, no tick ABI)…
    assert!(signals
        .iter()
        .any(|(_, s)| matches!(s.placement, Placement::Registers { .. })));
    // …and those that interrupted pause() at its exit, after the pause event itself.
    let pause = trace::sysno::number("pause").unwrap();
    let at_exit: Vec<_> = signals
        .iter()
        .filter_map(|(i, s)| match s.placement {
            Placement::SyscallExit { event } => Some((*i, event)),
            _ => None,
        })
        .collect();
    assert!(!at_exit.is_empty(), "no signal placed at a syscall exit");
    for (i, event) in at_exit {
        assert_eq!(event as usize, i - 1);
        match &evs[i - 1] {
            Event::Syscall(s) if s.nr == pause => {
                assert_eq!(s.ret, -514, "pause ends with ERESTARTNOHAND")
            }
            Event::Syscall(_) => {}
            other => panic!("signal after {other:?}"),
        }
    }
    // Each event's siginfo is the real one: SI_KERNEL from the timer, not ours.
    for (_, s) in &signals {
        assert_eq!(s.siginfo.len(), 128);
        assert_eq!(
            i32::from_le_bytes(s.siginfo[0..4].try_into().unwrap()),
            libc::SIGALRM
        );
    }
}

#[test]
fn unknown_syscall_stops_the_recording_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(
        dir.path(),
        "unknown",
        "#include <unistd.h>\n#include <sys/syscall.h>\nint main(void){ syscall(SYS_sysfs, 3); return 0; }\n",
    );
    let mut opts = recorder::RecordOptions::new(&exe, Vec::<String>::new());
    opts.out_dir = Some(dir.path().join("trace"));
    let err = recorder::record(&opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("sysfs") && msg.contains("(139)") && msg.contains("rip 0x"),
        "{msg}"
    );
    let (_, evs) = events(&dir.path().join("trace"));
    assert!(matches!(evs.last(), Some(Event::Aborted { reason }) if reason.contains("sysfs")));
}

#[test]
fn a_fork_is_followed_and_the_child_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(
        dir.path(),
        "forker",
        "#include <unistd.h>\n#include <sys/wait.h>\n\
         int main(void){ if (fork() == 0) _exit(3); int st; wait(&st); return WEXITSTATUS(st); }\n",
    );
    let mut opts = recorder::RecordOptions::new(&exe, Vec::<String>::new());
    opts.out_dir = Some(dir.path().join("trace"));
    let rec = recorder::record(&opts).unwrap();
    assert_eq!(rec.exit, trace::ExitStatus::Exited(3));
    let (_, evs) = events(&dir.path().join("trace"));
    let child = evs.iter().find_map(|e| match e {
        trace::Event::NewTask { tid } => Some(*tid),
        _ => None,
    });
    let child = child.expect("a NewTask event");
    assert!(evs.contains(&trace::Event::Exit(trace::ExitStatus::Exited(3))));
    assert!(evs
        .iter()
        .any(|e| matches!(e, trace::Event::Switch { to, .. } if *to == child)));
}
