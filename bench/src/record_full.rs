//! Section `record-full`: gdb's own recorder (`record full`, which single-steps and logs
//! every instruction) on a smaller run of each workload, against that small run natively.
//! A run the budget cuts short is reported as a lower bound with the instructions logged;
//! one gdb cannot record is reported with gdb's error text.

use crate::exec;
use crate::gdb;
use crate::lab::{Lab, LONG};
use crate::report::{Row, Unit, Value};
use crate::stats::median;
use crate::workload::{self, Workload};

pub const SECTION: &str = "record-full";

/// Keeps glibc's string functions off AVX/AVX2/AVX-512, whose instructions gdb's x86
/// recorder does not decode (it stops with "Process record does not support instruction
/// 0x62"/"0xc5"): gdb's documented limitation, worked around for the second C row.
pub const NO_AVX_TUNABLES: &str =
    "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX2,-AVX,-ERMS";

/// Every row of the section.
pub fn run(lab: &Lab) -> Vec<Row> {
    let mut rows = Vec::new();
    // umk at its smallest: 8 MB and a 10 Hz timer. At 250 Hz the timer fires every ~60
    // instructions gdb logs, and the guest barely leaves its interrupt path.
    let umk_small = [
        ("boot", "halt\n"),
        ("cpu", "compute 1\nhalt\n"),
        ("fs", "stress 1 1\nsync\nhalt\n"),
        ("idle", "sleep 0.01\nhalt\n"),
    ];
    for (tag, script) in umk_small {
        let name = format!("umk {tag} small: {}", script.lines().next().unwrap_or(""));
        match workload::umk(lab, &name, &format!("rf-{tag}"), "8M", script) {
            Ok(mut w) => {
                w.args.push("hz=10".into());
                rows.push(measure(
                    lab,
                    &w,
                    false,
                    &[],
                    "gdb record full (mem=8M hz=10)",
                ));
            }
            Err(e) => rows.push(Row::unavailable(SECTION, &name, &e)),
        }
    }
    let iters = if lab.plan.quick { 3 } else { 10 };
    match workload::c_mix(lab, iters) {
        Ok(w) => {
            rows.push(measure(lab, &w, true, &[], "gdb record full"));
            rows.push(measure(
                lab,
                &w,
                true,
                &[("GLIBC_TUNABLES", NO_AVX_TUNABLES)],
                "gdb record full, glibc without AVX",
            ));
        }
        Err(e) => rows.push(Row::unavailable(SECTION, "C writes+compute small", &e)),
    }
    rows
}

fn measure(lab: &Lab, w: &Workload, from_main: bool, env: &[(&str, &str)], what: &str) -> Row {
    eprintln!("  {}: {what}", w.name);
    let name = format!("{}: {what}", w.name);
    let mut native = Vec::new();
    for _ in 0..lab.plan.runs {
        if let Err(e) = w.prepare() {
            return Row::unavailable(SECTION, &name, &e);
        }
        match exec::run_ok(&mut w.command(), LONG) {
            Ok(o) => native.push(o.secs),
            Err(e) => return Row::unavailable(SECTION, &name, &e),
        }
    }
    let native_s = median(&native);
    if let Err(why) = &lab.gdb {
        return Row::new(
            SECTION,
            name,
            native_s,
            Value::Unavailable { why: why.clone() },
        );
    }
    let budget = lab.plan.record_full_budget;
    // Repeat only runs that finish: a budget hit or an error is the same every time.
    let runs = if lab.plan.quick { 1 } else { 3 };
    let mut secs = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        match gdb::record_full(lab, w, from_main, env, budget) {
            Err(e) => {
                return Row::new(
                    SECTION,
                    name,
                    native_s,
                    Value::Failed {
                        error: format!("{e:#}"),
                    },
                )
                .native_samples(&native)
            }
            Ok(r) => {
                let stop = r.budget_hit || r.record_error().is_some() || r.error.is_some();
                secs.push(r.secs);
                last = Some(r);
                if stop {
                    break;
                }
            }
        }
    }
    let Some(r) = last else {
        return Row::unavailable(SECTION, &name, &anyhow::anyhow!("no run"));
    };
    let insns = r.instructions().unwrap_or(0);
    let rate = insns as f64 / r.secs.max(1e-9);
    let place = r
        .where_
        .as_deref()
        .filter(|s| !s.is_empty())
        .map_or(String::new(), |f| format!(", stopped in {}", short_fn(f)));
    let row = if let Some(err) = r.record_error() {
        Row::new(SECTION, name, native_s, Value::Failed { error: err }).note(format!(
            "after {insns} instructions logged in {:.2} s{place}",
            r.secs
        ))
    } else if r.budget_hit {
        Row::new(
            SECTION,
            name,
            native_s,
            Value::AtLeast {
                value: r.secs,
                unit: Unit::Seconds,
            },
        )
        .note(format!(
            "budget ran out: {insns} instructions logged ({rate:.0} insn/s){place}; not finished"
        ))
    } else if let Some(e) = &r.error {
        Row::new(SECTION, name, native_s, Value::Failed { error: e.clone() })
    } else {
        let m = median(&secs).unwrap_or(r.secs);
        Row::new(SECTION, name, native_s, Value::secs(m)).note(format!(
            "{insns} instructions logged, {rate:.0} insn/s (each a single-step stop)"
        ))
    };
    row.samples(&secs)
        .native_samples(&native)
        .extra("instructions", insns)
        .extra("budget_s", budget.as_secs_f64())
}

/// A function name without its generic arguments (`a::B<T>::c<U>` → `a::B::c`).
pub fn short_fn(name: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for ch in name.chars() {
        match ch {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}
