//! The timeline on a real umk recording, the shipped corpus/abba pack (so these tests
//! need no recorder and record nothing): positions round-trip, the cheap `mark_here` of a
//! breakpoint hit is its exact position without the steps, step_back retraces a forward
//! single-step run exactly, run_backward finds the last hit of a breakpoint on
//! a lock function, and watchpoints report the slot that fired and, backward, stop
//! before the write, landing on the last write before wherever they start.

use guest::Binary;
use replayer::{Position, StopReason, Timeline};

/// A timeline on the shipped abba recording, and the symbols of the umk packed in it
/// (the corpus umk is its own build, not this profile's).
fn abba() -> (Timeline, Binary) {
    let tl = Timeline::open(&testsupport::corpus::pack(
        "abba",
        replayer::host_mismatch_of,
    ))
    .unwrap();
    let syms = tl.load_binary().unwrap();
    (tl, syms)
}

#[test]
fn step_back_retraces_forward_steps_and_positions_round_trip() {
    let (mut tl, _) = abba();
    let n = tl.events().len() as u64;
    let late = Position::event(n * 3 / 4);
    tl.seek(&late).unwrap();
    assert_eq!(tl.position().unwrap(), late);
    // Walk back 40 instructions, remembering where each step lands.
    let mut back = vec![(tl.position().unwrap(), tl.regs().unwrap())];
    for _ in 0..40 {
        assert_eq!(tl.step_back().unwrap(), StopReason::Done);
        back.push((tl.position().unwrap(), tl.regs().unwrap()));
    }
    let (earliest, _) = *back.last().unwrap();
    assert!(earliest < late);
    // Positions print and parse back to themselves, and seeking there gives the state.
    for (p, regs) in back.iter().step_by(7) {
        let text = p.to_string();
        let parsed: Position = text.parse().unwrap();
        assert_eq!(&parsed, p);
        tl.seek(&parsed).unwrap();
        assert_eq!(&tl.regs().unwrap(), regs, "at {text}");
    }
    // A forward single-step run from the earliest point visits the same states.
    tl.seek(&earliest).unwrap();
    let mut fwd = vec![(tl.position().unwrap(), tl.regs().unwrap())];
    for _ in 0..40 {
        assert_eq!(tl.step_forward().unwrap(), StopReason::Done);
        fwd.push((tl.position().unwrap(), tl.regs().unwrap()));
    }
    back.reverse();
    for (i, (b, f)) in back.iter().zip(&fwd).enumerate() {
        assert_eq!(b.0, f.0, "position {i}");
        assert_eq!(b.1, f.1, "registers at {}", b.0);
    }
}

#[test]
fn run_backward_from_the_end_stops_at_the_last_lock_acquire() {
    let (mut tl, syms) = abba();
    let acquire = syms.address("umk_lock_acquire").unwrap();
    assert!(matches!(tl.run_forward().unwrap(), StopReason::Exited(_)));
    tl.set_breakpoint(acquire);
    let r = tl.run_backward().unwrap();
    assert_eq!(r, StopReason::Breakpoint(acquire));
    assert_eq!(tl.regs().unwrap().rip, acquire);
    let hit = tl.position().unwrap();
    // It is the last one: forward from it there is no other hit before the end.
    let r = tl.run_forward().unwrap();
    assert!(matches!(r, StopReason::Exited(_)), "{r:?}");
    // And backward again lands on the same hit, then an earlier one.
    assert_eq!(tl.run_backward().unwrap(), StopReason::Breakpoint(acquire));
    assert_eq!(tl.position().unwrap(), hit);
    assert_eq!(tl.run_backward().unwrap(), StopReason::Breakpoint(acquire));
    assert!(tl.position().unwrap() < hit);
    // The lock header is the first argument: a real lock with a class pointer.
    let lock = tl.regs().unwrap().rdi;
    let class = tl.read_memory(lock, 8).unwrap();
    assert_ne!(u64::from_le_bytes(class.try_into().unwrap()), 0);
}

#[test]
fn watchpoint_on_the_tick_counter_fires_forward() {
    let (mut tl, _) = abba();
    let ticks = tl.header().tick_abi.unwrap().ticks.0;
    tl.seek(&Position::event(50)).unwrap();
    let before = u64::from_le_bytes(tl.read_memory(ticks, 8).unwrap().try_into().unwrap());
    tl.set_watchpoint(ticks, 8, replayer::WatchKind::Write)
        .unwrap();
    assert_eq!(tl.run_forward().unwrap(), StopReason::Watchpoint(ticks));
    let after = u64::from_le_bytes(tl.read_memory(ticks, 8).unwrap().try_into().unwrap());
    assert_eq!(after, before + 1);
}

fn u64_at(tl: &Timeline, addr: u64) -> u64 {
    u64::from_le_bytes(tl.read_memory(addr, 8).unwrap().try_into().unwrap())
}

#[test]
fn the_second_watchpoint_fires_and_reverse_stops_before_the_write() {
    let (mut tl, syms) = abba();
    // A constant the guest never writes takes slot 0, so a report of "the first slot"
    // would name the wrong address.
    let quiet = syms.address("UMK_TASK_SIZE").unwrap();
    let ticks = tl.header().tick_abi.unwrap().ticks.0;
    let late = Position::event(tl.events().len() as u64 / 2);
    tl.seek(&late).unwrap();
    let at_late = u64_at(&tl, ticks);
    assert_eq!(
        tl.set_watchpoint(quiet, 8, replayer::WatchKind::Write)
            .unwrap(),
        0
    );
    assert_eq!(
        tl.set_watchpoint(ticks, 8, replayer::WatchKind::Write)
            .unwrap(),
        1
    );

    // Backward: the last increment before `late`, seen from just before it.
    assert_eq!(tl.run_backward().unwrap(), StopReason::Watchpoint(ticks));
    let old = u64_at(&tl, ticks);
    assert_eq!(old + 1, at_late, "the old value is still in memory");
    let before_write = tl.position().unwrap();
    assert!(before_write < late);
    assert_eq!(tl.step_forward().unwrap(), StopReason::Done);
    assert_eq!(
        u64_at(&tl, ticks),
        old + 1,
        "the next instruction is the write"
    );

    // Forward from before the write: the same write, reported after it.
    tl.seek(&before_write).unwrap();
    assert_eq!(tl.run_forward().unwrap(), StopReason::Watchpoint(ticks));
    assert_eq!(u64_at(&tl, ticks), old + 1);
}

/// The analyzer's probes: umk's probe functions and its SIGSEGV handler.
const PROBES: [&str; 10] = [
    "umk_lock_acquire",
    "umk_lock_acquired",
    "umk_lock_release",
    "umk_alloc",
    "umk_free",
    "umk_context_switch",
    "umk_irq_enter",
    "umk_irq_exit",
    "umk_task_exit",
    "umk::irq::sigsegv",
];

#[test]
fn positions_of_breakpoint_hits_seek_back_to_the_same_state() {
    let (mut tl, syms) = abba();
    let ticks = tl.header().tick_abi.unwrap().ticks.0;
    for name in PROBES {
        tl.set_breakpoint(syms.address(name).unwrap());
    }
    let started = std::time::Instant::now();
    let zero = std::time::Duration::ZERO;
    let (mut hits, mut placing, mut seeking) = (0u32, zero, zero);
    let mut last = Position::START;
    let mut checked = Vec::new();
    let most: u32 = std::env::var("REWIND_TEST_HITS").map_or(300, |v| v.parse().unwrap());
    while hits < most {
        let addr = match tl.run_forward().unwrap() {
            StopReason::Breakpoint(a) => a,
            StopReason::EndOfHistory | StopReason::Exited(_) => break,
            other => panic!("unexpected stop {other:?}"),
        };
        hits += 1;
        let regs = tl.regs().unwrap();
        assert_eq!(regs.rip, addr);
        // The cheap mark (no re-execution) is the exact position without its steps.
        let mark = tl.mark_here();
        let t0 = std::time::Instant::now();
        let p = tl
            .position()
            .unwrap_or_else(|e| panic!("hit {hits} at {addr:#x}: {e}"));
        placing += t0.elapsed();
        assert_eq!(
            (mark.event, mark.ticks, mark.steps),
            (p.event, p.ticks, 0),
            "hit {hits}: mark_here() {mark}, position() {p}"
        );
        assert!(p > last || hits == 1, "hit {hits}: {p} after {last}");
        last = p;
        assert_eq!(
            tl.regs().unwrap(),
            regs,
            "position() moved the replay ({p})"
        );
        // Away from preemption points the counter is the mark's.
        if let Some(k) = p.ticks {
            assert_eq!(u64_at(&tl, ticks), k, "REWIND_TICKS at {p}");
        }
        checked.push((p, regs));
        // Every tenth hit, go there from somewhere else and come back to carry on.
        if hits % 10 == 0 {
            let t0 = std::time::Instant::now();
            let (q, qregs) = checked[checked.len() / 2];
            tl.seek(&q).unwrap();
            assert_eq!(tl.regs().unwrap(), qregs, "at {q}");
            tl.seek(&p).unwrap();
            assert_eq!(tl.regs().unwrap(), regs, "at {p}");
            assert_eq!(tl.position().unwrap(), p);
            assert_eq!(tl.mark_here(), p.mark(), "after seeking to {p}");
            seeking += t0.elapsed();
        }
    }
    eprintln!(
        "{hits} hits in {:?}: placing {placing:?}, seeking {seeking:?}",
        started.elapsed()
    );
    assert!(hits >= 100, "only {hits} probe hits");
}

/// Every write to `addr` the forward run reports, as the position just after each.
fn forward_writes(tl: &mut Timeline, addr: u64, len: usize) -> Vec<Position> {
    tl.seek(&Position::START).unwrap();
    tl.set_watchpoint(addr, len, replayer::WatchKind::Write)
        .unwrap();
    let mut after = Vec::new();
    loop {
        match tl.run_forward().unwrap() {
            StopReason::Watchpoint(a) => {
                assert_eq!(a, addr);
                after.push(tl.position().unwrap());
            }
            _ => return after,
        }
    }
}

#[test]
fn reverse_watchpoints_land_on_the_last_write_before_every_start() {
    let (mut tl, syms) = abba();
    // The owner field of abba's first mutex: taken and released by both tasks.
    let owner = syms.address("umk::bugs::abba::LOCK_A").unwrap() + 12;
    let writes = forward_writes(&mut tl, owner, 4);
    assert!(writes.len() >= 3, "writes to LOCK_A's owner: {writes:?}");
    // Each backward run replays from a checkpoint: a spread of them keeps this quick.
    let n = writes.len();
    let mut picked = vec![0, 1, n / 2, n - 2, n - 1];
    picked.dedup();
    for k in picked {
        let after = writes[k];
        // Starting just after write k, and one instruction later: the last write before
        // either start is write k.
        for extra in [0, 1] {
            tl.seek(&after).unwrap();
            if extra == 1 && tl.step_forward().unwrap() != StopReason::Done {
                continue;
            }
            let start = tl.position().unwrap();
            assert_eq!(
                tl.run_backward().unwrap(),
                StopReason::Watchpoint(owner),
                "from {start}"
            );
            let before = tl.position().unwrap();
            assert_eq!(tl.step_forward().unwrap(), StopReason::Done, "from {start}");
            assert_eq!(
                tl.position().unwrap(),
                after,
                "reverse-continue from {start} (after write {k} of {}) landed before {}, \
                 not before write {k} at {after}",
                writes.len(),
                before
            );
        }
    }
}

#[test]
fn a_seek_that_reports_progress_lands_where_a_plain_seek_does() {
    let (mut plain, _) = abba();
    let (mut observed, _) = abba();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    observed.set_progress(Some(Box::new(move |done, total| {
        log.borrow_mut().push((done, total))
    })));
    let n = plain.events().len() as u64;
    let late = Position::event(n * 3 / 4);
    plain.seek(&late).unwrap();
    observed.seek(&late).unwrap();
    assert_eq!(observed.position().unwrap(), plain.position().unwrap());
    assert_eq!(observed.regs().unwrap(), plain.regs().unwrap());
    let seen = seen.borrow();
    assert!(seen.len() >= 50, "about a hundred reports: {}", seen.len());
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "monotonic: {seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&(late.event, late.event)),
        "ends finished"
    );
}
