//! Diversity: batch-aware strategies that spread a batch over the embedding space instead of
//! ranking candidates one at a time, so a batch of k does not spend its labels on k near-copies
//! of one uncertain region (Settles 2009, batch-mode active learning; Sener & Savarese 2018;
//! Ash et al. 2020).
//!
//! Shapes: `embeddings` `[n, dim]` and `gradient_embeddings` `[n, classes·dim]` are row-aligned
//! with the query's candidates, `labeled_embeddings` with its labeled ids. Distances are
//! Euclidean, computed by the `distance` kernels below in row blocks with rayon: memory stays
//! linear in the number of rows, never an n × n matrix.
//!
//! Also here: [`TwoStep`], the modAL-style composition "one strategy pre-filters, another picks",
//! with [`restrict`] to cut [`Scores`] down to a subset of candidates, and [`ClassBalancedMargin`].

use crate::select::top_k;
use crate::uncertainty::margin_score;
use quarry_core::{
    Error, Matrix, McSamples, Needs, Pick, Probabilities, QuarryRng, Query, QueryContext, Result, SampleId, Scores,
    Strategy, WhatIf,
};
use rand::Rng;
use rayon::prelude::*;
use std::collections::{BinaryHeap, HashMap};

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![
        crate::Entry {
            name: "coreset",
            aliases: &["k-center", "kcenter-greedy", "core-set"],
            family: "diversity",
            paper: "Sener & Savarese, ICLR 2018 (greedy k-center)",
            summary: "farthest candidate from the labeled set and the batch so far, repeatedly (Euclidean, embeddings)",
            build: |_| Ok(Box::new(KCenterGreedy)),
        },
        crate::Entry {
            name: "badge",
            aliases: &[],
            family: "diversity",
            paper: "Ash, Zhang, Krishnamurthy, Langford & Agarwal, ICLR 2020",
            summary: "k-means++ seeding on gradient embeddings: uncertain (long) and diverse (spread) at once",
            build: |_| Ok(Box::new(Badge)),
        },
        crate::Entry {
            name: "diverse-mini-batch",
            aliases: &["weighted-kmeans"],
            family: "diversity",
            paper: "Zhdanov, Diverse mini-batch active learning, arXiv:1901.05954, 2019",
            summary: "margin pre-filter (prefilter × batch), weighted k-means, the candidate nearest each centroid",
            build: |o| Ok(Box::new(DiverseMiniBatch::new(o.prefilter)?)),
        },
        crate::Entry {
            name: "margin-then-coreset",
            aliases: &["uncertainty-then-diversity", "two-step"],
            family: "diversity",
            paper: "modAL's ranked batch idea; Zhdanov 2019 (uncertainty pre-filter, then diversity)",
            summary: "margin keeps prefilter × batch candidates, greedy k-center picks the batch among them",
            build: |o| Ok(Box::new(TwoStep::new(Box::new(crate::MarginSampling), Box::new(KCenterGreedy), o.prefilter)?)),
        },
        crate::Entry {
            name: "class-balanced",
            aliases: &["class-balanced-margin"],
            family: "diversity",
            paper: "margin sampling (Scheffer et al. 2001) with per-class caps on the predicted label",
            summary: "margin ranking, at most ceil(batch / classes) picks per predicted class, then fill",
            build: |_| Ok(Box::new(ClassBalancedMargin)),
        },
    ]
}

// ─────────────────────────────── shared helpers ───────────────────────────────

/// An error unless a per-candidate score has one row per candidate.
pub(crate) fn check_rows(strategy: &str, what: &str, got: usize, candidates: usize) -> Result<()> {
    if got == candidates {
        return Ok(());
    }
    Err(Error::shape(format!("{what} of strategy {strategy}"), format!("{candidates} rows (one per candidate)"), format!("{got} rows")))
}

/// An error unless two embedding matrices have the same width.
pub(crate) fn check_dim(strategy: &str, what: &str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(Error::shape(format!("{what} of strategy {strategy}"), format!("{expected} columns (the candidates' embedding width)"), format!("{got} columns")))
}

/// The `m` rows with the highest `scores`, best first, ties broken by `rng` (the shared
/// [`top_k`] selector, on row numbers instead of sample ids).
pub(crate) fn rank_rows(scores: &[f64], m: usize, rng: &mut QuarryRng) -> Vec<usize> {
    let rows: Vec<SampleId> = (0..scores.len()).map(SampleId::from).collect();
    top_k(&rows, scores, m, rng).picks.iter().map(|p| p.id.index()).collect()
}

/// One random key per row, drawn once, to break exact ties without favouring low rows.
pub(crate) fn tie_keys(n: usize, rng: &mut QuarryRng) -> Vec<u64> {
    (0..n).map(|_| rng.random()).collect()
}

/// A row in a lazy-greedy max-heap: its `value` as of `fresh_at` picks, an upper bound on its
/// value since (Minoux 1978). Ordered by value, then by a seeded random key.
pub(crate) struct Stale {
    pub(crate) value: f64,
    pub(crate) key: u64,
    pub(crate) row: usize,
    pub(crate) fresh_at: usize,
}

impl PartialEq for Stale {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o).is_eq()
    }
}
impl Eq for Stale {}
impl PartialOrd for Stale {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Stale {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.value.total_cmp(&o.value).then(self.key.cmp(&o.key)).then(o.row.cmp(&self.row))
    }
}

/// `x > 0`, false for NaN.
fn positive(x: f64) -> bool {
    x > 0.0
}

/// Non-negative masses over rows, drawn from in proportion and updated in O(log n): a complete
/// binary tree whose inner nodes hold the sums of their leaves (recomputed, never patched by
/// differences, so a cleared leaf is exactly 0).
struct SumTree {
    leaves: usize,
    nodes: Vec<f64>,
}

impl SumTree {
    fn new(masses: impl ExactSizeIterator<Item = f64>) -> Self {
        let leaves = masses.len().next_power_of_two();
        let mut nodes = vec![0f64; 2 * leaves];
        for (i, m) in masses.enumerate() {
            nodes[leaves + i] = m;
        }
        for p in (1..leaves).rev() {
            nodes[p] = nodes[2 * p] + nodes[2 * p + 1];
        }
        SumTree { leaves, nodes }
    }

    fn get(&self, i: usize) -> f64 {
        self.nodes[self.leaves + i]
    }

    fn set(&mut self, i: usize, mass: f64) {
        let mut p = self.leaves + i;
        self.nodes[p] = mass;
        while p > 1 {
            p /= 2;
            self.nodes[p] = self.nodes[2 * p] + self.nodes[2 * p + 1];
        }
    }

    /// Row `i` with probability `mass_i / Σ mass`; `None` when every mass is 0. A row of zero
    /// mass is never returned: the descent only enters subtrees of positive sum.
    fn draw(&self, rng: &mut QuarryRng) -> Option<usize> {
        if !positive(self.nodes[1]) {
            return None;
        }
        let mut u = rng.random::<f64>() * self.nodes[1];
        let mut p = 1;
        while p < self.leaves {
            let (left, right) = (self.nodes[2 * p], self.nodes[2 * p + 1]);
            if (u < left && positive(left)) || !positive(right) {
                p *= 2;
            } else {
                u -= left;
                p = 2 * p + 1;
            }
        }
        Some(p - self.leaves)
    }
}

// ─────────────────────────────── distance kernels ───────────────────────────────

/// Euclidean distance kernels over row-major `f32` matrices, shared by the diversity and density
/// families. Written so the compiler vectorizes them for the baseline target (no `unsafe`, no
/// CPU-specific build flags).
///
/// * Row against row ([`squared_distance`], [`dot`]): 8 independent accumulator lanes.
/// * All pairs ([`for_each_pair`], [`nearest`]): the other matrix is [`Packed`] in panels of 16
///   interleaved rows, so one multiply-add updates 16 dot products, and a tile of 3 rows shares
///   every panel load (a small GEMM micro-kernel); distances come from ‖a‖² + ‖b‖² − 2a·b.
///   [`squared_norms`] sums in the same order as the panel lanes, so a row's distance to an
///   identical row is exactly 0.
///
/// Nothing allocates more than the inputs' size: no n × n matrix is ever formed.
pub(crate) mod distance {
    use quarry_core::Matrix;
    use rayon::prelude::*;
    use std::ops::Range;

    /// Accumulator lanes of the row-against-row kernels.
    const LANES: usize = 8;
    /// Rows of the packed matrix per panel.
    const PANEL: usize = 16;
    /// Rows multiplied with one panel at a time (3 × 16 accumulators fill the SSE registers).
    const TILE: usize = 3;
    /// Rows per parallel task in [`nearest`].
    const ROW_BLOCK: usize = 48;
    /// Rows per parallel task in scans over all rows.
    pub(crate) const SCAN_BLOCK: usize = 2048;

    /// a·b.
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot product of rows of different widths");
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
        let mut acc = [0f32; LANES];
        for (x, y) in ac.zip(bc) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        acc.iter().sum::<f32>() + tail
    }

    /// ‖a − b‖², from the differences (exactly 0 for equal rows).
    pub(crate) fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "distance between rows of different widths");
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
        let mut acc = [0f32; LANES];
        for (x, y) in ac.zip(bc) {
            for l in 0..LANES {
                let d = x[l] - y[l];
                acc[l] += d * d;
            }
        }
        acc.iter().sum::<f32>() + tail
    }

    /// ‖row‖², summed left to right like one lane of the panel kernel.
    pub(crate) fn squared_norm(row: &[f32]) -> f32 {
        row.iter().fold(0f32, |s, &v| s + v * v)
    }

    /// ‖row‖² of every row, in parallel.
    pub(crate) fn squared_norms(m: &Matrix) -> Vec<f32> {
        (0..m.rows()).into_par_iter().with_min_len(256).map(|i| squared_norm(m.row(i))).collect()
    }

    /// ‖row − center‖² of every row, in parallel.
    pub(crate) fn distances_to(points: &Matrix, center: &[f32]) -> Vec<f32> {
        (0..points.rows()).into_par_iter().with_min_len(256).map(|i| squared_distance(points.row(i), center)).collect()
    }

    /// A matrix laid out for the all-pairs kernel: panel `p` holds rows `16p .. 16p + 16`
    /// interleaved, `[dim][16]`, the last one padded with zero rows.
    pub(crate) struct Packed {
        data: Vec<f32>,
        rows: usize,
        dim: usize,
        norms: Vec<f32>,
    }

    impl Packed {
        pub(crate) fn new(m: &Matrix) -> Self {
            let (rows, dim) = (m.rows(), m.cols());
            let mut data = vec![0f32; rows.div_ceil(PANEL) * dim * PANEL];
            for (p, panel) in data.chunks_exact_mut((dim * PANEL).max(1)).enumerate() {
                for w in 0..PANEL.min(rows - p * PANEL) {
                    for (k, &v) in m.row(p * PANEL + w).iter().enumerate() {
                        panel[k * PANEL + w] = v;
                    }
                }
            }
            Packed { data, rows, dim, norms: squared_norms(m) }
        }

        pub(crate) fn panels(&self) -> usize {
            self.rows.div_ceil(PANEL)
        }

        /// The rows of panel `p`.
        pub(crate) fn panel_rows(&self, p: usize) -> Range<usize> {
            p * PANEL..(p * PANEL + PANEL).min(self.rows)
        }
    }

    /// The dot products of `R` rows with the 16 rows of one panel.
    #[inline(always)]
    fn panel_dots<const R: usize>(a: [&[f32]; R], panel: &[f32]) -> [[f32; PANEL]; R] {
        let dim = panel.len() / PANEL;
        let a: [&[f32]; R] = std::array::from_fn(|r| &a[r][..dim]);
        let mut acc = [[0f32; PANEL]; R];
        for k in 0..dim {
            let b: &[f32; PANEL] = panel[k * PANEL..(k + 1) * PANEL].try_into().expect("a panel column has 16 entries");
            for r in 0..R {
                let x = a[r][k];
                for w in 0..PANEL {
                    acc[r][w] += x * b[w];
                }
            }
        }
        acc
    }

    /// Calls `visit(i, j, ‖a_i − b_j‖²)` (clamped at 0 against rounding) for every `i` in `rows`
    /// and every row `j` of the panels `panels` of `b`, in increasing `j` for each `i`.
    /// Sequential: callers parallelize over blocks of rows or of panels.
    pub(crate) fn for_each_pair(
        a: &Matrix,
        a_norms: &[f32],
        rows: Range<usize>,
        b: &Packed,
        panels: Range<usize>,
        mut visit: impl FnMut(usize, usize, f32),
    ) {
        assert_eq!(a.cols(), b.dim, "distances between rows of different widths");
        let size = b.dim * PANEL;
        for p in panels {
            let panel = &b.data[p * size..(p + 1) * size];
            let cols = b.panel_rows(p);
            let mut emit = |i: usize, dots: &[f32; PANEL]| {
                for (j, &d) in cols.clone().zip(dots) {
                    visit(i, j, (a_norms[i] + b.norms[j] - 2.0 * d).max(0.0));
                }
            };
            let mut i = rows.start;
            while i + TILE <= rows.end {
                let dots = panel_dots::<TILE>(std::array::from_fn(|r| a.row(i + r)), panel);
                dots.iter().enumerate().for_each(|(r, d)| emit(i + r, d));
                i += TILE;
            }
            for i in i..rows.end {
                emit(i, &panel_dots::<1>([a.row(i)], panel)[0]);
            }
        }
    }

    /// A row's nearest and second-nearest rows of another matrix (squared distances).
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub(crate) struct Nearest {
        pub(crate) d2: f32,
        /// The nearest row (the lowest on ties); `u32::MAX` when there are none.
        pub(crate) index: u32,
        /// ∞ when there is no second row.
        pub(crate) second_d2: f32,
    }

    /// For every row of `a`, its nearest and second-nearest rows of `b`, in parallel row blocks.
    pub(crate) fn nearest(a: &Matrix, b: &Packed) -> Vec<Nearest> {
        let a_norms = squared_norms(a);
        let none = Nearest { d2: f32::INFINITY, index: u32::MAX, second_d2: f32::INFINITY };
        let mut out = vec![none; a.rows()];
        out.par_chunks_mut(ROW_BLOCK).enumerate().for_each(|(blk, out)| {
            let start = blk * ROW_BLOCK;
            for_each_pair(a, &a_norms, start..start + out.len(), b, 0..b.panels(), |i, j, d2| {
                let o = &mut out[i - start];
                if d2 < o.d2 {
                    *o = Nearest { d2, index: j as u32, second_d2: o.d2 };
                } else if d2 < o.second_d2 {
                    o.second_d2 = d2;
                }
            });
        });
        out
    }
}

// ─────────────────────────────── core-set ───────────────────────────────

/// Core-set selection by greedy k-center (Sener & Savarese, "Active Learning for Convolutional
/// Neural Networks: A Core-Set Approach", ICLR 2018, Algorithm 1).
///
/// Setting: a model whose last-layer embeddings make Euclidean distance meaningful (for logistic
/// regression, the standardized features). Each candidate's distance to its nearest labeled
/// sample or batch member so far is kept; the farthest candidate is picked, repeatedly, which
/// 2-approximates the minimum covering radius. With no labeled set the first pick is a seeded
/// random candidate. Ties go to a seeded random key. A pick's score is its distance at the time
/// (∞ for a random first pick): the covering radius just before it, non-increasing along the batch.
///
/// Hand-computed (see the tests): labeled {0}, candidates {1, 2, 5, 9, 10} on a line, k = 3:
/// distances 1, 2, 5, 9, 10 → pick 10; now 9 is 1 away → distances 1, 2, 5, 1 → pick 5;
/// → distances 1, 2, 1 → pick 2. Batch 10, 5, 2 with scores 10, 5, 2.
///
/// Cost: the distances to the labeled set are one blocked all-pairs pass; the picks are then
/// lazy: a candidate's distance only ever shrinks, so a stale one is an upper bound, and only
/// candidates that reach the top of a max-heap are brought up to date with the picks made since
/// they were last (an exact argmax, the same batch as updating every candidate after every pick).
/// At most O((labeled + k) · n · dim) time, O(n) memory beyond the embeddings.
#[derive(Debug, Clone, Copy, Default)]
pub struct KCenterGreedy;

impl Strategy for KCenterGreedy {
    fn name(&self) -> &str {
        "coreset"
    }
    fn needs(&self) -> Needs {
        Needs { embeddings: true, labeled_embeddings: true, ..Needs::NOTHING }
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let name = self.name();
        let emb = ctx.scores.embeddings(name)?;
        check_rows(name, "embeddings", emb.rows(), ctx.candidates.len())?;
        let labeled = ctx.scores.labeled_embeddings(name)?;
        if labeled.rows() != ctx.labeled.len() {
            let expected = format!("{} rows (one per labeled id)", ctx.labeled.len());
            return Err(Error::shape(format!("labeled embeddings of strategy {name}"), expected, format!("{} rows", labeled.rows())));
        }
        if labeled.rows() > 0 {
            check_dim(name, "labeled embeddings", labeled.cols(), emb.cols())?;
        }
        let picks = k_center_greedy(emb, labeled, k, rng);
        Ok(Query { picks: picks.into_iter().map(|(i, d)| Pick { id: ctx.candidates[i], score: d }).collect() })
    }
}

/// Greedy k-center: `k` distinct rows of `points` (fewer if there are fewer), each the farthest
/// from `centers` and the rows picked before it, with that distance. See [`KCenterGreedy`].
pub fn k_center_greedy(points: &Matrix, centers: &Matrix, k: usize, rng: &mut QuarryRng) -> Vec<(usize, f64)> {
    let n = points.rows();
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let keys = tie_keys(n, rng);
    let mut picks: Vec<(usize, f64)> = Vec::with_capacity(k);
    let d2: Vec<f32> = if centers.rows() > 0 {
        distance::nearest(points, &distance::Packed::new(centers)).iter().map(|m| m.d2).collect()
    } else {
        let first = rng.random_range(0..n);
        picks.push((first, f64::INFINITY));
        distance::distances_to(points, points.row(first))
    };
    let fresh_at = picks.len();
    let mut heap: BinaryHeap<Stale> = (0..n)
        .filter(|&i| picks.first().is_none_or(|p| p.0 != i))
        .map(|row| Stale { value: d2[row] as f64, key: keys[row], row, fresh_at })
        .collect();
    while picks.len() < k {
        let mut top = heap.pop().expect("k ≤ n leaves an unpicked row");
        if top.fresh_at == picks.len() {
            picks.push((top.row, top.value.sqrt()));
        } else {
            let row = points.row(top.row);
            let nearer = picks[top.fresh_at..].iter().map(|&(c, _)| distance::squared_distance(row, points.row(c)) as f64);
            top.value = nearer.fold(top.value, f64::min);
            top.fresh_at = picks.len();
            heap.push(top);
        }
    }
    picks
}

// ─────────────────────────────── BADGE ───────────────────────────────

/// BADGE, batch active learning by diverse gradient embeddings (Ash et al., "Deep Batch Active
/// Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020).
///
/// Setting: a softmax model; the gradient embedding of a candidate is the gradient of the
/// cross-entropy at its predicted label with respect to the last layer,
/// `(p − onehot(argmax p)) ⊗ embedding` (long when the model is unsure, pointing where it would
/// move the model). The batch is k-means++ seeding (Arthur & Vassilvitskii 2007) on those vectors:
/// the first center is the candidate with the largest gradient norm (as the reference
/// implementation does), each next one is drawn with probability ∝ D², its squared distance to
/// the nearest center so far. A chosen candidate has D² = 0 and cannot be drawn again; when every
/// remaining D² is 0 the next is drawn uniformly among the unchosen. A pick's score is its D²
/// when drawn (the first: its squared norm, its D² to the origin).
///
/// Hand-computed (see the tests): rows (3, 4), (3, 4), (0, 0): a (3, 4) row is first (norm 5),
/// the other copy has D² = 0, so (0, 0) (D² = 25) is drawn with certainty, then the copy by the
/// uniform fallback.
#[derive(Debug, Clone, Copy, Default)]
pub struct Badge;

impl Strategy for Badge {
    fn name(&self) -> &str {
        "badge"
    }
    fn needs(&self) -> Needs {
        Needs { gradient_embeddings: true, ..Needs::NOTHING }
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let grads = ctx.scores.gradient_embeddings(self.name())?;
        check_rows(self.name(), "gradient embeddings", grads.rows(), ctx.candidates.len())?;
        let n = grads.rows();
        if n == 0 || k == 0 {
            return Ok(Query::default());
        }
        let norms = distance::squared_norms(grads);
        let keys = tie_keys(n, rng);
        let first = (0..n).max_by(|&a, &b| norms[a].total_cmp(&norms[b]).then(keys[a].cmp(&keys[b]))).expect("n > 0");
        let picks = kmeans_pp_seeding(grads, None, first, k, rng);
        Ok(Query { picks: picks.into_iter().map(|(i, d2)| Pick { id: ctx.candidates[i], score: d2 }).collect() })
    }
}

/// k-means++ seeding (Arthur & Vassilvitskii 2007) from a given first row: each next row is drawn
/// with probability ∝ `weight · D²`, D the distance to the nearest row chosen so far (weights are
/// non-negative, all 1 when `weights` is `None`). Chosen rows have D = 0 and are never drawn twice; when no unchosen
/// row has positive mass the next is uniform among the unchosen. Returns `min(k, rows)` distinct
/// rows in order with the D² each had when drawn (the first: its squared norm).
///
/// Lazily, by rejection (exact): rows are proposed in proportion to a stale mass, which can only
/// be too high (D² only shrinks), brought up to date against the centers chosen since, and
/// accepted with probability fresh / stale mass (a rejected row keeps its fresh mass). Each
/// proposal is accepted with a probability ∝ its true mass, so the draw is exactly ∝ D²·weight,
/// while rows far from every new center are never touched. At most O(k · n · dim) time, as the
/// eager update of every D² after every draw; O(n) memory.
pub fn kmeans_pp_seeding(points: &Matrix, weights: Option<&[f64]>, first: usize, k: usize, rng: &mut QuarryRng) -> Vec<(usize, f64)> {
    let n = points.rows();
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let mass = |i: usize, d2: f32| if d2 > 0.0 { weights.map_or(1.0, |w| w[i]) * d2 as f64 } else { 0.0 };
    let mut d2 = distance::distances_to(points, points.row(first));
    // How many of the picks each row's d2 has seen.
    let mut fresh_at = vec![1usize; n];
    let mut picked = vec![false; n];
    picked[first] = true;
    let mut tree = SumTree::new((0..n).map(|i| if picked[i] { 0.0 } else { mass(i, d2[i]) }));
    let mut picks = vec![(first, distance::squared_norm(points.row(first)) as f64)];
    // Brings row i's D² up to date with the picks made since it last saw them.
    let refresh = |i: usize, d2: &mut [f32], fresh_at: &mut [usize], picks: &[(usize, f64)]| {
        let row = points.row(i);
        for &(c, _) in &picks[fresh_at[i]..] {
            d2[i] = d2[i].min(distance::squared_distance(row, points.row(c)));
        }
        fresh_at[i] = picks.len();
    };
    while picks.len() < k {
        let chosen = match tree.draw(rng) {
            Some(i) if fresh_at[i] < picks.len() => {
                refresh(i, &mut d2, &mut fresh_at, &picks);
                let (stale, fresh) = (tree.get(i), mass(i, d2[i]));
                tree.set(i, fresh);
                if rng.random::<f64>() * stale >= fresh {
                    continue;
                }
                i
            }
            Some(i) => i,
            None => {
                let r = rng.random_range(0..n - picks.len());
                let i = (0..n).filter(|&i| !picked[i]).nth(r).expect("r < rows left");
                refresh(i, &mut d2, &mut fresh_at, &picks);
                i
            }
        };
        picked[chosen] = true;
        tree.set(chosen, 0.0);
        picks.push((chosen, d2[chosen] as f64));
    }
    picks
}

// ─────────────────────────────── diverse mini-batch ───────────────────────────────

/// Iterations of Lloyd's algorithm in [`weighted_kmeans`] at most (it stops earlier when no
/// assignment changes).
pub const KMEANS_MAX_ITERATIONS: usize = 100;

/// Diverse mini-batch active learning (Zhdanov, arXiv:1901.05954, 2019): keep the
/// `prefilter × k` candidates of highest margin uncertainty (`1 − (p₁ − p₂)`, Zhdanov's β = 10 by
/// default), cluster their embeddings by k-means with k = batch size and the uncertainty as each
/// sample's weight, and pick the candidate nearest each centroid.
///
/// Setting: embeddings in which clusters mean something (for logistic regression, the
/// standardized features). The k-means is seeded by weighted k-means++ from the query's rng and
/// runs at most [`KMEANS_MAX_ITERATIONS`] Lloyd iterations, so a seed fixes the batch. When two
/// centroids share a nearest candidate the later one (in seeding order) takes its nearest free
/// one. The batch is ordered by uncertainty, each pick scored by its margin score.
///
/// Hand-computed (see the tests): two far-apart triangles, in each one point of margin score 1
/// and two of 0.2; the weighted centroid of (0,0), (0,1), (1,0) with weights 0.2, 1, 0.2 is
/// (1/7, 5/7), nearest to (0, 1) — the uncertain corner, not the geometric middle.
#[derive(Debug, Clone, Copy)]
pub struct DiverseMiniBatch {
    prefilter: usize,
}

impl DiverseMiniBatch {
    /// `prefilter ≥ 1`: how many times the batch size survives the uncertainty filter.
    pub fn new(prefilter: usize) -> Result<Self> {
        if prefilter == 0 {
            return Err(Error::param("--prefilter", "must be at least 1"));
        }
        Ok(DiverseMiniBatch { prefilter })
    }
}

impl Strategy for DiverseMiniBatch {
    fn name(&self) -> &str {
        "diverse-mini-batch"
    }
    fn needs(&self) -> Needs {
        Needs { probabilities: true, embeddings: true, ..Needs::NOTHING }
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let name = self.name();
        let probs = ctx.scores.probabilities(name)?;
        let emb = ctx.scores.embeddings(name)?;
        check_rows(name, "probabilities", probs.len(), ctx.candidates.len())?;
        check_rows(name, "embeddings", emb.rows(), ctx.candidates.len())?;
        let margin: Vec<f64> = probs.rows().map(margin_score).collect();
        let kept = rank_rows(&margin, self.prefilter.saturating_mul(k), rng);
        let k = k.min(kept.len());
        let mut picks: Vec<usize> = if k == kept.len() {
            kept
        } else {
            let x = emb.select_rows(&kept);
            let w: Vec<f64> = kept.iter().map(|&i| margin[i]).collect();
            let centroids = weighted_kmeans(&x, &w, k, rng);
            nearest_distinct(&x, &centroids).into_iter().map(|i| kept[i]).collect()
        };
        // Stable: equal uncertainty keeps the (seeded) order of the filter.
        picks.sort_by(|&a, &b| margin[b].total_cmp(&margin[a]));
        Ok(Query { picks: picks.into_iter().map(|i| Pick { id: ctx.candidates[i], score: margin[i] }).collect() })
    }
}

/// Weighted k-means (Lloyd's algorithm): `k` centroids of `x` minimizing Σ wᵢ ‖xᵢ − c(xᵢ)‖².
/// Seeded by weighted k-means++ (the first center drawn ∝ w, uniformly if all weights are 0);
/// stops when no assignment changes or after [`KMEANS_MAX_ITERATIONS`] iterations, ending on
/// a centroid update; a cluster left without weight keeps its centroid. Deterministic given
/// `rng`. Needs `1 ≤ k ≤ x.rows()`.
///
/// Assignments use Hamerly's bounds ("Making k-means even faster", SDM 2010): each row keeps an
/// upper bound on the distance to its centroid and a lower bound on the distance to any other,
/// moved by how far the centroids moved; only rows whose bounds overlap are measured again.
/// The assignments are those of plain Lloyd iterations, at a fraction of the distance work.
pub fn weighted_kmeans(x: &Matrix, w: &[f64], k: usize, rng: &mut QuarryRng) -> Matrix {
    let m = x.rows();
    assert!(k >= 1 && k <= m, "weighted k-means needs 1 ≤ k ≤ rows");
    assert_eq!(w.len(), m, "one weight per row");
    let first = SumTree::new(w.iter().copied()).draw(rng).unwrap_or_else(|| rng.random_range(0..m));
    let seeds: Vec<usize> = kmeans_pp_seeding(x, Some(w), first, k, rng).into_iter().map(|(i, _)| i).collect();
    let mut centroids = x.select_rows(&seeds);
    let near = distance::nearest(x, &distance::Packed::new(&centroids));
    let mut assign: Vec<u32> = near.iter().map(|n| n.index).collect();
    let mut upper: Vec<f32> = near.iter().map(|n| n.d2.sqrt()).collect();
    let mut lower: Vec<f32> = near.iter().map(|n| n.second_d2.sqrt()).collect();
    for _ in 0..KMEANS_MAX_ITERATIONS {
        let shift = update_centroids(x, w, &assign, &mut centroids);
        let max_shift = shift.iter().copied().fold(0f32, f32::max);
        if max_shift == 0.0 {
            return centroids;
        }
        let packed = distance::Packed::new(&centroids);
        // Half the distance from each centroid to its nearest other one: a row closer than
        // that to its own centroid cannot be closer to another.
        let half_gap: Vec<f32> = distance::nearest(&centroids, &packed).iter().map(|n| 0.5 * n.second_d2.sqrt()).collect();
        let recheck: Vec<usize> = (0..m)
            .into_par_iter()
            .zip(upper.par_iter_mut())
            .zip(lower.par_iter_mut())
            .with_min_len(256)
            .filter_map(|((i, up), low)| {
                let a = assign[i] as usize;
                *up += shift[a];
                *low -= max_shift;
                let bound = half_gap[a].max(*low);
                if *up <= bound {
                    return None;
                }
                *up = distance::squared_distance(x.row(i), centroids.row(a)).sqrt();
                (*up > bound).then_some(i)
            })
            .collect();
        let near = distance::nearest(&x.select_rows(&recheck), &packed);
        let mut changed = false;
        for (&i, n) in recheck.iter().zip(&near) {
            changed |= assign[i] != n.index;
            assign[i] = n.index;
            upper[i] = n.d2.sqrt();
            lower[i] = n.second_d2.sqrt();
        }
        if !changed {
            return centroids;
        }
    }
    update_centroids(x, w, &assign, &mut centroids);
    centroids
}

/// Moves every centroid of positive weight to the weighted mean of its rows; returns how far
/// each one moved.
fn update_centroids(x: &Matrix, w: &[f64], assign: &[u32], centroids: &mut Matrix) -> Vec<f32> {
    let (k, dim) = (centroids.rows(), centroids.cols());
    let mut sums = vec![0f64; k * dim];
    let mut mass = vec![0f64; k];
    for (i, &c) in assign.iter().enumerate() {
        let c = c as usize;
        mass[c] += w[i];
        for (s, &v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(x.row(i)) {
            *s += w[i] * v as f64;
        }
    }
    (0..k)
        .map(|c| {
            if !positive(mass[c]) {
                return 0.0;
            }
            let mean: Vec<f32> = sums[c * dim..(c + 1) * dim].iter().map(|s| (s / mass[c]) as f32).collect();
            let moved = distance::squared_distance(&mean, centroids.row(c)).sqrt();
            centroids.row_mut(c).copy_from_slice(&mean);
            moved
        })
        .collect()
}

/// For each centroid in order, the nearest row of `x` not taken by an earlier centroid.
fn nearest_distinct(x: &Matrix, centroids: &Matrix) -> Vec<usize> {
    let nearest = distance::nearest(centroids, &distance::Packed::new(x));
    let mut taken = vec![false; x.rows()];
    let mut out = Vec::with_capacity(centroids.rows());
    for (c, n) in nearest.iter().enumerate() {
        let mut i = n.index as usize;
        if taken[i] {
            let d2 = |j: usize| distance::squared_distance(x.row(j), centroids.row(c));
            i = (0..x.rows()).filter(|&j| !taken[j]).min_by(|&a, &b| d2(a).total_cmp(&d2(b))).expect("fewer centroids than rows");
        }
        taken[i] = true;
        out.push(i);
    }
    out
}

// ─────────────────────────────── two-step composition ───────────────────────────────

/// Two strategies chained (modAL's composable strategies; Zhdanov 2019's pre-filter): `first`
/// keeps `factor × k` candidates, `second` picks the batch of `k` among them, seeing the same
/// scores cut down to the kept rows ([`restrict`]). Its name is `<first>-then-<second>`.
pub struct TwoStep {
    first: Box<dyn Strategy>,
    second: Box<dyn Strategy>,
    factor: usize,
    name: String,
}

impl TwoStep {
    /// `factor ≥ 1`: how many times the batch size the first strategy keeps.
    pub fn new(first: Box<dyn Strategy>, second: Box<dyn Strategy>, factor: usize) -> Result<Self> {
        if factor == 0 {
            return Err(Error::param("--prefilter", "must be at least 1"));
        }
        let name = format!("{}-then-{}", first.name(), second.name());
        Ok(TwoStep { first, second, factor, name })
    }
}

impl Strategy for TwoStep {
    fn name(&self) -> &str {
        &self.name
    }
    fn needs(&self) -> Needs {
        self.first.needs().union(self.second.needs())
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let n = ctx.candidates.len();
        let s = ctx.scores;
        let per_candidate = [
            ("probabilities", s.probabilities.as_ref().map(|p| p.len())),
            ("MC samples", s.mc_samples.as_ref().map(|m| m.len())),
            ("embeddings", s.embeddings.as_ref().map(|m| m.rows())),
            ("gradient embeddings", s.gradient_embeddings.as_ref().map(|m| m.rows())),
        ];
        for (what, rows) in per_candidate {
            if let Some(rows) = rows {
                check_rows(&self.name, what, rows, n)?;
            }
        }
        for (member, p) in s.committee.iter().flatten().enumerate() {
            check_rows(&self.name, &format!("committee member {member}'s probabilities"), p.len(), n)?;
        }
        let kept = self.first.select(ctx, self.factor.saturating_mul(k), rng)?;
        let row_of: HashMap<SampleId, usize> = ctx.candidates.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let rows = kept
            .picks
            .iter()
            .map(|p| row_of.get(&p.id).copied().ok_or_else(|| Error::Other(format!("strategy {}: step {} returned {}, not a candidate", self.name, self.first.name(), p.id))))
            .collect::<Result<Vec<usize>>>()?;
        let scores = restrict_needed(s, &rows, self.second.needs());
        let candidates: Vec<SampleId> = rows.iter().map(|&i| ctx.candidates[i]).collect();
        let what_if = ctx.what_if.map(|inner| RestrictedWhatIf { inner, rows: &rows });
        let sub = QueryContext {
            candidates: &candidates,
            scores: &scores,
            labeled: ctx.labeled,
            labeled_labels: ctx.labeled_labels,
            what_if: what_if.as_ref().map(|w| w as &dyn WhatIf),
        };
        self.second.select(&sub, k, rng)
    }
}

/// [`Scores`] of the candidates at `rows` (in that order): every per-candidate field
/// (probabilities, MC samples, committee, embeddings, gradient embeddings, patches) keeps those rows; the
/// labeled-set fields and the pool embeddings are copied as they are.
///
/// # Panics
/// If a row is out of range of a per-candidate field that is present.
pub fn restrict(scores: &Scores, rows: &[usize]) -> Scores {
    let everything = Needs {
        probabilities: true,
        mc_samples: true,
        committee: true,
        embeddings: true,
        labeled_embeddings: true,
        labeled_probabilities: true,
        pool_embeddings: true,
        gradient_embeddings: true,
        what_if: true,
        patches: true,
        features: true,
        labeled_features: true,
    };
    restrict_needed(scores, rows, everything)
}

/// [`restrict`], copying only the fields in `needs` (the pool embeddings can be large).
fn restrict_needed(scores: &Scores, rows: &[usize], needs: Needs) -> Scores {
    fn keep<T: Clone>(wanted: bool, field: &Option<T>) -> Option<T> {
        field.as_ref().filter(|_| wanted).cloned()
    }
    let mc = |m: &McSamples| {
        let mut data = Vec::with_capacity(m.draws() * rows.len() * m.n_classes());
        for t in 0..m.draws() {
            rows.iter().for_each(|&i| data.extend_from_slice(m.row(t, i)));
        }
        McSamples::new(data, m.draws(), rows.len(), m.n_classes()).expect("rows of valid MC samples are valid")
    };
    Scores {
        probabilities: scores.probabilities.as_ref().filter(|_| needs.probabilities).map(|p| select_probability_rows(p, rows)),
        mc_samples: scores.mc_samples.as_ref().filter(|_| needs.mc_samples).map(mc),
        committee: scores
            .committee
            .as_ref()
            .filter(|_| needs.committee)
            .map(|members| members.iter().map(|p| select_probability_rows(p, rows)).collect()),
        embeddings: scores.embeddings.as_ref().filter(|_| needs.embeddings).map(|m| m.select_rows(rows)),
        labeled_embeddings: keep(needs.labeled_embeddings, &scores.labeled_embeddings),
        labeled_probabilities: keep(needs.labeled_probabilities, &scores.labeled_probabilities),
        pool_embeddings: keep(needs.pool_embeddings, &scores.pool_embeddings),
        gradient_embeddings: scores.gradient_embeddings.as_ref().filter(|_| needs.gradient_embeddings).map(|m| m.select_rows(rows)),
        patches: scores.patches.as_ref().filter(|_| needs.patches).map(mc),
        features: scores.features.as_ref().filter(|_| needs.features).map(|m| m.select_rows(rows)),
        labeled_features: keep(needs.labeled_features, &scores.labeled_features),
    }
}

fn select_probability_rows(p: &Probabilities, rows: &[usize]) -> Probabilities {
    let data = rows.iter().flat_map(|&i| p.row(i)).copied().collect();
    Probabilities::new(data, rows.len(), p.n_classes()).expect("rows of valid probabilities are valid")
}

/// A what-if refit seen through a subset of the candidates: candidate `i` of the subset is
/// candidate `rows[i]` of the original query, and only the subset's rows come back.
struct RestrictedWhatIf<'a> {
    inner: &'a dyn WhatIf,
    rows: &'a [usize],
}

impl WhatIf for RestrictedWhatIf<'_> {
    fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
        let all = self.inner.probabilities_after(self.rows[candidate], label)?;
        Ok(select_probability_rows(&all, self.rows))
    }
}

// ─────────────────────────────── class-balanced margin ───────────────────────────────

/// Margin sampling with per-class caps: candidates in margin order (`1 − (p₁ − p₂)`, highest
/// first), at most `ceil(k / classes)` per predicted class; when the caps leave the batch short,
/// the best skipped candidates fill it regardless of class.
///
/// Setting: imbalanced pools, where plain margin sampling tends to spend a whole batch near one
/// decision boundary. The caps use the predicted (argmax) class, as no label is known yet.
/// Each pick's score is its margin score; capped picks come first, fill-ups after them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassBalancedMargin;

impl Strategy for ClassBalancedMargin {
    fn name(&self) -> &str {
        "class-balanced"
    }
    fn needs(&self) -> Needs {
        Needs::PROBABILITIES
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let probs = ctx.scores.probabilities(self.name())?;
        check_rows(self.name(), "probabilities", probs.len(), ctx.candidates.len())?;
        let margin: Vec<f64> = probs.rows().map(margin_score).collect();
        let predicted = probs.argmax();
        let k = k.min(margin.len());
        let cap = k.div_ceil(probs.n_classes());
        let mut per_class = vec![0usize; probs.n_classes()];
        let (mut picks, mut skipped) = (Vec::with_capacity(k), Vec::new());
        for i in rank_rows(&margin, margin.len(), rng) {
            if picks.len() == k {
                break;
            }
            let c = predicted[i] as usize;
            if per_class[c] < cap {
                per_class[c] += 1;
                picks.push(i);
            } else {
                skipped.push(i);
            }
        }
        let short = k - picks.len();
        picks.extend(skipped.into_iter().take(short));
        Ok(Query { picks: picks.into_iter().map(|i| Pick { id: ctx.candidates[i], score: margin[i] }).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ids, matrix, prob_rows};
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::seeded_rng;



    fn line(xs: &[f32]) -> Matrix {
        Matrix::new(xs.to_vec(), xs.len(), 1).unwrap()
    }

    fn rows_of(q: &Query) -> Vec<usize> {
        q.picks.iter().map(|p| p.id.index()).collect()
    }

    fn distinct(v: &[usize]) -> bool {
        let mut d = v.to_vec();
        d.sort();
        d.dedup();
        d.len() == v.len()
    }

    fn euclid(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt()
    }

    fn coreset_ctx<'a>(cands: &'a [SampleId], labeled: &'a [SampleId], scores: &'a Scores) -> QueryContext<'a> {
        QueryContext { candidates: cands, scores, labeled, labeled_labels: &[], what_if: None }
    }

    // ── kernels ──

    #[test]
    fn kernels_match_naive_sums_and_identical_rows_are_at_distance_zero() {
        let mut rng = seeded_rng(1, 0);
        for dim in [1usize, 7, 8, 13, 64, 67] {
            let random = |rows: usize, rng: &mut QuarryRng| Matrix::new((0..rows * dim).map(|_| rng.random_range(-3.0..3.0)).collect(), rows, dim).unwrap();
            let a = random(10, &mut rng);
            let mut b = random(20, &mut rng);
            b.push_row(a.row(6));
            let near = distance::nearest(&a, &distance::Packed::new(&b));
            for (i, near) in near.iter().enumerate() {
                let mut naive: Vec<(f64, usize)> = (0..b.rows()).map(|j| (euclid(a.row(i), b.row(j)).powi(2), j)).collect();
                naive.sort_by(|x, y| x.0.total_cmp(&y.0));
                let close = |got: f32, want: f64| (got as f64 - want).abs() < 1e-3 * (1.0 + want);
                assert!(close(near.d2, naive[0].0) && close(near.second_d2, naive[1].0), "dim {dim} row {i}");
                assert_eq!(near.index as usize, naive[0].1);
                assert!(close(distance::squared_distance(a.row(i), b.row(3)), euclid(a.row(i), b.row(3)).powi(2)));
            }
            assert_eq!((near[6].d2, near[6].index), (0.0, 20), "a row's distance to its copy is exactly 0 (dim {dim})");
            let d = distance::dot(a.row(0), b.row(1));
            let naive: f64 = a.row(0).iter().zip(b.row(1)).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            assert!((d as f64 - naive).abs() < 1e-4 * (1.0 + naive.abs()));
        }
        let none = distance::nearest(&line(&[1.0]), &distance::Packed::new(&Matrix::zeros(0, 1)));
        assert_eq!((none[0].d2, none[0].index), (f32::INFINITY, u32::MAX));
    }

    #[test]
    fn sum_tree_draws_in_proportion_and_never_a_zero_mass() {
        let mut rng = seeded_rng(0, 0);
        let mut tree = SumTree::new([0.0, 2.0, 0.0].into_iter());
        for _ in 0..200 {
            assert_eq!(tree.draw(&mut rng), Some(1));
        }
        tree.set(1, 0.0);
        assert_eq!(tree.draw(&mut rng), None);
        assert_eq!(SumTree::new(std::iter::empty()).draw(&mut rng), None);
        let tree = SumTree::new([1.0, 0.0, 3.0, 4.0, 0.0].into_iter());
        let mut counts = [0usize; 5];
        (0..8000).for_each(|_| counts[tree.draw(&mut rng).unwrap()] += 1);
        for (c, want) in counts.iter().zip([1.0 / 8.0, 0.0, 3.0 / 8.0, 0.5, 0.0]) {
            assert!((*c as f64 / 8000.0 - want).abs() < 0.02, "{counts:?}");
        }
    }

    // ── core-set ──

    /// The doc example: labeled {0}, candidates {1, 2, 5, 9, 10}, k = 3 → 10, 5, 2.
    #[test]
    fn coreset_hand_computed_on_a_line() {
        let scores = Scores {
            embeddings: Some(line(&[1.0, 2.0, 5.0, 9.0, 10.0])),
            labeled_embeddings: Some(line(&[0.0])),
            ..Default::default()
        };
        let (cands, labeled) = (ids(5), [SampleId(99)]);
        let q = KCenterGreedy.select(&coreset_ctx(&cands, &labeled, &scores), 3, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![4, 2, 1]);
        let radii: Vec<f64> = q.picks.iter().map(|p| p.score).collect();
        assert_eq!(radii, vec![10.0, 5.0, 2.0]);
        // Asking for every candidate returns every candidate once.
        let all = KCenterGreedy.select(&coreset_ctx(&cands, &labeled, &scores), 10, &mut seeded_rng(0, 0)).unwrap();
        assert!(all.len() == 5 && distinct(&rows_of(&all)));
    }

    #[test]
    fn coreset_without_labels_starts_from_a_seeded_random_candidate() {
        let scores = Scores { embeddings: Some(line(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])), labeled_embeddings: Some(Matrix::zeros(0, 1)), ..Default::default() };
        let cands = ids(8);
        let run = |seed| KCenterGreedy.select(&coreset_ctx(&cands, &[], &scores), 2, &mut seeded_rng(seed, 0)).unwrap();
        let firsts: std::collections::HashSet<usize> = (0..30).map(|s| rows_of(&run(s))[0]).collect();
        assert!(firsts.len() > 3, "the start should vary with the seed: {firsts:?}");
        assert_eq!(run(5), run(5));
        // The second pick is the end of the line farthest from the first.
        for s in 0..10 {
            let r = rows_of(&run(s));
            assert_eq!(r[1], if r[0] < 4 { 7 } else { 0 }, "{r:?}");
        }
    }

    #[test]
    fn coreset_bad_inputs_are_errors_naming_it() {
        let scores = Scores { embeddings: Some(line(&[1.0, 2.0])), labeled_embeddings: Some(line(&[0.0])), ..Default::default() };
        let labeled = [SampleId(9)];
        let three = ids(3);
        let e = KCenterGreedy.select(&coreset_ctx(&three, &labeled, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset") && e.to_string().contains("embeddings"), "{e}");
        let two = ids(2);
        let e = KCenterGreedy.select(&coreset_ctx(&two, &[], &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset") && e.to_string().contains("labeled"), "{e}");
        let wide = Scores { labeled_embeddings: Some(matrix(&[&[0.0, 1.0]])), ..scores.clone() };
        let e = KCenterGreedy.select(&coreset_ctx(&two, &labeled, &wide), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset") && e.to_string().contains("columns"), "{e}");
        let e = KCenterGreedy.select(&QueryContext::new(&two, &Scores::default()), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset"), "{e}");
    }

    fn points(n: usize, dim: usize) -> impl proptest::strategy::Strategy<Value = Vec<f32>> {
        proptest::collection::vec(-5.0f32..5.0, n * dim)
    }

    proptest! {
        /// Never picks a sample twice; each pick is the farthest candidate from labeled ∪ picked;
        /// the covering radius never grows from pick to pick.
        #[test]
        fn coreset_picks_the_farthest_and_the_radius_never_grows(
            cand in points(15, 3), lab in points(4, 3), n_lab in 0usize..4, k in 1usize..15, seed in 0u64..100,
        ) {
            let emb = Matrix::new(cand, 15, 3).unwrap();
            let labeled = Matrix::new(lab[..n_lab * 3].to_vec(), n_lab, 3).unwrap();
            let scores = Scores { embeddings: Some(emb.clone()), labeled_embeddings: Some(labeled.clone()), ..Default::default() };
            let (cands, lab_ids) = (ids(15), ids(n_lab));
            let q = KCenterGreedy.select(&coreset_ctx(&cands, &lab_ids, &scores), k, &mut seeded_rng(seed, 0)).unwrap();
            let picks = rows_of(&q);
            prop_assert_eq!(picks.len(), k);
            prop_assert!(distinct(&picks));
            let mut centers: Vec<Vec<f32>> = (0..n_lab).map(|i| labeled.row(i).to_vec()).collect();
            let mut last_radius = f64::INFINITY;
            for (step, &p) in picks.iter().enumerate() {
                let dist = |i: usize| centers.iter().map(|c| euclid(emb.row(i), c)).fold(f64::INFINITY, f64::min);
                let radius = (0..15).map(dist).fold(0.0, f64::max);
                prop_assert!(radius <= last_radius + 1e-9);
                last_radius = radius;
                if !(n_lab == 0 && step == 0) {
                    prop_assert!((dist(p) - radius).abs() < 1e-3 * (1.0 + radius), "pick {} at {} but radius {}", p, dist(p), radius);
                    prop_assert!((q.picks[step].score - radius).abs() < 1e-3 * (1.0 + radius));
                }
                centers.push(emb.row(p).to_vec());
            }
        }
    }

    // ── BADGE ──

    fn badge(grads: Matrix, k: usize, seed: u64) -> Vec<usize> {
        let cands = ids(grads.rows());
        let scores = Scores { gradient_embeddings: Some(grads), ..Default::default() };
        rows_of(&Badge.select(&QueryContext::new(&cands, &scores), k, &mut seeded_rng(seed, 0)).unwrap())
    }

    /// The doc example: (3, 4), (3, 4), (0, 0) → a copy of (3, 4), then (0, 0), then the other copy.
    #[test]
    fn badge_hand_computed_with_a_duplicate() {
        for seed in 0..50 {
            let picks = badge(matrix(&[&[3.0, 4.0], &[3.0, 4.0], &[0.0, 0.0]]), 3, seed);
            assert!(picks[0] < 2 && picks[1] == 2 && picks[2] == 1 - picks[0], "{picks:?}");
        }
        let cands = ids(3);
        let scores = Scores { gradient_embeddings: Some(matrix(&[&[3.0, 4.0], &[0.0, 0.0], &[0.0, 1.0]])), ..Default::default() };
        let q = Badge.select(&QueryContext::new(&cands, &scores), 2, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(q.picks[0].score, 25.0);
        assert!(q.picks[1].score == 25.0 || q.picks[1].score == 18.0);
    }

    /// The first center is (10, 0) (norm² 100 against 82, 90, 64); the D² of (9, 1), (9, 3),
    /// (8, 0) to it are 2, 10, 4, so the second pick follows 2/16, 10/16, 4/16.
    #[test]
    fn badge_draws_proportional_to_squared_distance() {
        let grads = matrix(&[&[10.0, 0.0], &[9.0, 1.0], &[9.0, 3.0], &[8.0, 0.0]]);
        let mut counts = [0usize; 4];
        let trials = 4000;
        for seed in 0..trials {
            let p = badge(grads.clone(), 2, seed);
            assert_eq!(p[0], 0, "largest norm first");
            counts[p[1]] += 1;
        }
        let expect = [0.0, 2.0 / 16.0, 10.0 / 16.0, 4.0 / 16.0];
        for (c, e) in counts.iter().zip(expect) {
            assert!((*c as f64 / trials as f64 - e).abs() < 0.03, "{counts:?}");
        }
    }

    #[test]
    fn badge_bad_inputs_are_errors_naming_it() {
        let cands = ids(3);
        let scores = Scores { gradient_embeddings: Some(Matrix::zeros(2, 4)), ..Default::default() };
        let e = Badge.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("badge"), "{e}");
        let e = Badge.select(&QueryContext::new(&cands, &Scores::default()), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("badge"), "{e}");
    }

    proptest! {
        /// Distinct picks, the longest gradient first, never a zero-D² row while a positive one
        /// remains, reproducible from the seed.
        #[test]
        fn badge_picks_are_distinct_and_seeded(
            g in proptest::collection::vec(-2i8..3, 24 * 2), k in 1usize..24, seed in 0u64..50,
        ) {
            // Small integers make duplicates (D² = 0) likely.
            let grads = Matrix::new(g.iter().map(|&v| v as f32).collect(), 24, 2).unwrap();
            let picks = badge(grads.clone(), k, seed);
            prop_assert_eq!(picks.len(), k);
            prop_assert!(distinct(&picks));
            prop_assert_eq!(&picks, &badge(grads.clone(), k, seed));
            let norm = |i: usize| euclid(grads.row(i), &[0.0, 0.0]);
            let max_norm = (0..24).map(norm).fold(0.0, f64::max);
            prop_assert!((norm(picks[0]) - max_norm).abs() < 1e-9);
            for step in 1..k {
                let d = |i: usize| picks[..step].iter().map(|&c| euclid(grads.row(i), grads.row(c))).fold(f64::INFINITY, f64::min);
                let any_positive = (0..24).any(|i| !picks[..step].contains(&i) && d(i) > 0.0);
                prop_assert!(!any_positive || d(picks[step]) > 0.0, "step {} drew a zero-D² row", step);
            }
        }
    }

    // ── diverse mini-batch ──

    /// The doc example: two triangles, each with one point of margin score 1 (probabilities
    /// (0.5, 0.5)) and two of 0.2 ((0.9, 0.1)): the picks are the two uncertain corners.
    #[test]
    fn diverse_mini_batch_hand_computed_two_triangles() {
        let emb = matrix(&[&[0.0, 0.0], &[0.0, 1.0], &[1.0, 0.0], &[10.0, 10.0], &[10.0, 11.0], &[11.0, 10.0]]);
        let sure: &[f32] = &[0.9, 0.1];
        let unsure: &[f32] = &[0.5, 0.5];
        let probs = Probabilities::from_rows(&[sure, unsure, sure, sure, sure, unsure]).unwrap();
        let scores = Scores { probabilities: Some(probs), embeddings: Some(emb), ..Default::default() };
        let cands = ids(6);
        for seed in 0..20 {
            let q = DiverseMiniBatch::new(10).unwrap().select(&QueryContext::new(&cands, &scores), 2, &mut seeded_rng(seed, 0)).unwrap();
            let mut picks = rows_of(&q);
            picks.sort();
            assert_eq!(picks, vec![1, 5], "seed {seed}");
            assert!(q.picks.iter().all(|p| (p.score - 1.0).abs() < 1e-6));
        }
        // With prefilter 1 only the two most uncertain survive the filter: the same two.
        let q = DiverseMiniBatch::new(1).unwrap().select(&QueryContext::new(&cands, &scores), 2, &mut seeded_rng(0, 0)).unwrap();
        let mut picks = rows_of(&q);
        picks.sort();
        assert_eq!(picks, vec![1, 5]);
    }

    #[test]
    fn weighted_kmeans_finds_weighted_means() {
        let x = line(&[0.0, 1.0, 2.0, 100.0, 104.0]);
        let c = weighted_kmeans(&x, &[1.0, 1.0, 2.0, 3.0, 1.0], 2, &mut seeded_rng(0, 0));
        let mut v = c.as_slice().to_vec();
        v.sort_by(f32::total_cmp);
        assert!((v[0] - 1.25).abs() < 1e-5 && (v[1] - 101.0).abs() < 1e-4, "{v:?}");
    }

    /// Plain Lloyd iterations from the same seeding, every distance measured every time.
    fn naive_weighted_kmeans(x: &Matrix, w: &[f64], k: usize, rng: &mut QuarryRng) -> Matrix {
        let first = SumTree::new(w.iter().copied()).draw(rng).unwrap_or_else(|| rng.random_range(0..x.rows()));
        let seeds: Vec<usize> = kmeans_pp_seeding(x, Some(w), first, k, rng).into_iter().map(|(i, _)| i).collect();
        let mut centroids = x.select_rows(&seeds);
        let assign_all = |c: &Matrix| -> Vec<u32> {
            (0..x.rows())
                .map(|i| (0..k).min_by(|&a, &b| euclid(x.row(i), c.row(a)).total_cmp(&euclid(x.row(i), c.row(b)))).unwrap() as u32)
                .collect()
        };
        let mut assign = assign_all(&centroids);
        for _ in 0..KMEANS_MAX_ITERATIONS {
            if update_centroids(x, w, &assign, &mut centroids).iter().all(|&s| s == 0.0) {
                return centroids;
            }
            let next = assign_all(&centroids);
            if next == assign {
                return centroids;
            }
            assign = next;
        }
        update_centroids(x, w, &assign, &mut centroids);
        centroids
    }

    proptest! {
        /// Hamerly's bounds skip distance work, never change the result.
        #[test]
        fn weighted_kmeans_equals_plain_lloyd(
            e in points(40, 2), w in proptest::collection::vec(0.0f64..1.0, 40), k in 1usize..9, seed in 0u64..50,
        ) {
            let x = Matrix::new(e, 40, 2).unwrap();
            let fast = weighted_kmeans(&x, &w, k, &mut seeded_rng(seed, 0));
            let slow = naive_weighted_kmeans(&x, &w, k, &mut seeded_rng(seed, 0));
            for (a, b) in fast.as_slice().iter().zip(slow.as_slice()) {
                prop_assert!((a - b).abs() < 1e-4, "{:?} vs {:?}", fast, slow);
            }
        }
    }

    /// Line 0, 1, 3, 10, 11 seeded from 0: the second draw follows D² = 1, 9, 100, 121; after
    /// 10 the third follows D² to {0, 10}: 1 → 1, 3 → 9, 11 → 1, i.e. 1/11, 9/11, 1/11 — where
    /// the lazy draw must notice that 11's stale D² of 121 has become 1.
    #[test]
    fn kmeans_pp_later_draws_follow_the_updated_distances() {
        let x = line(&[0.0, 1.0, 3.0, 10.0, 11.0]);
        let (mut second, mut third) = ([0usize; 5], [0usize; 5]);
        for seed in 0..6000 {
            let picks = kmeans_pp_seeding(&x, None, 0, 3, &mut seeded_rng(seed, 3));
            second[picks[1].0] += 1;
            if picks[1].0 == 3 {
                third[picks[2].0] += 1;
                let want = [0.0, 1.0, 9.0, 0.0, 1.0][picks[2].0];
                assert_eq!(picks[2].1, want, "the score is the fresh D²");
            }
        }
        let close = |counts: &[usize; 5], want: [f64; 5]| {
            let total: usize = counts.iter().sum();
            counts.iter().zip(want).all(|(&c, w)| (c as f64 / total as f64 - w).abs() < 0.03)
        };
        assert!(close(&second, [0.0, 1.0 / 231.0, 9.0 / 231.0, 100.0 / 231.0, 121.0 / 231.0]), "{second:?}");
        assert!(close(&third, [0.0, 1.0 / 11.0, 9.0 / 11.0, 0.0, 1.0 / 11.0]), "{third:?}");
    }

    #[test]
    fn diverse_mini_batch_bad_inputs_are_errors_naming_it() {
        let cands = ids(3);
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.5, 0.5], &[0.5, 0.5]]).unwrap();
        let scores = Scores { probabilities: Some(probs), embeddings: Some(Matrix::zeros(2, 2)), ..Default::default() };
        let e = DiverseMiniBatch::new(10).unwrap().select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("diverse-mini-batch"), "{e}");
        assert!(DiverseMiniBatch::new(0).is_err());
    }


    proptest! {
        /// Distinct picks, all among the prefilter × k most uncertain, reproducible from the seed,
        /// ordered by uncertainty.
        #[test]
        fn diverse_mini_batch_picks_among_the_most_uncertain(
            rows in prob_rows(30, 3), e in points(30, 2), k in 1usize..8, prefilter in 1usize..4, seed in 0u64..50,
        ) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            let scores = Scores {
                probabilities: Some(Probabilities::from_rows(&refs).unwrap()),
                embeddings: Some(Matrix::new(e, 30, 2).unwrap()),
                ..Default::default()
            };
            let cands = ids(30);
            let s = DiverseMiniBatch::new(prefilter).unwrap();
            let q = s.select(&QueryContext::new(&cands, &scores), k, &mut seeded_rng(seed, 0)).unwrap();
            let picks = rows_of(&q);
            prop_assert_eq!(picks.len(), k);
            prop_assert!(distinct(&picks));
            prop_assert_eq!(&q, &s.select(&QueryContext::new(&cands, &scores), k, &mut seeded_rng(seed, 0)).unwrap());
            let mut m: Vec<f64> = refs.iter().map(|r| margin_score(r)).collect();
            m.sort_by(|a, b| b.total_cmp(a));
            let threshold = m[(prefilter * k).min(30) - 1];
            for p in &q.picks {
                prop_assert!(p.score >= threshold - 1e-12);
            }
            for w in q.picks.windows(2) {
                prop_assert!(w[0].score >= w[1].score);
            }
        }
    }

    // ── two-step ──

    fn two_step_scores() -> Scores {
        // Margin scores 1 − (p₁ − p₂): 0.2, 1.0, 0.9, 0.95, 0.4, 0.85.
        let rows: [&[f32]; 6] = [&[0.9, 0.1], &[0.5, 0.5], &[0.55, 0.45], &[0.525, 0.475], &[0.8, 0.2], &[0.575, 0.425]];
        Scores {
            probabilities: Some(Probabilities::from_rows(&rows).unwrap()),
            embeddings: Some(line(&[0.0, 1.0, 2.0, 3.0, 4.0, 9.0])),
            labeled_embeddings: Some(line(&[0.0])),
            ..Default::default()
        }
    }

    /// Margin keeps the 4 most uncertain (rows 1, 3, 2, 5 at 1, 3, 2, 9); k-center from the labeled
    /// 0 picks 9 (row 5), then 3 (row 3: 3 from 0, 6 from 9, beating 2 and 1).
    #[test]
    fn margin_then_coreset_hand_computed() {
        let s = by_name_entry("margin-then-coreset", 2);
        assert_eq!(s.name(), "margin-then-coreset");
        assert_eq!(s.needs(), Needs { probabilities: true, embeddings: true, labeled_embeddings: true, ..Needs::NOTHING });
        let scores = two_step_scores();
        let (cands, labeled) = (ids(6), [SampleId(40)]);
        let q = s.select(&coreset_ctx(&cands, &labeled, &scores), 2, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![5, 3]);
        assert_eq!(q.picks[0].score, 9.0);
    }

    fn by_name_entry(name: &str, prefilter: usize) -> Box<dyn Strategy> {
        crate::by_name_with(name, &crate::StrategyOptions { prefilter, ..Default::default() }).unwrap()
    }

    #[test]
    fn two_step_bad_inputs_are_errors_naming_it() {
        let mut scores = two_step_scores();
        scores.embeddings = Some(line(&[0.0, 1.0]));
        let (cands, labeled) = (ids(6), [SampleId(40)]);
        let e = by_name_entry("two-step", 2).select(&coreset_ctx(&cands, &labeled, &scores), 2, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("margin-then-coreset") && e.to_string().contains("embeddings"), "{e}");
    }

    #[test]
    fn restrict_keeps_the_rows_of_every_per_candidate_field() {
        let p = |rows: &[&[f32]]| Probabilities::from_rows(rows).unwrap();
        let scores = Scores {
            probabilities: Some(p(&[&[1.0, 0.0], &[0.5, 0.5], &[0.0, 1.0]])),
            mc_samples: Some(McSamples::from_draws(&[p(&[&[1.0, 0.0], &[0.5, 0.5], &[0.0, 1.0]]), p(&[&[0.9, 0.1], &[0.4, 0.6], &[0.2, 0.8]])]).unwrap()),
            committee: Some(vec![p(&[&[1.0, 0.0], &[0.3, 0.7], &[0.0, 1.0]])]),
            embeddings: Some(line(&[10.0, 11.0, 12.0])),
            labeled_embeddings: Some(line(&[7.0])),
            labeled_probabilities: Some(p(&[&[0.6, 0.4]])),
            pool_embeddings: Some(line(&[10.0, 11.0, 12.0, 13.0])),
            gradient_embeddings: Some(matrix(&[&[1.0, 2.0], &[3.0, 4.0], &[5.0, 6.0]])),
            patches: Some(McSamples::from_draws(&[p(&[&[1.0, 0.0], &[0.5, 0.5], &[0.0, 1.0]])]).unwrap()),
            features: Some(line(&[20.0, 21.0, 22.0])),
            labeled_features: Some(line(&[8.0])),
        };
        let r = restrict(&scores, &[2, 0]);
        assert_eq!(r.features.as_ref().unwrap().row(0), &[22.0]);
        assert_eq!(r.labeled_features.as_ref().unwrap().row(0), &[8.0]);
        assert_eq!(r.patches.as_ref().unwrap().row(0, 0), &[0.0, 1.0]);
        assert_eq!(r.probabilities.unwrap().as_slice(), &[0.0, 1.0, 1.0, 0.0]);
        let mc = r.mc_samples.unwrap();
        assert_eq!((mc.draws(), mc.len()), (2, 2));
        assert_eq!(mc.row(1, 0), &[0.2, 0.8]);
        assert_eq!(mc.row(1, 1), &[0.9, 0.1]);
        assert_eq!(r.committee.unwrap()[0].as_slice(), &[0.0, 1.0, 1.0, 0.0]);
        assert_eq!(r.embeddings.unwrap().as_slice(), &[12.0, 10.0]);
        assert_eq!(r.gradient_embeddings.unwrap().as_slice(), &[5.0, 6.0, 1.0, 2.0]);
        assert_eq!(r.labeled_embeddings, scores.labeled_embeddings);
        assert_eq!(r.labeled_probabilities, scores.labeled_probabilities);
        assert_eq!(r.pool_embeddings, scores.pool_embeddings);
        let none = restrict(&Scores::default(), &[0]);
        assert!(none.probabilities.is_none() && none.embeddings.is_none());
    }

    /// A what-if whose answer says which candidate and label it was asked about.
    struct Echo;
    impl WhatIf for Echo {
        fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
            let rows: Vec<Vec<f32>> = (0..4).map(|i| if i == candidate && label == 1 { vec![0.0, 1.0] } else { vec![1.0, 0.0] }).collect();
            Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>())
        }
    }

    #[test]
    fn restricted_what_if_maps_candidates_and_rows() {
        let rows = [3, 1];
        let w = RestrictedWhatIf { inner: &Echo, rows: &rows };
        let p = w.probabilities_after(0, 1).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.row(0), &[0.0, 1.0], "subset candidate 0 is original candidate 3");
        assert_eq!(p.row(1), &[1.0, 0.0]);
    }

    proptest! {
        /// The batch is among the first step's picks and is what the second step picks from them.
        #[test]
        fn two_step_is_the_second_strategy_on_the_first_ones_picks(
            rows in prob_rows(20, 3), e in points(20, 2), k in 1usize..6, factor in 1usize..4, seed in 0u64..50,
        ) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            let scores = Scores {
                probabilities: Some(Probabilities::from_rows(&refs).unwrap()),
                embeddings: Some(Matrix::new(e, 20, 2).unwrap()),
                labeled_embeddings: Some(Matrix::zeros(0, 2)),
                ..Default::default()
            };
            let cands: Vec<SampleId> = (0..20).map(|i| SampleId(100 + i)).collect();
            let ctx = QueryContext::new(&cands, &scores);
            let s = TwoStep::new(Box::new(crate::MarginSampling), Box::new(KCenterGreedy), factor).unwrap();
            let q = s.select(&ctx, k, &mut seeded_rng(seed, 0)).unwrap();
            let mut rng = seeded_rng(seed, 0);
            let first = crate::MarginSampling.select(&ctx, factor * k, &mut rng).unwrap();
            let kept: Vec<usize> = first.picks.iter().map(|p| (p.id.0 - 100) as usize).collect();
            let sub_scores = restrict(&scores, &kept);
            let sub_cands: Vec<SampleId> = kept.iter().map(|&i| cands[i]).collect();
            let expected = KCenterGreedy.select(&QueryContext::new(&sub_cands, &sub_scores), k, &mut rng).unwrap();
            prop_assert_eq!(q.len(), k.min(20));
            prop_assert_eq!(q, expected);
        }
    }

    // ── class-balanced ──

    fn balanced(rows: &[&[f32]], k: usize) -> Vec<usize> {
        let cands = ids(rows.len());
        let scores = Scores { probabilities: Some(Probabilities::from_rows(rows).unwrap()), ..Default::default() };
        rows_of(&ClassBalancedMargin.select(&QueryContext::new(&cands, &scores), k, &mut seeded_rng(0, 0)).unwrap())
    }

    /// Margins: rows 0–2 predict class 0 with scores 1.0, 0.9, 0.8; row 3 class 1 (0.4); row 4
    /// class 2 (0.2). k = 3, cap 1: row 0, then rows 3 and 4 instead of rows 1 and 2. With every
    /// row predicting class 0, the caps leave the batch short and the next best fill it.
    #[test]
    fn class_balanced_hand_computed() {
        let rows: &[&[f32]] = &[&[0.5, 0.5, 0.0], &[0.55, 0.45, 0.0], &[0.6, 0.4, 0.0], &[0.2, 0.7, 0.1], &[0.05, 0.05, 0.9]];
        assert_eq!(balanced(rows, 3), vec![0, 3, 4]);
        // k = 4, cap 2: rows 0 and 1 for class 0, then 3 and 4.
        assert_eq!(balanced(rows, 4), vec![0, 1, 3, 4]);
        let same: &[&[f32]] = &[&[0.5, 0.5, 0.0], &[0.55, 0.45, 0.0], &[0.6, 0.4, 0.0], &[0.9, 0.1, 0.0]];
        assert_eq!(balanced(same, 3), vec![0, 1, 2]);
        let cands = ids(2);
        let scores = Scores { probabilities: Some(Probabilities::from_rows(&[&[0.5, 0.5]]).unwrap()), ..Default::default() };
        let e = ClassBalancedMargin.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("class-balanced"), "{e}");
    }

    proptest! {
        /// No predicted class exceeds ceil(k / classes) when the other classes have enough
        /// candidates to fill the batch; the batch is always full and distinct.
        #[test]
        fn class_balanced_respects_the_caps(rows in prob_rows(25, 4), k in 1usize..25) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            let picks = balanced(&refs, k);
            prop_assert_eq!(picks.len(), k);
            prop_assert!(distinct(&picks));
            let pred = Probabilities::from_rows(&refs).unwrap().argmax();
            let cap = k.div_ceil(4);
            let mut available = [0usize; 4];
            pred.iter().for_each(|&c| available[c as usize] += 1);
            if available.iter().map(|&a| a.min(cap)).sum::<usize>() >= k {
                let mut taken = [0usize; 4];
                picks.iter().for_each(|&i| taken[pred[i] as usize] += 1);
                prop_assert!(taken.iter().all(|&t| t <= cap), "{:?} cap {}", taken, cap);
            }
        }
    }
}
