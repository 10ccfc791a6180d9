//! The public steps: a training step (from images or cached frozen features), eval-mode logits, and
//! the frozen part's features.

use super::kernels;
use super::params::BatchNormMode;
use super::pass::TrunkInput;
use super::EfficientNetTrainer;
use crate::efficientnet::{EfficientNetError, FEATURE_DIM, INPUT_CHANNELS};
use rayon::prelude::*;

/// Where a training step stands after it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Mean cross-entropy of the batch before the update (with dropout, as trained).
    pub loss: f32,
    /// The logits the loss was computed from, `[n, classes]` row-major.
    pub logits: Vec<f32>,
}

impl EfficientNetTrainer {
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

    pub(super) fn step(
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

    /// Eval-mode (running BN statistics, no dropout) logits `[n, classes]` and pooled features
    /// `[n, 1280]` from cached [`Self::frozen_features`] `[n, h, w, c]`.
    pub fn predict_from_frozen(&self, features: &[f32], shape: [usize; 4]) -> Result<(Vec<f32>, Vec<f32>), EfficientNetError> {
        let [n, h, w, c] = shape;
        let expected = self.frozen.as_ref().map(|f| f.out_channels);
        if expected != Some(c) || n == 0 || features.len() != n * h * w * c {
            return Err(EfficientNetError::Input {
                expected: format!("frozen features [n, h, w, {}] with n >= 1", expected.map_or("(nothing frozen)".into(), |c| c.to_string())),
                got: format!("shape {shape:?} with {} values", features.len()),
            });
        }
        let tape = self.forward(TrunkInput::Frozen { data: features, h, w }, n, false);
        let out = (tape.logits.clone(), tape.dropped.clone());
        debug_assert_eq!(out.1.len(), n * FEATURE_DIM);
        self.recycle(tape);
        Ok(out)
    }

    /// Channels of the frozen part's output (`None` when nothing is frozen).
    pub fn frozen_channels(&self) -> Option<usize> {
        self.frozen.as_ref().map(|f| f.out_channels)
    }
}
