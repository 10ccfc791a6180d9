//! The frozen stem and first blocks, run on the BN-folded inference kernels.

use super::STEM_CHANNELS;
use crate::kernels::{DenseConv, DepthwiseConv, PointwiseConv};

/// A frozen MBConv block: BN-folded inference kernels.
#[derive(Clone, Debug)]
pub(super) struct FrozenBlock {
    pub(super) expand: Option<PointwiseConv>,
    pub(super) depthwise: DepthwiseConv,
    pub(super) project: PointwiseConv,
    pub(super) residual: bool,
}

/// The frozen stem and first blocks, as inference kernels.
#[derive(Clone, Debug)]
pub(super) struct FrozenTrunk {
    pub(super) stem: DenseConv,
    pub(super) blocks: Vec<FrozenBlock>,
    pub(super) out_channels: usize,
}

impl FrozenTrunk {
    /// One NCHW image `[3, h, w]` to its NHWC activation `[ho, wo, out_channels]`; returns `(ho, wo)`.
    pub(super) fn forward_image(&self, image: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
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
