//! A small dense network with a hand-written backward pass, for the learned strategies.
//!
//! [`Mlp`] is a stack of fully connected layers with ReLU between them and a linear output;
//! every layer runs on a whole minibatch through quarry's GEMM wrapper,
//! [`quarry_core::linalg::gemm`] (row-major `[n, in]` · `[in, out]`). [`Mlp::forward`] keeps each
//! layer's input on a [`Tape`]; [`Mlp::backward`] turns the gradient of the loss w.r.t. the output
//! into parameter gradients ([`Grads`]) and, on request, the gradient w.r.t. the input (so one
//! network's input gradient can flow into another, as the VAE's encoder needs). [`Adam`] (Kingma
//! & Ba 2015) updates the parameters.
//!
//! Single-threaded and driven only by the rng it is given, so a seed fixes every number.

use quarry_core::QuarryRng;
use quarry_core::linalg::{self, View};
use rand::Rng;

/// How a layer's weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Init {
    /// He et al. 2015: N(0, 2 / fan_in), for layers followed by a ReLU.
    He,
    /// Glorot & Bengio 2010: U(±√(6 / (fan_in + fan_out))), for the linear output layer.
    Xavier,
}

/// One fully connected layer: `y = x·W + b`, `W` row-major `[n_in, n_out]`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
}

impl Linear {
    pub(crate) fn new(n_in: usize, n_out: usize, init: Init, rng: &mut QuarryRng) -> Self {
        let w = match init {
            Init::He => {
                let std = (2.0 / n_in.max(1) as f64).sqrt();
                (0..n_in * n_out).map(|_| (normal(rng) * std) as f32).collect()
            }
            Init::Xavier => {
                let a = (6.0 / (n_in + n_out).max(1) as f64).sqrt();
                (0..n_in * n_out).map(|_| rng.random_range(-a..a) as f32).collect()
            }
        };
        Linear { w, b: vec![0.0; n_out], n_in, n_out }
    }
}

/// A standard normal draw (Box–Muller), from `rng` only.
pub(crate) fn normal(rng: &mut QuarryRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Fills `out` with standard normal draws (Box–Muller, both values of each pair), from `rng` only.
pub(crate) fn fill_normal(rng: &mut QuarryRng, out: &mut [f32]) {
    for pair in out.chunks_mut(2) {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        pair[0] = (r * c) as f32;
        if let Some(v) = pair.get_mut(1) {
            *v = (r * s) as f32;
        }
    }
}

/// The logistic function.
pub(crate) fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Binary cross-entropy of `sigmoid(logit)` against `target ∈ {0, 1}`, computed stably, and its
/// derivative w.r.t. the logit (`sigmoid(logit) − target`).
pub(crate) fn bce_with_logit(logit: f32, target: f32) -> (f32, f32) {
    // −[t ln σ(z) + (1 − t) ln(1 − σ(z))] = max(z, 0) − t·z + ln(1 + e^{−|z|})
    let loss = logit.max(0.0) - target * logit + (-logit.abs()).exp().ln_1p();
    (loss, sigmoid(logit) - target)
}

/// `c[m, n] = a[m, k] · b[k, n] + beta · c`, where `a` is read transposed from a row-major
/// `[k, m]` buffer when `a_t`, and `b` from a row-major `[n, k]` buffer when `b_t`.
#[allow(clippy::too_many_arguments)]
fn gemm(m: usize, k: usize, n: usize, a: &[f32], a_t: bool, b: &[f32], b_t: bool, beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm operand sizes");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // Scaled here, as always (a NaN times 0 stays NaN), not overwritten at beta = 0 as the
        // wrapper would.
        c[..m * n].iter_mut().for_each(|v| *v *= beta);
        return;
    }
    let a = if a_t { View::transposed(a, m) } else { View::rows(a, k) };
    let b = if b_t { View::transposed(b, k) } else { View::rows(b, n) };
    linalg::gemm(m, k, n, a, b, beta, c);
}

/// Dense layers with ReLU between them and a linear output.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    pub(crate) layers: Vec<Linear>,
}

/// What [`Mlp::forward`] keeps for the backward pass: the input of every layer.
pub(crate) struct Tape {
    n: usize,
    inputs: Vec<Vec<f32>>,
}

/// Parameter gradients (or Adam moments), one `(dW, db)` per layer.
#[derive(Debug, Clone)]
pub(crate) struct Grads {
    pub(crate) layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Grads {
    pub(crate) fn zeros_like(net: &Mlp) -> Self {
        Grads { layers: net.layers.iter().map(|l| (vec![0.0; l.w.len()], vec![0.0; l.b.len()])).collect() }
    }
    pub(crate) fn zero(&mut self) {
        for (w, b) in &mut self.layers {
            w.iter_mut().for_each(|v| *v = 0.0);
            b.iter_mut().for_each(|v| *v = 0.0);
        }
    }
}

impl Mlp {
    /// Layers `sizes[0] → sizes[1] → … → sizes.last()`, He-initialized where a ReLU follows and
    /// Xavier-initialized at the output, biases 0.
    pub(crate) fn new(sizes: &[usize], rng: &mut QuarryRng) -> Self {
        assert!(sizes.len() >= 2, "a network needs an input and an output size");
        let last = sizes.len() - 2;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| Linear::new(w[0], w[1], if l == last { Init::Xavier } else { Init::He }, rng))
            .collect();
        Mlp { layers }
    }

    pub(crate) fn n_in(&self) -> usize {
        self.layers[0].n_in
    }
    pub(crate) fn n_out(&self) -> usize {
        self.layers.last().expect("at least one layer").n_out
    }

    /// The output `[n, n_out]` of `n` rows `x` (`[n, n_in]`), and the tape for [`Mlp::backward`].
    pub(crate) fn forward(&self, x: &[f32], n: usize) -> (Vec<f32>, Tape) {
        assert_eq!(x.len(), n * self.n_in(), "input rows");
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut cur = x.to_vec();
        for (l, layer) in self.layers.iter().enumerate() {
            let mut y = vec![0.0f32; n * layer.n_out];
            gemm(n, layer.n_in, layer.n_out, &cur, false, &layer.w, false, 0.0, &mut y);
            for row in y.chunks_exact_mut(layer.n_out) {
                row.iter_mut().zip(&layer.b).for_each(|(v, b)| *v += b);
            }
            if l + 1 < self.layers.len() {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            inputs.push(std::mem::replace(&mut cur, y));
        }
        (cur, Tape { n, inputs })
    }

    /// The output only, in chunks of at most 1,024 rows so memory stays bounded on large pools.
    pub(crate) fn predict(&self, x: &[f32], n: usize) -> Vec<f32> {
        let d = self.n_in();
        let mut out = Vec::with_capacity(n * self.n_out());
        for chunk in x.chunks(1024 * d.max(1)) {
            out.extend(self.forward(chunk, chunk.len() / d.max(1)).0);
        }
        out
    }

    /// Backpropagates `dout` (∂loss/∂output, `[n, n_out]`) through the taped forward pass:
    /// adds the parameter gradients to `grads` when given, and returns ∂loss/∂input when `want_input`.
    pub(crate) fn backward(&self, tape: &Tape, dout: Vec<f32>, mut grads: Option<&mut Grads>, want_input: bool) -> Option<Vec<f32>> {
        let n = tape.n;
        assert_eq!(dout.len(), n * self.n_out(), "output gradient rows");
        let mut dy = dout;
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let input = &tape.inputs[l];
            if let Some(g) = grads.as_deref_mut() {
                let (gw, gb) = &mut g.layers[l];
                gemm(layer.n_in, n, layer.n_out, input, true, &dy, false, 1.0, gw);
                for row in dy.chunks_exact(layer.n_out) {
                    gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
                }
            }
            if l == 0 && !want_input {
                return None;
            }
            let mut dx = vec![0.0f32; n * layer.n_in];
            gemm(n, layer.n_out, layer.n_in, &dy, false, &layer.w, true, 0.0, &mut dx);
            if l > 0 {
                // The input of layer l is ReLU(pre-activation of layer l−1): pass the gradient
                // only where it was positive.
                dx.iter_mut().zip(input).for_each(|(g, &a)| *g = if a > 0.0 { *g } else { 0.0 });
            }
            dy = dx;
        }
        Some(dy)
    }
}

/// Adam with bias correction; keeps its moments for one network.
pub(crate) struct Adam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    t: i32,
    m: Grads,
    v: Grads,
}

impl Adam {
    /// β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    pub(crate) fn new(net: &Mlp, lr: f32) -> Self {
        Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, t: 0, m: Grads::zeros_like(net), v: Grads::zeros_like(net) }
    }

    /// One update of `net` with `grads`.
    pub(crate) fn step(&mut self, net: &mut Mlp, grads: &Grads) {
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        let (b1, b2, eps, lr) = (self.beta1, self.beta2, self.eps, self.lr);
        let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        };
        for (l, layer) in net.layers.iter_mut().enumerate() {
            let (gw, gb) = &grads.layers[l];
            let (mw, mb) = &mut self.m.layers[l];
            let (vw, vb) = &mut self.v.layers[l];
            update(&mut layer.w, gw, mw, vw);
            update(&mut layer.b, gb, mb, vb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_core::seeded_rng;

    /// L = Σᵢ BCE(σ(out[i,0]), yᵢ) + Σᵢ rᵢ·out[i,1], accumulated in f64.
    fn loss(net: &Mlp, x: &[f32], n: usize, y: &[f32], r: &[f32]) -> f64 {
        let out = net.forward(x, n).0;
        (0..n).map(|i| bce_with_logit(out[2 * i], y[i]).0 as f64 + (r[i] * out[2 * i + 1]) as f64).sum()
    }

    /// The backward pass (parameter and input gradients) matches central finite differences.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = seeded_rng(7, 0);
        let net = Mlp::new(&[3, 6, 5, 2], &mut rng);
        let n = 5;
        let x: Vec<f32> = (0..n * 3).map(|_| normal(&mut rng) as f32).collect();
        let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
        let r: Vec<f32> = (0..n).map(|_| normal(&mut rng) as f32).collect();

        let (out, tape) = net.forward(&x, n);
        let mut dout = vec![0.0; n * 2];
        for i in 0..n {
            dout[2 * i] = bce_with_logit(out[2 * i], y[i]).1;
            dout[2 * i + 1] = r[i];
        }
        let mut grads = Grads::zeros_like(&net);
        let dx = net.backward(&tape, dout, Some(&mut grads), true).unwrap();

        let h = 1e-2f32;
        let close = |analytic: f32, numeric: f64, what: &str| {
            let tol = 2e-3 * (1.0 + numeric.abs());
            assert!((analytic as f64 - numeric).abs() < tol, "{what}: backward {analytic}, finite difference {numeric}");
        };
        let mut checked = 0;
        for l in 0..net.layers.len() {
            for which in 0..2 {
                let len = if which == 0 { net.layers[l].w.len() } else { net.layers[l].b.len() };
                for p in 0..len {
                    let mut plus = net.clone();
                    let mut minus = net.clone();
                    if which == 0 {
                        plus.layers[l].w[p] += h;
                        minus.layers[l].w[p] -= h;
                    } else {
                        plus.layers[l].b[p] += h;
                        minus.layers[l].b[p] -= h;
                    }
                    let numeric = (loss(&plus, &x, n, &y, &r) - loss(&minus, &x, n, &y, &r)) / (2.0 * h as f64);
                    let analytic = if which == 0 { grads.layers[l].0[p] } else { grads.layers[l].1[p] };
                    close(analytic, numeric, &format!("layer {l} {} {p}", if which == 0 { "w" } else { "b" }));
                    checked += 1;
                }
            }
        }
        for p in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[p] += h;
            xm[p] -= h;
            let numeric = (loss(&net, &xp, n, &y, &r) - loss(&net, &xm, n, &y, &r)) / (2.0 * h as f64);
            close(dx[p], numeric, &format!("input {p}"));
        }
        assert_eq!(checked, 3 * 6 + 6 + 6 * 5 + 5 + 5 * 2 + 2);
        // The gradients are not trivially zero.
        assert!(grads.layers[0].0.iter().any(|g| g.abs() > 1e-3));
    }

    #[test]
    fn adam_fits_a_line() {
        let mut rng = seeded_rng(1, 0);
        let mut net = Mlp::new(&[1, 16, 1], &mut rng);
        let mut adam = Adam::new(&net, 1e-2);
        let x: Vec<f32> = (0..32).map(|i| i as f32 / 16.0 - 1.0).collect();
        let mut grads = Grads::zeros_like(&net);
        let mse = |net: &Mlp| net.forward(&x, 32).0.iter().zip(&x).map(|(p, x)| (p - 3.0 * x) * (p - 3.0 * x)).sum::<f32>() / 32.0;
        let before = mse(&net);
        for _ in 0..300 {
            let (out, tape) = net.forward(&x, 32);
            let dout: Vec<f32> = out.iter().zip(&x).map(|(p, x)| 2.0 * (p - 3.0 * x) / 32.0).collect();
            grads.zero();
            net.backward(&tape, dout, Some(&mut grads), false);
            adam.step(&mut net, &grads);
        }
        let after = mse(&net);
        assert!(after < 0.01 * before && after < 0.02, "mse {before} → {after}");
    }

    #[test]
    fn bce_is_stable_and_sigmoid_symmetric() {
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
        assert!((sigmoid(3.0) + sigmoid(-3.0) - 1.0).abs() < 1e-6);
        let (l, g) = bce_with_logit(-100.0, 1.0);
        assert!((l - 100.0).abs() < 1e-3 && (g + 1.0).abs() < 1e-6);
        let (l, _) = bce_with_logit(100.0, 1.0);
        assert!(l.abs() < 1e-6);
    }
}
