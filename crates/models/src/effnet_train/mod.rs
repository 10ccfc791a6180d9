//! Fine-tuning EfficientNet-Lite0 on the CPU: forward with training-mode batch norm, backward, and SGD
//! with momentum and per-group learning rates, from the same safetensors checkpoint as the inference
//! port ([`crate::efficientnet`]).
//!
//! # What is trained
//!
//! [`EfficientNetTrainer`] keeps the checkpoint's convolution weights and batch norms *unfolded*
//! (inference folds BN into the convolutions; training cannot, since γ, β and the statistics change).
//! The classifier `_fc` is replaced by a **new linear head** of `classes` outputs (PyTorch's
//! `nn.Linear` default init, from a seeded RNG), or kept ([`Head::Pretrained`]) e.g. to check the port.
//! Dropout ([`TrainerParams::dropout`], 0.2 by default as in the original) sits before the head.
//!
//! Two parameter groups, as fine-tuning practice has it: the backbone (every convolution and BN
//! affine) at `lr_backbone`, the new head at `lr_head` (10× higher by default). The optimizer is
//! `torch.optim.SGD` with momentum (`v ← μ·v + g + λ·θ`, `θ ← θ − lr·v`).
//!
//! # Batch norm
//!
//! [`BatchNormMode::Train`] normalizes with the batch statistics (biased variance, over
//! `n·h·w` values per channel) and updates the running statistics with `momentum` 0.01 in PyTorch's
//! convention (`running ← (1 − m)·running + m·batch`, unbiased variance): the TF original's decay 0.99,
//! which is what the PyTorch port of EfficientNet sets (`bn_mom = 1 − 0.99`). PyTorch's own default,
//! 0.1, forgets the ImageNet statistics ten times faster, which is bad when fine-tuning from them.
//! [`BatchNormMode::Frozen`] uses the running statistics (and never updates them) while still training
//! γ and β: the usual choice for small fine-tuning batches, where batch statistics are noisy.
//!
//! # Frozen blocks
//!
//! [`TrainerParams::frozen_blocks`] = N freezes the stem and the first N MBConv blocks: they run the
//! BN-folded inference kernels ([`crate::kernels`], their BN in eval mode with the running statistics),
//! keep no activations and get no backward pass. Because that part is deterministic and its weights never
//! change, its output for a given image never changes either: a caller iterating over a fixed data set
//! could cache it (see [`EfficientNetTrainer::frozen_features`] and
//! [`EfficientNetTrainer::train_step_from_frozen`]) and skip it entirely on later epochs.
//!
//! # Saving
//!
//! [`EfficientNetTrainer::save`] writes the weights, batch-norm statistics and head under the
//! checkpoint's names, so a fine-tuned model with a 1000-class head loads straight into the inference
//! port ([`crate::EfficientNetLite0`]); [`EfficientNetTrainer::gradient_norms`] reports the last step's
//! gradient norms per group.
//!
//! # Speed
//!
//! Forward convolutions use the inference port's kernels (packed-weight GEMM for 1x1 convolutions and
//! their input gradients, the vectorized depthwise kernel); weight gradients are `matrixmultiply`
//! GEMMs, the depthwise backward and batch-norm passes loops over the contiguous channel axis that the
//! compiler vectorizes (compiled per instruction set). Activation buffers are reused from step to
//! step (see `BufferPool`). Measured with `benches/effnet_train_bench.rs` on a 2-core AVX-512 machine
//! shared with other builds (load average 4): one thread alone takes 1.03 s per step at 224x224
//! batch 16 and 0.72 s at 96x96 batch 64 (PyTorch 2 on two threads: 1.33 s and 1.05 s); with two
//! threads the CPU time per thread is 0.51 s and 0.35 s (what a step takes with both cores to itself;
//! wall time stayed at the one-thread figure while other processes held a core). With the stem and 8
//! of 16 blocks frozen: 0.46 s / 0.32 s on one thread, 0.23 s / 0.16 s CPU per thread on two.
//!
//! # Layout and determinism
//!
//! Input is NCHW `[n, 3, h, w]` (normalized as for inference), activations NHWC inside. Work is split
//! into fixed chunks of [`IMAGE_CHUNK`] images whatever the thread count (weight gradients: at most 8
//! groups of whole chunks); partial sums per chunk or group (weight gradients, batch-norm statistics in
//! f64) are added in order, and dropout masks come
//! from a counter-based generator keyed by (seed, step, sample, feature). The same seed thus gives
//! bit-identical results with any number of rayon threads (on one machine).
//!
//! # Files
//!
//! `params` (the settings), `layer` (a convolution + batch norm with its trainable tensors) and
//! `layer_pass` (its forward and backward over a batch), `frozen` (the frozen stem and blocks on the
//! inference kernels), `buffers` (activation buffers reused between steps), `load` (building from a
//! checkpoint), `pass` (the whole network's forward and backward), `train` (the public steps and
//! predictions), `save` (the weights under the checkpoint's names: an export, not a resume point),
//! `state` (the resume point, inside the learner's [`crate::checkpoint`]) and [`kernels`].

mod buffers;
mod frozen;
pub mod kernels;
mod layer;
mod layer_pass;
mod load;
mod params;
mod pass;
mod save;
mod state;
mod train;

pub use params::{BatchNormMode, Head, TrainerParams};
pub use train::StepReport;

use crate::efficientnet::{EfficientNetError, INPUT_CHANNELS};
use buffers::BufferPool;
use frozen::FrozenTrunk;
use layer::{Block, ConvBn, Param};

/// Images per work chunk (fixed, so sums are added in the same order with any thread count).
pub const IMAGE_CHUNK: usize = 2;
/// Most partial weight gradients a convolution's backward pass computes (and then adds in order): the
/// batch's chunks are split into this many groups, a fixed split for a given batch size.
const GRADIENT_PARTIALS: usize = 8;
/// Batch-norm epsilon of the TF original.
const BN_EPS: f64 = 1e-3;
const STEM_CHANNELS: usize = 32;

/// EfficientNet-Lite0 set up for fine-tuning (see the module documentation).
#[derive(Clone, Debug)]
pub struct EfficientNetTrainer {
    params: TrainerParams,
    frozen: Option<FrozenTrunk>,
    /// The frozen stem and blocks unfolded, as loaded (for [`Self::to_safetensors_bytes`]).
    frozen_source: Option<(ConvBn, Vec<Block>)>,
    /// `None` when frozen.
    stem: Option<ConvBn>,
    /// The trainable blocks (those after the frozen ones).
    blocks: Vec<Block>,
    head_conv: ConvBn,
    /// `[classes, 1280]` and `[classes]`.
    fc_weight: Param,
    fc_bias: Param,
    classes: usize,
    /// Training steps taken (keys the dropout masks).
    steps: u64,
    pool: BufferPool,
}

impl EfficientNetTrainer {
    /// The settings the trainer was built with.
    pub fn params(&self) -> &TrainerParams {
        &self.params
    }

    /// Outputs of the head.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Training steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Number of trained scalars (backbone part after the frozen blocks, plus the head).
    pub fn num_trainable_parameters(&self) -> usize {
        let layer = |l: &ConvBn| l.weight.value.len() + l.gamma.value.len() + l.beta.value.len();
        self.stem.iter().map(layer).sum::<usize>()
            + self
                .blocks
                .iter()
                .map(|b| {
                    b.expand.iter().map(layer).sum::<usize>()
                        + layer(&b.depthwise)
                        + layer(&b.project)
                })
                .sum::<usize>()
            + layer(&self.head_conv)
            + self.fc_weight.value.len()
            + self.fc_bias.value.len()
    }

    /// The head's weight `[classes, 1280]` and bias `[classes]`.
    pub fn head(&self) -> (&[f32], &[f32]) {
        (&self.fc_weight.value, &self.fc_bias.value)
    }

    /// L2 norms of the gradients the last step computed, `(backbone, head)` (zeros before the first
    /// step): for monitoring, and for the tests' check that a small step lowers the loss by `lr·|g|²`.
    pub fn gradient_norms(&self) -> (f32, f32) {
        let sq = |p: &Param| p.grad.iter().map(|&g| g as f64 * g as f64).sum::<f64>();
        let layers = self
            .stem
            .iter()
            .chain(
                self.blocks
                    .iter()
                    .flat_map(|b| b.expand.iter().chain([&b.depthwise, &b.project])),
            )
            .chain([&self.head_conv]);
        let backbone: f64 = layers
            .map(|l| sq(&l.weight) + sq(&l.gamma) + sq(&l.beta))
            .sum();
        let head = sq(&self.fc_weight) + sq(&self.fc_bias);
        (backbone.sqrt() as f32, head.sqrt() as f32)
    }

    /// Sets the learning rates of the backbone and the head (e.g. for a schedule).
    pub fn set_learning_rates(
        &mut self,
        lr_backbone: f32,
        lr_head: f32,
    ) -> Result<(), EfficientNetError> {
        let mut p = self.params.clone();
        (p.lr_backbone, p.lr_head) = (lr_backbone, lr_head);
        p.check()?;
        self.params = p;
        Ok(())
    }

    fn check_images(&self, input: &[f32], shape: [usize; 4]) -> Result<(), EfficientNetError> {
        let [n, c, h, w] = shape;
        if c != INPUT_CHANNELS || h == 0 || w == 0 || n == 0 {
            return Err(EfficientNetError::Input {
                expected: "input shape [n, 3, h, w] with n, h, w >= 1".into(),
                got: format!("{shape:?}"),
            });
        }
        if input.len() != n * c * h * w {
            return Err(EfficientNetError::Input {
                expected: format!("input: {} values for shape {shape:?}", n * c * h * w),
                got: format!("{} values", input.len()),
            });
        }
        Ok(())
    }

    fn check_labels(&self, labels: &[usize], n: usize) -> Result<(), EfficientNetError> {
        if labels.len() != n {
            return Err(EfficientNetError::Input {
                expected: format!("labels: {n}, one per image"),
                got: format!("{} labels", labels.len()),
            });
        }
        if let Some((i, &y)) = labels.iter().enumerate().find(|&(_, &y)| y >= self.classes) {
            return Err(EfficientNetError::Input {
                expected: format!("labels: class ids below {}", self.classes),
                got: format!("label {y} at position {i}"),
            });
        }
        Ok(())
    }

    /// Frees the activation buffers kept for reuse between steps (about 1 GB after a 224x224 batch-16
    /// step); the next step allocates them again.
    pub fn release_buffers(&self) {
        self.pool.clear();
    }

    /// Calls `f(param, is_head)` on every trainable tensor.
    fn for_each_param(&mut self, mut f: impl FnMut(&mut Param, bool)) {
        let layers = self
            .stem
            .iter_mut()
            .chain(self.blocks.iter_mut().flat_map(|b| {
                b.expand
                    .iter_mut()
                    .chain([&mut b.depthwise, &mut b.project])
            }))
            .chain([&mut self.head_conv]);
        for l in layers {
            l.params_mut().into_iter().for_each(|p| f(p, false));
        }
        f(&mut self.fc_weight, true);
        f(&mut self.fc_bias, true);
    }
}
