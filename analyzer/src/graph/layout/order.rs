//! The order within each rank: sweeps down and up the ranks, each sorting a rank by the
//! mean position of what it is joined to in the rank just swept, then swapping
//! neighbours wherever that alone removes crossings; the order with the fewest edge
//! crossings seen is kept.

use super::Elem;

const SWEEPS: usize = 16;

/// Reorders every rank of `layers` (element indices) in place.
pub(super) fn order(layers: &mut [Vec<usize>], elems: &[Elem]) {
    let mut pos = vec![0usize; elems.len()];
    index(layers, &mut pos);
    let mut best = layers.to_vec();
    let mut fewest = crossings(layers, elems, &pos);
    for sweep in 0..SWEEPS {
        if fewest == 0 {
            break;
        }
        let down = sweep % 2 == 0;
        let ranks: Vec<usize> = if down {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for r in ranks {
            let mut keyed: Vec<(f64, usize, usize)> = layers[r]
                .iter()
                .map(|&e| {
                    let near = if down { &elems[e].up } else { &elems[e].down };
                    let key = if near.is_empty() {
                        pos[e] as f64
                    } else {
                        near.iter().map(|&m| pos[m] as f64).sum::<f64>() / near.len() as f64
                    };
                    (key, pos[e], e)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[r] = keyed.into_iter().map(|k| k.2).collect();
            for (i, &e) in layers[r].iter().enumerate() {
                pos[e] = i;
            }
        }
        transpose(layers, elems, &mut pos);
        let c = crossings(layers, elems, &pos);
        if c < fewest {
            fewest = c;
            best = layers.to_vec();
        }
    }
    layers.clone_from_slice(&best);
}

/// Swaps neighbours in a rank while that removes crossings with the ranks on both sides.
fn transpose(layers: &mut [Vec<usize>], elems: &[Elem], pos: &mut [usize]) {
    // Each pass only ever lowers the count; the bound keeps a worst case short.
    for _ in 0..layers.len().max(4) {
        let mut improved = false;
        for layer in layers.iter_mut() {
            for i in 1..layer.len() {
                let (u, v) = (layer[i - 1], layer[i]);
                if pair_crossings(elems, pos, v, u) < pair_crossings(elems, pos, u, v) {
                    layer.swap(i - 1, i);
                    pos[u] = i;
                    pos[v] = i - 1;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// Crossings between the edges of `left` and those of `right` were `left` just left of
/// `right`, above and below.
fn pair_crossings(elems: &[Elem], pos: &[usize], left: usize, right: usize) -> usize {
    let count = |a: &[usize], b: &[usize]| {
        a.iter()
            .map(|&x| b.iter().filter(|&&y| pos[y] < pos[x]).count())
            .sum::<usize>()
    };
    count(&elems[left].up, &elems[right].up) + count(&elems[left].down, &elems[right].down)
}

fn index(layers: &[Vec<usize>], pos: &mut [usize]) {
    for layer in layers {
        for (i, &e) in layer.iter().enumerate() {
            pos[e] = i;
        }
    }
}

/// Edge crossings between every two neighbouring ranks.
fn crossings(layers: &[Vec<usize>], elems: &[Elem], pos: &[usize]) -> usize {
    let mut total = 0;
    for (r, layer) in layers.iter().enumerate() {
        let Some(below) = layers.get(r + 1) else {
            break;
        };
        let mut pairs: Vec<(usize, usize)> = layer
            .iter()
            .flat_map(|&u| elems[u].down.iter().map(move |&v| (pos[u], pos[v])))
            .collect();
        pairs.sort_unstable();
        // Two edges cross when the later one (by upper end) ends further left: count, for
        // each edge, the earlier ones that end right of it (a Fenwick tree over ends).
        let mut tree = vec![0usize; below.len() + 1];
        for (seen, &(_, v)) in pairs.iter().enumerate() {
            let mut at_or_left = 0;
            let mut i = v + 1;
            while i > 0 {
                at_or_left += tree.get(i).copied().unwrap_or(0);
                i &= i - 1;
            }
            total += seen - at_or_left;
            let mut i = v + 1;
            while i < tree.len() {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(rank: usize, up: Vec<usize>, down: Vec<usize>) -> Elem {
        Elem {
            rank,
            is_node: true,
            left: 1.0,
            right: 1.0,
            depth: 1.0,
            up,
            down,
        }
    }

    #[test]
    fn crossed_edges_are_uncrossed() {
        // 0 -> 3, 1 -> 2: crossed as given.
        let elems = vec![
            elem(0, vec![], vec![3]),
            elem(0, vec![], vec![2]),
            elem(1, vec![1], vec![]),
            elem(1, vec![0], vec![]),
        ];
        let mut layers = vec![vec![0, 1], vec![2, 3]];
        let mut pos = vec![0; 4];
        index(&layers, &mut pos);
        assert_eq!(crossings(&layers, &elems, &pos), 1);
        order(&mut layers, &elems);
        index(&layers, &mut pos);
        assert_eq!(crossings(&layers, &elems, &pos), 0);
    }
}
