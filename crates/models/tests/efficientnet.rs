//! EfficientNet-Lite0: loading errors and batch independence (on synthetic checkpoints, always run),
//! and agreement with the PyTorch reference vectors and photos in `../shared/models` (ignored by plain
//! `cargo test`; `-- --include-ignored` runs them where the shared folder exists).

use std::path::PathBuf;

use quarry_models::efficientnet::{EfficientNetError, EfficientNetLite0, FEATURE_DIM, NUM_CLASSES, predict_top_k};
use quarry_models::imagenet_input::{self, INPUT_SIZE};
use safetensors::{Dtype, SafeTensors};

mod common;
use common::shared;
use common::synthetic_effnet::{f32_bytes, synthetic_checkpoint};

const WEIGHTS: &str = "models/efficientnet-lite0.safetensors";
const REFERENCE: &str = "models/efficientnet-lite0-reference.safetensors";

/// A scratch directory unique to this process and test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quarry-effnet-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn input(n: usize, h: usize, w: usize) -> Vec<f32> {
    (0..n * 3 * h * w).map(|i| ((i as f32) * 0.0137).sin() * 2.0).collect()
}

#[test]
fn synthetic_checkpoint_loads_and_runs_any_size() {
    let dir = temp_dir("synthetic");
    let path = dir.join("ok.safetensors");
    synthetic_checkpoint(&path, |_| {});
    let model = EfficientNetLite0::load(&path).expect("complete checkpoint loads");
    assert_eq!(model.num_blocks(), 16);
    for (n, h, w) in [(9, 64, 64), (3, 96, 96), (1, 33, 47), (2, 1, 1)] {
        let x = input(n, h, w);
        let (features, logits) = model.forward(&x, [n, 3, h, w]).expect("forward");
        assert_eq!((features.rows(), features.cols()), (n, FEATURE_DIM));
        assert_eq!((logits.rows(), logits.cols()), (n, NUM_CLASSES));
        assert!(features.as_slice().iter().chain(logits.as_slice()).all(|v| v.is_finite()));
        // Each image's result does not depend on the batch (or group of images) around it.
        let image = 3 * h * w;
        for i in 0..n {
            let (f, l) = model.forward(&x[i * image..(i + 1) * image], [1, 3, h, w]).expect("forward one");
            assert_eq!(f.row(0), features.row(i), "features of image {i} of {n}");
            assert_eq!(l.row(0), logits.row(i), "logits of image {i} of {n}");
        }
    }
    let embed = model.embed(&input(2, 64, 64), [2, 3, 64, 64]).expect("embed");
    let (features, _) = model.forward(&input(2, 64, 64), [2, 3, 64, 64]).expect("forward");
    assert_eq!(embed.as_slice(), features.as_slice());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_shapes_are_errors() {
    let dir = temp_dir("badinput");
    let path = dir.join("ok.safetensors");
    synthetic_checkpoint(&path, |_| {});
    let model = EfficientNetLite0::load(&path).expect("loads");
    let e = model.forward(&input(1, 8, 8), [1, 1, 8, 8]).expect_err("1 channel");
    assert!(e.to_string().contains("[1, 1, 8, 8]"), "{e}");
    let e = model.forward(&input(1, 8, 8), [2, 3, 8, 8]).expect_err("too few values");
    assert!(e.to_string().contains("384 values"), "{e}");
    let (f, l) = model.forward(&[], [0, 3, 8, 8]).expect("empty batch");
    assert_eq!((f.rows(), l.rows()), (0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_tensor_is_an_error_naming_it() {
    let dir = temp_dir("missing");
    let path = dir.join("missing.safetensors");
    synthetic_checkpoint(&path, |t| t.retain(|(n, ..)| n != "_blocks.7._bn1.running_var"));
    let err = EfficientNetLite0::load(&path).expect_err("a tensor is missing");
    assert!(matches!(err, EfficientNetError::MissingTensor { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("`_blocks.7._bn1.running_var`") && msg.contains("missing.safetensors"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrongly_shaped_tensor_is_an_error_naming_it_and_both_shapes() {
    let dir = temp_dir("shape");
    let path = dir.join("shape.safetensors");
    synthetic_checkpoint(&path, |t| {
        for (n, _, shape, bytes) in t.iter_mut() {
            if n == "_blocks.3._depthwise_conv.weight" {
                // 5x5 kernel stored as 3x3: [144, 1, 5, 5] -> [144, 1, 3, 3]
                *shape = vec![144, 1, 3, 3];
                *bytes = f32_bytes(&vec![0.0; 144 * 9]);
            }
        }
    });
    let err = EfficientNetLite0::load(&path).expect_err("a tensor has the wrong shape");
    let msg = err.to_string();
    assert!(msg.contains("`_blocks.3._depthwise_conv.weight`"), "{msg}");
    assert!(msg.contains("[144, 1, 3, 3]") && msg.contains("[144, 1, 5, 5]"), "{msg}");
    assert!(msg.contains("shape.safetensors"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_dtype_and_garbage_files_are_errors() {
    let dir = temp_dir("dtype");
    let path = dir.join("f64.safetensors");
    synthetic_checkpoint(&path, |t| {
        for (n, dtype, _, bytes) in t.iter_mut() {
            if n == "_fc.bias" {
                *dtype = "F64";
                *bytes = vec![0; 1000 * 8];
            }
        }
    });
    let msg = EfficientNetLite0::load(&path).expect_err("f64 tensor").to_string();
    assert!(msg.contains("`_fc.bias`") && msg.contains("F64"), "{msg}");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").expect("write");
    let msg = EfficientNetLite0::load(&garbage).expect_err("garbage").to_string();
    assert!(msg.contains("garbage.safetensors"), "{msg}");
    let msg = EfficientNetLite0::load(&dir.join("absent.safetensors")).expect_err("absent").to_string();
    assert!(msg.contains("absent.safetensors"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads an f32 tensor and its shape from a safetensors file.
fn read_tensor(tensors: &SafeTensors<'_>, name: &str) -> (Vec<f32>, Vec<usize>) {
    let view = tensors.tensor(name).expect("reference tensor present");
    assert_eq!(view.dtype(), Dtype::F32);
    let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (data, view.shape().to_vec())
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).expect("non-empty row")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
#[ignore = "needs ../shared/models"]
fn matches_pytorch_reference_logits_and_features() {
    let model = EfficientNetLite0::load(&shared(WEIGHTS)).expect("load weights");
    let bytes = std::fs::read(shared(REFERENCE)).expect("read reference");
    let reference = SafeTensors::deserialize(&bytes).expect("parse reference");
    let (x, shape) = read_tensor(&reference, "input");
    let (want_logits, _) = read_tensor(&reference, "logits");
    let (want_features, _) = read_tensor(&reference, "features");
    let shape: [usize; 4] = shape.try_into().expect("4-d input");
    let (features, logits) = model.forward(&x, shape).expect("forward");
    let dl = max_abs_diff(logits.as_slice(), &want_logits);
    let df = max_abs_diff(features.as_slice(), &want_features);
    eprintln!("EfficientNet-Lite0 vs PyTorch: max |logit diff| = {dl:.3e}, max |feature diff| = {df:.3e}");
    assert!(dl <= 1e-4, "max |logit - reference| = {dl}");
    assert!(df <= 1e-4, "max |feature - reference| = {df}");
    assert_eq!(argmax(logits.row(0)), 285, "chelsea: Egyptian cat");
    assert_eq!(argmax(logits.row(1)), 967, "coffee: espresso");
}

#[test]
#[ignore = "needs ../shared/models"]
fn photos_through_imagenet_input_are_cat_and_espresso() {
    let model = EfficientNetLite0::load(&shared(WEIGHTS)).expect("load weights");
    // A truncated copy of a photo in the middle must fail alone.
    let tmp = temp_dir("photos");
    let cut = tmp.join("truncated.png");
    let png = std::fs::read(shared("models/coffee.png")).expect("read coffee.png");
    std::fs::write(&cut, &png[..png.len() / 3]).expect("write truncated");
    let images = vec![shared("models/chelsea.png"), cut, tmp.join("does-not-exist.jpg"), shared("models/coffee.png")];
    let results = predict_top_k(&model, &images, 5).expect("predict");
    assert_eq!(results.len(), 4);
    let chelsea = results[0].as_ref().expect("chelsea predicted");
    let coffee = results[3].as_ref().expect("coffee predicted");
    eprintln!("chelsea top-5 {chelsea:?}\ncoffee top-5 {coffee:?}");
    assert_eq!(chelsea[0].0, 285);
    assert_eq!(coffee[0].0, 967);
    assert_eq!(chelsea.len(), 5);
    assert!(chelsea.windows(2).all(|w| w[0].1 >= w[1].1), "sorted by probability");
    assert!(chelsea.iter().all(|&(_, p)| (0.0..=1.0).contains(&p)));
    let e1 = results[1].as_ref().expect_err("truncated image fails");
    assert!(e1.contains("truncated.png"), "{e1}");
    let e2 = results[2].as_ref().expect_err("missing image fails");
    assert!(e2.contains("does-not-exist.jpg"), "{e2}");
    assert!(predict_top_k(&model, &images, 0).is_err(), "k = 0 is refused");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
#[ignore = "needs ../shared/models"]
fn resize_is_close_to_the_reference_preprocessing() {
    let bytes = std::fs::read(shared(REFERENCE)).expect("read reference");
    let reference = SafeTensors::deserialize(&bytes).expect("parse reference");
    let (x, _) = read_tensor(&reference, "input");
    let plane = 3 * INPUT_SIZE * INPUT_SIZE;
    use image::imageops::FilterType;
    let mut report = Vec::new();
    for (name, filter) in [("triangle", FilterType::Triangle), ("catmull-rom", FilterType::CatmullRom), ("lanczos3", FilterType::Lanczos3)] {
        let mut mean_diff = 0.0;
        for (i, file) in ["chelsea.png", "coffee.png"].iter().enumerate() {
            let img = imagenet_input::decode_image(&shared(&format!("models/{file}"))).expect("decode");
            let ours = imagenet_input::preprocess_with(&img, INPUT_SIZE, filter);
            let theirs = &x[i * plane..(i + 1) * plane];
            mean_diff += ours.iter().zip(theirs).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / plane as f64 / 2.0;
        }
        report.push((name, filter, mean_diff));
    }
    eprintln!("mean |input - reference input| by filter: {:?}", report.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>());
    let best = report.iter().min_by(|a, b| a.2.total_cmp(&b.2)).expect("three filters");
    assert_eq!(best.1, imagenet_input::RESIZE_FILTER, "the default filter should be the closest");
    // Normalized units: 0.05 is about 3 grey levels of 255.
    assert!(best.2 < 0.05, "mean difference {}", best.2);
}
