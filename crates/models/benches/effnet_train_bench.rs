//! EfficientNet-Lite0 training-step time (P3 of shared/BENCHMARK.md).
//!
//! ```sh
//! cargo bench -p quarry-models --bench effnet_train_bench [-- WEIGHTS.safetensors [STEPS]]
//! ```
//!
//! Prints seconds per training step (forward with training-mode batch norm and dropout 0.2, backward
//! through the whole network, SGD with momentum; new 10-class head) at 224x224 batch 16 and 96x96
//! batch 64: the median of `STEPS` (default 3) timed steps after one warm-up, with rayon's thread count
//! (`RAYON_NUM_THREADS`). Then the same with the stem and the first 8 of 16 blocks frozen (inference
//! kernels, no backward there). The anchor is PyTorch 2 eager on 2 cores: 1.33 s (224, b16) and 1.05 s
//! (96, b64) per full step. Timings on a shared 2-core machine vary by up to ±25 % (more while other
//! builds run), so on Linux it also prints the CPU seconds of this process per step divided by the
//! thread count (`/proc/self/task/*/schedstat`): what a step would take with the cores to itself.

use std::path::PathBuf;
use std::time::Instant;

use quarry_models::effnet_train::{BatchNormMode, EfficientNetTrainer, Head, TrainerParams};
use quarry_models::kernels::simd_level;

mod common;
use common::cpu_seconds;

const DEFAULT_WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/models/efficientnet-lite0.safetensors"
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`: only the positional arguments count.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let weights = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_WEIGHTS));
    let steps: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3)
        .max(1);
    println!(
        "EfficientNet-Lite0 training step from {}; threads: {}; kernels: {}",
        weights.display(),
        rayon::current_num_threads(),
        simd_level().name()
    );
    for frozen_blocks in [0, 8] {
        for (side, batch, pytorch) in [(224, 16, 1.33), (96, 64, 1.05)] {
            let params = TrainerParams {
                head: Head::New { classes: 10 },
                batch_norm: BatchNormMode::Train { momentum: 0.01 },
                dropout: 0.2,
                lr_backbone: 1e-3,
                lr_head: 1e-2,
                momentum: 0.9,
                frozen_blocks,
                ..TrainerParams::default()
            };
            let mut trainer = EfficientNetTrainer::load(&weights, params)?;
            let input: Vec<f32> = (0..batch * 3 * side * side)
                .map(|i| ((i as f32) * 0.0173).sin() * 2.0)
                .collect();
            let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
            let shape = [batch, 3, side, side];
            trainer.train_step(&input, shape, &labels)?; // warm-up
            let mut times = Vec::with_capacity(steps);
            let mut cpu_times = Vec::with_capacity(steps);
            let mut loss = 0.0;
            for _ in 0..steps {
                let cpu = cpu_seconds();
                let t = Instant::now();
                loss = trainer.train_step(&input, shape, &labels)?.loss;
                times.push(t.elapsed().as_secs_f64());
                if let (Some(before), Some(after)) = (cpu, cpu_seconds()) {
                    cpu_times.push((after - before) / rayon::current_num_threads() as f64);
                }
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            cpu_times.sort_by(f64::total_cmp);
            let cpu = cpu_times
                .get(cpu_times.len() / 2)
                .map_or(String::new(), |c| format!(", CPU/threads {c:.3} s"));
            let anchor = if frozen_blocks == 0 {
                format!("PyTorch {pytorch:.2} s, ratio {:.2}x", pytorch / median)
            } else {
                "no PyTorch anchor".into()
            };
            println!(
                "{side}x{side} batch {batch}, {frozen_blocks:>2} blocks frozen: {median:.3} s/step (min {:.3}, max {:.3}{cpu}; loss {loss:.3}) — {anchor}",
                times[0],
                times[times.len() - 1]
            );
        }
    }
    Ok(())
}

