//! EfficientNet-Lite0 fine-tuned in the active-learning loop: the [`Learner`] over cached
//! frozen-trunk features.
//!
//! The stem and the first `16 − k` blocks stay frozen (ImageNet weights, inference kernels); the
//! pool's rows are their NHWC output for each image, computed once
//! ([`EfficientNetTrainer::frozen_features`], flattened). The last `k` blocks, the 1x1 head
//! convolution and a new linear head are fine-tuned by SGD with momentum, the head at 10× the
//! backbone's learning rate — continuously: each fit continues from the current weights, never
//! from ImageNet again (AIFT's incremental fine-tuning). Batch norm uses the ImageNet running
//! statistics (γ and β train): the labeled sets are small and the batches noisy.
//!
//! Scores: probabilities (eval mode), the pooled 1280-d embedding, BADGE's gradient embedding
//! `(p − onehot(ŷ)) ⊗ embedding`, and MC dropout on the pooled features before the head (the
//! network's own dropout, rate as trained). Checkpoints hold every trained tensor with its momentum
//! buffer and the step count, so a resumed run continues exactly.

use crate::checkpoint::Checkpoint;
use crate::effnet_train::{BatchNormMode, EfficientNetTrainer, Head, TrainerParams};
use crate::efficientnet::FEATURE_DIM;
use quarry_core::{Error, Learner, Matrix, McSamples, Probabilities, Result, seeded_rng};
use rand::Rng;
use rand::seq::SliceRandom;
use std::path::Path;

/// Rows predicted per forward pass (bounds the activation memory).
const PREDICT_CHUNK: usize = 128;
const SHUFFLE_STREAM: u64 = 0xEF_0000_0000;
const MC_STREAM: u64 = 0xEF_1000_0000;

/// How the loop fine-tunes EfficientNet-Lite0.
#[derive(Debug, Clone, PartialEq)]
pub struct FineTuneParams {
    pub classes: usize,
    /// Trained blocks at the end of the network (1..=16); the rest is frozen.
    pub train_blocks: usize,
    /// Passes over the labeled set per fit.
    pub epochs: usize,
    pub batch_size: usize,
    /// Backbone learning rate; the head's is 10× this.
    pub lr: f32,
    /// Dropout before the head (training, and MC dropout).
    pub dropout: f32,
    pub seed: u64,
}

pub struct EfficientNetLearner {
    trainer: EfficientNetTrainer,
    params: FineTuneParams,
    epochs_done: u64,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("efficientnet-lite0 fine-tuning: {e}"))
}

impl EfficientNetLearner {
    /// The pretrained weights at `weights`, set up to fine-tune the last `train_blocks` blocks.
    pub fn load(weights: &Path, params: FineTuneParams) -> Result<Self> {
        let trainer = EfficientNetTrainer::load(weights, Self::trainer_params(&params)?).map_err(err)?;
        Ok(EfficientNetLearner { trainer, params, epochs_done: 0 })
    }

    /// The trainer settings `params` stand for (also to build the frozen trunk that featurizes a pool).
    pub fn trainer_params(params: &FineTuneParams) -> Result<TrainerParams> {
        let blocks = 16;
        if params.train_blocks == 0 || params.train_blocks > blocks {
            return Err(Error::param("train-blocks", format!("must be 1..={blocks}, got {}", params.train_blocks)));
        }
        if params.epochs == 0 || params.batch_size == 0 {
            return Err(Error::param("--epochs / --minibatch", "must be at least 1"));
        }
        Ok(TrainerParams {
            head: Head::New { classes: params.classes },
            batch_norm: BatchNormMode::Frozen,
            dropout: params.dropout,
            lr_backbone: params.lr,
            lr_head: 10.0 * params.lr,
            momentum: 0.9,
            weight_decay: 0.0,
            frozen_blocks: blocks - params.train_blocks,
            seed: params.seed,
        })
    }

    pub fn trainer(&self) -> &EfficientNetTrainer {
        &self.trainer
    }

    /// The settings a checkpoint records and a restore compares.
    fn settings_list(&self) -> Vec<(&'static str, String)> {
        let p = &self.params;
        vec![
            ("classes", p.classes.to_string()),
            ("train_blocks", p.train_blocks.to_string()),
            ("epochs", p.epochs.to_string()),
            ("batch_size", p.batch_size.to_string()),
            ("lr", p.lr.to_string()),
            ("dropout", p.dropout.to_string()),
            ("seed", p.seed.to_string()),
        ]
    }

    /// `[n, h, w, c]` of rows of `x`: square frames of the frozen part's channels.
    fn frame(&self, x: &Matrix) -> Result<[usize; 4]> {
        let c = self.trainer.frozen_channels().expect("some blocks are frozen");
        let hw = x.cols() / c;
        let h = (hw as f64).sqrt().round() as usize;
        if !x.cols().is_multiple_of(c) || h * h != hw || h == 0 {
            return Err(Error::shape("frozen-feature columns (h·w·channels, square)", format!("h·h·{c}"), x.cols()));
        }
        Ok([x.rows(), h, h, c])
    }

    fn step(&mut self, x: &[f32], shape: [usize; 4], y: &[u32]) -> Result<()> {
        let labels: Vec<usize> = y.iter().map(|&l| l as usize).collect();
        self.trainer.train_step_from_frozen(x, shape, &labels).map_err(err)?;
        Ok(())
    }

    fn check_classes(&self, n_classes: usize) -> Result<()> {
        if n_classes != self.params.classes {
            return Err(Error::param("classes", format!("the head has {} outputs, not {n_classes}", self.params.classes)));
        }
        Ok(())
    }

    /// Logits and pooled features of every row, in chunks.
    fn forward(&self, x: &Matrix) -> Result<(Vec<f32>, Vec<f32>)> {
        let [n, h, w, c] = self.frame(x)?;
        let per = h * w * c;
        let (mut logits, mut pooled) = (Vec::with_capacity(n * self.params.classes), Vec::with_capacity(n * FEATURE_DIM));
        for chunk in x.as_slice().chunks(PREDICT_CHUNK * per) {
            let (l, p) = self.trainer.predict_from_frozen(chunk, [chunk.len() / per, h, w, c]).map_err(err)?;
            logits.extend(l);
            pooled.extend(p);
        }
        Ok((logits, pooled))
    }

    /// Softmax of logits `[n, classes]`, in place, returned.
    fn softmax_rows(mut z: Vec<f32>, classes: usize) -> Vec<f32> {
        crate::softmax::softmax_rows(&mut z, classes);
        z
    }


    /// Head logits of pooled features `[n, 1280]`.
    fn head(&self, pooled: &[f32]) -> Vec<f32> {
        let (w, b) = self.trainer.head();
        let k = self.params.classes;
        let mut out = Vec::with_capacity(pooled.len() / FEATURE_DIM * k);
        for f in pooled.chunks_exact(FEATURE_DIM) {
            for c in 0..k {
                let row = &w[c * FEATURE_DIM..(c + 1) * FEATURE_DIM];
                out.push(b[c] + row.iter().zip(f).map(|(a, b)| a * b).sum::<f32>());
            }
        }
        out
    }
}

impl Learner for EfficientNetLearner {
    fn name(&self) -> &str {
        "efficientnet-lite0"
    }

    /// `epochs` passes over the labels in seeded random minibatches, from the current weights.
    fn fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()> {
        self.check_classes(n_classes)?;
        if x.rows() != y.len() || x.rows() == 0 {
            return Err(Error::shape("labels", x.rows(), y.len()));
        }
        let [_, h, w, c] = self.frame(x)?;
        let per = h * w * c;
        let mut order: Vec<usize> = (0..x.rows()).collect();
        for _ in 0..self.params.epochs {
            order.sort_unstable();
            order.shuffle(&mut seeded_rng(self.params.seed, SHUFFLE_STREAM + self.epochs_done));
            for batch in order.chunks(self.params.batch_size) {
                let mut bx = Vec::with_capacity(batch.len() * per);
                let mut by = Vec::with_capacity(batch.len());
                for &i in batch {
                    bx.extend_from_slice(x.row(i));
                    by.push(y[i]);
                }
                self.step(&bx, [batch.len(), h, w, c], &by)?;
            }
            self.epochs_done += 1;
        }
        Ok(())
    }

    /// One SGD step on exactly this batch.
    fn partial_fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()> {
        self.check_classes(n_classes)?;
        if x.rows() != y.len() || x.rows() == 0 {
            return Err(Error::shape("online minibatch labels", x.rows(), y.len()));
        }
        let shape = self.frame(x)?;
        self.step(x.as_slice(), shape, y)
    }

    fn predicts_unfitted(&self) -> bool {
        true
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Probabilities> {
        let (logits, _) = self.forward(x)?;
        Probabilities::new(Self::softmax_rows(logits, self.params.classes), x.rows(), self.params.classes)
    }

    /// A [`Checkpoint`] of kind `efficientnet-lite0`: the settings of [`FineTuneParams`]
    /// (`classes`, `train_blocks`, `epochs`, `batch_size`, `lr`, `dropout`, `seed`), every trained
    /// tensor with its momentum buffer and the step counter (the trainer's state, see
    /// `effnet_train/state.rs`), and the `epochs_done` counter (it keys the shuffles).
    fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut ck = Checkpoint::new(self.name());
        for (key, value) in self.settings_list() {
            ck.set(key, value);
        }
        self.trainer.write_state(&mut ck);
        ck.put_count("epochs_done", self.epochs_done);
        Ok(ck.to_bytes())
    }

    /// Continues from a checkpoint of a learner with the same settings (on the same pretrained
    /// weights); nothing changes unless all of it reads.
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Err(err("empty checkpoint: the state before the first fit is the pretrained weights (load the learner again)"));
        }
        let ck = Checkpoint::parse_of(bytes, self.name(), self.name())?;
        for (key, value) in self.settings_list() {
            ck.expect(key, value)?;
        }
        let epochs = ck.count("epochs_done")?;
        self.trainer.read_state(&ck)?;
        self.epochs_done = epochs;
        Ok(())
    }

    fn boxed_clone(&self) -> Box<dyn Learner> {
        Box::new(EfficientNetLearner { trainer: self.trainer.clone(), params: self.params.clone(), epochs_done: self.epochs_done })
    }

    /// The pooled 1280-d features the head reads.
    fn embed(&self, x: &Matrix) -> Result<Matrix> {
        let (_, pooled) = self.forward(x)?;
        Matrix::new(pooled, x.rows(), FEATURE_DIM)
    }

    fn gradient_embedding(&self, x: &Matrix) -> Result<Matrix> {
        let (logits, pooled) = self.forward(x)?;
        let k = self.params.classes;
        let p = Self::softmax_rows(logits, k);
        let mut out = Vec::with_capacity(x.rows() * k * FEATURE_DIM);
        for (probs, f) in p.chunks_exact(k).zip(pooled.chunks_exact(FEATURE_DIM)) {
            let top = (0..k).fold(0, |b, c| if probs[c] > probs[b] { c } else { b });
            for (c, &pc) in probs.iter().enumerate() {
                let g = pc - (c == top) as u8 as f32;
                out.extend(f.iter().map(|v| g * v));
            }
        }
        Matrix::new(out, x.rows(), k * FEATURE_DIM)
    }

    /// `draws` passes of the head over the pooled features with fresh dropout masks (inverted
    /// dropout at the trained rate), seeded.
    fn mc_samples(&self, x: &Matrix, draws: usize, seed: u64) -> Result<McSamples> {
        let rate = self.params.dropout;
        if rate <= 0.0 {
            return Err(Error::param("dropout", "MC dropout needs a dropout rate above 0"));
        }
        let (_, pooled) = self.forward(x)?;
        let mut rng = seeded_rng(seed, MC_STREAM);
        let keep = 1.0 / (1.0 - rate);
        let mut data = Vec::with_capacity(draws * x.rows() * self.params.classes);
        for _ in 0..draws {
            let dropped: Vec<f32> = pooled.iter().map(|&v| if rng.random::<f32>() < rate { 0.0 } else { v * keep }).collect();
            data.extend(Self::softmax_rows(self.head(&dropped), self.params.classes));
        }
        McSamples::new(data, draws, x.rows(), self.params.classes)
    }
}
