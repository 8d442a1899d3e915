//! Chrome trace JSON (the Trace Event Format that Perfetto and chrome://tracing open):
//! one track per guest task with its scheduling slices, one track per interrupt line,
//! lock holds as async slices (they outlive run slices when a task sleeps holding a
//! mutex, so they cannot nest in the task's own track), and the crash as an instant.
//!
//! A replay has no wall clock worth showing, and positions are not evenly spaced in
//! time, so the time axis is the probe event's ordinal (one microsecond per event);
//! every slice carries the replay positions where it starts and ends.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::events::{Event, EventKind, Pos, TaskRef};

/// The guest is one process in the trace.
const PID: u32 = 1;
/// Interrupt tracks use thread ids above any guest pid.
const IRQ_TID_BASE: u64 = 1_000_000;

fn irq_name(irq: u32) -> String {
    match irq {
        0 => "irq 0 (timer)".to_string(),
        1 => "irq 1 (I/O)".to_string(),
        n => format!("irq {n}"),
    }
}

/// Builds the trace from events in replay order.
#[derive(Debug, Default)]
pub struct ChromeTrace {
    seq: u64,
    events: Vec<Value>,
    names: BTreeMap<u64, String>,
    /// The running task and since when.
    running: Option<(TaskRef, u64, Pos)>,
    /// Open interrupts: irq → (start, position, interrupted task).
    irqs: BTreeMap<u32, (u64, Pos, TaskRef)>,
    /// Held locks: (task pid, lock addr) → (start, position, class).
    holds: BTreeMap<(u32, u64), (u64, Pos, String)>,
    last_pos: Option<Pos>,
}

impl ChromeTrace {
    pub fn new() -> ChromeTrace {
        ChromeTrace::default()
    }

    pub fn feed(&mut self, ev: &Event) {
        let ts = self.seq;
        self.seq += 1;
        self.last_pos = Some(ev.pos);
        self.names
            .entry(u64::from(ev.task.pid))
            .or_insert_with(|| ev.task.to_string());
        match &ev.kind {
            EventKind::ContextSwitch { prev, next } => {
                self.close_run(ts, ev.pos);
                self.names
                    .entry(u64::from(prev.pid))
                    .or_insert_with(|| prev.to_string());
                self.names
                    .entry(u64::from(next.pid))
                    .or_insert_with(|| next.to_string());
                self.running = Some((next.clone(), ts, ev.pos));
            }
            EventKind::IrqEnter { irq } => {
                self.names
                    .entry(IRQ_TID_BASE + u64::from(*irq))
                    .or_insert_with(|| irq_name(*irq));
                self.irqs.insert(*irq, (ts, ev.pos, ev.task.clone()));
            }
            EventKind::IrqExit { irq } => {
                if let Some((start, pos, task)) = self.irqs.remove(irq) {
                    self.events.push(json!({
                        "name": irq_name(*irq), "cat": "irq", "ph": "X",
                        "ts": start, "dur": ts - start,
                        "pid": PID, "tid": IRQ_TID_BASE + u64::from(*irq),
                        "args": {"from": pos.to_string(), "to": ev.pos.to_string(), "interrupted": task.to_string()},
                    }));
                }
            }
            EventKind::LockAcquired(op) => {
                self.holds
                    .insert((ev.task.pid, op.addr), (ts, ev.pos, op.class.name.clone()));
            }
            EventKind::LockRelease(op) => {
                // An interrupt may release a lock its interrupted task took.
                let key = self
                    .holds
                    .keys()
                    .find(|(p, a)| *p == ev.task.pid && *a == op.addr)
                    .or_else(|| self.holds.keys().find(|(_, a)| *a == op.addr))
                    .copied();
                if let Some(key) = key {
                    let (start, pos, class) =
                        self.holds
                            .remove(&key)
                            .unwrap_or((ts, ev.pos, String::new()));
                    self.push_hold(key, start, pos, &class, ts, Some(ev.pos));
                }
            }
            EventKind::Crash(c) => {
                self.events.push(json!({
                    "name": format!("crash: signal {}", c.signal), "cat": "crash", "ph": "i", "s": "g",
                    "ts": ts, "pid": PID, "tid": u64::from(ev.task.pid),
                    "args": {"position": ev.pos.to_string(), "rip": format!("{:#x}", c.regs.rip)},
                }));
            }
            _ => {}
        }
    }

    fn close_run(&mut self, ts: u64, pos: Pos) {
        if let Some((task, start, from)) = self.running.take() {
            self.events.push(json!({
                "name": "running", "cat": "sched", "ph": "X",
                "ts": start, "dur": ts - start,
                "pid": PID, "tid": u64::from(task.pid),
                "args": {"from": from.to_string(), "to": pos.to_string()},
            }));
        }
    }

    fn push_hold(
        &mut self,
        key: (u32, u64),
        start: u64,
        pos: Pos,
        class: &str,
        end: u64,
        to: Option<Pos>,
    ) {
        let id = format!("{:#x}", key.1);
        let to = to.map_or_else(|| "end of recording".to_string(), |p| p.to_string());
        self.events.push(json!({
            "name": class, "cat": "lock", "ph": "b", "id": id,
            "ts": start, "pid": PID, "tid": u64::from(key.0),
            "args": {"from": pos.to_string(), "lock": id},
        }));
        self.events.push(json!({
            "name": class, "cat": "lock", "ph": "e", "id": id,
            "ts": end, "pid": PID, "tid": u64::from(key.0),
            "args": {"to": to},
        }));
    }

    /// Closes what is still open at the end of the recording and returns the trace.
    pub fn finish(mut self) -> Value {
        let ts = self.seq;
        let end = self.last_pos.unwrap_or(Pos::START);
        self.close_run(ts, end);
        for (irq, (start, pos, task)) in std::mem::take(&mut self.irqs) {
            self.events.push(json!({
                "name": irq_name(irq), "cat": "irq", "ph": "X",
                "ts": start, "dur": ts - start,
                "pid": PID, "tid": IRQ_TID_BASE + u64::from(irq),
                "args": {"from": pos.to_string(), "to": "end of recording", "interrupted": task.to_string()},
            }));
        }
        for (key, (start, pos, class)) in std::mem::take(&mut self.holds) {
            self.push_hold(key, start, pos, &class, ts, None);
        }
        let mut all = vec![json!({
            "name": "process_name", "ph": "M", "pid": PID, "tid": 0,
            "args": {"name": "umk (replay)"},
        })];
        for (tid, name) in &self.names {
            all.push(json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": tid, "args": {"name": name}}));
            all.push(json!({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": tid, "args": {"sort_index": tid}}));
        }
        // Stable order: by time, then as produced (the sort is stable).
        self.events
            .sort_by_key(|e| e.get("ts").and_then(Value::as_u64).unwrap_or(0));
        all.extend(self.events);
        json!({"traceEvents": all, "displayTimeUnit": "ns", "otherData": {"time_axis": "probe event ordinal (1 us per event)"}})
    }

    /// The trace as pretty-printed JSON text.
    pub fn to_json(self) -> Result<String> {
        let v = self.finish();
        serde_json::to_string_pretty(&v)
            .map(|s| s + "\n")
            .map_err(|e| Error::Serialize {
                what: "Chrome trace",
                why: e.to_string(),
            })
    }
}
