//! EfficientNet-Lite0 fine-tuning: finite-difference checks of every backward kernel against naive f64
//! references, and whole-network checks: the frozen-BN forward matches the inference port, one SGD
//! step lowers the loss, results do not depend on the thread count, and cached frozen features train
//! the same. Each whole-network check runs on the synthetic checkpoint (`<check>::synthetic`, always)
//! and on the pretrained one in `../shared/models` (`<check>::pretrained`, ignored by plain
//! `cargo test`).


use quarry_models::EfficientNetLite0;
use quarry_models::effnet_train::kernels::{self, ConvGeometry};
use quarry_models::effnet_train::{BatchNormMode, EfficientNetTrainer, Head, TrainerParams};

use std::path::Path;

mod common;

/// Deterministic pseudo-random values in [-scale, scale).
fn data(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| kernels::counter_uniform(seed, i as u64, 7, 11) * 2.0 * scale - scale)
        .collect()
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Central finite-difference gradient of `f` at `x` (f64), step 1e-5.
fn numeric_grad(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let v = x[i];
            x[i] = v + 1e-5;
            let up = f(&x);
            x[i] = v - 1e-5;
            let down = f(&x);
            x[i] = v;
            (up - down) / 2e-5
        })
        .collect()
}

/// Every analytic value within `tol` (relative to the largest magnitude, at least 1) of the numeric one.
fn assert_close(what: &str, analytic: &[f32], numeric: &[f64], tol: f64) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: lengths");
    let scale = numeric.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (*a as f64 - n).abs() <= tol * scale,
            "{what}[{i}]: analytic {a} vs numeric {n}"
        );
    }
}

fn dot(a: &[f64], r: &[f32]) -> f64 {
    a.iter().zip(r).map(|(a, r)| a * *r as f64).sum()
}

/// Naive f64 depthwise convolution, NHWC input, PyTorch weight `[c, 1, k, k]`.
fn depthwise_ref(x: &[f64], w: &[f64], c: usize, g: ConvGeometry) -> Vec<f64> {
    let mut y = vec![0.0; g.ho * g.wo * c];
    for oy in 0..g.ho {
        for ox in 0..g.wo {
            for ch in 0..c {
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let iy = (oy * g.stride + ky) as isize - g.pad_top as isize;
                        let ix = (ox * g.stride + kx) as isize - g.pad_left as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                            y[(oy * g.wo + ox) * c + ch] += x
                                [(iy as usize * g.w + ix as usize) * c + ch]
                                * w[(ch * g.k + ky) * g.k + kx];
                        }
                    }
                }
            }
        }
    }
    y
}

#[test]
fn pointwise_backward_matches_finite_differences() {
    let (p, cin, cout) = (13, 5, 7);
    let x = data(p * cin, 1, 1.0);
    let w = data(cout * cin, 2, 1.0);
    let r = data(p * cout, 3, 1.0);
    let fwd = |x: &[f64], w: &[f64]| -> f64 {
        let mut s = 0.0;
        for pi in 0..p {
            for o in 0..cout {
                let y: f64 = (0..cin).map(|i| x[pi * cin + i] * w[o * cin + i]).sum();
                s += y * r[pi * cout + o] as f64;
            }
        }
        s
    };
    // The f32 forward agrees with the definition.
    let mut y = vec![0.0; p * cout];
    kernels::pointwise_forward(&x, &w, cin, cout, &mut y);
    let (x64, w64) = (to64(&x), to64(&w));
    assert!((dot(&to64(&y), &r) - fwd(&x64, &w64)).abs() < 1e-4);
    let mut dw = vec![0.0; cout * cin];
    let mut dx = vec![0.0; p * cin];
    kernels::pointwise_backward(&x, &w, &r, cin, cout, &mut dw, Some(&mut dx));
    assert_close(
        "pointwise dW",
        &dw,
        &numeric_grad(&w64, |w| fwd(&x64, w)),
        1e-4,
    );
    assert_close(
        "pointwise dX",
        &dx,
        &numeric_grad(&x64, |x| fwd(x, &w64)),
        1e-4,
    );
}

#[test]
fn depthwise_backward_matches_finite_differences() {
    for &(h, w, c, k, s) in &[
        (7, 6, 5, 3, 1),
        (8, 9, 3, 3, 2),
        (9, 7, 4, 5, 2),
        (5, 5, 17, 5, 1),
    ] {
        let g = ConvGeometry::new(h, w, k, s);
        let x = data(h * w * c, 10 + k as u64, 1.0);
        let wt = data(c * k * k, 20 + s as u64, 1.0);
        let r = data(g.ho * g.wo * c, 30, 1.0);
        let (x64, w64) = (to64(&x), to64(&wt));
        let loss = |x: &[f64], wt: &[f64]| dot(&depthwise_ref(x, wt, c, g), &r);
        let taps = kernels::depthwise_weight_to_taps(&wt, c, k);
        let mut y = vec![0.0; g.ho * g.wo * c];
        kernels::depthwise_forward(&x, &taps, c, g, &mut y);
        for (a, b) in y.iter().zip(depthwise_ref(&x64, &w64, c, g)) {
            assert!((*a as f64 - b).abs() < 1e-5);
        }
        let mut dtaps = vec![0.0; k * k * c];
        let mut dx = vec![f32::NAN; h * w * c];
        kernels::depthwise_backward(&x, &taps, &r, c, g, &mut dtaps, Some(&mut dx));
        // Taps [k, k, c] back to PyTorch's [c, 1, k, k].
        let mut dw = vec![0.0; c * k * k];
        for ch in 0..c {
            for t in 0..k * k {
                dw[ch * k * k + t] = dtaps[t * c + ch];
            }
        }
        let what = format!("{h}x{w}x{c} k{k} s{s}");
        assert_close(
            &format!("depthwise dW {what}"),
            &dw,
            &numeric_grad(&w64, |wt| loss(&x64, wt)),
            1e-4,
        );
        assert_close(
            &format!("depthwise dX {what}"),
            &dx,
            &numeric_grad(&x64, |x| loss(x, &w64)),
            1e-4,
        );
    }
}

#[test]
fn stem_backward_matches_finite_differences() {
    for &(h, w) in &[(9, 8), (6, 7)] {
        let (cin, cout, k, s) = (3, 4, 3, 2);
        let g = ConvGeometry::new(h, w, k, s);
        let x = data(cin * h * w, 40, 1.0);
        let wt = data(cout * cin * k * k, 41, 1.0);
        let r = data(g.ho * g.wo * cout, 42, 1.0);
        let loss = |wt: &[f64]| {
            let mut l = 0.0;
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    for o in 0..cout {
                        let mut acc = 0.0;
                        for ci in 0..cin {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy = (oy * s + ky) as isize - g.pad_top as isize;
                                    let ix = (ox * s + kx) as isize - g.pad_left as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w
                                    {
                                        acc += x[(ci * h + iy as usize) * w + ix as usize] as f64
                                            * wt[((o * cin + ci) * k + ky) * k + kx];
                                    }
                                }
                            }
                        }
                        l += acc * r[(oy * g.wo + ox) * cout + o] as f64;
                    }
                }
            }
            l
        };
        let w64 = to64(&wt);
        let mut y = vec![0.0; g.ho * g.wo * cout];
        kernels::stem_forward(&x, &wt, cin, cout, g, &mut Vec::new(), &mut y);
        assert!((dot(&to64(&y), &r) - loss(&w64)).abs() < 1e-4);
        let mut dw = vec![0.0; wt.len()];
        kernels::stem_backward(&x, &r, cin, cout, g, &mut Vec::new(), &mut dw);
        assert_close(
            &format!("stem dW {h}x{w}"),
            &dw,
            &numeric_grad(&w64, loss),
            1e-4,
        );
    }
}

/// Batch norm + ReLU6 over `[pixels, c]` in f64: training mode (batch statistics) or with the given ones.
fn batch_norm_ref(
    z: &[f64],
    c: usize,
    gamma: &[f64],
    beta: &[f64],
    stats: Option<(&[f32], &[f32])>,
    relu6: bool,
) -> Vec<f64> {
    let p = z.len() / c;
    let mut out = vec![0.0; z.len()];
    for ch in 0..c {
        let (mean, inv_std) = match stats {
            Some((m, s)) => (m[ch] as f64, s[ch] as f64),
            None => {
                let mean = (0..p).map(|i| z[i * c + ch]).sum::<f64>() / p as f64;
                let var = (0..p).map(|i| (z[i * c + ch] - mean).powi(2)).sum::<f64>() / p as f64;
                (mean, 1.0 / (var + 1e-3).sqrt())
            }
        };
        for i in 0..p {
            let y = gamma[ch] * (z[i * c + ch] - mean) * inv_std + beta[ch];
            out[i * c + ch] = if relu6 { y.clamp(0.0, 6.0) } else { y };
        }
    }
    out
}

#[test]
fn batch_norm_backward_matches_finite_differences_in_both_modes() {
    let (p, c) = (23, 6);
    let z = data(p * c, 50, 2.0);
    let gamma: Vec<f32> = data(c, 51, 1.0).iter().map(|g| g + 1.5).collect();
    let beta = data(c, 52, 1.0).iter().map(|b| b + 2.0).collect::<Vec<_>>();
    let r = data(p * c, 53, 1.0);
    let (z64, g64, b64) = (to64(&z), to64(&gamma), to64(&beta));
    for relu6 in [false, true] {
        for training in [true, false] {
            // Statistics as the model computes them.
            let (s, q) = kernels::channel_sums(&z, c);
            let mean: Vec<f32> = s.iter().map(|s| (s / p as f64) as f32).collect();
            let inv_std: Vec<f32> = if training {
                s.iter()
                    .zip(&q)
                    .map(|(s, q)| {
                        (1.0 / (q / p as f64 - (s / p as f64).powi(2) + 1e-3).sqrt()) as f32
                    })
                    .collect()
            } else {
                (0..c).map(|i| 0.7 + 0.1 * i as f32).collect()
            };
            let stats = (!training).then_some((&mean[..], &inv_std[..]));
            let loss = |z: &[f64], g: &[f64], b: &[f64]| {
                dot(&batch_norm_ref(z, c, g, b, stats, relu6), &r)
            };
            let mut a = vec![0.0; z.len()];
            kernels::batch_norm_forward(&z, c, &mean, &inv_std, &gamma, &beta, relu6, &mut a);
            assert!(
                (dot(&to64(&a), &r) - loss(&z64, &g64, &b64)).abs() < 1e-3,
                "forward relu6={relu6} training={training}"
            );
            let mut d = r.clone();
            let (db, dg) = kernels::batch_norm_backward_sums(
                &z, c, &mean, &inv_std, &gamma, &beta, relu6, &mut d,
            );
            let (db, dg): (Vec<f32>, Vec<f32>) = (
                db.iter().map(|&v| v as f32).collect(),
                dg.iter().map(|&v| v as f32).collect(),
            );
            kernels::batch_norm_backward_apply(
                &z,
                c,
                &mean,
                &inv_std,
                &gamma,
                training.then_some((&db[..], &dg[..], p)),
                &mut d,
            );
            let what = format!("relu6={relu6} training={training}");
            assert_close(
                &format!("BN dz {what}"),
                &d,
                &numeric_grad(&z64, |z| loss(z, &g64, &b64)),
                1e-3,
            );
            assert_close(
                &format!("BN dgamma {what}"),
                &dg,
                &numeric_grad(&g64, |g| loss(&z64, g, &b64)),
                1e-3,
            );
            assert_close(
                &format!("BN dbeta {what}"),
                &db,
                &numeric_grad(&b64, |b| loss(&z64, &g64, b)),
                1e-3,
            );
        }
    }
}

#[test]
fn pool_linear_and_cross_entropy_backward_match_finite_differences() {
    // Global average pool.
    let (p, c) = (9, 4);
    let dfeat = data(c, 60, 1.0);
    let mut dx = vec![0.0; p * c];
    kernels::global_average_pool_backward(&dfeat, &mut dx);
    let x64 = to64(&data(p * c, 61, 1.0));
    let pool_loss = |x: &[f64]| {
        (0..c)
            .map(|ch| (0..p).map(|i| x[i * c + ch]).sum::<f64>() / p as f64 * dfeat[ch] as f64)
            .sum::<f64>()
    };
    assert_close("pool dX", &dx, &numeric_grad(&x64, pool_loss), 1e-6);

    // Linear layer followed by cross-entropy.
    let (n, inp, out) = (3, 6, 4);
    let x = data(n * inp, 62, 1.0);
    let w = data(out * inp, 63, 1.0);
    let b = data(out, 64, 1.0);
    let labels = [2, 0, 3];
    let ce = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        let mut l = 0.0;
        for s in 0..n {
            let z: Vec<f64> = (0..out)
                .map(|o| {
                    b[o] + (0..inp)
                        .map(|i| x[s * inp + i] * w[o * inp + i])
                        .sum::<f64>()
                })
                .collect();
            let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
            l += lse - z[labels[s]];
        }
        l / n as f64
    };
    let mut logits = vec![0.0; n * out];
    kernels::linear_forward(&x, &w, &b, &mut logits);
    let mut dlogits = vec![0.0; n * out];
    let loss = kernels::cross_entropy(&logits, &labels, out, &mut dlogits);
    let (x64, w64, b64) = (to64(&x), to64(&w), to64(&b));
    assert!((loss as f64 - ce(&x64, &w64, &b64)).abs() < 1e-5);
    let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; out], vec![0.0; x.len()]);
    kernels::linear_backward(&x, &w, &dlogits, &mut dw, &mut db, Some(&mut dx));
    assert_close(
        "linear dW",
        &dw,
        &numeric_grad(&w64, |w| ce(&x64, w, &b64)),
        1e-4,
    );
    assert_close(
        "linear db",
        &db,
        &numeric_grad(&b64, |b| ce(&x64, &w64, b)),
        1e-4,
    );
    assert_close(
        "linear dX",
        &dx,
        &numeric_grad(&x64, |x| ce(x, &w64, &b64)),
        1e-4,
    );
}

/// A small normalized-looking batch `[n, 3, side, side]`.
fn images(n: usize, side: usize, seed: u64) -> (Vec<f32>, [usize; 4]) {
    (data(n * 3 * side * side, seed, 2.0), [n, 3, side, side])
}

on_both_checkpoints!(frozen_bn_forward_with_the_pretrained_head_matches_the_inference_port);
fn frozen_bn_forward_with_the_pretrained_head_matches_the_inference_port(path: &Path) {
    let reference = EfficientNetLite0::load(&path).unwrap();
    let (x, shape) = images(3, 64, 70);
    let (_, want) = reference.forward(&x, shape).unwrap();
    for frozen_blocks in [0, 5] {
        let params = TrainerParams {
            head: Head::Pretrained,
            batch_norm: BatchNormMode::Frozen,
            dropout: 0.0,
            lr_backbone: 0.0,
            lr_head: 0.0,
            frozen_blocks,
            ..TrainerParams::default()
        };
        let mut trainer = EfficientNetTrainer::load(&path, params).unwrap();
        let eval = trainer.predict_logits(&x, shape).unwrap();
        let labels = [1, 2, 3];
        let step = trainer.train_step(&x, shape, &labels).unwrap();
        for (what, got) in [
            ("predict_logits", &eval),
            ("train_step logits", &step.logits),
        ] {
            let max = got
                .iter()
                .zip(want.as_slice())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                max < 1e-4,
                "{what} with {frozen_blocks} frozen blocks differ from the inference port by {max}"
            );
        }
        // lr 0: nothing moved, so a second step sees the same logits.
        let again = trainer.train_step(&x, shape, &labels).unwrap();
        assert_eq!(again.logits, step.logits);
    }
}

on_both_checkpoints!(one_sgd_step_lowers_the_loss_on_its_batch);
fn one_sgd_step_lowers_the_loss_on_its_batch(path: &Path) {
    let (x, shape) = images(4, 48, 80);
    let labels = [0, 1, 2, 1];
    for (bn, frozen_blocks) in [
        (BatchNormMode::Train { momentum: 0.01 }, 0),
        (BatchNormMode::Frozen, 0),
        (BatchNormMode::Train { momentum: 0.01 }, 8),
    ] {
        let params = TrainerParams {
            head: Head::New { classes: 3 },
            batch_norm: bn,
            dropout: 0.0,
            lr_backbone: 1e-4,
            lr_head: 1e-3,
            frozen_blocks,
            seed: 5,
            ..TrainerParams::default()
        };
        let mut trainer = EfficientNetTrainer::load(&path, params).unwrap();
        let first = trainer.train_step(&x, shape, &labels).unwrap();
        let second = trainer.train_step(&x, shape, &labels).unwrap();
        eprintln!(
            "LOSS {bn:?} {frozen_blocks}: {} -> {}",
            first.loss, second.loss
        );
        assert!(
            first.loss.is_finite() && second.loss < first.loss,
            "{bn:?}, {frozen_blocks} frozen: loss {} -> {}",
            first.loss,
            second.loss
        );
    }
}

on_both_checkpoints!(training_is_deterministic_across_thread_counts_and_frozen_features_can_be_cached);
fn training_is_deterministic_across_thread_counts_and_frozen_features_can_be_cached(path: &Path) {
    let (x, shape) = images(5, 32, 90);
    let labels = [0, 1, 2, 3, 0];
    for frozen_blocks in [0, 3] {
        let params = TrainerParams {
            head: Head::New { classes: 4 },
            frozen_blocks,
            seed: 9,
            ..TrainerParams::default()
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut t = EfficientNetTrainer::load(&path, params.clone()).unwrap();
                let a = t.train_step(&x, shape, &labels).unwrap();
                let b = t.train_step(&x, shape, &labels).unwrap();
                (a, b, t.predict_logits(&x, shape).unwrap())
            })
        };
        let one = run(1);
        let three = run(3);
        assert_eq!(one.0, three.0, "{frozen_blocks} frozen: first step");
        assert_eq!(one.1, three.1, "{frozen_blocks} frozen: second step");
        assert_eq!(one.2, three.2, "{frozen_blocks} frozen: eval logits");
        if frozen_blocks > 0 {
            // The same two steps from cached frozen features.
            let mut t = EfficientNetTrainer::load(&path, params.clone()).unwrap();
            let (features, fshape) = t.frozen_features(&x, shape).unwrap();
            let a = t
                .train_step_from_frozen(&features, fshape, &labels)
                .unwrap();
            let b = t
                .train_step_from_frozen(&features, fshape, &labels)
                .unwrap();
            assert_eq!((a, b), (one.0, one.1));
        }
    }
}

on_both_checkpoints!(bad_settings_and_inputs_are_named_in_errors);
fn bad_settings_and_inputs_are_named_in_errors(path: &Path) {
    let err = EfficientNetTrainer::load(
        &path,
        TrainerParams {
            frozen_blocks: 17,
            ..TrainerParams::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("frozen_blocks"), "{err}");
    let err = EfficientNetTrainer::load(
        &path,
        TrainerParams {
            dropout: 1.0,
            ..TrainerParams::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("dropout"), "{err}");
    let mut t = EfficientNetTrainer::load(
        &path,
        TrainerParams {
            head: Head::New { classes: 2 },
            frozen_blocks: 16,
            ..TrainerParams::default()
        },
    )
    .unwrap();
    let (x, shape) = images(2, 32, 1);
    let err = t.train_step(&x, shape, &[0, 2]).unwrap_err();
    assert!(err.to_string().contains("label 2"), "{err}");
    let err = t.train_step(&x[1..], shape, &[0, 1]).unwrap_err();
    assert!(err.to_string().contains("input"), "{err}");
    assert!(t.train_step(&x, shape, &[0, 1]).unwrap().loss.is_finite());
    let err = EfficientNetTrainer::from_safetensors_bytes(
        &empty_checkpoint(),
        "empty.safetensors",
        TrainerParams::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("_conv_stem.weight")
            && err.to_string().contains("empty.safetensors"),
        "{err}"
    );
}

on_both_checkpoints!(a_small_step_lowers_the_loss_by_lr_times_the_squared_gradient_norm);
/// Whole-network gradient check: with momentum 0, a step of size `lr` along the gradient `g` changes
/// the loss by `−lr·|g|²` to first order, for the backbone and the head separately.
fn a_small_step_lowers_the_loss_by_lr_times_the_squared_gradient_norm(path: &Path) {
    let (x, shape) = images(4, 64, 100);
    let labels = [0, 1, 2, 1];
    for bn in [
        BatchNormMode::Frozen,
        BatchNormMode::Train { momentum: 0.01 },
    ] {
        for (group, frozen_blocks) in [("backbone", 0), ("head", 0), ("backbone", 10)] {
            let params = TrainerParams {
                head: Head::New { classes: 3 },
                batch_norm: bn,
                dropout: 0.0,
                lr_backbone: 0.0,
                lr_head: 0.0,
                momentum: 0.0,
                frozen_blocks,
                seed: 3,
                ..TrainerParams::default()
            };
            let mut t = EfficientNetTrainer::load(&path, params).unwrap();
            let l0 = t.train_step(&x, shape, &labels).unwrap().loss;
            let (gb, gh) = t.gradient_norms();
            let g2 = if group == "head" { gh * gh } else { gb * gb };
            // A step that should lower the loss by about 2e-4: far above f32 rounding, small enough
            // for the first-order term to dominate.
            let lr = 2e-4 / g2;
            if group == "head" {
                t.set_learning_rates(0.0, lr).unwrap()
            } else {
                t.set_learning_rates(lr, 0.0).unwrap()
            }
            assert_eq!(t.train_step(&x, shape, &labels).unwrap().loss, l0);
            let l1 = t.train_step(&x, shape, &labels).unwrap().loss;
            let ratio = (l0 - l1) / (lr * g2);
            // Training-mode BN on 64x64 inputs normalizes the last stages over only 16 values per
            // channel, which makes the loss sharply curved (measured ratio 0.94; frozen BN: 0.995+).
            let tol = if bn == BatchNormMode::Frozen {
                0.03
            } else {
                0.12
            };
            assert!(
                (ratio - 1.0).abs() < tol,
                "{bn:?} {group} ({frozen_blocks} frozen): loss fell by {} where lr·|g|² = {}",
                l0 - l1,
                lr * g2
            );
        }
    }
}

on_both_checkpoints!(saved_weights_reload_into_the_inference_port_and_a_new_trainer);
fn saved_weights_reload_into_the_inference_port_and_a_new_trainer(path: &Path) {
    let (x, shape) = images(4, 48, 110);
    let labels = [1, 5, 9, 5];
    // Train a little (the pretrained 1000-class head, 4 blocks frozen), then save.
    let params = TrainerParams {
        head: Head::Pretrained,
        lr_backbone: 1e-4,
        lr_head: 1e-3,
        frozen_blocks: 4,
        dropout: 0.2,
        seed: 2,
        ..TrainerParams::default()
    };
    let mut t = EfficientNetTrainer::load(&path, params).unwrap();
    t.train_step(&x, shape, &labels).unwrap();
    t.train_step(&x, shape, &labels).unwrap();
    let bytes = t.to_safetensors_bytes().unwrap();
    let eval = t.predict_logits(&x, shape).unwrap();
    // The inference port (BN folded from the updated running statistics) agrees.
    let port = EfficientNetLite0::from_safetensors_bytes(&bytes, "saved").unwrap();
    let (_, logits) = port.forward(&x, shape).unwrap();
    let max = eval
        .iter()
        .zip(logits.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-4, "reloaded inference port differs by {max}");
    // So does a new trainer on the saved weights, with nothing frozen.
    let again = EfficientNetTrainer::from_safetensors_bytes(
        &bytes,
        "saved",
        TrainerParams {
            head: Head::Pretrained,
            ..TrainerParams::default()
        },
    )
    .unwrap();
    let max = again
        .predict_logits(&x, shape)
        .unwrap()
        .iter()
        .zip(&eval)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-4, "reloaded trainer differs by {max}");
}

fn empty_checkpoint() -> Vec<u8> {
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = Vec::new();
    safetensors::serialize(tensors, None).unwrap()
}
