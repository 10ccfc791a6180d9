//! Forward and backward kernels for training EfficientNet-Lite0, on one image or a chunk of images
//! (or one batch-norm tensor) at a time, NHWC like the inference kernels in [`crate::kernels`].
//!
//! Weights stay in PyTorch's layouts (`[cout, cin]` for 1x1 convolutions, `[c, 1, k, k]` for depthwise,
//! `[cout, cin, k, k]` for the stem), so a checkpoint maps one to one. GEMMs here go through the
//! crate's `matrixmultiply` wrapper, [`crate::linalg::gemm`] (single-threaded, hence deterministic;
//! it picks AVX2/FMA or AVX-512 at run time).
//! The model uses them for weight gradients and the stem; for 1x1 forward passes and input gradients
//! it uses the inference port's packed-weight GEMM instead ([`crate::kernels::PointwiseConv`]), and
//! [`depthwise_forward`] here is the slow reference (the model runs [`crate::kernels::DepthwiseConv`]).
//! The depthwise backward and batch-norm passes are loops over the contiguous channel axis, compiled
//! per instruction set and vectorized by the compiler.
//!
//! Nothing here spawns threads; the model ([`super::EfficientNetTrainer`]) runs chunks of images in
//! parallel with rayon and adds their partial sums in a fixed order, so results do not depend on the
//! number of threads. Slice lengths are checked with `assert!` (a mismatch is a caller bug).

use crate::kernels::same_padding;
use crate::linalg::{View, gemm};
use crate::kernels::simd::multiversion;

/// 1x1 convolution forward: `y[p, o] = Σ_i x[p, i] · w[o, i]`, `x` `[pixels, cin]`, `w` `[cout, cin]`.
pub fn pointwise_forward(x: &[f32], w: &[f32], cin: usize, cout: usize, y: &mut [f32]) {
    assert_eq!(
        w.len(),
        cin * cout,
        "pointwise_forward: weight is not [{cout}, {cin}]"
    );
    assert!(
        x.len().is_multiple_of(cin),
        "pointwise_forward: input is not [pixels, {cin}]"
    );
    let p = x.len() / cin;
    assert_eq!(
        y.len(),
        p * cout,
        "pointwise_forward: output is not [{p}, {cout}]"
    );
    gemm(p, cin, cout, View::rows(x, cin), View::transposed(w, cin), 0.0, y);
}

/// 1x1 convolution backward: accumulates `dw[o, i] += Σ_p dy[p, o] · x[p, i]` and, if `dx` is given,
/// writes `dx[p, i] = Σ_o dy[p, o] · w[o, i]`.
pub fn pointwise_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    cin: usize,
    cout: usize,
    dw: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    assert_eq!(
        w.len(),
        cin * cout,
        "pointwise_backward: weight is not [{cout}, {cin}]"
    );
    assert_eq!(
        dw.len(),
        cin * cout,
        "pointwise_backward: weight gradient is not [{cout}, {cin}]"
    );
    let p = x.len() / cin;
    assert_eq!(
        x.len(),
        p * cin,
        "pointwise_backward: input is not [pixels, {cin}]"
    );
    assert_eq!(
        dy.len(),
        p * cout,
        "pointwise_backward: output gradient is not [{p}, {cout}]"
    );
    gemm(cout, p, cin, View::transposed(dy, cout), View::rows(x, cin), 1.0, dw);
    if let Some(dx) = dx {
        assert_eq!(
            dx.len(),
            p * cin,
            "pointwise_backward: input gradient is not [{p}, {cin}]"
        );
        gemm(p, cout, cin, View::rows(dy, cout), View::rows(w, cin), 0.0, dx);
    }
}

/// Geometry of a depthwise / dense convolution with TF "SAME" padding on an `h x w` map.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeometry {
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub ho: usize,
    pub wo: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl ConvGeometry {
    pub fn new(h: usize, w: usize, k: usize, stride: usize) -> Self {
        let (ho, pad_top) = same_padding(h, k, stride);
        let (wo, pad_left) = same_padding(w, k, stride);
        ConvGeometry {
            h,
            w,
            k,
            stride,
            ho,
            wo,
            pad_top,
            pad_left,
        }
    }

    /// Input coordinate of tap `t` for output coordinate `o` (None in the padding).
    #[inline]
    fn input(o: usize, t: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        let i = (o * stride + t).checked_sub(pad)?;
        (i < size).then_some(i)
    }
}

/// Transposes a PyTorch depthwise weight `[c, 1, k, k]` to the tap-major `[k, k, c]` the NHWC loops use.
pub fn depthwise_weight_to_taps(w: &[f32], c: usize, k: usize) -> Vec<f32> {
    assert_eq!(
        w.len(),
        c * k * k,
        "depthwise weight is not [{c}, 1, {k}, {k}]"
    );
    let mut t = vec![0.0; w.len()];
    for ch in 0..c {
        for tap in 0..k * k {
            t[tap * c + ch] = w[ch * k * k + tap];
        }
    }
    t
}

/// Depthwise convolution forward on one image, reference-speed loops: `x` `[h, w, c]`, `w_taps`
/// `[k, k, c]` (see [`depthwise_weight_to_taps`]), `y` `[ho, wo, c]`. The model itself uses the
/// vectorized inference kernel for the forward pass; this one is for tests and small shapes.
///
/// Compiled per instruction set and chosen at run time ([`crate::kernels::simd`]); the loops are
/// element-wise over channels, so every instruction set gives bit-identical results.
pub fn depthwise_forward(x: &[f32], w_taps: &[f32], c: usize, g: ConvGeometry, y: &mut [f32]) {
    depthwise_forward_with(crate::kernels::simd_level(), x, w_taps, c, g, y)
}

multiversion! {
    fn depthwise_forward_with(x: &[f32], w_taps: &[f32], c: usize, g: ConvGeometry, y: &mut [f32]) => depthwise_forward_body
}

/// The body of [`depthwise_forward`], compiled once per instruction set by inlining into its wrappers.
#[inline(always)]
fn depthwise_forward_body(x: &[f32], w_taps: &[f32], c: usize, g: ConvGeometry, y: &mut [f32]) {
    assert_eq!(
        x.len(),
        g.h * g.w * c,
        "depthwise_forward: input is not [{}, {}, {c}]",
        g.h,
        g.w
    );
    assert_eq!(
        w_taps.len(),
        g.k * g.k * c,
        "depthwise_forward: weight is not [{}, {}, {c}]",
        g.k,
        g.k
    );
    assert_eq!(
        y.len(),
        g.ho * g.wo * c,
        "depthwise_forward: output is not [{}, {}, {c}]",
        g.ho,
        g.wo
    );
    y.fill(0.0);
    for oy in 0..g.ho {
        for ox in 0..g.wo {
            let out = &mut y[(oy * g.wo + ox) * c..][..c];
            for ky in 0..g.k {
                let Some(iy) = ConvGeometry::input(oy, ky, g.stride, g.pad_top, g.h) else {
                    continue;
                };
                for kx in 0..g.k {
                    let Some(ix) = ConvGeometry::input(ox, kx, g.stride, g.pad_left, g.w) else {
                        continue;
                    };
                    let xi = &x[(iy * g.w + ix) * c..][..c];
                    let wk = &w_taps[(ky * g.k + kx) * c..][..c];
                    for ((o, a), b) in out.iter_mut().zip(xi).zip(wk) {
                        *o += a * b;
                    }
                }
            }
        }
    }
}

/// Depthwise convolution backward on one image: accumulates `dw_taps[ky, kx, c] += Σ dy · x` and, if
/// `dx` is given, writes the input gradient `[h, w, c]` (overwritten).
///
/// Compiled per instruction set and chosen at run time ([`crate::kernels::simd`]); the loops are
/// element-wise over channels, so every instruction set gives bit-identical results.
pub fn depthwise_backward(
    x: &[f32],
    w_taps: &[f32],
    dy: &[f32],
    c: usize,
    g: ConvGeometry,
    dw_taps: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    depthwise_backward_with(crate::kernels::simd_level(), x, w_taps, dy, c, g, dw_taps, dx)
}

multiversion! {
    fn depthwise_backward_with(x: &[f32], w_taps: &[f32], dy: &[f32], c: usize, g: ConvGeometry, dw_taps: &mut [f32], dx: Option<&mut [f32]>) => depthwise_backward_body
}

/// The body of [`depthwise_backward`], compiled once per instruction set by inlining into its wrappers.
#[inline(always)]
fn depthwise_backward_body(
    x: &[f32],
    w_taps: &[f32],
    dy: &[f32],
    c: usize,
    g: ConvGeometry,
    dw_taps: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    assert_eq!(
        x.len(),
        g.h * g.w * c,
        "depthwise_backward: input is not [{}, {}, {c}]",
        g.h,
        g.w
    );
    assert_eq!(
        w_taps.len(),
        g.k * g.k * c,
        "depthwise_backward: weight is not [{}, {}, {c}]",
        g.k,
        g.k
    );
    assert_eq!(
        dw_taps.len(),
        w_taps.len(),
        "depthwise_backward: weight gradient is not [{}, {}, {c}]",
        g.k,
        g.k
    );
    assert_eq!(
        dy.len(),
        g.ho * g.wo * c,
        "depthwise_backward: output gradient is not [{}, {}, {c}]",
        g.ho,
        g.wo
    );
    if let Some(dx) = dx.as_deref_mut() {
        assert_eq!(
            dx.len(),
            x.len(),
            "depthwise_backward: input gradient is not [{}, {}, {c}]",
            g.h,
            g.w
        );
        dx.fill(0.0);
    }
    // Loop order: output row, tap, output column, channels. One tap's weight-gradient row (`c`
    // values) and weights stay in L1 while the tap slides along the row; the output-gradient row is
    // reused by all k·k taps.
    for oy in 0..g.ho {
        let drow = &dy[oy * g.wo * c..(oy + 1) * g.wo * c];
        for ky in 0..g.k {
            let Some(iy) = ConvGeometry::input(oy, ky, g.stride, g.pad_top, g.h) else {
                continue;
            };
            for kx in 0..g.k {
                // Output columns whose tap kx lands inside the image: ix = ox·s + kx − pad_left in [0, w).
                let ox_lo = g.pad_left.saturating_sub(kx).div_ceil(g.stride);
                let ox_hi = ((g.w + g.pad_left).saturating_sub(kx))
                    .div_ceil(g.stride)
                    .min(g.wo);
                let tap = (ky * g.k + kx) * c;
                let wk = &w_taps[tap..tap + c];
                let gw = &mut dw_taps[tap..tap + c];
                for ox in ox_lo..ox_hi {
                    let ix = ox * g.stride + kx - g.pad_left;
                    let at = (iy * g.w + ix) * c;
                    let d = &drow[ox * c..(ox + 1) * c];
                    for ((gw, a), b) in gw.iter_mut().zip(&x[at..at + c]).zip(d) {
                        *gw += a * b;
                    }
                    if let Some(dx) = dx.as_deref_mut() {
                        for ((gx, a), b) in dx[at..at + c].iter_mut().zip(wk).zip(d) {
                            *gx += a * b;
                        }
                    }
                }
            }
        }
    }
}

/// im2col of one planar image `x` `[cin, h, w]` (NCHW without the batch axis) for a kxk convolution:
/// `patches` `[ho·wo, cin·k·k]`, columns in PyTorch's `(cin, ky, kx)` order, zeros in the padding.
pub fn im2col(x: &[f32], cin: usize, g: ConvGeometry, patches: &mut Vec<f32>) {
    assert_eq!(
        x.len(),
        cin * g.h * g.w,
        "im2col: input is not [{cin}, {}, {}]",
        g.h,
        g.w
    );
    let kk = cin * g.k * g.k;
    patches.clear();
    patches.resize(g.ho * g.wo * kk, 0.0);
    for oy in 0..g.ho {
        for ox in 0..g.wo {
            let row = &mut patches[(oy * g.wo + ox) * kk..][..kk];
            for ci in 0..cin {
                for ky in 0..g.k {
                    let Some(iy) = ConvGeometry::input(oy, ky, g.stride, g.pad_top, g.h) else {
                        continue;
                    };
                    for kx in 0..g.k {
                        let Some(ix) = ConvGeometry::input(ox, kx, g.stride, g.pad_left, g.w)
                        else {
                            continue;
                        };
                        row[(ci * g.k + ky) * g.k + kx] = x[(ci * g.h + iy) * g.w + ix];
                    }
                }
            }
        }
    }
}

/// Stem (dense kxk) convolution forward on one NCHW image: `y` `[ho, wo, cout]` (NHWC), `w`
/// `[cout, cin, k, k]`. `patches` is scratch space.
pub fn stem_forward(
    x: &[f32],
    w: &[f32],
    cin: usize,
    cout: usize,
    g: ConvGeometry,
    patches: &mut Vec<f32>,
    y: &mut [f32],
) {
    let kk = cin * g.k * g.k;
    assert_eq!(
        w.len(),
        cout * kk,
        "stem_forward: weight is not [{cout}, {cin}, {}, {}]",
        g.k,
        g.k
    );
    assert_eq!(
        y.len(),
        g.ho * g.wo * cout,
        "stem_forward: output is not [{}, {}, {cout}]",
        g.ho,
        g.wo
    );
    im2col(x, cin, g, patches);
    gemm(g.ho * g.wo, kk, cout, View::rows(patches, kk), View::transposed(w, kk), 0.0, y);
}

/// Stem convolution backward, weight gradient only (the image needs none): accumulates
/// `dw[o, (ci, ky, kx)] += Σ_p dy[p, o] · patch[p, (ci, ky, kx)]`.
pub fn stem_backward(
    x: &[f32],
    dy: &[f32],
    cin: usize,
    cout: usize,
    g: ConvGeometry,
    patches: &mut Vec<f32>,
    dw: &mut [f32],
) {
    let kk = cin * g.k * g.k;
    assert_eq!(
        dw.len(),
        cout * kk,
        "stem_backward: weight gradient is not [{cout}, {cin}, {}, {}]",
        g.k,
        g.k
    );
    let p = g.ho * g.wo;
    assert_eq!(
        dy.len(),
        p * cout,
        "stem_backward: output gradient is not [{}, {}, {cout}]",
        g.ho,
        g.wo
    );
    im2col(x, cin, g, patches);
    gemm(cout, p, kk, View::transposed(dy, cout), View::rows(patches, kk), 1.0, dw);
}

/// Rows summed in f32 before they are added to the f64 totals: short enough that f32 rounding stays
/// far below what the tests hold the statistics to, long enough that the f32 loop (which vectorizes)
/// does the work.
const ROWS_PER_F32_SUM: usize = 32;

/// Per-channel sums `(Σ z, Σ z²)` of one image's (or chunk's) `z` `[pixels, c]`, returned in f64
/// (the batch statistics are these summed over chunks in chunk order). Blocks of
/// `ROWS_PER_F32_SUM` (32) rows are summed in f32 first.
///
/// Compiled per instruction set and chosen at run time ([`crate::kernels::simd`]); the loops are
/// element-wise over channels, so every instruction set gives bit-identical results.
pub fn channel_sums(z: &[f32], c: usize) -> (Vec<f64>, Vec<f64>) {
    channel_sums_with(crate::kernels::simd_level(), z, c)
}

multiversion! {
    fn channel_sums_with(z: &[f32], c: usize) -> (Vec<f64>, Vec<f64>) => channel_sums_body
}

/// The body of [`channel_sums`], compiled once per instruction set by inlining into its wrappers.
#[inline(always)]
fn channel_sums_body(z: &[f32], c: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(
        c > 0 && z.len().is_multiple_of(c),
        "channel_sums: tensor is not [pixels, {c}]"
    );
    let mut s = vec![0.0f64; c];
    let mut q = vec![0.0f64; c];
    let (mut fs, mut fq) = (vec![0.0f32; c], vec![0.0f32; c]);
    for block in z.chunks(ROWS_PER_F32_SUM * c) {
        fs.fill(0.0);
        fq.fill(0.0);
        for row in block.chunks_exact(c) {
            for ((s, q), &v) in fs.iter_mut().zip(fq.iter_mut()).zip(row) {
                *s += v;
                *q += v * v;
            }
        }
        s.iter_mut().zip(&fs).for_each(|(a, &b)| *a += b as f64);
        q.iter_mut().zip(&fq).for_each(|(a, &b)| *a += b as f64);
    }
    (s, q)
}

/// Batch norm (with scale `gamma`, shift `beta`, the statistics `mean`, `inv_std = 1/√(σ²+ε)`) and
/// optional ReLU6, applied to `z` `[pixels, c]` into `a`.
///
/// Compiled per instruction set and chosen at run time ([`crate::kernels::simd`]); the loops are
/// element-wise over channels, so every instruction set gives bit-identical results.
#[allow(clippy::too_many_arguments)] // the tensor, its statistics and affine parameters, and the output
pub fn batch_norm_forward(
    z: &[f32],
    c: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
    relu6: bool,
    a: &mut [f32],
) {
    batch_norm_forward_with(crate::kernels::simd_level(), z, c, mean, inv_std, gamma, beta, relu6, a)
}

multiversion! {
    fn batch_norm_forward_with(z: &[f32], c: usize, mean: &[f32], inv_std: &[f32], gamma: &[f32], beta: &[f32], relu6: bool, a: &mut [f32]) => batch_norm_forward_body
}

/// The body of [`batch_norm_forward`], compiled once per instruction set by inlining into its wrappers.
#[allow(clippy::too_many_arguments)] // the tensor, its statistics and affine parameters, and the output
#[inline(always)]
fn batch_norm_forward_body(
    z: &[f32],
    c: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
    relu6: bool,
    a: &mut [f32],
) {
    assert_eq!(
        z.len(),
        a.len(),
        "batch_norm_forward: output length differs from input"
    );
    let scale: Vec<f32> = (0..c).map(|i| gamma[i] * inv_std[i]).collect();
    let shift: Vec<f32> = (0..c).map(|i| beta[i] - mean[i] * scale[i]).collect();
    let (lo, hi) = if relu6 {
        (0.0, 6.0)
    } else {
        (f32::NEG_INFINITY, f32::INFINITY)
    };
    for (zr, ar) in z.chunks_exact(c).zip(a.chunks_exact_mut(c)) {
        for (((o, &v), s), t) in ar.iter_mut().zip(zr).zip(&scale).zip(&shift) {
            *o = (v * s + t).max(lo).min(hi);
        }
    }
}

/// First pass of the batch-norm backward on one image: turns `da` (gradient of the activation) into
/// `dy` (gradient of the batch-norm output, in place: ReLU6's mask `0 < y < 6` applied when `relu6`),
/// and returns its per-channel partial sums `(Σ dy, Σ dy·x̂)` with `x̂ = (z − mean)·inv_std`: these are
/// the gradients of `beta` and `gamma`, and what training-mode backward needs.
///
/// Compiled per instruction set and chosen at run time ([`crate::kernels::simd`]); the loops are
/// element-wise over channels, so every instruction set gives bit-identical results.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_sums(
    z: &[f32],
    c: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
    relu6: bool,
    da: &mut [f32],
) -> (Vec<f64>, Vec<f64>) {
    batch_norm_backward_sums_with(crate::kernels::simd_level(), z, c, mean, inv_std, gamma, beta, relu6, da)
}

multiversion! {
    fn batch_norm_backward_sums_with(z: &[f32], c: usize, mean: &[f32], inv_std: &[f32], gamma: &[f32], beta: &[f32], relu6: bool, da: &mut [f32]) -> (Vec<f64>, Vec<f64>) => batch_norm_backward_sums_body
}

/// The body of [`batch_norm_backward_sums`], compiled once per instruction set by inlining into its wrappers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn batch_norm_backward_sums_body(
    z: &[f32],
    c: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
    relu6: bool,
    da: &mut [f32],
) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(
        z.len(),
        da.len(),
        "batch_norm_backward: gradient length differs from input"
    );
    assert!(
        mean.len() == c && inv_std.len() == c && gamma.len() == c && beta.len() == c,
        "batch_norm_backward: parameters are not [{c}]"
    );
    let mut sum_dy = vec![0.0f64; c];
    let mut sum_dyx = vec![0.0f64; c];
    let (mut fs, mut fx) = (vec![0.0f32; c], vec![0.0f32; c]);
    let (mut xhat, mut y) = (vec![0.0f32; c], vec![0.0f32; c]);
    for (zb, db) in z
        .chunks(ROWS_PER_F32_SUM * c)
        .zip(da.chunks_mut(ROWS_PER_F32_SUM * c))
    {
        fs.fill(0.0);
        fx.fill(0.0);
        for (zr, dr) in zb.chunks_exact(c).zip(db.chunks_exact_mut(c)) {
            // Branch-free passes over the channel axis, so each vectorizes.
            for (((xh, &zv), &m), &s) in xhat.iter_mut().zip(zr).zip(mean).zip(inv_std) {
                *xh = (zv - m) * s;
            }
            if relu6 {
                for (((yv, &xh), &g), &b) in y.iter_mut().zip(&xhat).zip(gamma).zip(beta) {
                    *yv = g * xh + b;
                }
                for (d, &yv) in dr.iter_mut().zip(&y) {
                    *d = if yv > 0.0 && yv < 6.0 { *d } else { 0.0 };
                }
            }
            for (((s, x), &d), &xh) in fs.iter_mut().zip(fx.iter_mut()).zip(dr.iter()).zip(&xhat) {
                *s += d;
                *x += d * xh;
            }
        }
        sum_dy
            .iter_mut()
            .zip(&fs)
            .for_each(|(a, &b)| *a += b as f64);
        sum_dyx
            .iter_mut()
            .zip(&fx)
            .for_each(|(a, &b)| *a += b as f64);
    }
    (sum_dy, sum_dyx)
}

/// Second pass of the batch-norm backward: `dy` (from [`batch_norm_backward_sums`]) into `dz` in place.
/// Training mode (batch statistics over `count` values per channel, `dbeta`/`dgamma` the batch sums):
/// `dz = γ·inv_std·(dy − Σdy/count − x̂·Σ(dy·x̂)/count)`; frozen mode (`batch = None`): `dz = γ·inv_std·dy`.
///
/// Compiled per instruction set and chosen at run time ([`crate::kernels::simd`]); the loops are
/// element-wise over channels, so every instruction set gives bit-identical results.
pub fn batch_norm_backward_apply(
    z: &[f32],
    c: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    batch: Option<(&[f32], &[f32], usize)>,
    dy: &mut [f32],
) {
    batch_norm_backward_apply_with(crate::kernels::simd_level(), z, c, mean, inv_std, gamma, batch, dy)
}

multiversion! {
    fn batch_norm_backward_apply_with(z: &[f32], c: usize, mean: &[f32], inv_std: &[f32], gamma: &[f32], batch: Option<(&[f32], &[f32], usize)>, dy: &mut [f32]) => batch_norm_backward_apply_body
}

/// The body of [`batch_norm_backward_apply`], compiled once per instruction set by inlining into its wrappers.
#[inline(always)]
fn batch_norm_backward_apply_body(
    z: &[f32],
    c: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    batch: Option<(&[f32], &[f32], usize)>,
    dy: &mut [f32],
) {
    assert_eq!(
        z.len(),
        dy.len(),
        "batch_norm_backward: gradient length differs from input"
    );
    let k: Vec<f32> = (0..c).map(|i| gamma[i] * inv_std[i]).collect();
    match batch {
        None => {
            for dr in dy.chunks_exact_mut(c) {
                for (d, k) in dr.iter_mut().zip(&k) {
                    *d *= k;
                }
            }
        }
        Some((dbeta, dgamma, count)) => {
            // dz = k·dy − k·Σdy/count − k·Σ(dy·x̂)/count · (z − mean)·inv_std, per channel
            //    = k·dy + (a·z + b) with a, b constant per channel.
            let m = 1.0 / count as f32;
            let a: Vec<f32> = (0..c).map(|i| -k[i] * dgamma[i] * m * inv_std[i]).collect();
            let b: Vec<f32> = (0..c)
                .map(|i| -k[i] * dbeta[i] * m - a[i] * mean[i])
                .collect();
            for (zr, dr) in z.chunks_exact(c).zip(dy.chunks_exact_mut(c)) {
                for ((((d, &zv), &k), &a), &b) in dr.iter_mut().zip(zr).zip(&k).zip(&a).zip(&b) {
                    *d = k * *d + (a * zv + b);
                }
            }
        }
    }
}

/// Global average pool backward: every pixel of `dx` `[pixels, c]` gets `dfeat[c] / pixels`.
pub fn global_average_pool_backward(dfeat: &[f32], dx: &mut [f32]) {
    let c = dfeat.len();
    assert!(
        c > 0 && dx.len().is_multiple_of(c),
        "global_average_pool_backward: gradient is not [pixels, {c}]"
    );
    let scale = 1.0 / (dx.len() / c).max(1) as f32;
    for row in dx.chunks_exact_mut(c) {
        for (d, f) in row.iter_mut().zip(dfeat) {
            *d = f * scale;
        }
    }
}

/// Linear layer forward `y[n, o] = Σ_i x[n, i] · w[o, i] + b[o]`, `w` `[out, in]`.
pub fn linear_forward(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    let (out, inp) = (b.len(), w.len() / b.len().max(1));
    assert_eq!(
        w.len(),
        out * inp,
        "linear_forward: weight is not [{out}, in]"
    );
    let n = x.len() / inp;
    assert_eq!(
        y.len(),
        n * out,
        "linear_forward: output is not [{n}, {out}]"
    );
    for row in y.chunks_exact_mut(out) {
        row.copy_from_slice(b);
    }
    gemm(n, inp, out, View::rows(x, inp), View::transposed(w, inp), 1.0, y);
}

/// Linear layer backward: `dw = dyᵀ·x`, `db = Σ_n dy` (both overwritten), `dx = dy·w` if given.
pub fn linear_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    let out = db.len();
    let inp = w.len() / out;
    let n = dy.len() / out;
    assert_eq!(
        x.len(),
        n * inp,
        "linear_backward: input is not [{n}, {inp}]"
    );
    assert_eq!(
        dw.len(),
        w.len(),
        "linear_backward: weight gradient is not [{out}, {inp}]"
    );
    gemm(out, n, inp, View::transposed(dy, out), View::rows(x, inp), 0.0, dw);
    db.fill(0.0);
    for row in dy.chunks_exact(out) {
        for (d, v) in db.iter_mut().zip(row) {
            *d += v;
        }
    }
    if let Some(dx) = dx {
        assert_eq!(
            dx.len(),
            n * inp,
            "linear_backward: input gradient is not [{n}, {inp}]"
        );
        gemm(n, out, inp, View::rows(dy, out), View::rows(w, inp), 0.0, dx);
    }
}

/// Mean softmax cross-entropy and its gradient `(softmax − onehot)/n` (f64 sums): see
/// [`crate::softmax`], where every softmax variant of the crate lives.
pub use crate::softmax::cross_entropy_mean as cross_entropy;

/// A counter-based uniform number in `[0, 1)` from `(seed, a, b, c)` (splitmix64 of a mix): dropout
/// masks keyed by (seed, step, sample, feature) do not depend on how work is split over threads.
pub fn counter_uniform(seed: u64, a: u64, b: u64, c: u64) -> f32 {
    let mut z = seed
        ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ c.wrapping_mul(0x1656_67B1_9E37_79F9);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}
