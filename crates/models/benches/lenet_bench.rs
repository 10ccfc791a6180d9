//! The LeNet-5 rows of benchmark P3, measured the way `shared/anchors/torch/p3_compute.py`
//! measures PyTorch (warm-up, then the median of 3 repetitions):
//!
//! 1. one training epoch over the 60,000 Fashion-MNIST training images, batch 64 (shuffled, last
//!    batch 32), SGD lr 0.01 momentum 0.9, cross-entropy;
//! 2. inference in batches of 512 over the 10,000 test images, images/s;
//! 3. LeNet-5 with dropout 0.5 before each fc layer, 10 MC-dropout passes over the 60,000
//!    training images (the trunk once, the head 10 times), images/s = 60,000 / total seconds, and
//!    the peak resident memory while doing so; then the naive way (10 full passes) for comparison.
//!
//! ```sh
//! cargo bench -p quarry-models --bench lenet_bench [-- [FASHION_MNIST_DIR] [--only train|infer|mc] [--isa avx512|avx2|portable]]
//! ```
//! `--isa` runs the hand-written kernels at a lower instruction-set level than the CPU's best
//! (to see what an AVX2-only machine gets; the fully connected layers' GEMM still picks its own).
//! Threads: rayon's default (all cores), or `RAYON_NUM_THREADS`.

use quarry_core::{Learner, Matrix};
use quarry_data::{read_idx_images, read_idx_labels};
use quarry_models::nn::{NetLearner, NetParams, OptimizerKind, simd::Isa};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn load(dir: &Path, split: &str) -> Result<(Matrix, Vec<u32>), Box<dyn std::error::Error>> {
    let mut x = read_idx_images(&dir.join(format!("{split}-images-idx3-ubyte.gz")))?;
    x.scale(1.0 / 255.0);
    let y = read_idx_labels(&dir.join(format!("{split}-labels-idx1-ubyte.gz")))?.into_iter().map(u32::from).collect();
    Ok((x, y))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A field of /proc/self/status in kB.
fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn accuracy(learner: &dyn Learner, x: &Matrix, y: &[u32]) -> Result<f64, Box<dyn std::error::Error>> {
    let pred = learner.predict_proba(x)?.argmax();
    Ok(pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let run = |phase: &str| only.as_deref().is_none_or(|o| o == phase);
    let isa = match args.iter().position(|a| a == "--isa").and_then(|i| args.get(i + 1)).map(String::as_str) {
        None => Isa::detect(),
        Some("avx512") => Isa::Avx512,
        Some("avx2") => Isa::Avx2Fma,
        Some("portable") => Isa::Portable,
        Some(other) => return Err(format!("--isa {other}: expected avx512, avx2 or portable").into()),
    };
    let dir = args.first().filter(|a| !a.starts_with("--")).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/fashion-mnist"))
    });
    let (xtr, ytr) = load(&dir, "train")?;
    let (xte, yte) = load(&dir, "t10k")?;
    println!(
        "LeNet-5 P3 bench: rayon threads {}, kernels {:?} (CPU's best {:?}), {} train / {} test images",
        rayon::current_num_threads(),
        isa,
        Isa::detect(),
        xtr.rows(),
        xte.rows()
    );

    // 1. Training epoch.
    let mut learner = NetParams::lenet5(10).optimizer(OptimizerKind::sgd(0.01, 0.9)).batch_size(64).epochs(1).build()?;
    learner.net_mut().set_isa(isa);
    if run("train") {
        train(&mut learner, &xtr, &ytr, &xte, &yte)?;
    }
    if run("infer") {
        infer(&learner, &xte)?;
    }
    if run("mc") {
        mc(&xtr, isa)?;
    }
    Ok(())
}

fn train(learner: &mut NetLearner, xtr: &Matrix, ytr: &[u32], xte: &Matrix, yte: &[u32]) -> Result<(), Box<dyn std::error::Error>> {
    for b in 0..100 {
        let rows: Vec<usize> = (b * 64..(b + 1) * 64).collect();
        learner.train_step(&xtr.select_rows(&rows), &ytr[b * 64..(b + 1) * 64])?;
    }
    let mut reps = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        learner.fit(xtr, ytr, 10)?;
        reps.push(t.elapsed().as_secs_f64());
    }
    let acc = accuracy(learner, xte, yte)?;
    println!(
        "1. train epoch (60,000 images, batch 64, SGD 0.01 m0.9): median {:.3} s  reps {:?}  test accuracy after 3 epochs {:.3}   [PyTorch 5.75 s]",
        median(reps.clone()),
        reps.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        acc
    );
    Ok(())
}

/// 2. Inference, batches of 512 over the test set.
fn infer(learner: &NetLearner, xte: &Matrix) -> Result<(), Box<dyn std::error::Error>> {
    let net = learner.net();
    let d = net.input_dim();
    let mut out = vec![0f32; 512 * 10];
    let pass = |out: &mut [f32]| -> Result<f64, Box<dyn std::error::Error>> {
        let t = Instant::now();
        for xb in xte.as_slice().chunks(512 * d) {
            let rows = xb.len() / d;
            net.predict_proba_into(xb, &mut out[..rows * 10])?;
        }
        Ok(t.elapsed().as_secs_f64())
    };
    pass(&mut out)?;
    let reps: Vec<f64> = (0..3).map(|_| pass(&mut out)).collect::<Result<_, _>>()?;
    let med = median(reps.clone());
    println!(
        "2. inference, batch 512, 10,000 images: {:.0} images/s  reps {:?} s   [PyTorch 31,900 images/s]",
        xte.rows() as f64 / med,
        reps.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>()
    );
    Ok(())
}

/// 3. MC dropout, 10 passes over 60,000 images.
fn mc(xtr: &Matrix, isa: Isa) -> Result<(), Box<dyn std::error::Error>> {
    let d = xtr.cols();
    let mut mc = NetParams::lenet5(10).dropout(0.5).build()?;
    mc.net_mut().set_isa(isa);
    let small = xtr.select_rows(&(0..512).collect::<Vec<_>>());
    mc.mc_samples(&small, 10, 0)?;
    let rss_before = status_kb("VmRSS:");
    let mut reps = Vec::new();
    let mut peak = None;
    for r in 0..3 {
        // Reset the high-water mark so it measures this scoring only (Linux ≥ 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let t = Instant::now();
        let samples = mc.mc_samples(xtr, 10, r)?;
        reps.push(t.elapsed().as_secs_f64());
        peak = peak.max(status_kb("VmHWM:"));
        assert_eq!(samples.draws(), 10);
    }
    let med = median(reps.clone());
    println!(
        "3. MC dropout p=0.5, T=10, 60,000 images (trunk once): {:.0} images/s  reps {:?} s   [PyTorch 2,360 naive / 6,900 trunk-once]",
        xtr.rows() as f64 / med,
        reps.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    let mb = |kb: Option<u64>| kb.map_or("?".to_string(), |v| format!("{:.0} MiB", v as f64 / 1024.0));
    println!(
        "   peak RSS while scoring 60,000 x 10 passes: {} (resident before: {}; the inputs alone are {:.0} MiB, the [10, 60000, 10] result {:.0} MiB)",
        mb(peak),
        mb(rss_before),
        (xtr.rows() * d * 4) as f64 / 1048576.0,
        (10 * xtr.rows() * 10 * 4) as f64 / 1048576.0
    );
    // For comparison, the naive way: 10 full forward passes (trunk included) with dropout on.
    let naive = |_| -> Result<f64, Box<dyn std::error::Error>> {
        let t = Instant::now();
        for draw in 0..10 {
            mc.mc_samples(xtr, 1, draw)?;
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let reps: Vec<f64> = (0..3).map(naive).collect::<Result<_, _>>()?;
    println!(
        "   naive (10 full passes, trunk each time): {:.0} images/s  reps {:?} s   [PyTorch 2,360]",
        xtr.rows() as f64 / median(reps.clone()),
        reps.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    Ok(())
}
