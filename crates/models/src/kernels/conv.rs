//! Convolutions that are GEMMs: 1x1 ([`PointwiseConv`]) and dense kxk via im2col ([`DenseConv`]).
//!
//! Both run [`PackedWeights::gemm`]: weights packed once at construction for the instruction set
//! chosen at run time, bias + activation (+ residual) applied in the GEMM's register tile.

use super::gemm::PackedWeights;
use super::{Activation, same_padding, simd_level};

/// Output pixels per im2col block of [`DenseConv`]: the block's patches (`pixels x cin·k·k` floats,
/// 27 KB for the 3x3x3 stem) stay in L1/L2 between gathering and the GEMM.
const PIXEL_BLOCK: usize = 256;

/// A 1x1 convolution (or a fully connected layer: pixels = batch rows) with bias and activation,
/// on NHWC activations: `out[p, o] = act(Σ_i x[p, i] · w[i, o] + bias[o]) (+ residual[p, o])`.
#[derive(Clone, Debug)]
pub struct PointwiseConv {
    cin: usize,
    cout: usize,
    /// `[cin, cout]` (the transpose of PyTorch's `[out, in, 1, 1]`) and the bias, packed.
    weight: PackedWeights,
    act: Activation,
}

impl PointwiseConv {
    /// From a PyTorch weight `[cout, cin]` (a `[cout, cin, 1, 1]` conv weight or a linear weight, both
    /// row-major) and a bias `[cout]`.
    pub fn from_torch(weight: &[f32], bias: &[f32], cout: usize, cin: usize, act: Activation) -> Self {
        assert_eq!(weight.len(), cout * cin, "PointwiseConv: weight is not [{cout}, {cin}]");
        assert_eq!(bias.len(), cout, "PointwiseConv: bias is not [{cout}]");
        let mut w = vec![0.0; cin * cout];
        for o in 0..cout {
            for i in 0..cin {
                w[i * cout + o] = weight[o * cin + i];
            }
        }
        PointwiseConv { cin, cout, weight: PackedWeights::new(simd_level(), &w, bias, cin, cout), act }
    }

    pub fn in_channels(&self) -> usize {
        self.cin
    }

    pub fn out_channels(&self) -> usize {
        self.cout
    }

    /// Runs on `input` `[pixels, cin]`, writing `out` `[pixels, cout]`; `residual`, if given, is
    /// `[pixels, cout]` and added after the activation (the skip connection of a residual block).
    pub fn forward(&self, input: &[f32], residual: Option<&[f32]>, out: &mut [f32]) {
        assert!(input.len().is_multiple_of(self.cin), "PointwiseConv: input is not [pixels, {}]", self.cin);
        let pixels = input.len() / self.cin;
        assert_eq!(out.len(), pixels * self.cout, "PointwiseConv: output is not [{pixels}, {}]", self.cout);
        if let Some(r) = residual {
            assert_eq!(r.len(), out.len(), "PointwiseConv: residual is not [{pixels}, {}]", self.cout);
        }
        self.weight.gemm(input, self.act.bounds(), residual, out);
    }
}

/// A dense kxk convolution (groups = 1) with TensorFlow "SAME" padding, bias and activation, reading a
/// planar NCHW image and writing NHWC: the stem of a network, which takes images as users give them.
///
/// Runs as im2col + GEMM over blocks of output rows: each block's patches `[pixels, cin·k·k]` are
/// gathered into a small scratch buffer (zeros where the window hangs over the border), multiplied by
/// the weight `[cin·k·k, cout]` and finished by the fused epilogue.
#[derive(Clone, Debug)]
pub struct DenseConv {
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    /// `[cin·k·k, cout]` (patch columns in PyTorch's `(cin, ky, kx)` order) and the bias, packed.
    weight: PackedWeights,
    act: Activation,
}

impl DenseConv {
    /// From a PyTorch weight `[cout, cin, k, k]` and a bias `[cout]`.
    pub fn from_torch(weight: &[f32], bias: &[f32], cout: usize, cin: usize, k: usize, stride: usize, act: Activation) -> Self {
        let kk = cin * k * k;
        assert_eq!(weight.len(), cout * kk, "DenseConv: weight is not [{cout}, {cin}, {k}, {k}]");
        assert_eq!(bias.len(), cout, "DenseConv: bias is not [{cout}]");
        assert!(k > 0 && stride > 0, "DenseConv: kernel and stride must be positive");
        let mut w = vec![0.0; kk * cout];
        for o in 0..cout {
            for j in 0..kk {
                w[j * cout + o] = weight[o * kk + j];
            }
        }
        DenseConv { cin, cout, k, stride, weight: PackedWeights::new(simd_level(), &w, bias, kk, cout), act }
    }

    pub fn out_channels(&self) -> usize {
        self.cout
    }

    /// Output height and width for an `h x w` input.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        (same_padding(h, self.k, self.stride).0, same_padding(w, self.k, self.stride).0)
    }

    /// Runs on one image `input` `[cin, h, w]` (NCHW without the batch axis), writing `out`
    /// `[ho, wo, cout]`. `patches` is scratch space, grown as needed and reused between calls.
    pub fn forward(&self, input: &[f32], h: usize, w: usize, patches: &mut Vec<f32>, out: &mut [f32]) {
        assert_eq!(input.len(), self.cin * h * w, "DenseConv: input is not [{}, {h}, {w}]", self.cin);
        let (k, s) = (self.k, self.stride);
        let (ho, pad_top) = same_padding(h, k, s);
        let (wo, pad_left) = same_padding(w, k, s);
        assert_eq!(out.len(), ho * wo * self.cout, "DenseConv: output is not [{ho}, {wo}, {}]", self.cout);
        let kk = self.cin * k * k;
        let rows_per_block = (PIXEL_BLOCK / wo.max(1)).max(1);
        patches.resize(rows_per_block * wo * kk, 0.0);
        let bounds = self.act.bounds();
        let mut oy0 = 0;
        while oy0 < ho {
            let rows = rows_per_block.min(ho - oy0);
            let pixels = rows * wo;
            let patch = &mut patches[..pixels * kk];
            for r in 0..rows {
                let oy = oy0 + r;
                for ox in 0..wo {
                    let dst = &mut patch[(r * wo + ox) * kk..(r * wo + ox + 1) * kk];
                    let iy0 = (oy * s) as isize - pad_top as isize;
                    let ix0 = (ox * s) as isize - pad_left as isize;
                    if iy0 >= 0 && ix0 >= 0 && iy0 as usize + k <= h && ix0 as usize + k <= w {
                        // Window inside the image: k contiguous values per (channel, tap row).
                        let (iy0, ix0) = (iy0 as usize, ix0 as usize);
                        for ci in 0..self.cin {
                            for ky in 0..k {
                                let from = ci * h * w + (iy0 + ky) * w + ix0;
                                let to = (ci * k + ky) * k;
                                dst[to..to + k].copy_from_slice(&input[from..from + k]);
                            }
                        }
                        continue;
                    }
                    let mut j = 0;
                    for ci in 0..self.cin {
                        let plane = &input[ci * h * w..(ci + 1) * h * w];
                        for ky in 0..k {
                            let iy = iy0 + ky as isize;
                            for kx in 0..k {
                                let ix = ix0 + kx as isize;
                                dst[j] = if iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w {
                                    plane[iy as usize * w + ix as usize]
                                } else {
                                    0.0
                                };
                                j += 1;
                            }
                        }
                    }
                }
            }
            let c = &mut out[oy0 * wo * self.cout..(oy0 + rows) * wo * self.cout];
            self.weight.gemm(patch, bounds, None, c);
            oy0 += rows;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct NCHW convolution with SAME padding, the definition the kernels must match.
    #[allow(clippy::too_many_arguments)]
    fn reference_conv(x: &[f32], h: usize, w: usize, wt: &[f32], bias: &[f32], cin: usize, cout: usize, k: usize, s: usize, act: Activation) -> Vec<f32> {
        let (ho, pt) = same_padding(h, k, s);
        let (wo, pl) = same_padding(w, k, s);
        let mut out = vec![0.0; ho * wo * cout];
        for oy in 0..ho {
            for ox in 0..wo {
                for o in 0..cout {
                    let mut acc = bias[o] as f64;
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - pt as isize;
                                let ix = (ox * s + kx) as isize - pl as isize;
                                if iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w {
                                    acc += x[(ci * h + iy as usize) * w + ix as usize] as f64 * wt[((o * cin + ci) * k + ky) * k + kx] as f64;
                                }
                            }
                        }
                    }
                    out[(oy * wo + ox) * cout + o] = act.apply(acc as f32);
                }
            }
        }
        out
    }

    fn data(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.731).sin()).collect()
    }

    #[test]
    fn dense_conv_matches_direct_convolution() {
        for &(h, w, k, s, cin, cout) in &[(9, 7, 3, 2, 3, 5), (8, 8, 3, 2, 3, 4), (5, 6, 3, 1, 2, 3), (1, 1, 3, 2, 3, 2), (40, 17, 3, 2, 3, 8)] {
            let x = data(cin * h * w, 0.5);
            let wt = data(cout * cin * k * k, 1.5);
            let b = data(cout, 2.5);
            let conv = DenseConv::from_torch(&wt, &b, cout, cin, k, s, Activation::Relu6);
            let (ho, wo) = conv.output_size(h, w);
            let mut out = vec![0.0; ho * wo * cout];
            conv.forward(&x, h, w, &mut Vec::new(), &mut out);
            let want = reference_conv(&x, h, w, &wt, &b, cin, cout, k, s, Activation::Relu6);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{h}x{w} k{k} s{s}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn pointwise_conv_matches_matrix_product_with_residual() {
        let (pixels, cin, cout) = (300, 7, 5); // more pixels than one block
        let x = data(pixels * cin, 0.1);
        let wt = data(cout * cin, 0.2);
        let b = data(cout, 0.3);
        let res = data(pixels * cout, 0.4);
        let conv = PointwiseConv::from_torch(&wt, &b, cout, cin, Activation::None);
        let mut out = vec![0.0; pixels * cout];
        conv.forward(&x, Some(&res), &mut out);
        let want = reference_conv(
            &{
                // [pixels, cin] viewed as NCHW [cin, 1, pixels]
                let mut t = vec![0.0; pixels * cin];
                for p in 0..pixels {
                    for i in 0..cin {
                        t[i * pixels + p] = x[p * cin + i];
                    }
                }
                t
            },
            1,
            pixels,
            &wt,
            &b,
            cin,
            cout,
            1,
            1,
            Activation::None,
        );
        for i in 0..out.len() {
            assert!((out[i] - want[i] - res[i]).abs() < 1e-5);
        }
    }
}
