//! Speed and memory of the batch-aware strategies at the size of the issue: select 1,000 of
//! 60,000 candidates with 512-d embeddings (core-set with a 1,000-sample labeled set, BADGE on
//! 512-d gradient embeddings, diverse mini-batch), on seeded random data.
//!
//! ```text
//! cargo run --release -p quarry-strategies --example batch_selection [-- candidates batch clusters]
//! ```
//!
//! The points lie around `clusters` random centers (default 100); with as many clusters as
//! candidates the data has no structure at all.
//!
//! Prints each strategy's selection time (wall clock, and CPU time summed over threads, which a
//! busy machine does not inflate) and the process's peak resident memory (VmHWM from
//! /proc/self/status) after it; the inputs alone take about 245 MB.

use quarry_core::{Matrix, Probabilities, QueryContext, SampleId, ScoreKind, Scores, seeded_rng};
use rand::Rng;
use std::time::Instant;

mod common;
use common::cpu_seconds;

const DIM: usize = 512;
const LABELED: usize = 1_000;
const CLASSES: usize = 8;
/// Features behind the gradient embeddings: 8 classes × 64 = 512 columns.
const FEATURES: usize = DIM / CLASSES;

/// Peak resident set size of this process in MB (Linux), or NaN elsewhere.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `n` points around the given random centers, so the data has structure to find.
fn clustered(n: usize, centers: &[f32], rng: &mut quarry_core::QuarryRng) -> Matrix {
    let mut data = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let c = rng.random_range(0..centers.len() / DIM);
        data.extend(centers[c * DIM..(c + 1) * DIM].iter().map(|&m| m + rng.random_range(-0.5f32..0.5)));
    }
    Matrix::new(data, n, DIM).expect("n × DIM values")
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("arguments: candidates batch clusters"));
    let n = args.next().unwrap_or(60_000);
    let k = args.next().unwrap_or(1_000);
    let clusters = args.next().unwrap_or(100).max(1);
    let mut rng = seeded_rng(2024, 0);

    let t = Instant::now();
    let centers: Vec<f32> = (0..clusters * DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let embeddings = clustered(n, &centers, &mut rng);
    let labeled = clustered(LABELED, &centers, &mut rng);
    let mut probs = Vec::with_capacity(n * CLASSES);
    for _ in 0..n {
        let logits: Vec<f32> = (0..CLASSES).map(|_| rng.random_range(0.0f32..4.0)).collect();
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        probs.extend(logits.iter().map(|l| l.exp() / z));
    }
    let probabilities = Probabilities::new(probs, n, CLASSES).expect("softmax rows");
    // (p − onehot(argmax p)) ⊗ x on the first 64 features: BADGE's gradient embedding, 512-d.
    let predicted = probabilities.argmax();
    let mut gradients = Matrix::zeros(n, DIM);
    for (i, &predicted) in predicted.iter().enumerate() {
        let (p, x) = (probabilities.row(i), &embeddings.row(i)[..FEATURES]);
        let row = gradients.row_mut(i);
        for (c, &p) in p.iter().enumerate() {
            let g = p - (c as u32 == predicted) as u32 as f32;
            row[c * FEATURES..(c + 1) * FEATURES].iter_mut().zip(x).for_each(|(o, &v)| *o = g * v);
        }
    }
    let scores = Scores::default()
        .with(ScoreKind::Probabilities, probabilities)
        .with(ScoreKind::Embeddings, embeddings)
        .with(ScoreKind::LabeledEmbeddings, labeled)
        .with(ScoreKind::GradientEmbeddings, gradients);
    let candidates: Vec<SampleId> = (0..n).map(SampleId::from).collect();
    let labeled_ids: Vec<SampleId> = (n..n + LABELED).map(SampleId::from).collect();
    let ctx = QueryContext { candidates: &candidates, scores: &scores, labeled: &labeled_ids, labeled_labels: &[], what_if: None };
    println!(
        "{n} candidates × {DIM}-d in {clusters} clusters, {LABELED} labeled, batch {k}, {} threads; data made in {:.2} s, peak RSS {:.0} MB",
        rayon::current_num_threads(),
        t.elapsed().as_secs_f64(),
        peak_rss_mb()
    );

    for name in ["coreset", "badge", "diverse-mini-batch", "margin-then-coreset"] {
        let strategy = quarry_strategies::by_name(name).expect("a registered strategy");
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let query = strategy.select(&ctx, k, &mut seeded_rng(7, 1)).expect("valid inputs");
        let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let mut ids = query.ids();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), k.min(n), "{name}: distinct picks");
        println!("{name:>20}: {secs:7.2} s wall, {cpu:7.2} s CPU   peak RSS {:6.0} MB", peak_rss_mb());
    }
}
