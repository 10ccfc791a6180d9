//! The GEMM wrapper over `matrixmultiply`, re-exported from [`quarry_core::linalg`] (quarry's one
//! safe wrapper, shared with quarry-strategies): `f32` and `f64` matrices read through strided
//! views, so no caller ever copies a matrix to transpose it.
//!
//! Used by logistic regression (row-major `f64` and `f32` products: [`gemm_f64`], [`gemm_tn_f64`],
//! [`gemm_f32`]), LeNet's and the MLP's fully connected layers, and EfficientNet training's weight
//! gradients, stem and head. (The 1x1 convolutions of inference run on the packed-weight kernel
//! [`crate::kernels::PackedWeights`] instead, see `docs/compute.md`.)

pub use quarry_core::linalg::{GemmScalar, View, gemm, gemm_f32, gemm_f64, gemm_into, gemm_tn_f64};
