//! Run-time choice of the instruction set, and a small vector abstraction the kernels are written in.
//!
//! The kernels are written once, generic over `F32x`, and instantiated three times: inside a
//! `#[target_feature(enable = "avx512f")]` function, inside a `#[target_feature(enable = "avx2,fma")]`
//! function, and as plain scalar code. Which one runs is decided at run time by [`simd_level`], so a
//! binary built on an AVX-512 machine still runs (on the AVX2 or scalar path) on an older one; nothing
//! here depends on `-C target-cpu`.
//!
//! The trait methods are `#[inline(always)]`: once inlined into the `target_feature` function, the
//! intrinsics they call are compiled with that function's features (the usual multiversioning trick).

use std::sync::OnceLock;

/// The widest instruction set the kernels use on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Plain Rust, any CPU.
    Scalar,
    /// 256-bit AVX2 with fused multiply-add.
    Avx2Fma,
    /// 512-bit AVX-512F.
    Avx512,
}

impl SimdLevel {
    /// Every level this CPU can run, narrowest first (for tests that compare the paths).
    pub fn available() -> Vec<SimdLevel> {
        [SimdLevel::Scalar, SimdLevel::Avx2Fma, SimdLevel::Avx512].into_iter().filter(|l| *l <= detect()).collect()
    }

    /// A short name for reports (`avx512`, `avx2+fma`, `scalar`).
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2Fma => "avx2+fma",
            SimdLevel::Avx512 => "avx512",
        }
    }
}

/// What the CPU supports, ignoring any override.
pub(crate) fn detect() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return SimdLevel::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return SimdLevel::Avx2Fma;
        }
    }
    SimdLevel::Scalar
}

/// The level the kernels use: the CPU's best, lowered (never raised) by the environment variable
/// `QUARRY_SIMD=scalar|avx2|avx512`, so the narrower paths can be exercised and timed on a wide machine.
/// Decided once per process.
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = detect();
        let wanted = match std::env::var("QUARRY_SIMD").ok().as_deref() {
            Some("scalar") => SimdLevel::Scalar,
            Some("avx2") => SimdLevel::Avx2Fma,
            _ => SimdLevel::Avx512,
        };
        best.min(wanted)
    })
}

/// A vector of `LANES` f32 values. All methods are `unsafe`: the caller guarantees the CPU supports the
/// instruction set (by being inside the matching `target_feature` function) and, for loads and stores,
/// that `LANES` values are readable/writable at the pointer (no alignment needed).
pub(crate) trait F32x: Copy {
    const LANES: usize;
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

/// Defines a safe function `$name(level, args…)` that runs the generic kernel `$kernel::<V>(args…)` with
/// the vector type of `level` (lowered to what the CPU supports), inside a function compiled with that
/// level's target features.
///
/// `$kernel` must be an `#[inline(always)] unsafe fn<V: F32x>` whose only unsafety is the instruction set
/// (it checks its slice bounds itself); the instruction set is guaranteed here by run-time detection.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $kernel:ident) => {
        $(#[$meta])*
        $vis fn $name(level: $crate::kernels::simd::SimdLevel, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512($($arg: $ty),*) {
                unsafe { $kernel::<$crate::kernels::simd::Avx512>($($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) {
                unsafe { $kernel::<$crate::kernels::simd::Avx2>($($arg),*) }
            }
            // A level wider than the CPU's is lowered, so no caller can reach an unsupported path.
            match level.min($crate::kernels::simd::detect()) {
                // SAFETY: the level was capped by `detect`, so the CPU has avx512f.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::SimdLevel::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: likewise, the CPU has avx2 and fma.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::SimdLevel::Avx2Fma => unsafe { avx2($($arg),*) },
                // SAFETY: the scalar path needs no instruction set.
                _ => unsafe { $kernel::<$crate::kernels::simd::Scalar>($($arg),*) },
            }
        }
    };
}
pub(crate) use multiversion;
