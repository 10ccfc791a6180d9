//! The feature cache: build, reopen, rows equal a direct embedding, broken images skipped by name,
//! staleness detected, damaged files rejected with their name.
//!
//! The backbone is EfficientNet-Lite0 on the synthetic checkpoint (`common/synthetic_effnet.rs`): the
//! cache's mechanics do not depend on the weights' values, so these tests need nothing outside the
//! repository.

use std::path::{Path, PathBuf};

use quarry_models::EfficientNetLite0;
use quarry_models::feature_cache::{CacheWriter, FeatureCache, FeatureCacheError, images_fingerprint};
use quarry_models::imagenet_input::load_image;

mod common;
use common::synthetic_weights;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quarry-feature-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn write_png(path: &Path, seed: u32) {
    let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4 + seed * 30) as u8, (y * 4) as u8, ((x + y) * seed) as u8]));
    img.save(path).expect("write png");
}

#[test]
fn build_open_and_skip_broken_images() {
    let weights = synthetic_weights();
    let dir = temp_dir("build");
    let mut files = Vec::new();
    for i in 0..4 {
        let p = dir.join(format!("img{i}.png"));
        write_png(&p, i + 1);
        files.push(p);
    }
    let text = dir.join("text.png");
    std::fs::write(&text, b"not a png").expect("write");
    let cut = dir.join("cut.png");
    write_png(&cut, 9);
    let bytes = std::fs::read(&cut).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("truncate");
    files.insert(1, text.clone());
    files.insert(3, cut.clone());

    let model = EfficientNetLite0::load(&weights).expect("weights");
    let cache_path = dir.join("features.qfc");
    let mut calls = Vec::new();
    let report = FeatureCache::build(&model, &weights, &files, 64, &cache_path, |done, total| calls.push((done, total))).expect("build");
    assert_eq!(report.cached, 4);
    let skipped: Vec<&PathBuf> = report.skipped.iter().map(|(p, _)| p).collect();
    assert_eq!(skipped, [&text, &cut]);
    assert!(report.skipped.iter().all(|(_, why)| !why.is_empty()));
    assert_eq!(calls.last(), Some(&(6, 6)));

    let cache = FeatureCache::open_checked(&cache_path, &weights, &files, 64).expect("open");
    assert_eq!((cache.len(), cache.dim(), cache.inputs(), cache.resolution()), (4, 1280, 6, 64));
    assert_eq!(cache.indices(), [0, 2, 4, 5]);
    let good: Vec<PathBuf> = cache.indices().iter().map(|&i| files[i].clone()).collect();
    assert_eq!(cache.files(), good.as_slice());

    // The cached rows are the backbone's features of the same images.
    let mut input = Vec::new();
    for p in &good {
        input.extend(load_image(p, 64).expect("decode"));
    }
    let direct = model.embed(&input, [4, 3, 64, 64]).expect("embed");
    let m = cache.to_matrix().expect("matrix");
    assert_eq!((m.rows(), m.cols()), (4, 1280));
    for (a, b) in cache.rows().iter().zip(direct.as_slice()) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
    assert_eq!(cache.row(2), m.row(2));

    // Stale: another resolution, another list, a modified image.
    let err = FeatureCache::open_checked(&cache_path, &weights, &files, 96).expect_err("resolution");
    assert!(err.to_string().contains("stale cache"), "{err}");
    let err = FeatureCache::open_fresh(&cache_path, &weights, &files[..5]).expect_err("fewer files");
    assert!(matches!(err, FeatureCacheError::Stale { .. }) && err.to_string().contains("features.qfc"), "{err}");
    image::RgbImage::from_pixel(70, 70, image::Rgb([1, 2, 3])).save(&files[0]).expect("rewrite");
    let err = FeatureCache::open_fresh(&cache_path, &weights, &files).expect_err("modified image");
    assert!(err.to_string().contains("stale cache: rebuild"), "{err}");
    // Other weights file (a copy with one byte changed at the end).
    let mut w = std::fs::read(&weights).expect("read weights");
    let last = w.len() - 1;
    w[last] ^= 1;
    let other = dir.join("other.safetensors");
    std::fs::write(&other, &w).expect("write weights");
    let cache = FeatureCache::open(&cache_path).expect("open unchecked");
    let err = cache.check_fresh(&other, &files).expect_err("other weights");
    assert!(err.to_string().contains("other weights"), "{err}");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("list").filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writer_round_trip_and_damaged_files_name_the_file() {
    let dir = temp_dir("format");
    let path = dir.join("small.qfc");
    let files = vec![dir.join("a.png"), dir.join("b.png"), dir.join("c.png")];
    let mut w = CacheWriter::create(&path, 3, files.len(), 0, 7, images_fingerprint(&files)).expect("create");
    w.push(0, &files[0], &[1.0, 2.0, 3.0]).expect("push");
    w.push(2, &files[2], &[4.0, 5.0, 6.0]).expect("push");
    assert!(w.push(1, &files[1], &[1.0]).is_err(), "wrong row length");
    w.finish().expect("finish");
    let cache = FeatureCache::open(&path).expect("open");
    assert_eq!(cache.rows(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(cache.indices(), [0, 2]);
    assert_eq!(cache.files(), [files[0].clone(), files[2].clone()]);

    let bytes = std::fs::read(&path).expect("read");
    let cut = dir.join("cut.qfc");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).expect("write");
    let err = FeatureCache::open(&cut).expect_err("truncated");
    assert!(err.to_string().contains("cut.qfc") && err.to_string().contains("not a valid feature cache"), "{err}");
    let junk = dir.join("junk.qfc");
    std::fs::write(&junk, b"not a cache at all, just some text").expect("write");
    let err = FeatureCache::open(&junk).expect_err("junk");
    assert!(err.to_string().contains("junk.qfc"), "{err}");
    let err = FeatureCache::open(&dir.join("missing.qfc")).expect_err("missing");
    assert!(err.to_string().contains("missing.qfc"), "{err}");

    // A dropped, unfinished writer leaves nothing behind.
    let mut w = CacheWriter::create(&dir.join("never.qfc"), 2, 1, 0, 0, 0).expect("create");
    w.push(0, &files[0], &[1.0, 2.0]).expect("push");
    drop(w);
    let names: Vec<String> = std::fs::read_dir(&dir).expect("list").filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with("never")), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
