//! The trained weights as a safetensors checkpoint under the original names.

use super::layer::ConvBn;
use super::EfficientNetTrainer;
use crate::efficientnet::{EfficientNetError, FEATURE_DIM};
use std::path::Path;

impl EfficientNetTrainer {
    /// The model's weights as a safetensors file under the checkpoint's names (convolutions, batch
    /// norms with their running statistics, and the head as `_fc.weight` `[classes, 1280]` /
    /// `_fc.bias`). With a 1000-class head it loads into [`crate::EfficientNetLite0`]; with
    /// [`Head::Pretrained`](super::Head::Pretrained) into a new trainer. An export, not a resume point: momentum
    /// buffers and the step count are not saved (the learner's checkpoint, `state.rs`, has them).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>, EfficientNetError> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut layer = |l: &ConvBn| {
            let shape = l.kind.weight_shape();
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
}
