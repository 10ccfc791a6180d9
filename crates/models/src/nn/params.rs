//! All parameters of a network in one flat vector, with a named view of each tensor.
//!
//! One flat vector makes the optimizer, the gradient reduction and the checkpoint single loops
//! over one slice; layers hold the [`Range`] of their tensors in it.

use quarry_core::seeded_rng;
use rand::Rng;
use std::ops::Range;

/// One named tensor inside a [`ParamSet`], with PyTorch's name and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// e.g. `conv1.weight`, `fc3.bias`.
    pub name: String,
    pub shape: Vec<usize>,
    /// Where it lies in the flat vector.
    pub range: Range<usize>,
}

/// The flat parameter vector and its tensors, in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSet {
    pub(crate) values: Vec<f32>,
    tensors: Vec<TensorInfo>,
}

/// Builds a [`ParamSet`] one tensor at a time.
#[derive(Default)]
pub(crate) struct ParamBuilder {
    len: usize,
    tensors: Vec<TensorInfo>,
    /// `fan_in` of each tensor, for the initializer.
    fan_in: Vec<usize>,
}

impl ParamBuilder {
    /// Reserves a tensor and returns its range.
    pub fn add(&mut self, name: &str, shape: &[usize], fan_in: usize) -> Range<usize> {
        let len: usize = shape.iter().product();
        let range = self.len..self.len + len;
        self.len += len;
        self.tensors.push(TensorInfo { name: name.to_string(), shape: shape.to_vec(), range: range.clone() });
        self.fan_in.push(fan_in);
        range
    }

    /// PyTorch's default initialization of `Conv2d` and `Linear`: weights by
    /// `kaiming_uniform_(a = √5)` and biases alike, which both come to U(−1/√fan_in, 1/√fan_in).
    /// Tensors are filled in order from one seeded stream.
    pub fn init(self, seed: u64) -> ParamSet {
        let mut rng = seeded_rng(seed, INIT_STREAM);
        let mut values = vec![0f32; self.len];
        for (t, &fan_in) in self.tensors.iter().zip(&self.fan_in) {
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            for v in &mut values[t.range.clone()] {
                *v = rng.random_range(-bound..bound);
            }
        }
        ParamSet { values, tensors: self.tensors }
    }
}

/// The RNG stream of weight initialization (others: shuffling, dropout).
const INIT_STREAM: u64 = 0x1417;

impl ParamSet {
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    /// The values of tensor `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.tensors.iter().find(|t| t.name == name).map(|t| &self.values[t.range.clone()])
    }
    /// Every value, in tensor order.
    pub fn as_slice(&self) -> &[f32] {
        &self.values
    }
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.values
    }
}
