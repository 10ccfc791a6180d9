//! A network = deterministic trunk + fully connected head; chunked, parallel forward and
//! backward passes over it.

use super::conv::Conv2d;
use super::dropout::{MaskKey, Purpose};
use super::linear::Linear;
use crate::softmax::{cross_entropy_rows, softmax_rows};
use super::params::{ParamBuilder, ParamSet};
use super::pool::{Pool, PoolOut};
use crate::kernels::simd::{SimdLevel, simd_level};
use quarry_core::{Error, Result};
use rayon::prelude::*;
use std::cell::RefCell;

/// Samples per unit of parallel work. Fixed (not derived from the thread count) so that
/// gradients are summed in the same order on any machine load: a minibatch of `b` samples is
/// `⌈b / CHUNK⌉` chunks whose partial gradients are added in chunk order.
pub const CHUNK: usize = 16;

/// The architecture of a [`Net`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NetSpec {
    /// LeNet-5 for 28×28 single-channel images (784 inputs); `dropout` (0 for none) before each
    /// of the three fully connected layers, as in the P3 MC-dropout row.
    LeNet5 { classes: usize, dropout: f32 },
    /// `inputs → hidden` (ReLU) `→ classes`, `dropout` before the second layer.
    Mlp { inputs: usize, hidden: usize, classes: usize, dropout: f32 },
}

impl NetSpec {
    pub fn classes(&self) -> usize {
        match *self {
            NetSpec::LeNet5 { classes, .. } | NetSpec::Mlp { classes, .. } => classes,
        }
    }
    pub fn dropout(&self) -> f32 {
        match *self {
            NetSpec::LeNet5 { dropout, .. } | NetSpec::Mlp { dropout, .. } => dropout,
        }
    }
    pub fn input_dim(&self) -> usize {
        match *self {
            NetSpec::LeNet5 { .. } => 28 * 28,
            NetSpec::Mlp { inputs, .. } => inputs,
        }
    }
    /// The short name used by [`quarry_core::Learner::name`] and in checkpoints.
    pub fn name(&self) -> &'static str {
        match self {
            NetSpec::LeNet5 { .. } => "lenet5",
            NetSpec::Mlp { .. } => "mlp",
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.classes() < 2 {
            return Err(Error::param("classes", format!("a classifier needs at least 2 classes, got {}", self.classes())));
        }
        let p = self.dropout();
        if !(0.0..1.0).contains(&p) {
            return Err(Error::param("dropout", format!("must be in [0, 1), got {p}")));
        }
        if let NetSpec::Mlp { inputs, hidden, .. } = *self
            && (inputs == 0 || hidden == 0)
        {
            return Err(Error::param("MLP sizes", format!("inputs and hidden must be positive, got {inputs} and {hidden}")));
        }
        Ok(())
    }
}

/// The convolutional trunk of LeNet-5, or none.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per network
enum Trunk {
    /// The head reads the input itself.
    Identity,
    LeNet { conv1: Conv2d, pool1: Pool, conv2: Conv2d, pool2: Pool },
}

/// A network with its parameters. Forward passes take `&self` and run in parallel over chunks of
/// [`CHUNK`] samples (each rayon thread keeps its own scratch buffers, reused across calls).
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    spec: NetSpec,
    trunk: Trunk,
    head: Vec<Linear>,
    /// `dropout_before[l]`: head layer `l` reads its input through dropout (when `p > 0`).
    dropout_before: Vec<bool>,
    params: ParamSet,
    isa: SimdLevel,
}

/// Scratch of the trunk for one chunk (the names follow LeNet-5; each buffer grows to the largest
/// chunk seen and is reused).
#[derive(Default)]
struct TrunkScratch {
    /// Padded input `[s][conv1.in_stride]`.
    x1: Vec<f32>,
    /// conv1 output `[6][s][npos_pad]` and its gradient.
    y1: Vec<f32>,
    dy1: Vec<f32>,
    arg1: Vec<u32>,
    /// pool1 output = conv2 input `[s][conv2.in_stride]`, and its gradient `[s][6][dx_plane]`.
    a1: Vec<f32>,
    da1: Vec<f32>,
    /// conv2 output `[16][s][npos_pad]` and its gradient (in conv2's `dy_layout`).
    y2: Vec<f32>,
    dy2: Vec<f32>,
    arg2: Vec<u32>,
    /// Features `[s][400]` entering the head.
    feat: Vec<f32>,
}

/// Scratch of the head for one chunk.
#[derive(Default)]
struct HeadScratch {
    /// Input of layer `l` after dropout, `[s][inputs_l]`.
    inputs: Vec<Vec<f32>>,
    /// Dropout scales of layer `l`'s input (0 or `1/(1−p)`).
    masks: Vec<Vec<f32>>,
    /// Output of layer `l` (after ReLU except for the last), `[s][outputs_l]`.
    outputs: Vec<Vec<f32>>,
    /// Gradients flowing back.
    dz: Vec<f32>,
    dx: Vec<f32>,
}

#[derive(Default)]
struct Scratch {
    trunk: TrunkScratch,
    head: HeadScratch,
    /// MC dropout: the chunk's features repeated once per draw of a group.
    stacked: Vec<f32>,
}

/// MC dropout runs the head on up to this many rows at once (draws × samples of a chunk), so
/// that its GEMMs see a tall matrix instead of one chunk.
const MC_ROWS: usize = 256;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (or a fresh one if it is already in use higher up the
/// stack, which a chunk never does, but rayon's work stealing must not turn into a panic).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// `v[..len]`, growing `v` if needed (new elements are zero; old ones keep their values).
fn grow<T: Default + Clone>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Dropout in a forward pass of the head over some rows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dropout {
    Off,
    /// Row `r` is sample `first + r`, masked from `key`.
    On { key: MaskKey, first: u64 },
    /// MC dropout with stacked draws: row `r` is draw `first_draw + r / per_draw` of sample
    /// `first + r % per_draw`.
    Draws { seed: u64, per_draw: usize, first: u64, first_draw: u64 },
}

impl Dropout {
    /// The mask key and sample number of row `r`, or `None` without dropout.
    fn row(&self, r: usize) -> Option<(MaskKey, u64)> {
        match *self {
            Dropout::Off => None,
            Dropout::On { key, first } => Some((key, first + r as u64)),
            Dropout::Draws { seed, per_draw, first, first_draw } => {
                let key = MaskKey { seed, purpose: Purpose::McDraw, counter: first_draw + (r / per_draw) as u64 };
                Some((key, first + (r % per_draw) as u64))
            }
        }
    }
}

impl Net {
    /// A freshly initialized network (PyTorch's default initialization, from `seed`).
    pub fn new(spec: NetSpec, seed: u64) -> Result<Net> {
        spec.check()?;
        let mut b = ParamBuilder::default();
        let (trunk, head, dropout_before) = match spec {
            NetSpec::LeNet5 { classes, .. } => {
                let conv1 = Conv2d::new(&mut b, "conv1", (1, 6), (28, 28), 2, false);
                let conv2 = Conv2d::new(&mut b, "conv2", (6, 16), (14, 14), 0, true);
                let pool = |c: &Conv2d| Pool { channels: c.cout, npos_pad: c.npos_pad(), wp: c.wp, ho: c.ho, wo: c.wo };
                let (pool1, pool2) = (pool(&conv1), pool(&conv2));
                let head = vec![
                    Linear::new(&mut b, "fc1", 16 * 5 * 5, 120),
                    Linear::new(&mut b, "fc2", 120, 84),
                    Linear::new(&mut b, "fc3", 84, classes),
                ];
                (Trunk::LeNet { conv1, pool1, conv2, pool2 }, head, vec![true; 3])
            }
            NetSpec::Mlp { inputs, hidden, classes, .. } => {
                let head = vec![Linear::new(&mut b, "fc1", inputs, hidden), Linear::new(&mut b, "fc2", hidden, classes)];
                (Trunk::Identity, head, vec![false, true])
            }
        };
        Ok(Net { spec, trunk, head, dropout_before, params: b.init(seed), isa: simd_level() })
    }

    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }
    pub fn params(&self) -> &ParamSet {
        &self.params
    }
    pub fn params_mut(&mut self) -> &mut ParamSet {
        &mut self.params
    }
    pub fn input_dim(&self) -> usize {
        self.spec.input_dim()
    }
    pub fn classes(&self) -> usize {
        self.spec.classes()
    }
    /// Width of the penultimate activation (the last layer's input): 84 for LeNet-5.
    pub fn embed_dim(&self) -> usize {
        self.head[self.head.len() - 1].inputs
    }
    /// Width of the trunk's output (400 for LeNet-5, the input for the MLP).
    pub fn feature_dim(&self) -> usize {
        self.head[0].inputs
    }
    /// The instruction set the hand-written kernels use.
    pub fn isa(&self) -> SimdLevel {
        self.isa
    }
    /// Runs the hand-written kernels with `isa` instead (for tests and benchmarks; a level
    /// this CPU lacks falls back to the best it has).
    pub fn set_isa(&mut self, isa: SimdLevel) {
        self.isa = isa;
    }

    fn check_input(&self, x: &[f32]) -> Result<usize> {
        let d = self.input_dim();
        if !x.len().is_multiple_of(d) {
            return Err(Error::shape(format!("{} input", self.spec.name()), format!("rows of {d} values"), x.len()));
        }
        Ok(x.len() / d)
    }

    /// Class probabilities of `x` `[n, input_dim]` into `out` `[n, classes]` (dropout off).
    pub fn predict_proba_into(&self, x: &[f32], out: &mut [f32]) -> Result<()> {
        let n = self.check_input(x)?;
        let k = self.classes();
        if out.len() != n * k {
            return Err(Error::shape("probabilities output", n * k, out.len()));
        }
        let d = self.input_dim();
        x.par_chunks(CHUNK * d).zip(out.par_chunks_mut(CHUNK * k)).for_each(|(xc, oc)| {
            with_scratch(|ws| {
                let s = xc.len() / d;
                let logits = self.forward_chunk(xc, s, Dropout::Off, ws);
                oc.copy_from_slice(&logits[..s * k]);
                softmax_rows(oc, k);
            })
        });
        Ok(())
    }

    /// The penultimate activations `[n, embed_dim]` and, if `proba` is given, the class
    /// probabilities `[n, classes]` of the same pass (dropout off).
    pub fn embed_into(&self, x: &[f32], embed: &mut [f32], proba: Option<&mut [f32]>) -> Result<()> {
        let n = self.check_input(x)?;
        let (d, k, e) = (self.input_dim(), self.classes(), self.embed_dim());
        if embed.len() != n * e {
            return Err(Error::shape("embedding output", n * e, embed.len()));
        }
        if let Some(p) = &proba
            && p.len() != n * k
        {
            return Err(Error::shape("probabilities output", n * k, p.len()));
        }
        let run = |xc: &[f32], ec: &mut [f32], pc: Option<&mut [f32]>| {
            with_scratch(|ws| {
                let s = xc.len() / d;
                let logits = self.forward_chunk(xc, s, Dropout::Off, ws);
                if let Some(pc) = pc {
                    pc.copy_from_slice(&logits[..s * k]);
                    softmax_rows(pc, k);
                }
                let last = self.head.len() - 1;
                ec.copy_from_slice(&ws.head.inputs[last][..s * e]);
            })
        };
        match proba {
            Some(p) => x
                .par_chunks(CHUNK * d)
                .zip(embed.par_chunks_mut(CHUNK * e))
                .zip(p.par_chunks_mut(CHUNK * k))
                .for_each(|((xc, ec), pc)| run(xc, ec, Some(pc))),
            None => x.par_chunks(CHUNK * d).zip(embed.par_chunks_mut(CHUNK * e)).for_each(|(xc, ec)| run(xc, ec, None)),
        }
        Ok(())
    }

    /// `draws` Monte-Carlo dropout passes: `out` `[draws, n, classes]`, draw `t` of row `i` at
    /// `(t·n + i)·classes`. The trunk runs once per chunk and only the head is repeated, so the
    /// cost is one trunk plus `draws` heads; memory is the output plus per-thread scratch. Masks
    /// depend on `(seed, t, i)` only. With dropout 0 every draw is the plain prediction.
    pub fn mc_samples_into(&self, x: &[f32], draws: usize, seed: u64, out: &mut [f32]) -> Result<()> {
        let n = self.check_input(x)?;
        let (d, k) = (self.input_dim(), self.classes());
        if out.len() != draws * n * k {
            return Err(Error::shape("MC samples output", draws * n * k, out.len()));
        }
        if n == 0 || draws == 0 {
            return Ok(());
        }
        // Per chunk, its slice of every draw's slab.
        let mut parts: Vec<Vec<&mut [f32]>> = (0..n.div_ceil(CHUNK)).map(|_| Vec::with_capacity(draws)).collect();
        for slab in out.chunks_mut(n * k) {
            for (c, part) in slab.chunks_mut(CHUNK * k).enumerate() {
                parts[c].push(part);
            }
        }
        let fd = self.feature_dim();
        parts.into_par_iter().enumerate().for_each(|(c, mut slabs)| {
            with_scratch(|ws| {
                let xc = &x[c * CHUNK * d..((c + 1) * CHUNK).min(n) * d];
                let s = xc.len() / d;
                let Scratch { trunk, head, stacked } = ws;
                let feat: &[f32] = self.trunk_forward(xc, s, trunk);
                if self.spec.dropout() == 0.0 {
                    // No randomness: every draw is the plain prediction.
                    let logits = self.head_forward(feat, s, Dropout::Off, head);
                    for dst in slabs.iter_mut() {
                        dst.copy_from_slice(&logits[..s * k]);
                        softmax_rows(dst, k);
                    }
                    return;
                }
                let group = (MC_ROWS / s).max(1);
                for t0 in (0..draws).step_by(group) {
                    let g = group.min(draws - t0);
                    let rows = grow(stacked, g * s * fd);
                    for block in rows.chunks_exact_mut(s * fd) {
                        block.copy_from_slice(&feat[..s * fd]);
                    }
                    let dropout = Dropout::Draws { seed, per_draw: s, first: (c * CHUNK) as u64, first_draw: t0 as u64 };
                    let logits = self.head_forward(rows, g * s, dropout, head);
                    for (t, dst) in slabs[t0..t0 + g].iter_mut().enumerate() {
                        dst.copy_from_slice(&logits[t * s * k..(t + 1) * s * k]);
                        softmax_rows(dst, k);
                    }
                }
            })
        });
        Ok(())
    }

    /// The mean cross-entropy of the minibatch `x` `[b, input_dim]`, `y` `[b]` and its gradient
    /// into `grad` (length = number of parameters). `partials` holds one buffer per chunk
    /// (grown as needed, reused across calls). Dropout masks come from `key` (its counter should
    /// change every step).
    pub(crate) fn batch_gradient(&self, x: &[f32], y: &[u32], key: MaskKey, partials: &mut Vec<Vec<f32>>, grad: &mut [f32]) -> Result<f64> {
        let b = self.check_input(x)?;
        let (d, k, np) = (self.input_dim(), self.classes(), self.params.len());
        if y.len() != b || b == 0 {
            return Err(Error::shape("minibatch labels", b.max(1), y.len()));
        }
        if let Some(&bad) = y.iter().find(|&&l| l as usize >= k) {
            return Err(Error::shape("label", format!("< {k}"), bad));
        }
        let chunks = b.div_ceil(CHUNK);
        if partials.len() < chunks {
            partials.resize_with(chunks, Vec::new);
        }
        let scale = 1.0 / b as f32;
        let losses: Vec<f64> = partials[..chunks]
            .par_iter_mut()
            .enumerate()
            .map(|(c, g)| {
                g.clear();
                g.resize(np, 0.0);
                let (r0, r1) = (c * CHUNK, ((c + 1) * CHUNK).min(b));
                with_scratch(|ws| self.train_chunk(&x[r0 * d..r1 * d], &y[r0..r1], scale, Dropout::On { key, first: r0 as u64 }, g, ws))
            })
            .collect();
        grad.copy_from_slice(&partials[0]);
        for p in &partials[1..chunks] {
            for (g, &v) in grad.iter_mut().zip(p) {
                *g += v;
            }
        }
        Ok(losses.iter().sum::<f64>() / b as f64)
    }

    /// Logits `[s, classes]` of one chunk (in the head scratch).
    fn forward_chunk<'w>(&self, x: &[f32], s: usize, dropout: Dropout, ws: &'w mut Scratch) -> &'w [f32] {
        let Scratch { trunk, head, .. } = ws;
        let feat = self.trunk_forward(x, s, trunk);
        self.head_forward(feat, s, dropout, head)
    }

    /// Forward and backward of one training chunk: adds `scale ×` the gradient of the summed loss
    /// to `grads`, returns the summed loss.
    fn train_chunk(&self, x: &[f32], y: &[u32], scale: f32, dropout: Dropout, grads: &mut [f32], ws: &mut Scratch) -> f64 {
        let s = y.len();
        let k = self.classes();
        let Scratch { trunk, head, .. } = ws;
        let feat = self.trunk_forward(x, s, trunk);
        self.head_forward(feat, s, dropout, head);
        let last = self.head.len() - 1;
        let dz = grow(&mut head.dz, s * k);
        dz.copy_from_slice(&head.outputs[last][..s * k]);
        let loss = cross_entropy_rows(dz, y, k, scale);
        let needs_dfeat = !matches!(self.trunk, Trunk::Identity);
        self.head_backward(s, needs_dfeat, grads, head);
        if needs_dfeat {
            let dfeat = std::mem::take(&mut head.dx);
            self.trunk_backward(s, &dfeat, grads, trunk);
            head.dx = dfeat;
        }
        loss
    }

    /// The trunk's output `[s, feature_dim]` for the chunk `x` `[s, input_dim]`.
    fn trunk_forward<'a>(&self, x: &'a [f32], s: usize, ws: &'a mut TrunkScratch) -> &'a [f32] {
        let Trunk::LeNet { conv1, pool1, conv2, pool2 } = &self.trunk else {
            return x;
        };
        let p = self.params.as_slice();
        let x1 = grow(&mut ws.x1, s * conv1.in_stride());
        conv1.pack_input(x, s, x1);
        let y1 = grow(&mut ws.y1, conv1.out_len(s));
        conv1.forward(self.isa, p, x1, s, y1);
        let a1 = grow(&mut ws.a1, s * conv2.in_stride());
        a1.fill(0.0);
        let arg1 = grow(&mut ws.arg1, s * pool1.channels * pool1.outputs());
        pool1.forward(y1, s, a1, Self::pool1_layout(conv2), arg1);
        let y2 = grow(&mut ws.y2, conv2.out_len(s));
        conv2.forward(self.isa, p, a1, s, y2);
        let feat = grow(&mut ws.feat, s * self.feature_dim());
        let arg2 = grow(&mut ws.arg2, s * pool2.channels * pool2.outputs());
        pool2.forward(y2, s, feat, Self::pool2_layout(pool2), arg2);
        feat
    }

    /// pool1 writes straight into conv2's padded input.
    fn pool1_layout(conv2: &Conv2d) -> PoolOut {
        PoolOut { sample: conv2.in_stride(), channel: conv2.hp * conv2.wp, row: conv2.wp, pad: conv2.pad }
    }
    /// pool2 writes the `[s][c·h·w]` features (PyTorch's flatten order).
    fn pool2_layout(pool2: &Pool) -> PoolOut {
        let (ph, pw) = (pool2.ho / 2, pool2.wo / 2);
        PoolOut { sample: pool2.channels * ph * pw, channel: ph * pw, row: pw, pad: 0 }
    }

    /// Adds the trunk's parameter gradients given the features' gradient `dfeat` `[s, 400]`.
    fn trunk_backward(&self, s: usize, dfeat: &[f32], grads: &mut [f32], ws: &mut TrunkScratch) {
        let Trunk::LeNet { conv1, pool1, conv2, pool2 } = &self.trunk else {
            return;
        };
        let p = self.params.as_slice();
        let (margin, plane) = conv2.dy_layout();
        let dy2 = grow(&mut ws.dy2, conv2.dy_len(s));
        pool2.backward(dfeat, s, Self::pool2_layout(pool2), &ws.arg2, margin, plane, dy2);
        let da1 = grow(&mut ws.da1, conv2.dx_len(s));
        conv2.backward(self.isa, p, grads, &ws.a1, dy2, s, Some(da1));
        // pool1's outputs, read back from conv2's input-gradient layout.
        let dx_layout = PoolOut { sample: conv2.cin * conv2.dx_plane(), channel: conv2.dx_plane(), row: conv2.wp, pad: conv2.pad };
        let (margin, plane) = conv1.dy_layout();
        let dy1 = grow(&mut ws.dy1, conv1.dy_len(s));
        pool1.backward(da1, s, dx_layout, &ws.arg1, margin, plane, dy1);
        conv1.backward(self.isa, p, grads, &ws.x1, dy1, s, None);
    }

    /// Runs the head on features `[s, feature_dim]`; returns the logits `[s, classes]`.
    fn head_forward<'w>(&self, feat: &[f32], s: usize, dropout: Dropout, ws: &'w mut HeadScratch) -> &'w [f32] {
        let p = self.params.as_slice();
        let layers = self.head.len();
        ws.inputs.resize_with(layers, Vec::new);
        ws.masks.resize_with(layers, Vec::new);
        ws.outputs.resize_with(layers, Vec::new);
        let rate = self.spec.dropout();
        for (l, layer) in self.head.iter().enumerate() {
            let n_in = layer.inputs;
            let input = grow(&mut ws.inputs[l], s * n_in);
            input.copy_from_slice(if l == 0 { &feat[..s * n_in] } else { &ws.outputs[l - 1][..s * n_in] });
            if self.dropout_before[l] && rate > 0.0 && !matches!(dropout, Dropout::Off) {
                let mask = grow(&mut ws.masks[l], s * n_in);
                for (r, (m, row)) in mask.chunks_exact_mut(n_in).zip(input.chunks_exact_mut(n_in)).enumerate() {
                    if let Some((key, sample)) = dropout.row(r) {
                        key.fill(sample, l as u64, rate, m);
                    }
                    for (v, &f) in row.iter_mut().zip(m.iter()) {
                        *v *= f;
                    }
                }
            }
            let out = grow(&mut ws.outputs[l], s * layer.outputs);
            layer.forward(p, input, s, out);
            if l + 1 < layers {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        &ws.outputs[layers - 1][..s * self.classes()]
    }

    /// Back through the head from `ws.dz` (the logits' gradient); leaves the features' gradient
    /// in `ws.dx` when `needs_dfeat`. Uses the dropout masks of the last forward pass, which must
    /// have had dropout on (as training always has).
    fn head_backward(&self, s: usize, needs_dfeat: bool, grads: &mut [f32], ws: &mut HeadScratch) {
        let p = self.params.as_slice();
        let rate = self.spec.dropout();
        for (l, layer) in self.head.iter().enumerate().rev() {
            let want_dx = l > 0 || needs_dfeat;
            let dx = if want_dx { Some(grow(&mut ws.dx, s * layer.inputs)) } else { None };
            layer.backward(p, grads, &ws.inputs[l], &ws.dz, s, dx);
            if !want_dx {
                continue;
            }
            let dx = &mut ws.dx[..s * layer.inputs];
            if self.dropout_before[l] && rate > 0.0 {
                for (g, &m) in dx.iter_mut().zip(&ws.masks[l]) {
                    *g *= m;
                }
            }
            if l > 0 {
                // Through the ReLU of the previous layer's output.
                let dz = grow(&mut ws.dz, s * layer.inputs);
                for ((d, &g), &a) in dz.iter_mut().zip(dx.iter()).zip(&ws.outputs[l - 1]) {
                    *d = if a > 0.0 { g } else { 0.0 };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new network runs on the crate's one choice of instruction set, `QUARRY_SIMD` included.
    #[test]
    fn a_new_network_starts_on_the_crates_simd_level() {
        let net = Net::new(NetSpec::Mlp { inputs: 4, hidden: 3, classes: 2, dropout: 0.0 }, 0).unwrap();
        assert_eq!(net.isa(), simd_level());
    }

    #[test]
    fn lenet_has_pytorch_tensor_names_and_sizes() {
        let net = Net::new(NetSpec::LeNet5 { classes: 10, dropout: 0.0 }, 0).unwrap();
        let names: Vec<(&str, &[usize])> = net.params().tensors().iter().map(|t| (t.name.as_str(), t.shape.as_slice())).collect();
        assert_eq!(
            names,
            [
                ("conv1.weight", &[6, 1, 5, 5][..]),
                ("conv1.bias", &[6][..]),
                ("conv2.weight", &[16, 6, 5, 5][..]),
                ("conv2.bias", &[16][..]),
                ("fc1.weight", &[120, 400][..]),
                ("fc1.bias", &[120][..]),
                ("fc2.weight", &[84, 120][..]),
                ("fc2.bias", &[84][..]),
                ("fc3.weight", &[10, 84][..]),
                ("fc3.bias", &[10][..]),
            ]
        );
        assert_eq!(net.params().len(), 61_706);
        // U(−1/√fan_in, 1/√fan_in): conv1's fan_in is 25.
        let w = net.params().get("conv1.weight").unwrap();
        assert!(w.iter().all(|v| v.abs() <= 0.2) && w.iter().any(|v| v.abs() > 0.15));
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(Net::new(NetSpec::LeNet5 { classes: 1, dropout: 0.0 }, 0).is_err());
        assert!(Net::new(NetSpec::LeNet5 { classes: 10, dropout: 1.0 }, 0).is_err());
        assert!(Net::new(NetSpec::Mlp { inputs: 0, hidden: 4, classes: 2, dropout: 0.0 }, 0).is_err());
    }
}
