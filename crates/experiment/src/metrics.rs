//! The figures of BENCHMARK.md: accuracy and log-loss per round, AULC, labels-to-target and label
//! efficiency, with means and spreads over seeds.

use serde::Serialize;
use std::collections::BTreeMap;

pub use quarry_core::metrics::{accuracy, balanced_accuracy, cohen_kappa, log_loss, mean, recalls};

/// Area under the learning curve: the mean of the curve's accuracies (equal spacing), in [0, 1].
pub fn aulc(accuracies: &[f64]) -> f64 {
    mean(accuracies)
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
    use quarry_core::Probabilities;

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
