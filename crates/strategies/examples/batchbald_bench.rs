//! Speed of BatchBALD at the deep-active-learning sizes: a batch of 100 from 2,000 candidates with
//! T = 20 MC-dropout draws over 10 classes (issue: strategies), on seeded synthetic draws.
//!
//! ```text
//! cargo run --release -p quarry-strategies --example batchbald_bench [-- candidates batch draws classes]
//! ```
//!
//! Each candidate's draws are a softmax of a shared random logit vector plus per-draw noise of a
//! candidate-specific scale, so candidates range from confident and consistent (BALD ≈ 0) to
//! disagreeing draws. Prints wall-clock and CPU seconds (summed over threads) and a checksum of the
//! picks, so two builds can be checked to choose the same batch.

use quarry_core::{McSamples, QueryContext, SampleId, ScoreKind, Scores, seeded_rng};
use rand::Rng;
use std::time::Instant;

mod common;
use common::cpu_seconds;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("arguments: candidates batch draws classes"));
    let n = args.next().unwrap_or(2_000);
    let k = args.next().unwrap_or(100);
    let draws = args.next().unwrap_or(20);
    let classes = args.next().unwrap_or(10);
    let mut rng = seeded_rng(11, 0);
    let base: Vec<Vec<f32>> = (0..n).map(|_| (0..classes).map(|_| rng.random_range(-3.0f32..3.0)).collect()).collect();
    let noise: Vec<f32> = (0..n).map(|_| rng.random_range(0.0f32..3.0)).collect();
    let mut data = Vec::with_capacity(draws * n * classes);
    for _ in 0..draws {
        for i in 0..n {
            let logits: Vec<f32> = base[i].iter().map(|&b| b + noise[i] * rng.random_range(-1.0f32..1.0)).collect();
            let m = logits.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = logits.iter().map(|&l| (l - m).exp()).collect();
            let s: f32 = e.iter().sum();
            data.extend(e.iter().map(|v| v / s));
        }
    }
    let mc = McSamples::new(data, draws, n, classes).expect("valid draws");
    let ids: Vec<SampleId> = (0..n).map(SampleId::from).collect();
    let scores = Scores::default().with(ScoreKind::McSamples, mc);
    let ctx = QueryContext::new(&ids, &scores);
    let strategy = quarry_strategies::by_name("batchbald").expect("registered");
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let q = strategy.select(&ctx, k, &mut seeded_rng(7, 1)).expect("valid inputs");
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let checksum: usize = q.picks.iter().enumerate().map(|(r, p)| (r + 1) * p.id.index()).sum();
    let threads = rayon::current_num_threads();
    println!(
        "batchbald: {k} of {n} candidates, T = {draws}, {classes} classes: {secs:.2} s wall, {cpu:.2} s CPU ({threads} threads); picks checksum {checksum}, last gain {:.4}",
        q.picks.last().map_or(f64::NAN, |p| p.score)
    );
    let head: Vec<String> = q.picks.iter().take(12).map(|p| format!("{}:{:.4}", p.id.index(), p.score)).collect();
    println!("first picks (id:gain): {}", head.join(" "));
}
