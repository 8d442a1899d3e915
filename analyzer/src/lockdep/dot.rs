//! The lock class graph in DOT: one node per class, each edge labelled with its first
//! site and position; the classes and edges of any cycle in red.

use std::collections::BTreeSet;

use super::{ClassId, LockReport};
use crate::graph::{Dot, RED_NODE};
use crate::symbols::{site_location, Resolve};

impl LockReport {
    /// The class graph in DOT: one node per class, each edge labelled with its first site
    /// and position; edges and classes of any cycle in red.
    pub fn to_dot(&self, res: &dyn Resolve) -> String {
        let mut red_edges: BTreeSet<(ClassId, ClassId)> = BTreeSet::new();
        let mut red_nodes: BTreeSet<ClassId> = BTreeSet::new();
        for c in &self.cycles {
            red_edges.extend(c.edges());
            red_nodes.extend(c.classes.iter().copied());
        }
        for r in &self.recursive {
            red_nodes.insert(r.class);
        }
        let mut dot = Dot::new("lockdep", "LR");
        for (i, c) in self.classes.iter().enumerate() {
            let label = format!(
                "{}\n{{{}}} {}:{}",
                c.class.name,
                self.kind(i),
                c.class.file,
                c.class.line
            );
            let style = if red_nodes.contains(&i) { RED_NODE } else { "" };
            dot.node(&format!("c{i}"), &label, style);
        }
        for ((a, b), e) in &self.edges {
            let label = format!(
                "{}\n{}\n{}",
                site_location(res, &e.first.stack),
                e.first.pos,
                e.first.task
            );
            let style = if red_edges.contains(&(*a, *b)) {
                RED_NODE
            } else {
                ""
            };
            dot.edge(&format!("c{a}"), &format!("c{b}"), &label, style);
        }
        for r in &self.recursive {
            let label = format!(
                "recursive\n{}\n{}",
                site_location(res, &r.attempt.stack),
                r.attempt.pos
            );
            let c = format!("c{}", r.class);
            dot.edge(&c, &c, &label, ", color=red, fontcolor=red, style=dashed");
        }
        dot.finish()
    }
}
