//! The replay-time collector for Linux built as UML with PROVE_LOCKING: instead of a
//! stop at every lock operation (a KUnit boot takes hundreds of thousands), the replay
//! stops where the kernel's own lockdep grows its graph (`guest::linux::lockdep`): once
//! for each new dependency, and where it refuses one that closes a cycle and prints its
//! report. Each stop becomes an [`EventKind::LockDependency`] with the task, the stack
//! and the position where the order was established, and the classes named as lockdep
//! names them; the lock engine builds the same report from those as from umk's probes.

use std::path::Path;
use std::time::Instant;

use guest::linux::lockdep::{Change, Lockdep};
use guest::linux::Linux;
use guest::Binary;
use replayer::Timeline;

use crate::collect::{
    hit_position, next_hit, probe_stack, CollectOptions, CollectStats, Collection,
};
use crate::error::{Error, Result};
use crate::events::{Ctx, Event, EventKind, LockClass, LockKind, LockOp, TaskRef};

/// The stack from the first frame outside kernel/locking/: what took the lock (lockdep's
/// `at:`), not lockdep and the lock's own functions on the way to the probe.
fn beyond_locking(bin: &Binary, stack: Vec<u64>) -> Vec<u64> {
    let locking = |ret: &u64| {
        // A return address belongs to the call before it.
        bin.frames(ret.saturating_sub(1))
            .first()
            .and_then(|f| f.file.as_deref())
            .is_some_and(|f| f.contains("kernel/locking/"))
    };
    match stack.iter().position(|r| !locking(r)) {
        Some(i) => stack[i..].to_vec(),
        None => stack,
    }
}

/// Replays the trace to its end, stopped at lockdep's two probes.
pub(crate) fn collect(
    tl: &mut Timeline,
    trace: &Path,
    bin: &Binary,
    linux: &Linux,
    mut opts: CollectOptions,
    started: Instant,
) -> Result<Collection> {
    let replay_err = |op: &'static str| {
        move |e: replayer::Error| Error::Replay {
            op,
            trace: trace.to_path_buf(),
            source: Box::new(e),
        }
    };
    let lockdep = Lockdep::new(bin)?;
    for a in lockdep.probes() {
        tl.set_breakpoint(a);
    }
    let total = tl.events().len() as u64;
    let mut stats = CollectStats {
        trace_events: total,
        ..CollectStats::default()
    };
    let mut events = Vec::new();
    let exit = loop {
        let addr = match next_hit(tl).map_err(replay_err("running forward through"))? {
            Ok(a) => a,
            Err(exit) => break exit,
        };
        stats.probe_hits += 1;
        let g = tl.regs().map_err(replay_err("reading registers in"))?;
        let Some(change) = lockdep.change_at(&*tl, addr, [g.rdi, g.rsi, g.rdx, g.rcx])? else {
            continue;
        };
        let pos = hit_position(tl, opts.exact_positions, &mut stats)
            .map_err(replay_err("placing a probe hit in"))?;
        let (from, to, held_at) = match change {
            Change::Added { from, to } => (from, to, None),
            Change::Refused { from, to, held_at } => (from, to, Some(held_at)),
        };
        // Read at every stop: a class's usage grows as lockdep sees it in more contexts.
        let op = |addr: u64| -> Result<LockOp> {
            let c = lockdep.class(&*tl, addr)?;
            let op = LockOp {
                addr,
                class: LockClass {
                    name: c.name,
                    file: String::new(),
                    line: 0,
                },
                kind: if c.sleeps {
                    LockKind::Mutex
                } else {
                    LockKind::Spin
                },
                // Lockdep's own usage bits say the context; this collector does not.
                ctx: Ctx::TASK,
                usage: Some(c.usage),
            };
            Ok(op)
        };
        let (from, to) = (op(from)?, op(to)?);
        let (pid, comm) = linux.current(&*tl)?;
        events.push(Event {
            pos,
            task: TaskRef::new(pid, &comm),
            stack: beyond_locking(bin, probe_stack(bin, &*tl, g.rsp, g.rbp)),
            kind: EventKind::LockDependency {
                from,
                to,
                refused: held_at.is_some(),
                held_at,
            },
        });
        if let Some(p) = opts.progress.as_mut() {
            p(pos.event, total);
        }
    };
    stats.elapsed = started.elapsed();
    Ok(Collection {
        events,
        binary: bin.path().to_path_buf(),
        exit,
        stats,
        poison_load: None,
    })
}
