//! Measures of one model's predictions against labels: what the session needs to judge its own
//! model (accuracy on a newly answered batch, Cohen's κ between successive models) and what a
//! simulation's evaluation observer reports on a test set. Curves over seeds live in
//! `quarry_experiment::metrics`.

use crate::Probabilities;

/// Fraction of rows whose most probable class is the true one.
pub fn accuracy(probs: &Probabilities, labels: &[u32]) -> f64 {
    let hits = probs.argmax().iter().zip(labels).filter(|(p, y)| p == y).count();
    hits as f64 / labels.len().max(1) as f64
}

/// Recall of each class (`None` for a class absent from `labels`).
pub fn recalls(probs: &Probabilities, labels: &[u32]) -> Vec<Option<f64>> {
    let k = probs.n_classes();
    let (mut hit, mut total) = (vec![0usize; k], vec![0usize; k]);
    for (p, &y) in probs.argmax().iter().zip(labels) {
        total[y as usize] += 1;
        hit[y as usize] += (*p == y) as usize;
    }
    hit.iter().zip(&total).map(|(&h, &t)| (t > 0).then(|| h as f64 / t as f64)).collect()
}

/// Balanced accuracy: the mean recall over the classes present in `labels`.
pub fn balanced_accuracy(probs: &Probabilities, labels: &[u32]) -> f64 {
    let r: Vec<f64> = recalls(probs, labels).into_iter().flatten().collect();
    mean(&r)
}

/// Mean −ln p(true class), with p clipped to [1e-15, 1] as scikit-learn does.
pub fn log_loss(probs: &Probabilities, labels: &[u32]) -> f64 {
    let total: f64 = probs.rows().zip(labels).map(|(p, &y)| -(p[y as usize] as f64).clamp(1e-15, 1.0).ln()).sum();
    total / labels.len().max(1) as f64
}

/// Cohen's κ between two labelings: (p_o − p_e) / (1 − p_e); 1 when both are identical
/// (also when chance agreement is already 1).
pub fn cohen_kappa(a: &[u32], b: &[u32], classes: usize) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 1.0;
    }
    let mut ca = vec![0usize; classes];
    let mut cb = vec![0usize; classes];
    let mut agree = 0usize;
    for (&x, &y) in a.iter().zip(b) {
        ca[x as usize] += 1;
        cb[y as usize] += 1;
        agree += (x == y) as usize;
    }
    let po = agree as f64 / n as f64;
    let pe: f64 = ca.iter().zip(&cb).map(|(&x, &y)| (x as f64 / n as f64) * (y as f64 / n as f64)).sum();
    if (1.0 - pe).abs() < 1e-12 { if po >= 1.0 - 1e-12 { 1.0 } else { 0.0 } } else { (po - pe) / (1.0 - pe) }
}

/// The mean of `v` (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

