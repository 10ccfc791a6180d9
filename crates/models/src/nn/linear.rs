//! Fully connected layer `y = x·Wᵀ + b`, with `W` `[out, in]` as in PyTorch.

use crate::linalg::{View, gemm};
use super::params::ParamBuilder;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Linear {
    pub inputs: usize,
    pub outputs: usize,
    weight: Range<usize>,
    bias: Range<usize>,
}

impl Linear {
    /// Declares `{name}.weight` `[outputs, inputs]` and `{name}.bias` `[outputs]`.
    pub fn new(params: &mut ParamBuilder, name: &str, inputs: usize, outputs: usize) -> Self {
        let weight = params.add(&format!("{name}.weight"), &[outputs, inputs], inputs);
        let bias = params.add(&format!("{name}.bias"), &[outputs], inputs);
        Linear { inputs, outputs, weight, bias }
    }

    /// `y[rows, out] = x[rows, in]·Wᵀ + b`.
    pub fn forward(&self, p: &[f32], x: &[f32], rows: usize, y: &mut [f32]) {
        let (w, b) = (&p[self.weight.clone()], &p[self.bias.clone()]);
        let y = &mut y[..rows * self.outputs];
        for row in y.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(b);
        }
        gemm(rows, self.inputs, self.outputs, View::rows(x, self.inputs), View::transposed(w, self.inputs), 1.0, y);
    }

    /// Adds this chunk's `dW = dyᵀ·x` and `db = Σ dy` to `grads` (the flat gradient vector) and,
    /// when asked, writes `dx[rows, in] = dy·W`.
    pub fn backward(&self, p: &[f32], grads: &mut [f32], x: &[f32], dy: &[f32], rows: usize, dx: Option<&mut [f32]>) {
        let dy = &dy[..rows * self.outputs];
        gemm(
            self.outputs,
            rows,
            self.inputs,
            View::transposed(dy, self.outputs),
            View::rows(x, self.inputs),
            1.0,
            &mut grads[self.weight.clone()],
        );
        let db = &mut grads[self.bias.clone()];
        for row in dy.chunks_exact(self.outputs) {
            for (g, &d) in db.iter_mut().zip(row) {
                *g += d;
            }
        }
        if let Some(dx) = dx {
            let w = &p[self.weight.clone()];
            gemm(rows, self.outputs, self.inputs, View::rows(dy, self.outputs), View::rows(w, self.inputs), 0.0, dx);
        }
    }
}
