//! The edges' curves, in the layout frame. An edge leaves the lower side of its upper
//! node at a port of its own (a node's ports are spread in the order of where their
//! edges go, so edges between the same two nodes stay apart), runs straight down
//! through each rank it crosses, beside its label in the middle one, and bends between
//! ranks with vertical tangents. A self-loop bulges out of its node's right side, its
//! label beyond it; the node's element was given the room (`loop_room`).

use super::{Chain, Cubic, Elem, Loop, Outline, Point, Shape};

/// Space between an edge's line and its label, and between self-loop labels.
const LABEL_GAP: f64 = 4.0;
/// How far the first self-loop of a node reaches out, and each further one more.
const LOOP_REACH: f64 = 24.0;
const LOOP_STEP: f64 = 12.0;
/// Most space across between two ports of a side.
const PORT_STEP: f64 = 12.0;

/// The laid-out frame: elements' positions across, ranks' centre lines and band depths.
pub(super) struct Canvas<'a> {
    pub elems: &'a [Elem],
    pub xs: &'a [f64],
    pub ys: &'a [f64],
    pub band: &'a [f64],
    pub outlines: &'a [Outline],
}

impl Canvas<'_> {
    pub(super) fn center(&self, e: usize) -> Point {
        let x = self.xs.get(e).copied().unwrap_or(0.0);
        let y = self
            .elems
            .get(e)
            .and_then(|el| self.ys.get(el.rank))
            .copied()
            .unwrap_or(0.0);
        Point::new(x, y)
    }

    fn band(&self, e: usize) -> f64 {
        self.elems
            .get(e)
            .and_then(|el| self.band.get(el.rank))
            .copied()
            .unwrap_or(0.0)
    }
}

/// An edge in the frame: its curve from the model's `from` to `to`, and its label's
/// centre.
pub(super) struct Drawn {
    pub start: Point,
    pub segments: Vec<Cubic>,
    pub label: Option<Point>,
}

/// The point an edge passes through in rank `rank`, with the label it carries (its size
/// in the frame) to its right.
pub(super) fn point_elem(rank: usize, label: Option<Point>) -> Elem {
    let (right, depth) = label.map_or((0.0, 0.0), |s| (LABEL_GAP + s.x, s.y));
    Elem {
        rank,
        is_node: false,
        left: 0.0,
        right,
        depth,
        up: Vec::new(),
        down: Vec::new(),
    }
}

/// How far out each self-loop reaches, and where each one's label starts, beyond the
/// node's right side.
fn loop_offsets(loops: &[Loop]) -> (Vec<f64>, Vec<f64>) {
    let reach: Vec<f64> = (0..loops.len())
        .map(|i| LOOP_REACH + LOOP_STEP * i as f64)
        .collect();
    let mut at = reach.last().copied().unwrap_or(0.0) + LABEL_GAP;
    let mut starts = Vec::with_capacity(loops.len());
    for l in loops {
        starts.push(at);
        if let Some(s) = l.label {
            at += s.x + LABEL_GAP;
        }
    }
    (reach, starts)
}

/// Room a node's self-loops take right of it (across) and down its band.
pub(super) fn loop_room(loops: &[Loop]) -> Point {
    if loops.is_empty() {
        return Point::new(0.0, 0.0);
    }
    let (_, starts) = loop_offsets(loops);
    let last = loops
        .last()
        .zip(starts.last())
        .map_or(0.0, |(l, s)| s + l.label.map_or(0.0, |z| z.x));
    let depth = loops
        .iter()
        .filter_map(|l| l.label.map(|s| s.y))
        .fold(0.0, f64::max);
    Point::new(last, depth)
}

/// How far `o` reaches along one axis at `off` along the other: `half_along` and
/// `half_other` are its half sizes on the two axes.
fn reach(o: &Outline, half_along: f64, half_other: f64, off: f64) -> f64 {
    if half_other <= 0.0 {
        return half_along;
    }
    let off = off.abs().min(half_other * 0.95);
    match o.shape {
        Shape::Box => half_along,
        Shape::Ellipse => half_along * (1.0 - (off / half_other).powi(2)).sqrt(),
        Shape::Diamond => half_along * (1.0 - off / half_other),
        Shape::Octagon => {
            let cut = o.cut.min(half_other).min(half_along);
            half_along - (off - (half_other - cut)).max(0.0)
        }
    }
}

/// Offsets across of `count` ports on a side of `o`.
fn ports(o: &Outline, count: usize) -> Vec<f64> {
    let usable = match o.shape {
        Shape::Box | Shape::Octagon => 1.4 * o.half.x,
        Shape::Ellipse | Shape::Diamond => 0.8 * o.half.x,
    };
    let step = if count > 1 {
        (usable / (count - 1) as f64).min(PORT_STEP)
    } else {
        0.0
    };
    let mid = count.saturating_sub(1) as f64 / 2.0;
    (0..count).map(|i| (i as f64 - mid) * step).collect()
}

/// Curves for every model edge (`None` for one not laid out).
pub(super) fn route(
    c: &Canvas,
    chains: &[Chain],
    loops: &[Vec<Loop>],
    edges: usize,
) -> Vec<Option<Drawn>> {
    let mut out: Vec<Option<Drawn>> = (0..edges).map(|_| None).collect();

    // Ports: for each node, the chains leaving its lower side and entering its upper
    // one, in the order of the next element across.
    let nodes = c.outlines.len();
    let mut lower: Vec<Vec<(f64, usize)>> = vec![Vec::new(); nodes];
    let mut upper: Vec<Vec<(f64, usize)>> = vec![Vec::new(); nodes];
    for (k, ch) in chains.iter().enumerate() {
        let (Some(&top), Some(&bottom)) = (ch.elems.first(), ch.elems.last()) else {
            continue;
        };
        let after_top = ch.elems.get(1).copied().unwrap_or(bottom);
        let before_bottom = ch
            .elems
            .len()
            .checked_sub(2)
            .and_then(|i| ch.elems.get(i))
            .copied()
            .unwrap_or(top);
        if let Some(l) = lower.get_mut(top) {
            l.push((c.center(after_top).x, k));
        }
        if let Some(u) = upper.get_mut(bottom) {
            u.push((c.center(before_bottom).x, k));
        }
    }
    let mut start_off = vec![0.0; chains.len()];
    let mut end_off = vec![0.0; chains.len()];
    for (v, o) in c.outlines.iter().enumerate() {
        for (side, offs) in [
            (&mut lower[v], &mut start_off),
            (&mut upper[v], &mut end_off),
        ] {
            side.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (&(_, k), p) in side.iter().zip(ports(o, side.len())) {
                offs[k] = p;
            }
        }
    }

    for (k, ch) in chains.iter().enumerate() {
        let (Some(&top), Some(&bottom)) = (ch.elems.first(), ch.elems.last()) else {
            continue;
        };
        let (Some(ot), Some(ob)) = (c.outlines.get(top), c.outlines.get(bottom)) else {
            continue;
        };
        let ct = c.center(top);
        let cb = c.center(bottom);
        let so = start_off[k];
        let eo = end_off[k];
        let start = Point::new(ct.x + so, ct.y + reach(ot, ot.half.y, ot.half.x, so));
        let end = Point::new(cb.x + eo, cb.y - reach(ob, ob.half.y, ob.half.x, eo));
        let mut pts = vec![start];
        for &e in &ch.elems[1..ch.elems.len().saturating_sub(1).max(1)] {
            let p = c.center(e);
            let half = c.band(e) / 2.0;
            pts.push(Point::new(p.x, p.y - half));
            if half > 0.0 {
                pts.push(Point::new(p.x, p.y + half));
            }
        }
        pts.push(end);
        let mut segments = Vec::with_capacity(pts.len());
        for w in pts.windows(2) {
            segments.push(bend(w[0], w[1]));
        }
        let (start, segments) = if ch.reversed {
            reverse(start, &segments)
        } else {
            (start, segments)
        };
        let label = ch.label.map(|(e, size)| {
            let p = c.center(e);
            Point::new(p.x + LABEL_GAP + size.x / 2.0, p.y)
        });
        if let Some(slot) = out.get_mut(ch.edge) {
            *slot = Some(Drawn {
                start,
                segments,
                label,
            });
        }
    }

    for (v, ls) in loops.iter().enumerate() {
        let Some(o) = c.outlines.get(v) else {
            continue;
        };
        let center = c.center(v);
        let (reaches, starts) = loop_offsets(ls);
        // The ends sit a little above and below the middle of the right side.
        let a = (o.half.y * 0.6).min(12.0);
        let side = center.x + reach(o, o.half.x, o.half.y, a);
        for ((l, r), s) in ls.iter().zip(reaches).zip(starts) {
            let bow = r / 0.75;
            let from = Point::new(side, center.y - a);
            let to = Point::new(side, center.y + a);
            let seg = Cubic {
                c1: Point::new(side + bow, center.y - a - r * 0.5),
                c2: Point::new(side + bow, center.y + a + r * 0.5),
                end: to,
            };
            let label = l
                .label
                .map(|size| Point::new(center.x + o.half.x + s + size.x / 2.0, center.y));
            if let Some(slot) = out.get_mut(l.edge) {
                *slot = Some(Drawn {
                    start: from,
                    segments: vec![seg],
                    label,
                });
            }
        }
    }
    out
}

/// From `p` down to `q`, leaving and arriving vertically.
fn bend(p: Point, q: Point) -> Cubic {
    let dy = (q.y - p.y) / 2.0;
    Cubic {
        c1: Point::new(p.x, p.y + dy),
        c2: Point::new(q.x, q.y - dy),
        end: q,
    }
}

/// The same curve traversed the other way.
fn reverse(start: Point, segments: &[Cubic]) -> (Point, Vec<Cubic>) {
    let mut froms = Vec::with_capacity(segments.len());
    froms.push(start);
    froms.extend(segments.iter().map(|s| s.end));
    let out = segments
        .iter()
        .zip(&froms)
        .rev()
        .map(|(s, &from)| Cubic {
            c1: s.c2,
            c2: s.c1,
            end: from,
        })
        .collect();
    (froms.last().copied().unwrap_or(start), out)
}
