//! A fine-tuning run's resume point, inside the learner's [`Checkpoint`].
//!
//! [`EfficientNetTrainer::write_state`] saves what training changes — every trainable tensor under
//! the pretrained checkpoint's name and shape (`_blocks.15._project_conv.weight` `[320, 1152, 1,
//! 1]`, `_bn1.weight` `[1280]`, …) with its SGD momentum buffer as
//! `optimizer.momentum_buffer.<name>` (PyTorch's name), the trainable batch norms' running
//! statistics, the new head `_fc.weight` `[classes, 1280]` / `_fc.bias`, and the step counter
//! `optimizer.step` (it keys the dropout masks); [`EfficientNetTrainer::read_state`] puts it back
//! into a trainer built from the same pretrained weights with the same settings, so a resumed run
//! continues exactly. The frozen part never changes and is not saved.

use super::{ConvBn, EfficientNetTrainer, Param};
use crate::checkpoint::Checkpoint;
use crate::efficientnet::FEATURE_DIM;
use quarry_core::Result;

/// The name of a tensor's momentum buffer.
fn momentum(name: &str) -> String {
    format!("optimizer.momentum_buffer.{name}")
}

/// One saved tensor: its name, shape and values.
type Named<'a> = (String, Vec<usize>, &'a [f32]);

impl ConvBn {
    fn saved(&self) -> Vec<Named<'_>> {
        let c = vec![self.kind.out_channels()];
        let mut v = Vec::new();
        for (name, shape, p) in [
            (format!("{}.weight", self.name), self.kind.weight_shape(), &self.weight),
            (format!("{}.weight", self.bn_name), c.clone(), &self.gamma),
            (format!("{}.bias", self.bn_name), c.clone(), &self.beta),
        ] {
            v.push((momentum(&name), shape.clone(), &p.velocity[..]));
            v.push((name, shape, &p.value[..]));
        }
        v.push((format!("{}.running_mean", self.bn_name), c.clone(), &self.running_mean[..]));
        v.push((format!("{}.running_var", self.bn_name), c, &self.running_var[..]));
        v
    }

    /// The slots [`Self::saved`] reads, in the same order, to write back into.
    fn slots_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut v = Vec::new();
        for p in [&mut self.weight, &mut self.gamma, &mut self.beta] {
            let Param { value, velocity, .. } = p;
            v.push(velocity);
            v.push(value);
        }
        v.push(&mut self.running_mean);
        v.push(&mut self.running_var);
        v
    }
}

impl EfficientNetTrainer {
    fn trainable_layers_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut v: Vec<&mut ConvBn> = self.stem.iter_mut().collect();
        for b in &mut self.blocks {
            v.extend(b.expand.iter_mut());
            v.push(&mut b.depthwise);
            v.push(&mut b.project);
        }
        v.push(&mut self.head_conv);
        v
    }

    fn trainable_layers(&self) -> Vec<&ConvBn> {
        let mut v: Vec<&ConvBn> = self.stem.iter().collect();
        for b in &self.blocks {
            v.extend(b.expand.iter());
            v.push(&b.depthwise);
            v.push(&b.project);
        }
        v.push(&self.head_conv);
        v
    }

    fn saved(&self) -> Vec<Named<'_>> {
        let mut v: Vec<Named<'_>> = self.trainable_layers().into_iter().flat_map(ConvBn::saved).collect();
        for (name, shape, p) in [
            ("_fc.weight", vec![self.classes, FEATURE_DIM], &self.fc_weight),
            ("_fc.bias", vec![self.classes], &self.fc_bias),
        ] {
            v.push((momentum(name), shape.clone(), &p.velocity[..]));
            v.push((name.to_string(), shape, &p.value[..]));
        }
        v
    }

    /// Puts the training state into `ck` (see the module documentation).
    pub(crate) fn write_state(&self, ck: &mut Checkpoint) {
        for (name, shape, values) in self.saved() {
            ck.put_f32(&name, &shape, values);
        }
        ck.put_count("optimizer.step", self.steps);
    }

    /// Restores [`Self::write_state`] of a trainer with the same architecture, frozen blocks and
    /// head; errors name the tensor and both shapes. Nothing is changed unless every tensor is
    /// present with the right shape.
    pub(crate) fn read_state(&mut self, ck: &Checkpoint) -> Result<()> {
        let values = self.saved().into_iter().map(|(name, shape, _)| ck.f32(&name, &shape)).collect::<Result<Vec<_>>>()?;
        let steps = ck.count("optimizer.step")?;
        let mut values = values.into_iter();
        let mut put = |slot: &mut Vec<f32>| {
            *slot = values.next().expect("one value per saved tensor");
        };
        for layer in self.trainable_layers_mut() {
            layer.slots_mut().into_iter().for_each(&mut put);
        }
        for p in [&mut self.fc_weight, &mut self.fc_bias] {
            put(&mut p.velocity);
            put(&mut p.value);
        }
        self.steps = steps;
        Ok(())
    }
}
