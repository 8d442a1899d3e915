//! The lock report as text, in lockdep's layouts: the summary, each potential deadlock
//! (circular dependency, recursive locking, irq-inconsistent usage, locks held at exit)
//! with its stacks and replay positions, then the actual-deadlock verdict.

use std::fmt::Write as _;

use super::*;
use crate::symbols::{format_stack, site_text, Resolve};

const RULE_CIRCULAR: &str = "======================================================";
const DASH_CIRCULAR: &str = "------------------------------------------------------";

impl LockReport {
    /// `0xADDR (name){kind}, at: func+0x1f/0x80 (file:line)` and its position.
    fn lock_line(&self, out: &mut String, res: &dyn Resolve, c: ClassId, site: &Site) {
        let _ = writeln!(
            out,
            "{:#x} ({}){}, at: {}",
            site.addr,
            self.name(c),
            self.tag(c),
            site_text(res, &site.stack)
        );
        let _ = writeln!(out, "    position: {} ({})", site.pos, site.task);
    }

    fn held_list(&self, out: &mut String, res: &dyn Resolve, task: &TaskRef, held: &[Held]) {
        match held.len() {
            0 => {
                let _ = writeln!(out, "no locks held by {task}.");
            }
            n => {
                let _ = writeln!(
                    out,
                    "{n} lock{} held by {task}:",
                    if n == 1 { "" } else { "s" }
                );
                for (i, h) in held.iter().enumerate() {
                    let _ = write!(out, " #{i}: ");
                    self.lock_line(out, res, h.class, &h.site);
                }
            }
        }
    }

    fn backtrace(out: &mut String, res: &dyn Resolve, stack: &[u64]) {
        let _ = writeln!(out, "\nstack backtrace:");
        out.push_str(&format_stack(res, stack, false, " "));
    }

    /// The whole text report: summary, potential deadlocks in lockdep's layouts, then the
    /// actual-deadlock verdict.
    pub fn render_text(&self, res: &dyn Resolve) -> String {
        let mut out = String::new();
        if self.classes.is_empty() {
            out.push_str(
                "No locks were taken in this recording: no lock classes, no dependencies.\n",
            );
        } else {
            let instances: usize = self.classes.iter().map(|c| c.instances.len()).sum();
            if self.lock_events == 0 {
                // Every edge came from the guest's own lockdep: it counts no acquisitions.
                let _ = writeln!(
                    out,
                    "Lock analysis: {}, {}, as the kernel's own lockdep recorded them.",
                    plural(self.classes.len() as u64, "lock class", "lock classes"),
                    plural(self.edges.len() as u64, "dependency", "dependencies"),
                );
            } else {
                let _ = writeln!(
                    out,
                    "Lock analysis: {}, {}, {}, {}.",
                    plural(self.classes.len() as u64, "lock class", "lock classes"),
                    plural(instances as u64, "instance", "instances"),
                    plural(self.edges.len() as u64, "dependency", "dependencies"),
                    plural(self.lock_events, "lock acquisition", "lock acquisitions"),
                );
            }
            // Hundreds of classes (a Linux boot) would bury the verdict: past what a
            // diagram draws, only those of a potential deadlock are listed.
            let culprits: std::collections::BTreeSet<usize> = self
                .cycles
                .iter()
                .flat_map(|c| c.classes.iter().copied())
                .chain(self.recursive.iter().map(|r| r.class))
                .chain(self.irq.iter().map(|r| r.class))
                .collect();
            let all = self.classes.len() <= super::dot::MAX_DRAWN_CLASSES;
            out.push_str("\nLock classes:\n");
            for (i, c) in self.classes.iter().enumerate() {
                if !all && !culprits.contains(&i) {
                    continue;
                }
                let _ = write!(out, "  {} ({}){}", i, c.class.name, self.tag(i));
                // A class the guest's own lockdep named has no definition site or
                // acquisitions of ours to show.
                if !c.class.file.is_empty() {
                    let _ = write!(out, " defined at {}:{}", c.class.file, c.class.line);
                }
                if c.acquisitions > 0 {
                    let _ = write!(
                        out,
                        ", {} instance{}, taken {} time{}",
                        c.instances.len(),
                        if c.instances.len() == 1 { "" } else { "s" },
                        c.acquisitions,
                        if c.acquisitions == 1 { "" } else { "s" },
                    );
                }
                out.push('\n');
            }
            if !all {
                let _ = writeln!(
                    out,
                    "  … and {} more (every class is in the DOT: `analyze locks --dot FILE`)",
                    self.classes.len() - culprits.len()
                );
            }
        }

        out.push_str("\n== Potential deadlocks (lock order) ==\n");
        if !self.has_potential_deadlock() && self.held_at_exit.is_empty() {
            out.push_str("\nNo potential deadlock: no lock-order cycle, no recursive locking, no irq-inconsistent lock usage.\n");
        }
        for c in &self.cycles {
            self.render_cycle(&mut out, res, c);
        }
        for r in &self.recursive {
            self.render_recursive(&mut out, res, r);
        }
        for r in &self.irq {
            self.render_irq(&mut out, res, r);
        }
        for h in &self.held_at_exit {
            self.render_held_at_exit(&mut out, res, h);
        }
        if let Some(p) = self.guest_lockdep_off {
            let _ = writeln!(
                out,
                "\nThe kernel's lockdep reported the cycle at {p} and turned itself off: lock \
                 orders established after it are not in this graph."
            );
        }

        out.push_str("\n== Actual deadlocks (end of the recording) ==\n");
        if !self.have_end_states {
            out.push_str(
                "\nUnknown: the task states at the end of the recording were not collected.\n",
            );
        } else if self.actual.is_empty() {
            out.push_str("\nNo actual deadlock: no task is blocked in a wait-for cycle at the end of the recording.\n");
        }
        for d in &self.actual {
            self.render_actual(&mut out, res, d);
        }
        out
    }

    fn render_cycle(&self, out: &mut String, res: &dyn Resolve, cyc: &Cycle) {
        let n = cyc.classes.len();
        let j = cyc.closing;
        let prev = cyc.classes[j];
        let next = cyc.classes[(j + 1) % n];
        let closing = &self.edges[&(prev, next)];
        let _ = writeln!(out, "\n{RULE_CIRCULAR}");
        out.push_str("WARNING: possible circular locking dependency detected\n");
        let _ = writeln!(out, "{DASH_CIRCULAR}");
        let _ = writeln!(out, "{} is trying to acquire lock:", closing.first.task);
        self.lock_line(out, res, next, &closing.first);
        out.push_str("\nbut task is already holding lock:\n");
        self.lock_line(out, res, prev, &closing.from_site);
        out.push_str("\nwhich lock already depends on the new lock.\n\n");
        out.push_str("\nthe existing dependency chain (in reverse order) is:\n");
        // The path next → … → prev that existed before the closing edge, printed from
        // its end: entry #k is the class reached by the k-th edge, with that edge's
        // first site; #0 is the closing acquisition itself.
        let path: Vec<ClassId> = (0..n).map(|k| cyc.classes[(j + 1 + k) % n]).collect();
        for k in (1..n).rev() {
            let e = &self.edges[&(path[k - 1], path[k])];
            let _ = writeln!(
                out,
                "\n-> #{} ({}){}:",
                k,
                self.name(path[k]),
                self.tag(path[k])
            );
            let _ = writeln!(
                out,
                "       taken while holding ({}) by {} at position {}",
                self.name(path[k - 1]),
                e.first.task,
                e.first.pos
            );
            out.push_str(&format_stack(res, &e.first.stack, false, "       "));
        }
        let _ = writeln!(out, "\n-> #0 ({}){}:", self.name(next), self.tag(next));
        let _ = writeln!(
            out,
            "       taken while holding ({}) by {} at position {}",
            self.name(prev),
            closing.first.task,
            closing.first.pos
        );
        out.push_str(&format_stack(res, &closing.first.stack, false, "       "));

        out.push_str("\nother info that might help us debug this:\n\n");
        let parent = path[n - 2];
        if parent != next {
            let chain: Vec<String> = path.iter().map(|&c| self.name(c).to_string()).collect();
            let _ = writeln!(out, "Chain exists of:\n  {}\n", chain.join(" --> "));
        }
        out.push_str(" Possible unsafe locking scenario:\n\n");
        out.push_str("       CPU0                    CPU1\n");
        out.push_str("       ----                    ----\n");
        let _ = writeln!(out, "  lock({});", self.name(prev));
        let _ = writeln!(
            out,
            "                               lock({});",
            self.name(parent)
        );
        let _ = writeln!(
            out,
            "                               lock({});",
            self.name(prev)
        );
        let _ = writeln!(out, "  lock({});", self.name(next));
        out.push_str("\n *** DEADLOCK ***\n\n");
        let held = [Held {
            class: prev,
            in_irq: false,
            site: closing.from_site.clone(),
        }];
        self.held_list(out, res, &closing.first.task, &held);
        Self::backtrace(out, res, &closing.first.stack);
    }

    fn render_recursive(&self, out: &mut String, res: &dyn Resolve, r: &Recursive) {
        out.push_str("\n============================================\n");
        out.push_str("WARNING: possible recursive locking detected\n");
        out.push_str("--------------------------------------------\n");
        let _ = writeln!(out, "{} is trying to acquire lock:", r.attempt.task);
        self.lock_line(out, res, r.class, &r.attempt);
        out.push_str("\nbut task is already holding lock:\n");
        self.lock_line(out, res, r.class, &r.held);
        if r.held.addr == r.attempt.addr && self.classes[r.class].kind == LockKind::Mutex {
            out.push_str("\n(the same instance: this task will wait for itself)\n");
        }
        out.push_str("\nother info that might help us debug this:\n");
        out.push_str(" Possible unsafe locking scenario:\n\n");
        out.push_str("       CPU0\n");
        out.push_str("       ----\n");
        let _ = writeln!(out, "  lock({});", self.name(r.class));
        let _ = writeln!(out, "  lock({});", self.name(r.class));
        out.push_str("\n *** DEADLOCK ***\n\n");
        out.push_str(" May be due to missing lock nesting notation\n\n");
        self.held_list(out, res, &r.attempt.task, &r.held_locks);
        Self::backtrace(out, res, &r.attempt.stack);
    }

    fn render_irq(&self, out: &mut String, res: &dyn Resolve, r: &IrqInversion) {
        out.push_str("\n================================\n");
        out.push_str("WARNING: inconsistent lock state\n");
        out.push_str("--------------------------------\n");
        let _ = writeln!(
            out,
            "inconsistent {{{}}} -> {{{}}} usage.",
            r.first.0.label(),
            r.second.0.label()
        );
        let _ = writeln!(
            out,
            "{} [HC{}:HE{}] takes:",
            r.second.1.task,
            u8::from(r.ctx.in_irq),
            u8::from(!r.ctx.irqs_off)
        );
        self.lock_line(out, res, r.class, &r.second.1);
        let _ = writeln!(out, "{{{}}} state was registered at:", r.first.0.label());
        let _ = writeln!(out, "  position: {} ({})", r.first.1.pos, r.first.1.task);
        out.push_str(&format_stack(res, &r.first.1.stack, false, "  "));
        out.push_str("\nother info that might help us debug this:\n");
        out.push_str(" Possible unsafe locking scenario:\n\n");
        out.push_str("       CPU0\n");
        out.push_str("       ----\n");
        let _ = writeln!(out, "  lock({});", self.name(r.class));
        out.push_str("  <Interrupt>\n");
        let _ = writeln!(out, "    lock({});", self.name(r.class));
        out.push_str("\n *** DEADLOCK ***\n\n");
        self.held_list(out, res, &r.second.1.task, &r.held_locks);
        Self::backtrace(out, res, &r.second.1.stack);
    }

    fn render_held_at_exit(&self, out: &mut String, res: &dyn Resolve, h: &HeldAtExit) {
        out.push_str("\n=====================================\n");
        let _ = writeln!(out, "WARNING: {} still has locks held!", h.task);
        out.push_str("-------------------------------------\n");
        let _ = writeln!(out, "exiting at position {}", h.pos);
        self.held_list(out, res, &h.task, &h.locks);
        Self::backtrace(out, res, &h.stack);
    }

    fn render_actual(&self, out: &mut String, res: &dyn Resolve, d: &ActualDeadlock) {
        let _ = writeln!(out, "\n{RULE_CIRCULAR}");
        if d.links.len() == 1 {
            out.push_str("DEADLOCK: a task waits for a lock it holds itself (self-deadlock)\n");
        } else {
            out.push_str("DEADLOCK: blocked tasks wait for each other (wait-for cycle)\n");
        }
        let _ = writeln!(out, "{DASH_CIRCULAR}");
        for l in &d.links {
            let _ = writeln!(out, "{} ({}) is blocked on lock:", l.task, l.state.label());
            match (&l.waiting_since, l.class) {
                (Some(s), Some(c)) => self.lock_line(out, res, c, s),
                _ => {
                    let _ = writeln!(out, "{:#x} ({})", l.lock, l.lock_name);
                }
            }
            let _ = writeln!(out, "which is held by {}, taken at:", l.owner);
            match (&l.owner_took, l.class) {
                (Some(s), Some(c)) => self.lock_line(out, res, c, s),
                _ => out.push_str("    (acquisition not seen)\n"),
            }
            if let Some(s) = &l.waiting_since {
                let _ = writeln!(out, "\nstack of {} when it began to wait:", l.task);
                out.push_str(&format_stack(res, &s.stack, false, " "));
            }
            out.push('\n');
        }
        let mut chain: Vec<String> = Vec::new();
        for l in &d.links {
            chain.push(l.task.to_string());
            chain.push(format!("({})", l.lock_name));
        }
        chain.push(d.links[0].task.to_string());
        let _ = writeln!(out, "wait-for cycle:\n  {}", chain.join(" --> "));
        out.push_str("\n *** DEADLOCK ***\n");
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
