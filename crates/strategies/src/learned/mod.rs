//! Learned strategies: a small network trained at every query decides what to label.
//!
//! - [`loss_prediction`]: Yoo & Kweon, "Learning Loss for Active Learning", CVPR 2019 — a module
//!   on the target model's embeddings learns to rank the labeled samples by their loss; the
//!   candidates with the highest predicted loss are queried.
//! - [`vaal`]: Sinha, Ebrahimi & Darrell, "Variational Adversarial Active Learning", ICCV 2019 —
//!   a β-VAE and a discriminator on the raw inputs play a labeled-vs-unlabeled game; the candidates
//!   the discriminator finds least like the labeled set are queried.
//!
//! Both build their networks from the private `net` module (dense layers, manual backward,
//! Adam), fresh and seeded from the query's rng at every query, so a seed fixes the picks.

pub mod loss_prediction;
pub(crate) mod net;
pub mod vaal;

pub use loss_prediction::LossPrediction;
pub use vaal::Vaal;

use crate::Entry;
use quarry_core::Matrix;

pub(crate) fn entries() -> Vec<Entry> {
    vec![
        Entry {
            name: "loss-prediction",
            aliases: &["learning-loss", "ll4al"],
            family: "learned",
            paper: "Yoo & Kweon, Learning Loss for Active Learning, CVPR 2019",
            summary: "a loss-prediction module (embedding → 128 → 1) trained each round with the margin ranking loss on the labeled set's cross-entropy (detached form); highest predicted loss first",
            build: |_| Ok(Box::new(LossPrediction)),
        },
        Entry {
            name: "vaal",
            aliases: &[],
            family: "learned",
            paper: "Sinha, Ebrahimi & Darrell, Variational Adversarial Active Learning, ICCV 2019",
            summary: "task-agnostic: a β-VAE on the raw inputs and a discriminator on its latent means learn labeled vs unlabeled each round; least labeled-looking first",
            build: |_| Ok(Box::new(Vaal::default())),
        },
    ]
}

/// Per-column mean and standard deviation over the rows of all `parts` (std 1 where a column is
/// constant), so inputs can be put on one scale before a network sees them.
pub(crate) fn column_stats(parts: &[&Matrix]) -> (Vec<f32>, Vec<f32>) {
    let d = parts.first().map_or(0, |m| m.cols());
    let n: usize = parts.iter().map(|m| m.rows()).sum();
    let mut mean = vec![0f64; d];
    for m in parts {
        for row in m.as_slice().chunks_exact(d.max(1)) {
            mean.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
        }
    }
    mean.iter_mut().for_each(|s| *s /= n.max(1) as f64);
    let mut var = vec![0f64; d];
    for m in parts {
        for row in m.as_slice().chunks_exact(d.max(1)) {
            var.iter_mut().zip(row).zip(&mean).for_each(|((s, &v), mu)| *s += (v as f64 - mu).powi(2));
        }
    }
    let std = var.iter().map(|s| (s / n.max(1) as f64).sqrt()).map(|s| if s > 1e-6 { s as f32 } else { 1.0 }).collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// `m`'s rows standardized with `mean` and `std`, row-major.
pub(crate) fn standardize(m: &Matrix, mean: &[f32], std: &[f32]) -> Vec<f32> {
    let mut out = m.as_slice().to_vec();
    for row in out.chunks_exact_mut(m.cols().max(1)) {
        for ((v, mu), s) in row.iter_mut().zip(mean).zip(std) {
            *v = (*v - mu) / s;
        }
    }
    out
}

/// Rows `idx` of the row-major `[_, d]` buffer `x`.
pub(crate) fn gather(x: &[f32], d: usize, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        out.extend_from_slice(&x[i * d..(i + 1) * d]);
    }
    out
}
