//! Fast CPU kernels for convolutional networks, in NHWC layout (channels last).
//!
//! Why NHWC: a 1x1 convolution over an `[pixels, cin]` activation is then one row-major GEMM
//! `[pixels, cin] x [cin, cout]` with the pixel count as the long side (good for the GEMM's register
//! tiles), and a depthwise convolution finds each tap's channels contiguous, so it vectorizes over
//! channels with no gathers or transposes. The model's public input stays NCHW (PyTorch's convention);
//! the stem convolution reads NCHW through im2col and writes NHWC, so no transpose pass is needed.
//!
//! Every convolution applies its bias (a folded batch norm), activation and, for the projection of a
//! residual block, the skip connection to its accumulators before storing them: no extra passes.
//!
//! * [`gemm`]: [`PackedWeights`], GEMM against weights packed once at load, with the epilogue fused
//!   into the register tile (no run-time packing: measured faster than `matrixmultiply` and the
//!   `gemm` crate on these shapes, see `gemm.rs`).
//! * [`conv`]: [`PointwiseConv`] (1x1, also used as the fully connected layer) and [`DenseConv`]
//!   (kxk, groups = 1, via im2col), both on [`PackedWeights`].
//! * [`depthwise`]: [`DepthwiseConv`], direct kxk depthwise convolution vectorized over channels.
//! * [`simd`]: the run-time choice of AVX-512 / AVX2+FMA / scalar.
//!
//! Entry points check their slice lengths and panic on a mismatch: a wrong shape here is a bug in the
//! caller, and the model validates user input before it reaches a kernel.

pub mod conv;
pub mod depthwise;
pub mod gemm;
pub mod simd;

pub use conv::{DenseConv, PointwiseConv};
pub use depthwise::DepthwiseConv;
pub use gemm::PackedWeights;
pub use simd::{SimdLevel, simd_level};

/// The activation applied after a convolution's bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Identity (e.g. the projection convolution of an inverted-residual block).
    None,
    /// `min(max(x, 0), 6)`, the activation of MobileNet / EfficientNet-Lite.
    Relu6,
}

impl Activation {
    /// The `(lo, hi)` clamp that implements the activation; `None` clamps to ±infinity (a no-op), so
    /// one epilogue serves both.
    pub fn bounds(self) -> (f32, f32) {
        match self {
            Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::Relu6 => (0.0, 6.0),
        }
    }

    /// The activation applied to one value (reference for tests).
    pub fn apply(self, x: f32) -> f32 {
        let (lo, hi) = self.bounds();
        x.max(lo).min(hi)
    }
}

/// TensorFlow "SAME" padding for one spatial axis: returns `(output size, padding before)`.
///
/// The output has `ceil(input / stride)` positions; the total padding is
/// `max((out - 1) * stride + kernel - input, 0)`, of which the smaller half goes before (top/left) and
/// the rest after. For stride 2 and an even input this pads only after, which is what makes ported TF
/// weights differ from PyTorch's symmetric padding.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(input);
    (out, total / 2)
}

/// Global average pooling of an NHWC activation `[pixels, channels]` into `out[channels]`.
///
/// Sums in f32 row by row (the compiler vectorizes the inner loop); for the 7x7..14x14 maps it is used
/// on, the rounding error is far below the 1e-4 the model is held to.
pub fn global_average_pool(x: &[f32], channels: usize, out: &mut [f32]) {
    assert!(channels > 0 && x.len().is_multiple_of(channels) && out.len() == channels, "global_average_pool: bad shapes");
    let pixels = x.len() / channels;
    out.fill(0.0);
    for row in x.chunks_exact(channels) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    let scale = 1.0 / pixels.max(1) as f32;
    out.iter_mut().for_each(|o| *o *= scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 224 -> 112 with k3 s2: total pad 1, all after (TF), unlike PyTorch's padding=1.
        assert_eq!(same_padding(224, 3, 2), (112, 0));
        assert_eq!(same_padding(225, 3, 2), (113, 1));
        assert_eq!(same_padding(112, 5, 2), (56, 1));
        assert_eq!(same_padding(14, 5, 1), (14, 2));
        assert_eq!(same_padding(7, 3, 1), (7, 1));
        assert_eq!(same_padding(1, 3, 2), (1, 1));
    }

    #[test]
    fn average_pool_averages_each_channel() {
        let x = [1.0, 10.0, 3.0, 20.0, 5.0, 30.0];
        let mut out = [0.0; 2];
        global_average_pool(&x, 2, &mut out);
        assert_eq!(out, [3.0, 20.0]);
    }
}
