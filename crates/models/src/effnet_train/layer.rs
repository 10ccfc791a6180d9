//! A trainable tensor, and a convolution + batch norm + ReLU6 layer of the checkpoint.

use super::BN_EPS;
use super::kernels::ConvGeometry;
use crate::efficientnet::{EfficientNetError, VarBuilder};
use crate::kernels::Activation;

/// A trainable tensor with its gradient and SGD momentum buffer.
#[derive(Clone, Debug)]
pub(super) struct Param {
    pub(super) value: Vec<f32>,
    pub(super) grad: Vec<f32>,
    pub(super) velocity: Vec<f32>,
}

impl Param {
    pub(super) fn new(value: Vec<f32>) -> Self {
        let n = value.len();
        Param {
            value,
            grad: vec![0.0; n],
            velocity: vec![0.0; n],
        }
    }

    /// `torch.optim.SGD`'s step; the gradient is left as it was.
    ///
    /// Not [`crate::nn::Optimizer`]'s SGD, the crate's other momentum SGD: that one adds the weight
    /// decay to the gradient first (`v ← μ·v + (g + λ·θ)`), this one last (`v ← (μ·v + g) + λ·θ`),
    /// which rounds differently, and fine-tuning results (and saved states) were defined with this
    /// order.
    pub(super) fn sgd(&mut self, lr: f32, momentum: f32, weight_decay: f32) {
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
pub(super) enum ConvKind {
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
    /// The weight's shape in the checkpoint (and the layout of [`ConvBn::weight`]).
    pub(super) fn weight_shape(self) -> Vec<usize> {
        match self {
            ConvKind::Stem { cin, cout, k, .. } => vec![cout, cin, k, k],
            ConvKind::Pointwise { cin, cout } => vec![cout, cin, 1, 1],
            ConvKind::Depthwise { c, k, .. } => vec![c, 1, k, k],
        }
    }

    pub(super) fn out_channels(self) -> usize {
        match self {
            ConvKind::Stem { cout, .. } | ConvKind::Pointwise { cout, .. } => cout,
            ConvKind::Depthwise { c, .. } => c,
        }
    }

    pub(super) fn in_channels(self) -> usize {
        match self {
            ConvKind::Stem { cin, .. } | ConvKind::Pointwise { cin, .. } => cin,
            ConvKind::Depthwise { c, .. } => c,
        }
    }

    pub(super) fn output_size(self, h: usize, w: usize) -> (usize, usize) {
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
pub(super) struct ConvBn {
    /// Checkpoint scope of the convolution, e.g. `_blocks.3._expand_conv` (for messages and saving).
    pub(super) name: String,
    /// Checkpoint scope of the batch norm, e.g. `_blocks.3._bn0`.
    pub(super) bn_name: String,
    pub(super) kind: ConvKind,
    pub(super) weight: Param,
    pub(super) gamma: Param,
    pub(super) beta: Param,
    pub(super) running_mean: Vec<f32>,
    pub(super) running_var: Vec<f32>,
    pub(super) relu6: bool,
}

impl ConvBn {
    pub(super) fn load(
        vb: &VarBuilder<'_>,
        conv: &str,
        bn: &str,
        kind: ConvKind,
        relu6: bool,
    ) -> Result<Self, EfficientNetError> {
        let shape = kind.weight_shape();
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

    pub(super) fn params_mut(&mut self) -> [&mut Param; 3] {
        [&mut self.weight, &mut self.gamma, &mut self.beta]
    }

    /// The weight with the batch norm (running statistics) folded in, and its bias, in f64 as the
    /// inference loader does: for the frozen part's inference kernels.
    pub(super) fn folded(&self) -> (Vec<f32>, Vec<f32>) {
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

    pub(super) fn act(&self) -> Activation {
        if self.relu6 {
            Activation::Relu6
        } else {
            Activation::None
        }
    }
}

/// A trainable MBConv block.
#[derive(Clone, Debug)]
pub(super) struct Block {
    pub(super) expand: Option<ConvBn>,
    pub(super) depthwise: ConvBn,
    pub(super) project: ConvBn,
    pub(super) residual: bool,
}
