//! Core-set selection: greedy k-center on the embeddings (Sener & Savarese 2018).

use super::{Stale, check_dim, check_rows, distance, tie_keys};
use quarry_core::{Error, Matrix, Needs, Pick, QuarryRng, Query, QueryContext, Result, ScoreKind, Strategy};
use rand::Rng;
use std::collections::BinaryHeap;

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
        Needs::of(&[ScoreKind::Embeddings, ScoreKind::LabeledEmbeddings])
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

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::testing::{coreset_ctx, distinct, euclid, line, points, rows_of};
    use crate::test_support::{ids, matrix};
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{SampleId, Scores, seeded_rng};

    /// The doc example: labeled {0}, candidates {1, 2, 5, 9, 10}, k = 3 → 10, 5, 2.
    #[test]
    fn coreset_hand_computed_on_a_line() {
        let scores = Scores::default()
            .with(ScoreKind::Embeddings, line(&[1.0, 2.0, 5.0, 9.0, 10.0]))
            .with(ScoreKind::LabeledEmbeddings, line(&[0.0]));
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
        let scores = Scores::default()
            .with(ScoreKind::Embeddings, line(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]))
            .with(ScoreKind::LabeledEmbeddings, Matrix::zeros(0, 1));
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
        let scores = Scores::default().with(ScoreKind::Embeddings, line(&[1.0, 2.0])).with(ScoreKind::LabeledEmbeddings, line(&[0.0]));
        let labeled = [SampleId(9)];
        let three = ids(3);
        let e = KCenterGreedy.select(&coreset_ctx(&three, &labeled, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset") && e.to_string().contains("embeddings"), "{e}");
        let two = ids(2);
        let e = KCenterGreedy.select(&coreset_ctx(&two, &[], &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset") && e.to_string().contains("labeled"), "{e}");
        let wide = scores.clone().with(ScoreKind::LabeledEmbeddings, matrix(&[&[0.0, 1.0]]));
        let e = KCenterGreedy.select(&coreset_ctx(&two, &labeled, &wide), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset") && e.to_string().contains("columns"), "{e}");
        let e = KCenterGreedy.select(&QueryContext::new(&two, &Scores::default()), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("coreset"), "{e}");
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
            let scores = Scores::default().with(ScoreKind::Embeddings, emb.clone()).with(ScoreKind::LabeledEmbeddings, labeled.clone());
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
}
