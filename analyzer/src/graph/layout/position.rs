//! Where each element goes along its rank. Ranks start packed in order; sweeps down and
//! up then move each element toward the weighted mean position of what it is joined to
//! in the rank before, and a last pass toward both neighbours. Each move is solved for
//! a whole rank at once: the positions closest (least squares) to the wanted ones that
//! keep the order and the gaps, by pool-adjacent-violators. Edges' points weigh most,
//! so long edges run straight.

use super::Elem;

const SWEEPS: usize = 8;
/// Space across between two nodes, and between anything and an edge's point.
const NODE_GAP: f64 = 24.0;
const POINT_GAP: f64 = 10.0;

/// Position across of every element.
pub(super) fn position(layers: &[Vec<usize>], elems: &[Elem]) -> Vec<f64> {
    let mut x = vec![0.0; elems.len()];
    for layer in layers {
        let mut at = 0.0;
        for (i, &e) in layer.iter().enumerate() {
            if let Some(&prev) = i.checked_sub(1).and_then(|p| layer.get(p)) {
                at += gap(&elems[prev], &elems[e]);
            }
            x[e] = at;
        }
    }
    for _ in 0..SWEEPS {
        for layer in layers.iter().skip(1) {
            settle(layer, elems, &mut x, Side::Up);
        }
        for layer in layers.iter().rev().skip(1) {
            settle(layer, elems, &mut x, Side::Down);
        }
    }
    for layer in layers {
        settle(layer, elems, &mut x, Side::Both);
    }
    x
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Up,
    Down,
    Both,
}

fn gap(a: &Elem, b: &Elem) -> f64 {
    let space = if a.is_node && b.is_node {
        NODE_GAP
    } else {
        POINT_GAP
    };
    a.right + space + b.left
}

/// How much a joint pulls: between two edge points most, so long edges stay straight.
fn weight(a: &Elem, b: &Elem) -> f64 {
    match (a.is_node, b.is_node) {
        (false, false) => 8.0,
        (true, true) => 1.0,
        _ => 2.0,
    }
}

/// Moves `layer` toward its neighbours on `side`, keeping order and gaps.
fn settle(layer: &[usize], elems: &[Elem], x: &mut [f64], side: Side) {
    let mut wanted = Vec::with_capacity(layer.len());
    for &e in layer {
        let el = &elems[e];
        let near: Vec<usize> = match side {
            Side::Up => el.up.clone(),
            Side::Down => el.down.clone(),
            Side::Both => el.up.iter().chain(&el.down).copied().collect(),
        };
        let (mut sum, mut total) = (0.0, 0.0);
        for m in near {
            let w = weight(el, &elems[m]);
            sum += w * x[m];
            total += w;
        }
        // Nothing to follow: stay, but give way to anything that is pulled.
        wanted.push(if total > 0.0 {
            (sum / total, total)
        } else {
            (x[e], 0.01)
        });
    }
    // With offsets o_i (the gaps summed), x_i = u_i + o_i and the gaps hold exactly
    // when u never decreases: fit such u to the wanted positions less the offsets.
    let mut offsets = Vec::with_capacity(layer.len());
    let mut off = 0.0;
    for (i, &e) in layer.iter().enumerate() {
        if let Some(&prev) = i.checked_sub(1).and_then(|p| layer.get(p)) {
            off += gap(&elems[prev], &elems[e]);
        }
        offsets.push(off);
    }
    // Blocks of equal u: (weight, weighted sum, count).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for (&(want, w), &o) in wanted.iter().zip(&offsets) {
        blocks.push((w, w * (want - o), 1));
        while blocks.len() >= 2 {
            let (w1, s1, c1) = blocks[blocks.len() - 1];
            let (w0, s0, c0) = blocks[blocks.len() - 2];
            if s0 / w0 <= s1 / w1 {
                break;
            }
            blocks.truncate(blocks.len() - 2);
            blocks.push((w0 + w1, s0 + s1, c0 + c1));
        }
    }
    let mut i = 0;
    for (w, s, count) in blocks {
        let u = s / w;
        for _ in 0..count {
            if let (Some(&e), Some(&o)) = (layer.get(i), offsets.get(i)) {
                x[e] = u + o;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(is_node: bool, up: Vec<usize>, down: Vec<usize>) -> Elem {
        Elem {
            rank: 0,
            is_node,
            left: 5.0,
            right: 5.0,
            depth: 1.0,
            up,
            down,
        }
    }

    #[test]
    fn a_lone_child_sits_under_its_parent_and_siblings_keep_their_gap() {
        // 0 over 1; 2 over 3 and 4.
        let elems = vec![
            elem(true, vec![], vec![1]),
            elem(true, vec![0], vec![]),
            elem(true, vec![], vec![3, 4]),
            elem(true, vec![2], vec![]),
            elem(true, vec![2], vec![]),
        ];
        let layers = vec![vec![0, 2], vec![1, 3, 4]];
        let x = position(&layers, &elems);
        assert!((x[1] - x[0]).abs() < 1.0, "{x:?}");
        assert!((x[4] - x[3] - (10.0 + NODE_GAP)).abs() < 1e-6, "{x:?}");
        assert!((x[2] - (x[3] + x[4]) / 2.0).abs() < 1.0, "{x:?}");
        for layer in &layers {
            for w in layer.windows(2) {
                assert!(x[w[1]] - x[w[0]] >= 10.0 + NODE_GAP - 1e-6, "{x:?}");
            }
        }
    }
}
