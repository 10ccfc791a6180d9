//! Expected model change and expected future loss (Settles 2009 §3.3–3.5): instead of asking how
//! unsure the model is about a candidate, ask what labeling it would *do* to the model.
//!
//! - [`ExpectedGradientLength`] (Settles, Craven & Ray 2008): how far one gradient step on the
//!   candidate would move the last layer, in expectation over its unknown label.
//! - [`ExpectedErrorReduction`] (Roy & McCallum 2001): refit with each possible label and estimate
//!   the error left on the unlabeled pool; the most expensive strategy quarry has.
//! - [`VarianceReduction`] (Cohn, Ghahramani & Jordan 1996; Schein & Ungar 2007): the output
//!   variance left on the pool after the candidate is labeled, from the Fisher information of a
//!   softmax last layer, without refitting.
//!
//! All three assume a softmax (multinomial logistic) last layer over an embedding, which is what
//! quarry's logistic regression is (its embedding is the feature vector itself). Each is a score
//! function (higher = more wanted) plus the shared top-k selector.

use crate::select::top_k;
use quarry_core::{Error, Matrix, Needs, Probabilities, QuarryRng, Query, QueryContext, Result, Strategy, WhatIf};
use rayon::prelude::*;

/// Rows of one score must match what they are scored against; otherwise an error naming the
/// strategy and the score.
fn expect_rows(strategy: &str, what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::shape(format!("{what} given to strategy {strategy}"), format!("{want} rows"), format!("{got} rows")))
    }
}

// ---------------------------------------------------------------------------------------------
// Expected gradient length
// ---------------------------------------------------------------------------------------------

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
        Needs { probabilities: true, embeddings: true, ..Needs::NOTHING }
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

// ---------------------------------------------------------------------------------------------
// Expected error reduction
// ---------------------------------------------------------------------------------------------

/// The most refits [`ExpectedErrorReduction`] does in one query unless told otherwise: it refuses
/// beyond this (candidates × classes of nonzero probability) rather than run for hours.
pub const MAX_REFITS: usize = 20_000;

/// The loss whose expectation [`ExpectedErrorReduction`] estimates on the pool, with the refit
/// model's own posterior `p'` standing in for the unknown labels (Roy & McCallum 2001, §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FutureLoss {
    /// 0/1 loss: `Σ_u (1 − max_c p'(c|u))`, the expected number of mistakes (the default).
    #[default]
    ZeroOne,
    /// Log loss: `Σ_u −Σ_c p'(c|u) ln p'(c|u)`, the expected cross-entropy, i.e. the entropy of
    /// the refit model's predictions.
    Log,
}

impl FutureLoss {
    fn of_row(self, p: &[f32]) -> f64 {
        match self {
            FutureLoss::ZeroOne => 1.0 - p.iter().fold(0f32, |a, &b| a.max(b)) as f64,
            FutureLoss::Log => p.iter().filter(|&&v| v > 0.0).map(|&v| -(v as f64) * (v as f64).ln()).sum(),
        }
    }
}

/// Expected error reduction, Roy & McCallum, *Toward optimal active learning through sampling
/// estimation of error reduction*, ICML 2001 (Settles 2009 §3.4). For each candidate `x` and each
/// label `y` with `p(y|x) > 0`, refit the model with `(x, y)` added ([`WhatIf`]) and estimate the
/// future loss `E(x, y)` on the unlabeled pool with the refit model's own posterior (0/1 or log
/// loss, [`FutureLoss`]). The score is `−Σ_y p(y|x) E(x, y)`, so the candidate whose labeling is
/// expected to leave the least error (the largest expected reduction) comes first; scores are ≤ 0.
///
/// Setting: pool-based, one label at a time, any model that can be refit. The pool estimate is
/// the query's candidates other than `x` itself (once labeled, `x` is no longer in the pool), so
/// with `--candidates M` both the candidates and the pool are the same seeded subsample.
///
/// Cost: `candidates × classes` refits per query, each a full fit. Large pools must subsample
/// candidates with `--candidates M`; beyond [`MAX_REFITS`] refits a query is refused with an
/// error saying so. Refits run in parallel over candidates (rayon).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedErrorReduction {
    loss: FutureLoss,
    max_refits: usize,
}

impl Default for ExpectedErrorReduction {
    fn default() -> Self {
        ExpectedErrorReduction { loss: FutureLoss::ZeroOne, max_refits: MAX_REFITS }
    }
}

impl ExpectedErrorReduction {
    const NAME: &'static str = "expected-error-reduction";

    /// 0/1 loss and at most [`MAX_REFITS`] refits per query.
    pub fn new() -> Self {
        Self::default()
    }
    /// Which future loss to estimate (default [`FutureLoss::ZeroOne`]).
    pub fn loss(mut self, loss: FutureLoss) -> Self {
        self.loss = loss;
        self
    }
    /// Refuse queries needing more refits than this (default [`MAX_REFITS`]).
    pub fn max_refits(mut self, n: usize) -> Self {
        self.max_refits = n;
        self
    }

    /// `Σ_y p(y|x) E(x, y)` for every candidate: the expected future loss after labeling it.
    pub fn expected_losses(&self, probs: &Probabilities, what_if: &dyn WhatIf) -> Result<Vec<f64>> {
        let n = probs.len();
        let refits: usize = probs.rows().map(|p| p.iter().filter(|&&v| v > 0.0).count()).sum();
        if refits > self.max_refits {
            let per = probs.rows().map(|p| p.iter().filter(|&&v| v > 0.0).count()).max().unwrap_or(1).max(1);
            return Err(Error::Other(format!(
                "strategy {} would refit the model {refits} times ({n} candidates × up to {per} classes), more than its \
                 limit of {}; subsample the candidates with --candidates {} or fewer",
                Self::NAME,
                self.max_refits,
                (self.max_refits / per).max(1)
            )));
        }
        let loss = self.loss;
        (0..n)
            .into_par_iter()
            .map(|i| {
                let mut expected = 0.0;
                for (y, &py) in probs.row(i).iter().enumerate() {
                    if py <= 0.0 {
                        continue;
                    }
                    let after = what_if.probabilities_after(i, y as u32)?;
                    expect_rows(Self::NAME, "refit probabilities", after.len(), n)?;
                    let future: f64 = after.rows().enumerate().filter(|&(u, _)| u != i).map(|(_, p)| loss.of_row(p)).sum();
                    expected += py as f64 * future;
                }
                Ok(expected)
            })
            .collect()
    }
}

impl Strategy for ExpectedErrorReduction {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn needs(&self) -> Needs {
        Needs { probabilities: true, what_if: true, ..Needs::NOTHING }
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let probs = ctx.scores.probabilities(Self::NAME)?;
        expect_rows(Self::NAME, "probabilities", probs.len(), ctx.candidates.len())?;
        let what_if = ctx.what_if(Self::NAME)?;
        let scores: Vec<f64> = self.expected_losses(probs, what_if)?.into_iter().map(|e| -e).collect();
        Ok(top_k(ctx.candidates, &scores, k, rng))
    }
}

// ---------------------------------------------------------------------------------------------
// Variance reduction
// ---------------------------------------------------------------------------------------------

/// The largest parameter dimension `(dim + 1) · (seen classes − 1)` [`VarianceReduction`] accepts
/// by default. A query costs `O(P³ + candidates · P²)` in double precision and holds three
/// `P × P` matrices at a time: with 1,000 candidates on the 2-core development machine about
/// 3 s at P = 2,000 and about 20 s at P = 4,000 (384 MB). Beyond the limit a query is refused
/// with an error suggesting lower-dimensional embeddings.
pub const MAX_PARAMETERS: usize = 4_000;

/// Ridge added to the (unpenalized) intercepts' diagonal of the Fisher information so it stays
/// positive definite in floating point when the labeled set says nothing about an intercept.
const INTERCEPT_RIDGE: f64 = 1e-6;

/// Variance reduction, the A-optimal criterion of Cohn, Ghahramani & Jordan, *Active learning
/// with statistical models*, JAIR 1996, for logistic regression as evaluated by Schein & Ungar,
/// *Active learning for logistic regression: an evaluation*, Machine Learning 68(3), 2007 (libact's
/// `VarianceReduction` implements it). Query the candidate after whose labeling the model's
/// output variance summed over the pool is smallest:
///
/// ```text
/// V(x) = Σ_u tr(A_u (F + F_x)⁻¹)
/// F    = Σ_{l ∈ labeled} (diag(p_l) − p_l p_lᵀ) ⊗ x̃_l x̃_lᵀ + λ I      (Fisher information + L2 prior)
/// A_u  = (diag(p_u) − p_u p_uᵀ) ⊗ x̃_u x̃_uᵀ,   F_x likewise for x,      x̃ = [emb, 1]
/// ```
///
/// Setting: a softmax last layer over embeddings, fit with the L2 penalty `½λ‖W‖²` (λ = 1/C = 1
/// for quarry's logistic regression; the intercepts are unpenalized and get only a 1e-6 ridge).
/// The labeled set's probabilities are the current model's, as the Fisher information is taken
/// at the current estimate; the label of `x` is not needed, since `F_x` does not depend on it.
///
/// Details:
/// - **Classes.** Only the classes the model has seen (a labeled or candidate probability above
///   0) are modeled, and the last of them is the reference class whose logit is fixed at 0:
///   the softmax is over-parameterized by one class, which would make the intercepts' block of
///   `F` singular. With two classes this is exactly the binomial model quarry fits. `p` above is
///   the probability of the free classes, `m = seen − 1`, and the parameter dimension is
///   `P = (dim + 1) · m`. With fewer than two seen classes every variance is 0 and picks are
///   seeded-random.
/// - **Pool.** The query's candidates stand for the unlabeled pool (so `--candidates M` bounds
///   the work), `x` itself included.
/// - **Efficiency.** `F` is inverted once (Cholesky). `F_x = U B_x Uᵀ` with `U = I_m ⊗ x̃` and
///   `B_x = diag(p_x) − p_x p_xᵀ` (rank ≤ m), so by Sherman–Morrison–Woodbury
///   `(F + F_x)⁻¹ = H − H U B_x (I + K B_x)⁻¹ Uᵀ H` with `H = F⁻¹`, `K = Uᵀ H U` (this form needs
///   no inverse of the possibly singular `B_x`), and with `S = Σ_u A_u`, `M = H S H`:
///   `V(x) = tr(S H) − tr(Uᵀ M U · B_x (I + K B_x)⁻¹)` — an `m × m` solve per candidate.
///
/// Refuses parameter dimensions above [`MAX_PARAMETERS`] (see there). Scores are `−V(x)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VarianceReduction {
    l2: f64,
    max_parameters: usize,
}

impl Default for VarianceReduction {
    fn default() -> Self {
        VarianceReduction { l2: 1.0, max_parameters: MAX_PARAMETERS }
    }
}

impl VarianceReduction {
    const NAME: &'static str = "variance-reduction";

    /// λ = 1 (C = 1) and at most [`MAX_PARAMETERS`] parameters.
    pub fn new() -> Self {
        Self::default()
    }
    /// The L2 strength λ = 1/C of the model's weights; must be positive and finite.
    pub fn l2(mut self, lambda: f64) -> Result<Self> {
        if !(lambda > 0.0 && lambda.is_finite()) {
            return Err(Error::param("variance-reduction L2 strength", format!("must be a positive number, got {lambda}")));
        }
        self.l2 = lambda;
        Ok(self)
    }
    /// Refuse parameter dimensions above this (default [`MAX_PARAMETERS`]).
    pub fn max_parameters(mut self, p: usize) -> Self {
        self.max_parameters = p;
        self
    }

    /// `V(x)` for every candidate: the pool's summed output variance after labeling it.
    pub fn expected_variances(&self, probs: &Probabilities, emb: &Matrix, labeled_probs: &Probabilities, labeled_emb: &Matrix) -> Result<Vec<f64>> {
        let name = Self::NAME;
        let n = probs.len();
        expect_rows(name, "embeddings", emb.rows(), n)?;
        expect_rows(name, "labeled-set embeddings", labeled_emb.rows(), labeled_probs.len())?;
        if labeled_emb.cols() != emb.cols() {
            return Err(Error::shape(format!("labeled-set embedding width given to strategy {name}"), emb.cols(), labeled_emb.cols()));
        }
        if labeled_probs.n_classes() != probs.n_classes() {
            return Err(Error::shape(format!("labeled-set classes given to strategy {name}"), probs.n_classes(), labeled_probs.n_classes()));
        }
        let seen: Vec<usize> = (0..probs.n_classes())
            .filter(|&c| probs.rows().chain(labeled_probs.rows()).any(|p| p[c] > 0.0))
            .collect();
        let free = &seen[..seen.len().saturating_sub(1)];
        let (m, b) = (free.len(), emb.cols() + 1);
        let p = m * b;
        if p == 0 {
            return Ok(vec![0.0; n]);
        }
        if p > self.max_parameters {
            return Err(Error::Other(format!(
                "strategy {name} would work with {p} parameters ((embedding dim {} + 1) × ({} seen classes − 1)), more than \
                 its limit of {}; use lower-dimensional embeddings (e.g. a PCA projection of the features)",
                emb.cols(),
                seen.len(),
                self.max_parameters
            )));
        }
        let cand = FisherRows::new(probs, emb, free);
        let labeled = FisherRows::new(labeled_probs, labeled_emb, free);

        let mut f = labeled.fisher_sum();
        for c in 0..m {
            for j in 0..b {
                let i = c * b + j;
                f[i * p + i] += if j + 1 == b { INTERCEPT_RIDGE } else { self.l2 };
            }
        }
        let h = dense::spd_inverse(f, p)
            .ok_or_else(|| Error::Other(format!("strategy {name}: the Fisher information is not positive definite (non-finite scores?)")))?;
        let sh = dense::matmul(&cand.fisher_sum(), &h, p);
        let base: f64 = (0..p).map(|i| sh[i * p + i]).sum();
        let hsh = dense::matmul_symmetric(&h, &sh, p);
        drop(sh);

        const BATCH: usize = 128;
        let chunks: Vec<Vec<f64>> = (0..n.div_ceil(BATCH))
            .into_par_iter()
            .map(|chunk| {
                let rows = chunk * BATCH..((chunk + 1) * BATCH).min(n);
                let k = cand.block_quadratic_forms(&h, rows.clone());
                let nq = cand.block_quadratic_forms(&hsh, rows.clone());
                let mm = m * m;
                rows.enumerate().map(|(r, i)| base - cand.woodbury_reduction(i, &k[r * mm..][..mm], &nq[r * mm..][..mm])).collect()
            })
            .collect();
        let v: Vec<f64> = chunks.into_iter().flatten().collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::Other(format!("strategy {name}: the expected variance is not finite (ill-conditioned Fisher information)")));
        }
        Ok(v)
    }
}

impl Strategy for VarianceReduction {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn needs(&self) -> Needs {
        Needs { probabilities: true, embeddings: true, labeled_embeddings: true, labeled_probabilities: true, ..Needs::NOTHING }
    }
    fn select(&self, ctx: &QueryContext<'_>, k: usize, rng: &mut QuarryRng) -> Result<Query> {
        let s = ctx.scores;
        let probs = s.probabilities(Self::NAME)?;
        let emb = s.embeddings(Self::NAME)?;
        let labeled_probs = s.labeled_probabilities(Self::NAME)?;
        let labeled_emb = s.labeled_embeddings(Self::NAME)?;
        expect_rows(Self::NAME, "probabilities", probs.len(), ctx.candidates.len())?;
        expect_rows(Self::NAME, "labeled-set probabilities", labeled_probs.len(), ctx.labeled.len())?;
        let scores: Vec<f64> = self.expected_variances(probs, emb, labeled_probs, labeled_emb)?.into_iter().map(|v| -v).collect();
        Ok(top_k(ctx.candidates, &scores, k, rng))
    }
}

/// Samples in the reduced softmax parameterization: `x̃ = [emb, 1]` `[n, b]` and the free
/// classes' probabilities `q` `[n, m]`, in f64. Parameters are laid out class-major: index
/// `c · b + j` is feature `j` (the last one the intercept) of free class `c`.
struct FisherRows {
    x: Vec<f64>,
    q: Vec<f64>,
    n: usize,
    b: usize,
    m: usize,
}

impl FisherRows {
    fn new(probs: &Probabilities, emb: &Matrix, free: &[usize]) -> Self {
        let (n, b, m) = (emb.rows(), emb.cols() + 1, free.len());
        let mut x = Vec::with_capacity(n * b);
        let mut q = Vec::with_capacity(n * m);
        for i in 0..n {
            x.extend(emb.row(i).iter().map(|&v| v as f64));
            x.push(1.0);
            q.extend(free.iter().map(|&c| probs.row(i)[c] as f64));
        }
        FisherRows { x, q, n, b, m }
    }

    fn x(&self, i: usize) -> &[f64] {
        &self.x[i * self.b..(i + 1) * self.b]
    }
    fn q(&self, i: usize) -> &[f64] {
        &self.q[i * self.m..(i + 1) * self.m]
    }

    /// `Σ_i (diag(q_i) − q_i q_iᵀ) ⊗ x̃_i x̃_iᵀ`, `[P, P]`: the block-diagonal part, block `c`
    /// being `X̃ᵀ diag(q_·c) X̃`, minus the Gram matrix `VᵀV` of the rows `v_i = q_i ⊗ x̃_i`;
    /// both as GEMMs over chunks of rows. With one free class (two seen classes) the two parts
    /// merge into `X̃ᵀ diag(q (1 − q)) X̃`.
    fn fisher_sum(&self) -> Vec<f64> {
        let (b, m) = (self.b, self.m);
        let p = b * m;
        let mut out = vec![0.0; p * p];
        const CHUNK: usize = 256;
        let (mut v, mut w) = (Vec::new(), Vec::with_capacity(CHUNK * b));
        for start in (0..self.n).step_by(CHUNK) {
            let rows = start..(start + CHUNK).min(self.n);
            let (r, xs) = (rows.len(), &self.x[start * b..rows.end * b]);
            for c in 0..m {
                w.clear();
                for i in rows.clone() {
                    let qc = self.q(i)[c];
                    let weight = if m == 1 { qc * (1.0 - qc) } else { qc };
                    w.extend(self.x(i).iter().map(|&xj| weight * xj));
                }
                // block (c, c) += X̃ᵀ · diag(weights) X̃, X̃ᵀ read with row stride 1, column stride b.
                dense::par_gemm(b, r, b, 1.0, xs, (1, b), &w, (b, 1), 1.0, &mut out[c * b * p + c * b..], p);
            }
            if m > 1 {
                v.clear();
                for i in rows {
                    for &qc in self.q(i) {
                        v.extend(self.x(i).iter().map(|&xj| qc * xj));
                    }
                }
                // out −= VᵀV, Vᵀ read with row stride 1, column stride P.
                dense::par_gemm(p, r, p, -1.0, &v, (1, p), &v, (p, 1), 1.0, &mut out, p);
            }
        }
        out
    }

    /// For the candidates `rows`, the `m × m` matrices `Uᵀ G U` with `U = I_m ⊗ x̃`, i.e. entry
    /// `(c, c')` = `x̃ᵀ G_{cc'} x̃` for the `b × b` blocks of the symmetric `G`; `[rows, m, m]`.
    /// Computed as `Y = G_{·,c'} X̃ᵀ` (one GEMM per free class) so `G` is streamed once per batch.
    fn block_quadratic_forms(&self, g: &[f64], rows: std::ops::Range<usize>) -> Vec<f64> {
        let (b, m) = (self.b, self.m);
        let p = b * m;
        let nb = rows.len();
        let xb = &self.x[rows.start * b..rows.end * b];
        let mut out = vec![0.0; nb * m * m];
        let mut y = vec![0.0; p * nb];
        for c2 in 0..m {
            // y[P, nb] = G[:, c2·b .. c2·b + b] · X̃ᵀ
            dense::gemm(p, b, nb, 1.0, &g[c2 * b..], (p, 1), xb, (1, b), 0.0, &mut y, nb);
            for c in 0..m {
                for j in 0..b {
                    let yrow = &y[(c * b + j) * nb..(c * b + j + 1) * nb];
                    for (r, &yv) in yrow.iter().enumerate() {
                        out[(r * m + c) * m + c2] += xb[r * b + j] * yv;
                    }
                }
            }
        }
        out
    }

    /// `tr(N · B (I + K B)⁻¹)` for candidate `i`, with `B = diag(q) − q qᵀ`, `K = Uᵀ H U` and
    /// `N = Uᵀ H S H U` (each `m × m`): how much labeling `i` lowers `tr(S (F + F_x)⁻¹)`.
    /// `B (I + K B)⁻¹ = (I + B K)⁻¹ B`, found by one solve.
    fn woodbury_reduction(&self, i: usize, k: &[f64], nq: &[f64]) -> f64 {
        let m = self.m;
        let q = self.q(i);
        let mut bq = vec![0.0; m * m];
        for c in 0..m {
            for c2 in 0..m {
                bq[c * m + c2] = if c == c2 { q[c] } else { 0.0 } - q[c] * q[c2];
            }
        }
        let mut a = vec![0.0; m * m];
        for c in 0..m {
            for c2 in 0..m {
                a[c * m + c2] = (c == c2) as u8 as f64 + (0..m).map(|t| bq[c * m + t] * k[t * m + c2]).sum::<f64>();
            }
        }
        let mut z = bq;
        if !dense::solve_in_place(&mut a, m, &mut z, m) {
            return f64::NAN;
        }
        (0..m).flat_map(|c| (0..m).map(move |c2| (c, c2))).map(|(c, c2)| nq[c * m + c2] * z[c2 * m + c]).sum()
    }
}

/// Small dense linear algebra in f64, row-major: what variance reduction needs and nothing more.
/// The O(n³) work goes through `matrixmultiply`'s GEMM (blocked, SIMD-dispatched at run time),
/// split over rayon's threads by row blocks; the scalar loops left are O(n² · block).
mod dense {
    use rayon::prelude::*;

    /// Block size of the blocked factorizations.
    const NB: usize = 96;

    /// `Σ a_i b_i`, four accumulators so the compiler can vectorize.
    pub fn dot(a: &[f64], b: &[f64]) -> f64 {
        let mut acc = [0.0; 4];
        let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
        let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in ca.zip(cb) {
            for l in 0..4 {
                acc[l] += x[l] * y[l];
            }
        }
        acc[0] + acc[1] + acc[2] + acc[3] + tail
    }

    /// `c[m×n] = alpha · a[m×k] · b[k×n] + beta · c`, where `c` has row stride `ldc` and `a`, `b`
    /// are read through (row stride, column stride).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        m: usize, k: usize, n: usize, alpha: f64, a: &[f64], a_st: (usize, usize), b: &[f64], b_st: (usize, usize), beta: f64,
        c: &mut [f64], ldc: usize,
    ) {
        let extent =
            |rows: usize, cols: usize, (rs, cs): (usize, usize)| if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
        assert!(
            extent(m, k, a_st) <= a.len() && extent(k, n, b_st) <= b.len() && extent(m, n, (ldc, 1)) <= c.len(),
            "gemm operands out of bounds"
        );
        // SAFETY: the assert guarantees every element the kernel reads or writes is in bounds
        // (with beta = 0 the kernel writes `c` without reading it; with k = 0 it only scales `c`).
        unsafe {
            matrixmultiply::dgemm(
                m, k, n, alpha, a.as_ptr(), a_st.0 as isize, a_st.1 as isize, b.as_ptr(), b_st.0 as isize, b_st.1 as isize,
                beta, c.as_mut_ptr(), ldc as isize, 1,
            );
        }
    }

    /// [`gemm`] with the rows of `c` split over rayon's threads.
    #[allow(clippy::too_many_arguments)]
    pub fn par_gemm(
        m: usize, k: usize, n: usize, alpha: f64, a: &[f64], a_st: (usize, usize), b: &[f64], b_st: (usize, usize), beta: f64,
        c: &mut [f64], ldc: usize,
    ) {
        let rows = m.div_ceil(rayon::current_num_threads().max(1) * 2).max(16);
        if rows >= m {
            return gemm(m, k, n, alpha, a, a_st, b, b_st, beta, c, ldc);
        }
        c.par_chunks_mut(rows * ldc).enumerate().for_each(|(t, block)| {
            let r0 = t * rows;
            if r0 < m {
                gemm(rows.min(m - r0), k, n, alpha, &a[r0 * a_st.0..], a_st, b, b_st, beta, block, ldc);
            }
        });
    }

    /// `a · b` for square `[n, n]` matrices.
    pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; n * n];
        par_gemm(n, n, n, 1.0, a, (n, 1), b, (n, 1), 0.0, &mut c, n);
        c
    }

    /// `a · b` for square `[n, n]` matrices whose product is known to be symmetric: only the
    /// blocks on and above the diagonal are multiplied, then mirrored.
    pub fn matmul_symmetric(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; n * n];
        if n == 0 {
            return c;
        }
        c.par_chunks_mut(NB * n).enumerate().for_each(|(t, block)| {
            let i0 = t * NB;
            let rows = block.len() / n;
            gemm(rows, n, n - i0, 1.0, &a[i0 * n..], (n, 1), &b[i0..], (n, 1), 0.0, &mut block[i0..], n);
        });
        mirror_upper(&mut c, n);
        c
    }

    /// Copy the upper triangle onto the lower one.
    fn mirror_upper(c: &mut [f64], n: usize) {
        for i in 0..n {
            for j in 0..i {
                c[i * n + j] = c[j * n + i];
            }
        }
    }

    /// The lower Cholesky factor `L` (`a = L Lᵀ`) of a symmetric positive-definite `[n, n]`
    /// matrix (only its lower triangle is read), or `None` if it is not positive definite.
    /// Right-looking and blocked: factor a diagonal block, solve the panel below it, update the
    /// trailing matrix with one GEMM.
    pub fn cholesky(a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
        let mut l = a;
        let mut diag = vec![0.0; NB * NB];
        let mut panel = Vec::new();
        for k in (0..n).step_by(NB) {
            let kb = NB.min(n - k);
            // The diagonal block, unblocked; earlier columns' contributions are already subtracted.
            for j in 0..kb {
                let row_j: Vec<f64> = l[(k + j) * n + k..(k + j) * n + k + j].to_vec();
                let d = l[(k + j) * n + k + j] - dot(&row_j, &row_j);
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                let ljj = d.sqrt();
                l[(k + j) * n + k + j] = ljj;
                for i in j + 1..kb {
                    let at = (k + i) * n + k;
                    l[at + j] = (l[at + j] - dot(&l[at..at + j], &row_j)) / ljj;
                }
            }
            for i in 0..kb {
                diag[i * kb..(i + 1) * kb].copy_from_slice(&l[(k + i) * n + k..(k + i) * n + k + kb]);
            }
            let below = n - k - kb;
            if below == 0 {
                break;
            }
            // The panel below: each row x solves x L_kkᵀ = a_row.
            let diag = &diag[..kb * kb];
            l[(k + kb) * n..].par_chunks_mut(n).for_each(|row| {
                let x = &mut row[k..k + kb];
                for j in 0..kb {
                    x[j] = (x[j] - dot(&x[..j], &diag[j * kb..j * kb + j])) / diag[j * kb + j];
                }
            });
            // The trailing matrix: A₂₂ −= P Pᵀ.
            panel.clear();
            for i in k + kb..n {
                panel.extend_from_slice(&l[i * n + k..i * n + k + kb]);
            }
            par_gemm(below, kb, below, -1.0, &panel, (kb, 1), &panel, (1, kb), 1.0, &mut l[(k + kb) * n + k + kb..], n);
        }
        for i in 0..n {
            l[i * n + i + 1..(i + 1) * n].iter_mut().for_each(|v| *v = 0.0);
        }
        Some(l)
    }

    /// `L⁻¹` of a lower-triangular `[n, n]` `L` with a positive diagonal, by blocked forward
    /// substitution on `L X = I`: block row `i` is `L_ii⁻¹ (I_i − L_{i,<i} X_{<i})`.
    fn lower_inverse(l: &[f64], n: usize) -> Vec<f64> {
        let mut x = vec![0.0; n * n];
        let mut r = Vec::new();
        for i0 in (0..n).step_by(NB) {
            let ib = NB.min(n - i0);
            let w = i0 + ib;
            r.clear();
            r.resize(ib * w, 0.0);
            for t in 0..ib {
                r[t * w + i0 + t] = 1.0;
            }
            // X is lower triangular, so only its first i0 columns meet L_{i,<i}.
            par_gemm(ib, i0, i0, -1.0, &l[i0 * n..], (n, 1), &x, (n, 1), 1.0, &mut r, w);
            for t in 0..ib {
                let (done, rest) = r.split_at_mut(t * w);
                let row = &mut rest[..w];
                for s in 0..t {
                    let f = l[(i0 + t) * n + i0 + s];
                    if f != 0.0 {
                        row.iter_mut().zip(&done[s * w..(s + 1) * w]).for_each(|(v, &d)| *v -= f * d);
                    }
                }
                let inv = 1.0 / l[(i0 + t) * n + i0 + t];
                row.iter_mut().for_each(|v| *v *= inv);
                x[(i0 + t) * n..(i0 + t) * n + w].copy_from_slice(row);
            }
        }
        x
    }

    /// The inverse of a symmetric positive-definite `[n, n]` matrix, `a⁻¹ = L⁻ᵀ L⁻¹`, or `None`
    /// if it is not positive definite; reuses `a`'s memory (two `n × n` buffers at most). With
    /// `X = L⁻¹` lower triangular, block row `i` of `Xᵀ X` only needs rows `≥ i` of `X`.
    pub fn spd_inverse(a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
        let mut inv = cholesky(a, n)?;
        let x = lower_inverse(&inv, n);
        if n == 0 {
            return Some(inv);
        }
        inv.par_chunks_mut(NB * n).enumerate().for_each(|(t, block)| {
            let i0 = t * NB;
            let rows = block.len() / n;
            // (Xᵀ)[i0.., i0..] read as X's columns i0.. from row i0 on: row stride 1, column stride n.
            gemm(rows, n - i0, n - i0, 1.0, &x[i0 * n + i0..], (1, n), &x[i0 * n + i0..], (n, 1), 0.0, &mut block[i0..], n);
        });
        mirror_upper(&mut inv, n);
        Some(inv)
    }

    /// Solve `a x = rhs` for `[n, n]` `a` and `[n, cols]` `rhs` in place (Gaussian elimination
    /// with partial pivoting); `false` if `a` is singular.
    pub fn solve_in_place(a: &mut [f64], n: usize, rhs: &mut [f64], cols: usize) -> bool {
        for j in 0..n {
            let pivot = (j..n).max_by(|&r, &s| a[r * n + j].abs().total_cmp(&a[s * n + j].abs())).unwrap_or(j);
            let size = a[pivot * n + j].abs();
            if size == 0.0 || size.is_nan() {
                return false;
            }
            if pivot != j {
                for c in 0..n {
                    a.swap(j * n + c, pivot * n + c);
                }
                for c in 0..cols {
                    rhs.swap(j * cols + c, pivot * cols + c);
                }
            }
            for r in j + 1..n {
                let f = a[r * n + j] / a[j * n + j];
                if f != 0.0 {
                    for c in j..n {
                        a[r * n + c] -= f * a[j * n + c];
                    }
                    for c in 0..cols {
                        rhs[r * cols + c] -= f * rhs[j * cols + c];
                    }
                }
            }
        }
        for j in (0..n).rev() {
            for c in 0..cols {
                let s: f64 = (j + 1..n).map(|t| a[j * n + t] * rhs[t * cols + c]).sum();
                rhs[j * cols + c] = (rhs[j * cols + c] - s) / a[j * n + j];
            }
        }
        true
    }
}

pub(crate) fn entries() -> Vec<crate::Entry> {
    vec![
        crate::Entry {
            name: "expected-gradient-length",
            aliases: &["egl", "expected-model-change"],
            family: "expected",
            paper: "Settles, Craven & Ray, NIPS 2008 (expected gradient length)",
            summary: "largest expected norm of the last layer's loss gradient, Σ_y p(y|x)‖p − e_y‖·‖[emb, 1]‖",
            build: |_| Ok(Box::new(ExpectedGradientLength)),
        },
        crate::Entry {
            name: "expected-error-reduction",
            aliases: &["eer"],
            family: "expected",
            paper: "Roy & McCallum, ICML 2001",
            summary: "refit with every label of every candidate, least expected 0/1 error on the pool first \
                      (candidates × classes refits: use --candidates)",
            build: |_| Ok(Box::new(ExpectedErrorReduction::new())),
        },
        crate::Entry {
            name: "variance-reduction",
            aliases: &["fisher-information"],
            family: "expected",
            paper: "Cohn, Ghahramani & Jordan, JAIR 1996; Schein & Ungar, Machine Learning 2007",
            summary: "least pool output variance Σ tr(A_u (F + F_x)⁻¹) after labeling, from the softmax Fisher information \
                      ((dim + 1)·(classes − 1) ≤ 4,000)",
            build: |_| Ok(Box::new(VarianceReduction::new())),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ids, matrix, prob_rows};
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use quarry_core::{SampleId, Scores, seeded_rng};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};



    fn picks(q: &Query) -> Vec<u32> {
        q.ids().iter().map(|i| i.0).collect()
    }


    fn probs_of(rows: &[Vec<f32>]) -> Probabilities {
        Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>()).unwrap()
    }

    // --- expected gradient length ---------------------------------------------------------

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
        let scores = Scores { probabilities: Some(probs), embeddings: Some(emb), ..Default::default() };
        let q = ExpectedGradientLength.select(&QueryContext::new(&cands, &scores), 3, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(picks(&q), vec![0, 2, 1]);
    }

    #[test]
    fn egl_shape_mismatch_and_missing_scores_name_the_strategy() {
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.5, 0.5]]).unwrap();
        let cands = ids(2);
        let scores = Scores { probabilities: Some(probs.clone()), embeddings: Some(matrix(&[&[1.0]])), ..Default::default() };
        let err = ExpectedGradientLength.select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("expected-gradient-length") && err.to_string().contains("embeddings"), "{err}");
        let scores = Scores { probabilities: Some(probs), ..Default::default() };
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

    // --- expected error reduction ---------------------------------------------------------

    /// Post-refit probabilities looked up in a table `(candidate, label) → [candidates, classes]`;
    /// any other refit is an error. Counts the refits it was asked for.
    struct TableWhatIf {
        table: HashMap<(usize, u32), Probabilities>,
        calls: AtomicUsize,
    }

    impl WhatIf for TableWhatIf {
        fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.table.get(&(candidate, label)).cloned().ok_or_else(|| Error::Other(format!("unexpected refit ({candidate}, {label})")))
        }
    }

    /// Three candidates, two classes; each refit's row for the candidate itself is (0.5, 0.5)
    /// and must be left out of the pool estimate.
    fn eer_table() -> (Probabilities, TableWhatIf) {
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.8, 0.2], &[1.0, 0.0]]).unwrap();
        let own = [0.5f32, 0.5];
        let row = |u: usize, i: usize, r: [f32; 2]| if u == i { own } else { r };
        let entry = |i: usize, rows: [[f32; 2]; 3]| {
            let rows: Vec<[f32; 2]> = (0..3).map(|u| row(u, i, rows[u])).collect();
            Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>()).unwrap()
        };
        let mut table = HashMap::new();
        table.insert((0, 0), entry(0, [own, [0.9, 0.1], [0.6, 0.4]]));
        table.insert((0, 1), entry(0, [own, [0.7, 0.3], [0.5, 0.5]]));
        table.insert((1, 0), entry(1, [[0.6, 0.4], own, [0.8, 0.2]]));
        table.insert((1, 1), entry(1, [[0.5, 0.5], own, [0.9, 0.1]]));
        table.insert((2, 0), entry(2, [[0.95, 0.05], [0.99, 0.01], own]));
        (probs, TableWhatIf { table, calls: AtomicUsize::new(0) })
    }

    /// Hand-computed 0/1 loss, Σ over the other candidates of 1 − max p':
    /// x0: ½·(0.1 + 0.4) + ½·(0.3 + 0.5) = 0.65;  x1: 0.8·(0.4 + 0.2) + 0.2·(0.5 + 0.1) = 0.6;
    /// x2: only label 0 has probability, (0.05 + 0.01) = 0.06. So x2, x1, x0 with scores −E.
    /// Log loss (entropies in nats): x0 1.151053, x1 1.142377, x2 0.254517.
    #[test]
    fn eer_hand_computed_with_a_table_of_refits() {
        let (probs, what_if) = eer_table();
        let e = ExpectedErrorReduction::new().expected_losses(&probs, &what_if).unwrap();
        for (got, want) in e.iter().zip([0.65, 0.6, 0.06]) {
            assert!((got - want).abs() < 1e-6, "{e:?}");
        }
        assert_eq!(what_if.calls.load(Ordering::Relaxed), 5, "no refit for a label of probability 0");
        let e = ExpectedErrorReduction::new().loss(FutureLoss::Log).expected_losses(&probs, &what_if).unwrap();
        for (got, want) in e.iter().zip([1.151_053_1, 1.142_377_3, 0.254_516_8]) {
            assert!((got - want).abs() < 1e-5, "{e:?}");
        }

        let cands = ids(3);
        let scores = Scores { probabilities: Some(probs), ..Default::default() };
        let ctx = QueryContext { candidates: &cands, scores: &scores, labeled: &[], labeled_labels: &[], what_if: Some(&what_if) };
        let q = ExpectedErrorReduction::new().select(&ctx, 3, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(picks(&q), vec![2, 1, 0]);
        assert!((q.picks[0].score + 0.06).abs() < 1e-6);
    }

    #[test]
    fn eer_refuses_too_many_refits_and_suggests_subsampling() {
        let row = [0.5f32, 0.5];
        let rows: Vec<&[f32]> = vec![&row; 10_001];
        let probs = Probabilities::from_rows(&rows).unwrap();
        let (_, what_if) = eer_table();
        let err = ExpectedErrorReduction::new().expected_losses(&probs, &what_if).unwrap_err().to_string();
        assert!(err.contains("expected-error-reduction") && err.contains("--candidates 10000") && err.contains("20000"), "{err}");
        assert_eq!(what_if.calls.load(Ordering::Relaxed), 0, "refused before any refit");
    }

    #[test]
    fn eer_without_a_refittable_model_or_with_a_bad_refit_is_an_error() {
        let (probs, what_if) = eer_table();
        let cands = ids(3);
        let scores = Scores { probabilities: Some(probs), ..Default::default() };
        let err = ExpectedErrorReduction::new().select(&QueryContext::new(&cands, &scores), 1, &mut seeded_rng(0, 0)).unwrap_err();
        assert!(err.to_string().contains("expected-error-reduction"), "{err}");

        struct Short;
        impl WhatIf for Short {
            fn probabilities_after(&self, _: usize, _: u32) -> Result<Probabilities> {
                Probabilities::from_rows(&[&[0.5, 0.5]])
            }
        }
        let ctx = QueryContext { candidates: &cands, scores: &scores, labeled: &[], labeled_labels: &[], what_if: Some(&Short) };
        let err = ExpectedErrorReduction::new().select(&ctx, 1, &mut seeded_rng(0, 0)).unwrap_err().to_string();
        assert!(err.contains("expected-error-reduction") && err.contains("refit probabilities"), "{err}");
        drop(what_if);
    }

    /// Refits answered by a closure (the property tests' fake model).
    struct FnWhatIf<F>(F);
    impl<F: Fn(usize, u32) -> Result<Probabilities> + Sync> WhatIf for FnWhatIf<F> {
        fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
            (self.0)(candidate, label)
        }
    }

    proptest! {
        /// Picks are distinct, scores are ≤ 0 and non-increasing, the first is the best.
        #[test]
        fn eer_picks_are_distinct_and_scores_non_positive(
            rows in prob_rows(6, 3), post in prob_rows(6 * 3 * 6, 3), k in 1usize..7, log in proptest::bool::ANY,
        ) {
            let probs = probs_of(&rows);
            let what_if = FnWhatIf(|i: usize, y: u32| {
                let at = (i * 3 + y as usize) * 6;
                Ok(probs_of(&post[at..at + 6]))
            });
            let cands = ids(6);
            let scores = Scores { probabilities: Some(probs), ..Default::default() };
            let ctx = QueryContext { candidates: &cands, scores: &scores, labeled: &[], labeled_labels: &[], what_if: Some(&what_if) };
            let s = ExpectedErrorReduction::new().loss(if log { FutureLoss::Log } else { FutureLoss::ZeroOne });
            let q = s.select(&ctx, k, &mut seeded_rng(1, 0)).unwrap();
            let mut d = picks(&q);
            prop_assert_eq!(d.len(), k);
            d.sort();
            d.dedup();
            prop_assert_eq!(d.len(), k);
            prop_assert!(q.picks.iter().all(|p| p.score <= 0.0));
            prop_assert!(q.picks.windows(2).all(|w| w[0].score >= w[1].score));
            let all = s.expected_losses(scores.probabilities.as_ref().unwrap(), &what_if).unwrap();
            let best = all.iter().cloned().fold(f64::INFINITY, f64::min);
            prop_assert!((q.picks[0].score + best).abs() < 1e-12);
        }
    }

    // --- variance reduction ---------------------------------------------------------------

    fn vr_context<'a>(cands: &'a [SampleId], labeled: &'a [SampleId], scores: &'a Scores) -> QueryContext<'a> {
        QueryContext { candidates: cands, scores, labeled, labeled_labels: &[], what_if: None }
    }

    fn vr_scores(probs: Probabilities, emb: Matrix, labeled_probs: Probabilities, labeled_emb: Matrix) -> Scores {
        Scores {
            probabilities: Some(probs),
            embeddings: Some(emb),
            labeled_probabilities: Some(labeled_probs),
            labeled_embeddings: Some(labeled_emb),
            ..Default::default()
        }
    }

    /// 1-D, two classes: parameters (w, b), one free class, `B = p(1 − p)`.
    /// Labeled: emb 0 with p = ½ → F = diag(λ, ¼) = diag(1, 0.25).
    /// Candidates a: emb 1, p = ½ (x̃ = (1, 1)); c: emb 0, p = ½ (a duplicate of the labeled point).
    /// V(x) = Σ_u ¼ x̃_uᵀ (F + ¼ x̃_x x̃_xᵀ)⁻¹ x̃_u.
    /// x = a: F + ¼·[[1,1],[1,1]] = [[1.25, 0.25], [0.25, 0.5]], det 0.5625, inverse
    ///   [[0.5, −0.25], [−0.25, 1.25]] / 0.5625; u = a: (0.5 − 0.5 + 1.25)/0.5625 = 2.2222,
    ///   u = c: 1.25/0.5625 = 2.2222, so V(a) = ¼·4.4444 = 10/9.
    /// x = c: F + diag(0, ¼) = diag(1, 0.5), inverse diag(1, 2); u = a: 3, u = c: 2, V(c) = 5/4.
    /// a lowers the variance more and is picked.
    #[test]
    fn vr_one_dimensional_binary_by_hand() {
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.5, 0.5]]).unwrap();
        let emb = matrix(&[&[1.0], &[0.0]]);
        let lprobs = Probabilities::from_rows(&[&[0.5, 0.5]]).unwrap();
        let lemb = matrix(&[&[0.0]]);
        let v = VarianceReduction::new().expected_variances(&probs, &emb, &lprobs, &lemb).unwrap();
        assert!((v[0] - 10.0 / 9.0).abs() < 1e-4 && (v[1] - 1.25).abs() < 1e-4, "{v:?}");

        let (cands, labeled) = (ids(2), [SampleId(7)]);
        let scores = vr_scores(probs, emb, lprobs, lemb);
        let q = VarianceReduction::new().select(&vr_context(&cands, &labeled, &scores), 2, &mut seeded_rng(0, 0)).unwrap();
        assert_eq!(picks(&q), vec![0, 1]);
        assert!((q.picks[0].score + 10.0 / 9.0).abs() < 1e-4);
    }

    /// The Woodbury update gives what inverting `F + F_x` for each candidate gives, with `F`,
    /// `F_x` and `S` built entry by entry; with classes the model has not seen (columns all 0),
    /// one or two free classes, small and large enough (P = 2 · 61) for the blocked
    /// factorizations and the parallel GEMMs.
    #[test]
    fn vr_woodbury_equals_direct_inverse() {
        check_woodbury_against_direct(7, 5, 3, &[1]);
        check_woodbury_against_direct(9, 40, 60, &[1]);
        check_woodbury_against_direct(6, 30, 90, &[1, 3]);
    }

    /// `Σ_i (diag(q_i) − q_i q_iᵀ) ⊗ x̃_i x̃_iᵀ` entry by entry.
    fn naive_fisher(probs: &Probabilities, emb: &Matrix, free: &[usize]) -> Vec<f64> {
        let (b, m) = (emb.cols() + 1, free.len());
        let p = b * m;
        let mut out = vec![0.0; p * p];
        for i in 0..probs.len() {
            let x: Vec<f64> = emb.row(i).iter().map(|&v| v as f64).chain([1.0]).collect();
            let q: Vec<f64> = free.iter().map(|&c| probs.row(i)[c] as f64).collect();
            for (c, c2, j, j2) in (0..m).flat_map(|c| (0..m).flat_map(move |c2| (0..b).flat_map(move |j| (0..b).map(move |j2| (c, c2, j, j2))))) {
                let bcc = if c == c2 { q[c] } else { 0.0 } - q[c] * q[c2];
                out[(c * b + j) * p + c2 * b + j2] += bcc * x[j] * x[j2];
            }
        }
        out
    }

    fn check_woodbury_against_direct(n: usize, l: usize, d: usize, unseen: &[usize]) {
        use rand::Rng;
        let mut rng = seeded_rng(5, 0);
        let mut rand_probs = |rows: usize| {
            let v: Vec<Vec<f32>> = (0..rows)
                .map(|_| {
                    let r: Vec<f32> = (0..4).map(|c| if unseen.contains(&c) { 0.0 } else { rng.random_range(0.05f32..1.0) }).collect();
                    let s: f32 = r.iter().sum();
                    r.into_iter().map(|x| x / s).collect()
                })
                .collect();
            probs_of(&v)
        };
        let (probs, lprobs) = (rand_probs(n), rand_probs(l));
        let mut rng = seeded_rng(6, 0);
        let mut rand_matrix = |rows: usize| Matrix::new((0..rows * d).map(|_| rng.random_range(-2f32..2.0)).collect(), rows, d).unwrap();
        let (emb, lemb) = (rand_matrix(n), rand_matrix(l));
        let lambda = 0.7;
        let fast = VarianceReduction::new().l2(lambda).unwrap().expected_variances(&probs, &emb, &lprobs, &lemb).unwrap();

        // The seen classes but the last (the reference).
        let mut free: Vec<usize> = (0..4).filter(|c| !unseen.contains(c)).collect();
        free.pop();
        let (b, m) = (d + 1, free.len());
        let p = b * m;
        let mut f = naive_fisher(&lprobs, &lemb, &free);
        for (i, &got) in FisherRows::new(&lprobs, &lemb, &free).fisher_sum().iter().enumerate() {
            assert!((got - f[i]).abs() < 1e-9 * (1.0 + f[i].abs()), "fisher_sum entry {i}: {got} vs {}", f[i]);
        }
        for i in 0..p {
            f[i * p + i] += if i % b == b - 1 { INTERCEPT_RIDGE } else { lambda };
        }
        let s = naive_fisher(&probs, &emb, &free);
        for (x, &v) in fast.iter().enumerate() {
            let one = naive_fisher(&Probabilities::from_rows(&[probs.row(x)]).unwrap(), &matrix(&[emb.row(x)]), &free);
            let fx: Vec<f64> = f.iter().zip(&one).map(|(a, b)| a + b).collect();
            let direct = dense::dot(&s, &dense::spd_inverse(fx, p).unwrap());
            assert!((v - direct).abs() < 1e-8 * direct.abs().max(1.0), "candidate {x}: {v} vs {direct}");
        }
    }

    proptest! {
        /// A candidate far from every labeled point, in a region where the model is unsure, is
        /// picked over candidates duplicating labeled points.
        #[test]
        fn vr_prefers_the_far_uncertain_candidate(
            points in proptest::collection::vec((-1f32..1.0, -1f32..1.0), 3..8), lp in prob_rows(8, 3),
        ) {
            let l = points.len();
            let lemb = Matrix::new(points.iter().flat_map(|&(a, b)| [a, b]).collect(), l, 2).unwrap();
            let lprobs = probs_of(&lp[..l]);
            // Candidates: every labeled point again, then the far one at (4, 4) and two neighbours.
            let mut e: Vec<f32> = lemb.as_slice().to_vec();
            e.extend([4.0, 4.0, 4.2, 3.9, 3.8, 4.1]);
            let emb = Matrix::new(e, l + 3, 2).unwrap();
            let mut rows: Vec<Vec<f32>> = lp[..l].to_vec();
            rows.extend([vec![0.34, 0.33, 0.33], vec![0.4, 0.3, 0.3], vec![0.3, 0.4, 0.3]]);
            let probs = probs_of(&rows);
            let v = VarianceReduction::new().expected_variances(&probs, &emb, &lprobs, &lemb).unwrap();
            for dup in 0..l {
                prop_assert!(v[l] < v[dup], "far {} vs duplicate {}: {}", v[l], dup, v[dup]);
            }
            let (cands, labeled) = (ids(l + 3), ids(l));
            let scores = vr_scores(probs, emb, lprobs, lemb);
            let q = VarianceReduction::new().select(&vr_context(&cands, &labeled, &scores), 1, &mut seeded_rng(0, 0)).unwrap();
            prop_assert!(picks(&q)[0] as usize >= l);
        }
    }

    #[test]
    fn vr_refuses_too_many_parameters_naming_the_strategy() {
        let probs = Probabilities::from_rows(&[&[0.5, 0.5]]).unwrap();
        let emb = Matrix::zeros(1, 4_000);
        let lemb = Matrix::zeros(0, 4_000);
        let lprobs = Probabilities::new(Vec::new(), 0, 2).unwrap();
        let err = VarianceReduction::new().expected_variances(&probs, &emb, &lprobs, &lemb).unwrap_err().to_string();
        assert!(err.contains("variance-reduction") && err.contains("4001") && err.contains("lower-dimensional"), "{err}");
    }

    #[test]
    fn vr_shape_mismatches_name_the_strategy() {
        let probs = Probabilities::from_rows(&[&[0.5, 0.5], &[0.2, 0.8]]).unwrap();
        let lprobs = Probabilities::from_rows(&[&[0.5, 0.5]]).unwrap();
        let cases = [
            (matrix(&[&[1.0]]), matrix(&[&[0.0]]), "embeddings"),
            (matrix(&[&[1.0], &[2.0]]), matrix(&[&[0.0, 1.0]]), "embedding width"),
            (matrix(&[&[1.0], &[2.0]]), matrix(&[&[0.0], &[1.0]]), "labeled-set embeddings"),
        ];
        for (emb, lemb, what) in cases {
            let err = VarianceReduction::new().expected_variances(&probs, &emb, &lprobs, &lemb).unwrap_err().to_string();
            assert!(err.contains("variance-reduction") && err.contains(what), "{err}");
        }
        let scores = vr_scores(probs, matrix(&[&[1.0], &[2.0]]), lprobs, matrix(&[&[0.0]]));
        let cands = ids(2);
        let err = VarianceReduction::new().select(&vr_context(&cands, &[], &scores), 1, &mut seeded_rng(0, 0)).unwrap_err().to_string();
        assert!(err.contains("variance-reduction") && err.contains("labeled-set probabilities"), "{err}");
        assert!(VarianceReduction::new().l2(0.0).is_err());
    }

    #[test]
    fn vr_with_one_seen_class_scores_zero_and_still_picks_distinct() {
        let probs = Probabilities::from_rows(&[&[1.0, 0.0], &[1.0, 0.0], &[1.0, 0.0]]).unwrap();
        let lprobs = Probabilities::from_rows(&[&[1.0, 0.0]]).unwrap();
        let scores = vr_scores(probs, matrix(&[&[1.0], &[2.0], &[3.0]]), lprobs, matrix(&[&[0.0]]));
        let (cands, labeled) = (ids(3), ids(1));
        let q = VarianceReduction::new().select(&vr_context(&cands, &labeled, &scores), 3, &mut seeded_rng(0, 0)).unwrap();
        let mut d = picks(&q);
        d.sort();
        assert_eq!(d, vec![0, 1, 2]);
        assert!(q.picks.iter().all(|p| p.score == 0.0));
    }

    // --- dense linear algebra -------------------------------------------------------------

    #[test]
    fn cholesky_inverse_and_solve() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = dense::cholesky(a.to_vec(), 3).unwrap();
        // L = [[2, 0, 0], [1, 2, 0], [0.2, 0.4, sqrt(3 − 0.04 − 0.16)]]
        let want = [2.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.2, 0.4, 2.8f64.sqrt()];
        for (g, w) in l.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{l:?}");
        }
        let inv = dense::spd_inverse(a.to_vec(), 3).unwrap();
        let id = dense::matmul(&a, &inv, 3);
        for i in 0..3 {
            for j in 0..3 {
                assert!((id[i * 3 + j] - (i == j) as u8 as f64).abs() < 1e-12, "{id:?}");
            }
        }
        assert!(dense::cholesky(vec![1.0, 2.0, 2.0, 1.0], 2).is_none(), "indefinite");
        // Needs a row swap: [[0, 1], [1, 1]] x = [1, 2] → x = (1, 1).
        let (mut m, mut rhs) = ([0.0, 1.0, 1.0, 1.0], [1.0, 2.0]);
        assert!(dense::solve_in_place(&mut m, 2, &mut rhs, 1));
        assert_eq!(rhs, [1.0, 1.0]);
        assert!(!dense::solve_in_place(&mut [1.0, 2.0, 2.0, 4.0], 2, &mut [1.0, 1.0], 1), "singular");
    }

    /// Sizes past the block size, with a partial last block.
    #[test]
    fn blocked_cholesky_and_inverse_of_a_larger_matrix() {
        let n = 250;
        let g: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let mut a = dense::matmul(&g, &g.iter().enumerate().map(|(i, _)| g[(i % n) * n + i / n]).collect::<Vec<_>>(), n);
        (0..n).for_each(|i| a[i * n + i] += 1.0);
        let l = dense::cholesky(a.clone(), n).unwrap();
        let lt: Vec<f64> = (0..n * n).map(|i| l[(i % n) * n + i / n]).collect();
        let llt = dense::matmul(&l, &lt, n);
        let inv = dense::spd_inverse(a.clone(), n).unwrap();
        let id = dense::matmul(&a, &inv, n);
        for i in 0..n {
            for j in 0..n {
                assert!((llt[i * n + j] - a[i * n + j]).abs() < 1e-8 * a[i * n + i], "L Lᵀ at ({i}, {j})");
                assert!((id[i * n + j] - (i == j) as u8 as f64).abs() < 1e-8, "A A⁻¹ at ({i}, {j}): {}", id[i * n + j]);
                assert_eq!(inv[i * n + j], inv[j * n + i]);
            }
        }
    }

    #[test]
    fn parallel_matmul_matches_the_naive_product() {
        let n = 137;
        let a: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let b: Vec<f64> = (0..n * n).map(|i| ((i * 104_729) % 97) as f64 / 48.0 - 1.0).collect();
        let c = dense::matmul(&a, &b, n);
        for i in 0..n {
            for j in 0..n {
                let want: f64 = (0..n).map(|t| a[i * n + t] * b[t * n + j]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-10);
            }
        }
        // a · aᵀ is symmetric: the half-product agrees with the full one.
        let at: Vec<f64> = (0..n * n).map(|i| a[(i % n) * n + i / n]).collect();
        let (full, half) = (dense::matmul(&a, &at, n), dense::matmul_symmetric(&a, &at, n));
        assert!(full.iter().zip(&half).all(|(x, y)| (x - y).abs() < 1e-10));
    }

    #[test]
    fn registered_names_and_needs() {
        for (name, alias, needs) in [
            ("expected-gradient-length", "egl", "probabilities+embeddings"),
            ("expected-gradient-length", "expected-model-change", "probabilities+embeddings"),
            ("expected-error-reduction", "eer", "probabilities+refit"),
            ("variance-reduction", "fisher-information", "probabilities+embeddings+labeled-embeddings+labeled-probabilities"),
        ] {
            let s = crate::by_name(alias).unwrap();
            assert_eq!(s.name(), name);
            assert_eq!(s.needs().describe(), needs);
        }
    }
}
