//! BADGE (Ash et al. 2020) and the k-means++ seeding it is built on, also used by weighted k-means.

use super::sum_tree::SumTree;
use super::{check_rows, distance, tie_keys};
use quarry_core::{Matrix, Needs, Pick, QuarryRng, Query, QueryContext, Result, ScoreKind, Strategy};
use rand::Rng;

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
        Needs::of(&[ScoreKind::GradientEmbeddings])
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

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::testing::{distinct, euclid, line, rows_of};
    use crate::test_support::{ids, matrix};
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{Scores, seeded_rng};

    fn badge(grads: Matrix, k: usize, seed: u64) -> Vec<usize> {
        let cands = ids(grads.rows());
        let scores = Scores::default().with(ScoreKind::GradientEmbeddings, grads);
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
        let scores = Scores::default().with(ScoreKind::GradientEmbeddings, matrix(&[&[3.0, 4.0], &[0.0, 0.0], &[0.0, 1.0]]));
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
        let scores = Scores::default().with(ScoreKind::GradientEmbeddings, Matrix::zeros(2, 4));
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
}
