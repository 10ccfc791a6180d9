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
//!
//! One job per file: [`distance`] (the Euclidean kernels, shared with the density family),
//! `sum_tree` (proportional draws), `coreset`, `badge` (with k-means++ seeding),
//! `diverse_mini_batch` (with weighted k-means), `two_step` and `class_balanced`; the checks
//! and the lazy-greedy heap entry they share are here.

mod badge;
mod class_balanced;
mod coreset;
pub(crate) mod distance;
mod diverse_mini_batch;
mod sum_tree;
#[cfg(test)]
mod testing;
mod two_step;

pub use badge::{Badge, kmeans_pp_seeding};
pub use class_balanced::ClassBalancedMargin;
pub use coreset::{KCenterGreedy, k_center_greedy};
pub use diverse_mini_batch::{DiverseMiniBatch, KMEANS_MAX_ITERATIONS, weighted_kmeans};
pub use two_step::{TwoStep, restrict};

use crate::select::top_k;
use quarry_core::{Error, QuarryRng, Result, SampleId};
use rand::Rng;

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

