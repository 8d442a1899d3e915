//! `rewind analyze` end to end: real umk scenarios recorded with `rewind record`
//! (bug_window=1, so each bug fires), then analyzed on a replay.
//!
//! * abba: a potential deadlock (order cycle) and an actual one (wait-for cycle) naming
//!   both mutexes and both tasks; the text matches a golden file (positions masked, keyed
//!   on the build profile; REWIND_BLESS=1 rewrites it); the built-in SVG is well-formed
//!   with the cycle in red; `--graphviz` draws with graphviz where it is installed (which
//!   also checks the DOT) and says how to do without it where it is not; two analyses are
//!   byte-identical; the report directory has an index.html with the inlined diagrams and
//!   the jump commands.
//! * hotplug: recursive locking and a self-deadlock on ubd_lock.
//! * uaf: a use-after-free naming the allocation in the request path and the free in the
//!   completion interrupt.
//! * irqrace: what the analyzer can see (the handler takes no lock: see the test).
//! * stress 2 2: no order cycle, no actual deadlock.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testsupport::{arg, make_ext2, script, umk_binary, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

/// Records umk running `lines` with bug_window=1 and `extra` arguments into `d/trace`.
fn record(d: &Scratch, lines: &[&str], extra: &[&str]) -> PathBuf {
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[("etc/motd", "motd\n")]);
    let s = script(d, "init", lines);
    let t = d.path("trace");
    let out = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&t)
        .arg("--")
        .arg(umk_binary())
        .args(["mem=32M".to_string(), arg("ubd0", &img), arg("init", &s)])
        .arg("bug_window=1")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("running rewind record");
    assert!(t.join("header").exists() || t.is_dir(), "no trace: {out:?}");
    t
}

fn scenario(d: &Scratch, name: &str) -> PathBuf {
    scenario_with(d, name, &[])
}

fn scenario_with(d: &Scratch, name: &str, extra: &[&str]) -> PathBuf {
    let bug = format!("bug {name}");
    record(d, &[&bug, "echo scenario returned", "halt"], extra)
}

fn analyze(args: &[&str], trace: &Path) -> String {
    let mut cmd = Command::new(REWIND);
    cmd.arg("analyze").arg(args[0]).arg(trace).args(&args[1..]);
    let out = cmd.output().expect("running rewind analyze");
    assert!(
        out.status.success(),
        "rewind analyze {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 report")
}

/// Positions depend on the recording's timing; everything else in a lock report depends
/// only on the binary.
/// Masks replay positions and lock instance addresses (`0x244f40 (abba_lock_b)`): both
/// move whenever anything in umk changes size, while the report's shape, classes, tasks,
/// sites and stacks are what the golden file pins down.
fn mask_positions(text: &str) -> String {
    text.split('\n')
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    let core = w.trim_end_matches([',', ')']);
                    let is_pos = core.starts_with('e')
                        && core.len() > 1
                        && core.as_bytes()[1].is_ascii_digit()
                        && core.parse::<replayer::Position>().is_ok();
                    let is_addr = core.starts_with("0x")
                        && core.len() > 2
                        && core[2..].bytes().all(|b| b.is_ascii_hexdigit());
                    if is_pos {
                        format!("POS{}", &w[core.len()..])
                    } else if is_addr {
                        format!("ADDR{}", &w[core.len()..])
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Compares `actual` with tests/golden/`name`.<profile>.txt (the stacks differ by profile).
#[track_caller]
fn golden(name: &str, actual: &str) {
    let p = testsupport::workspace()
        .join("tests/golden")
        .join(format!("{name}.{}.txt", profile()));
    testsupport::golden(&p, actual);
}

#[test]
fn abba_gives_potential_and_actual_deadlock() {
    let d = Scratch::new("ana-abba");
    let t = scenario(&d, "abba");
    let dot = d.path("locks.dot");
    let svg = d.path("locks.svg");
    let dot_s = dot.to_str().unwrap();
    let svg_s = svg.to_str().unwrap();
    let text = analyze(&["locks", "--dot", dot_s, "--svg", svg_s], &t);
    assert!(
        text.contains("WARNING: possible circular locking dependency detected"),
        "{text}"
    );
    assert!(
        text.contains("DEADLOCK: blocked tasks wait for each other"),
        "{text}"
    );
    for needle in [
        "abba_lock_a",
        "abba_lock_b",
        "abba-1/3",
        "abba-2/4",
        "kernel/src/bugs/abba.rs:",
    ] {
        assert!(text.contains(needle), "lacks {needle}\n{text}");
    }
    let actual = &text[text.find("== Actual deadlocks").unwrap()..];
    assert!(
        actual.contains("abba-1/3") && actual.contains("abba-2/4"),
        "{actual}"
    );
    // Positions printed are replay positions.
    assert!(text.contains("position: e"), "{text}");

    // Same trace, same bytes.
    let again = analyze(&["locks"], &t);
    assert_eq!(text, again);
    // Acquisition counts and the irq-usage reports depend on how many timer interrupts the
    // recording got; the cycle and the wait-for cycle depend only on the binary.
    let cyc = text
        .find("WARNING: possible circular locking dependency detected")
        .unwrap();
    let cyc_end = text[cyc..]
        .find("\n\n====")
        .or_else(|| text[cyc..].find("\n== Actual"))
        .map_or(text.len(), |i| cyc + i);
    let stable = format!("{}\n{}", &text[cyc..cyc_end], actual);
    golden("analyze_abba_locks", &mask_positions(&stable));

    // The built-in SVG parses as XML (no DTD) and draws both edges of the cycle in red.
    let d_text = std::fs::read_to_string(&dot).unwrap();
    assert!(d_text.contains("color=red"), "{d_text}");
    let s_text = std::fs::read_to_string(&svg).unwrap();
    let red = testsupport::svg::red_edges(&s_text);
    assert!(
        red.iter().any(|e| e == "abba_lock_a -> abba_lock_b")
            && red.iter().any(|e| e == "abba_lock_b -> abba_lock_a"),
        "{red:?}"
    );
    graphviz_or_its_absence(&t, &d);

    // The report directory.
    let out = d.path("report");
    analyze(&["report", "-o", out.to_str().unwrap()], &t);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<svg"), "diagrams inlined");
    assert!(html.contains("rewind replay -i") && html.contains("goto e"));
    assert!(html.contains("rewind gdb") && html.contains("--at e"));
    let json = std::fs::read_to_string(out.join("timeline.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&json).expect("Chrome trace JSON");
    let out2 = d.path("report2");
    analyze(&["report", "-o", out2.to_str().unwrap()], &t);
    for f in [
        "index.html",
        "locks.txt",
        "uaf.txt",
        "provenance.txt",
        "timeline.json",
        "locks.svg",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(out2.join(f)).unwrap(),
            "{f} differs between two analyses"
        );
    }
    // No crash to explain in a deadlock.
    let uaf = std::fs::read_to_string(out.join("uaf.txt")).unwrap();
    assert!(
        uaf.starts_with("No memory fault in this recording"),
        "{uaf}"
    );
}

/// Where graphviz is installed, it accepts the DOT and `--graphviz` draws with it; where
/// it is not, `--graphviz` fails saying how to do without it.
fn graphviz_or_its_absence(t: &Path, d: &Scratch) {
    let svg = d.path("locks-graphviz.svg");
    let mut cmd = Command::new(REWIND);
    cmd.args(["analyze", "locks"])
        .arg(t)
        .arg("--svg")
        .arg(&svg)
        .arg("--graphviz");
    let installed = Command::new("dot").arg("-V").output().is_ok();
    if !installed {
        let out = cmd.output().expect("running rewind analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "--graphviz without graphviz succeeded"
        );
        assert!(
            err.contains("install graphviz") && err.contains("drop --graphviz"),
            "{err}"
        );
        eprintln!("graphviz is not installed: checked only that --graphviz says so");
        return;
    }
    let st = Command::new("dot")
        .args(["-Tcanon", "-o", "/dev/null"])
        .arg(d.path("locks.dot"))
        .status()
        .expect("graphviz dot");
    assert!(st.success(), "graphviz rejects the DOT");
    let out = cmd.output().expect("running rewind analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s_text = std::fs::read_to_string(&svg).unwrap();
    // Graphviz writes a DOCTYPE, which roxmltree refuses unless told.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(&s_text, opts).expect("well-formed SVG");
    assert!(
        s_text.contains("Generated by graphviz"),
        "drawn by graphviz"
    );
}

#[test]
fn hotplug_is_recursive_locking_on_ubd_lock() {
    let d = Scratch::new("ana-hotplug");
    // Until the hung-task detector fires, ubd_io_lock is taken some 15000 times a second
    // and the analyzer stops at every acquisition: the shortest timeout (1 s, not the
    // default 2) halves the analysis and leaves the report the same but for the counts.
    let t = scenario_with(&d, "hotplug", &["hung_task_timeout=1"]);
    let text = analyze(&["locks"], &t);
    let rec = text
        .find("WARNING: possible recursive locking detected")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(text[rec..].contains("(ubd_lock){+.+.}-{4:4}"), "{text}");
    assert!(
        text.contains("DEADLOCK: a task waits for a lock it holds itself"),
        "{text}"
    );
}

#[test]
fn uaf_names_allocation_in_request_path_and_free_in_interrupt() {
    let d = Scratch::new("ana-uaf");
    let t = scenario(&d, "uaf");
    let text = analyze(&["uaf"], &t);
    assert!(text.contains("BUG: KASAN: slab-use-after-free"), "{text}");
    let alloc = text.find("Allocated by task").expect("allocation");
    let freed = text.find("Freed by task").expect("free");
    assert!(text[alloc..freed].contains("alloc_request"), "{text}");
    assert!(text[alloc..freed].contains("uaf-submit"), "{text}");
    assert!(text[freed..].contains("in interrupt (irq"), "{text}");
    assert!(text[freed..].contains("end_free"), "{text}");
    assert!(text.contains("Accesses to the object between the free and the crash"));
    let prov = analyze(&["provenance"], &t);
    assert!(
        prov.contains("[free]") && prov.contains("[alloc]") && prov.contains("[irq]"),
        "{prov}"
    );
}

#[test]
fn irqrace_shows_what_lockdep_can_see() {
    // The handler edits the list without taking jobs_lock, so no lock operation of the
    // interrupt involves jobs_lock: lockdep cannot flag the race itself. What it sees is
    // jobs_lock taken with interrupts enabled, and the crash (a panic, not a fault) that
    // the use-after-free analysis declines to explain.
    let d = Scratch::new("ana-irqrace");
    let t = scenario(&d, "irqrace");
    let text = analyze(&["locks"], &t);
    assert!(text.contains("(jobs_lock){+.+.}-{2:2}"), "{text}");
    assert!(!text.contains("circular locking dependency"), "{text}");
    let uaf = analyze(&["uaf"], &t);
    assert!(
        uaf.starts_with("No memory fault in this recording"),
        "{uaf}"
    );
}

#[test]
fn clean_stress_has_no_false_cycle() {
    let d = Scratch::new("ana-stress");
    let t = record(&d, &["stress 2 2", "halt"], &[]);
    let text = analyze(&["locks"], &t);
    assert!(text.starts_with("Lock analysis:"), "{text}");
    assert!(!text.contains("circular locking dependency"), "{text}");
    assert!(
        !text.contains("possible recursive locking detected"),
        "{text}"
    );
    assert!(text.contains("No actual deadlock"), "{text}");
}
