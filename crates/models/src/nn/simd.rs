//! The instruction-set level LeNet's kernels run with, under the name this module gave it.
//!
//! It is the crate's one [`SimdLevel`](crate::kernels::SimdLevel): detection, the `QUARRY_SIMD`
//! override and the dispatch ([`multiversion!`](crate::kernels::simd)) live in
//! [`crate::kernels::simd`]. `Isa::Portable` is `SimdLevel::Scalar`; on that level LeNet's kernels
//! run on 8-lane portable vectors (`Portable8`), as they always have.

pub use crate::kernels::simd::SimdLevel as Isa;
