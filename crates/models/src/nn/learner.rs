//! [`NetLearner`]: a [`Net`] with its optimizer, as a [`Learner`] of the active-learning loop.

use super::dropout::{MaskKey, Purpose};
use super::net::{Net, NetSpec};
use super::optim::{Optimizer, OptimizerKind};
use crate::logistic::gradient_embedding;
use quarry_core::{Error, Learner, Matrix, McSamples, Probabilities, Result, seeded_rng};
use crate::checkpoint::Checkpoint;
use rand::seq::SliceRandom;

/// Hyper-parameters of a [`NetLearner`], checked once by [`NetParams::build`].
///
/// ```
/// use quarry_models::nn::{NetParams, OptimizerKind};
/// let learner = NetParams::lenet5(10).dropout(0.5).optimizer(OptimizerKind::adam(1e-3)).batch_size(10).build().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NetParams {
    spec: NetSpec,
    optimizer: OptimizerKind,
    epochs: usize,
    batch_size: usize,
    seed: u64,
}

impl NetParams {
    /// LeNet-5 for 28×28 images with `classes` outputs; no dropout, Adam (lr 1e-3), 1 epoch per
    /// fit, batches of 64, seed 0.
    pub fn lenet5(classes: usize) -> Self {
        Self::with_spec(NetSpec::LeNet5 { classes, dropout: 0.0 })
    }
    /// An MLP `inputs → hidden → classes`, with the same defaults as [`NetParams::lenet5`].
    pub fn mlp(inputs: usize, hidden: usize, classes: usize) -> Self {
        Self::with_spec(NetSpec::Mlp { inputs, hidden, classes, dropout: 0.0 })
    }
    pub fn with_spec(spec: NetSpec) -> Self {
        NetParams { spec, optimizer: OptimizerKind::adam(1e-3), epochs: 1, batch_size: 64, seed: 0 }
    }
    /// Dropout rate in `[0, 1)` (where the architecture places dropout; see [`NetSpec`]).
    pub fn dropout(mut self, p: f32) -> Self {
        match &mut self.spec {
            NetSpec::LeNet5 { dropout, .. } | NetSpec::Mlp { dropout, .. } => *dropout = p,
        }
        self
    }
    pub fn optimizer(mut self, kind: OptimizerKind) -> Self {
        self.optimizer = kind;
        self
    }
    /// Passes over the labeled set per [`Learner::fit`].
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Seeds the initial weights, the shuffles and the training dropout masks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// Checks every setting and initializes the network.
    pub fn build(self) -> Result<NetLearner> {
        self.optimizer.check()?;
        if self.batch_size == 0 {
            return Err(Error::param("batch size", "must be at least 1"));
        }
        let net = Net::new(self.spec, self.seed)?;
        let optimizer = Optimizer::new(self.optimizer, net.params().len());
        Ok(NetLearner { params: self, net, optimizer, epochs_done: 0, scratch: GradScratch::default() })
    }
}

/// Gradient buffers of a training step; not part of the state (a clone starts without them).
#[derive(Debug, Default)]
struct GradScratch {
    partials: Vec<Vec<f32>>,
    grad: Vec<f32>,
    batch_x: Vec<f32>,
    batch_y: Vec<u32>,
}

impl Clone for GradScratch {
    fn clone(&self) -> Self {
        GradScratch::default()
    }
}

/// A neural network learner: trains continuously from its current weights (never re-initialized
/// unless [`NetLearner::reset`] is called) and scores with probabilities, MC-dropout samples,
/// penultimate embeddings and BADGE gradient embeddings.
#[derive(Debug, Clone)]
pub struct NetLearner {
    params: NetParams,
    net: Net,
    optimizer: Optimizer,
    epochs_done: u64,
    scratch: GradScratch,
}

/// RNG streams (the weights' is in `params.rs`).
const SHUFFLE_STREAM: u64 = 0x5_0000_0000;

impl NetLearner {
    pub fn net(&self) -> &Net {
        &self.net
    }
    pub fn net_mut(&mut self) -> &mut Net {
        &mut self.net
    }
    pub fn settings(&self) -> &NetParams {
        &self.params
    }
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }
    /// Epochs completed by [`Learner::fit`] since the last reset.
    pub fn epochs_done(&self) -> u64 {
        self.epochs_done
    }

    /// Back to the initial weights of the seed, with fresh optimizer state and counters.
    pub fn reset(&mut self) {
        // The spec was checked when this learner was built.
        if let Ok(net) = Net::new(self.params.spec, self.params.seed) {
            let isa = self.net.isa();
            self.net = net;
            self.net.set_isa(isa);
        }
        self.optimizer = Optimizer::new(self.params.optimizer, self.net.params().len());
        self.epochs_done = 0;
    }

    /// Exactly one optimizer step on the minibatch `x` `[b, input_dim]`, `y` `[b]` (the online
    /// mode of P2); returns the minibatch's mean loss before the step.
    pub fn train_step(&mut self, x: &Matrix, y: &[u32]) -> Result<f32> {
        if x.cols() != self.net.input_dim() {
            return Err(Error::shape(format!("{} input columns", self.name()), self.net.input_dim(), x.cols()));
        }
        self.step_on(x.as_slice(), y)
    }

    fn step_on(&mut self, x: &[f32], y: &[u32]) -> Result<f32> {
        let key = MaskKey { seed: self.params.seed, purpose: Purpose::Train, counter: self.optimizer.steps() };
        let grad = &mut self.scratch.grad;
        grad.resize(self.net.params().len(), 0.0);
        let loss = self.net.batch_gradient(x, y, key, &mut self.scratch.partials, grad)?;
        self.optimizer.step(self.net.params_mut().as_mut_slice(), grad);
        Ok(loss as f32)
    }

    fn check_rows(&self, x: &Matrix) -> Result<()> {
        if x.cols() != self.net.input_dim() {
            return Err(Error::shape(format!("{} input columns", self.name()), self.net.input_dim(), x.cols()));
        }
        Ok(())
    }

    /// Every setting a continued training reads, as a checkpoint records them: the architecture
    /// (`classes`, and `inputs`, `hidden` for an MLP), `dropout`, the optimizer and its
    /// hyper-parameters, `epochs`, `batch_size` and `seed` (which keys the shuffles and the
    /// dropout masks). A learner restores only a checkpoint of the same settings.
    fn settings_list(&self) -> Vec<(&'static str, String)> {
        let spec = self.net.spec();
        let mut v = vec![("classes", spec.classes().to_string())];
        if let NetSpec::Mlp { inputs, hidden, .. } = *spec {
            v.push(("inputs", inputs.to_string()));
            v.push(("hidden", hidden.to_string()));
        }
        v.push(("dropout", spec.dropout().to_string()));
        v.push(("optimizer", self.optimizer.kind.name().to_string()));
        match self.optimizer.kind {
            OptimizerKind::Sgd { lr, momentum, weight_decay } => {
                v.extend([("lr", lr.to_string()), ("momentum", momentum.to_string()), ("weight_decay", weight_decay.to_string())]);
            }
            OptimizerKind::Adam { lr, beta1, beta2, eps, weight_decay } => v.extend([
                ("lr", lr.to_string()),
                ("beta1", beta1.to_string()),
                ("beta2", beta2.to_string()),
                ("eps", eps.to_string()),
                ("weight_decay", weight_decay.to_string()),
            ]),
        }
        v.push(("epochs", self.params.epochs.to_string()));
        v.push(("batch_size", self.params.batch_size.to_string()));
        v.push(("seed", self.params.seed.to_string()));
        v
    }
}

/// The name of an optimizer buffer of a parameter tensor, as PyTorch's `state_dict` has it.
fn optimizer_tensor(buffer: &str, param: &str) -> String {
    format!("optimizer.{buffer}.{param}")
}

impl Learner for NetLearner {
    fn name(&self) -> &str {
        self.net.spec().name()
    }

    /// `epochs` passes over `(x, y)` in seeded random minibatches (the last one smaller), from
    /// the current weights.
    fn fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()> {
        self.check_rows(x)?;
        if n_classes != self.net.classes() {
            return Err(Error::param(
                "classes",
                format!("this {} has {} outputs but fit was asked for {n_classes} classes (build a new learner)", self.name(), self.net.classes()),
            ));
        }
        if x.rows() != y.len() {
            return Err(Error::shape("labels", x.rows(), y.len()));
        }
        if x.rows() == 0 {
            return Err(Error::param("labeled set", "is empty"));
        }
        let d = self.net.input_dim();
        let mut order: Vec<usize> = (0..x.rows()).collect();
        for _ in 0..self.params.epochs {
            order.sort_unstable();
            order.shuffle(&mut seeded_rng(self.params.seed, SHUFFLE_STREAM + self.epochs_done));
            for batch in order.chunks(self.params.batch_size) {
                let mut bx = std::mem::take(&mut self.scratch.batch_x);
                let mut by = std::mem::take(&mut self.scratch.batch_y);
                bx.clear();
                by.clear();
                for &i in batch {
                    bx.extend_from_slice(&x.as_slice()[i * d..(i + 1) * d]);
                    by.push(y[i]);
                }
                let r = self.step_on(&bx, &by);
                self.scratch.batch_x = bx;
                self.scratch.batch_y = by;
                r?;
            }
            self.epochs_done += 1;
        }
        Ok(())
    }

    /// One optimizer step on exactly this minibatch ([`NetLearner::train_step`]).
    fn partial_fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()> {
        if n_classes != self.net.classes() {
            return Err(Error::param("classes", format!("this {} has {} outputs, not {n_classes}", self.name(), self.net.classes())));
        }
        if x.rows() != y.len() || x.rows() == 0 {
            return Err(Error::shape("online minibatch labels", x.rows(), y.len()));
        }
        self.train_step(x, y).map(|_| ())
    }

    fn predicts_unfitted(&self) -> bool {
        true
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Probabilities> {
        self.check_rows(x)?;
        let mut out = vec![0f32; x.rows() * self.net.classes()];
        self.net.predict_proba_into(x.as_slice(), &mut out)?;
        Probabilities::new(out, x.rows(), self.net.classes())
    }

    /// A [`Checkpoint`] of kind `lenet5` or `mlp`: the settings of
    /// [`NetLearner::settings_list`]; every parameter `F32` under its PyTorch name and shape
    /// (`conv1.weight` `[6, 1, 5, 5]`, `fc1.bias` `[120]`, …), the optimizer's buffers as
    /// `optimizer.<buffer>.<parameter>` (PyTorch's buffer names: `exp_avg`, `exp_avg_sq`,
    /// `momentum_buffer`), and the counters `optimizer.step` and `epochs_done`.
    fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut ck = Checkpoint::new(self.name());
        for (key, value) in self.settings_list() {
            ck.set(key, value);
        }
        let params = self.net.params();
        for t in params.tensors() {
            ck.put_f32(&t.name, &t.shape, &params.as_slice()[t.range.clone()]);
            for (buf, state) in self.optimizer.kind.state_names().iter().zip(&self.optimizer.state) {
                ck.put_f32(&optimizer_tensor(buf, &t.name), &t.shape, &state[t.range.clone()]);
            }
        }
        ck.put_count("optimizer.step", self.optimizer.steps);
        ck.put_count("epochs_done", self.epochs_done);
        Ok(ck.to_bytes())
    }

    /// Continues from a checkpoint of a learner of the same kind and settings; nothing changes
    /// unless all of it reads (empty bytes: back to the initial weights, as [`NetLearner::reset`]).
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            self.reset();
            return Ok(());
        }
        let ck = Checkpoint::parse_of(bytes, self.name(), self.name())?;
        for (key, value) in self.settings_list() {
            ck.expect(key, value)?;
        }
        let mut values = self.net.params().as_slice().to_vec();
        let mut state = self.optimizer.state.clone();
        for t in self.net.params().tensors() {
            values[t.range.clone()].copy_from_slice(&ck.f32(&t.name, &t.shape)?);
            for (buf, s) in self.optimizer.kind.state_names().iter().zip(state.iter_mut()) {
                s[t.range.clone()].copy_from_slice(&ck.f32(&optimizer_tensor(buf, &t.name), &t.shape)?);
            }
        }
        let (steps, epochs) = (ck.count("optimizer.step")?, ck.count("epochs_done")?);
        self.net.params_mut().as_mut_slice().copy_from_slice(&values);
        self.optimizer.state = state;
        self.optimizer.steps = steps;
        self.epochs_done = epochs;
        Ok(())
    }

    fn boxed_clone(&self) -> Box<dyn Learner> {
        Box::new(self.clone())
    }

    /// The penultimate activation (84-d for LeNet-5), dropout off.
    fn embed(&self, x: &Matrix) -> Result<Matrix> {
        self.check_rows(x)?;
        let e = self.net.embed_dim();
        let mut out = vec![0f32; x.rows() * e];
        self.net.embed_into(x.as_slice(), &mut out, None)?;
        Matrix::new(out, x.rows(), e)
    }

    /// BADGE: `(p − onehot(ŷ)) ⊗ embedding`, `[n, classes·embed_dim]`, from one forward pass.
    fn gradient_embedding(&self, x: &Matrix) -> Result<Matrix> {
        self.check_rows(x)?;
        let (n, e, k) = (x.rows(), self.net.embed_dim(), self.net.classes());
        let (mut emb, mut proba) = (vec![0f32; n * e], vec![0f32; n * k]);
        self.net.embed_into(x.as_slice(), &mut emb, Some(&mut proba))?;
        Ok(gradient_embedding(&Probabilities::new(proba, n, k)?, &Matrix::new(emb, n, e)?))
    }

    /// `draws` MC-dropout passes `[draws, n, classes]` (the trunk once, the head `draws` times).
    fn mc_samples(&self, x: &Matrix, draws: usize, seed: u64) -> Result<McSamples> {
        self.check_rows(x)?;
        if draws == 0 {
            return Err(Error::param("MC draws", "must be at least 1"));
        }
        let k = self.net.classes();
        let mut out = vec![0f32; draws * x.rows() * k];
        self.net.mc_samples_into(x.as_slice(), draws, seed, &mut out)?;
        McSamples::new(out, draws, x.rows(), k)
    }
}
