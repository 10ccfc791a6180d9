//! First-order optimizers over a flat parameter vector, with PyTorch's update rules (so that a
//! learning rate means the same here as in `torch.optim`). This is the crate's one Adam (LeNet-5,
//! the MLP, and the experiment crate's synthetic-data MLP use it). EfficientNet fine-tuning keeps its
//! own momentum SGD step (`effnet_train`'s `Param::sgd`), which adds the weight decay in another
//! order and so rounds differently.

use quarry_core::{Error, Result};

/// Which optimizer and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// `torch.optim.SGD`: `v ← μ·v + (g + λ·θ)`, `θ ← θ − lr·v` (no dampening, no Nesterov).
    Sgd { lr: f32, momentum: f32, weight_decay: f32 },
    /// `torch.optim.Adam`: bias-corrected moments, `θ ← θ − lr·m̂ / (√v̂ + ε)`, L2 `weight_decay`
    /// added to the gradient.
    Adam { lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32 },
}

impl OptimizerKind {
    /// SGD with momentum, no weight decay.
    pub fn sgd(lr: f32, momentum: f32) -> Self {
        OptimizerKind::Sgd { lr, momentum, weight_decay: 0.0 }
    }
    /// Adam with PyTorch's defaults (β = 0.9, 0.999; ε = 1e-8), no weight decay.
    pub fn adam(lr: f32) -> Self {
        OptimizerKind::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
    /// The name used in checkpoints.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd { .. } => "sgd",
            OptimizerKind::Adam { .. } => "adam",
        }
    }
    /// Names of the per-parameter state buffers, as PyTorch's `state_dict` calls them.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd { .. } => &["momentum_buffer"],
            OptimizerKind::Adam { .. } => &["exp_avg", "exp_avg_sq"],
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let positive = |name: &str, v: f32| {
            if v > 0.0 && v.is_finite() { Ok(()) } else { Err(Error::param(name, format!("must be a positive number, got {v}"))) }
        };
        let unit = |name: &str, v: f32| {
            if (0.0..1.0).contains(&v) { Ok(()) } else { Err(Error::param(name, format!("must be in [0, 1), got {v}"))) }
        };
        let non_negative = |name: &str, v: f32| {
            if v >= 0.0 && v.is_finite() { Ok(()) } else { Err(Error::param(name, format!("must be ≥ 0, got {v}"))) }
        };
        match *self {
            OptimizerKind::Sgd { lr, momentum, weight_decay } => {
                positive("learning rate", lr)?;
                unit("momentum", momentum)?;
                non_negative("weight decay", weight_decay)
            }
            OptimizerKind::Adam { lr, beta1, beta2, eps, weight_decay } => {
                positive("learning rate", lr)?;
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                positive("eps", eps)?;
                non_negative("weight decay", weight_decay)
            }
        }
    }
}

/// An optimizer with its state: one buffer per name in [`OptimizerKind::state_names`], each as
/// long as the parameter vector, and the number of steps taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub(crate) state: Vec<Vec<f32>>,
    pub(crate) steps: u64,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, n_params: usize) -> Self {
        Optimizer { kind, state: vec![vec![0.0; n_params]; kind.state_names().len()], steps: 0 }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update of `params` with gradient `grads`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        self.steps += 1;
        match self.kind {
            OptimizerKind::Sgd { lr, momentum, weight_decay } => {
                let v = &mut self.state[0];
                for ((p, &g), v) in params.iter_mut().zip(grads).zip(v.iter_mut()) {
                    let g = g + weight_decay * *p;
                    *v = momentum * *v + g;
                    *p -= lr * *v;
                }
            }
            OptimizerKind::Adam { lr, beta1, beta2, eps, weight_decay } => {
                let t = self.steps as i32;
                let step_size = lr / (1.0 - beta1.powi(t));
                let inv_sqrt_bc2 = 1.0 / (1.0 - beta2.powi(t)).sqrt();
                let (m, v) = self.state.split_at_mut(1);
                for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m[0].iter_mut()).zip(v[0].iter_mut()) {
                    let g = g + weight_decay * *p;
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    *p -= step_size * *m / (v.sqrt() * inv_sqrt_bc2 + eps);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two SGD steps by hand: v₁ = g, θ₁ = θ₀ − lr·g; v₂ = μ·g + g, θ₂ = θ₁ − lr·v₂.
    #[test]
    fn sgd_momentum_by_hand() {
        let mut opt = Optimizer::new(OptimizerKind::sgd(0.1, 0.9), 1);
        let mut p = [1.0f32];
        opt.step(&mut p, &[2.0]);
        assert!((p[0] - 0.8).abs() < 1e-6);
        opt.step(&mut p, &[2.0]);
        assert!((p[0] - (0.8 - 0.1 * 3.8)).abs() < 1e-6);
    }

    /// Adam's first step moves every parameter by lr·sign(g) (up to ε).
    #[test]
    fn adam_first_step_is_lr_times_sign() {
        let mut opt = Optimizer::new(OptimizerKind::adam(1e-3), 3);
        let mut p = [0.0f32, 1.0, -1.0];
        opt.step(&mut p, &[0.5, -3.0, 1e-3]);
        let want = [-1e-3, 1.0 + 1e-3, -1.0 - 1e-3];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{p:?}");
        }
        assert_eq!(opt.steps(), 1);
    }

    #[test]
    fn bad_hyper_parameters_are_errors() {
        assert!(OptimizerKind::sgd(0.0, 0.9).check().is_err());
        assert!(OptimizerKind::sgd(0.1, 1.0).check().is_err());
        assert!(OptimizerKind::adam(f32::NAN).check().is_err());
        assert!(OptimizerKind::adam(1e-3).check().is_ok());
    }
}
