//! Building a trainer from a checkpoint: the layers unfolded, the frozen part folded onto the
//! inference kernels, and the head new or pretrained.

use super::buffers::BufferPool;
use super::frozen::{FrozenBlock, FrozenTrunk};
use super::layer::{Block, ConvBn, ConvKind, Param};
use super::params::Head;
use super::{EfficientNetTrainer, STEM_CHANNELS, TrainerParams};
use crate::efficientnet::{EfficientNetError, FEATURE_DIM, INPUT_CHANNELS, NUM_CLASSES, STAGES, VarBuilder};
use crate::kernels::{Activation, DenseConv, DepthwiseConv, PointwiseConv};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::SafeTensors;
use std::path::Path;

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
}
