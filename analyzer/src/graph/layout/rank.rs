//! Which rank each node goes in. An edge that closes a cycle (one a depth-first search
//! finds going back to a node still on its path) is turned around, which leaves no
//! cycle; then every node sits at the longest path to it, each edge spanning at least
//! its minimum length, and a node that only feeds others is pulled down next to them.

/// Ranks by node, and by edge whether it was turned around.
pub(super) struct Ranked {
    pub rank: Vec<usize>,
    pub reversed: Vec<bool>,
}

/// `edges` are `(from, to, minimum length)` between distinct nodes below `n`; others are
/// ignored.
pub(super) fn rank(n: usize, edges: &[(usize, usize, usize)]) -> Ranked {
    let valid = |&(a, b, _): &(usize, usize, usize)| a < n && b < n && a != b;
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in edges.iter().enumerate().filter(|(_, e)| valid(e)) {
        out[e.0].push(i);
    }

    // Iterative, so a long chain cannot overflow the stack.
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        No,
        OnPath,
        Done,
    }
    let mut seen = vec![Seen::No; n];
    let mut reversed = vec![false; edges.len()];
    for root in 0..n {
        if seen[root] != Seen::No {
            continue;
        }
        seen[root] = Seen::OnPath;
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&(v, next)) = path.last() {
            let Some(&e) = out[v].get(next) else {
                seen[v] = Seen::Done;
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let w = edges[e].1;
            match seen[w] {
                Seen::No => {
                    seen[w] = Seen::OnPath;
                    path.push((w, 0));
                }
                Seen::OnPath => reversed[e] = true,
                Seen::Done => {}
            }
        }
    }

    // Longest paths, in topological order (Kahn).
    let mut succ: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for (i, &(a, b, len)) in edges.iter().enumerate() {
        if !valid(&(a, b, len)) {
            continue;
        }
        let (a, b) = if reversed[i] { (b, a) } else { (a, b) };
        succ[a].push((b, len.max(1)));
        indeg[b] += 1;
    }
    let sources: Vec<bool> = indeg.iter().map(|&d| d == 0).collect();
    let mut ready: Vec<usize> = (0..n).rev().filter(|&v| indeg[v] == 0).collect();
    let mut topo = Vec::with_capacity(n);
    let mut rank = vec![0usize; n];
    while let Some(v) = ready.pop() {
        topo.push(v);
        for &(w, len) in &succ[v] {
            rank[w] = rank[w].max(rank[v] + len);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                ready.push(w);
            }
        }
    }
    // Sources feed only later ranks: move each as far down as its nearest successor allows.
    for &v in topo.iter().rev().filter(|&&v| sources[v]) {
        if let Some(r) = succ[v]
            .iter()
            .map(|&(w, len)| rank[w].saturating_sub(len))
            .min()
        {
            rank[v] = rank[v].max(r);
        }
    }
    let low = rank.iter().copied().min().unwrap_or(0);
    for r in &mut rank {
        *r -= low;
    }
    Ranked { rank, reversed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_broken_and_every_edge_points_down() {
        let edges = [(0, 1, 1), (1, 2, 2), (2, 0, 1), (1, 0, 1)];
        let r = rank(3, &edges);
        for (i, &(a, b, len)) in edges.iter().enumerate() {
            let (a, b) = if r.reversed[i] { (b, a) } else { (a, b) };
            assert!(r.rank[b] >= r.rank[a] + len, "{i}: {:?}", r.rank);
        }
        assert_eq!(r.reversed, [false, false, true, true]);
    }

    #[test]
    fn a_source_sits_next_to_what_it_feeds() {
        // 0 -> 1 -> 2 -> 3, and 4 -> 3: 4 goes in rank 2, not 0.
        let r = rank(5, &[(0, 1, 1), (1, 2, 1), (2, 3, 1), (4, 3, 1)]);
        assert_eq!(r.rank, [0, 1, 2, 3, 2]);
    }
}
