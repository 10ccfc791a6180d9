//! The whole network's forward pass (with the tape the backward needs) and backward pass.

use super::kernels;
use super::layer_pass::{BnUse, LayerTape, empty_tape, layer_backward, layer_forward, update_running_stats};
use super::params::BatchNormMode;
use super::EfficientNetTrainer;
use crate::efficientnet::{FEATURE_DIM, INPUT_CHANNELS};
use rayon::prelude::*;

/// What a block keeps from the forward pass.
pub(super) struct BlockTape {
    pub(super) expand: Option<LayerTape>,
    pub(super) depthwise: LayerTape,
    /// Its `a` is the block output (residual included).
    pub(super) project: LayerTape,
}

/// Everything the backward pass needs from one forward pass.
pub(super) struct Tape {
    pub(super) n: usize,
    /// The trainable part's input when the stem is frozen (the frozen trunk's NHWC output); empty otherwise.
    pub(super) trunk_in: Vec<f32>,
    pub(super) stem: Option<LayerTape>,
    pub(super) blocks: Vec<BlockTape>,
    pub(super) head: LayerTape,
    /// Pooled features `[n, 1280]`, after dropout, and the dropout multipliers (empty: no dropout).
    pub(super) dropped: Vec<f32>,
    pub(super) mask: Vec<f32>,
    pub(super) logits: Vec<f32>,
}

impl Tape {
    /// The input of trainable block `i`.
    pub(super) fn block_input(&self, i: usize) -> &[f32] {
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
pub(super) enum TrunkInput<'a> {
    /// Normalized NCHW images `[n, 3, h, w]`.
    Images { data: &'a [f32], h: usize, w: usize },
    /// The frozen trunk's NHWC output `[n, h, w, c]` (see [`EfficientNetTrainer::frozen_features`]).
    Frozen { data: &'a [f32], h: usize, w: usize },
}

impl EfficientNetTrainer {
    /// The forward pass from `src` to logits. `train` selects dropout and (with [`BatchNormMode::Train`])
    /// batch statistics; the tape holds what the backward pass needs.
    pub(super) fn forward(&self, src: TrunkInput<'_>, n: usize, train: bool) -> Tape {
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

    /// Hands a tape's large buffers back to the pool.
    pub(super) fn recycle(&self, tape: Tape) {
        let Tape {
            trunk_in,
            stem,
            blocks,
            head,
            ..
        } = tape;
        self.pool.give(trunk_in);
        stem.into_iter().for_each(|t| t.give_to(&self.pool));
        for b in blocks {
            b.expand.into_iter().for_each(|t| t.give_to(&self.pool));
            b.depthwise.give_to(&self.pool);
            b.project.give_to(&self.pool);
        }
        head.give_to(&self.pool);
    }

    pub(super) fn update_running(&mut self, tape: &Tape, momentum: f32) {
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
    pub(super) fn backward(&mut self, tape: &Tape, images: Option<&[f32]>, dlogits: &[f32]) {
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
