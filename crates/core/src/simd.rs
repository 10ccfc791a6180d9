//! The one run-time choice of instruction set for every hand-written kernel of quarry (the CPU
//! kernels of `quarry-models`, BatchBALD's joint entropy in `quarry-strategies`): the widest level
//! the CPU has, lowered (never raised) by `QUARRY_SIMD=scalar|avx2|avx512`, decided once per
//! process. Nothing depends on `-C target-cpu`: a binary built on an AVX-512 machine runs on an
//! older one.

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
    /// The portable level under the name LeNet's kernels gave it (`nn::simd::Isa::Portable`).
    #[allow(non_upper_case_globals)]
    pub const Portable: SimdLevel = SimdLevel::Scalar;

    /// The widest level this CPU supports, ignoring `QUARRY_SIMD` (detected once).
    ///
    /// AVX-512 needs `avx512f` with `avx2` and `fma` (every AVX-512F CPU has both; the AVX-512 path
    /// is compiled with all three); AVX2 needs `avx2` and `fma`.
    pub fn detect() -> SimdLevel {
        static BEST: OnceLock<SimdLevel> = OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2_fma = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
                if avx2_fma && is_x86_feature_detected!("avx512f") {
                    return SimdLevel::Avx512;
                }
                if avx2_fma {
                    return SimdLevel::Avx2Fma;
                }
            }
            SimdLevel::Scalar
        })
    }

    /// Every level this CPU can run, narrowest first (for tests that compare the paths).
    pub fn available() -> Vec<SimdLevel> {
        [SimdLevel::Scalar, SimdLevel::Avx2Fma, SimdLevel::Avx512].into_iter().filter(|l| *l <= SimdLevel::detect()).collect()
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

/// The level the kernels use: the CPU's best, lowered (never raised) by the environment variable
/// `QUARRY_SIMD=scalar|avx2|avx512`, so the narrower paths can be exercised and timed on a wide machine.
/// Decided once per process.
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = SimdLevel::detect();
        let wanted = match std::env::var("QUARRY_SIMD").ok().as_deref() {
            Some("scalar") => SimdLevel::Scalar,
            Some("avx2") => SimdLevel::Avx2Fma,
            _ => SimdLevel::Avx512,
        };
        best.min(wanted)
    })
}

