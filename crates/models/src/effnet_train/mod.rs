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

pub mod kernels;
mod state;

use std::path::Path;
use std::sync::Mutex;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use safetensors::SafeTensors;

use crate::efficientnet::{
    EfficientNetError, FEATURE_DIM, INPUT_CHANNELS, NUM_CLASSES, STAGES, VarBuilder,
};
use crate::kernels::{Activation, DenseConv, DepthwiseConv, PointwiseConv};
use kernels::ConvGeometry;

/// Images per work chunk (fixed, so sums are added in the same order with any thread count).
pub const IMAGE_CHUNK: usize = 2;
/// Most partial weight gradients a convolution's backward pass computes (and then adds in order): the
/// batch's chunks are split into this many groups, a fixed split for a given batch size.
const GRADIENT_PARTIALS: usize = 8;
/// Batch-norm epsilon of the TF original.
const BN_EPS: f64 = 1e-3;
const STEM_CHANNELS: usize = 32;

/// Which classifier the trainer starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// A new `1280 → classes` linear layer, PyTorch's `nn.Linear` init (uniform ±1/√1280) from the seed.
    New { classes: usize },
    /// The checkpoint's ImageNet `_fc` (1000 classes).
    Pretrained,
}

/// How batch norm behaves in [`EfficientNetTrainer::train_step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchNormMode {
    /// Batch statistics; running statistics updated with `momentum` (PyTorch convention; 0.01 is the
    /// TF original's 0.99 decay).
    Train { momentum: f32 },
    /// Running statistics, never updated (γ and β still train).
    Frozen,
}

/// Hyper-parameters of fine-tuning. `Default` gives a new 10-class head, training-mode BN with
/// momentum 0.01, dropout 0.2, SGD momentum 0.9, backbone lr 0.001 and head lr 0.01 (10×), no weight
/// decay, nothing frozen, seed 0.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerParams {
    pub head: Head,
    pub batch_norm: BatchNormMode,
    /// Dropout probability before the head, in `[0, 1)`.
    pub dropout: f32,
    pub lr_backbone: f32,
    pub lr_head: f32,
    /// SGD momentum μ, in `[0, 1)`.
    pub momentum: f32,
    /// L2 weight decay λ added to every trained tensor's gradient (BN γ and β included, as when all
    /// of a PyTorch model's parameters go to one optimizer group).
    pub weight_decay: f32,
    /// Stem and first N blocks frozen (inference kernels, no backward); 0..=16.
    pub frozen_blocks: usize,
    /// Seeds the head's init and the dropout masks.
    pub seed: u64,
}

impl Default for TrainerParams {
    fn default() -> Self {
        TrainerParams {
            head: Head::New { classes: 10 },
            batch_norm: BatchNormMode::Train { momentum: 0.01 },
            dropout: 0.2,
            lr_backbone: 0.001,
            lr_head: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
            frozen_blocks: 0,
            seed: 0,
        }
    }
}

impl TrainerParams {
    fn check(&self) -> Result<(), EfficientNetError> {
        let bad =
            |name: &'static str, reason: String| Err(EfficientNetError::Param { name, reason });
        if let Head::New { classes } = self.head
            && classes == 0
        {
            return bad("classes", "the head needs at least one class".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(
                "dropout",
                format!("must be in [0, 1), got {}", self.dropout),
            );
        }
        for (name, v) in [
            ("lr_backbone", self.lr_backbone),
            ("lr_head", self.lr_head),
            ("weight_decay", self.weight_decay),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(name, format!("must be a finite number >= 0, got {v}"));
            }
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(
                "momentum",
                format!("must be in [0, 1), got {}", self.momentum),
            );
        }
        if let BatchNormMode::Train { momentum } = self.batch_norm
            && !(0.0..=1.0).contains(&momentum)
        {
            return bad(
                "batch_norm momentum",
                format!("must be in [0, 1], got {momentum}"),
            );
        }
        let blocks: usize = STAGES.iter().map(|s| s.repeats).sum();
        if self.frozen_blocks > blocks {
            return bad(
                "frozen_blocks",
                format!(
                    "the network has {blocks} blocks, got {}",
                    self.frozen_blocks
                ),
            );
        }
        Ok(())
    }
}

/// A trainable tensor with its gradient and SGD momentum buffer.
#[derive(Clone, Debug)]
struct Param {
    value: Vec<f32>,
    grad: Vec<f32>,
    velocity: Vec<f32>,
}

impl Param {
    fn new(value: Vec<f32>) -> Self {
        let n = value.len();
        Param {
            value,
            grad: vec![0.0; n],
            velocity: vec![0.0; n],
        }
    }

    /// `torch.optim.SGD`'s step; the gradient is left as it was.
    fn sgd(&mut self, lr: f32, momentum: f32, weight_decay: f32) {
        for ((t, v), g) in self
            .value
            .iter_mut()
            .zip(&mut self.velocity)
            .zip(&self.grad)
        {
            *v = momentum * *v + g + weight_decay * *t;
            *t -= lr * *v;
        }
    }
}

/// The convolution of a [`ConvBn`].
#[derive(Clone, Copy, Debug)]
enum ConvKind {
    /// Dense kxk on the NCHW image, `[cout, cin, k, k]`.
    Stem {
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
    },
    /// 1x1, `[cout, cin]`.
    Pointwise { cin: usize, cout: usize },
    /// kxk depthwise, `[c, 1, k, k]`.
    Depthwise { c: usize, k: usize, stride: usize },
}

impl ConvKind {
    fn out_channels(self) -> usize {
        match self {
            ConvKind::Stem { cout, .. } | ConvKind::Pointwise { cout, .. } => cout,
            ConvKind::Depthwise { c, .. } => c,
        }
    }

    fn in_channels(self) -> usize {
        match self {
            ConvKind::Stem { cin, .. } | ConvKind::Pointwise { cin, .. } => cin,
            ConvKind::Depthwise { c, .. } => c,
        }
    }

    fn output_size(self, h: usize, w: usize) -> (usize, usize) {
        match self {
            ConvKind::Pointwise { .. } => (h, w),
            ConvKind::Stem { k, stride, .. } | ConvKind::Depthwise { k, stride, .. } => {
                let g = ConvGeometry::new(h, w, k, stride);
                (g.ho, g.wo)
            }
        }
    }
}

/// Convolution (no bias) → batch norm → optional ReLU6, with the checkpoint's names.
#[derive(Clone, Debug)]
struct ConvBn {
    /// Checkpoint scope of the convolution, e.g. `_blocks.3._expand_conv` (for messages and saving).
    name: String,
    /// Checkpoint scope of the batch norm, e.g. `_blocks.3._bn0`.
    bn_name: String,
    kind: ConvKind,
    weight: Param,
    gamma: Param,
    beta: Param,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    relu6: bool,
}

impl ConvBn {
    fn load(
        vb: &VarBuilder<'_>,
        conv: &str,
        bn: &str,
        kind: ConvKind,
        relu6: bool,
    ) -> Result<Self, EfficientNetError> {
        let shape = match kind {
            ConvKind::Stem { cin, cout, k, .. } => vec![cout, cin, k, k],
            ConvKind::Pointwise { cin, cout } => vec![cout, cin, 1, 1],
            ConvKind::Depthwise { c, k, .. } => vec![c, 1, k, k],
        };
        let c = kind.out_channels();
        let b = vb.pp(bn);
        Ok(ConvBn {
            name: conv.to_string(),
            bn_name: bn.to_string(),
            kind,
            weight: Param::new(vb.pp(conv).get(&shape, "weight")?),
            gamma: Param::new(b.get(&[c], "weight")?),
            beta: Param::new(b.get(&[c], "bias")?),
            running_mean: b.get(&[c], "running_mean")?,
            running_var: b.get(&[c], "running_var")?,
            relu6,
        })
    }

    fn params_mut(&mut self) -> [&mut Param; 3] {
        [&mut self.weight, &mut self.gamma, &mut self.beta]
    }

    /// The weight with the batch norm (running statistics) folded in, and its bias, in f64 as the
    /// inference loader does: for the frozen part's inference kernels.
    fn folded(&self) -> (Vec<f32>, Vec<f32>) {
        let c = self.kind.out_channels();
        let per = self.weight.value.len() / c;
        let mut w = self.weight.value.clone();
        let mut b = vec![0.0; c];
        for o in 0..c {
            let scale = self.gamma.value[o] as f64 / (self.running_var[o] as f64 + BN_EPS).sqrt();
            for v in &mut w[o * per..(o + 1) * per] {
                *v = (*v as f64 * scale) as f32;
            }
            b[o] = (self.beta.value[o] as f64 - self.running_mean[o] as f64 * scale) as f32;
        }
        (w, b)
    }

    fn act(&self) -> Activation {
        if self.relu6 {
            Activation::Relu6
        } else {
            Activation::None
        }
    }
}

/// What one [`ConvBn`] keeps from the forward pass for its backward.
struct LayerTape {
    /// Convolution output (before batch norm), NHWC.
    z: Vec<f32>,
    /// Activation (the next layer's input), NHWC.
    a: Vec<f32>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// The batch variance (biased), for the running-statistics update; empty with running statistics.
    batch_var: Vec<f32>,
    /// Whether `mean`/`inv_std` are batch statistics (training-mode backward).
    batch_stats: bool,
    /// Input and output spatial sizes.
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

/// A trainable MBConv block.
#[derive(Clone, Debug)]
struct Block {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

/// A frozen MBConv block: BN-folded inference kernels.
#[derive(Clone, Debug)]
struct FrozenBlock {
    expand: Option<PointwiseConv>,
    depthwise: DepthwiseConv,
    project: PointwiseConv,
    residual: bool,
}

/// The frozen stem and first blocks, as inference kernels.
#[derive(Clone, Debug)]
struct FrozenTrunk {
    stem: DenseConv,
    blocks: Vec<FrozenBlock>,
    out_channels: usize,
}

impl FrozenTrunk {
    /// One NCHW image `[3, h, w]` to its NHWC activation `[ho, wo, out_channels]`; returns `(ho, wo)`.
    fn forward_image(&self, image: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
        let (mut h2, mut w2) = self.stem.output_size(h, w);
        let mut x = vec![0.0; h2 * w2 * STEM_CHANNELS];
        self.stem.forward(image, h, w, &mut Vec::new(), &mut x);
        for b in &self.blocks {
            let hidden = match &b.expand {
                Some(e) => {
                    let mut t = vec![0.0; h2 * w2 * e.out_channels()];
                    e.forward(&x, None, &mut t);
                    t
                }
                None => x.clone(),
            };
            let (ho, wo) = b.depthwise.output_size(h2, w2);
            let mut d = vec![0.0; ho * wo * b.depthwise.channels()];
            b.depthwise.forward(&hidden, h2, w2, &mut d);
            let mut y = vec![0.0; ho * wo * b.project.out_channels()];
            b.project.forward(&d, b.residual.then_some(&x[..]), &mut y);
            (x, h2, w2) = (y, ho, wo);
        }
        (x, h2, w2)
    }
}

/// Large f32 buffers kept from step to step. Activations of a training step take about 1 GB at 224x224
/// batch 16; allocating them fresh every step costs a page fault per 4 KB (15 % of a step), so buffers
/// are handed back here and reused (best fit by capacity). Their contents are stale: every user
/// overwrites the whole buffer. [`EfficientNetTrainer::release_buffers`] frees them.
#[derive(Default)]
struct BufferPool(Mutex<Vec<Vec<f32>>>);

impl BufferPool {
    /// A buffer of `len` values with unspecified contents.
    fn take(&self, len: usize) -> Vec<f32> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut v = best.map(|i| pool.swap_remove(i)).unwrap_or_default();
        drop(pool);
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, 0.0);
        }
        v
    }

    fn give(&self, v: Vec<f32>) {
        if v.capacity() >= 1 << 14 {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(v);
        }
    }

    fn give_layer(&self, t: LayerTape) {
        self.give(t.z);
        self.give(t.a);
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Clone for BufferPool {
    fn clone(&self) -> Self {
        BufferPool::default()
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write!(
            f,
            "BufferPool({} buffers, {} values)",
            pool.len(),
            pool.iter().map(|v| v.capacity()).sum::<usize>()
        )
    }
}

/// Where a training step stands after it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Mean cross-entropy of the batch before the update (with dropout, as trained).
    pub loss: f32,
    /// The logits the loss was computed from, `[n, classes]` row-major.
    pub logits: Vec<f32>,
}

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

/// What a block keeps from the forward pass.
struct BlockTape {
    expand: Option<LayerTape>,
    depthwise: LayerTape,
    /// Its `a` is the block output (residual included).
    project: LayerTape,
}

/// Everything the backward pass needs from one forward pass.
struct Tape {
    n: usize,
    /// The trainable part's input when the stem is frozen (the frozen trunk's NHWC output); empty otherwise.
    trunk_in: Vec<f32>,
    stem: Option<LayerTape>,
    blocks: Vec<BlockTape>,
    head: LayerTape,
    /// Pooled features `[n, 1280]`, after dropout, and the dropout multipliers (empty: no dropout).
    dropped: Vec<f32>,
    mask: Vec<f32>,
    logits: Vec<f32>,
}

impl Tape {
    /// The input of trainable block `i`.
    fn block_input(&self, i: usize) -> &[f32] {
        if i > 0 {
            &self.blocks[i - 1].project.a
        } else if let Some(stem) = &self.stem {
            &stem.a
        } else {
            &self.trunk_in
        }
    }
}

/// Where the trainable part's input comes from.
enum TrunkInput<'a> {
    /// Normalized NCHW images `[n, 3, h, w]`.
    Images { data: &'a [f32], h: usize, w: usize },
    /// The frozen trunk's NHWC output `[n, h, w, c]` (see [`EfficientNetTrainer::frozen_features`]).
    Frozen { data: &'a [f32], h: usize, w: usize },
}

/// How a forward pass uses batch norm.
#[derive(Clone, Copy, PartialEq)]
enum BnUse {
    Batch,
    Running,
}

/// Convolution, batch norm and activation of `layer` over a batch `x` of `n` images (`[n, 3, h, w]` for
/// the stem, `[n, h, w, cin]` otherwise).
fn layer_forward(
    layer: &ConvBn,
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
    bn: BnUse,
    pool: &BufferPool,
) -> LayerTape {
    let kind = layer.kind;
    let (cin, cout) = (kind.in_channels(), kind.out_channels());
    let (ho, wo) = kind.output_size(h, w);
    let (in_img, out_img) = (h * w * cin, ho * wo * cout);
    assert_eq!(
        x.len(),
        n * in_img,
        "{}: input is not {n} images of {h}x{w}x{cin}",
        layer.name
    );
    let mut z = pool.take(n * out_img);
    let wt = &layer.weight.value;
    let zc = z
        .par_chunks_mut(IMAGE_CHUNK * out_img)
        .zip(x.par_chunks(IMAGE_CHUNK * in_img));
    match kind {
        ConvKind::Pointwise { .. } => {
            // The inference port's GEMM (weights packed once per step, no run-time packing of the
            // activations): measured faster than `matrixmultiply` on these shapes.
            let conv = PointwiseConv::from_torch(wt, &vec![0.0; cout], cout, cin, Activation::None);
            zc.for_each(|(z, x)| conv.forward(x, None, z));
        }
        ConvKind::Depthwise { c, k, stride } => {
            // The vectorized inference kernel, with a zero bias and no activation.
            let conv = DepthwiseConv::from_torch(wt, &vec![0.0; c], c, k, stride, Activation::None);
            zc.for_each(|(z, x)| {
                for (z, x) in z.chunks_exact_mut(out_img).zip(x.chunks_exact(in_img)) {
                    conv.forward(x, h, w, z);
                }
            });
        }
        ConvKind::Stem { k, stride, .. } => {
            let g = ConvGeometry::new(h, w, k, stride);
            zc.for_each(|(z, x)| {
                let mut patches = Vec::new();
                for (z, x) in z.chunks_exact_mut(out_img).zip(x.chunks_exact(in_img)) {
                    kernels::stem_forward(x, wt, cin, cout, g, &mut patches, z);
                }
            });
        }
    }
    let count = n * ho * wo;
    let (mean, var) = match bn {
        BnUse::Running => (layer.running_mean.clone(), layer.running_var.clone()),
        BnUse::Batch => {
            let partial: Vec<(Vec<f64>, Vec<f64>)> = z
                .par_chunks(IMAGE_CHUNK * out_img)
                .map(|z| kernels::channel_sums(z, cout))
                .collect();
            let (mut s, mut q) = (vec![0.0f64; cout], vec![0.0f64; cout]);
            for (ps, pq) in &partial {
                s.iter_mut().zip(ps).for_each(|(a, b)| *a += b);
                q.iter_mut().zip(pq).for_each(|(a, b)| *a += b);
            }
            let m = count.max(1) as f64;
            let mean: Vec<f64> = s.iter().map(|s| s / m).collect();
            let var: Vec<f64> = q
                .iter()
                .zip(&mean)
                .map(|(q, mu)| (q / m - mu * mu).max(0.0))
                .collect();
            (
                mean.iter().map(|&v| v as f32).collect(),
                var.iter().map(|&v| v as f32).collect(),
            )
        }
    };
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + BN_EPS).sqrt()) as f32)
        .collect();
    let mut a = pool.take(z.len());
    a.par_chunks_mut(IMAGE_CHUNK * out_img)
        .zip(z.par_chunks(IMAGE_CHUNK * out_img))
        .for_each(|(a, z)| {
            kernels::batch_norm_forward(
                z,
                cout,
                &mean,
                &inv_std,
                &layer.gamma.value,
                &layer.beta.value,
                layer.relu6,
                a,
            )
        });
    let batch_stats = bn == BnUse::Batch;
    let batch_var = if batch_stats { var } else { Vec::new() };
    LayerTape {
        z,
        a,
        mean,
        inv_std,
        batch_var,
        batch_stats,
        h,
        w,
        ho,
        wo,
    }
}

/// Updates `layer`'s running statistics from the batch statistics in `t` (PyTorch's rule, unbiased
/// variance).
fn update_running_stats(layer: &mut ConvBn, t: &LayerTape, n: usize, momentum: f32) {
    if !t.batch_stats {
        return;
    }
    let count = (n * t.ho * t.wo) as f64;
    let unbias = if count > 1.0 {
        count / (count - 1.0)
    } else {
        1.0
    };
    for c in 0..t.mean.len() {
        let var = t.batch_var[c] as f64 * unbias;
        let m = momentum as f64;
        layer.running_mean[c] =
            ((1.0 - m) * layer.running_mean[c] as f64 + m * t.mean[c] as f64) as f32;
        layer.running_var[c] = ((1.0 - m) * layer.running_var[c] as f64 + m * var) as f32;
    }
}

/// Backward through `layer`: `da` is the gradient of its activation `t.a`; adds the gradients of the
/// weight, γ and β into the layer, and returns the input gradient if `need_dx`.
fn layer_backward(
    layer: &mut ConvBn,
    x: &[f32],
    t: &LayerTape,
    n: usize,
    mut da: Vec<f32>,
    need_dx: bool,
    pool: &BufferPool,
) -> Option<Vec<f32>> {
    let kind = layer.kind;
    let (cin, cout) = (kind.in_channels(), kind.out_channels());
    let (in_img, out_img) = (t.h * t.w * cin, t.ho * t.wo * cout);
    assert_eq!(
        da.len(),
        n * out_img,
        "{}: output gradient is not {n} images of {}x{}x{cout}",
        layer.name,
        t.ho,
        t.wo
    );
    let chunk_out = IMAGE_CHUNK * out_img;
    let (gamma, beta) = (&layer.gamma.value, &layer.beta.value);
    let sums: Vec<(Vec<f64>, Vec<f64>)> = da
        .par_chunks_mut(chunk_out)
        .zip(t.z.par_chunks(chunk_out))
        .map(|(d, z)| {
            kernels::batch_norm_backward_sums(
                z,
                cout,
                &t.mean,
                &t.inv_std,
                gamma,
                beta,
                layer.relu6,
                d,
            )
        })
        .collect();
    let (mut dbeta, mut dgamma) = (vec![0.0f64; cout], vec![0.0f64; cout]);
    for (sb, sg) in &sums {
        dbeta.iter_mut().zip(sb).for_each(|(a, b)| *a += b);
        dgamma.iter_mut().zip(sg).for_each(|(a, b)| *a += b);
    }
    let dbeta: Vec<f32> = dbeta.iter().map(|&v| v as f32).collect();
    let dgamma: Vec<f32> = dgamma.iter().map(|&v| v as f32).collect();
    let count = n * t.ho * t.wo;
    let batch = t.batch_stats.then_some((&dbeta[..], &dgamma[..], count));
    da.par_chunks_mut(chunk_out)
        .zip(t.z.par_chunks(chunk_out))
        .for_each(|(d, z)| {
            kernels::batch_norm_backward_apply(z, cout, &t.mean, &t.inv_std, gamma, batch, d)
        });
    let dz = da;

    let wt = &layer.weight.value;
    let wlen = wt.len();
    let taps = match kind {
        ConvKind::Depthwise { c, k, .. } => kernels::depthwise_weight_to_taps(wt, c, k),
        _ => Vec::new(),
    };
    // dX = dY·W is a 1x1 convolution with the transposed weight: the packed inference GEMM again.
    let transposed = match kind {
        ConvKind::Pointwise { .. } if need_dx => {
            let mut wt_t = vec![0.0; wlen];
            for o in 0..cout {
                for i in 0..cin {
                    wt_t[i * cout + o] = wt[o * cin + i];
                }
            }
            Some(PointwiseConv::from_torch(
                &wt_t,
                &vec![0.0; cin],
                cin,
                cout,
                Activation::None,
            ))
        }
        _ => None,
    };
    let chunk_backward = |x: &[f32], dy: &[f32], dx: Option<&mut [f32]>| -> Vec<f32> {
        let mut dw = pool.take(wlen);
        dw.fill(0.0);
        match kind {
            ConvKind::Pointwise { .. } => {
                kernels::pointwise_backward(x, wt, dy, cin, cout, &mut dw, None);
                if let (Some(dx), Some(t)) = (dx, &transposed) {
                    t.forward(dy, None, dx);
                }
            }
            ConvKind::Depthwise { c, k, stride } => {
                let g = ConvGeometry::new(t.h, t.w, k, stride);
                let images = x.chunks_exact(in_img).zip(dy.chunks_exact(out_img));
                match dx {
                    Some(dx) => {
                        images
                            .zip(dx.chunks_exact_mut(in_img))
                            .for_each(|((x, dy), dx)| {
                                kernels::depthwise_backward(x, &taps, dy, c, g, &mut dw, Some(dx))
                            })
                    }
                    None => images.for_each(|(x, dy)| {
                        kernels::depthwise_backward(x, &taps, dy, c, g, &mut dw, None)
                    }),
                }
            }
            ConvKind::Stem { k, stride, .. } => {
                let g = ConvGeometry::new(t.h, t.w, k, stride);
                let mut patches = Vec::new();
                for (x, dy) in x.chunks_exact(in_img).zip(dy.chunks_exact(out_img)) {
                    kernels::stem_backward(x, dy, cin, cout, g, &mut patches, &mut dw);
                }
            }
        }
        dw
    };
    // The convolution's backward runs on at most GRADIENT_PARTIALS groups of whole chunks (a fixed
    // split for a given batch size): fewer partial weight gradients to allocate and add up, and
    // larger GEMMs for the 1x1 convolutions.
    let group = IMAGE_CHUNK * n.div_ceil(IMAGE_CHUNK).div_ceil(GRADIENT_PARTIALS);
    let (chunk_in, chunk_out) = (group * in_img, group * out_img);
    let mut dx = if need_dx {
        pool.take(n * in_img)
    } else {
        Vec::new()
    };
    let partials: Vec<Vec<f32>> = if need_dx {
        dx.par_chunks_mut(chunk_in)
            .zip(x.par_chunks(chunk_in))
            .zip(dz.par_chunks(chunk_out))
            .map(|((dx, x), dy)| chunk_backward(x, dy, Some(dx)))
            .collect()
    } else {
        x.par_chunks(chunk_in)
            .zip(dz.par_chunks(chunk_out))
            .map(|(x, dy)| chunk_backward(x, dy, None))
            .collect()
    };
    // Sum the groups' partial weight gradients in group order (deterministic).
    let mut partials = partials.into_iter();
    let mut dw = partials.next().expect("a batch has at least one image");
    for p in partials {
        dw.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
        pool.give(p);
    }
    if let ConvKind::Depthwise { c, k, .. } = kind {
        // Back from the tap-major [k, k, c] layout to PyTorch's [c, 1, k, k].
        for ch in 0..c {
            for tap in 0..k * k {
                layer.weight.grad[ch * k * k + tap] += dw[tap * c + ch];
            }
        }
    } else {
        layer
            .weight
            .grad
            .iter_mut()
            .zip(&dw)
            .for_each(|(a, b)| *a += b);
    }
    layer
        .gamma
        .grad
        .iter_mut()
        .zip(&dgamma)
        .for_each(|(a, b)| *a += b);
    layer
        .beta
        .grad
        .iter_mut()
        .zip(&dbeta)
        .for_each(|(a, b)| *a += b);
    pool.give(dz);
    need_dx.then_some(dx)
}

impl EfficientNetTrainer {
    /// Loads the checkpoint at `path` (the inference port's format and names) set up by `params`.
    pub fn load(path: &Path, params: TrainerParams) -> Result<Self, EfficientNetError> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| EfficientNetError::Io {
            path: label.clone(),
            source,
        })?;
        Self::from_safetensors_bytes(&bytes, &label, params)
    }

    /// From the bytes of a safetensors checkpoint; `label` names it in errors.
    pub fn from_safetensors_bytes(
        bytes: &[u8],
        label: &str,
        params: TrainerParams,
    ) -> Result<Self, EfficientNetError> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| EfficientNetError::Format {
            path: label.to_string(),
            reason: e.to_string(),
        })?;
        Self::new(&VarBuilder::new(&tensors, label), params)
    }

    /// Builds the trainer from a [`VarBuilder`] at the checkpoint's root.
    pub fn new(vb: &VarBuilder<'_>, params: TrainerParams) -> Result<Self, EfficientNetError> {
        params.check()?;
        let stem = ConvBn::load(
            vb,
            "_conv_stem",
            "_bn0",
            ConvKind::Stem {
                cin: INPUT_CHANNELS,
                cout: STEM_CHANNELS,
                k: 3,
                stride: 2,
            },
            true,
        )?;
        let mut blocks = Vec::new();
        for st in &STAGES {
            for r in 0..st.repeats {
                let (cin, stride) = if r == 0 {
                    (st.in_channels, st.stride)
                } else {
                    (st.out_channels, 1)
                };
                let b = vb.pp("_blocks").pp(blocks.len());
                let hid = cin * st.expand;
                let expand = if st.expand != 1 {
                    Some(ConvBn::load(
                        &b,
                        "_expand_conv",
                        "_bn0",
                        ConvKind::Pointwise { cin, cout: hid },
                        true,
                    )?)
                } else {
                    None
                };
                let depthwise = ConvBn::load(
                    &b,
                    "_depthwise_conv",
                    "_bn1",
                    ConvKind::Depthwise {
                        c: hid,
                        k: st.kernel,
                        stride,
                    },
                    true,
                )?;
                let project = ConvBn::load(
                    &b,
                    "_project_conv",
                    "_bn2",
                    ConvKind::Pointwise {
                        cin: hid,
                        cout: st.out_channels,
                    },
                    false,
                )?;
                let mut block = Block {
                    expand,
                    depthwise,
                    project,
                    residual: stride == 1 && cin == st.out_channels,
                };
                let i = blocks.len();
                for l in block
                    .expand
                    .iter_mut()
                    .chain([&mut block.depthwise, &mut block.project])
                {
                    l.name = format!("_blocks.{i}.{}", l.name);
                    l.bn_name = format!("_blocks.{i}.{}", l.bn_name);
                }
                blocks.push(block);
            }
        }
        let last = STAGES[STAGES.len() - 1].out_channels;
        let head_conv = ConvBn::load(
            vb,
            "_conv_head",
            "_bn1",
            ConvKind::Pointwise {
                cin: last,
                cout: FEATURE_DIM,
            },
            true,
        )?;
        let (classes, fc_weight, fc_bias) = match params.head {
            Head::Pretrained => {
                let fc = vb.pp("_fc");
                (
                    NUM_CLASSES,
                    fc.get(&[NUM_CLASSES, FEATURE_DIM], "weight")?,
                    fc.get(&[NUM_CLASSES], "bias")?,
                )
            }
            Head::New { classes } => {
                // nn.Linear's default: kaiming_uniform(a = √5) for the weight and U(±1/√fan_in) for the
                // bias, both of which are U(±1/√fan_in).
                let mut rng = StdRng::seed_from_u64(params.seed ^ 0x4845_4144);
                let bound = 1.0 / (FEATURE_DIM as f32).sqrt();
                let w = (0..classes * FEATURE_DIM)
                    .map(|_| rng.random_range(-bound..bound))
                    .collect();
                let b = (0..classes)
                    .map(|_| rng.random_range(-bound..bound))
                    .collect();
                (classes, w, b)
            }
        };
        let mut frozen_source = None;
        let (frozen, stem) = if params.frozen_blocks > 0 {
            frozen_source = Some((stem.clone(), blocks[..params.frozen_blocks].to_vec()));
            let (w, b) = stem.folded();
            let stem_k = DenseConv::from_torch(
                &w,
                &b,
                STEM_CHANNELS,
                INPUT_CHANNELS,
                3,
                2,
                Activation::Relu6,
            );
            let frozen_blocks: Vec<FrozenBlock> = blocks
                .drain(..params.frozen_blocks)
                .map(|b| {
                    let expand = b.expand.as_ref().map(|e| {
                        let (w, bias) = e.folded();
                        let ConvKind::Pointwise { cin, cout } = e.kind else {
                            unreachable!()
                        };
                        PointwiseConv::from_torch(&w, &bias, cout, cin, e.act())
                    });
                    let (w, bias) = b.depthwise.folded();
                    let ConvKind::Depthwise { c, k, stride } = b.depthwise.kind else {
                        unreachable!()
                    };
                    let depthwise =
                        DepthwiseConv::from_torch(&w, &bias, c, k, stride, Activation::Relu6);
                    let (w, bias) = b.project.folded();
                    let ConvKind::Pointwise { cin, cout } = b.project.kind else {
                        unreachable!()
                    };
                    let project = PointwiseConv::from_torch(&w, &bias, cout, cin, Activation::None);
                    FrozenBlock {
                        expand,
                        depthwise,
                        project,
                        residual: b.residual,
                    }
                })
                .collect();
            let out_channels = frozen_blocks
                .last()
                .map(|b| b.project.out_channels())
                .unwrap_or(STEM_CHANNELS);
            (
                Some(FrozenTrunk {
                    stem: stem_k,
                    blocks: frozen_blocks,
                    out_channels,
                }),
                None,
            )
        } else {
            (None, Some(stem))
        };
        Ok(EfficientNetTrainer {
            params,
            frozen,
            frozen_source,
            stem,
            blocks,
            head_conv,
            fc_weight: Param::new(fc_weight),
            fc_bias: Param::new(fc_bias),
            classes,
            steps: 0,
            pool: BufferPool::default(),
        })
    }

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

    /// Runs the frozen stem and blocks (inference kernels) on `input` `[n, 3, h, w]` and returns their
    /// NHWC output and its `[n, h', w', c]` shape. The result depends only on the image, so it can be
    /// cached across epochs and fed to [`Self::train_step_from_frozen`]. Errors when nothing is frozen.
    pub fn frozen_features(
        &self,
        input: &[f32],
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 4]), EfficientNetError> {
        self.check_images(input, shape)?;
        let Some(frozen) = &self.frozen else {
            return Err(EfficientNetError::Param {
                name: "frozen_blocks",
                reason: "no blocks are frozen, so there are no frozen features".into(),
            });
        };
        let [n, _, h, w] = shape;
        let per: Vec<(Vec<f32>, usize, usize)> = input
            .par_chunks(INPUT_CHANNELS * h * w)
            .map(|img| frozen.forward_image(img, h, w))
            .collect();
        let (ho, wo) = (per[0].1, per[0].2);
        let data = per.into_iter().flat_map(|p| p.0).collect();
        Ok((data, [n, ho, wo, frozen.out_channels]))
    }

    /// The forward pass from `src` to logits. `train` selects dropout and (with [`BatchNormMode::Train`])
    /// batch statistics; the tape holds what the backward pass needs.
    fn forward(&self, src: TrunkInput<'_>, n: usize, train: bool) -> Tape {
        let bn = if train && matches!(self.params.batch_norm, BatchNormMode::Train { .. }) {
            BnUse::Batch
        } else {
            BnUse::Running
        };
        let (trunk_in, stem, mut h, mut w) = match src {
            TrunkInput::Images { data, h, w } => match (&self.stem, &self.frozen) {
                (Some(stem), _) => {
                    let t = layer_forward(stem, data, n, h, w, bn, &self.pool);
                    let (ho, wo) = (t.ho, t.wo);
                    (Vec::new(), Some(t), ho, wo)
                }
                (None, Some(_)) => {
                    let (f, s) = self
                        .frozen_features(data, [n, INPUT_CHANNELS, h, w])
                        .expect("input checked by the caller");
                    (f, None, s[1], s[2])
                }
                (None, None) => unreachable!("either the stem trains or it is frozen"),
            },
            TrunkInput::Frozen { data, h, w } => (data.to_vec(), None, h, w),
        };
        let mut tape = Tape {
            n,
            trunk_in,
            stem,
            blocks: Vec::new(),
            head: empty_tape(),
            dropped: Vec::new(),
            mask: Vec::new(),
            logits: Vec::new(),
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let x = tape.block_input(i);
            let expand = b
                .expand
                .as_ref()
                .map(|e| layer_forward(e, x, n, h, w, bn, &self.pool));
            let hidden = expand.as_ref().map_or(x, |t| &t.a[..]);
            let depthwise = layer_forward(&b.depthwise, hidden, n, h, w, bn, &self.pool);
            let (ho, wo) = (depthwise.ho, depthwise.wo);
            let mut project = layer_forward(&b.project, &depthwise.a, n, ho, wo, bn, &self.pool);
            if b.residual {
                project
                    .a
                    .par_iter_mut()
                    .zip(x.par_iter())
                    .for_each(|(a, x)| *a += x);
            }
            tape.blocks.push(BlockTape {
                expand,
                depthwise,
                project,
            });
            (h, w) = (ho, wo);
        }
        let x = tape.block_input(self.blocks.len());
        tape.head = layer_forward(&self.head_conv, x, n, h, w, bn, &self.pool);
        let mut features = vec![0.0; n * FEATURE_DIM];
        features
            .par_chunks_mut(FEATURE_DIM)
            .zip(tape.head.a.par_chunks(h * w * FEATURE_DIM))
            .for_each(|(f, a)| crate::kernels::global_average_pool(a, FEATURE_DIM, f));
        let p = self.params.dropout;
        if train && p > 0.0 {
            let keep = 1.0 / (1.0 - p);
            let (seed, step) = (self.params.seed, self.steps);
            tape.mask = (0..n * FEATURE_DIM)
                .map(|i| {
                    if kernels::counter_uniform(
                        seed,
                        step,
                        (i / FEATURE_DIM) as u64,
                        (i % FEATURE_DIM) as u64,
                    ) >= p
                    {
                        keep
                    } else {
                        0.0
                    }
                })
                .collect();
            features
                .iter_mut()
                .zip(&tape.mask)
                .for_each(|(f, m)| *f *= m);
        }
        tape.dropped = features;
        tape.logits = vec![0.0; n * self.classes];
        kernels::linear_forward(
            &tape.dropped,
            &self.fc_weight.value,
            &self.fc_bias.value,
            &mut tape.logits,
        );
        tape
    }

    /// Eval-mode logits `[n, classes]` (running BN statistics, no dropout) of `input` `[n, 3, h, w]`.
    pub fn predict_logits(
        &self,
        input: &[f32],
        shape: [usize; 4],
    ) -> Result<Vec<f32>, EfficientNetError> {
        self.check_images(input, shape)?;
        let [n, _, h, w] = shape;
        let tape = self.forward(TrunkInput::Images { data: input, h, w }, n, false);
        let logits = tape.logits.clone();
        self.recycle(tape);
        Ok(logits)
    }

    /// One training step on a batch: forward (dropout, batch norm as configured), mean cross-entropy
    /// against `labels`, backward through the trainable part, and an SGD step (backbone at
    /// `lr_backbone`, head at `lr_head`). Returns the loss and logits before the update.
    pub fn train_step(
        &mut self,
        input: &[f32],
        shape: [usize; 4],
        labels: &[usize],
    ) -> Result<StepReport, EfficientNetError> {
        self.check_images(input, shape)?;
        self.check_labels(labels, shape[0])?;
        let [n, _, h, w] = shape;
        Ok(self.step(
            TrunkInput::Images { data: input, h, w },
            Some(input),
            n,
            labels,
        ))
    }

    /// [`Self::train_step`] from cached [`Self::frozen_features`] (`shape` as that returned).
    pub fn train_step_from_frozen(
        &mut self,
        features: &[f32],
        shape: [usize; 4],
        labels: &[usize],
    ) -> Result<StepReport, EfficientNetError> {
        let Some(frozen) = &self.frozen else {
            return Err(EfficientNetError::Param {
                name: "frozen_blocks",
                reason: "no blocks are frozen; use train_step".into(),
            });
        };
        let [n, h, w, c] = shape;
        if c != frozen.out_channels || n == 0 || features.len() != n * h * w * c {
            return Err(EfficientNetError::Input {
                expected: format!(
                    "frozen features [n, h, w, {}] with n >= 1",
                    frozen.out_channels
                ),
                got: format!("shape {shape:?} with {} values", features.len()),
            });
        }
        self.check_labels(labels, n)?;
        Ok(self.step(
            TrunkInput::Frozen {
                data: features,
                h,
                w,
            },
            None,
            n,
            labels,
        ))
    }

    fn step(
        &mut self,
        src: TrunkInput<'_>,
        images: Option<&[f32]>,
        n: usize,
        labels: &[usize],
    ) -> StepReport {
        let tape = self.forward(src, n, true);
        let mut dlogits = vec![0.0; tape.logits.len()];
        let loss = kernels::cross_entropy(&tape.logits, labels, self.classes, &mut dlogits);
        self.for_each_param(|p, _| p.grad.fill(0.0));
        self.backward(&tape, images, &dlogits);
        if let BatchNormMode::Train { momentum } = self.params.batch_norm {
            self.update_running(&tape, momentum);
        }
        let (lr_b, lr_h, mu, wd) = (
            self.params.lr_backbone,
            self.params.lr_head,
            self.params.momentum,
            self.params.weight_decay,
        );
        self.for_each_param(|p, is_head| p.sgd(if is_head { lr_h } else { lr_b }, mu, wd));
        self.steps += 1;
        let logits = tape.logits.clone();
        self.recycle(tape);
        StepReport { loss, logits }
    }

    /// Hands a tape's large buffers back to the pool.
    fn recycle(&self, tape: Tape) {
        let Tape {
            trunk_in,
            stem,
            blocks,
            head,
            ..
        } = tape;
        self.pool.give(trunk_in);
        stem.into_iter().for_each(|t| self.pool.give_layer(t));
        for b in blocks {
            b.expand.into_iter().for_each(|t| self.pool.give_layer(t));
            self.pool.give_layer(b.depthwise);
            self.pool.give_layer(b.project);
        }
        self.pool.give_layer(head);
    }

    /// The model's weights as a safetensors file under the checkpoint's names (convolutions, batch
    /// norms with their running statistics, and the head as `_fc.weight` `[classes, 1280]` /
    /// `_fc.bias`). With a 1000-class head it loads into [`crate::EfficientNetLite0`]; with
    /// [`Head::Pretrained`] into a new trainer. Momentum buffers are not saved (not a resume point).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>, EfficientNetError> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut layer = |l: &ConvBn| {
            let shape = match l.kind {
                ConvKind::Stem { cin, cout, k, .. } => vec![cout, cin, k, k],
                ConvKind::Pointwise { cin, cout } => vec![cout, cin, 1, 1],
                ConvKind::Depthwise { c, k, .. } => vec![c, 1, k, k],
            };
            let c = l.kind.out_channels();
            tensors.push((format!("{}.weight", l.name), shape, bytes(&l.weight.value)));
            for (what, v) in [
                ("weight", &l.gamma.value),
                ("bias", &l.beta.value),
                ("running_mean", &l.running_mean),
                ("running_var", &l.running_var),
            ] {
                tensors.push((format!("{}.{what}", l.bn_name), vec![c], bytes(v)));
            }
        };
        let (frozen_stem, frozen_blocks) = match &self.frozen_source {
            Some((s, b)) => (Some(s), &b[..]),
            None => (None, &[][..]),
        };
        for l in frozen_stem.into_iter().chain(self.stem.iter()) {
            layer(l);
        }
        for b in frozen_blocks.iter().chain(&self.blocks) {
            for l in b.expand.iter().chain([&b.depthwise, &b.project]) {
                layer(l);
            }
        }
        layer(&self.head_conv);
        tensors.push((
            "_fc.weight".into(),
            vec![self.classes, FEATURE_DIM],
            bytes(&self.fc_weight.value),
        ));
        tensors.push((
            "_fc.bias".into(),
            vec![self.classes],
            bytes(&self.fc_bias.value),
        ));
        let views = tensors
            .iter()
            .map(|(name, shape, data)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| EfficientNetError::Format {
                        path: name.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::serialize(views, None).map_err(|e| EfficientNetError::Format {
            path: "(serialized trainer)".into(),
            reason: e.to_string(),
        })
    }

    /// Writes [`Self::to_safetensors_bytes`] to `path`.
    pub fn save(&self, path: &Path) -> Result<(), EfficientNetError> {
        let bytes = self.to_safetensors_bytes()?;
        std::fs::write(path, bytes).map_err(|source| EfficientNetError::Io {
            path: path.display().to_string(),
            source,
        })
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

    fn update_running(&mut self, tape: &Tape, momentum: f32) {
        let n = tape.n;
        if let (Some(l), Some(t)) = (self.stem.as_mut(), tape.stem.as_ref()) {
            update_running_stats(l, t, n, momentum);
        }
        for (b, t) in self.blocks.iter_mut().zip(&tape.blocks) {
            if let (Some(l), Some(t)) = (b.expand.as_mut(), t.expand.as_ref()) {
                update_running_stats(l, t, n, momentum);
            }
            update_running_stats(&mut b.depthwise, &t.depthwise, n, momentum);
            update_running_stats(&mut b.project, &t.project, n, momentum);
        }
        update_running_stats(&mut self.head_conv, &tape.head, n, momentum);
    }

    /// Backward from `dlogits` through head, pooling and the trainable layers (gradients into the params).
    fn backward(&mut self, tape: &Tape, images: Option<&[f32]>, dlogits: &[f32]) {
        let n = tape.n;
        let mut dfeat = vec![0.0; n * FEATURE_DIM];
        kernels::linear_backward(
            &tape.dropped,
            &self.fc_weight.value,
            dlogits,
            &mut self.fc_weight.grad,
            &mut self.fc_bias.grad,
            Some(&mut dfeat),
        );
        if !tape.mask.is_empty() {
            dfeat.iter_mut().zip(&tape.mask).for_each(|(d, m)| *d *= m);
        }
        let head_img = tape.head.ho * tape.head.wo * FEATURE_DIM;
        let mut dhead = self.pool.take(n * head_img);
        dhead
            .par_chunks_mut(head_img)
            .zip(dfeat.par_chunks(FEATURE_DIM))
            .for_each(|(d, f)| kernels::global_average_pool_backward(f, d));
        let nb = self.blocks.len();
        let has_stem = self.stem.is_some();
        // Whether the input of trainable block i (or of the head conv, i = nb) needs a gradient.
        let needs = |i: usize| i > 0 || has_stem;
        let mut dout = layer_backward(
            &mut self.head_conv,
            tape.block_input(nb),
            &tape.head,
            n,
            dhead,
            needs(nb),
            &self.pool,
        );
        for i in (0..nb).rev() {
            let Some(d_block) = dout.take() else { break };
            let (b, t) = (&mut self.blocks[i], &tape.blocks[i]);
            let x = tape.block_input(i);
            let mut d_copy = self.pool.take(d_block.len());
            d_copy.copy_from_slice(&d_block);
            let d = layer_backward(
                &mut b.project,
                &t.depthwise.a,
                &t.project,
                n,
                d_copy,
                true,
                &self.pool,
            )
            .expect("asked for dx");
            let hidden = t.expand.as_ref().map_or(x, |e| &e.a[..]);
            let d = layer_backward(
                &mut b.depthwise,
                hidden,
                &t.depthwise,
                n,
                d,
                b.expand.is_some() || needs(i),
                &self.pool,
            );
            let mut d = match (b.expand.as_mut(), t.expand.as_ref(), d) {
                (Some(e), Some(te), Some(d)) => {
                    layer_backward(e, x, te, n, d, needs(i), &self.pool)
                }
                (_, _, d) => d,
            };
            if b.residual
                && let Some(d) = d.as_mut()
            {
                d.par_iter_mut()
                    .zip(d_block.par_iter())
                    .for_each(|(a, b)| *a += b);
            }
            self.pool.give(d_block);
            dout = d;
        }
        if let (Some(stem), Some(t), Some(images)) =
            (self.stem.as_mut(), tape.stem.as_ref(), images)
        {
            let d = dout.expect("the stem's output gradient is computed when the stem trains");
            layer_backward(stem, images, t, n, d, false, &self.pool);
        }
    }
}

fn empty_tape() -> LayerTape {
    LayerTape {
        z: Vec::new(),
        a: Vec::new(),
        mean: Vec::new(),
        inv_std: Vec::new(),
        batch_var: Vec::new(),
        batch_stats: false,
        h: 0,
        w: 0,
        ho: 0,
        wo: 0,
    }
}
