//! The built-in renderer's drawing: a placed graph as a standalone SVG document. Edges go
//! under their labels (on a white backing, so a line never runs through text) and nodes
//! on top; arrowheads are polygons rather than markers, so two diagrams inlined in one
//! HTML page share no element ids. Every label is XML-escaped, and characters XML cannot
//! carry at all become U+FFFD, so any symbol name gives a well-formed document.

use std::fmt::Write as _;

use super::layout::{self, Cubic, PlacedEdge, Placement, Point, Rect};
use super::{Graph, Shape, Style};

/// Arrowhead length and half-width, for thin and thick lines.
const HEAD: (f64, f64) = (9.0, 3.5);
const HEAD_THICK: (f64, f64) = (11.0, 4.5);
const DASHES: &str = "6,4";

/// The SVG of `g` as `p` placed it.
pub(super) fn draw(g: &Graph, p: &Placement) -> String {
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
    let (w, h) = (num(p.width), num(p.height));
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"monospace\">"
    );
    let _ = writeln!(out, "<title>{}</title>", xml(&g.name));
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let placed: Vec<(&super::Edge, &PlacedEdge)> = g
        .edges
        .iter()
        .zip(&p.edges)
        .filter_map(|(e, pe)| Some((e, pe.as_ref()?)))
        .collect();
    for (e, pe) in &placed {
        let title = format!("{} -> {}", first_line(g, e.from.0), first_line(g, e.to.0));
        let _ = writeln!(out, "<g class=\"edge\"><title>{}</title>", xml(&title));
        edge(&mut out, pe, &e.style);
        out.push_str("</g>\n");
    }
    for (e, pe) in &placed {
        if let Some(r) = &pe.label {
            out.push_str("<g class=\"edge-label\">");
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" fill-opacity=\"0.85\"/>",
                num(r.center.x - r.size.x / 2.0),
                num(r.center.y - r.size.y / 2.0),
                num(r.size.x),
                num(r.size.y)
            );
            text(
                &mut out,
                r.center,
                &e.label,
                layout::EDGE_FONT,
                e.style.red_text,
            );
            out.push_str("</g>\n");
        }
    }
    for (i, (n, r)) in g.nodes.iter().zip(&p.nodes).enumerate() {
        let _ = write!(
            out,
            "<g class=\"node\"><title>{}</title>",
            xml(first_line(g, i))
        );
        outline(&mut out, r, &n.style);
        text(
            &mut out,
            r.center,
            &n.label,
            layout::NODE_FONT,
            n.style.red_text,
        );
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

fn first_line(g: &Graph, node: usize) -> &str {
    g.nodes
        .get(node)
        .and_then(|n| n.label.split('\n').next())
        .unwrap_or("")
}

fn color(red: bool) -> &'static str {
    if red {
        "red"
    } else {
        "black"
    }
}

fn stroke(s: &Style) -> String {
    let mut out = format!(
        "stroke=\"{}\" stroke-width=\"{}\"",
        color(s.red_line),
        if s.thick { 2 } else { 1 }
    );
    if s.dashed {
        let _ = write!(out, " stroke-dasharray=\"{DASHES}\"");
    }
    out
}

/// A node's outline, filled white so it sits on top of any edge.
fn outline(out: &mut String, r: &Rect, s: &Style) {
    let (cx, cy) = (r.center.x, r.center.y);
    let (hw, hh) = (r.size.x / 2.0, r.size.y / 2.0);
    let st = stroke(&Style {
        dashed: false,
        ..*s
    });
    match s.shape.unwrap_or(Shape::Box) {
        Shape::Box => {
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" {st}/>",
                num(cx - hw),
                num(cy - hh),
                num(r.size.x),
                num(r.size.y)
            );
        }
        Shape::Ellipse => {
            let _ = write!(
                out,
                "<ellipse cx=\"{}\" cy=\"{}\" rx=\"{}\" ry=\"{}\" fill=\"white\" {st}/>",
                num(cx),
                num(cy),
                num(hw),
                num(hh)
            );
        }
        Shape::Diamond => {
            let pts = [(cx, cy - hh), (cx + hw, cy), (cx, cy + hh), (cx - hw, cy)];
            polygon(out, &pts, "white", &st);
        }
        Shape::Octagon => {
            let cut = layout::octagon_cut(r.size);
            let pts = [
                (cx - hw + cut, cy - hh),
                (cx + hw - cut, cy - hh),
                (cx + hw, cy - hh + cut),
                (cx + hw, cy + hh - cut),
                (cx + hw - cut, cy + hh),
                (cx - hw + cut, cy + hh),
                (cx - hw, cy + hh - cut),
                (cx - hw, cy - hh + cut),
            ];
            polygon(out, &pts, "white", &st);
        }
    }
}

fn polygon(out: &mut String, pts: &[(f64, f64)], fill: &str, stroke: &str) {
    let pts: Vec<String> = pts
        .iter()
        .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
        .collect();
    let _ = write!(
        out,
        "<polygon points=\"{}\" fill=\"{fill}\" {stroke}/>",
        pts.join(" ")
    );
}

/// The edge's curve, ending at the base of its arrowhead, and the arrowhead.
fn edge(out: &mut String, e: &PlacedEdge, s: &Style) {
    let Some(last) = e.segments.last() else {
        return;
    };
    let (len, half) = if s.thick { HEAD_THICK } else { HEAD };
    let before = e
        .segments
        .len()
        .checked_sub(2)
        .and_then(|i| e.segments.get(i))
        .map_or(e.start, |c| c.end);
    // The direction the curve arrives in: along its last control leg that has a length.
    let dir = [last.c2, last.c1, before]
        .into_iter()
        .find_map(|from| unit(from, last.end))
        .unwrap_or(Point { x: 1.0, y: 0.0 });
    let tip = last.end;
    let base = Point {
        x: tip.x - dir.x * len,
        y: tip.y - dir.y * len,
    };
    // The line stops inside the head, so a thick line's square end cannot show past the
    // point; its last control point moves with it to keep the direction of arrival.
    let back = len * 0.8;
    let shortened = Cubic {
        c1: last.c1,
        c2: Point {
            x: last.c2.x - dir.x * back,
            y: last.c2.y - dir.y * back,
        },
        end: Point {
            x: tip.x - dir.x * back,
            y: tip.y - dir.y * back,
        },
    };
    let mut d = format!("M{},{}", num(e.start.x), num(e.start.y));
    let n = e.segments.len();
    for c in e
        .segments
        .iter()
        .take(n - 1)
        .chain(std::iter::once(&shortened))
    {
        let _ = write!(
            d,
            " C{},{} {},{} {},{}",
            num(c.c1.x),
            num(c.c1.y),
            num(c.c2.x),
            num(c.c2.y),
            num(c.end.x),
            num(c.end.y)
        );
    }
    let _ = write!(out, "<path d=\"{d}\" fill=\"none\" {}/>", stroke(s));
    let head = [
        (tip.x, tip.y),
        (base.x - dir.y * half, base.y + dir.x * half),
        (base.x + dir.y * half, base.y - dir.x * half),
    ];
    let solid = stroke(&Style {
        dashed: false,
        ..*s
    });
    polygon(out, &head, color(s.red_line), &solid);
}

/// The unit vector from `from` to `to`, if they are apart.
fn unit(from: Point, to: Point) -> Option<Point> {
    let (dx, dy) = (to.x - from.x, to.y - from.y);
    let l = (dx * dx + dy * dy).sqrt();
    (l > 1e-6).then(|| Point {
        x: dx / l,
        y: dy / l,
    })
}

/// A label centred on `at`, one `tspan` per line.
fn text(out: &mut String, at: Point, label: &str, font: f64, red: bool) {
    let lines: Vec<&str> = label.split('\n').collect();
    let line = font * layout::LINE_EM;
    let top = at.y - line * lines.len() as f64 / 2.0;
    let _ = write!(
        out,
        "<text text-anchor=\"middle\" font-size=\"{}\" fill=\"{}\" xml:space=\"preserve\">",
        num(font),
        color(red)
    );
    for (i, l) in lines.iter().enumerate() {
        // A glyph's visual centre sits about 0.35 em above its baseline.
        let baseline = top + line * (i as f64 + 0.5) + font * 0.35;
        let _ = write!(
            out,
            "<tspan x=\"{}\" y=\"{}\">{}</tspan>",
            num(at.x),
            num(baseline),
            xml(l)
        );
    }
    out.push_str("</text>");
}

/// A coordinate to one decimal, without a trailing `.0`.
fn num(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `s` as XML character data or attribute text.
pub(super) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            // Not even a character reference can carry these in XML 1.0.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}
