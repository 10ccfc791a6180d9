//! Diverse mini-batch (Zhdanov 2019): a margin pre-filter, weighted k-means (Hamerly's bounds) on
//! the embeddings, the candidate nearest each centroid.

use super::sum_tree::SumTree;
use super::{check_rows, distance, kmeans_pp_seeding, positive, rank_rows};
use crate::uncertainty::margin_score;
use quarry_core::{Error, Matrix, Needs, Pick, QuarryRng, Query, QueryContext, Result, ScoreKind, Strategy};
use rand::Rng;
use rayon::prelude::*;

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
            return Err(Error::param("prefilter", "must be at least 1"));
        }
        Ok(DiverseMiniBatch { prefilter })
    }
}

impl Strategy for DiverseMiniBatch {
    fn name(&self) -> &str {
        "diverse-mini-batch"
    }
    fn needs(&self) -> Needs {
        Needs::of(&[ScoreKind::Probabilities, ScoreKind::Embeddings])
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

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::testing::{distinct, euclid, line, points, rows_of};
    use crate::test_support::{ids, matrix, prob_rows};
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{Probabilities, Scores, seeded_rng};

    /// The doc example: two triangles, each with one point of margin score 1 (probabilities
    /// (0.5, 0.5)) and two of 0.2 ((0.9, 0.1)): the picks are the two uncertain corners.
    #[test]
    fn diverse_mini_batch_hand_computed_two_triangles() {
        let emb = matrix(&[&[0.0, 0.0], &[0.0, 1.0], &[1.0, 0.0], &[10.0, 10.0], &[10.0, 11.0], &[11.0, 10.0]]);
        let sure: &[f32] = &[0.9, 0.1];
        let unsure: &[f32] = &[0.5, 0.5];
        let probs = Probabilities::from_rows(&[sure, unsure, sure, sure, sure, unsure]).unwrap();
        let scores = Scores::default().with(ScoreKind::Probabilities, probs).with(ScoreKind::Embeddings, emb);
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

    #[test]
    fn diverse_mini_batch_bad_inputs_are_errors_naming_it() {
        let cands = ids(3);
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.5, 0.5], &[0.5, 0.5]]).unwrap();
        let scores = Scores::default().with(ScoreKind::Probabilities, probs).with(ScoreKind::Embeddings, Matrix::zeros(2, 2));
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
            let scores = Scores::default()
                .with(ScoreKind::Probabilities, Probabilities::from_rows(&refs).unwrap())
                .with(ScoreKind::Embeddings, Matrix::new(e, 30, 2).unwrap());
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
}
