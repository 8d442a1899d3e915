//! Cost of analysis: probe hits per second and analysis time against a plain replay of
//! the same trace. `cargo bench -p analyzer --bench analyze -- TRACE...` (harness = false);
//! without arguments it reads `REWIND_BENCH_TRACES` (colon-separated trace directories).

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut traces: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    if traces.is_empty() {
        if let Some(v) = std::env::var_os("REWIND_BENCH_TRACES") {
            traces = std::env::split_paths(&v).collect();
        }
    }
    if traces.is_empty() {
        eprintln!("analyze bench: give trace directories (or REWIND_BENCH_TRACES)");
        return;
    }
    println!("trace\tevents\tprobe_hits\thits/s\treplay_s\tanalyze_s\tratio");
    for t in traces {
        let start = Instant::now();
        let replay = replayer::replay(
            &t,
            replayer::ReplayOptions {
                console: replayer::Console::Discard,
                pace: false,
            },
        );
        let replay_s = start.elapsed().as_secs_f64();
        if let Err(e) = replay {
            eprintln!("{}: replay failed: {e}", t.display());
            continue;
        }
        match analyzer::collect::collect(&t, Default::default()) {
            Ok((c, _)) => {
                let s = &c.stats;
                println!(
                    "{}\t{}\t{}\t{:.0}\t{:.3}\t{:.3}\t{:.1}x",
                    t.display(),
                    s.trace_events,
                    s.probe_hits,
                    s.hits_per_second(),
                    replay_s,
                    s.elapsed.as_secs_f64(),
                    s.elapsed.as_secs_f64() / replay_s.max(1e-9)
                );
            }
            Err(e) => eprintln!("{}: analysis failed: {e}", t.display()),
        }
    }
}
