//! Where the built-in renderer puts things: a small layered (Sugiyama-style) layout.
//! Edges that close a cycle are turned around and nodes go into ranks ([`rank`]); an
//! edge longer than one rank passes through a point of its own in every rank between (a
//! labelled edge spans two ranks at least, its label beside the point in the middle);
//! each rank is ordered to cut crossings ([`order`]) and spread along its line
//! ([`position`]); then the edges are drawn as curves and self-loops ([`route`]).
//!
//! The work is done in one frame, ranks running down: "across" is along a rank, "down"
//! is from rank to rank. Only the last step turns it into the graph's direction. Labels
//! are measured for a monospace font; nothing here can fail or panic on any graph.

mod order;
mod position;
mod rank;
mod route;

use super::{Direction, Graph, Shape};

/// Font size of node labels, in px (graphviz's default, 14 pt at 72 dpi).
pub(super) const NODE_FONT: f64 = 14.0;
/// Font size of edge labels (the DOT's `fontsize=10`).
pub(super) const EDGE_FONT: f64 = 10.0;
/// Advance of one monospace glyph, in ems (DejaVu Sans Mono and Liberation Mono: 0.6).
const CHAR_EM: f64 = 0.6;
/// Distance between baselines, in ems.
pub(super) const LINE_EM: f64 = 1.2;
/// Space between a node's label and its outline.
const NODE_PAD: Point = Point { x: 10.0, y: 6.0 };
/// Space between an edge's label and the edge of its white backing.
const LABEL_PAD: Point = Point { x: 3.0, y: 1.0 };
/// Empty space around the drawing.
const MARGIN: f64 = 8.0;
/// Space down between the bands of two ranks.
const RANK_GAP: f64 = 30.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub(super) const fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    fn swap(self) -> Point {
        Point::new(self.y, self.x)
    }
}

/// An axis-aligned box by its centre and size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rect {
    pub center: Point,
    pub size: Point,
}

/// One cubic Bézier segment, from the previous segment's end (or the curve's start).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Cubic {
    pub c1: Point,
    pub c2: Point,
    pub end: Point,
}

/// An edge as drawn: a curve from the model's `from` to its `to`, and where its label
/// goes.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct PlacedEdge {
    pub start: Point,
    pub segments: Vec<Cubic>,
    pub label: Option<Rect>,
}

/// The drawing: a box per model node and a curve per model edge, by model index (`None`
/// for an edge that names no node of the graph), and the drawing's size.
#[derive(Clone, Debug, Default)]
pub(super) struct Placement {
    pub nodes: Vec<Rect>,
    pub edges: Vec<Option<PlacedEdge>>,
    pub width: f64,
    pub height: f64,
}

/// The size of `text` in a monospace font of `font` px.
pub(super) fn text_size(text: &str, font: f64) -> Point {
    let (mut cols, mut rows) = (0usize, 0usize);
    for l in text.split('\n') {
        cols = cols.max(l.chars().count());
        rows += 1;
    }
    Point::new(cols as f64 * font * CHAR_EM, rows as f64 * font * LINE_EM)
}

/// The outline that holds a label of `text` size inside `shape`.
fn node_size(shape: Shape, text: Point) -> Point {
    let padded = Point::new(text.x + 2.0 * NODE_PAD.x, text.y + 2.0 * NODE_PAD.y);
    match shape {
        Shape::Box => padded,
        // The ellipse through the padded box's corners.
        Shape::Ellipse => Point::new(
            padded.x * std::f64::consts::SQRT_2,
            padded.y * std::f64::consts::SQRT_2,
        ),
        // The diamond through the padded box's corners.
        Shape::Diamond => Point::new(padded.x * 2.0, padded.y * 2.0),
        // Room for the cut corners (see `octagon_cut`).
        Shape::Octagon => Point::new(padded.x + padded.y * 2.0 / 3.0, padded.y),
    }
}

/// How far an octagon's corners are cut, along both sides.
pub(super) fn octagon_cut(size: Point) -> f64 {
    (size.y / 3.0).min(size.x / 2.0)
}

/// The white box an edge's label sits on.
pub(super) fn label_size(label: &str) -> Point {
    let t = text_size(label, EDGE_FONT);
    Point::new(t.x + 2.0 * LABEL_PAD.x, t.y + 2.0 * LABEL_PAD.y)
}

/// The layout frame: ranks run down; the graph's direction is a turn of it.
#[derive(Clone, Copy)]
struct Frame(Direction);

impl Frame {
    /// A size in the frame (across, down).
    fn size(self, real: Point) -> Point {
        match self.0 {
            Direction::LeftToRight => real.swap(),
            Direction::BottomToTop => real,
        }
    }

    /// A point of the frame in the drawing (before it is moved to the margin).
    fn point(self, p: Point) -> Point {
        match self.0 {
            Direction::LeftToRight => p.swap(),
            Direction::BottomToTop => Point::new(p.x, -p.y),
        }
    }
}

/// A node's outline in the frame.
#[derive(Clone, Copy, Debug)]
pub(super) struct Outline {
    pub shape: Shape,
    /// Half the size (across, down).
    pub half: Point,
    pub cut: f64,
}

/// Something in a rank: a node, or a point an edge passes through.
#[derive(Clone, Debug)]
pub(super) struct Elem {
    pub rank: usize,
    pub is_node: bool,
    /// Room taken across, left and right of its position, and down its rank's band.
    pub left: f64,
    pub right: f64,
    pub depth: f64,
    /// What it is joined to in the rank above and the rank below (once per edge).
    pub up: Vec<usize>,
    pub down: Vec<usize>,
}

/// An edge other than a self-loop, from its upper node down to its lower one.
#[derive(Clone, Debug)]
pub(super) struct Chain {
    /// Its index in the model.
    pub edge: usize,
    /// Elements top to bottom: the two nodes at the ends, the points between.
    pub elems: Vec<usize>,
    /// It runs against the model's direction (it closed a cycle).
    pub reversed: bool,
    /// The point its label sits beside, and the label's size in the frame.
    pub label: Option<(usize, Point)>,
}

/// A self-loop: its model index and its label's size in the frame.
#[derive(Clone, Copy, Debug)]
pub(super) struct Loop {
    pub edge: usize,
    pub label: Option<Point>,
}

/// Lays `g` out.
pub(super) fn place(g: &Graph) -> Placement {
    let n = g.nodes.len();
    if n == 0 {
        return Placement {
            edges: vec![None; g.edges.len()],
            width: 2.0 * MARGIN,
            height: 2.0 * MARGIN,
            ..Placement::default()
        };
    }
    let frame = Frame(g.direction);
    let real_sizes: Vec<Point> = g
        .nodes
        .iter()
        .map(|nd| {
            let shape = nd.style.shape.unwrap_or(Shape::Box);
            node_size(shape, text_size(&nd.label, NODE_FONT))
        })
        .collect();
    let outlines: Vec<Outline> = g
        .nodes
        .iter()
        .zip(&real_sizes)
        .map(|(nd, size)| {
            let s = frame.size(*size);
            Outline {
                shape: nd.style.shape.unwrap_or(Shape::Box),
                half: Point::new(s.x / 2.0, s.y / 2.0),
                cut: octagon_cut(*size),
            }
        })
        .collect();
    let label_of = |i: usize| {
        g.edges
            .get(i)
            .filter(|e| !e.label.is_empty())
            .map(|e| frame.size(label_size(&e.label)))
    };

    let mut loops: Vec<Vec<Loop>> = vec![Vec::new(); n];
    let mut links = Vec::new();
    let mut link_edge = Vec::new();
    for (i, e) in g.edges.iter().enumerate() {
        let (a, b) = (e.from.0, e.to.0);
        if a >= n || b >= n {
            continue;
        }
        if a == b {
            loops[a].push(Loop {
                edge: i,
                label: label_of(i),
            });
        } else {
            links.push((a, b, if e.label.is_empty() { 1 } else { 2 }));
            link_edge.push(i);
        }
    }
    let ranked = rank::rank(n, &links);

    let mut elems: Vec<Elem> = outlines
        .iter()
        .zip(&ranked.rank)
        .zip(&loops)
        .map(|((o, &rank), ls)| {
            let room = route::loop_room(ls);
            Elem {
                rank,
                is_node: true,
                left: o.half.x,
                right: o.half.x + room.x,
                depth: (2.0 * o.half.y).max(room.y),
                up: Vec::new(),
                down: Vec::new(),
            }
        })
        .collect();
    let mut chains = Vec::with_capacity(links.len());
    for (k, &(a, b, _)) in links.iter().enumerate() {
        let reversed = ranked.reversed.get(k).copied().unwrap_or(false);
        let (top, bottom) = if reversed { (b, a) } else { (a, b) };
        let (r0, r1) = (elems[top].rank, elems[bottom].rank);
        let edge = link_edge[k];
        let label = label_of(edge);
        let mut ids = vec![top];
        let between = r1.saturating_sub(r0).saturating_sub(1);
        let mut label_at = None;
        for j in 0..between {
            let id = elems.len();
            let carries = label.filter(|_| j == between / 2);
            elems.push(route::point_elem(r0 + 1 + j, carries));
            if let Some(size) = carries {
                label_at = Some((id, size));
            }
            ids.push(id);
        }
        ids.push(bottom);
        for w in ids.windows(2) {
            elems[w[0]].down.push(w[1]);
            elems[w[1]].up.push(w[0]);
        }
        chains.push(Chain {
            edge,
            elems: ids,
            reversed,
            label: label_at,
        });
    }

    let ranks = elems.iter().map(|e| e.rank + 1).max().unwrap_or(1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); ranks];
    for (i, e) in elems.iter().enumerate() {
        layers[e.rank].push(i);
    }
    order::order(&mut layers, &elems);
    let xs = position::position(&layers, &elems);
    let mut band = vec![0.0f64; ranks];
    for e in &elems {
        band[e.rank] = band[e.rank].max(e.depth);
    }
    let mut ys = Vec::with_capacity(ranks);
    let mut at = 0.0;
    for (r, b) in band.iter().enumerate() {
        if r > 0 {
            at += RANK_GAP;
        }
        ys.push(at + b / 2.0);
        at += b;
    }

    let canvas = route::Canvas {
        elems: &elems,
        xs: &xs,
        ys: &ys,
        band: &band,
        outlines: &outlines,
    };
    let drawn = route::route(&canvas, &chains, &loops, g.edges.len());
    finish(frame, &canvas, &real_sizes, drawn, g)
}

/// Turns the frame into the graph's direction and moves the drawing to the margin.
fn finish(
    frame: Frame,
    c: &route::Canvas,
    real_sizes: &[Point],
    drawn: Vec<Option<route::Drawn>>,
    g: &Graph,
) -> Placement {
    let nodes: Vec<Rect> = real_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| Rect {
            center: frame.point(c.center(i)),
            size: *size,
        })
        .collect();
    let edges: Vec<Option<PlacedEdge>> = drawn
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let d = d?;
            let at = |p: Point| frame.point(p);
            Some(PlacedEdge {
                start: at(d.start),
                segments: d
                    .segments
                    .iter()
                    .map(|s| Cubic {
                        c1: at(s.c1),
                        c2: at(s.c2),
                        end: at(s.end),
                    })
                    .collect(),
                label: d.label.and_then(|center| {
                    let e = g.edges.get(i)?;
                    Some(Rect {
                        center: at(center),
                        size: label_size(&e.label),
                    })
                }),
            })
        })
        .collect();

    let mut lo = Point::new(f64::INFINITY, f64::INFINITY);
    let mut hi = Point::new(f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut grow = |p: Point| {
        lo = Point::new(lo.x.min(p.x), lo.y.min(p.y));
        hi = Point::new(hi.x.max(p.x), hi.y.max(p.y));
    };
    for r in nodes
        .iter()
        .chain(edges.iter().flatten().filter_map(|e| e.label.as_ref()))
    {
        grow(Point::new(
            r.center.x - r.size.x / 2.0,
            r.center.y - r.size.y / 2.0,
        ));
        grow(Point::new(
            r.center.x + r.size.x / 2.0,
            r.center.y + r.size.y / 2.0,
        ));
    }
    for e in edges.iter().flatten() {
        grow(e.start);
        // A Bézier segment lies within the hull of its control points.
        for s in &e.segments {
            grow(s.c1);
            grow(s.c2);
            grow(s.end);
        }
    }
    let shift = |p: Point| Point::new(p.x - lo.x + MARGIN, p.y - lo.y + MARGIN);
    let moved = |r: &Rect| Rect {
        center: shift(r.center),
        size: r.size,
    };
    Placement {
        nodes: nodes.iter().map(moved).collect(),
        edges: edges
            .into_iter()
            .map(|e| {
                e.map(|e| PlacedEdge {
                    start: shift(e.start),
                    segments: e
                        .segments
                        .iter()
                        .map(|s| Cubic {
                            c1: shift(s.c1),
                            c2: shift(s.c2),
                            end: shift(s.end),
                        })
                        .collect(),
                    label: e.label.as_ref().map(moved),
                })
            })
            .collect(),
        width: hi.x - lo.x + 2.0 * MARGIN,
        height: hi.y - lo.y + 2.0 * MARGIN,
    }
}
