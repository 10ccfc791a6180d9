//! The settings of fine-tuning, checked once.

use crate::efficientnet::{EfficientNetError, STAGES};

/// Which classifier the trainer starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// A new `1280 → classes` linear layer, PyTorch's `nn.Linear` init (uniform ±1/√1280) from the seed.
    New { classes: usize },
    /// The checkpoint's ImageNet `_fc` (1000 classes).
    Pretrained,
}

/// How batch norm behaves in [`EfficientNetTrainer::train_step`](super::EfficientNetTrainer::train_step).
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
    pub(super) fn check(&self) -> Result<(), EfficientNetError> {
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
