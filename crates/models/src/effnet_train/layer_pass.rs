//! Forward and backward of one [`ConvBn`] over a batch, in chunks of [`IMAGE_CHUNK`] images on rayon.

use super::buffers::BufferPool;
use super::kernels::{self, ConvGeometry};
use super::layer::{ConvBn, ConvKind};
use super::{BN_EPS, GRADIENT_PARTIALS, IMAGE_CHUNK};
use crate::kernels::{Activation, DepthwiseConv, PointwiseConv};
use rayon::prelude::*;

/// What one [`ConvBn`] keeps from the forward pass for its backward.
pub(super) struct LayerTape {
    /// Convolution output (before batch norm), NHWC.
    pub(super) z: Vec<f32>,
    /// Activation (the next layer's input), NHWC.
    pub(super) a: Vec<f32>,
    pub(super) mean: Vec<f32>,
    pub(super) inv_std: Vec<f32>,
    /// The batch variance (biased), for the running-statistics update; empty with running statistics.
    pub(super) batch_var: Vec<f32>,
    /// Whether `mean`/`inv_std` are batch statistics (training-mode backward).
    pub(super) batch_stats: bool,
    /// Input and output spatial sizes.
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) ho: usize,
    pub(super) wo: usize,
}

impl LayerTape {
    /// Hands the tape's large buffers back to `pool`.
    pub(super) fn give_to(self, pool: &BufferPool) {
        pool.give(self.z);
        pool.give(self.a);
    }
}

/// How a forward pass uses batch norm.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum BnUse {
    Batch,
    Running,
}

/// Convolution, batch norm and activation of `layer` over a batch `x` of `n` images (`[n, 3, h, w]` for
/// the stem, `[n, h, w, cin]` otherwise).
pub(super) fn layer_forward(
    layer: &ConvBn,
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
    bn: BnUse,
    pool: &BufferPool,
) -> LayerTape {
    let kind = layer.kind;
    let (cin, cout) = (kind.in_channels(), kind.out_channels());
    let (ho, wo) = kind.output_size(h, w);
    let (in_img, out_img) = (h * w * cin, ho * wo * cout);
    assert_eq!(
        x.len(),
        n * in_img,
        "{}: input is not {n} images of {h}x{w}x{cin}",
        layer.name
    );
    let mut z = pool.take(n * out_img);
    let wt = &layer.weight.value;
    let zc = z
        .par_chunks_mut(IMAGE_CHUNK * out_img)
        .zip(x.par_chunks(IMAGE_CHUNK * in_img));
    match kind {
        ConvKind::Pointwise { .. } => {
            // The inference port's GEMM (weights packed once per step, no run-time packing of the
            // activations): measured faster than `matrixmultiply` on these shapes.
            let conv = PointwiseConv::from_torch(wt, &vec![0.0; cout], cout, cin, Activation::None);
            zc.for_each(|(z, x)| conv.forward(x, None, z));
        }
        ConvKind::Depthwise { c, k, stride } => {
            // The vectorized inference kernel, with a zero bias and no activation.
            let conv = DepthwiseConv::from_torch(wt, &vec![0.0; c], c, k, stride, Activation::None);
            zc.for_each(|(z, x)| {
                for (z, x) in z.chunks_exact_mut(out_img).zip(x.chunks_exact(in_img)) {
                    conv.forward(x, h, w, z);
                }
            });
        }
        ConvKind::Stem { k, stride, .. } => {
            let g = ConvGeometry::new(h, w, k, stride);
            zc.for_each(|(z, x)| {
                let mut patches = Vec::new();
                for (z, x) in z.chunks_exact_mut(out_img).zip(x.chunks_exact(in_img)) {
                    kernels::stem_forward(x, wt, cin, cout, g, &mut patches, z);
                }
            });
        }
    }
    let count = n * ho * wo;
    let (mean, var) = match bn {
        BnUse::Running => (layer.running_mean.clone(), layer.running_var.clone()),
        BnUse::Batch => {
            let partial: Vec<(Vec<f64>, Vec<f64>)> = z
                .par_chunks(IMAGE_CHUNK * out_img)
                .map(|z| kernels::channel_sums(z, cout))
                .collect();
            let (mut s, mut q) = (vec![0.0f64; cout], vec![0.0f64; cout]);
            for (ps, pq) in &partial {
                s.iter_mut().zip(ps).for_each(|(a, b)| *a += b);
                q.iter_mut().zip(pq).for_each(|(a, b)| *a += b);
            }
            let m = count.max(1) as f64;
            let mean: Vec<f64> = s.iter().map(|s| s / m).collect();
            let var: Vec<f64> = q
                .iter()
                .zip(&mean)
                .map(|(q, mu)| (q / m - mu * mu).max(0.0))
                .collect();
            (
                mean.iter().map(|&v| v as f32).collect(),
                var.iter().map(|&v| v as f32).collect(),
            )
        }
    };
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + BN_EPS).sqrt()) as f32)
        .collect();
    let mut a = pool.take(z.len());
    a.par_chunks_mut(IMAGE_CHUNK * out_img)
        .zip(z.par_chunks(IMAGE_CHUNK * out_img))
        .for_each(|(a, z)| {
            kernels::batch_norm_forward(
                z,
                cout,
                &mean,
                &inv_std,
                &layer.gamma.value,
                &layer.beta.value,
                layer.relu6,
                a,
            )
        });
    let batch_stats = bn == BnUse::Batch;
    let batch_var = if batch_stats { var } else { Vec::new() };
    LayerTape {
        z,
        a,
        mean,
        inv_std,
        batch_var,
        batch_stats,
        h,
        w,
        ho,
        wo,
    }
}

/// Updates `layer`'s running statistics from the batch statistics in `t` (PyTorch's rule, unbiased
/// variance).
pub(super) fn update_running_stats(layer: &mut ConvBn, t: &LayerTape, n: usize, momentum: f32) {
    if !t.batch_stats {
        return;
    }
    let count = (n * t.ho * t.wo) as f64;
    let unbias = if count > 1.0 {
        count / (count - 1.0)
    } else {
        1.0
    };
    for c in 0..t.mean.len() {
        let var = t.batch_var[c] as f64 * unbias;
        let m = momentum as f64;
        layer.running_mean[c] =
            ((1.0 - m) * layer.running_mean[c] as f64 + m * t.mean[c] as f64) as f32;
        layer.running_var[c] = ((1.0 - m) * layer.running_var[c] as f64 + m * var) as f32;
    }
}

/// Backward through `layer`: `da` is the gradient of its activation `t.a`; adds the gradients of the
/// weight, γ and β into the layer, and returns the input gradient if `need_dx`.
pub(super) fn layer_backward(
    layer: &mut ConvBn,
    x: &[f32],
    t: &LayerTape,
    n: usize,
    mut da: Vec<f32>,
    need_dx: bool,
    pool: &BufferPool,
) -> Option<Vec<f32>> {
    let kind = layer.kind;
    let (cin, cout) = (kind.in_channels(), kind.out_channels());
    let (in_img, out_img) = (t.h * t.w * cin, t.ho * t.wo * cout);
    assert_eq!(
        da.len(),
        n * out_img,
        "{}: output gradient is not {n} images of {}x{}x{cout}",
        layer.name,
        t.ho,
        t.wo
    );
    let chunk_out = IMAGE_CHUNK * out_img;
    let (gamma, beta) = (&layer.gamma.value, &layer.beta.value);
    let sums: Vec<(Vec<f64>, Vec<f64>)> = da
        .par_chunks_mut(chunk_out)
        .zip(t.z.par_chunks(chunk_out))
        .map(|(d, z)| {
            kernels::batch_norm_backward_sums(
                z,
                cout,
                &t.mean,
                &t.inv_std,
                gamma,
                beta,
                layer.relu6,
                d,
            )
        })
        .collect();
    let (mut dbeta, mut dgamma) = (vec![0.0f64; cout], vec![0.0f64; cout]);
    for (sb, sg) in &sums {
        dbeta.iter_mut().zip(sb).for_each(|(a, b)| *a += b);
        dgamma.iter_mut().zip(sg).for_each(|(a, b)| *a += b);
    }
    let dbeta: Vec<f32> = dbeta.iter().map(|&v| v as f32).collect();
    let dgamma: Vec<f32> = dgamma.iter().map(|&v| v as f32).collect();
    let count = n * t.ho * t.wo;
    let batch = t.batch_stats.then_some((&dbeta[..], &dgamma[..], count));
    da.par_chunks_mut(chunk_out)
        .zip(t.z.par_chunks(chunk_out))
        .for_each(|(d, z)| {
            kernels::batch_norm_backward_apply(z, cout, &t.mean, &t.inv_std, gamma, batch, d)
        });
    let dz = da;

    let wt = &layer.weight.value;
    let wlen = wt.len();
    let taps = match kind {
        ConvKind::Depthwise { c, k, .. } => kernels::depthwise_weight_to_taps(wt, c, k),
        _ => Vec::new(),
    };
    // dX = dY·W is a 1x1 convolution with the transposed weight: the packed inference GEMM again.
    let transposed = match kind {
        ConvKind::Pointwise { .. } if need_dx => {
            let mut wt_t = vec![0.0; wlen];
            for o in 0..cout {
                for i in 0..cin {
                    wt_t[i * cout + o] = wt[o * cin + i];
                }
            }
            Some(PointwiseConv::from_torch(
                &wt_t,
                &vec![0.0; cin],
                cin,
                cout,
                Activation::None,
            ))
        }
        _ => None,
    };
    let chunk_backward = |x: &[f32], dy: &[f32], dx: Option<&mut [f32]>| -> Vec<f32> {
        let mut dw = pool.take(wlen);
        dw.fill(0.0);
        match kind {
            ConvKind::Pointwise { .. } => {
                kernels::pointwise_backward(x, wt, dy, cin, cout, &mut dw, None);
                if let (Some(dx), Some(t)) = (dx, &transposed) {
                    t.forward(dy, None, dx);
                }
            }
            ConvKind::Depthwise { c, k, stride } => {
                let g = ConvGeometry::new(t.h, t.w, k, stride);
                let images = x.chunks_exact(in_img).zip(dy.chunks_exact(out_img));
                match dx {
                    Some(dx) => {
                        images
                            .zip(dx.chunks_exact_mut(in_img))
                            .for_each(|((x, dy), dx)| {
                                kernels::depthwise_backward(x, &taps, dy, c, g, &mut dw, Some(dx))
                            })
                    }
                    None => images.for_each(|(x, dy)| {
                        kernels::depthwise_backward(x, &taps, dy, c, g, &mut dw, None)
                    }),
                }
            }
            ConvKind::Stem { k, stride, .. } => {
                let g = ConvGeometry::new(t.h, t.w, k, stride);
                let mut patches = Vec::new();
                for (x, dy) in x.chunks_exact(in_img).zip(dy.chunks_exact(out_img)) {
                    kernels::stem_backward(x, dy, cin, cout, g, &mut patches, &mut dw);
                }
            }
        }
        dw
    };
    // The convolution's backward runs on at most GRADIENT_PARTIALS groups of whole chunks (a fixed
    // split for a given batch size): fewer partial weight gradients to allocate and add up, and
    // larger GEMMs for the 1x1 convolutions.
    let group = IMAGE_CHUNK * n.div_ceil(IMAGE_CHUNK).div_ceil(GRADIENT_PARTIALS);
    let (chunk_in, chunk_out) = (group * in_img, group * out_img);
    let mut dx = if need_dx {
        pool.take(n * in_img)
    } else {
        Vec::new()
    };
    let partials: Vec<Vec<f32>> = if need_dx {
        dx.par_chunks_mut(chunk_in)
            .zip(x.par_chunks(chunk_in))
            .zip(dz.par_chunks(chunk_out))
            .map(|((dx, x), dy)| chunk_backward(x, dy, Some(dx)))
            .collect()
    } else {
        x.par_chunks(chunk_in)
            .zip(dz.par_chunks(chunk_out))
            .map(|(x, dy)| chunk_backward(x, dy, None))
            .collect()
    };
    // Sum the groups' partial weight gradients in group order (deterministic).
    let mut partials = partials.into_iter();
    let mut dw = partials.next().expect("a batch has at least one image");
    for p in partials {
        dw.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
        pool.give(p);
    }
    if let ConvKind::Depthwise { c, k, .. } = kind {
        // Back from the tap-major [k, k, c] layout to PyTorch's [c, 1, k, k].
        for ch in 0..c {
            for tap in 0..k * k {
                layer.weight.grad[ch * k * k + tap] += dw[tap * c + ch];
            }
        }
    } else {
        layer
            .weight
            .grad
            .iter_mut()
            .zip(&dw)
            .for_each(|(a, b)| *a += b);
    }
    layer
        .gamma
        .grad
        .iter_mut()
        .zip(&dgamma)
        .for_each(|(a, b)| *a += b);
    layer
        .beta
        .grad
        .iter_mut()
        .zip(&dbeta)
        .for_each(|(a, b)| *a += b);
    pool.give(dz);
    need_dx.then_some(dx)
}

pub(super) fn empty_tape() -> LayerTape {
    LayerTape {
        z: Vec::new(),
        a: Vec::new(),
        mean: Vec::new(),
        inv_std: Vec::new(),
        batch_var: Vec::new(),
        batch_stats: false,
        h: 0,
        w: 0,
        ho: 0,
        wo: 0,
    }
}
