//! EfficientNet-Lite0 inference throughput (P3 of shared/BENCHMARK.md).
//!
//! ```sh
//! cargo bench -p quarry-models --bench effnet_bench [-- WEIGHTS.safetensors]
//! ```
//!
//! Prints images/s for 224x224 batch 16 and 96x96 batch 64: the median of 5 timed forward passes after
//! one warm-up, with rayon's thread count (set `RAYON_NUM_THREADS` to change it) and the instruction
//! set the kernels chose (`QUARRY_SIMD=avx2|scalar` lowers it). The anchor is PyTorch 2 eager on a
//! 2-core CPU: 30.7 images/s (224, b16) and 207 images/s (96, b64). Timings on a shared 2-core machine
//! vary by up to ±25 %; compare runs made back to back.
//!
//! On Linux it also prints the rate the same runs reach per CPU-second of this process times the
//! thread count (from `/proc/self/task/*/schedstat`): when other processes share the cores, wall time
//! counts their turns too, and this figure is what the run would do with the cores to itself.
//!
//! Weights default to `shared/models/efficientnet-lite0.safetensors` beside the repository.

use std::path::PathBuf;
use std::time::Instant;

use quarry_models::EfficientNetLite0;
use quarry_models::kernels::simd_level;

mod common;
use common::cpu_seconds;

const DEFAULT_WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/models/efficientnet-lite0.safetensors");
const RUNS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let weights = std::env::args().skip(1).find(|a| !a.starts_with("--")).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_WEIGHTS));
    let t = Instant::now();
    let model = EfficientNetLite0::load(&weights)?;
    println!(
        "EfficientNet-Lite0 from {} (loaded and BN-folded in {:.0} ms); threads: {}; kernels: {}",
        weights.display(),
        t.elapsed().as_secs_f64() * 1e3,
        rayon::current_num_threads(),
        simd_level().name()
    );
    for (side, batch, pytorch) in [(224, 16, 30.7), (96, 64, 207.0)] {
        // Any normalized-looking input does: the work does not depend on the values.
        let input: Vec<f32> = (0..batch * 3 * side * side).map(|i| ((i as f32) * 0.0173).sin() * 2.0).collect();
        let shape = [batch, 3, side, side];
        model.forward(&input, shape)?; // warm-up: page in buffers and weights
        let mut rates = Vec::with_capacity(RUNS);
        let mut cpu_rates = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let cpu = cpu_seconds();
            let t = Instant::now();
            let (_features, logits) = model.forward(&input, shape)?;
            std::hint::black_box(logits);
            rates.push(batch as f64 / t.elapsed().as_secs_f64());
            if let (Some(before), Some(after)) = (cpu, cpu_seconds()) {
                cpu_rates.push(batch as f64 * rayon::current_num_threads() as f64 / (after - before));
            }
        }
        rates.sort_by(f64::total_cmp);
        cpu_rates.sort_by(f64::total_cmp);
        let median = rates[RUNS / 2];
        println!(
            "{side}x{side} batch {batch:3}: {median:7.1} images/s (median of {RUNS}; min {:.1}, max {:.1})   PyTorch 2-core: {pytorch} images/s -> {:.2}x",
            rates[0],
            rates[RUNS - 1],
            median / pytorch
        );
        if cpu_rates.len() == RUNS {
            println!("                   {:7.1} images/s per CPU-second x threads (median; wall time includes other processes' turns)", cpu_rates[RUNS / 2]);
        }
    }
    Ok(())
}

