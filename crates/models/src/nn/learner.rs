//! [`NetLearner`]: a [`Net`] with its optimizer, as a [`Learner`] of the active-learning loop.

use super::dropout::{MaskKey, Purpose};
use super::net::{Net, NetSpec};
use super::optim::{Optimizer, OptimizerKind};
use crate::logistic::gradient_embedding;
use quarry_core::{Error, Learner, Matrix, McSamples, Probabilities, Result, seeded_rng};
use rand::seq::SliceRandom;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

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

/// The checkpoint's metadata entry: `architecture=…;classes=…;[inputs=…;hidden=…;]optimizer=…;steps=…;epochs=…`.
const META_KEY: &str = "quarry-nn/1";

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

    /// Checkpoint metadata describing the architecture: restoring into a learner whose
    /// architecture differs is an error.
    fn architecture(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("architecture", self.net.spec().name().to_string()), ("classes", self.net.classes().to_string())];
        if let NetSpec::Mlp { inputs, hidden, .. } = self.net.spec() {
            v.push(("inputs", inputs.to_string()));
            v.push(("hidden", hidden.to_string()));
        }
        v.push(("optimizer", self.optimizer.kind.name().to_string()));
        v
    }
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bad_checkpoint(why: impl std::fmt::Display) -> Error {
    Error::Other(format!("neural network checkpoint: {why}"))
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

    /// Safetensors bytes: every parameter under its PyTorch name and shape, the optimizer's
    /// buffers as `optimizer.<buffer>.<parameter>` (PyTorch's buffer names), and in the metadata
    /// entry `quarry-nn/1` the architecture, the optimizer, its step count and the epochs done.
    /// Equal states give equal bytes.
    fn checkpoint(&self) -> Result<Vec<u8>> {
        let params = self.net.params();
        let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for t in params.tensors() {
            owned.push((t.name.clone(), t.shape.clone(), to_bytes(&params.as_slice()[t.range.clone()])));
            for (buf, state) in self.optimizer.kind.state_names().iter().zip(&self.optimizer.state) {
                owned.push((format!("optimizer.{buf}.{}", t.name), t.shape.clone(), to_bytes(&state[t.range.clone()])));
            }
        }
        let views = owned
            .iter()
            .map(|(name, shape, bytes)| Ok((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(bad_checkpoint)?)))
            .collect::<Result<Vec<_>>>()?;
        // One metadata entry with the fields in a fixed order, so that equal states give equal
        // bytes (a map of several entries would be written in hash order).
        let mut fields = self.architecture();
        fields.push(("steps", self.optimizer.steps.to_string()));
        fields.push(("epochs", self.epochs_done.to_string()));
        let line = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";");
        let meta = HashMap::from([(META_KEY.to_string(), line)]);
        safetensors::serialize(views, Some(meta)).map_err(bad_checkpoint)
    }

    /// Continues from a [`Learner::checkpoint`] of a learner with the same architecture and
    /// optimizer (empty bytes: back to the initial weights, as [`NetLearner::reset`]).
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            self.reset();
            return Ok(());
        }
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(bad_checkpoint)?;
        let line = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .ok_or_else(|| bad_checkpoint(format!("no `{META_KEY}` metadata (not a quarry neural network checkpoint)")))?;
        let meta: HashMap<&str, &str> = line.split(';').filter_map(|f| f.split_once('=')).collect();
        let get = |key: &str| meta.get(key).copied().ok_or_else(|| bad_checkpoint(format!("metadata has no `{key}`")));
        for (key, want) in self.architecture() {
            let have = get(key)?;
            if have != want {
                return Err(bad_checkpoint(format!("saved with {key} = {have}, this learner has {want}")));
            }
        }
        let number = |key: &str| get(key)?.parse::<u64>().map_err(|e| bad_checkpoint(format!("`{key}`: {e}")));
        let (steps, epochs) = (number("steps")?, number("epochs")?);
        let st = SafeTensors::deserialize(bytes).map_err(bad_checkpoint)?;
        let mut values = self.net.params().as_slice().to_vec();
        let mut state = self.optimizer.state.clone();
        let read = |name: &str, shape: &[usize], dst: &mut [f32]| -> Result<()> {
            let view = st.tensor(name).map_err(|e| bad_checkpoint(format!("tensor {name}: {e}")))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(bad_checkpoint(format!("tensor {name} is {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape())));
            }
            for (d, b) in dst.iter_mut().zip(view.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            Ok(())
        };
        for t in self.net.params().tensors() {
            read(&t.name, &t.shape, &mut values[t.range.clone()])?;
            for (buf, s) in self.optimizer.kind.state_names().iter().zip(state.iter_mut()) {
                read(&format!("optimizer.{buf}.{}", t.name), &t.shape, &mut s[t.range.clone()])?;
            }
        }
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
