//! Small neural learners trained on the CPU: LeNet-5 and a one-hidden-layer MLP for 28×28
//! grayscale images (pixels already divided by 255), as the P2 and P3 benchmark protocols use them.
//!
//! # The networks
//!
//! Every network here is a deterministic **trunk** followed by a **head** of fully connected
//! layers with ReLU between them and optional (inverted) dropout in front of some of them:
//!
//! | network | trunk | head (dropout before) |
//! | --- | --- | --- |
//! | [`NetSpec::LeNet5`] | conv 1→6 5×5 pad 2, ReLU, maxpool 2; conv 6→16 5×5, ReLU, maxpool 2 → 400 | 400→120 ReLU → 84 ReLU → classes (each layer) |
//! | [`NetSpec::Mlp`] | identity (the pixels) | input→hidden ReLU → classes (the second layer only) |
//!
//! Because the trunk has no randomness, Monte-Carlo dropout runs it once per batch and repeats
//! only the head (see [`Net::mc_samples_into`]).
//!
//! # Shapes and layouts (stated once)
//!
//! * Inputs are row-major `[n, input_dim]` (`input_dim` = 784 for LeNet-5), outputs `[n, classes]`,
//!   MC samples `[draws, n, classes]`, embeddings `[n, penultimate]` (84 for LeNet-5).
//! * Parameters live in one flat `Vec<f32>` ([`ParamSet`]); each tensor keeps PyTorch's name and
//!   layout: conv weights `[out, in, 5, 5]`, linear weights `[out, in]`, biases `[out]`, and the
//!   400 features entering `fc1` are flattened channel-major `(c, y, x)` as `torch.flatten` does,
//!   so a PyTorch `state_dict` maps one to one onto a checkpoint.
//! * Inside a convolution, images are "flat padded": a `[c][h][w]` image stored row by row with
//!   the row width of the *input*, so a 5×5 correlation is 25 shifted copies of one long vector
//!   (the columns past the valid output width are computed and ignored). Activations of a chunk
//!   are channel-major across the chunk's samples, `[c][sample][h·w]`, which turns each
//!   convolution of a chunk into a single large GEMM.
//!
//! # Determinism
//!
//! Work is split into chunks of a fixed [`CHUNK`] samples, whatever the number of threads; each
//! chunk writes its own partial gradient, and partials are summed in chunk order. Dropout masks
//! come from a counter-based generator keyed by (seed, step or draw, sample index, layer), so
//! they do not depend on how the batch was split either. The same seed therefore gives
//! bit-identical weights with 1 or 16 rayon threads (on one machine: the SIMD kernels chosen at
//! run time may round differently on another CPU).
//!
//! # Instruction sets
//!
//! The convolutions and dropout masks dispatch through the crate's one run-time choice,
//! [`crate::kernels::simd`]: a network starts on [`crate::kernels::simd_level`] (the CPU's best,
//! lowered by `QUARRY_SIMD=avx2|scalar`), and [`Net::set_isa`] picks another level for tests and
//! benchmarks. [`simd::Isa`] is that level's old name here.

mod conv;
mod dropout;
#[cfg(test)]
mod gradcheck;
mod learner;
mod linear;
mod net;
mod optim;
mod params;
mod pool;
pub mod simd;

pub use learner::{NetLearner, NetParams};
pub use net::{CHUNK, Net, NetSpec};
pub use optim::{Optimizer, OptimizerKind};
pub use params::{ParamSet, TensorInfo};
