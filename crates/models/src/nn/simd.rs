//! Run-time choice of instruction set for the hand-written kernels of this module.
//!
//! A kernel is written once, generic over a SIMD vector type implementing `Vf32` (AVX-512
//! `__m512`, AVX2 `__m256`, or a portable 8-lane array) and marked `#[inline(always)]`;
//! `multiversion!` instantiates it inside functions compiled with `#[target_feature]` for
//! each level and dispatches on the [`Isa`] detected once with `is_x86_feature_detected!`.
//! Explicit vector types (rather than auto-vectorized lane loops, which LLVM turned into
//! gathers along the wrong axis) keep the accumulators in registers.

use std::sync::OnceLock;

/// The instruction-set level a kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F (+VL, +BW), 16 `f32` lanes.
    Avx512,
    /// AVX2 with FMA, 8 lanes.
    Avx2Fma,
    /// Whatever the build target guarantees (SSE2 on x86-64), no fused multiply-add.
    Portable,
}

impl Isa {
    /// The best level this CPU supports (detected once).
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                {
                    return Isa::Avx512;
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    return Isa::Avx2Fma;
                }
            }
            Isa::Portable
        })
    }

    /// Every level this CPU can run, best first (for tests that compare them).
    pub fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
            .into_iter()
            .filter(|&isa| match best {
                Isa::Avx512 => true,
                Isa::Avx2Fma => isa != Isa::Avx512,
                Isa::Portable => isa == Isa::Portable,
            })
            .collect()
    }
}

/// A vector of `LANES` `f32`. Every method is `unsafe`: the caller guarantees that the CPU has
/// the instruction set (by running inside the matching [`multiversion!`] wrapper) and that
/// pointers are valid for `LANES` elements. Loads and stores are unaligned.
pub(crate) trait Vf32: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// `a·b + c` (fused where the instruction set has FMA).
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{F32x8, F32x16};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Vf32;
    use std::arch::x86_64::*;

    /// AVX-512F: 16 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x16(__m512);
    /// AVX2 + FMA: 8 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x8(__m256);

    impl Vf32 for F32x16 {
        const LANES: usize = 16;
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn zero() -> Self {
            F32x16(_mm512_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn splat(v: f32) -> Self {
            F32x16(_mm512_set1_ps(v))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(p: *const f32) -> Self {
            F32x16(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            F32x16(_mm512_fmadd_ps(a.0, b.0, c.0))
        }
    }

    impl Vf32 for F32x8 {
        const LANES: usize = 8;
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zero() -> Self {
            F32x8(_mm256_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(v: f32) -> Self {
            F32x8(_mm256_set1_ps(v))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f32) -> Self {
            F32x8(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            F32x8(_mm256_fmadd_ps(a.0, b.0, c.0))
        }
    }
}

/// The portable fallback: 8 lanes as an array (the compiler uses what the target has).
#[derive(Clone, Copy)]
pub(crate) struct Portable8([f32; 8]);

impl Vf32 for Portable8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Portable8([0.0; 8])
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Portable8([v; 8])
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
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        Portable8(std::array::from_fn(|i| a.0[i] * b.0[i] + c.0[i]))
    }
}

/// Defines `fn $name(isa: Isa, args...)` that runs `$kernel::<V>(args...)` with the vector type
/// of that [`Isa`]: `$kernel` must be `#[inline(always)]` so that it is compiled inside each
/// `#[target_feature]` wrapper. A level above the detected one falls back to the best
/// supported, so any `Isa` is safe to pass.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) => $kernel:ident) => {
        $(#[$meta])*
        $vis fn $name(isa: $crate::nn::simd::Isa, $($arg: $ty),*) {
            use $crate::nn::simd::Isa;
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2,fma")]
            fn avx512($($arg: $ty),*) {
                $kernel::<$crate::nn::simd::F32x16>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) {
                $kernel::<$crate::nn::simd::F32x8>($($arg),*)
            }
            let best = Isa::detect();
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 if best == Isa::Avx512 => {
                    // SAFETY: the CPU supports every feature `avx512` is compiled with.
                    unsafe { avx512($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Avx2Fma if best != Isa::Portable => {
                    // SAFETY: AVX2 and FMA are present (the detected level is at least Avx2Fma).
                    unsafe { avx2($($arg),*) }
                }
                _ => $kernel::<$crate::nn::simd::Portable8>($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_level_is_listed_first() {
        let all = Isa::available();
        assert_eq!(all[0], Isa::detect());
        assert_eq!(*all.last().unwrap(), Isa::Portable);
    }
}
