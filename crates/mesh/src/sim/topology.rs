//! Placement on the plane, the spatial grid for range queries, and graph measures.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// A point on the plane, in metres.
pub(crate) type Pos = (f64, f64);

/// Buckets of nodes by square cells of the radio range's size.
#[derive(Debug)]
pub(crate) struct Grid {
    cell: f64,
    cols: usize,
    cells: Vec<Vec<usize>>,
}

impl Grid {
    pub(crate) fn new(side: f64, range: f64) -> Self {
        let cell = range.max(1e-3);
        let cols = ((side / cell).ceil() as usize).max(1);
        Self {
            cell,
            cols,
            cells: vec![Vec::new(); cols * cols],
        }
    }

    fn cell_of(&self, p: Pos) -> (usize, usize) {
        let c = |v: f64| ((v / self.cell).floor().max(0.0) as usize).min(self.cols - 1);
        (c(p.0), c(p.1))
    }

    pub(crate) fn insert(&mut self, node: usize, p: Pos) {
        let (x, y) = self.cell_of(p);
        self.cells[y * self.cols + x].push(node);
    }

    pub(crate) fn remove(&mut self, node: usize, p: Pos) {
        let (x, y) = self.cell_of(p);
        self.cells[y * self.cols + x].retain(|&n| n != node);
    }

    /// Nodes of the grid within `range` of `p` (the node at `p` included, if in the grid).
    pub(crate) fn near(&self, p: Pos, range: f64, pos: &[Pos]) -> Vec<usize> {
        let (cx, cy) = self.cell_of(p);
        let mut out = Vec::new();
        for y in cy.saturating_sub(1)..=(cy + 1).min(self.cols - 1) {
            for x in cx.saturating_sub(1)..=(cx + 1).min(self.cols - 1) {
                for &n in &self.cells[y * self.cols + x] {
                    if dist2(pos[n], p) <= range * range {
                        out.push(n);
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }
}

pub(crate) fn dist2(a: Pos, b: Pos) -> f64 {
    (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)
}

/// The side of a square holding `nodes` nodes so that `density` of them fall within `range`.
pub(crate) fn side_for(nodes: usize, range: f64, density: f64) -> f64 {
    (nodes as f64 * std::f64::consts::PI * range * range / density.max(1.0)).sqrt()
}

pub(crate) fn random_pos(rng: &mut StdRng, side: f64) -> Pos {
    (rng.gen_range(0.0..side), rng.gen_range(0.0..side))
}

/// Links each node, in random order, to random in-range nodes with a free slot, up to `cap`.
/// `adj` holds the existing links; `allowed(a, b)` may forbid a pair (the partition's wall).
pub(crate) fn fill_links(
    node: usize,
    cap: usize,
    candidates: &[usize],
    adj: &[Vec<usize>],
    rng: &mut StdRng,
    allowed: impl Fn(usize, usize) -> bool,
) -> Vec<usize> {
    let mut free = cap.saturating_sub(adj[node].len());
    let mut picks: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&c| c != node && adj[c].len() < cap && !adj[node].contains(&c) && allowed(node, c))
        .collect();
    picks.shuffle(rng);
    let mut out = Vec::new();
    for c in picks {
        if free == 0 {
            break;
        }
        out.push(c);
        free -= 1;
    }
    out
}

/// Hop distances from `from` over `adj` (usize::MAX = unreachable).
pub(crate) fn bfs(adj: &[Vec<usize>], from: usize) -> Vec<usize> {
    let mut dist = vec![usize::MAX; adj.len()];
    let mut queue = VecDeque::new();
    dist[from] = 0;
    queue.push_back(from);
    while let Some(n) = queue.pop_front() {
        for &m in &adj[n] {
            if dist[m] == usize::MAX {
                dist[m] = dist[n] + 1;
                queue.push_back(m);
            }
        }
    }
    dist
}

/// The nodes of the largest connected component, sorted.
pub(crate) fn largest_component(adj: &[Vec<usize>]) -> Vec<usize> {
    let mut seen = vec![false; adj.len()];
    let mut best = Vec::new();
    for start in 0..adj.len() {
        if seen[start] {
            continue;
        }
        let dist = bfs(adj, start);
        let comp: Vec<usize> = (0..adj.len()).filter(|&n| dist[n] != usize::MAX).collect();
        for &n in &comp {
            seen[n] = true;
        }
        if comp.len() > best.len() {
            best = comp;
        }
    }
    best
}

/// The longest shortest path of a connected graph.
pub(crate) fn diameter(adj: &[Vec<usize>]) -> usize {
    (0..adj.len())
        .map(|n| {
            bfs(adj, n)
                .into_iter()
                .filter(|&d| d != usize::MAX)
                .max()
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}
