//! AIFT (Zhou, Shin, Zhang, Gurudu, Gotway & Liang, CVPR 2017, "Fine-tuning Convolutional Neural
//! Networks for Biomedical Image Analysis: Actively and Incrementally").
//!
//! Setting: each candidate is an image the current (pretrained, incrementally fine-tuned) CNN
//! predicts through `m` augmented patches, `Scores::patches` `[m, n, classes]`. For one candidate:
//! 1. **Majority selection.** The dominant class ĉ is the argmax of the patches' mean prediction;
//!    the patches are ranked by their probability of ĉ and only the top ⌈α·m⌉ are kept (α = 1/4 in
//!    the paper), which drops the noisy minority patches augmentation creates.
//! 2. **Score.** Over the kept patches build R with `R[i][i] = λ1·H(pᵢ)` (entropy) and
//!    `R[i][j] = λ2·(KL(pᵢ‖pⱼ) + KL(pⱼ‖pᵢ))` (diversity, the symmetric KL divergence); the
//!    candidate's score is ΣR. λ1 = λ2 = 1 is AIFT; (1, 0) entropy-only; (0, 1) diversity-only.
//! 3. Candidates are ranked by score and the top `b` are queried, or — the paper's remedy for
//!    outliers — `b` are sampled without replacement from the top `ω·b` with probability
//!    proportional to score.

use crate::select::top_k;
use crate::uncertainty::entropy_score;
use quarry_core::{Error, McSamples, Needs, Pick, QuarryRng, Query, QueryContext, Result, ScoreKind, Strategy};
use rand::Rng;

/// AIFT's parameters, checked by [`Aift::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Aift {
    name: &'static str,
    alpha: f64,
    lambda1: f64,
    lambda2: f64,
    /// Sample the batch from the top `sample_from_top × b` with probability ∝ score (`None`: top b).
    sample_from_top: Option<usize>,
}

impl Aift {
    pub fn new(name: &'static str, alpha: f64, lambda1: f64, lambda2: f64, sample_from_top: Option<usize>) -> Result<Self> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(Error::param("aift-alpha", format!("the kept fraction of patches must lie in (0, 1], got {alpha}")));
        }
        if !(lambda1 >= 0.0 && lambda2 >= 0.0) || lambda1 + lambda2 == 0.0 {
            return Err(Error::param("aift-lambdas", format!("λ1, λ2 must be ≥ 0 and not both 0, got {lambda1}, {lambda2}")));
        }
        if sample_from_top == Some(0) {
            return Err(Error::param("aift-sample-top", "must be at least 1"));
        }
        Ok(Aift { name, alpha, lambda1, lambda2, sample_from_top })
    }
}

/// Σ p ln(p/q), with 0·ln 0 = 0 and q floored at 1e-12 so a confident disagreement stays finite.
fn kl(p: &[f32], q: &[f32]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(a, _)| **a > 0.0)
        .map(|(&a, &b)| a as f64 * ((a as f64) / (b as f64).max(1e-12)).ln())
        .sum()
}

/// The AIFT score of candidate `i`: majority selection of ⌈α·m⌉ patches, then ΣR.
pub fn aift_score(patches: &McSamples, i: usize, alpha: f64, lambda1: f64, lambda2: f64) -> f64 {
    let m = patches.draws();
    let k = patches.n_classes();
    let mut mean = vec![0f64; k];
    for t in 0..m {
        for (acc, &v) in mean.iter_mut().zip(patches.row(t, i)) {
            *acc += v as f64;
        }
    }
    let dominant = (0..k).fold(0, |best, c| if mean[c] > mean[best] { c } else { best });
    let mut order: Vec<usize> = (0..m).collect();
    // Highest probability of the dominant class first; ties by patch index (deterministic).
    order.sort_by(|&a, &b| patches.row(b, i)[dominant].total_cmp(&patches.row(a, i)[dominant]).then(a.cmp(&b)));
    let keep = ((alpha * m as f64).ceil() as usize).clamp(1, m);
    let kept: Vec<&[f32]> = order[..keep].iter().map(|&t| patches.row(t, i)).collect();
    let mut score = 0.0;
    for (a, pa) in kept.iter().enumerate() {
        score += lambda1 * entropy_score(pa);
        if lambda2 > 0.0 {
            for pb in &kept[a + 1..] {
                // R is symmetric: each unordered pair appears twice in ΣR.
                score += 2.0 * lambda2 * (kl(pa, pb) + kl(pb, pa));
            }
        }
    }
    score
}

impl Strategy for Aift {
    fn name(&self) -> &str {
        self.name
    }
    fn needs(&self) -> Needs {
        Needs::of(&[ScoreKind::Patches])
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let patches = ctx.scores.patches(self.name)?;
        if patches.len() != ctx.candidates.len() {
            return Err(Error::shape(format!("{} patch predictions", self.name), ctx.candidates.len(), patches.len()));
        }
        let scores: Vec<f64> =
            (0..patches.len()).map(|i| aift_score(patches, i, self.alpha, self.lambda1, self.lambda2)).collect();
        let Some(factor) = self.sample_from_top else {
            return Ok(top_k(ctx.candidates, &scores, k, rng));
        };
        // Sample k of the top factor·k without replacement, probability ∝ score.
        let mut pool = top_k(ctx.candidates, &scores, k.saturating_mul(factor), rng).picks;
        let mut picks: Vec<Pick> = Vec::with_capacity(k);
        while picks.len() < k && !pool.is_empty() {
            let total: f64 = pool.iter().map(|p| p.score.max(0.0)).sum();
            let at = if total > 0.0 {
                let mut u = rng.random::<f64>() * total;
                pool.iter().position(|p| {
                    u -= p.score.max(0.0);
                    u < 0.0
                })
                .unwrap_or(pool.len() - 1)
            } else {
                rng.random_range(0..pool.len())
            };
            picks.push(pool.swap_remove(at));
        }
        Ok(Query { picks })
    }
}

pub(crate) fn entries() -> Vec<crate::Entry> {
    const PAPER: &str = "Zhou et al., CVPR 2017 (AIFT)";
    vec![
        crate::Entry {
            name: "aift",
            aliases: &["active-incremental-fine-tuning"],
            family: "aift",
            paper: PAPER,
            summary: "entropy + patch diversity (λ1 = λ2 = 1) of the majority-side top α of augmented patches",
            build: |o| Ok(Box::new(Aift::new("aift", o.aift_alpha, 1.0, 1.0, o.aift_sample_top)?)),
        },
        crate::Entry {
            name: "aift-entropy",
            aliases: &[],
            family: "aift",
            paper: PAPER,
            summary: "AIFT with entropy only (λ1 = 1, λ2 = 0)",
            build: |o| Ok(Box::new(Aift::new("aift-entropy", o.aift_alpha, 1.0, 0.0, o.aift_sample_top)?)),
        },
        crate::Entry {
            name: "aift-diversity",
            aliases: &[],
            family: "aift",
            paper: PAPER,
            summary: "AIFT with patch diversity only (λ1 = 0, λ2 = 1)",
            build: |o| Ok(Box::new(Aift::new("aift-diversity", o.aift_alpha, 0.0, 1.0, o.aift_sample_top)?)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, proptest};
    use quarry_core::{Probabilities, SampleId, Scores, seeded_rng};

    /// `patches[t][i]` = probabilities of patch t of candidate i.
    fn samples(patches: &[&[&[f32]]]) -> McSamples {
        let draws: Vec<Probabilities> = patches.iter().map(|rows| Probabilities::from_rows(rows).unwrap()).collect();
        McSamples::from_draws(&draws).unwrap()
    }

    /// Hand-computed, m = 4 patches, α = 1/2 → 2 kept, binary:
    /// patches (0.9, 0.1), (0.8, 0.2), (0.3, 0.7), (0.6, 0.4). Mean (0.65, 0.35) → dominant class 0;
    /// kept: (0.9, 0.1) and (0.8, 0.2). H = 0.325083 and 0.500402; symmetric KL
    /// = 0.9 ln(9/8) + 0.1 ln(1/2) + 0.8 ln(8/9) + 0.2 ln 2 = 0.1 ln(9/8) + 0.1 ln 2 = 0.0810930.
    /// ΣR (λ1 = λ2 = 1) = 0.325083 + 0.500402 + 2 × 0.0810930 = 0.987671.
    #[test]
    fn hand_computed_score() {
        let s = samples(&[&[&[0.9, 0.1]], &[&[0.8, 0.2]], &[&[0.3, 0.7]], &[&[0.6, 0.4]]]);
        let both = aift_score(&s, 0, 0.5, 1.0, 1.0);
        assert!((both - 0.987_671).abs() < 1e-5, "{both}");
        let entropy_only = aift_score(&s, 0, 0.5, 1.0, 0.0);
        assert!((entropy_only - 0.825_485).abs() < 1e-5, "{entropy_only}");
        let diversity_only = aift_score(&s, 0, 0.5, 0.0, 1.0);
        assert!((diversity_only - 0.162_186).abs() < 1e-5, "{diversity_only}");
    }

    /// α = 1/4 drops the minority patch that disagrees; α = 1 keeps it and the disagreement
    /// dominates the diversity term.
    #[test]
    fn majority_selection_drops_minority_patches() {
        let s = samples(&[&[&[0.95, 0.05]], &[&[0.9, 0.1]], &[&[0.05, 0.95]], &[&[0.92, 0.08]]]);
        let quarter = aift_score(&s, 0, 0.25, 0.0, 1.0);
        let all = aift_score(&s, 0, 1.0, 0.0, 1.0);
        assert_eq!(quarter, 0.0, "one kept patch has no pair");
        assert!(all > 5.0, "{all}");
    }

    #[test]
    fn picks_the_candidate_whose_patches_disagree() {
        // Candidate 0: confident, consistent. Candidate 1: uncertain and inconsistent.
        let s = samples(&[
            &[&[0.99, 0.01], &[0.6, 0.4]],
            &[&[0.98, 0.02], &[0.3, 0.7]],
            &[&[0.99, 0.01], &[0.55, 0.45]],
            &[&[0.97, 0.03], &[0.5, 0.5]],
        ]);
        let cands = [SampleId(7), SampleId(9)];
        let scores = Scores::default().with(ScoreKind::Patches, s);
        let ctx = QueryContext::new(&cands, &scores);
        let aift = Aift::new("aift", 1.0, 1.0, 1.0, None).unwrap();
        assert_eq!(aift.select(&ctx, 1, &mut seeded_rng(0, 0)).unwrap().ids(), vec![SampleId(9)]);
        let sampled = Aift::new("aift", 1.0, 1.0, 1.0, Some(2)).unwrap().select(&ctx, 2, &mut seeded_rng(0, 0)).unwrap();
        let mut ids = sampled.ids();
        ids.sort();
        assert_eq!(ids, vec![SampleId(7), SampleId(9)]);
    }

    #[test]
    fn bad_parameters_and_missing_patches_are_errors() {
        assert!(Aift::new("aift", 0.0, 1.0, 1.0, None).is_err());
        assert!(Aift::new("aift", 0.5, 0.0, 0.0, None).is_err());
        assert!(Aift::new("aift", 0.5, 1.0, 1.0, Some(0)).is_err());
        let scores = Scores::default();
        let cands = [SampleId(0)];
        let e = Aift::new("aift", 0.25, 1.0, 1.0, None).unwrap().select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0));
        assert!(e.unwrap_err().to_string().contains("aift"));
    }

    proptest! {
        /// Scores are ≥ 0, 0 when every patch is the same one-hot prediction, and λ-linear:
        /// score(1, 1) = score(1, 0) + score(0, 1).
        #[test]
        fn score_is_nonnegative_and_linear_in_lambdas(raw in proptest::collection::vec(0.01f32..1.0, 8 * 3), alpha in 0.1f64..1.0) {
            let rows: Vec<Vec<f32>> = raw.chunks(3).map(|r| { let s: f32 = r.iter().sum(); r.iter().map(|v| v / s).collect() }).collect();
            let draws: Vec<Probabilities> = rows.iter().map(|r| Probabilities::from_rows(&[r.as_slice()]).unwrap()).collect();
            let s = McSamples::from_draws(&draws).unwrap();
            let both = aift_score(&s, 0, alpha, 1.0, 1.0);
            let parts = aift_score(&s, 0, alpha, 1.0, 0.0) + aift_score(&s, 0, alpha, 0.0, 1.0);
            prop_assert!(both >= 0.0);
            prop_assert!((both - parts).abs() < 1e-9 * (1.0 + both));
        }
    }

    #[test]
    fn agreeing_one_hot_patches_score_zero() {
        let s = samples(&[&[&[0.0, 1.0]], &[&[0.0, 1.0]], &[&[0.0, 1.0]]]);
        assert_eq!(aift_score(&s, 0, 1.0, 1.0, 1.0), 0.0);
    }
}
