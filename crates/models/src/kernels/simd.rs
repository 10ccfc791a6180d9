//! The one run-time choice of instruction set in this crate, and the small vector abstraction its
//! hand-written kernels are written in: the inference kernels here in [`crate::kernels`], LeNet's
//! convolutions and dropout masks ([`crate::nn`]) and EfficientNet's training kernels
//! ([`crate::effnet_train::kernels`]) all dispatch through [`multiversion!`] on a [`SimdLevel`].
//!
//! A kernel is written once, generic over `F32x`, and instantiated three times: inside a
//! `#[target_feature(enable = "avx512f,avx2,fma")]` function, inside a
//! `#[target_feature(enable = "avx2,fma")]` function, and as plain portable code. Which one runs is
//! decided at run time ([`SimdLevel::detect`], lowered by `QUARRY_SIMD` in [`simd_level`]), so a
//! binary built on an AVX-512 machine still runs (on the AVX2 or scalar path) on an older one;
//! nothing here depends on `-C target-cpu`. Kernels that are plain loops the compiler vectorizes
//! (no explicit vectors) go through the same macro, compiled once per level.
//!
//! The trait methods are `#[inline(always)]`: once inlined into the `target_feature` function, the
//! intrinsics they call are compiled with that function's features (the usual multiversioning trick).
//! Explicit vector types (rather than auto-vectorized lane loops, which LLVM turned into gathers along
//! the wrong axis in LeNet's convolutions) keep the accumulators in registers.
//!
//! The portable path has two vector types, because a kernel's results depend on its lane count
//! wherever it reduces across lanes: [`Scalar`] (one lane) for the inference and training kernels,
//! [`Portable8`] (eight lanes, no FMA) for LeNet's convolutions, whose weight gradient sums its
//! lanes at the end. Each family keeps the one its results were defined with.

/// The run-time choice itself lives in `quarry_core::simd`, shared with the strategies' kernels
/// (BatchBALD's joint entropy), so `QUARRY_SIMD` lowers every kernel of quarry alike.
pub use quarry_core::simd::{SimdLevel, simd_level};

/// A vector of `LANES` f32 values. All methods are `unsafe`: the caller guarantees the CPU supports the
/// instruction set (by being inside the matching `target_feature` function) and, for loads and stores,
/// that `LANES` values are readable/writable at the pointer (no alignment needed).
pub(crate) trait F32x: Copy {
    const LANES: usize;
    /// All lanes 0.
    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { Self::splat(0.0) }
    }
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// `self * b + c`, fused where the hardware has it.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    /// `min(max(self, lo), hi)`.
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self;
    /// Loads the first `n` lanes (`1 <= n <= LANES`), zeros in the rest; reads only those `n` values.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self;
    /// Stores the first `n` lanes (`1 <= n <= LANES`); writes only those `n` values.
    unsafe fn store_partial(self, p: *mut f32, n: usize);
}

/// One f32: the portable fallback (also used for channel remainders).
#[derive(Clone, Copy)]
pub(crate) struct Scalar(f32);

impl F32x for Scalar {
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Scalar(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Scalar(unsafe { *p })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { *p = self.0 }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // Not `f32::mul_add`: without FMA hardware that is a slow libm call.
        Scalar(self.0 * b.0 + c.0)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        Scalar(self.0 + b.0)
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
        Scalar(self.0.max(lo.0).min(hi.0))
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, _n: usize) -> Self {
        unsafe { Self::load(p) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, _n: usize) {
        unsafe { self.store(p) }
    }
}

/// Eight f32 in an array, no FMA: the portable fallback of LeNet's kernels (the compiler uses what
/// the target has, SSE2 on x86-64). Its lane count is part of those kernels' results (their weight
/// gradient sums the lanes at the end), which is why it is not [`Scalar`].
#[derive(Clone, Copy)]
pub(crate) struct Portable8([f32; 8]);

impl F32x for Portable8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Portable8([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Portable8(unsafe { std::ptr::read_unaligned(p as *const [f32; 8]) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        Portable8(std::array::from_fn(|i| self.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        Portable8(std::array::from_fn(|i| self.0[i] + b.0[i]))
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
        Portable8(std::array::from_fn(|i| self.0[i].max(lo.0[i]).min(hi.0[i])))
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut v = [0.0; 8];
        for (i, x) in v.iter_mut().enumerate().take(n) {
            *x = unsafe { *p.add(i) };
        }
        Portable8(v)
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        for (i, &x) in self.0.iter().enumerate().take(n) {
            unsafe { *p.add(i) = x };
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::F32x;
    use std::arch::x86_64::*;

    /// Eight f32 in a 256-bit AVX register; `mul_add` is one FMA instruction.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256);

    impl F32x for Avx2 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            Avx2(unsafe { _mm256_set1_ps(x) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            Avx2(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            Avx2(unsafe { _mm256_add_ps(self.0, b.0) })
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            Avx2(unsafe { _mm256_min_ps(_mm256_max_ps(self.0, lo.0), hi.0) })
        }
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> Self {
            unsafe { Avx2(_mm256_maskload_ps(p, lane_mask(n))) }
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, n: usize) {
            unsafe { _mm256_maskstore_ps(p, lane_mask(n), self.0) }
        }
    }

    /// All-ones in lanes `0..n`, zero above: the mask operand of AVX2's masked loads and stores.
    #[inline(always)]
    unsafe fn lane_mask(n: usize) -> __m256i {
        unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
    }

    /// Sixteen f32 in a 512-bit AVX-512 register.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    impl F32x for Avx512 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            Avx512(unsafe { _mm512_set1_ps(x) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            Avx512(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            Avx512(unsafe { _mm512_add_ps(self.0, b.0) })
        }
        #[inline(always)]
        unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
            Avx512(unsafe { _mm512_min_ps(_mm512_max_ps(self.0, lo.0), hi.0) })
        }
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> Self {
            unsafe { Avx512(_mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p)) }
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, n: usize) {
            unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, self.0) }
        }
    }
}

/// Defines a safe function `$name(level, args…) -> ret` that runs a kernel compiled for `level`
/// (lowered to what the CPU supports, so any level is safe to pass): the crate's one dispatch on the
/// instruction set.
///
/// * `=> kernel::<V>`: a generic `#[inline(always)] fn<V: F32x>` (safe, or `unsafe` when its only
///   unsafety is the instruction set: it checks its slice bounds itself), run with [`Avx512`],
///   [`Avx2`] or, on the portable path, [`Scalar`];
/// * `=> kernel::<V>, portable: Portable8`: the same with another portable vector type;
/// * `=> kernel`: a plain `#[inline(always)]` function whose loops the compiler vectorizes, compiled
///   once per level.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $kernel:ident::<V>, portable: $portable:ty) => {
        $crate::kernels::simd::multiversion!(@emit [$(#[$meta])*] $vis $name ($($arg: $ty),*) ($($ret)?)
            [$kernel::<$crate::kernels::simd::Avx512>] [$kernel::<$crate::kernels::simd::Avx2>] [$kernel::<$portable>]);
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $kernel:ident::<V>) => {
        $crate::kernels::simd::multiversion!(@emit [$(#[$meta])*] $vis $name ($($arg: $ty),*) ($($ret)?)
            [$kernel::<$crate::kernels::simd::Avx512>] [$kernel::<$crate::kernels::simd::Avx2>] [$kernel::<$crate::kernels::simd::Scalar>]);
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $kernel:ident) => {
        $crate::kernels::simd::multiversion!(@emit [$(#[$meta])*] $vis $name ($($arg: $ty),*) ($($ret)?) [$kernel] [$kernel] [$kernel]);
    };
    (@emit [$($meta:tt)*] $vis:vis $name:ident ($($arg:ident: $ty:ty),*) ($($ret:ty)?) [$($wide:tt)*] [$($avx2:tt)*] [$($portable:tt)*]) => {
        $($meta)*
        // `level` comes on top of the kernel's own arguments; a portable kernel that is a safe fn
        // makes its `unsafe` block redundant.
        #[allow(clippy::too_many_arguments, unused_unsafe)]
        $vis fn $name(level: $crate::kernels::simd::SimdLevel, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            #[allow(clippy::too_many_arguments, unused_unsafe)]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                unsafe { $($wide)*($($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments, unused_unsafe)]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                unsafe { $($avx2)*($($arg),*) }
            }
            // A level wider than the CPU's is lowered, so no caller can reach an unsupported path.
            match level.min($crate::kernels::simd::SimdLevel::detect()) {
                // SAFETY: the level was capped by `detect`, so the CPU has avx512f, avx2 and fma.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::SimdLevel::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: likewise, the CPU has avx2 and fma.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::SimdLevel::Avx2Fma => unsafe { avx2($($arg),*) },
                // SAFETY: the portable path needs no instruction set.
                _ => unsafe { $($portable)*($($arg),*) },
            }
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_run_from_scalar_up_to_the_detected_one() {
        let all = SimdLevel::available();
        assert_eq!(all[0], SimdLevel::Scalar);
        assert_eq!(*all.last().unwrap(), SimdLevel::detect());
        assert!(simd_level() <= SimdLevel::detect(), "QUARRY_SIMD only lowers the level");
        assert_eq!(crate::nn::simd::Isa::Portable, SimdLevel::Scalar);
    }

    multiversion! {
        fn sum_pairs_with(x: &[f32], out: &mut [f32]) => sum_pairs::<V>
    }

    /// `out[i] = x[i]·2 + x[i]`, a vector at a time with a partial tail.
    #[inline(always)]
    unsafe fn sum_pairs<V: F32x>(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len());
        let two = unsafe { V::splat(2.0) };
        for i in (0..x.len()).step_by(V::LANES) {
            let n = V::LANES.min(x.len() - i);
            // SAFETY: n values from i on exist in both slices.
            unsafe {
                let v = V::load_partial(x.as_ptr().add(i), n);
                v.mul_add(two, v).store_partial(out.as_mut_ptr().add(i), n);
            }
        }
    }

    #[test]
    fn every_level_and_vector_type_computes_the_same_exact_values() {
        let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let want: Vec<f32> = x.iter().map(|v| v * 3.0).collect();
        for level in SimdLevel::available().into_iter().chain([SimdLevel::Avx512]) {
            let mut out = vec![f32::NAN; x.len()];
            sum_pairs_with(level, &x, &mut out);
            assert_eq!(out, want, "{level:?}");
        }
        let mut out = vec![f32::NAN; x.len()];
        unsafe { sum_pairs::<Portable8>(&x, &mut out) };
        assert_eq!(out, want, "Portable8");
    }
}
