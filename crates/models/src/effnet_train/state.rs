//! A fine-tuning run's resume point.
//!
//! [`EfficientNetTrainer::state_bytes`] saves what training changes — every trainable tensor with
//! its SGD momentum buffer, the trainable batch norms' running statistics, the head, and the step
//! counter — as safetensors under the checkpoint's names (`<tensor>` and `<tensor>.velocity`);
//! [`EfficientNetTrainer::load_state`] puts it back into a trainer built from the same pretrained
//! weights with the same settings, so a resumed run continues exactly. The frozen part never
//! changes and is not saved.

use super::{ConvBn, EfficientNetTrainer, Param};
use crate::efficientnet::EfficientNetError;
use safetensors::SafeTensors;

const STEPS_KEY: &str = "steps";

/// One saved tensor: its name and a view of its values.
type Named<'a> = (String, &'a [f32]);

impl ConvBn {
    fn saved(&self) -> Vec<Named<'_>> {
        let mut v = Vec::new();
        for (name, p) in [
            (format!("{}.weight", self.name), &self.weight),
            (format!("{}.weight", self.bn_name), &self.gamma),
            (format!("{}.bias", self.bn_name), &self.beta),
        ] {
            v.push((format!("{name}.velocity"), &p.velocity[..]));
            v.push((name, &p.value[..]));
        }
        v.push((format!("{}.running_mean", self.bn_name), &self.running_mean[..]));
        v.push((format!("{}.running_var", self.bn_name), &self.running_var[..]));
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
        for (name, p) in [("_fc.weight", &self.fc_weight), ("_fc.bias", &self.fc_bias)] {
            v.push((format!("{name}.velocity"), &p.velocity[..]));
            v.push((name.to_string(), &p.value[..]));
        }
        v
    }

    /// The training state as safetensors bytes (see the module documentation).
    pub fn state_bytes(&self) -> Result<Vec<u8>, EfficientNetError> {
        let bytes: Vec<(String, Vec<u8>, usize)> =
            self.saved().into_iter().map(|(n, v)| (n, v.iter().flat_map(|x| x.to_le_bytes()).collect(), v.len())).collect();
        let views = bytes
            .iter()
            .map(|(name, data, len)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*len], data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| EfficientNetError::Format { path: name.clone(), reason: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = std::collections::HashMap::from([(STEPS_KEY.to_string(), self.steps.to_string())]);
        safetensors::serialize(views, Some(meta))
            .map_err(|e| EfficientNetError::Format { path: "(trainer state)".into(), reason: e.to_string() })
    }

    /// Restores [`Self::state_bytes`] of a trainer with the same architecture, frozen blocks and
    /// head; `label` names the state in errors, which name the tensor and both shapes. Nothing is
    /// changed unless every tensor is present with the right shape.
    pub fn load_state(&mut self, bytes: &[u8], label: &str) -> Result<(), EfficientNetError> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| EfficientNetError::Format { path: label.to_string(), reason: e.to_string() })?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| EfficientNetError::Format { path: label.to_string(), reason: e.to_string() })?;
        let steps = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(STEPS_KEY))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| EfficientNetError::Format { path: label.to_string(), reason: format!("metadata `{STEPS_KEY}` missing") })?;
        // Check everything first, so a bad state leaves the trainer as it was.
        let mut values = Vec::new();
        for (name, current) in self.saved() {
            let t = tensors
                .tensor(&name)
                .map_err(|_| EfficientNetError::MissingTensor { path: label.to_string(), name: name.clone() })?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(EfficientNetError::TensorDtype { path: label.to_string(), name, dtype: format!("{:?}", t.dtype()) });
            }
            if t.shape() != [current.len()] {
                return Err(EfficientNetError::TensorShape {
                    path: label.to_string(),
                    name,
                    expected: vec![current.len()],
                    found: t.shape().to_vec(),
                });
            }
            let v: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            values.push(v);
        }
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
