//! Multinomial logistic regression with an L2 penalty, as in the P1 protocol:
//! minimize ½‖W‖² + C·Σᵢ −log softmax(xᵢW + b)_{yᵢ} (the intercept is not penalized).
//!
//! Like scikit-learn, only the classes present in the labeled set are modeled (the others get
//! probability 0), and two classes use the binomial form (one weight vector, the other class's
//! logit fixed at 0), so the fitted model is the same one scikit-learn's `LogisticRegression`
//! converges to. The objective is strictly convex in W, so a converged fit does not depend on
//! where L-BFGS started; [`LogisticRegressionLearner`] therefore warm-starts from the previous
//! round's weights (continuous fine-tuning) and only pays for the change the new labels make.

use crate::checkpoint::Checkpoint;
use crate::{lbfgs, linalg, softmax};
use quarry_core::{Error, Learner, Matrix, Probabilities, Result};

/// Checked hyper-parameters. Build with [`LogisticRegressionParams::new`] and the setters; every
/// value is validated in [`LogisticRegressionParams::fit`], so a fitted model never holds an
/// invalid setting.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegressionParams {
    c: f64,
    max_iter: usize,
    tol: f64,
}

impl Default for LogisticRegressionParams {
    fn default() -> Self {
        LogisticRegressionParams { c: 1.0, max_iter: 1000, tol: 1e-6 }
    }
}

impl LogisticRegressionParams {
    pub fn new() -> Self {
        Self::default()
    }
    /// Inverse regularization strength (scikit-learn's `C`).
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Stop when the largest gradient entry of the per-sample objective is below this.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// The settings in a checkpoint (each float as the shortest text of its exact bits).
    fn write(&self, ck: &mut Checkpoint) {
        ck.set("c", self.c);
        ck.set("max_iter", self.max_iter);
        ck.set("tol", self.tol);
    }

    /// Errors unless `ck` was saved with these settings.
    fn expect_in(&self, ck: &Checkpoint) -> Result<()> {
        ck.expect("c", self.c)?;
        ck.expect("max_iter", self.max_iter)?;
        ck.expect("tol", self.tol)
    }

    fn check(&self) -> Result<()> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(Error::param("C", format!("must be a positive number, got {}", self.c)));
        }
        if self.max_iter == 0 {
            return Err(Error::param("max_iter", "must be at least 1"));
        }
        if self.tol.is_nan() || self.tol <= 0.0 {
            return Err(Error::param("tol", format!("must be positive, got {}", self.tol)));
        }
        Ok(())
    }

    /// Fit on `x` `[n, dim]` with labels in `0..n_classes`, starting from `warm` when it models
    /// the same classes and dimension.
    pub fn fit(&self, x: &Matrix, y: &[u32], n_classes: usize, warm: Option<&LogisticRegression>) -> Result<LogisticRegression> {
        self.check()?;
        if x.rows() != y.len() {
            return Err(Error::shape("labels for logistic regression", x.rows(), y.len()));
        }
        if let Some(&bad) = y.iter().find(|&&l| l as usize >= n_classes) {
            return Err(Error::shape("label", format!("< {n_classes}"), bad));
        }
        let mut present: Vec<u32> = y.to_vec();
        present.sort_unstable();
        present.dedup();
        if present.len() < 2 {
            return Err(Error::param("labeled set", format!("needs at least 2 classes to fit, has {}", present.len())));
        }
        let n = x.rows();
        let d = x.cols();
        let k_eff = present.len();
        let binary = k_eff == 2;
        let m = if binary { 1 } else { k_eff };
        // Class index → column among the present classes.
        let mut col_of = vec![usize::MAX; n_classes];
        for (j, &c) in present.iter().enumerate() {
            col_of[c as usize] = j;
        }
        let yc: Vec<usize> = y.iter().map(|&l| col_of[l as usize]).collect();
        let xf: Vec<f64> = x.as_slice().iter().map(|&v| v as f64).collect();

        let n_params = d * m + m;
        let mut theta = vec![0.0; n_params];
        if let Some(w) = warm.filter(|w| w.dim == d && w.present == present) {
            theta[..d * m].copy_from_slice(&w.w);
            theta[d * m..].copy_from_slice(&w.b);
        }
        let inv_c = 1.0 / self.c;
        let scale = 1.0 / n as f64;
        let mut z = vec![0.0; n * m];
        let mut logits = vec![0.0; k_eff];
        let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
            let (w, b) = theta.split_at(d * m);
            linalg::gemm_f64(n, d, m, &xf, w, 0.0, &mut z);
            let mut loss = 0.0;
            // z becomes the residual P − Y on the free columns.
            for i in 0..n {
                let zi = &mut z[i * m..(i + 1) * m];
                if binary {
                    logits[0] = 0.0;
                    logits[1] = zi[0] + b[0];
                } else {
                    for j in 0..m {
                        logits[j] = zi[j] + b[j];
                    }
                }
                let lse = softmax::log_sum_exp(&logits);
                loss += lse - logits[yc[i]];
                if binary {
                    zi[0] = (logits[1] - lse).exp() - (yc[i] == 1) as u8 as f64;
                } else {
                    for j in 0..m {
                        zi[j] = (logits[j] - lse).exp() - (yc[i] == j) as u8 as f64;
                    }
                }
            }
            let (gw, gb) = grad.split_at_mut(d * m);
            linalg::gemm_tn_f64(n, d, m, &xf, &z, 0.0, gw);
            let mut reg = 0.0;
            for (g, &wv) in gw.iter_mut().zip(w) {
                *g = (*g + inv_c * wv) * scale;
                reg += wv * wv;
            }
            gb.iter_mut().for_each(|g| *g = 0.0);
            for i in 0..n {
                for j in 0..m {
                    gb[j] += z[i * m + j];
                }
            }
            gb.iter_mut().for_each(|g| *g *= scale);
            (loss + 0.5 * inv_c * reg) * scale
        };
        let report = lbfgs::minimize(&mut theta, objective, self.tol, self.max_iter, 10);
        let b = theta.split_off(d * m);
        Ok(LogisticRegression { dim: d, n_classes, present, w: theta, b, iterations: report.iterations })
    }
}

/// A fitted model. Weights `w` are `[dim, m]` row-major and `b` is `[m]`, where `m` is the number
/// of modeled classes, or 1 in the binomial case.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    dim: usize,
    n_classes: usize,
    present: Vec<u32>,
    w: Vec<f64>,
    b: Vec<f64>,
    iterations: usize,
}

impl LogisticRegression {
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }
    /// The classes this model saw in its labeled set (the others have probability 0).
    pub fn classes_seen(&self) -> &[u32] {
        &self.present
    }
    /// L-BFGS iterations the last fit took.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Class probabilities `[n, n_classes]`, computed in blocks so memory stays bounded.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Probabilities> {
        if x.cols() != self.dim {
            return Err(Error::shape("features for prediction", self.dim, x.cols()));
        }
        let m = self.b.len();
        let k_eff = self.present.len();
        let binary = k_eff == 2;
        let w32: Vec<f32> = self.w.iter().map(|&v| v as f32).collect();
        let mut out = vec![0f32; x.rows() * self.n_classes];
        const BLOCK: usize = 4096;
        let mut z = vec![0f32; BLOCK * m];
        let mut logits = vec![0f64; k_eff];
        for start in (0..x.rows()).step_by(BLOCK) {
            let rows = BLOCK.min(x.rows() - start);
            let xs = &x.as_slice()[start * self.dim..(start + rows) * self.dim];
            linalg::gemm_f32(rows, self.dim, m, xs, &w32, &mut z[..rows * m]);
            for r in 0..rows {
                let zr = &z[r * m..(r + 1) * m];
                if binary {
                    logits[0] = 0.0;
                    logits[1] = zr[0] as f64 + self.b[0];
                } else {
                    for j in 0..m {
                        logits[j] = zr[j] as f64 + self.b[j];
                    }
                }
                let (mx, sum) = softmax::shifted_exp_sum(&logits);
                let row = &mut out[(start + r) * self.n_classes..(start + r + 1) * self.n_classes];
                for (j, &c) in self.present.iter().enumerate() {
                    row[c as usize] = ((logits[j] - mx).exp() / sum) as f32;
                }
            }
        }
        Probabilities::new(out, x.rows(), self.n_classes)
    }

    /// Writes the fitted state into a learner's checkpoint: the shape in the settings (`dim`,
    /// `n_classes`), `w` `F64 [dim, m]`, `b` `F64 [m]`, `classes_seen` `U64 [k]` and the
    /// `iterations` counter.
    fn write(&self, ck: &mut Checkpoint) {
        let m = self.b.len();
        ck.set("dim", self.dim);
        ck.set("n_classes", self.n_classes);
        ck.put_f64("w", &[self.dim, m], &self.w);
        ck.put_f64("b", &[m], &self.b);
        ck.put_u64("classes_seen", &[self.present.len()], &self.present.iter().map(|&c| c as u64).collect::<Vec<_>>());
        ck.put_count("iterations", self.iterations as u64);
    }

    /// Reads what [`LogisticRegression::write`] wrote, checking it is a model that can predict.
    fn read(ck: &Checkpoint) -> Result<Self> {
        let (dim, n_classes): (usize, usize) = (ck.get_parsed("dim")?, ck.get_parsed("n_classes")?);
        let bad = |why: String| Error::Other(format!("checkpoint: logreg {why}"));
        let k = match ck.shape("classes_seen")? {
            &[k] => k,
            other => return Err(bad(format!("classes_seen has shape {other:?}, expected [k]"))),
        };
        if k < 2 || k > n_classes {
            return Err(bad(format!("model of {k} seen classes out of {n_classes}")));
        }
        let m = if k == 2 { 1 } else { k };
        let present = ck.u64("classes_seen", &[k])?;
        if present.windows(2).any(|w| w[0] >= w[1]) || present[k - 1] >= n_classes as u64 {
            return Err(bad(format!("classes_seen {present:?} are not increasing class ids below {n_classes}")));
        }
        let w = ck.f64("w", &[dim, m])?;
        let b = ck.f64("b", &[m])?;
        let iterations = ck.count("iterations")? as usize;
        Ok(LogisticRegression { dim, n_classes, present: present.into_iter().map(|c| c as u32).collect(), w, b, iterations })
    }
}

/// Gradient tolerance of the hypothetical refits of expected error / variance reduction.
pub const WHAT_IF_TOL: f64 = 1e-4;

/// The learner kind of [`LogisticRegressionLearner`] (its name and its checkpoints').
const LOGREG: &str = "logreg";

/// The [`Learner`] form: holds the parameters and the current fit, and warm-starts each new fit.
#[derive(Debug, Clone, Default)]
pub struct LogisticRegressionLearner {
    pub params: LogisticRegressionParams,
    pub model: Option<LogisticRegression>,
}

impl LogisticRegressionLearner {
    pub fn new(params: LogisticRegressionParams) -> Self {
        LogisticRegressionLearner { params, model: None }
    }
}

impl Learner for LogisticRegressionLearner {
    fn name(&self) -> &str {
        LOGREG
    }

    fn fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()> {
        let model = self.params.fit(x, y, n_classes, self.model.as_ref())?;
        self.model = Some(model);
        Ok(())
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Probabilities> {
        self.model
            .as_ref()
            .ok_or_else(|| Error::Other("logistic regression: predict before fit".into()))?
            .predict_proba(x)
    }

    /// A [`Checkpoint`] of kind `logreg`: the settings `c`, `max_iter`, `tol` and `fitted`, and
    /// when fitted the model ([`LogisticRegression::write`]).
    fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut ck = Checkpoint::new(LOGREG);
        self.params.write(&mut ck);
        ck.set("fitted", self.model.is_some());
        if let Some(m) = &self.model {
            m.write(&mut ck);
        }
        Ok(ck.to_bytes())
    }

    /// Restores a checkpoint of a `logreg` learner with the same settings (empty bytes: back to
    /// before the first fit).
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            self.model = None;
            return Ok(());
        }
        let ck = Checkpoint::parse_of(bytes, LOGREG, LOGREG)?;
        self.params.expect_in(&ck)?;
        let fitted: bool = ck.get_parsed("fitted")?;
        self.model = if fitted { Some(LogisticRegression::read(&ck)?) } else { None };
        Ok(())
    }

    fn boxed_clone(&self) -> Box<dyn Learner> {
        Box::new(self.clone())
    }

    /// Warm-started from the current fit and stopped at a gradient of [`WHAT_IF_TOL`] (the
    /// loop's fits go to 1e-6): a what-if refit moves the weights by one sample's worth.
    fn what_if_clone(&self) -> Box<dyn Learner> {
        let mut c = self.clone();
        c.params.tol = c.params.tol.max(WHAT_IF_TOL);
        Box::new(c)
    }

    /// A linear model's last layer reads the features themselves.
    fn embed(&self, x: &Matrix) -> Result<Matrix> {
        Ok(x.clone())
    }

    fn gradient_embedding(&self, x: &Matrix) -> Result<Matrix> {
        let p = self.predict_proba(x)?;
        Ok(gradient_embedding(&p, x))
    }
}

/// `(pᵢ − onehot(argmax pᵢ)) ⊗ xᵢ` for every row: the gradient of the cross-entropy at the
/// predicted label w.r.t. a linear last layer, laid out class-major `[n, classes·dim]`.
pub fn gradient_embedding(p: &Probabilities, x: &Matrix) -> Matrix {
    let (n, k, d) = (x.rows(), p.n_classes(), x.cols());
    let yhat = p.argmax();
    let mut out = Matrix::zeros(n, k * d);
    for (i, &top) in yhat.iter().enumerate() {
        let (xi, pi) = (x.row(i), p.row(i));
        let row = out.row_mut(i);
        for c in 0..k {
            let g = pi[c] - (c as u32 == top) as u8 as f32;
            for (o, &v) in row[c * d..(c + 1) * d].iter_mut().zip(xi) {
                *o = g * v;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Matrix, Vec<u32>) {
        // Three well separated blobs on a line, plus a second feature of noise-free offsets.
        let pts: &[(f32, f32, u32)] = &[
            (-3.0, 0.1, 0), (-2.5, -0.2, 0), (-3.2, 0.3, 0), (0.0, 0.2, 1), (0.3, -0.1, 1),
            (-0.2, 0.0, 1), (3.0, 0.1, 2), (2.7, -0.3, 2), (3.3, 0.2, 2), (-1.4, 0.0, 1),
        ];
        let data = pts.iter().flat_map(|p| [p.0, p.1]).collect();
        (Matrix::new(data, pts.len(), 2).unwrap(), pts.iter().map(|p| p.2).collect())
    }

    /// The gradient of the objective vanishes at the fit: check it numerically through the
    /// optimality condition W/C = −Xᵀ(P − Y) for the softmax case.
    #[test]
    fn fit_satisfies_optimality_conditions() {
        let (x, y) = toy();
        let model = LogisticRegressionParams::new().tol(1e-10).fit(&x, &y, 3, None).unwrap();
        let p = model.predict_proba(&x).unwrap();
        for j in 0..3 {
            for f in 0..2 {
                let mut g = model.w[f * 3 + j];
                for (i, &yi) in y.iter().enumerate() {
                    g += (p.row(i)[j] as f64 - (yi == j as u32) as u8 as f64) * x.row(i)[f] as f64;
                }
                assert!(g.abs() < 1e-4, "gradient {g} for class {j} feature {f}");
            }
            let gb: f64 = (0..x.rows()).map(|i| p.row(i)[j] as f64 - (y[i] == j as u32) as u8 as f64).sum();
            assert!(gb.abs() < 1e-4);
        }
        assert_eq!(p.argmax(), y);
    }

    /// A what-if copy refits from the current fit with the looser tolerance; its predictions
    /// stay close to a full-tolerance refit, and the original learner is untouched.
    #[test]
    fn what_if_clone_is_a_looser_close_refit() {
        let (x, y) = toy();
        let mut l = LogisticRegressionLearner::new(LogisticRegressionParams::new());
        l.fit(&x, &y, 3).unwrap();
        let before = l.predict_proba(&x).unwrap();
        let mut x2 = x.clone();
        x2.push_row(&[-1.0, 0.1]);
        let mut y2 = y.clone();
        y2.push(0);
        let mut loose = l.what_if_clone();
        loose.fit(&x2, &y2, 3).unwrap();
        let mut strict = l.boxed_clone();
        strict.fit(&x2, &y2, 3).unwrap();
        let (a, b) = (loose.predict_proba(&x).unwrap(), strict.predict_proba(&x).unwrap());
        let diff = a.as_slice().iter().zip(b.as_slice()).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-2, "loose refit differs by {diff}");
        assert_eq!(l.predict_proba(&x).unwrap(), before);
        assert_eq!(l.params.tol, 1e-6);
    }

    /// One feature, two classes: the binomial optimum solves two scalar equations; check them
    /// by hand: w + Σ (σ(w xᵢ + b) − yᵢ) xᵢ = 0 and Σ (σ − y) = 0.
    #[test]
    fn binary_uses_one_logit() {
        let x = Matrix::new(vec![-2.0, -1.0, 1.0, 2.0, 0.5], 5, 1).unwrap();
        let y = vec![0, 0, 1, 1, 0];
        let m = LogisticRegressionParams::new().tol(1e-12).fit(&x, &y, 2, None).unwrap();
        assert_eq!(m.w.len(), 1);
        let (w, b) = (m.w[0], m.b[0]);
        let sig = |t: f64| 1.0 / (1.0 + (-t).exp());
        let xs = [-2.0, -1.0, 1.0, 2.0, 0.5];
        let gw: f64 = w + xs.iter().zip(&y).map(|(&xi, &yi)| (sig(w * xi + b) - yi as f64) * xi).sum::<f64>();
        let gb: f64 = xs.iter().zip(&y).map(|(&xi, &yi)| sig(w * xi + b) - yi as f64).sum();
        assert!(gw.abs() < 1e-8 && gb.abs() < 1e-8, "{gw} {gb}");
    }

    #[test]
    fn absent_classes_get_zero_probability_and_rows_sum_to_one() {
        let (x, y) = toy();
        let m = LogisticRegressionParams::new().fit(&x, &y, 5, None).unwrap();
        let p = m.predict_proba(&x).unwrap();
        for r in p.rows() {
            assert_eq!(r[3], 0.0);
            assert_eq!(r[4], 0.0);
        }
    }

    #[test]
    fn warm_start_reaches_the_same_optimum() {
        let (x, y) = toy();
        let params = LogisticRegressionParams::new().tol(1e-9);
        let cold = params.fit(&x, &y, 3, None).unwrap();
        let sub = x.select_rows(&[0, 1, 3, 4, 6, 7]);
        let first = params.fit(&sub, &[0, 0, 1, 1, 2, 2], 3, None).unwrap();
        let warm = params.fit(&x, &y, 3, Some(&first)).unwrap();
        for (a, b) in cold.w.iter().zip(&warm.w) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// The checkpoint holds the exact bits: a restored learner predicts and warm-starts its next
    /// fit exactly as the original; an unfitted learner round-trips too; another setting, a
    /// damaged checkpoint or garbage is an error that leaves the learner as it was.
    #[test]
    fn checkpoint_round_trips_exactly_and_rejects_garbage() {
        let (x, y) = toy();
        let params = LogisticRegressionParams::new().c(0.5);
        let mut a = LogisticRegressionLearner::new(params.clone());
        let mut b = LogisticRegressionLearner::new(params.clone());
        b.restore(&a.checkpoint().unwrap()).unwrap();
        assert!(b.model.is_none(), "an unfitted learner restores unfitted");
        a.fit(&x.select_rows(&[0, 1, 3, 4, 6]), &[0, 0, 1, 1, 2], 3).unwrap();
        let bytes = a.checkpoint().unwrap();
        b.restore(&bytes).unwrap();
        assert_eq!(b.model, a.model);
        assert_eq!(b.checkpoint().unwrap(), bytes);
        a.fit(&x, &y, 3).unwrap();
        b.fit(&x, &y, 3).unwrap();
        assert_eq!(a.model, b.model, "the warm start continued from the same bits");
        let (pa, pb) = (a.predict_proba(&x).unwrap(), b.predict_proba(&x).unwrap());
        assert!(pa.as_slice().iter().zip(pb.as_slice()).all(|(p, q)| p.to_bits() == q.to_bits()));

        let before = b.model.clone();
        let e = LogisticRegressionLearner::new(params.clone().c(1.0)).restore(&bytes).unwrap_err().to_string();
        assert!(e.contains("c = 0.5") && e.contains("c = 1"), "{e}");
        assert!(b.restore(b"QLR1short").unwrap_err().to_string().contains("not a quarry checkpoint"));
        assert!(b.restore(&bytes[..bytes.len() - 1]).is_err());
        let reshaped = crate::checkpoint::edit_header(&bytes, "\"shape\":[2,3]", "\"shape\":[3,2]");
        let e = b.restore(&reshaped).unwrap_err().to_string();
        assert!(e.contains("tensor 'w' has shape [3, 2], expected [2, 3]"), "{e}");
        assert_eq!(b.model, before, "a failed restore changed nothing");
        b.restore(&[]).unwrap();
        assert!(b.model.is_none());
    }

    /// Hand-computed: p = (0.7, 0.2, 0.1), x = (1, −2): ŷ = 0, g = (−0.3, 0.2, 0.1) ⊗ x.
    #[test]
    fn gradient_embedding_by_hand() {
        let p = Probabilities::from_rows(&[&[0.7, 0.2, 0.1]]).unwrap();
        let x = Matrix::new(vec![1.0, -2.0], 1, 2).unwrap();
        let g = gradient_embedding(&p, &x);
        let want = [-0.3, 0.6, 0.2, -0.4, 0.1, -0.2];
        for (a, b) in g.row(0).iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", g.row(0));
        }
    }

    #[test]
    fn bad_parameters_and_inputs_are_errors() {
        let (x, y) = toy();
        assert!(LogisticRegressionParams::new().c(0.0).fit(&x, &y, 3, None).is_err());
        assert!(LogisticRegressionParams::new().fit(&x, &y[..3], 3, None).is_err());
        assert!(LogisticRegressionParams::new().fit(&x, &[1; 10], 3, None).is_err());
        assert!(LogisticRegressionParams::new().fit(&x, &y, 2, None).is_err());
    }
}
