//! Expected gradient length (Settles, Craven & Ray 2008): the expected norm of the last layer's
//! loss gradient over the candidate's unknown label, in closed form.

use super::expect_rows;
use crate::select::top_k;
use quarry_core::{Needs, QuarryRng, Query, QueryContext, Result, ScoreKind, Strategy};

/// Expected gradient length of one candidate: `Σ_y p(y|x) ‖p − e_y‖ · sqrt(‖emb‖² + 1)`.
///
/// Derivation. The last layer maps `x̃ = [emb, 1]` to logits `z = Θᵀx̃` with `Θ = [W; bᵀ]`,
/// `[(dim+1), classes]`, and `ℓ(x, y) = −log softmax(z)_y`. Since `∂ℓ/∂z = p − e_y`, the gradient
/// is the outer product `∂ℓ/∂Θ = x̃ (p − e_y)ᵀ` (written `(p − e_y) ⊗ x̃` in class-major order),
/// and the Frobenius norm of an outer product is the product of the norms:
/// `‖∂ℓ/∂Θ‖ = ‖p − e_y‖ · ‖x̃‖ = ‖p − e_y‖ · sqrt(‖emb‖² + 1)`, where
/// `‖p − e_y‖² = Σ_c p_c² − 2p_y + 1`. Labels of probability 0 (classes the model has not seen)
/// add nothing. A one-hot `p` scores 0: the only label with weight has zero gradient.
///
/// The two-class model in its binomial form (one weight vector) has gradient norm
/// `‖p − e_y‖ / √2 · ‖x̃‖`, the same up to a constant factor, so the ranking is the same.
pub fn expected_gradient_length_score(p: &[f32], emb: &[f32]) -> f64 {
    let x_norm = (emb.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() + 1.0).sqrt();
    let sum_sq: f64 = p.iter().map(|&v| (v as f64).powi(2)).sum();
    let expected: f64 = p
        .iter()
        .filter(|&&py| py > 0.0)
        .map(|&py| {
            let py = py as f64;
            py * (sum_sq - 2.0 * py + 1.0).max(0.0).sqrt()
        })
        .sum();
    expected * x_norm
}

/// Expected gradient length, the "expected model change" of Settles, Craven & Ray, *Multiple-
/// instance active learning*, NIPS 2008 (Settles 2009 §3.3): query the candidate whose label,
/// in expectation under the current model, would give the largest gradient of the training loss
/// w.r.t. the last (linear) layer, bias included. The gradient of the training objective with
/// `(x, y)` added is approximated by `∇ℓ(x, y)` alone, since the objective's gradient on the
/// labeled set is ≈ 0 at the current fit. Setting: a softmax last layer over an embedding;
/// see [`expected_gradient_length_score`] for the closed form.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpectedGradientLength;

impl ExpectedGradientLength {
    const NAME: &'static str = "expected-gradient-length";
}

impl Strategy for ExpectedGradientLength {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn needs(&self) -> Needs {
        Needs::of(&[ScoreKind::Probabilities, ScoreKind::Embeddings])
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let probs = ctx.scores.probabilities(Self::NAME)?;
        let emb = ctx.scores.embeddings(Self::NAME)?;
        expect_rows(Self::NAME, "probabilities", probs.len(), ctx.candidates.len())?;
        expect_rows(Self::NAME, "embeddings", emb.rows(), ctx.candidates.len())?;
        let scores: Vec<f64> = probs.rows().enumerate().map(|(i, p)| expected_gradient_length_score(p, emb.row(i))).collect();
        Ok(top_k(ctx.candidates, &scores, k, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::testing::picks;
    use crate::test_support::{ids, matrix, prob_rows};
    use proptest::prelude::{prop_assert, proptest};
    use quarry_core::{Probabilities, Scores, seeded_rng};

    /// Hand-computed, ‖x̃‖ = sqrt(‖emb‖² + 1):
    /// A: p = (0.7, 0.2, 0.1), emb = (1, −2): ‖p − e_y‖ = √0.14, √1.14, √1.34, so
    ///    (0.7·0.374166 + 0.2·1.067708 + 0.1·1.157584)·√6 = 0.591216·2.449490 = 1.448177.
    /// B: one-hot (1, 0, 0), emb = (3, 3): 0, however far it lies.
    /// C: p = (0.4, 0.3, 0.3), emb = (0, 0): 0.4·√0.54 + 2·0.3·√0.94 = 0.810078.
    #[test]
    fn egl_hand_computed() {
        let probs = Probabilities::from_rows(&[&[0.7, 0.2, 0.1], &[1.0, 0.0, 0.0], &[0.4, 0.3, 0.3]]).unwrap();
        let emb = matrix(&[&[1.0, -2.0], &[3.0, 3.0], &[0.0, 0.0]]);
        assert!((expected_gradient_length_score(probs.row(0), emb.row(0)) - 1.448_177_4).abs() < 1e-5);
        assert_eq!(expected_gradient_length_score(probs.row(1), emb.row(1)), 0.0);
        assert!((expected_gradient_length_score(probs.row(2), emb.row(2)) - 0.810_078_3).abs() < 1e-5);
        let cands = ids(3);
        let scores = Scores::default().with(ScoreKind::Probabilities, probs).with(ScoreKind::Embeddings, emb);
        let q = ExpectedGradientLength.select(&QueryContext::new(&cands, &scores), 3, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(picks(&q), vec![0, 2, 1]);
    }

    #[test]
    fn egl_shape_mismatch_and_missing_scores_name_the_strategy() {
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.5, 0.5]]).unwrap();
        let cands = ids(2);
        let scores = Scores::default().with(ScoreKind::Probabilities, probs.clone()).with(ScoreKind::Embeddings, matrix(&[&[1.0]]));
        let err = ExpectedGradientLength.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("expected-gradient-length") && err.to_string().contains("embeddings"), "{err}");
        let scores = Scores::default().with(ScoreKind::Probabilities, probs);
        let err = ExpectedGradientLength.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("expected-gradient-length"), "{err}");
    }

    proptest! {
        /// The closed form equals Σ_y p_y ‖(p − e_y) ⊗ [emb, 1]‖ with the gradient written out.
        #[test]
        fn egl_equals_the_explicit_gradient(rows in prob_rows(1, 4), emb in proptest::collection::vec(-3f32..3.0, 5)) {
            let p = &rows[0];
            let x: Vec<f64> = emb.iter().map(|&v| v as f64).chain([1.0]).collect();
            let mut want = 0.0;
            for y in 0..p.len() {
                let mut sq = 0.0;
                for (c, &pc) in p.iter().enumerate() {
                    let r = pc as f64 - (c == y) as u8 as f64;
                    sq += x.iter().map(|xj| (r * xj).powi(2)).sum::<f64>();
                }
                want += p[y] as f64 * sq.sqrt();
            }
            let got = expected_gradient_length_score(p, &emb);
            prop_assert!((got - want).abs() < 1e-9 * (1.0 + want), "{} vs {}", got, want);
            prop_assert!(got >= 0.0);
        }
    }
}
