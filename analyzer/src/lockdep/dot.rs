//! The lock class graph as a diagram: one node per class, each edge labelled with its
//! first site and position; the classes and edges of any cycle in red, a recursive
//! acquisition as a dashed red self-loop. A graph too large to draw is drawn around its
//! potential deadlocks ([`LockReport::diagram`]); the DOT keeps every class.

use std::collections::BTreeSet;

use super::{ClassId, LockReport};
use crate::graph::{Direction, Graph, Style};
use crate::symbols::{site_location, Resolve};

/// The most classes a diagram draws: past that, a drawing is a hairball, and the one of
/// a whole Linux boot (hundreds of lockdep classes) is beyond the built-in renderer.
pub const MAX_DRAWN_CLASSES: usize = 60;

impl LockReport {
    /// The class graph, every class, for DOT.
    pub fn graph(&self, res: &dyn Resolve) -> Graph {
        self.graph_of(res, None)
    }

    /// The class graph to draw: all of it up to [`MAX_DRAWN_CLASSES`]; past that the
    /// classes of every potential deadlock and their neighbours or, without one, the
    /// classes with the most dependencies, and a node saying how many are left out (the
    /// DOT has them).
    pub fn diagram(&self, res: &dyn Resolve) -> Graph {
        if self.classes.len() <= MAX_DRAWN_CLASSES {
            return self.graph(res);
        }
        let mut keep: BTreeSet<ClassId> = BTreeSet::new();
        for c in &self.cycles {
            keep.extend(c.classes.iter().copied());
        }
        keep.extend(self.recursive.iter().map(|r| r.class));
        keep.extend(self.irq.iter().map(|r| r.class));
        let culprits = keep.clone();
        for &(a, b) in self.edges.keys() {
            if keep.len() >= MAX_DRAWN_CLASSES {
                break;
            }
            if culprits.contains(&a) || culprits.contains(&b) {
                keep.extend([a, b]);
            }
        }
        if keep.is_empty() {
            let mut degree = vec![0usize; self.classes.len()];
            for &(a, b) in self.edges.keys() {
                degree[a] += 1;
                degree[b] += 1;
            }
            let mut by: Vec<ClassId> = (0..self.classes.len()).collect();
            by.sort_by_key(|&c| (std::cmp::Reverse(degree[c]), c));
            keep.extend(by.into_iter().take(MAX_DRAWN_CLASSES));
        }
        self.graph_of(res, Some(&keep))
    }

    /// The graph of the classes in `only` (all when `None`).
    fn graph_of(&self, res: &dyn Resolve, only: Option<&BTreeSet<ClassId>>) -> Graph {
        let shown = |c: ClassId| only.is_none_or(|o| o.contains(&c));
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
            if !shown(i) {
                ids.push(None);
                continue;
            }
            let mut label = format!("{}\n{}", c.class.name, self.tag(i));
            if !c.class.file.is_empty() {
                label.push_str(&format!(" {}:{}", c.class.file, c.class.line));
            }
            let style = if red_nodes.contains(&i) {
                Style::HIGHLIGHT
            } else {
                Style::PLAIN
            };
            ids.push(Some(g.node(&format!("c{i}"), &label, style)));
        }
        if let Some(o) = only {
            let left = self.classes.len() - o.len();
            g.node(
                "left_out",
                &format!("{left} more classes\n(all of them in the DOT)"),
                Style::PLAIN,
            );
        }
        for ((a, b), e) in &self.edges {
            let (Some(&Some(from)), Some(&Some(to))) = (ids.get(*a), ids.get(*b)) else {
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
            let Some(&Some(c)) = ids.get(r.class) else {
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
