//! Softmax and softmax cross-entropy: every variant the crate computes, in one place.
//!
//! All subtract the row's maximum before exponentiating (no overflow). They differ in precision and
//! operation order, and each caller's results (learning curves, checkpoints, `quarry predict`'s
//! probabilities) were defined with its own, so they are kept side by side rather than merged into
//! one, which would change those results in the last bits:
//!
//! | function | precision | used by |
//! | --- | --- | --- |
//! | [`softmax_rows`] | f32: exp and sum in f32, then times 1/sum | LeNet-5 / MLP probabilities, the EfficientNet learner's head |
//! | [`softmax_row_f64`] | shift in f32, exp and sum in f64, then divide | `quarry predict`'s ImageNet probabilities |
//! | [`shifted_exp_sum`], [`log_sum_exp`] | shift, exp and sum in f64 | logistic regression (objective and probabilities), [`cross_entropy_mean`] |
//! | [`cross_entropy_rows`] | f32 log-sum-exp, gradient in place, scaled sum | LeNet-5 / MLP training |
//! | [`cross_entropy_mean`] | f64 log-sum-exp, gradient into its own buffer, mean | EfficientNet-Lite0 training |

/// Replaces each row of logits `[rows, classes]` by its softmax (max-subtracted, so no overflow).
pub(crate) fn softmax_rows(z: &mut [f32], classes: usize) {
    for row in z.chunks_exact_mut(classes) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - mx).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Softmax of one row of logits (shifted by the maximum, summed in f64).
pub fn softmax_row_f64(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&z| ((z - max) as f64).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|&e| (e / sum) as f32).collect()
}

/// `(m, Σ_j exp(x_j − m))` with `m = max_j x_j`, all in f64 (an f32 row is widened first; its
/// maximum is the same value either way). `m` is −∞ for an empty row.
pub fn shifted_exp_sum<T: Copy + Into<f64>>(row: &[T]) -> (f64, f64) {
    let max = row.iter().map(|&v| v.into()).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = row.iter().map(|&v| (v.into() - max).exp()).sum();
    (max, sum)
}

/// `log Σ_j exp(x_j)`, shifted by the maximum, in f64 (see [`shifted_exp_sum`]).
pub fn log_sum_exp<T: Copy + Into<f64>>(row: &[T]) -> f64 {
    let (max, sum) = shifted_exp_sum(row);
    max + sum.ln()
}

/// Cross-entropy of logits `z` `[rows, classes]` against `labels`: returns the *sum* of the
/// per-sample losses and overwrites `z` with the gradient of `scale ×` that sum, i.e.
/// `scale·(softmax(z) − onehot(y))` (with `scale = 1/batch` for the mean loss of a batch
/// split into chunks).
pub(crate) fn cross_entropy_rows(z: &mut [f32], labels: &[u32], classes: usize, scale: f32) -> f64 {
    let mut total = 0.0f64;
    for (row, &y) in z.chunks_exact_mut(classes).zip(labels) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&v| (v - mx).exp()).sum();
        let lse = mx + sum.ln();
        total += (lse - row[y as usize]) as f64;
        for v in row.iter_mut() {
            *v = (*v - lse).exp() * scale;
        }
        row[y as usize] -= scale;
    }
    total
}

/// Mean softmax cross-entropy of `logits` `[n, classes]` against `labels`, and its gradient
/// `(softmax − onehot)/n` written to `dlogits`. Sums in f64.
pub fn cross_entropy_mean(logits: &[f32], labels: &[usize], classes: usize, dlogits: &mut [f32]) -> f32 {
    let n = labels.len();
    assert_eq!(logits.len(), n * classes, "cross_entropy: logits are not [{n}, {classes}]");
    assert_eq!(dlogits.len(), logits.len(), "cross_entropy: gradient is not [{n}, {classes}]");
    let mut loss = 0.0f64;
    for ((row, d), &y) in logits.chunks_exact(classes).zip(dlogits.chunks_exact_mut(classes)).zip(labels) {
        let log_sum = log_sum_exp(row);
        loss += log_sum - row[y] as f64;
        for (j, (g, &z)) in d.iter_mut().zip(row).enumerate() {
            let p = (z as f64 - log_sum).exp();
            *g = ((p - if j == y { 1.0 } else { 0.0 }) / n as f64) as f32;
        }
    }
    (loss / n.max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_softmax_sums_to_one_and_agrees() {
        let logits = [1.0f32, 3.0, 2.0, 3.0, -40.0];
        let mut rows = logits.to_vec();
        softmax_rows(&mut rows, 5);
        let wide = softmax_row_f64(&logits);
        let (m, s) = shifted_exp_sum(&logits);
        for (j, (&a, &b)) in rows.iter().zip(&wide).enumerate() {
            let c = ((logits[j] as f64 - m).exp() / s) as f32;
            assert!((a - b).abs() < 1e-6 && (b - c).abs() < 1e-7, "{j}: {a} {b} {c}");
        }
        assert!((wide.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((log_sum_exp(&logits) - (m + s.ln())).abs() == 0.0);
        assert!((log_sum_exp(&[0.0f64, 0.0]) - 2f64.ln()).abs() < 1e-15);
    }

    /// The f64 log-sum-exp of an f32 row is the one `cross_entropy_mean` always computed: the
    /// maximum taken in f32 and widened, then the shifted exponentials summed in f64.
    #[test]
    fn log_sum_exp_of_f32_rows_matches_the_f32_maximum_form() {
        for row in [[0.5f32, -1.25, 3.0, 2.75], [0.0, -0.0, -3.0, -1e-30], [-0.0, -0.0, -0.0, -0.0], [1e30, -1e30, 7.0, 7.0]] {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let sum: f64 = row.iter().map(|&z| (z as f64 - max).exp()).sum();
            assert_eq!(log_sum_exp(&row).to_bits(), (sum.ln() + max).to_bits(), "{row:?}");
        }
    }

    #[test]
    fn both_cross_entropies_give_the_log_loss_and_its_gradient() {
        let logits = [0.2f32, -1.0, 2.0, 0.5, 0.5, -0.5];
        let labels = [2usize, 0];
        let mut d = [0.0f32; 6];
        let mean = cross_entropy_mean(&logits, &labels, 3, &mut d);
        let mut z = logits;
        let sum = cross_entropy_rows(&mut z, &[2, 0], 3, 0.5);
        assert!((mean as f64 - sum / 2.0).abs() < 1e-6);
        for (a, b) in d.iter().zip(&z) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
