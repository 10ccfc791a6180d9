//! Density-weighted strategies: uncertainty alone favours outliers, so these weigh it by how
//! representative a candidate is of the unlabeled pool (Settles 2009, density-weighted methods).
//!
//! Shapes: probabilities `[n, classes]` and `embeddings` `[n, dim]` are row-aligned with the
//! candidates; `pool_embeddings` `[pool, dim]` holds every unlabeled sample (the candidates
//! included, and more when the loop subsamples candidates). Similarities are computed in row
//! blocks ([`crate::diversity`]'s distance kernels), so memory stays O(pool · dim), never pool².

use crate::diversity::{Stale, check_dim, check_rows, distance, rank_rows, tie_keys};
use crate::select::top_k;
use crate::uncertainty::entropy_score;
use quarry_core::{Error, Matrix, Needs, Pick, QuarryRng, Query, QueryContext, Result, ScoreKind, Scores, Strategy};
use rayon::prelude::*;
use std::collections::BinaryHeap;

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![
        crate::Entry {
            name: "density-entropy",
            aliases: &["information-density"],
            family: "density",
            paper: "Settles & Craven, EMNLP 2008 (information density)",
            summary: "entropy × (mean similarity 1/(1 + euclidean distance) to the unlabeled pool)^β",
            build: |o| Ok(Box::new(InformationDensity::new(o.beta)?)),
        },
        crate::Entry {
            name: "suggestive-annotation",
            aliases: &["suggestive"],
            family: "density",
            paper: "Yang, Zhang, Chen, Zhang & Chen, Suggestive Annotation, MICCAI 2017",
            summary: "the prefilter × batch most uncertain (entropy), then greedy max-cover of the pool (cosine)",
            build: |o| Ok(Box::new(SuggestiveAnnotation::new(o.prefilter)?)),
        },
    ]
}

/// The candidates' embeddings and the pool's, checked against the candidates and each other.
fn embeddings_and_pool<'a>(strategy: &str, ctx: &QueryContext<'a>) -> Result<(&'a Matrix, &'a Matrix)> {
    let scores: &'a Scores = ctx.scores;
    let emb = scores.embeddings(strategy)?;
    check_rows(strategy, "embeddings", emb.rows(), ctx.candidates.len())?;
    let pool = scores.pool_embeddings(strategy)?;
    check_dim(strategy, "pool embeddings", pool.cols(), emb.cols())?;
    if pool.rows() == 0 && emb.rows() > 0 {
        return Err(Error::shape(format!("pool embeddings of strategy {strategy}"), "at least one row (the candidates are pool samples)", "0 rows"));
    }
    Ok((emb, pool))
}

// ─────────────────────────────── information density ───────────────────────────────

/// Information density (Settles & Craven, "An Analysis of Active Learning Strategies for
/// Sequence Labeling Tasks", EMNLP 2008): `entropy(p_x) × density(x)^β` with
/// `density(x) = 1/|U| Σ_{u ∈ U} sim(x, u)` over the unlabeled pool U and
/// `sim(x, u) = 1 / (1 + ‖x − u‖)` on the embeddings.
///
/// Setting: the scikit-activeml anchor run (`UncertaintySampling(method="entropy",
/// utility_weight=density)` on standardized features, β = 1), whose density is the mean
/// similarity to every pool sample, x itself included (similarity 1); so is this one. β = 0 is
/// plain entropy sampling (the density is then not computed at all).
///
/// Hand-computed (see the tests): pool = candidates = {0, 1, 3} on a line. Densities:
/// 0 → (1 + 1/2 + 1/4)/3 = 0.5833, 1 → (1/2 + 1 + 1/3)/3 = 0.6111, 3 → (1/4 + 1/3 + 1)/3 = 0.5278.
/// With probabilities (0.6, 0.4), (0.7, 0.3), (0.5, 0.5) (entropies 0.6730, 0.6109, 0.6931)
/// the scores at β = 1 are 0.3926, 0.3733, 0.3658: order 0, 1, 3, where entropy alone says 3, 0, 1.
///
/// Cost: O(candidates · pool · dim) time, O(pool · dim) memory.
#[derive(Debug, Clone, Copy)]
pub struct InformationDensity {
    beta: f64,
}

impl InformationDensity {
    /// `beta ≥ 0`: how much the density counts against the entropy.
    pub fn new(beta: f64) -> Result<Self> {
        if !(beta >= 0.0 && beta.is_finite()) {
            return Err(Error::param("beta", format!("must be a number ≥ 0, got {beta}")));
        }
        Ok(InformationDensity { beta })
    }
}

impl Strategy for InformationDensity {
    fn name(&self) -> &str {
        "density-entropy"
    }
    fn needs(&self) -> Needs {
        Needs::of(&[ScoreKind::Probabilities, ScoreKind::Embeddings, ScoreKind::PoolEmbeddings])
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let probs = ctx.scores.probabilities(self.name())?;
        check_rows(self.name(), "probabilities", probs.len(), ctx.candidates.len())?;
        let (emb, pool) = embeddings_and_pool(self.name(), ctx)?;
        let mut scores: Vec<f64> = probs.rows().map(entropy_score).collect();
        if self.beta != 0.0 {
            for (s, d) in scores.iter_mut().zip(mean_similarity(emb, pool)) {
                *s *= d.powf(self.beta);
            }
        }
        Ok(top_k(ctx.candidates, &scores, k, rng))
    }
}

/// For every row x of `points`: the mean over the rows u of `pool` of `1 / (1 + ‖x − u‖)`.
/// The points are packed in panels of 16 and the panels shared out to threads, each streaming
/// the pool past its panel: memory O(points · dim) beyond the inputs, never points × pool.
pub fn mean_similarity(points: &Matrix, pool: &Matrix) -> Vec<f64> {
    let packed = distance::Packed::new(points);
    let pool_norms = distance::squared_norms(pool);
    let size = pool.rows().max(1) as f64;
    (0..packed.panels())
        .into_par_iter()
        .flat_map_iter(|p| {
            let first = packed.panel_rows(p).start;
            let mut sums = vec![0f64; packed.panel_rows(p).len()];
            distance::for_each_pair(pool, &pool_norms, 0..pool.rows(), &packed, p..p + 1, |_, j, d2| {
                sums[j - first] += 1.0 / (1.0 + (d2 as f64).sqrt());
            });
            sums.into_iter().map(move |s| s / size)
        })
        .collect()
}

// ─────────────────────────────── suggestive annotation ───────────────────────────────

/// Suggestive annotation (Yang et al., "Suggestive Annotation: A Deep Active Learning Framework
/// for Biomedical Image Segmentation", MICCAI 2017): keep the `prefilter × k` most
/// uncertain candidates, then choose the batch S among them greedily to maximize the
/// representativeness of the unlabeled pool U,
/// `F(S) = Σ_{u ∈ U} max_{s ∈ S} sim(u, s)`, a max-cover (facility location) objective.
///
/// Choices, where the paper leaves them to its setting: uncertainty is the entropy of the
/// prediction (the paper uses the variance of a bootstrapped FCN ensemble, which a single model
/// does not have); `sim` is the cosine similarity of the embeddings, as the paper's is of its
/// FCN descriptors (a zero vector is at similarity 0 to everything). The greedy starts from a
/// coverage of −1, the least cosine similarity, so each step maximizes exactly the paper's
/// `F(S ∪ {c}) − F(S)` and the first pick maximizes `Σ_u sim(u, c)`; greedy then has the
/// (1 − 1/e) guarantee of monotone submodular maximization (Nemhauser et al. 1978). Gains are
/// evaluated lazily (Minoux 1978): a stale gain is an upper bound, so only the top of the heap is
/// recomputed. A pick's score is its marginal gain, non-increasing along the batch.
///
/// Hand-computed (see the tests): pool = candidates = (1, 0), (1, 0.1), (1, −0.1), (−1, 0), all
/// kept. `Σ_u cos(u, c)` is 2/√1.01 = 1.990 for (1, 0), 1.980 for (1, ±0.1) and −1.990 for
/// (−1, 0), so (1, 0) is first (gain 4 + 1.990); then (−1, 0) gains 2 (its own coverage goes
/// from −1 to 1) while (1, 0.1) gains only 0.010: the batch is (1, 0), (−1, 0), where ranking by
/// representativeness alone would take (1, 0), (1, 0.1).
#[derive(Debug, Clone, Copy)]
pub struct SuggestiveAnnotation {
    prefilter: usize,
}

impl SuggestiveAnnotation {
    /// `prefilter ≥ 1`: how many times the batch size survives the uncertainty filter.
    pub fn new(prefilter: usize) -> Result<Self> {
        if prefilter == 0 {
            return Err(Error::param("prefilter", "must be at least 1"));
        }
        Ok(SuggestiveAnnotation { prefilter })
    }
}

impl Strategy for SuggestiveAnnotation {
    fn name(&self) -> &str {
        "suggestive-annotation"
    }
    fn needs(&self) -> Needs {
        Needs::of(&[ScoreKind::Probabilities, ScoreKind::Embeddings, ScoreKind::PoolEmbeddings])
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let probs = ctx.scores.probabilities(self.name())?;
        check_rows(self.name(), "probabilities", probs.len(), ctx.candidates.len())?;
        let (emb, pool) = embeddings_and_pool(self.name(), ctx)?;
        let entropy: Vec<f64> = probs.rows().map(entropy_score).collect();
        let kept = rank_rows(&entropy, self.prefilter.saturating_mul(k), rng);
        let picks = greedy_max_cover(&emb.select_rows(&kept), pool, k, rng);
        Ok(Query { picks: picks.into_iter().map(|(i, gain)| Pick { id: ctx.candidates[kept[i]], score: gain }).collect() })
    }
}

/// Greedy maximization of `F(S) = Σ_{u ∈ pool} max(−1, max_{s ∈ S} cos(u, s))` over `min(k,
/// rows)` rows of `cands`, lazily (see [`SuggestiveAnnotation`]). Returns the rows in pick order
/// with their marginal gains. Ties go to a seeded random key.
pub fn greedy_max_cover(cands: &Matrix, pool: &Matrix, k: usize, rng: &mut QuarryRng) -> Vec<(usize, f64)> {
    let (m, dim) = (cands.rows(), cands.cols());
    let k = k.min(m);
    if k == 0 {
        return Vec::new();
    }
    let unit_scale = |n2: f32| if n2 > 0.0 { 1.0 / n2.sqrt() } else { 0.0 };
    let mut unit = cands.clone();
    for (i, n2) in distance::squared_norms(cands).into_iter().enumerate() {
        unit.row_mut(i).iter_mut().for_each(|v| *v *= unit_scale(n2));
    }
    let pool_scale: Vec<f32> = distance::squared_norms(pool).into_iter().map(unit_scale).collect();
    let cos = |u: usize, c: &[f32]| distance::dot(pool.row(u), c) * pool_scale[u];

    // Σ_u û in f64, summed per block and then in block order (deterministic).
    let blocks: Vec<Vec<f64>> = pool_scale
        .par_chunks(distance::SCAN_BLOCK)
        .enumerate()
        .map(|(blk, scales)| {
            let mut s = vec![0f64; dim];
            for (off, &scale) in scales.iter().enumerate() {
                let u = pool.row(blk * distance::SCAN_BLOCK + off);
                s.iter_mut().zip(u).for_each(|(s, &v)| *s += (v * scale) as f64);
            }
            s
        })
        .collect();
    let mut direction = vec![0f64; dim];
    blocks.iter().for_each(|b| direction.iter_mut().zip(b).for_each(|(d, v)| *d += v));

    let keys = tie_keys(m, rng);
    let size = pool.rows() as f64;
    let mut heap: BinaryHeap<Stale> = (0..m)
        .map(|row| {
            let along: f64 = unit.row(row).iter().zip(&direction).map(|(&a, b)| a as f64 * b).sum();
            Stale { value: along + size, key: keys[row], row, fresh_at: 0 }
        })
        .collect();
    let mut cover = vec![-1f32; pool.rows()];
    let mut picks = Vec::with_capacity(k);
    while picks.len() < k {
        let mut top = heap.pop().expect("k ≤ rows leaves a candidate in the heap");
        let c = unit.row(top.row);
        if top.fresh_at == picks.len() {
            picks.push((top.row, top.value));
            cover.par_chunks_mut(distance::SCAN_BLOCK).enumerate().for_each(|(blk, cover)| {
                for (off, v) in cover.iter_mut().enumerate() {
                    *v = v.max(cos(blk * distance::SCAN_BLOCK + off, c));
                }
            });
        } else {
            let parts: Vec<f64> = cover
                .par_chunks(distance::SCAN_BLOCK)
                .enumerate()
                .map(|(blk, cover)| {
                    let start = blk * distance::SCAN_BLOCK;
                    cover.iter().enumerate().map(|(off, &v)| (cos(start + off, c) - v).max(0.0) as f64).sum::<f64>()
                })
                .collect();
            top.value = parts.iter().sum();
            top.fresh_at = picks.len();
            heap.push(top);
        }
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ids, prob_rows};
    use crate::EntropySampling;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{Probabilities, seeded_rng};


    fn scores(probs: &[&[f32]], emb: Matrix, pool: Matrix) -> Scores {
        Scores::default()
            .with(ScoreKind::Probabilities, Probabilities::from_rows(probs).unwrap())
            .with(ScoreKind::Embeddings, emb)
            .with(ScoreKind::PoolEmbeddings, pool)
    }

    fn rows_of(q: &Query) -> Vec<usize> {
        q.picks.iter().map(|p| p.id.index()).collect()
    }

    fn line(xs: &[f32]) -> Matrix {
        Matrix::new(xs.to_vec(), xs.len(), 1).unwrap()
    }

    // ── information density ──

    /// The doc example: pool = candidates = {0, 1, 3}.
    #[test]
    fn density_entropy_hand_computed() {
        let s = scores(&[&[0.6, 0.4], &[0.7, 0.3], &[0.5, 0.5]], line(&[0.0, 1.0, 3.0]), line(&[0.0, 1.0, 3.0]));
        let d = mean_similarity(s.embeddings("test").unwrap(), s.pool_embeddings("test").unwrap());
        for (got, want) in d.iter().zip([1.75 / 3.0, (0.5 + 1.0 + 1.0 / 3.0) / 3.0, (0.25 + 1.0 / 3.0 + 1.0) / 3.0]) {
            assert!((got - want).abs() < 1e-6, "{d:?}");
        }
        let cands = ids(3);
        let ctx = QueryContext::new(&cands, &s);
        let q = InformationDensity::new(1.0).unwrap().select(&ctx, 3, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![0, 1, 2]);
        for (got, want) in q.picks.iter().map(|p| p.score).zip([0.392_58, 0.373_32, 0.365_81]) {
            assert!((got - want).abs() < 1e-4, "{q:?}");
        }
        let q = InformationDensity::new(0.0).unwrap().select(&ctx, 3, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![2, 0, 1]);
    }

    /// The pool is a superset of the candidates: a candidate far from the crowd loses.
    #[test]
    fn density_uses_the_whole_pool_not_only_the_candidates() {
        let s = scores(&[&[0.5, 0.5], &[0.5, 0.5]], line(&[0.0, 10.0]), line(&[0.0, 10.0, 0.1, -0.1, 0.2]));
        let cands = ids(2);
        let q = InformationDensity::new(1.0).unwrap().select(&QueryContext::new(&cands, &s), 1, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![0]);
    }

    #[test]
    fn density_bad_inputs_are_errors_naming_it() {
        let cands = ids(3);
        let s = scores(&[&[0.5, 0.5], &[0.5, 0.5], &[0.5, 0.5]], line(&[0.0, 1.0]), line(&[0.0, 1.0]));
        let e = InformationDensity::new(1.0).unwrap().select(&QueryContext::new(&cands, &s), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("density-entropy") && e.to_string().contains("embeddings"), "{e}");
        let s = scores(&[&[0.5, 0.5], &[0.5, 0.5], &[0.5, 0.5]], line(&[0.0, 1.0, 2.0]), Matrix::zeros(3, 2));
        let e = InformationDensity::new(1.0).unwrap().select(&QueryContext::new(&cands, &s), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("density-entropy") && e.to_string().contains("pool"), "{e}");
        let e = InformationDensity::new(1.0).unwrap().select(&QueryContext::new(&cands, &Scores::default()), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("density-entropy"), "{e}");
        assert!(InformationDensity::new(-1.0).is_err() && InformationDensity::new(f64::NAN).is_err());
    }


    proptest! {
        /// β = 0 is entropy sampling: the same batch for the same seed.
        #[test]
        fn beta_zero_is_plain_entropy(rows in prob_rows(12, 3), e in proptest::collection::vec(-3.0f32..3.0, 12 * 2), k in 1usize..12, seed in 0u64..50) {
            let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
            let emb = Matrix::new(e, 12, 2).unwrap();
            let s = scores(&refs, emb.clone(), emb);
            let cands = ids(12);
            let ctx = QueryContext::new(&cands, &s);
            let a = InformationDensity::new(0.0).unwrap().select(&ctx, k, &mut seeded_rng(seed, 0)).unwrap();
            let b = EntropySampling.select(&ctx, k, &mut seeded_rng(seed, 0)).unwrap();
            prop_assert_eq!(a, b);
        }

        /// Densities match a direct f64 computation and lie in (0, 1]; each score is
        /// entropy × density^β.
        #[test]
        fn density_matches_its_definition(e in proptest::collection::vec(-3.0f32..3.0, 20 * 3), n_cand in 1usize..20, beta in 0.0f64..3.0) {
            let pool = Matrix::new(e, 20, 3).unwrap();
            let cand_rows: Vec<usize> = (0..n_cand).collect();
            let emb = pool.select_rows(&cand_rows);
            let d = mean_similarity(&emb, &pool);
            for (i, &got) in d.iter().enumerate() {
                let want: f64 = (0..20)
                    .map(|u| 1.0 / (1.0 + emb.row(i).iter().zip(pool.row(u)).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt()))
                    .sum::<f64>() / 20.0;
                prop_assert!((got - want).abs() < 1e-4, "{} vs {}", got, want);
                prop_assert!(got > 0.0 && got <= 1.0 + 1e-9);
            }
            let probs: Vec<&[f32]> = vec![&[0.3, 0.7]; n_cand];
            let s = scores(&probs, emb, pool);
            let cands = ids(n_cand);
            let q = InformationDensity::new(beta).unwrap().select(&QueryContext::new(&cands, &s), n_cand, &mut seeded_rng(0, 0)).unwrap();
            for p in &q.picks {
                let want = entropy_score(&[0.3, 0.7]) * d[p.id.index()].powf(beta);
                prop_assert!((p.score - want).abs() < 1e-9);
            }
        }
    }

    // ── suggestive annotation ──

    fn plane(points: &[[f32; 2]]) -> Matrix {
        Matrix::new(points.concat(), points.len(), 2).unwrap()
    }

    /// The doc example: (1, 0) first, then (−1, 0) rather than its near neighbour (1, 0.1).
    #[test]
    fn suggestive_hand_computed() {
        let pts = plane(&[[1.0, 0.0], [1.0, 0.1], [1.0, -0.1], [-1.0, 0.0]]);
        let p: &[f32] = &[0.5, 0.5];
        let s = scores(&[p, p, p, p], pts.clone(), pts);
        let cands = ids(4);
        let q = SuggestiveAnnotation::new(2).unwrap().select(&QueryContext::new(&cands, &s), 2, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![0, 3]);
        assert!((q.picks[0].score - (4.0 + 2.0 / 1.01f64.sqrt())).abs() < 1e-5, "{q:?}");
        assert!((q.picks[1].score - 2.0).abs() < 1e-5, "{q:?}");
    }

    /// Only the prefilter × k most uncertain are eligible: with prefilter 1 and k = 1, the single
    /// most uncertain candidate, however unrepresentative.
    #[test]
    fn suggestive_picks_only_among_the_most_uncertain() {
        let pts = plane(&[[1.0, 0.0], [1.0, 0.1], [1.0, -0.1], [-1.0, 0.0]]);
        let sure: &[f32] = &[0.9, 0.1];
        let s = scores(&[sure, sure, sure, &[0.5, 0.5]], pts.clone(), pts);
        let cands = ids(4);
        let q = SuggestiveAnnotation::new(1).unwrap().select(&QueryContext::new(&cands, &s), 1, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(rows_of(&q), vec![3]);
        let e = SuggestiveAnnotation::new(1).unwrap().select(&QueryContext::new(&ids(5), &s), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(e.to_string().contains("suggestive-annotation"), "{e}");
        assert!(SuggestiveAnnotation::new(0).is_err());
    }

    /// F(S) = Σ_u (max(−1, max_{s∈S} cos(u, s)) + 1), in f64: 0 for the empty set.
    fn cover_value(cands: &Matrix, pool: &Matrix, set: &[usize]) -> f64 {
        let cos = |a: &[f32], b: &[f32]| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            if na > 0.0 && nb > 0.0 { dot / (na * nb) } else { 0.0 }
        };
        (0..pool.rows()).map(|u| set.iter().map(|&s| cos(pool.row(u), cands.row(s))).fold(-1.0, f64::max) + 1.0).sum()
    }

    proptest! {
        /// Each pick has the largest marginal gain of those left, gains never grow, and the
        /// greedy value is within (1 − 1/e) of the best subset (brute force).
        #[test]
        fn greedy_max_cover_is_greedy_and_near_optimal(
            c in proptest::collection::vec(-2.0f32..2.0, 7 * 3), u in proptest::collection::vec(-2.0f32..2.0, 9 * 3), k in 1usize..4, seed in 0u64..20,
        ) {
            let cands = Matrix::new(c, 7, 3).unwrap();
            let pool = Matrix::new(u, 9, 3).unwrap();
            let picks = greedy_max_cover(&cands, &pool, k, &mut seeded_rng(seed, 0));
            prop_assert_eq!(picks.len(), k);
            let rows: Vec<usize> = picks.iter().map(|p| p.0).collect();
            let mut d = rows.clone(); d.sort(); d.dedup();
            prop_assert_eq!(d.len(), k);
            for step in 0..k {
                let base = cover_value(&cands, &pool, &rows[..step]);
                let gain = |c: usize| { let mut s = rows[..step].to_vec(); s.push(c); cover_value(&cands, &pool, &s) - base };
                let best = (0..7).filter(|c| !rows[..step].contains(c)).map(gain).fold(f64::NEG_INFINITY, f64::max);
                prop_assert!((gain(rows[step]) - best).abs() < 1e-4, "step {}: {} < {}", step, gain(rows[step]), best);
                prop_assert!((picks[step].1 - gain(rows[step])).abs() < 1e-4);
                if step > 0 { prop_assert!(picks[step].1 <= picks[step - 1].1 + 1e-4); }
            }
            let mut opt = 0f64;
            for mask in 0u32..(1 << 7) {
                if mask.count_ones() as usize == k {
                    let set: Vec<usize> = (0..7).filter(|i| mask >> i & 1 == 1).collect();
                    opt = opt.max(cover_value(&cands, &pool, &set));
                }
            }
            prop_assert!(cover_value(&cands, &pool, &rows) >= (1.0 - (-1f64).exp()) * opt - 1e-6);
        }
    }
}
