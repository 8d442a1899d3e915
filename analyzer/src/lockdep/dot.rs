//! The lock class graph as a diagram: one node per class, each edge labelled with its
//! first site and position; the classes and edges of any cycle in red, a recursive
//! acquisition as a dashed red self-loop.

use std::collections::BTreeSet;

use super::{ClassId, LockReport};
use crate::graph::{Direction, Graph, Style};
use crate::symbols::{site_location, Resolve};

impl LockReport {
    /// The class graph, for DOT or SVG.
    pub fn graph(&self, res: &dyn Resolve) -> Graph {
        let mut red_edges: BTreeSet<(ClassId, ClassId)> = BTreeSet::new();
        let mut red_nodes: BTreeSet<ClassId> = BTreeSet::new();
        for c in &self.cycles {
            red_edges.extend(c.edges());
            red_nodes.extend(c.classes.iter().copied());
        }
        for r in &self.recursive {
            red_nodes.insert(r.class);
        }
        let mut g = Graph::new("lockdep", Direction::LeftToRight);
        let mut ids = Vec::with_capacity(self.classes.len());
        for (i, c) in self.classes.iter().enumerate() {
            let mut label = format!("{}\n{{{}}}", c.class.name, self.kind(i));
            if !c.class.file.is_empty() {
                label.push_str(&format!(" {}:{}", c.class.file, c.class.line));
            }
            let style = if red_nodes.contains(&i) {
                Style::HIGHLIGHT
            } else {
                Style::PLAIN
            };
            ids.push(g.node(&format!("c{i}"), &label, style));
        }
        for ((a, b), e) in &self.edges {
            let (Some(&from), Some(&to)) = (ids.get(*a), ids.get(*b)) else {
                continue;
            };
            let label = format!(
                "{}\n{}\n{}",
                site_location(res, &e.first.stack),
                e.first.pos,
                e.first.task
            );
            let style = if red_edges.contains(&(*a, *b)) {
                Style::HIGHLIGHT
            } else {
                Style::PLAIN
            };
            g.edge(from, to, &label, style);
        }
        for r in &self.recursive {
            let Some(&c) = ids.get(r.class) else {
                continue;
            };
            let label = format!(
                "recursive\n{}\n{}",
                site_location(res, &r.attempt.stack),
                r.attempt.pos
            );
            let style = Style {
                red_line: true,
                red_text: true,
                dashed: true,
                ..Style::PLAIN
            };
            g.edge(c, c, &label, style);
        }
        g
    }

    /// The class graph in DOT.
    pub fn to_dot(&self, res: &dyn Resolve) -> String {
        self.graph(res).to_dot()
    }
}
