//! The model's two outputs: DOT as the reports have always written it, and the built-in
//! SVG as a well-formed document with every label, edge and highlight in it, laid out
//! so that nothing covers anything else.

use super::layout::{self, Placement, Rect};
use super::*;

const ABBA_A: &str = "abba_lock_a\n{+.+.}-{4:4} kernel/src/bugs/abba.rs:10";
const ABBA_B: &str = "abba_lock_b\n{+.+.}-{4:4} kernel/src/bugs/abba.rs:11";

const RECURSIVE: Style = Style {
    red_line: true,
    red_text: true,
    dashed: true,
    ..Style::PLAIN
};

fn abba() -> Graph {
    let mut g = Graph::new("lockdep", Direction::LeftToRight);
    let a = g.node("c0", ABBA_A, Style::HIGHLIGHT);
    let b = g.node("c1", ABBA_B, Style::HIGHLIGHT);
    g.edge(
        a,
        b,
        "kernel/src/bugs/abba.rs:33\ne10+t150\nabba-1/3",
        Style::HIGHLIGHT,
    );
    g.edge(
        b,
        a,
        "kernel/src/bugs/abba.rs:33\ne22+t220\nabba-2/4",
        Style::HIGHLIGHT,
    );
    g
}

fn svg(g: &Graph) -> String {
    g.to_svg(Renderer::Builtin)
        .expect("the built-in renderer cannot fail")
}

/// Each `<g class="edge">`: its title and the stroke of its line.
fn edges(doc: &roxmltree::Document) -> Vec<(String, String)> {
    doc.descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("edge"))
        .map(|g| {
            let title = g
                .children()
                .find(|c| c.has_tag_name("title"))
                .and_then(|t| t.text())
                .unwrap_or_default()
                .to_string();
            let stroke = g
                .children()
                .find(|c| c.has_tag_name("path"))
                .and_then(|p| p.attribute("stroke"))
                .unwrap_or_default()
                .to_string();
            (title, stroke)
        })
        .collect()
}

/// The text of every `<text>`, its lines joined by newlines.
fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|t| {
            t.children()
                .filter(|s| s.has_tag_name("tspan"))
                .map(|s| s.text().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[test]
fn a_two_lock_cycle_has_both_locks_and_two_red_edges() {
    let s = svg(&abba());
    let doc = roxmltree::Document::parse(&s).expect("well-formed without a DTD");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let t = texts(&doc);
    assert!(t.contains(&ABBA_A.to_string()), "{t:?}");
    assert!(t.contains(&ABBA_B.to_string()), "{t:?}");
    assert!(t.iter().any(|l| l.contains("e22+t220")), "{t:?}");
    let mut e = edges(&doc);
    e.sort();
    assert_eq!(
        e,
        [
            ("abba_lock_a -> abba_lock_b".to_string(), "red".to_string()),
            ("abba_lock_b -> abba_lock_a".to_string(), "red".to_string()),
        ]
    );
}

#[test]
fn markup_characters_in_labels_stay_well_formed() {
    let mut g = Graph::new("provenance", Direction::BottomToTop);
    let odd = "alloc<T> & \"quoted\" 'it's'\n<umk::Box<[u8]> as Drop>::drop\u{1}";
    let a = g.node("n0", odd, Style::HIGHLIGHT.with_shape(Shape::Ellipse));
    let b = g.node("n1", "a&b", Style::PLAIN.with_shape(Shape::Diamond));
    g.edge(a, b, "<&\">", Style::PLAIN);
    let s = svg(&g);
    let doc = roxmltree::Document::parse(&s).expect("well-formed");
    let t = texts(&doc);
    // A control character cannot be written in XML at all: it becomes U+FFFD.
    let shown = odd.replace('\u{1}', "\u{FFFD}");
    assert!(t.contains(&shown), "{t:?}");
    assert!(t.contains(&"<&\">".to_string()), "{t:?}");
    assert_eq!(edges(&doc)[0].0, "alloc<T> & \"quoted\" 'it's' -> a&b");
}

#[test]
fn a_self_loop_leaves_and_reenters_its_node() {
    let mut g = Graph::new("lockdep", Direction::LeftToRight);
    let a = g.node(
        "c0",
        "ubd_lock\n{+.+.}-{4:4} kernel/src/block/ubd.rs:27",
        Style::HIGHLIGHT,
    );
    g.edge(
        a,
        a,
        "recursive\nkernel/src/block/ubd.rs:90\ne7+t2",
        RECURSIVE,
    );
    let p = layout::place(&g);
    let node = p.nodes[0];
    let e = p.edges[0].as_ref().expect("the loop is laid out");
    let last = e.segments.last().expect("a curve");
    let grown = Rect {
        center: node.center,
        size: layout::Point::new(node.size.x + 2.0, node.size.y + 2.0),
    };
    assert!(
        inside(&grown, e.start) && inside(&grown, last.end),
        "{e:?} {node:?}"
    );
    assert!(!inside(&grown, last.c1), "the loop reaches out: {e:?}");
    let label = e.label.expect("its label");
    assert!(!overlap(&label, &node), "{label:?} {node:?}");

    let s = svg(&g);
    let doc = roxmltree::Document::parse(&s).expect("well-formed");
    assert_eq!(
        edges(&doc),
        [("ubd_lock -> ubd_lock".to_string(), "red".to_string())]
    );
    let dashed = doc
        .descendants()
        .filter(|n| n.has_tag_name("path"))
        .filter(|n| n.attribute("stroke-dasharray").is_some())
        .count();
    assert_eq!(dashed, 1);
    assert!(texts(&doc).iter().any(|t| t.starts_with("recursive\n")));
}

#[test]
fn bottom_to_top_draws_effects_above_their_causes() {
    let mut g = Graph::new("provenance", Direction::BottomToTop);
    let crash = g.node("n0", "crash", Style::HIGHLIGHT.with_shape(Shape::Box));
    let free = g.node("n1", "free", Style::PLAIN.with_shape(Shape::Octagon));
    g.edge(free, crash, "freed", Style::PLAIN);
    let p = layout::place(&g);
    assert!(p.nodes[0].center.y < p.nodes[1].center.y, "{:?}", p.nodes);
    let e = p.edges[0].as_ref().expect("laid out");
    // The curve starts at the cause and ends, with the arrowhead, at the effect.
    assert!(e.start.y > e.segments.last().expect("a curve").end.y);
}

#[test]
fn an_empty_graph_is_an_empty_drawing() {
    let g = Graph::new("lockdep", Direction::LeftToRight);
    let s = svg(&g);
    let doc = roxmltree::Document::parse(&s).expect("well-formed");
    assert!(edges(&doc).is_empty() && texts(&doc).is_empty());
}

#[test]
fn an_edge_to_a_node_of_another_graph_is_left_out() {
    let mut big = Graph::new("g", Direction::LeftToRight);
    big.node("a", "a", Style::PLAIN);
    let stranger = big.node("b", "b", Style::PLAIN);
    let mut g = Graph::new("g", Direction::LeftToRight);
    let a = g.node("a", "a", Style::PLAIN);
    g.edge(a, stranger, "x", Style::PLAIN);
    assert!(!g.to_dot().contains("->"));
    let doc_text = svg(&g);
    let doc = roxmltree::Document::parse(&doc_text).expect("well-formed");
    assert!(edges(&doc).is_empty());
}

#[test]
fn dot_keeps_its_attribute_order() {
    let mut g = Graph::new("provenance", Direction::BottomToTop);
    let a = g.node(
        "n0",
        "say \"hi\"\nback\\slash",
        Style::HIGHLIGHT.with_shape(Shape::Box),
    );
    let b = g.node("n1", "t", Style::PLAIN.with_shape(Shape::Ellipse));
    let c = g.node("c2", "plain", Style::PLAIN);
    let red = Style {
        red_line: true,
        thick: true,
        ..Style::PLAIN
    };
    g.edge(b, a, "", red);
    g.edge(c, c, "recursive", RECURSIVE);
    assert_eq!(
        g.to_dot(),
        "digraph provenance {\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\"];\n  edge [fontname=\"monospace\", fontsize=10];\n  n0 [label=\"say \\\"hi\\\"\\nback\\\\slash\", shape=box, color=red, fontcolor=red, penwidth=2];\n  n1 [label=\"t\", shape=ellipse];\n  c2 [label=\"plain\"];\n  n1 -> n0 [label=\"\", color=red, penwidth=2];\n  c2 -> c2 [label=\"recursive\", color=red, fontcolor=red, style=dashed];\n}\n"
    );
}

fn inside(r: &Rect, p: layout::Point) -> bool {
    (p.x - r.center.x).abs() <= r.size.x / 2.0 && (p.y - r.center.y).abs() <= r.size.y / 2.0
}

fn overlap(a: &Rect, b: &Rect) -> bool {
    const SLACK: f64 = 1e-6;
    (a.center.x - b.center.x).abs() + SLACK < (a.size.x + b.size.x) / 2.0
        && (a.center.y - b.center.y).abs() + SLACK < (a.size.y + b.size.y) / 2.0
}

/// Node boxes and label boxes overlap nothing, and every edge is drawn.
fn check_readable(g: &Graph, p: &Placement) {
    let labels: Vec<Rect> = p.edges.iter().flatten().filter_map(|e| e.label).collect();
    let boxes: Vec<&Rect> = p.nodes.iter().chain(&labels).collect();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
        }
    }
    for (e, placed) in g.edges.iter().zip(&p.edges) {
        let placed = placed.as_ref().expect("every edge laid out");
        assert_eq!(placed.label.is_some(), !e.label.is_empty());
        assert!(placed
            .segments
            .iter()
            .all(|s| s.end.x.is_finite() && s.end.y.is_finite()));
    }
    for r in &boxes {
        assert!(r.center.x - r.size.x / 2.0 >= 0.0 && r.center.x + r.size.x / 2.0 <= p.width);
        assert!(r.center.y - r.size.y / 2.0 >= 0.0 && r.center.y + r.size.y / 2.0 <= p.height);
    }
}

#[test]
fn the_cycle_is_laid_out_readably() {
    let g = abba();
    check_readable(&g, &layout::place(&g));
}

/// xorshift64: the same graphs on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap_or(0)
    }
}

#[test]
fn random_graphs_are_well_formed_and_nothing_overlaps() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let shapes = [Shape::Box, Shape::Ellipse, Shape::Octagon, Shape::Diamond];
    for round in 0..400 {
        let dir = if round % 2 == 0 {
            Direction::LeftToRight
        } else {
            Direction::BottomToTop
        };
        let mut g = Graph::new("g", dir);
        let n = 1 + r.below(12);
        let ids: Vec<NodeId> = (0..n)
            .map(|i| {
                let label = "x".repeat(r.below(30)) + &"\ny".repeat(r.below(4));
                let style = Style::PLAIN.with_shape(shapes[r.below(4)]);
                g.node(&format!("n{i}"), &label, style)
            })
            .collect();
        for _ in 0..r.below(25) {
            let a = ids[r.below(n)];
            // Self-loops, repeated edges and cycles all come up.
            let b = if r.below(5) == 0 { a } else { ids[r.below(n)] };
            let label = if r.below(3) == 0 {
                String::new()
            } else {
                "l".repeat(1 + r.below(20)) + &"\nm".repeat(r.below(3))
            };
            let style = if r.below(2) == 0 {
                Style::HIGHLIGHT
            } else {
                RECURSIVE
            };
            g.edge(a, b, &label, style);
        }
        check_readable(&g, &layout::place(&g));
        let s = svg(&g);
        let doc = roxmltree::Document::parse(&s).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(edges(&doc).len(), g.edges.len(), "round {round}");
    }
}

#[test]
fn a_graph_too_large_for_the_builtin_layout_is_refused_and_still_written_as_dot() {
    let mut g = Graph::new("g", Direction::LeftToRight);
    let ids: Vec<NodeId> = (0..=MAX_BUILTIN_NODES)
        .map(|i| g.node(&format!("n{i}"), "class", Style::PLAIN))
        .collect();
    g.edge(ids[0], ids[1], "", Style::PLAIN);
    let err = g.to_svg(Renderer::Builtin).unwrap_err().to_string();
    assert!(
        err.contains("201 nodes") && err.contains("--graphviz"),
        "{err}"
    );
    assert!(g.to_dot().contains("n200"));
}
