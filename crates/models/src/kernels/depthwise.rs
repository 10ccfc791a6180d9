//! Direct depthwise kxk convolution on NHWC activations, vectorized over channels.
//!
//! A depthwise convolution does `k·k` multiply-adds per output value and has no reduction over
//! channels, so as a GEMM it degenerates into one tiny product per channel (the reason a per-group
//! loop of GEMMs is slow). Computed directly in NHWC, each tap is a contiguous run of channels in the
//! input and in the `[k, k, c]` weight, so one vector FMA handles 16 (AVX-512) or 8 (AVX2) channels.
//! Several output pixels along a row are computed together so each weight load serves all of them and
//! enough independent FMA chains are in flight; bias and activation are applied before the store.

use super::simd::{F32x, Scalar, multiversion};

use std::ops::Range;

use super::{Activation, same_padding, simd_level};

/// A depthwise convolution (groups = channels, one filter per channel) with TensorFlow "SAME" padding,
/// bias and activation: `out[oy, ox, c] = act(bias[c] + Σ_{ky,kx} x[oy·s + ky − pt, ox·s + kx − pl, c] · w[ky, kx, c])`.
#[derive(Clone, Debug)]
pub struct DepthwiseConv {
    channels: usize,
    k: usize,
    stride: usize,
    /// `[k, k, channels]`: PyTorch's `[channels, 1, k, k]` transposed so taps are channel-contiguous.
    weight: Vec<f32>,
    bias: Vec<f32>,
    act: Activation,
}

/// The geometry of one call, passed to the kernel by value: an `h x w x c` image of which the input
/// slice holds rows `row0..`, and the output rows `oy_begin..oy_end` (of `ho x wo`) to compute.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    h: usize,
    w: usize,
    c: usize,
    k: usize,
    stride: usize,
    ho: usize,
    wo: usize,
    pad_top: usize,
    pad_left: usize,
    row0: usize,
    oy_begin: usize,
    oy_end: usize,
}

impl DepthwiseConv {
    /// From a PyTorch weight `[channels, 1, k, k]` and a bias `[channels]`.
    pub fn from_torch(weight: &[f32], bias: &[f32], channels: usize, k: usize, stride: usize, act: Activation) -> Self {
        assert_eq!(weight.len(), channels * k * k, "DepthwiseConv: weight is not [{channels}, 1, {k}, {k}]");
        assert_eq!(bias.len(), channels, "DepthwiseConv: bias is not [{channels}]");
        assert!(k > 0 && stride > 0, "DepthwiseConv: kernel and stride must be positive");
        let mut w = vec![0.0; k * k * channels];
        for c in 0..channels {
            for t in 0..k * k {
                w[t * channels + c] = weight[c * k * k + t];
            }
        }
        DepthwiseConv { channels, k, stride, weight: w, bias: bias.to_vec(), act }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn kernel(&self) -> usize {
        self.k
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Output height and width for an `h x w` input.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        (same_padding(h, self.k, self.stride).0, same_padding(w, self.k, self.stride).0)
    }

    /// Runs on `input` `[h, w, channels]`, writing `out` `[ho, wo, channels]`.
    pub fn forward(&self, input: &[f32], h: usize, w: usize, out: &mut [f32]) {
        let (ho, _) = self.output_size(h, w);
        self.forward_rows(input, 0, h, w, 0..ho, out)
    }

    /// The input rows (clipped to `0..h`) that output rows `out_rows` read.
    pub fn input_rows(&self, h: usize, out_rows: Range<usize>) -> Range<usize> {
        if out_rows.is_empty() {
            return 0..0;
        }
        let pad_top = same_padding(h, self.k, self.stride).1;
        let lo = (out_rows.start * self.stride).saturating_sub(pad_top).min(h);
        let hi = ((out_rows.end - 1) * self.stride + self.k).saturating_sub(pad_top).min(h);
        lo..hi.max(lo)
    }

    /// Computes only output rows `out_rows` of an `h x w` image, from `input` holding image rows
    /// `row0..` (at least [`input_rows`](Self::input_rows)), into `out` `[out_rows.len(), wo, channels]`.
    /// This lets a block stream its hidden activation through cache in bands of rows.
    pub fn forward_rows(&self, input: &[f32], row0: usize, h: usize, w: usize, out_rows: Range<usize>, out: &mut [f32]) {
        self.forward_rows_with(simd_level(), input, row0, h, w, out_rows, out)
    }

    /// [`forward_rows`](Self::forward_rows) on a chosen instruction set (lowered to what the CPU has).
    #[allow(clippy::too_many_arguments)] // the geometry of one call, all needed
    pub(crate) fn forward_rows_with(&self, level: super::SimdLevel, input: &[f32], row0: usize, h: usize, w: usize, out_rows: Range<usize>, out: &mut [f32]) {
        let (ho, pad_top) = same_padding(h, self.k, self.stride);
        let (wo, pad_left) = same_padding(w, self.k, self.stride);
        let c = self.channels;
        assert!(out_rows.start <= out_rows.end && out_rows.end <= ho, "DepthwiseConv: output rows {out_rows:?} outside 0..{ho}");
        let need = self.input_rows(h, out_rows.clone());
        assert!(
            input.len().is_multiple_of((w * c).max(1)) && row0 <= need.start && (need.end - row0) * w * c <= input.len(),
            "DepthwiseConv: input holds {} values from row {row0}, rows {need:?} of [{h}, {w}, {c}] are needed",
            input.len()
        );
        assert_eq!(out.len(), out_rows.len() * wo * c, "DepthwiseConv: output is not [{}, {wo}, {c}]", out_rows.len());
        let g = Geometry { h, w, c, k: self.k, stride: self.stride, ho, wo, pad_top, pad_left, row0, oy_begin: out_rows.start, oy_end: out_rows.end };
        depthwise_with(level, g, input, &self.weight, &self.bias, self.act.bounds(), out);
    }
}

multiversion! {
    fn depthwise_with(g: Geometry, input: &[f32], weight: &[f32], bias: &[f32], bounds: (f32, f32), out: &mut [f32]) => depthwise_kernel::<V>
}

/// Output pixels computed together along a row: they share each weight load, and with [`VECS`] vectors
/// of channels give `PIXELS · VECS` independent FMA chains, enough to cover the FMA latency.
const PIXELS: usize = 4;
/// Vectors of channels per pass.
const VECS: usize = 2;

/// Where one pass reads and writes: `P` output pixels of row `oy` starting at column `ox`, over the
/// tap rows `ky0..ky1` and tap columns `kx0..kx1` (the part of the window inside the image).
#[derive(Clone, Copy)]
struct Window {
    /// Row of tap row 0 in the input slice (may be negative: padding).
    iy0: isize,
    ky0: usize,
    ky1: usize,
    /// Input column of tap column 0 for the first pixel (may be negative).
    ix0: isize,
    kx0: usize,
    kx1: usize,
    /// Output offset of the first pixel's channel 0.
    out: usize,
}

/// The depthwise kernel for one image. Along each output row, runs of [`PIXELS`] pixels whose windows
/// lie wholly inside the image take the fast path; the few border pixels go one at a time with their
/// windows clipped. Channels go [`VECS`] vectors at a time, then one vector, then one lane (any channel
/// count works; EfficientNet's are all multiples of 16).
///
/// # Safety
/// Only the instruction set of `V`; slice bounds are checked by the asserts at the top, and every
/// offset formed is inside them (windows are clipped to the image, channels to `c`).
#[inline(always)]
unsafe fn depthwise_kernel<V: F32x>(g: Geometry, input: &[f32], weight: &[f32], bias: &[f32], bounds: (f32, f32), out: &mut [f32]) {
    let Geometry { h, w, c, k, stride, ho, wo, pad_top, pad_left, row0, oy_begin, oy_end } = g;
    assert!(weight.len() >= k * k * c && bias.len() >= c && out.len() >= (oy_end - oy_begin) * wo * c && oy_end <= ho);
    // The rows the windows reach, clipped to the image, must lie in the slice.
    if oy_begin < oy_end {
        let lo = ((oy_begin * stride) as isize - pad_top as isize).max(0) as usize;
        let hi = (((oy_end - 1) * stride + k) as isize - pad_top as isize).clamp(0, h as isize) as usize;
        assert!(row0 <= lo && (hi.max(lo) - row0) * w * c <= input.len());
    }
    let out = out.as_mut_ptr();
    for oy in oy_begin..oy_end {
        let iy0 = (oy * stride) as isize - pad_top as isize;
        let ky0 = (-iy0).max(0) as usize;
        let ky1 = (h as isize - iy0).clamp(0, k as isize) as usize;
        let iy0 = iy0 - row0 as isize;
        let mut ox = 0;
        while ox < wo {
            let ix0 = (ox * stride) as isize - pad_left as isize;
            let win = |kx0, kx1| Window { iy0, ky0, ky1, ix0, kx0, kx1, out: ((oy - oy_begin) * wo + ox) * c };
            let last_ix0 = ix0 + ((PIXELS - 1) * stride) as isize;
            // SAFETY (both calls): the window is clipped to the image rows and columns.
            if ox + PIXELS <= wo && ix0 >= 0 && last_ix0 + k as isize <= w as isize {
                unsafe { pixels::<V, PIXELS>(g, input, weight, bias, bounds, out, win(0, k)) };
                ox += PIXELS;
            } else {
                let kx0 = (-ix0).max(0) as usize;
                let kx1 = (w as isize - ix0).clamp(0, k as isize) as usize;
                unsafe { pixels::<V, 1>(g, input, weight, bias, bounds, out, win(kx0, kx1)) };
                ox += 1;
            }
        }
    }
}

/// All channels of `P` adjacent output pixels sharing one clipped window shape.
///
/// # Safety
/// As [`depthwise_kernel`]: the window's taps, shifted by up to `P − 1` strides, are inside the input.
#[inline(always)]
unsafe fn pixels<V: F32x, const P: usize>(g: Geometry, input: &[f32], weight: &[f32], bias: &[f32], bounds: (f32, f32), out: *mut f32, win: Window) {
    let (c, l) = (g.c, V::LANES);
    let mut ch = 0;
    // SAFETY: channel blocks end at or before `c`.
    unsafe {
        while ch + VECS * l <= c {
            tile::<V, P, VECS>(g, input, weight, bias, bounds, out, win, ch);
            ch += VECS * l;
        }
        while ch + l <= c {
            tile::<V, P, 1>(g, input, weight, bias, bounds, out, win, ch);
            ch += l;
        }
        while ch < c {
            tile::<Scalar, P, 1>(g, input, weight, bias, bounds, out, win, ch);
            ch += 1;
        }
    }
}

/// `U` vectors of channels from `ch` for `P` pixels: `P · U` accumulators start at the bias, take one
/// FMA per tap (each weight vector loaded once for all pixels), are clamped and stored.
///
/// # Safety
/// As [`pixels`], and `ch + U · lanes <= c`.
#[allow(clippy::too_many_arguments)] // the kernel's operands, passed by value to stay in registers
#[inline(always)]
unsafe fn tile<V: F32x, const P: usize, const U: usize>(g: Geometry, input: &[f32], weight: &[f32], bias: &[f32], bounds: (f32, f32), out: *mut f32, win: Window, ch: usize) {
    let (c, l, k, s) = (g.c, V::LANES, g.k, g.stride);
    unsafe {
        let x = input.as_ptr().add(ch);
        let wt = weight.as_ptr().add(ch);
        let mut acc = [[V::splat(0.0); U]; P];
        for u in 0..U {
            let b = V::load(bias.as_ptr().add(ch + u * l));
            for a in acc.iter_mut() {
                a[u] = b;
            }
        }
        for ky in win.ky0..win.ky1 {
            let row = x.add((win.iy0 + ky as isize) as usize * g.w * c);
            for kx in win.kx0..win.kx1 {
                let col = (win.ix0 + kx as isize) as usize;
                let wk = wt.add((ky * k + kx) * c);
                let mut wv = [V::splat(0.0); U];
                for (u, v) in wv.iter_mut().enumerate() {
                    *v = V::load(wk.add(u * l));
                }
                for (p, a) in acc.iter_mut().enumerate() {
                    let xp = row.add((col + p * s) * c);
                    for u in 0..U {
                        a[u] = V::load(xp.add(u * l)).mul_add(wv[u], a[u]);
                    }
                }
            }
        }
        let (lo, hi) = (V::splat(bounds.0), V::splat(bounds.1));
        for (p, a) in acc.iter().enumerate() {
            let o = out.add(win.out + p * c + ch);
            for (u, v) in a.iter().enumerate() {
                v.clamp(lo, hi).store(o.add(u * l));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::SimdLevel;
    use super::*;

    /// Depthwise convolution straight from the definition, NCHW weights, in f64.
    #[allow(clippy::too_many_arguments)]
    fn reference(x: &[f32], h: usize, w: usize, c: usize, wt: &[f32], b: &[f32], k: usize, s: usize, act: Activation) -> Vec<f32> {
        let (ho, pt) = same_padding(h, k, s);
        let (wo, pl) = same_padding(w, k, s);
        let mut out = vec![0.0; ho * wo * c];
        for oy in 0..ho {
            for ox in 0..wo {
                for ch in 0..c {
                    let mut acc = b[ch] as f64;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * s + ky) as isize - pt as isize;
                            let ix = (ox * s + kx) as isize - pl as isize;
                            if iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w {
                                acc += x[(iy as usize * w + ix as usize) * c + ch] as f64 * wt[(ch * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                    out[(oy * wo + ox) * c + ch] = act.apply(acc as f32);
                }
            }
        }
        out
    }

    #[test]
    fn matches_definition_for_every_level_shape_and_stride() {
        // Channel counts exercise the unrolled, single-vector and scalar-remainder paths of each width.
        for &(h, w, c, k, s) in &[(7, 9, 67, 3, 1), (8, 8, 64, 3, 2), (9, 6, 144, 5, 2), (5, 5, 3, 5, 1), (1, 2, 16, 3, 2), (14, 14, 80, 5, 1), (12, 21, 48, 3, 2), (11, 23, 40, 5, 2), (6, 30, 8, 3, 1)] {
            let x: Vec<f32> = (0..h * w * c).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
            let wt: Vec<f32> = (0..c * k * k).map(|i| ((i as f32) * 0.91).cos()).collect();
            let b: Vec<f32> = (0..c).map(|i| (i as f32) * 0.01 - 0.3).collect();
            for act in [Activation::None, Activation::Relu6] {
                let conv = DepthwiseConv::from_torch(&wt, &b, c, k, s, act);
                let want = reference(&x, h, w, c, &wt, &b, k, s, act);
                let (ho, wo) = conv.output_size(h, w);
                for level in SimdLevel::available() {
                    let mut full = vec![f32::NAN; ho * wo * c];
                    conv.forward_rows_with(level, &x, 0, h, w, 0..ho, &mut full);
                    for (i, (a, e)) in full.iter().zip(&want).enumerate() {
                        assert!((a - e).abs() < 1e-4, "{level:?} {h}x{w}x{c} k{k} s{s} {act:?} at {i}: {a} vs {e}");
                    }
                    // In bands of two output rows, each from only the input rows it needs.
                    for oy0 in (0..ho).step_by(2) {
                        let rows = oy0..(oy0 + 2).min(ho);
                        let need = conv.input_rows(h, rows.clone());
                        let band = &x[need.start * w * c..need.end * w * c];
                        let mut out = vec![f32::NAN; rows.len() * wo * c];
                        conv.forward_rows_with(level, band, need.start, h, w, rows.clone(), &mut out);
                        assert_eq!(out, full[rows.start * wo * c..rows.end * wo * c], "{level:?} band {rows:?}");
                    }
                }
            }
        }
    }
}
