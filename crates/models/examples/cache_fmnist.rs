//! Measures the feature cache on Fashion-MNIST t10k: write the images as PNG files (grey, 28x28;
//! decoding replicates them to three channels and resizes them), build an EfficientNet-Lite0 cache at
//! the chosen resolution, then fit logistic regression on the first cached rows and score the rest.
//!
//! ```sh
//! cargo run --release -p quarry-models --example cache_fmnist -- [RESOLUTION=96] [IMAGES=10000] [TRAIN=1000]
//! ```
//! Environment: `FMNIST` (folder with `t10k-images-idx3-ubyte.gz` and the labels; default
//! `/work/shared/data/fashion-mnist`), `QUARRY_EFFNET_WEIGHTS` (default
//! `/work/shared/models/efficientnet-lite0.safetensors`), `CACHE_DIR` (default: the system temp dir).

use std::path::PathBuf;
use std::time::Instant;

use anyhow_free::Context;
use quarry_core::{Learner, Matrix};
use quarry_models::feature_cache::FeatureCache;
use quarry_models::{EfficientNetLite0, LogisticRegressionLearner, LogisticRegressionParams};

/// A tiny stand-in for `anyhow::Context` so the example needs no extra dependency.
mod anyhow_free {
    pub trait Context<T> {
        fn context(self, what: &str) -> Result<T, String>;
    }
    impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
        fn context(self, what: &str) -> Result<T, String> {
            self.map_err(|e| format!("{what}: {e}"))
        }
    }
}

fn arg(i: usize, default: usize) -> Result<usize, String> {
    match std::env::args().nth(i) {
        Some(s) => s.parse().map_err(|_| format!("argument {i}: '{s}' is not a whole number")),
        None => Ok(default),
    }
}

fn main() -> Result<(), String> {
    let resolution = arg(1, 96)?;
    let n_images = arg(2, 10_000)?;
    let n_train = arg(3, 1_000)?;
    // ../shared beside the checkout (the crate is crates/models), unless the environment says otherwise.
    let shared = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"));
    let fmnist = std::env::var_os("FMNIST").map_or_else(|| shared.join("data/fashion-mnist"), PathBuf::from);
    let weights = std::env::var_os("QUARRY_EFFNET_WEIGHTS").map_or_else(|| shared.join("models/efficientnet-lite0.safetensors"), PathBuf::from);
    let work = PathBuf::from(std::env::var_os("CACHE_DIR").unwrap_or_else(|| std::env::temp_dir().into_os_string())).join(format!("quarry-cache-fmnist-{}", std::process::id()));

    let images = quarry_data::read_idx_images(&fmnist.join("t10k-images-idx3-ubyte.gz")).context("images")?;
    let labels = quarry_data::read_idx_labels(&fmnist.join("t10k-labels-idx1-ubyte.gz")).context("labels")?;
    let n = n_images.min(images.rows());
    if n_train >= n {
        return Err(format!("TRAIN ({n_train}) must be below IMAGES ({n})"));
    }

    // The images as a folder of PNG files, the way users keep them.
    let t = Instant::now();
    let png_dir = work.join("images");
    std::fs::create_dir_all(&png_dir).context("create work folder")?;
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let pixels: Vec<u8> = images.row(i).iter().map(|&v| v.clamp(0.0, 255.0) as u8).collect();
        let img = image::GrayImage::from_raw(28, 28, pixels).ok_or("image is not 28x28")?;
        let path = png_dir.join(format!("{i:05}.png"));
        img.save(&path).context("write png")?;
        files.push(path);
    }
    let folder = quarry_data::scan_image_folder(&png_dir).context("scan")?;
    println!("wrote and scanned {} PNG files in {:.2} s", folder.len(), t.elapsed().as_secs_f64());

    let t = Instant::now();
    let model = EfficientNetLite0::load(&weights).context("weights")?;
    println!("loaded weights in {:.2} s; {} rayon threads", t.elapsed().as_secs_f64(), rayon::current_num_threads());

    let cache_path = work.join(format!("t10k-{resolution}.qfc"));
    let report = FeatureCache::build(&model, &weights, &folder.files, resolution, &cache_path, |done, total| {
        if done % 1000 < quarry_models::feature_cache::BUILD_BATCH || done == total {
            eprintln!("  {done}/{total}");
        }
    })
    .context("build cache")?;
    let size = std::fs::metadata(&cache_path).context("cache size")?.len();
    println!(
        "cache {resolution}x{resolution}: {} images in {:.1} s ({:.1} ms/image), {} skipped, file {:.1} MB",
        report.cached,
        report.seconds,
        1000.0 * report.seconds / n as f64,
        report.skipped.len(),
        size as f64 / 1e6
    );

    let t = Instant::now();
    let cache = FeatureCache::open_checked(&cache_path, &weights, &folder.files, resolution).context("open cache")?;
    let x = cache.to_matrix().context("matrix")?;
    println!("opened and copied the cache in {:.3} s", t.elapsed().as_secs_f64());
    let y: Vec<u32> = cache.indices().iter().map(|&i| u32::from(labels[i])).collect();
    let train: Vec<usize> = (0..n_train).collect();
    let test: Vec<usize> = (n_train..x.rows()).collect();
    let (x_train, x_test): (Matrix, Matrix) = (x.select_rows(&train), x.select_rows(&test));
    let y_train: Vec<u32> = train.iter().map(|&i| y[i]).collect();

    let mut learner = LogisticRegressionLearner::new(LogisticRegressionParams::new());
    let t = Instant::now();
    learner.fit(&x_train, &y_train, 10).context("fit")?;
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let p = learner.predict_proba(&x_test).context("score")?;
    let score_s = t.elapsed().as_secs_f64();
    let correct = p.argmax().iter().zip(&test).filter(|&(&c, &i)| c == y[i]).count();
    println!(
        "logistic regression on {} cached rows: fit {:.2} s; scoring {} rows {:.3} s; accuracy {:.3}",
        x_train.rows(),
        fit_s,
        x_test.rows(),
        score_s,
        correct as f64 / x_test.rows() as f64
    );
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}
