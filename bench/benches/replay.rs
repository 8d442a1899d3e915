//! Replay speed: each workload of the recorder's benchmark (recorder/benches/record.rs)
//! runs natively, under the recorder, and replayed; prints the median of each and the
//! ratios. Then timeline latencies on a umk recording: step_back, and run_backward across
//! the idle tail of the recording (`sleep 1` then `halt`, a breakpoint hit only at the
//! start of the sleep).
//!
//! It lives in rewind-bench rather than in replayer/ because it records, and the replayer
//! does not depend on the recorder, not even for its benches.
//!
//! `CARGO_TARGET_DIR=/work/target-rep cargo bench -p rewind-bench --bench replay`

use std::path::{Path, PathBuf};
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

/// A binary of this target directory's profile (benches live in target/release/deps).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join(name)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn record(program: &str, args: &[&str], out: &Path, stdin: Option<&Path>) -> Duration {
    let _ = std::fs::remove_dir_all(out);
    // Through the CLI so that a stdin file can be given (umk reads its console).
    let rewind = bin("rewind");
    let t = Instant::now();
    if let (Some(input), true) = (stdin, rewind.exists()) {
        let st = Command::new(&rewind)
            .args(["record", "-o"])
            .arg(out)
            .arg("--")
            .arg(program)
            .args(args)
            .stdin(std::fs::File::open(input).unwrap())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    } else {
        let mut opts = recorder::RecordOptions::new(program, args.iter().copied());
        opts.out_dir = Some(out.to_path_buf());
        opts.stdout = Some(std::fs::File::create("/dev/null").unwrap().into());
        recorder::record(&opts).unwrap_or_else(|e| panic!("{program}: {e}"));
    }
    t.elapsed()
}

fn bench(name: &str, program: &str, args: &[&str], dir: &Path) {
    let (mut native, mut recorded, mut replayed) = (Vec::new(), Vec::new(), Vec::new());
    let out = dir.join(name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    let mut events = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let st = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        native.push(t.elapsed());
        assert!(st.success());
        recorded.push(record(program, args, &out, None));
        let o = replayer::replay(
            &out,
            replayer::ReplayOptions {
                console: replayer::Console::Discard,
                pace: false,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        replayed.push(o.elapsed);
        events = o.events;
    }
    let (n, r, p) = (median(native), median(recorded), median(replayed));
    println!(
        "{name:<28} native {:>8.2} ms  recorded {:>8.2} ms  replayed {:>8.2} ms  replay/record {:>5.2}x  replay/native {:>5.2}x  {events} events",
        ms(n), ms(r), ms(p), p.as_secs_f64() / r.as_secs_f64(), p.as_secs_f64() / n.as_secs_f64()
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let syscalls = cc(dir.path(), "syscalls", SYSCALL_HEAVY);
    println!("median of {RUNS} runs each");
    println!(
        "compute+SIGALRM@2kHz (C)     skipped: its signals land by registers in a loop whose \
         counter is in a register, so replay stops at every iteration (no branch counter)"
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

    let umk = testsupport::umk_release_binary();
    let input = dir.path().join("console");
    std::fs::write(&input, "sleep 1\nhalt\n").unwrap();
    let t = dir.path().join("umk");
    let rec = record(umk.to_str().unwrap(), &["hz=1000"], &t, Some(&input));
    let mut replays = Vec::new();
    for _ in 0..RUNS {
        let o = replayer::replay(
            &t,
            replayer::ReplayOptions {
                console: replayer::Console::Discard,
                pace: false,
            },
        )
        .unwrap();
        replays.push(o.elapsed);
    }
    println!(
        "umk hz=1000 sleep 1; halt    recorded {:>8.2} ms  replayed {:>8.2} ms (idle time skipped)",
        ms(rec),
        ms(median(replays))
    );

    let mut tl = replayer::Timeline::open(&t).unwrap();
    let n = tl.events().len() as u64;
    tl.seek(&replayer::Position::event(n * 3 / 4)).unwrap();
    let t0 = Instant::now();
    let steps = 20;
    for _ in 0..steps {
        tl.step_back().unwrap();
    }
    println!(
        "step_back                    {:>8.2} ms each (mean of {steps}, umk, {} checkpoints)",
        ms(t0.elapsed()) / steps as f64,
        tl.checkpoints().len()
    );
    let syms = guest::Binary::load(umk).unwrap();
    let sleep = syms.address("umk::shell::commands::sleep").unwrap();
    let end = tl.run_forward().unwrap();
    tl.set_breakpoint(sleep);
    let t0 = Instant::now();
    let r = tl.run_backward().unwrap();
    println!(
        "run_backward over the idle last ~1 s (to the `sleep` command; {end:?} → {r:?} at {}): {:.2} ms",
        tl.position().unwrap(),
        ms(t0.elapsed())
    );
}
