//! Variance reduction (Cohn, Ghahramani & Jordan 1996; Schein & Ungar 2007): the pool's output
//! variance left after labeling a candidate, from the softmax Fisher information, no refit.

use super::{dense, expect_rows};
use crate::select::top_k;
use quarry_core::{Error, Matrix, Needs, Probabilities, QuarryRng, Query, QueryContext, Result, ScoreKind, Strategy};
use rayon::prelude::*;

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
        Needs::of(&[ScoreKind::Probabilities, ScoreKind::Embeddings, ScoreKind::LabeledEmbeddings, ScoreKind::LabeledProbabilities])
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

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::testing::{picks, probs_of};
    use crate::test_support::{ids, matrix, prob_rows};
    use proptest::prelude::{prop_assert, proptest};
    use quarry_core::{SampleId, Scores, seeded_rng};

    fn vr_context<'a>(cands: &'a [SampleId], labeled: &'a [SampleId], scores: &'a Scores) -> QueryContext<'a> {
        QueryContext { candidates: cands, scores, labeled, labeled_labels: &[], what_if: None }
    }

    fn vr_scores(probs: Probabilities, emb: Matrix, labeled_probs: Probabilities, labeled_emb: Matrix) -> Scores {
        Scores::default()
            .with(ScoreKind::Probabilities, probs)
            .with(ScoreKind::Embeddings, emb)
            .with(ScoreKind::LabeledProbabilities, labeled_probs)
            .with(ScoreKind::LabeledEmbeddings, labeled_emb)
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
}
