//! Recording overhead: each workload runs natively and under the recorder in the same
//! process, a few times each; prints median native time, median recorded time, their
//! ratio, and trace bytes written per second of recording.
//!
//! `CARGO_TARGET_DIR=/work/target-rec cargo bench -p recorder --bench record`

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testsupport::cc;

const RUNS: usize = 5;

const SYSCALL_HEAVY: &str = r#"
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    char buf[512];
    int z = open("/dev/zero", O_RDONLY), n = open("/dev/null", O_WRONLY);
    for (int i = 0; i < 50000; i++) { read(z, buf, sizeof buf); write(n, buf, sizeof buf); }
    return 0;
}
"#;

const COMPUTE_WITH_TIMER: &str = r#"
#include <signal.h>
#include <string.h>
#include <sys/time.h>
static volatile sig_atomic_t ticks;
static void on_alarm(int s) { (void)s; ticks++; }
int main(void) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = { { 0, 500 }, { 0, 500 } };   /* 2000 signals a second */
    setitimer(ITIMER_REAL, &it, 0);
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 400000000UL; i++) x += i;
    return 0;
}
"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(name: &str, program: &str, args: &[&str], dir: &Path) {
    let mut native = Vec::new();
    let mut recorded = Vec::new();
    let mut bytes = 0u64;
    let mut events = 0u64;
    for i in 0..RUNS {
        let t = Instant::now();
        let st = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        native.push(t.elapsed());
        assert!(st.success(), "{name} failed natively");

        let out = dir.join(format!("{name}-{i}"));
        let mut opts = recorder::RecordOptions::new(program, args.iter().copied());
        opts.out_dir = Some(out.clone());
        opts.stdout = Some(std::fs::File::create("/dev/null").unwrap().into());
        let t = Instant::now();
        let rec = recorder::record(&opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        recorded.push(t.elapsed());
        bytes = rec.stats.total_bytes();
        events = rec.stats.events;
        let _ = std::fs::remove_dir_all(&out);
    }
    let (n, r) = (median(native), median(recorded));
    println!(
        "{name:<28} native {:>9.2} ms  recorded {:>9.2} ms  ratio {:>6.2}x  {:>8} events  {:>10.0} trace bytes/s",
        n.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e3,
        r.as_secs_f64() / n.as_secs_f64(),
        events,
        bytes as f64 / r.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful.
    let dir = tempfile::tempdir().unwrap();
    let syscalls = cc(dir.path(), "syscalls", SYSCALL_HEAVY);
    let timer = cc(dir.path(), "timer", COMPUTE_WITH_TIMER);
    println!("median of {RUNS} runs each; recorder and tracee pinned to one CPU");
    bench(
        "compute+SIGALRM@2kHz (C)",
        timer.to_str().unwrap(),
        &[],
        dir.path(),
    );
    bench(
        "100k syscalls (C)",
        syscalls.to_str().unwrap(),
        &[],
        dir.path(),
    );
    bench(
        "python3 -c sum(range(1e7))",
        "/usr/bin/python3",
        &["-c", "print(sum(range(10**7)))"],
        dir.path(),
    );
    bench("ls -l /usr/lib", "/bin/ls", &["-l", "/usr/lib"], dir.path());
    umk_workloads(dir.path());
}

/// umk running a CPU-heavy and an I/O-heavy script on a fresh ext2 image each time.
fn umk_workloads(dir: &Path) {
    let umk = testsupport::umk_release_binary();
    let image = dir.join("umk.img");
    let status = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2"])
        .arg(&image)
        .arg("32M")
        .status()
        .expect("running mke2fs");
    assert!(status.success(), "mke2fs failed");
    for (name, script) in [
        ("umk CPU-heavy (compute 2000)", "compute 2000\nhalt\n"),
        ("umk I/O-heavy (stress 4 20)", "stress 4 20\nsync\nhalt\n"),
    ] {
        let path = dir.join("umk-init");
        std::fs::write(&path, script).unwrap();
        let args = [
            "mem=64M".to_string(),
            format!("ubd0={}", image.display()),
            format!("init={}", path.display()),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bench(name, umk.to_str().unwrap(), &args, dir);
    }
}
