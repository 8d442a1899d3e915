//! The engines on event sequences that mirror umk's bug scenarios (kernel/src/bugs/):
//! structural checks of each report plus golden files of the full text. Regenerate the
//! golden files deliberately with `REWIND_BLESS=1 cargo test -p analyzer`.

use std::path::PathBuf;

use analyzer::chrome::ChromeTrace;
use analyzer::events::*;
use analyzer::graph::Renderer;
use analyzer::kasan::{Access, FoundLoad, KasanReport, ObjectTracker, NO_CRASH};
use analyzer::lockdep::LockReport;
use analyzer::symbols::StaticSymbols;

/// Compares `actual` with analyzer/tests/golden/`name`.
#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    testsupport::golden(&path, actual);
}

// Made-up code layout: one function per 0x100..0x400 bytes.
const MUTEX_LOCK: u64 = 0x1000;
const MUTEX_UNLOCK: u64 = 0x1100;
const SPIN_ACQUIRE: u64 = 0x1200;
const ONE_WAY: u64 = 0x2000;
const TRAMPOLINE: u64 = 0x3000;
const UBD_CONFIG: u64 = 0x4000;
const UBD_DO_IO: u64 = 0x4400;
const IRQ_IO: u64 = 0x6000;
const CHECKSUM: u64 = 0x7000;
const ALLOC_REQ: u64 = 0x7400;
const FREE_REQ: u64 = 0x7600;
const SUBMITTER: u64 = 0x8000;
const NESTED: u64 = 0x9000;

fn symbols() -> StaticSymbols {
    let mut s = StaticSymbols::default();
    s.function(
        MUTEX_LOCK,
        0x100,
        "umk::sync::mutex::Mutex<T>::lock",
        "kernel/src/sync/mutex.rs",
        50,
    );
    s.function(
        MUTEX_UNLOCK,
        0x100,
        "<umk::sync::mutex::MutexGuard<T> as core::ops::drop::Drop>::drop",
        "kernel/src/sync/mutex.rs",
        102,
    );
    s.function(
        SPIN_ACQUIRE,
        0x100,
        "umk::sync::spinlock::SpinLock<T>::acquire",
        "kernel/src/sync/spinlock.rs",
        52,
    );
    s.function(
        ONE_WAY,
        0x200,
        "umk::bugs::abba::one_way",
        "kernel/src/bugs/abba.rs",
        30,
    );
    s.function(
        TRAMPOLINE,
        0x100,
        "umk::sched::task_entry",
        "kernel/src/sched/mod.rs",
        210,
    );
    s.function(
        UBD_CONFIG,
        0x400,
        "umk::block::ubd::config",
        "kernel/src/block/ubd.rs",
        140,
    );
    s.function(
        UBD_DO_IO,
        0x400,
        "umk::block::ubd::do_io",
        "kernel/src/block/ubd.rs",
        330,
    );
    s.function(
        IRQ_IO,
        0x100,
        "umk::irq::handle_io",
        "kernel/src/irq.rs",
        80,
    );
    s.function(
        CHECKSUM,
        0x100,
        "umk::bugs::uaf::checksum_request_data",
        "kernel/src/bugs/uaf.rs",
        33,
    );
    s.function(
        ALLOC_REQ,
        0x100,
        "umk::block::ubd::alloc_request",
        "kernel/src/block/ubd.rs",
        400,
    );
    s.function(
        FREE_REQ,
        0x100,
        "umk::block::ubd::free_request",
        "kernel/src/block/ubd.rs",
        420,
    );
    s.function(
        SUBMITTER,
        0x100,
        "umk::bugs::uaf::submitter",
        "kernel/src/bugs/uaf.rs",
        62,
    );
    s.function(
        NESTED,
        0x100,
        "umk::shell::stress::nested",
        "kernel/src/shell/stress.rs",
        20,
    );
    // A second line inside one_way: the opposite-order acquisition.
    s.lines.insert(
        ONE_WAY + 0x3f,
        vec![Frame {
            function: "umk::bugs::abba::one_way".into(),
            file: Some("kernel/src/bugs/abba.rs".into()),
            line: Some(33),
            inlined: false,
        }],
    );
    s
}

use analyzer::symbols::Frame;

fn pos(s: &str) -> Pos {
    s.parse().unwrap()
}

fn ev(p: &str, task: &TaskRef, stack: &[u64], kind: EventKind) -> Event {
    Event {
        pos: pos(p),
        task: task.clone(),
        stack: stack.to_vec(),
        kind,
    }
}

fn class(name: &str, file: &str, line: u32) -> LockClass {
    LockClass {
        name: name.into(),
        file: file.into(),
        line,
    }
}

fn mutex(addr: u64, c: &LockClass) -> LockOp {
    LockOp {
        addr,
        class: c.clone(),
        kind: LockKind::Mutex,
        ctx: Ctx::TASK,
        usage: None,
    }
}

fn spin(addr: u64, c: &LockClass, ctx: Ctx) -> LockOp {
    LockOp {
        addr,
        class: c.clone(),
        kind: LockKind::Spin,
        ctx,
        usage: None,
    }
}

/// acquire + acquired at one position's ticks `t` and `t+1`.
fn take(out: &mut Vec<Event>, e: u64, t: u64, task: &TaskRef, stack: &[u64], op: LockOp) {
    out.push(ev(
        &format!("e{e}+t{t}"),
        task,
        stack,
        EventKind::LockAcquire(op.clone()),
    ));
    out.push(ev(
        &format!("e{e}+t{}", t + 1),
        task,
        stack,
        EventKind::LockAcquired(op),
    ));
}

fn drop_lock(out: &mut Vec<Event>, e: u64, t: u64, task: &TaskRef, op: LockOp) {
    out.push(ev(
        &format!("e{e}+t{t}"),
        task,
        &[MUTEX_UNLOCK + 4, ONE_WAY + 0x60],
        EventKind::LockRelease(op),
    ));
}

fn end(
    task: &TaskRef,
    state: TaskState,
    wait: WaitKind,
    obj: u64,
    name: &str,
    owner: Option<u32>,
    held: &[u64],
) -> Event {
    ev(
        "e99",
        task,
        &[],
        EventKind::TaskState(TaskEnd {
            state,
            wait,
            wait_obj: obj,
            wait_name: name.into(),
            wait_owner: owner,
            held: held.to_vec(),
        }),
    )
}

const LOCK_A: u64 = 0x241e80;
const LOCK_B: u64 = 0x241e28;

fn abba_events() -> Vec<Event> {
    let a = class("abba_lock_a", "kernel/src/bugs/abba.rs", 10);
    let b = class("abba_lock_b", "kernel/src/bugs/abba.rs", 11);
    let t1 = TaskRef::new(3, "abba-1");
    let t2 = TaskRef::new(4, "abba-2");
    let first = [MUTEX_LOCK + 0x10, ONE_WAY + 0x20, TRAMPOLINE + 8];
    let second = [MUTEX_LOCK + 0x10, ONE_WAY + 0x40, TRAMPOLINE + 8];
    let mut v = Vec::new();
    // abba-1 completes one round in A→B order.
    take(&mut v, 10, 100, &t1, &first, mutex(LOCK_A, &a));
    take(&mut v, 10, 150, &t1, &second, mutex(LOCK_B, &b));
    drop_lock(&mut v, 10, 160, &t1, mutex(LOCK_B, &b));
    drop_lock(&mut v, 10, 161, &t1, mutex(LOCK_A, &a));
    v.push(ev(
        "e11+t170",
        &t1,
        &[],
        EventKind::ContextSwitch {
            prev: t1.clone(),
            next: t2.clone(),
        },
    ));
    // abba-2 takes B, is preempted; abba-1 takes A; each then wants the other's.
    take(&mut v, 20, 200, &t2, &first, mutex(LOCK_B, &b));
    v.push(ev(
        "e20+t205",
        &t2,
        &[],
        EventKind::ContextSwitch {
            prev: t2.clone(),
            next: t1.clone(),
        },
    ));
    take(&mut v, 21, 210, &t1, &first, mutex(LOCK_A, &a));
    v.push(ev(
        "e21+t215",
        &t1,
        &[],
        EventKind::ContextSwitch {
            prev: t1.clone(),
            next: t2.clone(),
        },
    ));
    v.push(ev(
        "e22+t220",
        &t2,
        &second,
        EventKind::LockAcquire(mutex(LOCK_A, &a)),
    ));
    v.push(ev(
        "e22+t221",
        &t2,
        &[],
        EventKind::ContextSwitch {
            prev: t2.clone(),
            next: t1.clone(),
        },
    ));
    v.push(ev(
        "e23+t230",
        &t1,
        &second,
        EventKind::LockAcquire(mutex(LOCK_B, &b)),
    ));
    v.push(end(
        &t1,
        TaskState::Uninterruptible,
        WaitKind::Mutex,
        LOCK_B,
        "abba_lock_b",
        Some(4),
        &[LOCK_A],
    ));
    v.push(end(
        &t2,
        TaskState::Uninterruptible,
        WaitKind::Mutex,
        LOCK_A,
        "abba_lock_a",
        Some(3),
        &[LOCK_B],
    ));
    v
}

#[test]
fn abba_is_one_cycle_and_an_actual_deadlock() {
    let r = LockReport::from_events(&abba_events());
    assert_eq!(r.classes.len(), 2);
    assert_eq!(r.edges.len(), 2);
    assert_eq!(r.cycles.len(), 1);
    assert_eq!(r.cycles[0].classes, vec![0, 1]);
    // B → A, first seen at e22+t220, closed the cycle.
    assert_eq!(r.cycles[0].closing, 1);
    assert_eq!(r.edges[&(0, 1)].first.pos, pos("e10+t150"));
    assert_eq!(r.edges[&(1, 0)].first.task.name, "abba-2");
    assert!(r.recursive.is_empty() && r.irq.is_empty());
    assert_eq!(r.actual.len(), 1);
    let pids: Vec<u32> = r.actual[0].links.iter().map(|l| l.task.pid).collect();
    assert_eq!(pids, vec![3, 4]);
    assert_eq!(
        r.actual[0].links[0].waiting_since.as_ref().unwrap().pos,
        pos("e23+t230")
    );
    assert_eq!(
        r.actual[0].links[0].owner_took.as_ref().unwrap().pos,
        pos("e20+t201")
    );

    let text = r.render_text(&symbols());
    let order = [
        "WARNING: possible circular locking dependency detected",
        "abba-2/4 is trying to acquire lock:",
        "(abba_lock_a){+.+.}-{4:4}, at: umk::bugs::abba::one_way+0x40/0x200 (kernel/src/bugs/abba.rs:33)",
        "position: e22+t220 (abba-2/4)",
        "but task is already holding lock:",
        "which lock already depends on the new lock.",
        "the existing dependency chain (in reverse order) is:",
        "-> #1 (abba_lock_b){+.+.}-{4:4}:",
        "-> #0 (abba_lock_a){+.+.}-{4:4}:",
        " Possible unsafe locking scenario:",
        "  lock(abba_lock_b);\n                               lock(abba_lock_a);\n                               lock(abba_lock_b);\n  lock(abba_lock_a);",
        " *** DEADLOCK ***",
        "1 lock held by abba-2/4:",
        "stack backtrace:",
        "== Actual deadlocks (end of the recording) ==",
        "DEADLOCK: blocked tasks wait for each other (wait-for cycle)",
        "abba-1/3 (UNINTERRUPTIBLE) is blocked on lock:",
        "which is held by abba-2/4, taken at:",
        "abba-1/3 --> (abba_lock_b) --> abba-2/4 --> (abba_lock_a) --> abba-1/3",
    ];
    let mut at = 0;
    for needle in order {
        let i = text[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing after byte {at}:\n{text}"));
        at += i + needle.len();
    }
    assert!(!text.contains("Chain exists of"));
    golden("abba_locks.txt", &text);

    let dot = r.to_dot(&symbols());
    assert!(
        dot.contains(
            "c0 -> c1 [label=\"kernel/src/bugs/abba.rs:33\\ne10+t150\\nabba-1/3\", color=red"
        ),
        "{dot}"
    );
    assert!(
        dot.contains(
            "c1 -> c0 [label=\"kernel/src/bugs/abba.rs:33\\ne22+t220\\nabba-2/4\", color=red"
        ),
        "{dot}"
    );
    golden("abba_locks.dot", &dot);
}

#[test]
fn abba_renders_to_well_formed_svg_with_the_cycle_in_red() {
    let r = LockReport::from_events(&abba_events());
    let svg = r
        .graph(&symbols())
        .to_svg(Renderer::Builtin)
        .expect("the built-in renderer");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(texts.contains(&"abba_lock_a"), "{texts:?}");
    assert!(texts.contains(&"e22+t220"), "{texts:?}");
    let red_edges = testsupport::svg::red_edges(&svg);
    assert_eq!(
        red_edges,
        ["abba_lock_a -> abba_lock_b", "abba_lock_b -> abba_lock_a"]
    );
}

/// Graphviz, where it is installed, draws the same DOT (`--graphviz`).
#[test]
fn abba_renders_with_graphviz_when_installed() {
    let r = LockReport::from_events(&abba_events());
    let svg = match r.graph(&symbols()).to_svg(Renderer::Graphviz) {
        Ok(svg) => svg,
        Err(e) if e.to_string().contains("not found on PATH") => {
            assert!(e.to_string().contains("drop --graphviz"), "{e}");
            eprintln!("skipping the graphviz rendering: {e}");
            return;
        }
        Err(e) => panic!("graphviz failed: {e}"),
    };
    // Graphviz emits a DOCTYPE, which roxmltree refuses unless told.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&svg, opts).expect("well-formed SVG");
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(texts.contains(&"abba_lock_a"), "{texts:?}");
    assert!(svg.contains("stroke=\"red\""));
}

#[test]
fn hotplug_is_recursive_and_a_self_deadlock() {
    let ubd = class("ubd_lock", "kernel/src/block/ubd.rs", 27);
    let io = class("ubd_io_lock", "kernel/src/block/ubd.rs", 28);
    let sh = TaskRef::new(1, "sh");
    let kio = TaskRef::new(2, "kio");
    const UBD: u64 = 0x240000;
    const IO: u64 = 0x240100;
    let mut v = Vec::new();
    take(
        &mut v,
        5,
        50,
        &kio,
        &[SPIN_ACQUIRE + 8, UBD_DO_IO + 0x20],
        spin(IO, &io, Ctx::TASK),
    );
    drop_lock(&mut v, 5, 52, &kio, spin(IO, &io, Ctx::TASK));
    take(
        &mut v,
        6,
        60,
        &sh,
        &[MUTEX_LOCK + 0x10, UBD_CONFIG + 0x30],
        mutex(UBD, &ubd),
    );
    take(
        &mut v,
        6,
        70,
        &sh,
        &[SPIN_ACQUIRE + 8, UBD_DO_IO + 0x20, UBD_CONFIG + 0x80],
        spin(IO, &io, Ctx::TASK),
    );
    drop_lock(&mut v, 6, 72, &sh, spin(IO, &io, Ctx::TASK));
    // The queue is busy: the read restarts it under ubd_lock, which sh already holds.
    v.push(ev(
        "e6+t80",
        &sh,
        &[MUTEX_LOCK + 0x10, UBD_DO_IO + 0x90, UBD_CONFIG + 0x80],
        EventKind::LockAcquire(mutex(UBD, &ubd)),
    ));
    v.push(end(
        &sh,
        TaskState::Uninterruptible,
        WaitKind::Mutex,
        UBD,
        "ubd_lock",
        Some(1),
        &[UBD],
    ));
    v.push(end(
        &kio,
        TaskState::Interruptible,
        WaitKind::Io,
        0,
        "ubd io",
        None,
        &[],
    ));

    let r = LockReport::from_events(&v);
    assert!(r.cycles.is_empty(), "a self edge is not an order cycle");
    assert_eq!(r.recursive.len(), 1);
    assert_eq!(r.recursive[0].attempt.pos, pos("e6+t80"));
    assert_eq!(r.recursive[0].held.pos, pos("e6+t61"));
    assert_eq!(r.actual.len(), 1);
    assert_eq!(r.actual[0].links.len(), 1);
    assert_eq!(r.actual[0].links[0].owner.pid, 1);
    let text = r.render_text(&symbols());
    for needle in [
        "WARNING: possible recursive locking detected",
        "sh/1 is trying to acquire lock:",
        "(ubd_lock){+.+.}-{4:4}, at: umk::block::ubd::do_io+0x90/0x400 (kernel/src/block/ubd.rs:330)",
        "(the same instance: this task will wait for itself)",
        "       CPU0\n       ----\n  lock(ubd_lock);\n  lock(ubd_lock);",
        "May be due to missing lock nesting notation",
        "DEADLOCK: a task waits for a lock it holds itself (self-deadlock)",
        "sh/1 --> (ubd_lock) --> sh/1",
    ] {
        assert!(text.contains(needle), "`{needle}` missing:\n{text}");
    }
    golden("hotplug_locks.txt", &text);
    assert!(r.to_dot(&symbols()).contains("c1 -> c1 [label=\"recursive"));
    // The recursive acquisition is a dashed red self-loop in the SVG.
    let svg = r.graph(&symbols()).to_svg(Renderer::Builtin).expect("SVG");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let self_loop = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("edge"))
        .find(|g| {
            g.children()
                .find(|c| c.has_tag_name("title"))
                .and_then(|t| t.text())
                == Some("ubd_lock -> ubd_lock")
        })
        .expect("the self-loop");
    let path = self_loop
        .children()
        .find(|c| c.has_tag_name("path"))
        .expect("its line");
    assert_eq!(path.attribute("stroke"), Some("red"));
    assert!(path.attribute("stroke-dasharray").is_some());
}

#[test]
fn clean_nested_order_has_no_cycle() {
    let a = class("outer", "kernel/src/shell/stress.rs", 5);
    let b = class("middle", "kernel/src/shell/stress.rs", 6);
    let c = class("inner", "kernel/src/shell/stress.rs", 7);
    let mut v = Vec::new();
    for (i, t) in [TaskRef::new(5, "stress-1"), TaskRef::new(6, "stress-2")]
        .iter()
        .enumerate()
    {
        let e = 10 + i as u64 * 10;
        take(&mut v, e, 1, t, &[MUTEX_LOCK, NESTED + 1], mutex(0x100, &a));
        take(&mut v, e, 3, t, &[MUTEX_LOCK, NESTED + 2], mutex(0x200, &b));
        take(&mut v, e, 5, t, &[MUTEX_LOCK, NESTED + 3], mutex(0x300, &c));
        drop_lock(&mut v, e, 7, t, mutex(0x300, &c));
        drop_lock(&mut v, e, 8, t, mutex(0x200, &b));
        drop_lock(&mut v, e, 9, t, mutex(0x100, &a));
        v.push(end(t, TaskState::Dead, WaitKind::None, 0, "", None, &[]));
    }
    let r = LockReport::from_events(&v);
    assert_eq!(r.edges.len(), 2, "outer→middle→inner, outer→inner implied");
    assert!(r.cycles.is_empty() && !r.has_potential_deadlock() && r.actual.is_empty());
    let text = r.render_text(&symbols());
    assert!(text.contains("No potential deadlock"), "{text}");
    assert!(text.contains("No actual deadlock"), "{text}");
    assert!(!r.to_dot(&symbols()).contains("red"));
    golden("nested_locks.txt", &text);
}

#[test]
fn three_lock_cycle_reports_the_chain() {
    let cs: Vec<LockClass> = ["l0", "l1", "l2"]
        .iter()
        .enumerate()
        .map(|(i, n)| class(n, "kernel/src/x.rs", i as u32))
        .collect();
    let mut v = Vec::new();
    for i in 0..3usize {
        let t = TaskRef::new(10 + i as u32, &format!("t{i}"));
        let (x, y) = (i, (i + 1) % 3);
        take(
            &mut v,
            10 * (i as u64 + 1),
            1,
            &t,
            &[NESTED + 1],
            mutex(0x100 * (x as u64 + 1), &cs[x]),
        );
        take(
            &mut v,
            10 * (i as u64 + 1),
            3,
            &t,
            &[NESTED + 2],
            mutex(0x100 * (y as u64 + 1), &cs[y]),
        );
        drop_lock(
            &mut v,
            10 * (i as u64 + 1),
            5,
            &t,
            mutex(0x100 * (y as u64 + 1), &cs[y]),
        );
        drop_lock(
            &mut v,
            10 * (i as u64 + 1),
            6,
            &t,
            mutex(0x100 * (x as u64 + 1), &cs[x]),
        );
    }
    let r = LockReport::from_events(&v);
    assert_eq!(r.cycles.len(), 1);
    assert_eq!(r.cycles[0].classes, vec![0, 1, 2]);
    assert_eq!(r.cycles[0].closing, 2);
    let text = r.render_text(&symbols());
    assert!(
        text.contains("Chain exists of:\n  l0 --> l1 --> l2\n"),
        "{text}"
    );
    assert!(text.contains("-> #2 (l2){+.+.}-{4:4}:") && text.contains("-> #1 (l1){+.+.}-{4:4}:"));
    assert!(
        text.contains("Unknown: the task states at the end of the recording were not collected.")
    );
}

#[test]
fn irq_inversion_and_held_at_exit() {
    let io = class("ubd_io_lock", "kernel/src/block/ubd.rs", 28);
    let list = class("irqrace_list", "kernel/src/bugs/irqrace.rs", 20);
    let t = TaskRef::new(7, "irqrace");
    let mut v = Vec::new();
    take(
        &mut v,
        3,
        30,
        &t,
        &[SPIN_ACQUIRE + 8, UBD_DO_IO + 0x20],
        spin(0x500, &io, Ctx::TASK),
    );
    drop_lock(&mut v, 3, 32, &t, spin(0x500, &io, Ctx::TASK));
    v.push(ev("e4", &t, &[], EventKind::IrqEnter { irq: 1 }));
    take(
        &mut v,
        4,
        40,
        &t,
        &[SPIN_ACQUIRE + 8, IRQ_IO + 0x10],
        spin(0x500, &io, Ctx::IRQ),
    );
    drop_lock(&mut v, 4, 42, &t, spin(0x500, &io, Ctx::IRQ));
    v.push(ev("e4+t43", &t, &[], EventKind::IrqExit { irq: 1 }));
    take(
        &mut v,
        5,
        50,
        &t,
        &[MUTEX_LOCK, NESTED + 5],
        mutex(0x600, &list),
    );
    v.push(ev("e6", &t, &[NESTED + 9], EventKind::TaskExit));
    let r = LockReport::from_events(&v);
    assert_eq!(r.irq.len(), 1);
    assert_eq!(r.held_at_exit.len(), 1);
    assert!(
        r.edges.is_empty(),
        "an interrupt's first lock starts a new chain"
    );
    let text = r.render_text(&symbols());
    for needle in [
        "WARNING: inconsistent lock state",
        "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage.",
        "irqrace/7 [HC1:HE0] takes:",
        "{HARDIRQ-ON-W} state was registered at:\n  position: e3+t30 (irqrace/7)",
        "  lock(ubd_io_lock);\n  <Interrupt>\n    lock(ubd_io_lock);",
        "WARNING: irqrace/7 still has locks held!",
        "exiting at position e6",
        "1 lock held by irqrace/7:\n #0: 0x600 (irqrace_list){+.+.}-{4:4}",
    ] {
        assert!(text.contains(needle), "`{needle}` missing:\n{text}");
    }
    golden("irq_locks.txt", &text);
}

#[test]
fn no_locks_says_so() {
    let r = LockReport::from_events(&[]);
    let text = r.render_text(&symbols());
    assert!(
        text.starts_with("No locks were taken in this recording"),
        "{text}"
    );
    assert_eq!(r.to_dot(&symbols()), "digraph lockdep {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n  edge [fontname=\"monospace\", fontsize=10];\n}\n");
}

const REQ: u64 = 0x900000;

fn uaf_events(gpf: bool) -> (Vec<Event>, Vec<u8>) {
    let t = TaskRef::new(5, "uaf-submit");
    let cache = |ptr| ObjectOp {
        cache_index: 9,
        cache: "ubd_request".into(),
        ptr,
        size: 64,
    };
    let mut v = vec![
        ev(
            "e40+t400",
            &t,
            &[ALLOC_REQ + 0x30, SUBMITTER + 0x10],
            EventKind::Alloc(cache(REQ)),
        ),
        ev(
            "e41+t410",
            &t,
            &[ALLOC_REQ + 0x30, SUBMITTER + 0x10],
            EventKind::Alloc(cache(REQ + 0x50)),
        ),
        ev("e50", &t, &[], EventKind::IrqEnter { irq: 1 }),
        ev(
            "e50+t510",
            &t,
            &[FREE_REQ + 0x20, IRQ_IO + 0x40],
            EventKind::Free(cache(REQ)),
        ),
        ev("e50+t511", &t, &[], EventKind::IrqExit { irq: 1 }),
    ];
    // The faulting function: the pointer load, the length load, then the dereference.
    let func: Vec<u8> = vec![
        0x48, 0x8b, 0x4f, 0x18, // mov rcx, qword ptr [rdi + 0x18]
        0x48, 0x8b, 0x77, 0x20, // mov rsi, qword ptr [rdi + 0x20]
        0x31, 0xd2, // xor edx, edx
        0x31, 0xc0, // xor eax, eax
        0x90, 0x90, 0x90, 0x90, // nop ×4
        0x0f, 0xb6, 0x04, 0x11, // movzx eax, byte ptr [rcx + rdx]
    ];
    let mut regs = Regs {
        rdi: REQ,
        rsp: 0x7ff000,
        rbp: 0x7ff040,
        rip: CHECKSUM + 0x10,
        ..Regs::default()
    };
    let fault_addr = if gpf {
        regs.rcx = 0x6b6b_6b6b_6b6b_6b6b;
        None
    } else {
        regs.rcx = REQ + 0x20;
        Some(REQ + 0x20)
    };
    v.push(ev(
        "e60+t600+s4",
        &t,
        &[CHECKSUM + 0x10, SUBMITTER + 0x40],
        EventKind::Crash(Crash {
            signal: 11,
            fault_addr,
            regs,
            code: func[16..].to_vec(),
        }),
    ));
    (v, func)
}

#[test]
fn uaf_general_protection_fault_names_the_freed_request() {
    let (events, func) = uaf_events(true);
    let mut tr = ObjectTracker::new();
    for e in &events {
        tr.feed(e);
    }
    let crash = tr.crash().unwrap().clone();
    let access = Access {
        pos: pos("e55+t550"),
        task: TaskRef::new(5, "uaf-submit"),
        stack: vec![CHECKSUM + 4, SUBMITTER + 0x40],
        addr: REQ + 0x20,
        size: 8,
        write: false,
    };
    let r = KasanReport::build(&tr, &crash, Some((CHECKSUM, &func)), None, &[access]).unwrap();
    assert!(r.is_use_after_free());
    assert_eq!(r.access, Some((REQ + 0x18, 8, false)));
    assert_eq!(r.object.as_ref().unwrap().ptr, REQ);
    assert_eq!(r.accesses.len(), 1);
    let text = r.render_text(&symbols());
    let order = [
        // KASAN's report is the first bad access's: the load of the freed pointer.
        "BUG: KASAN: slab-use-after-free in umk::bugs::uaf::checksum_request_data+0x0/0x100",
        "Read of size 8 at addr 0000000000900018 by task uaf-submit/5",
        "position: before e60+t600+s4",
        "Call Trace:\n <TASK>\n umk::bugs::uaf::checksum_request_data+0x0/0x100",
        " </TASK>\n",
        "Allocated by task 5 (uaf-submit):\n position: e40+t400",
        "umk::block::ubd::alloc_request+0x30/0x100 kernel/src/block/ubd.rs:400",
        "Freed by task 5 (uaf-submit) in interrupt (irq 1):\n position: e50+t510",
        "umk::irq::handle_io+0x40/0x100 kernel/src/irq.rs:80",
        "The buggy address belongs to the object at 0000000000900000\n which belongs to the cache ubd_request of size 64",
        "The buggy address is located 24 bytes inside of\n freed 64-byte region [0000000000900000, 0000000000900040)",
        "Accesses to the object between the free and the crash:",
        "Read of size 8 at addr 0000000000900020 (offset 32) by task uaf-submit/5 at position e55+t550",
        // Then the fault it led to, which KASAN would have prevented.
        "general protection fault, probably for non-canonical address 0x6b6b6b6b6b6b6b6b",
        "position: e60+t600+s4",
        "in umk::bugs::uaf::checksum_request_data+0x10/0x100",
        "faulting instruction: movzx eax, byte ptr [rcx + rdx]",
        "rcx = 0x6b6b6b6b6b6b6b6b was loaded by: mov rcx, qword ptr [rdi + 0x18] (umk::bugs::uaf::checksum_request_data+0x0/0x100)",
        "Registers:",
    ];
    let mut at = 0;
    for needle in order {
        let i = text[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing after byte {at}:\n{text}"));
        at += i + needle.len();
    }
    golden("uaf_gpf.txt", &text);
}

#[test]
fn a_crash_in_an_interrupt_marks_its_frames_and_the_interrupted_tasks() {
    let (mut events, func) = uaf_events(true);
    let crash = events.pop().unwrap();
    let t = TaskRef::new(5, "uaf-submit");
    // The interrupt came in at a preemption point of the submitter; the crash is in its
    // handler, whose stack ends in the submitter's frames.
    events.push(ev(
        "e59",
        &t,
        &[IRQ_IO + 0x8, SUBMITTER + 0x40],
        EventKind::IrqEnter { irq: 1 },
    ));
    let mut crash = crash;
    crash.stack = vec![CHECKSUM + 0x10, IRQ_IO + 0x40, SUBMITTER + 0x40];
    events.push(crash);
    let mut tr = ObjectTracker::new();
    for e in &events {
        tr.feed(e);
    }
    let crash = tr.crash().unwrap().clone();
    let r = KasanReport::build(&tr, &crash, Some((CHECKSUM, &func)), None, &[]).unwrap();
    let text = r.render_text(&symbols());
    let trace = &text[text.find("Call Trace:").unwrap()..text.find("Allocated by").unwrap()];
    let lines: Vec<&str> = trace
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap_or(l))
        .collect();
    assert_eq!(
        lines,
        [
            "Trace:",
            "<IRQ>",
            "umk::bugs::uaf::checksum_request_data+0x0/0x100",
            "umk::irq::handle_io+0x40/0x100",
            "</IRQ>",
            "<TASK>",
            "umk::bugs::uaf::submitter+0x40/0x100",
            "</TASK>",
            "",
        ],
        "{trace}"
    );
}

#[test]
fn uaf_load_found_by_the_replay_wins_over_the_static_search() {
    let (mut events, func) = uaf_events(true);
    // Release code reuses rdi after loading through it: the static search must give up.
    if let Some(EventKind::Crash(c)) = events.last_mut().map(|e| &mut e.kind) {
        c.regs.rdi = 0;
    }
    let mut tr = ObjectTracker::new();
    for e in &events {
        tr.feed(e);
    }
    let crash = tr.crash().unwrap().clone();
    let r = KasanReport::build(&tr, &crash, Some((CHECKSUM, &func)), None, &[]).unwrap();
    assert!(r.object.is_none(), "{:?}", r.finding);
    let load = analyzer::disasm::disassemble(&func[..4], CHECKSUM, 1).unwrap()[0].clone();
    let found = FoundLoad {
        reg: "rcx".into(),
        insn: load,
        addr: REQ + 0x18,
        size: 8,
        pos: pos("e60+t600"),
        via: Vec::new(),
    };
    let r = KasanReport::build(&tr, &crash, Some((CHECKSUM, &func)), Some(&found), &[]).unwrap();
    assert!(r.is_use_after_free());
    assert_eq!(r.access, Some((REQ + 0x18, 8, false)));
    let text = r.render_text(&symbols());
    assert!(
        text.contains("The pointer was loaded at e60+t600 by `mov rcx, qword ptr [rdi + 0x18]` from 0x900018, inside the freed object."),
        "{text}"
    );
    // Found for another register, it explains nothing.
    let other = FoundLoad {
        reg: "rdx".into(),
        ..found
    };
    let r = KasanReport::build(&tr, &crash, Some((CHECKSUM, &func)), Some(&other), &[]).unwrap();
    assert!(r.object.is_none());
}

#[test]
fn uaf_fault_address_inside_freed_object() {
    let (events, _) = uaf_events(false);
    let mut tr = ObjectTracker::new();
    for e in &events {
        tr.feed(e);
    }
    let crash = tr.crash().unwrap().clone();
    let r = KasanReport::build(&tr, &crash, None, None, &[]).unwrap();
    assert!(r.is_use_after_free());
    assert_eq!(r.access, Some((REQ + 0x20, 1, false)));
    let text = r.render_text(&symbols());
    assert!(
        text.contains("Read of size 1 at addr 0000000000900020 by task uaf-submit/5"),
        "{text}"
    );
    assert!(
        text.contains("located 32 bytes inside of\n freed 64-byte region"),
        "{text}"
    );
    assert!(
        text.contains("none recorded besides the faulting one"),
        "{text}"
    );
    assert!(!text.contains("general protection fault"));
}

#[test]
fn no_crash_says_so() {
    let mut tr = ObjectTracker::new();
    for e in abba_events() {
        tr.feed(&e);
    }
    assert!(tr.crash().is_none());
    assert!(NO_CRASH.starts_with("No memory fault in this recording"));
}

#[test]
fn chrome_trace_has_tracks_slices_and_is_deterministic() {
    let build = || {
        let mut c = ChromeTrace::new();
        for e in abba_events().iter().chain(uaf_events(true).0.iter()) {
            c.feed(e);
        }
        c.to_json().unwrap()
    };
    let text = build();
    assert_eq!(text, build());
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    let names: Vec<&str> = evs
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"abba-1/3") && names.contains(&"abba-2/4"),
        "{names:?}"
    );
    assert!(names.contains(&"irq 1 (I/O)"), "{names:?}");
    let running = evs
        .iter()
        .filter(|e| e["cat"] == "sched" && e["ph"] == "X")
        .count();
    assert_eq!(running, 4);
    let holds_b = evs
        .iter()
        .filter(|e| e["cat"] == "lock" && e["ph"] == "b")
        .count();
    let holds_e = evs
        .iter()
        .filter(|e| e["cat"] == "lock" && e["ph"] == "e")
        .count();
    assert_eq!((holds_b, holds_e), (4, 4));
    assert!(evs
        .iter()
        .any(|e| e["cat"] == "irq" && e["args"]["from"] == "e50"));
    assert!(evs
        .iter()
        .any(|e| e["cat"] == "crash" && e["args"]["position"] == "e60+t600+s4"));
    golden("timeline.json", &text);
}

/// KASAN's `get_wild_bug_type()`: a fault in the first page is a NULL pointer's field
/// (the input scenario's 0x10), anywhere else outside every object a wild access.
#[test]
fn a_fault_outside_every_object_is_typed_as_kasan_types_it() {
    let t = TaskRef::new(3, "input");
    let bug_type = |fault_addr: u64| {
        let crash = ev(
            "e9",
            &t,
            &[CHECKSUM],
            EventKind::Crash(Crash {
                signal: 11,
                fault_addr: Some(fault_addr),
                regs: Regs {
                    rip: CHECKSUM,
                    ..Regs::default()
                },
                code: vec![0x8b, 0x40, 0x10],
            }),
        );
        let mut tr = ObjectTracker::new();
        tr.feed(&crash);
        let r = KasanReport::build(&tr, &crash, None, None, &[]).unwrap();
        let text = r.render_text(&symbols());
        text.lines()
            .find_map(|l| l.strip_prefix("BUG: KASAN: "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("no KASAN line:\n{text}"))
            .to_string()
    };
    assert_eq!(bug_type(0x10), "null-ptr-deref");
    assert_eq!(bug_type(0xfff), "null-ptr-deref");
    assert_eq!(bug_type(0x1000), "wild-memory-access");
    assert_eq!(bug_type(0xdead_0000), "wild-memory-access");
}

/// A guest's lockdep reports every class it knows (a Linux boot: hundreds): the diagram
/// draws the classes of the cycle and their neighbours, and says how many it left out,
/// while the DOT keeps them all.
#[test]
fn a_lock_graph_too_large_to_draw_is_drawn_around_its_cycle() {
    let t = TaskRef::new(7, "kworker");
    let classes: Vec<LockClass> = (0..100).map(|i| class(&format!("c{i}"), "", 0)).collect();
    let dep = |a: usize, b: usize, refused: bool| {
        ev(
            "e5",
            &t,
            &[],
            EventKind::LockDependency {
                from: mutex(0x1000 + a as u64, &classes[a]),
                to: mutex(0x1000 + b as u64, &classes[b]),
                refused,
                held_at: None,
            },
        )
    };
    let mut events: Vec<Event> = (1..100).map(|i| dep(i - 1, i, false)).collect();
    events.push(dep(99, 98, true));
    let r = LockReport::from_events(&events);
    assert_eq!(r.cycles.len(), 1, "{:?}", r.cycles);
    assert!(r.guest_lockdep_off.is_some());
    let full = r.graph(&symbols()).to_dot();
    let drawn = r.diagram(&symbols()).to_dot();
    for i in 0..100 {
        assert!(
            full.contains(&format!("\"c{i}\\n")),
            "class {i} not in the DOT"
        );
    }
    // The cycle (98, 99) and its neighbour 97; not the chain's start.
    for i in [97, 98, 99] {
        assert!(
            drawn.contains(&format!("\"c{i}\\n")),
            "class {i} not drawn\n{drawn}"
        );
    }
    assert!(!drawn.contains("\"c0\\n"), "{drawn}");
    assert!(drawn.contains("97 more classes"), "{drawn}");
}
