//! The figures of BENCHMARK.md: accuracy and log-loss per round, AULC, labels-to-target and label
//! efficiency, with means and spreads over seeds.

use quarry_core::Probabilities;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// Area under the learning curve: the mean of the curve's accuracies (equal spacing), in [0, 1].
pub fn aulc(accuracies: &[f64]) -> f64 {
    mean(accuracies)
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// Sample standard deviation (n − 1), 0 for fewer than two values.
pub fn std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// A mean curve over seeds: for each label count, the accuracies every seed reached there.
#[derive(Debug, Clone, Default)]
pub struct SeedCurves {
    by_labels: BTreeMap<usize, Vec<f64>>,
}

impl SeedCurves {
    pub fn add(&mut self, labels: usize, accuracy: f64) {
        self.by_labels.entry(labels).or_default().push(accuracy);
    }

    /// `(labels, mean, std, min, max)` for each label count, in increasing label order.
    pub fn summary(&self) -> Vec<(usize, f64, f64, f64, f64)> {
        self.by_labels
            .iter()
            .map(|(&n, v)| {
                let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                (n, mean(v), std(v), lo, hi)
            })
            .collect()
    }

    /// The mean accuracy at the largest label count.
    pub fn final_mean(&self) -> Option<f64> {
        self.by_labels.values().next_back().map(|v| mean(v))
    }

    /// labels-to-target(t): the smallest label count whose mean accuracy over seeds is ≥ t.
    pub fn labels_to_target(&self, target: f64) -> Option<usize> {
        self.by_labels.iter().find(|(_, v)| mean(v) >= target - 1e-12).map(|(&n, _)| n)
    }
}

/// Label efficiency of a strategy against random, as BENCHMARK.md defines it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Efficiency {
    /// The accuracy both must reach.
    pub target: f64,
    pub random_labels: Option<usize>,
    pub strategy_labels: Option<usize>,
    /// random_labels ÷ strategy_labels; `None` when either never reaches the target (no extrapolation).
    pub ratio: Option<f64>,
}

pub fn efficiency(random: &SeedCurves, strategy: &SeedCurves, target: f64) -> Efficiency {
    let r = random.labels_to_target(target);
    let s = strategy.labels_to_target(target);
    let ratio = match (r, s) {
        (Some(r), Some(s)) if s > 0 => Some(r as f64 / s as f64),
        _ => None,
    };
    Efficiency { target, random_labels: r, strategy_labels: s, ratio }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_metrics() {
        let p = Probabilities::from_rows(&[&[0.8, 0.2], &[0.4, 0.6], &[0.9, 0.1]]).unwrap();
        let y = [0, 1, 1];
        assert!((accuracy(&p, &y) - 2.0 / 3.0).abs() < 1e-12);
        let ll = -((0.8f64).ln() + (0.6f32 as f64).ln() + (0.1f32 as f64).ln()) / 3.0;
        assert!((log_loss(&p, &y) - ll).abs() < 1e-6);
        assert!((aulc(&[0.5, 0.7, 0.9]) - 0.7).abs() < 1e-12);
        assert!((std(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
    }

    /// Hand-computed: recalls 1/2 (class 0: one of two right) and 1 (class 1) → balanced 0.75.
    #[test]
    fn balanced_accuracy_by_hand() {
        let p = Probabilities::from_rows(&[&[0.8, 0.2], &[0.4, 0.6], &[0.1, 0.9]]).unwrap();
        assert!((balanced_accuracy(&p, &[0, 0, 1]) - 0.75).abs() < 1e-12);
        assert_eq!(recalls(&p, &[0, 0, 0]), vec![Some(1.0 / 3.0), None]);
    }

    /// Hand-computed: a = 0,0,1,1 and b = 0,1,1,1: p_o = 3/4, p_e = ½·¼ + ½·¾ = ½, κ = ½.
    #[test]
    fn kappa_by_hand() {
        assert!((cohen_kappa(&[0, 0, 1, 1], &[0, 1, 1, 1], 2) - 0.5).abs() < 1e-12);
        assert_eq!(cohen_kappa(&[2, 1, 0], &[2, 1, 0], 3), 1.0);
    }

    #[test]
    fn efficiency_follows_the_benchmark_definition() {
        let mut random = SeedCurves::default();
        let mut active = SeedCurves::default();
        for (n, a, b) in [(10, 0.5, 0.6), (20, 0.6, 0.8), (30, 0.7, 0.85), (40, 0.8, 0.9)] {
            random.add(n, a);
            random.add(n, a + 0.02); // two seeds: mean a + 0.01
            active.add(n, b);
        }
        let t = random.final_mean().unwrap();
        assert!((t - 0.81).abs() < 1e-12);
        let e = efficiency(&random, &active, t);
        assert_eq!(e.random_labels, Some(40));
        assert_eq!(e.strategy_labels, Some(30));
        assert!((e.ratio.unwrap() - 40.0 / 30.0).abs() < 1e-12);
        let never = efficiency(&active, &random, 0.95);
        assert_eq!(never.ratio, None);
    }
}
