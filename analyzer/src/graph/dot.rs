//! The model as DOT text: the files reports write (`locks.dot`, `provenance.dot`) and what
//! graphviz is fed. Attributes are written in one fixed order so equal graphs give equal
//! bytes.

use std::fmt::Write as _;

use super::{Direction, Graph, Shape, Style};

pub(super) fn write(g: &Graph) -> String {
    let mut out = String::new();
    let rankdir = match g.direction {
        Direction::LeftToRight => "LR",
        Direction::BottomToTop => "BT",
    };
    let _ = writeln!(out, "digraph {} {{", g.name);
    let _ = writeln!(out, "  rankdir={rankdir};");
    out.push_str("  node [shape=box, fontname=\"monospace\"];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=10];\n");
    for n in &g.nodes {
        let _ = writeln!(
            out,
            "  {} [label=\"{}\"{}];",
            n.id,
            escape(&n.label),
            attrs(&n.style)
        );
    }
    for e in &g.edges {
        let (Some(from), Some(to)) = (g.node_at(e.from), g.node_at(e.to)) else {
            continue;
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label=\"{}\"{}];",
            from.id,
            to.id,
            escape(&e.label),
            attrs(&e.style)
        );
    }
    out.push_str("}\n");
    out
}

/// The attributes after the label, each as `, name=value`.
fn attrs(s: &Style) -> String {
    let mut out = String::new();
    if let Some(shape) = s.shape {
        let name = match shape {
            Shape::Box => "box",
            Shape::Ellipse => "ellipse",
            Shape::Octagon => "octagon",
            Shape::Diamond => "diamond",
        };
        let _ = write!(out, ", shape={name}");
    }
    if s.red_line {
        out.push_str(", color=red");
    }
    if s.red_text {
        out.push_str(", fontcolor=red");
    }
    if s.thick {
        out.push_str(", penwidth=2");
    }
    if s.dashed {
        out.push_str(", style=dashed");
    }
    out
}

/// Escapes a DOT string: quotes and backslashes, and newlines as DOT's centred `\n`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
