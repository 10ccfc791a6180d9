//! Inverted dropout with counter-based masks: the mask of one sample in one layer is a pure
//! function of `(seed, purpose, counter, sample, layer)`, so it does not depend on how a batch
//! is split into chunks or threads, and MC draw `t` of sample `i` is the same whatever else is
//! scored with it.

/// What a mask is for (keeps training masks and MC-dropout masks independent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Training: `counter` is the optimizer step, `sample` the position in the minibatch.
    Train = 1,
    /// MC dropout: `counter` is the draw, `sample` the row of the scored matrix.
    McDraw = 2,
}

/// Identifies the masks of one forward pass over a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaskKey {
    pub seed: u64,
    pub purpose: Purpose,
    pub counter: u64,
}

use crate::kernels::simd::{multiversion, simd_level};

/// SplitMix64's finalizer: a bijective 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A bijective 32-bit hash with low bias (Chris Wellons' "lowbias32").
#[inline(always)]
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

impl MaskKey {
    /// Fills `mask[..len]` for one sample and layer: `1/(1−p)` with probability `1 − p`, else 0.
    ///
    /// Element `j` draws `hash32(hash32(j·φ ⊕ k₁) ⊕ k₂)` with `(k₁, k₂)` from a 64-bit mix of
    /// the key, so every element is an independent function of its index and the loop
    /// vectorizes (this fill is most of the cost of MC dropout's head otherwise).
    pub fn fill(&self, sample: u64, layer: u64, p: f32, mask: &mut [f32]) {
        let k = mix(self.seed ^ mix((self.purpose as u64) << 56 ^ mix(self.counter ^ mix(sample ^ mix(layer)))));
        let (k1, k2) = (k as u32, (k >> 32) as u32);
        // Keep when a uniform 32-bit number is ≥ p·2³² (exact to 2⁻³²).
        let threshold = (p as f64 * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        let keep = 1.0 / (1.0 - p);
        fill_mask(simd_level(), k1, k2, threshold, keep, mask);
    }
}

multiversion! {
    /// The mask loop, compiled per instruction set (32-bit multiplies vectorize only from
    /// SSE4.1 on; the result is the same integer arithmetic everywhere).
    fn fill_mask(k1: u32, k2: u32, threshold: u32, keep: f32, mask: &mut [f32]) => fill_mask_kernel
}

#[inline(always)]
fn fill_mask_kernel(k1: u32, k2: u32, threshold: u32, keep: f32, mask: &mut [f32]) {
    for (j, m) in mask.iter_mut().enumerate() {
        let u = hash32(hash32((j as u32).wrapping_mul(0x9e37_79b9) ^ k1) ^ k2);
        *m = if u >= threshold { keep } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::SimdLevel;

    #[test]
    fn masks_keep_about_one_minus_p_and_scale_the_kept() {
        let key = MaskKey { seed: 7, purpose: Purpose::McDraw, counter: 3 };
        let mut m = vec![0f32; 100_000];
        key.fill(11, 0, 0.3, &mut m);
        let kept = m.iter().filter(|&&v| v > 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "{kept}");
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        let mut again = vec![0f32; 100_000];
        key.fill(11, 0, 0.3, &mut again);
        assert_eq!(m, again);
        key.fill(12, 0, 0.3, &mut again);
        assert_ne!(m, again);
    }

    #[test]
    fn every_instruction_set_draws_the_same_mask() {
        let mut want = vec![0f32; 1000];
        fill_mask(SimdLevel::Scalar, 5, 6, 1 << 31, 2.0, &mut want);
        for isa in SimdLevel::available() {
            let mut m = vec![0f32; 1000];
            fill_mask(isa, 5, 6, 1 << 31, 2.0, &mut m);
            assert_eq!(m, want, "{isa:?}");
        }
    }
}
