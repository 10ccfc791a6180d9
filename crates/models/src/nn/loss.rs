//! Softmax and the cross-entropy loss of integer labels.

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

/// Cross-entropy of logits `z` `[rows, classes]` against `labels`: returns the *sum* of the
/// per-sample losses and overwrites `z` with the gradient of `scale ×` that sum, i.e.
/// `scale·(softmax(z) − onehot(y))` (with `scale = 1/batch` for the mean loss of a batch
/// split into chunks).
pub(crate) fn cross_entropy(z: &mut [f32], labels: &[u32], classes: usize, scale: f32) -> f64 {
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
