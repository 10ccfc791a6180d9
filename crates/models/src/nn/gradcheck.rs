//! Finite-difference checks of every layer's backward pass on tiny shapes, and of whole networks.
//!
//! Each layer is checked through a scalar `L = Σ r·y` with fixed random `r`: its gradient with
//! respect to the output is `r`, so `backward(r)` must match central differences of `L`. Conv and
//! linear layers are linear in their weights and inputs, so the differences are exact up to
//! rounding; the ReLU-pool and the networks are checked with small steps away from kinks.

use super::conv::Conv2d;
use super::dropout::{MaskKey, Purpose};
use super::linear::Linear;
use crate::softmax::cross_entropy_rows;
use super::net::{Net, NetSpec};
use super::params::ParamBuilder;
use super::pool::{Pool, PoolOut};
use crate::kernels::SimdLevel;
use quarry_core::seeded_rng;
use rand::Rng;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = seeded_rng(seed, 99);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn assert_close(what: &str, analytic: f64, numeric: f64, tol: f64) {
    assert!(
        (analytic - numeric).abs() <= tol * (1.0 + numeric.abs()),
        "{what}: backward gives {analytic}, finite differences {numeric}"
    );
}

/// Central difference of `f` at `x`.
fn central(x: f32, eps: f32, mut f: impl FnMut(f32) -> f64) -> f64 {
    (f(x + eps) - f(x - eps)) / (2.0 * eps as f64)
}

#[test]
fn linear_backward_matches_finite_differences() {
    let (rows, inputs, outputs) = (3, 5, 4);
    let mut b = ParamBuilder::default();
    let layer = Linear::new(&mut b, "fc", inputs, outputs);
    let p = b.init(1).values;
    let x = random(rows * inputs, 2);
    let r = random(rows * outputs, 3);
    let loss = |p: &[f32], x: &[f32]| {
        let mut y = vec![0f32; rows * outputs];
        layer.forward(p, x, rows, &mut y);
        y.iter().zip(&r).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>()
    };
    let mut grads = vec![0f32; p.len()];
    let mut dx = vec![0f32; rows * inputs];
    layer.backward(&p, &mut grads, &x, &r, rows, Some(&mut dx));
    for i in 0..p.len() {
        let num = central(p[i], 1e-2, |v| {
            let mut q = p.clone();
            q[i] = v;
            loss(&q, &x)
        });
        assert_close(&format!("param {i}"), grads[i] as f64, num, 1e-3);
    }
    for i in 0..x.len() {
        let num = central(x[i], 1e-2, |v| {
            let mut q = x.clone();
            q[i] = v;
            loss(&p, &q)
        });
        assert_close(&format!("input {i}"), dx[i] as f64, num, 1e-3);
    }
}

/// The convolution by definition, from unpadded `[s][cin][h][w]` inputs: `[s][cout][ho][wo]`.
fn naive_conv(x: &[f32], w: &[f32], b: &[f32], s: usize, (cin, cout, k): (usize, usize, usize), (h, wd): (usize, usize), pad: usize) -> Vec<f32> {
    let (ho, wo) = (h + 2 * pad - k + 1, wd + 2 * pad - k + 1);
    let mut y = vec![0f32; s * cout * ho * wo];
    for si in 0..s {
        for o in 0..cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = b[o] as f64;
                    for c in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) = ((oy + ky) as isize - pad as isize, (ox + kx) as isize - pad as isize);
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += w[((o * cin + c) * k + ky) * k + kx] as f64
                                        * x[((si * cin + c) * h + iy as usize) * wd + ix as usize] as f64;
                                }
                            }
                        }
                    }
                    y[((si * cout + o) * ho + oy) * wo + ox] = acc as f32;
                }
            }
        }
    }
    y
}

/// Forward against the definition, backward against finite differences, for one geometry and
/// every instruction set this CPU has.
fn check_conv(cin: usize, cout: usize, (h, w): (usize, usize), pad: usize, s: usize) {
    for isa in SimdLevel::available() {
        let mut b = ParamBuilder::default();
        let input_grad = cin > 1;
        let conv = Conv2d::new(&mut b, "conv", (cin, cout), (h, w), pad, input_grad);
        let p = b.init(5).values;
        let (wt, bias) = p.split_at(cout * cin * 25);
        let x = random(s * cin * h * w, 6);
        let (ho, wo, np) = (conv.ho, conv.wo, conv.npos_pad());
        let r = random(s * cout * ho * wo, 7);
        // Runs the layer: L = Σ r·y over the valid outputs, y, and the packed input.
        let run = |p: &[f32], x: &[f32]| {
            let mut xin = vec![0f32; s * conv.in_stride()];
            conv.pack_input(x, s, &mut xin);
            let mut y = vec![f32::NAN; conv.out_len(s)];
            conv.forward(isa, p, &xin, s, &mut y);
            let mut l = 0.0;
            let mut valid = vec![0f32; s * cout * ho * wo];
            for si in 0..s {
                for o in 0..cout {
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let i = ((si * cout + o) * ho + oy) * wo + ox;
                            valid[i] = y[(o * s + si) * np + oy * conv.wp + ox];
                            l += valid[i] as f64 * r[i] as f64;
                        }
                    }
                }
            }
            (l, valid, xin)
        };
        let (_, y, xin) = run(&p, &x);
        let want = naive_conv(&x, wt, bias, s, (cin, cout, 5), (h, w), pad);
        for (i, (a, b)) in y.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-4, "{isa:?} output {i}: {a} vs {b}");
        }
        let (margin, plane) = conv.dy_layout();
        let mut dy = vec![0f32; conv.dy_len(s)];
        for si in 0..s {
            for o in 0..cout {
                for oy in 0..ho {
                    for ox in 0..wo {
                        dy[(o * s + si) * plane + margin + oy * conv.wp + ox] = r[((si * cout + o) * ho + oy) * wo + ox];
                    }
                }
            }
        }
        let mut grads = vec![0f32; p.len()];
        let mut dx = vec![f32::NAN; conv.dx_len(s)];
        conv.backward(isa, &p, &mut grads, &xin, &dy, s, if input_grad { Some(&mut dx) } else { None });
        for i in 0..p.len() {
            let num = central(p[i], 1e-2, |v| {
                let mut q = p.clone();
                q[i] = v;
                run(&q, &x).0
            });
            assert_close(&format!("{isa:?} conv {cin}->{cout} param {i}"), grads[i] as f64, num, 1e-3);
        }
        if input_grad {
            for si in 0..s {
                for c in 0..cin {
                    for iy in 0..h {
                        for ix in 0..w {
                            let i = ((si * cin + c) * h + iy) * w + ix;
                            let num = central(x[i], 1e-2, |v| {
                                let mut q = x.clone();
                                q[i] = v;
                                run(&p, &q).0
                            });
                            let at = (si * cin + c) * conv.dx_plane() + (iy + pad) * conv.wp + ix + pad;
                            assert_close(&format!("{isa:?} conv input {i}"), dx[at] as f64, num, 1e-3);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn direct_single_channel_conv_matches_definition_and_finite_differences() {
    check_conv(1, 3, (6, 6), 2, 2);
    // More than one block of 8 output channels.
    check_conv(1, 10, (5, 7), 2, 1);
}

#[test]
fn multi_channel_conv_matches_definition_and_finite_differences() {
    check_conv(2, 3, (7, 7), 0, 2);
    check_conv(3, 2, (6, 5), 1, 2);
}

#[test]
fn relu_maxpool_backward_routes_to_the_positive_maximum() {
    // One channel, one sample, a 4x4 valid region in rows 6 wide (2 garbage columns).
    let pool = Pool { channels: 1, npos_pad: 32, wp: 6, ho: 4, wo: 4 };
    let mut y = vec![0f32; 32];
    let vals = [
        [1.0, 2.0, -1.0, -2.0], //
        [0.5, 0.1, -3.0, -0.5],
        [4.0, 4.0, 0.0, 0.2],
        [1.0, 3.0, 0.3, -1.0],
    ];
    for (r, row) in vals.iter().enumerate() {
        y[r * 6..r * 6 + 4].copy_from_slice(row);
    }
    y[4] = 100.0; // a garbage column is never read
    let layout = PoolOut { sample: 4, channel: 4, row: 2, pad: 0 };
    let (mut out, mut arg) = (vec![0f32; 4], vec![0u32; 4]);
    pool.forward(&y, 1, &mut out, layout, &mut arg);
    assert_eq!(out, [2.0, 0.0, 4.0, 0.3]);
    let mut dy = vec![f32::NAN; 32];
    pool.backward(&[1.0, 2.0, 3.0, 4.0], 1, layout, &arg, 0, 32, &mut dy);
    let mut want = vec![0f32; 32];
    want[1] = 1.0; // the 2.0
    want[2 * 6] = 3.0; // the first of the tied 4.0s
    want[3 * 6 + 2] = 4.0; // the 0.3; the all-negative window gets nothing
    assert_eq!(dy, want);
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let (rows, k) = (3, 4);
    let z = random(rows * k, 8);
    let y = [2u32, 0, 3];
    let mut g = z.clone();
    let loss0 = cross_entropy_rows(&mut g, &y, k, 0.5);
    for i in 0..z.len() {
        let num = central(z[i], 1e-2, |v| {
            let mut q = z.clone();
            q[i] = v;
            cross_entropy_rows(&mut q, &y, k, 1.0) * 0.5
        });
        assert_close(&format!("logit {i}"), g[i] as f64, num, 1e-3);
    }
    // Uniform logits: the loss is ln k per row.
    let mut flat = vec![0.3f32; rows * k];
    assert!((cross_entropy_rows(&mut flat, &y, k, 1.0) - 3.0 * (k as f64).ln()).abs() < 1e-5);
    assert!(loss0 > 0.0);
}

/// The whole network: the mean loss's gradient (with dropout masks fixed by the key) against
/// central differences, on a few parameters of every tensor.
fn check_net(spec: NetSpec, x: &[f32], y: &[u32]) {
    let mut net = Net::new(spec, 11).unwrap();
    let key = MaskKey { seed: 3, purpose: Purpose::Train, counter: 0 };
    let n = net.params().len();
    let mut grad = vec![0f32; n];
    let mut partials = Vec::new();
    net.batch_gradient(x, y, key, &mut partials, &mut grad).unwrap();
    let mut scratch = vec![0f32; n];
    let mut rng = seeded_rng(4, 1);
    let tensors = net.params().tensors().to_vec();
    for t in tensors {
        for _ in 0..6 {
            let i = rng.random_range(t.range.clone());
            let orig = net.params().as_slice()[i];
            let mut at = |v: f32| {
                net.params_mut().as_mut_slice()[i] = v;
                net.batch_gradient(x, y, key, &mut partials, &mut scratch).unwrap()
            };
            let eps = 1e-3;
            let num = (at(orig + eps) - at(orig - eps)) / (2.0 * eps as f64);
            net.params_mut().as_mut_slice()[i] = orig;
            assert!(
                (grad[i] as f64 - num).abs() <= 2e-3 + 0.05 * num.abs(),
                "{} {}[{}]: backward {} vs finite differences {num}",
                spec.name(),
                t.name,
                i - t.range.start,
                grad[i]
            );
        }
    }
}

#[test]
fn lenet_gradient_matches_finite_differences() {
    // 20 images (two chunks) of smooth random blobs.
    let x: Vec<f32> = random(20 * 784, 9).iter().map(|v| 0.5 + 0.5 * v).collect();
    let y: Vec<u32> = (0..20).map(|i| i % 3).collect();
    check_net(NetSpec::LeNet5 { classes: 3, dropout: 0.0 }, &x, &y);
    check_net(NetSpec::LeNet5 { classes: 3, dropout: 0.5 }, &x, &y);
}

#[test]
fn mlp_gradient_matches_finite_differences() {
    let x = random(18 * 12, 10);
    let y: Vec<u32> = (0..18).map(|i| i % 4).collect();
    check_net(NetSpec::Mlp { inputs: 12, hidden: 7, classes: 4, dropout: 0.0 }, &x, &y);
    check_net(NetSpec::Mlp { inputs: 12, hidden: 7, classes: 4, dropout: 0.3 }, &x, &y);
}
