//! EfficientNet-Lite0 inference on the CPU, from the PyTorch port's safetensors checkpoint.
//!
//! The model is a plain struct of layers built by a [`VarBuilder`] that names tensors exactly as the
//! checkpoint does (candle's habit); loading and running are separate. At load every batch norm is
//! folded into the convolution before it (`w·γ/√(σ²+ε)`, bias `β − μ·γ/√(σ²+ε)`, in f64), so inference
//! is convolution + bias + ReLU6, fused in one kernel epilogue (see [`crate::kernels`]).
//!
//! Architecture (TF "SAME" padding, BN ε = 1e-3, ReLU6, no squeeze-and-excitation):
//! stem 3x3/2 → 32, sixteen MBConv blocks ([`STAGES`]), head 1x1 → 1280, global average pool
//! (the 1280-d *features*, [`EfficientNetLite0::embed`]), fully connected 1280 → 1000 (the *logits*).
//!
//! Speed: activations are NHWC inside; each group of up to eight images goes through the whole trunk on
//! one thread with reusable scratch buffers, and rayon spreads the groups of a batch over the threads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use quarry_core::Matrix;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use thiserror::Error;

use crate::imagenet_input::{self, INPUT_SIZE};
use crate::kernels::{Activation, DenseConv, DepthwiseConv, PointwiseConv, global_average_pool};

/// Length of the pooled feature vector ([`EfficientNetLite0::embed`]).
pub const FEATURE_DIM: usize = 1280;
/// ImageNet-1k classes.
pub const NUM_CLASSES: usize = 1000;
/// Input channels (RGB).
pub const INPUT_CHANNELS: usize = 3;
/// Batch-norm epsilon of the TF original (PyTorch's default would be 1e-5).
const BN_EPS: f64 = 1e-3;
/// Channels of the stem convolution.
const STEM_CHANNELS: usize = 32;
/// Rows of the fully connected layer computed per GEMM call (and per parallel task).
const FC_ROWS: usize = 32;
/// Images decoded and run at a time by [`predict_top_k`], which bounds its memory for long lists.
const PREDICT_CHUNK: usize = 32;
/// A block whose hidden activation (the expanded, pre-depthwise tensor) is at most this large runs
/// on the whole image at once; larger ones run in bands of rows (see [`MbConvBlock`]'s forward).
/// Half of a 2 MB L2, and more than any 96x96 block needs.
const WHOLE_IMAGE_BYTES: usize = 1 << 20;
/// Target size of one band's hidden input rows.
const BAND_BYTES: usize = 256 << 10;
/// Most images a thread runs through the network together (see [`MbConvBlock`]'s forward): 8 is
/// about 10 % faster than 4 at 96x96 (the 3x3 maps' GEMMs get 72 rows instead of 36); no gain at 224.
const GROUP_MAX: usize = 8;

/// One stage of MBConv blocks, as in the paper's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    pub repeats: usize,
    pub kernel: usize,
    /// Stride of the stage's first block (the others have stride 1).
    pub stride: usize,
    /// Expansion ratio of the hidden width (1 = no expand convolution).
    pub expand: usize,
    pub in_channels: usize,
    pub out_channels: usize,
}

const fn stage(repeats: usize, kernel: usize, stride: usize, expand: usize, in_channels: usize, out_channels: usize) -> Stage {
    Stage { repeats, kernel, stride, expand, in_channels, out_channels }
}

/// EfficientNet-Lite0's stages: `r1_k3_s1_e1_i32_o16, r2_k3_s2_e6_i16_o24, r2_k5_s2_e6_i24_o40,
/// r3_k3_s2_e6_i40_o80, r3_k5_s1_e6_i80_o112, r4_k5_s2_e6_i112_o192, r1_k3_s1_e6_i192_o320`.
pub const STAGES: [Stage; 7] = [
    stage(1, 3, 1, 1, 32, 16),
    stage(2, 3, 2, 6, 16, 24),
    stage(2, 5, 2, 6, 24, 40),
    stage(3, 3, 2, 6, 40, 80),
    stage(3, 5, 1, 6, 80, 112),
    stage(4, 5, 2, 6, 112, 192),
    stage(1, 3, 1, 6, 192, 320),
];

/// Errors of loading and running the model. Messages name the file, the tensor and both shapes.
#[derive(Debug, Error)]
pub enum EfficientNetError {
    #[error("cannot read weights file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a valid safetensors file: {reason}")]
    Format { path: String, reason: String },
    #[error("tensor `{name}` is missing from {path}")]
    MissingTensor { path: String, name: String },
    #[error("tensor `{name}` in {path} has shape {found:?}, expected {expected:?}")]
    TensorShape { path: String, name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` in {path} has dtype {dtype}, expected F32")]
    TensorDtype { path: String, name: String, dtype: String },
    #[error("model input: expected {expected}, got {got}")]
    Input { expected: String, got: String },
    #[error("invalid parameter {name}: {reason}")]
    Param { name: &'static str, reason: String },
}

/// Hands out checkpoint tensors by name under a prefix, checking dtype and shape (candle's
/// `VarBuilder`): a layer asks for `weight` in its own scope, and the full name is the checkpoint's.
#[derive(Clone)]
pub struct VarBuilder<'a> {
    tensors: &'a SafeTensors<'a>,
    /// What to call the checkpoint in errors (its path).
    source: &'a str,
    prefix: String,
}

impl<'a> VarBuilder<'a> {
    pub fn new(tensors: &'a SafeTensors<'a>, source: &'a str) -> Self {
        VarBuilder { tensors, source, prefix: String::new() }
    }

    /// The builder for a sub-scope: `vb.pp("_blocks").pp(3)` reads `_blocks.3.*`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        VarBuilder { tensors: self.tensors, source: self.source, prefix: self.full_name(&name.to_string()) }
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) }
    }

    /// The f32 tensor `name` in this scope, which must have exactly `shape`.
    pub fn get(&self, shape: &[usize], name: &str) -> Result<Vec<f32>, EfficientNetError> {
        let full = self.full_name(name);
        let view = self.tensors.tensor(&full).map_err(|_| EfficientNetError::MissingTensor { path: self.source.to_string(), name: full.clone() })?;
        if view.dtype() != Dtype::F32 {
            return Err(EfficientNetError::TensorDtype { path: self.source.to_string(), name: full, dtype: format!("{:?}", view.dtype()) });
        }
        if view.shape() != shape {
            return Err(EfficientNetError::TensorShape { path: self.source.to_string(), name: full, expected: shape.to_vec(), found: view.shape().to_vec() });
        }
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// A convolution weight of `weight_shape` (`[out, …]`) with the batch norm in `bn` folded into it:
    /// returns the scaled weight (same layout) and the bias.
    fn conv_bn(&self, bn: &VarBuilder<'_>, weight_shape: &[usize]) -> Result<(Vec<f32>, Vec<f32>), EfficientNetError> {
        let mut weight = self.get(weight_shape, "weight")?;
        let out = weight_shape[0];
        let gamma = bn.get(&[out], "weight")?;
        let beta = bn.get(&[out], "bias")?;
        let mean = bn.get(&[out], "running_mean")?;
        let var = bn.get(&[out], "running_var")?;
        let per_out = weight.len() / out;
        let mut bias = vec![0.0; out];
        for o in 0..out {
            let scale = gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt();
            for w in &mut weight[o * per_out..(o + 1) * per_out] {
                *w = (*w as f64 * scale) as f32;
            }
            bias[o] = (beta[o] as f64 - mean[o] as f64 * scale) as f32;
        }
        Ok((weight, bias))
    }
}

/// An inverted-residual (MBConv) block: [1x1 expand + ReLU6] → kxk depthwise + ReLU6 → 1x1 project,
/// plus the input when the shape is unchanged. Batch norms are folded into the convolutions.
#[derive(Clone, Debug)]
pub struct MbConvBlock {
    in_channels: usize,
    expand: Option<PointwiseConv>,
    depthwise: DepthwiseConv,
    project: PointwiseConv,
    residual: bool,
}

impl MbConvBlock {
    /// Loads `_expand_conv`/`_bn0` (when `expand != 1`), `_depthwise_conv`/`_bn1`, `_project_conv`/`_bn2`
    /// from the block's scope `vb` (e.g. `_blocks.3`).
    pub fn load(vb: &VarBuilder<'_>, cin: usize, cout: usize, kernel: usize, stride: usize, expand: usize) -> Result<Self, EfficientNetError> {
        let hidden = cin * expand;
        let expand = if expand != 1 {
            let (w, b) = vb.pp("_expand_conv").conv_bn(&vb.pp("_bn0"), &[hidden, cin, 1, 1])?;
            Some(PointwiseConv::from_torch(&w, &b, hidden, cin, Activation::Relu6))
        } else {
            None
        };
        let (w, b) = vb.pp("_depthwise_conv").conv_bn(&vb.pp("_bn1"), &[hidden, 1, kernel, kernel])?;
        let depthwise = DepthwiseConv::from_torch(&w, &b, hidden, kernel, stride, Activation::Relu6);
        let (w, b) = vb.pp("_project_conv").conv_bn(&vb.pp("_bn2"), &[cout, hidden, 1, 1])?;
        let project = PointwiseConv::from_torch(&w, &b, cout, hidden, Activation::None);
        Ok(MbConvBlock { in_channels: cin, expand, depthwise, project, residual: stride == 1 && cin == cout })
    }

    /// Runs on a group of `images` activations `x` `[images, h, w, cin]`; writes
    /// `[images, ho, wo, cout]` to the front of `out` and returns `(ho, wo)`. `expanded` and `dw` are
    /// scratch buffers, grown as needed.
    ///
    /// Small maps run the whole group at once: one GEMM over all the group's pixels per 1x1
    /// convolution, so each weight loaded from memory serves `images` times as many pixels (on 7x7 or
    /// 3x3 maps the weights, not the arithmetic, are the cost). Larger ones run image by image, and
    /// when one image's hidden activation exceeds [`WHOLE_IMAGE_BYTES`], in bands of output rows:
    /// expand only the input rows a band's depthwise windows read (rows shared with the previous band
    /// are moved, not recomputed), depthwise, then project that band, so the wide hidden tensor never
    /// leaves L2 (at 224x224 the second block's is 4.8 MB, and writing and reading it back through
    /// memory cost more than its convolution).
    #[allow(clippy::too_many_arguments)] // group geometry and the three scratch buffers
    fn forward(&self, x: &[f32], images: usize, h: usize, w: usize, expanded: &mut Vec<f32>, dw: &mut Vec<f32>, out: &mut Vec<f32>) -> (usize, usize) {
        let (cin, hid, cout) = (self.in_channels, self.depthwise.channels(), self.project.out_channels());
        assert_eq!(x.len(), images * h * w * cin, "MBConv block: input is not [{images}, {h}, {w}, {cin}]");
        let (ho, wo) = self.depthwise.output_size(h, w);
        let out = grow(out, images * ho * wo * cout);
        let hidden_row = w * hid;
        if images * h * hidden_row * 4 <= WHOLE_IMAGE_BYTES {
            let hidden: &[f32] = match &self.expand {
                Some(expand) => {
                    let buf = grow(expanded, images * h * hidden_row);
                    expand.forward(x, None, buf);
                    buf
                }
                None => x,
            };
            let d = grow(dw, images * ho * wo * hid);
            for (src, dst) in hidden.chunks_exact(h * hidden_row).zip(d.chunks_exact_mut(ho * wo * hid)) {
                self.depthwise.forward(src, h, w, dst);
            }
            self.project.forward(d, self.residual.then_some(x), out);
        } else {
            let band = if h * hidden_row * 4 <= WHOLE_IMAGE_BYTES { ho } else { self.band_rows(hidden_row) };
            for (src, dst) in x.chunks_exact(h * w * cin).zip(out.chunks_exact_mut(ho * wo * cout)) {
                self.forward_in_bands(src, h, w, band, expanded, dw, dst);
            }
        }
        (ho, wo)
    }

    /// One image `[h, w, cin]` in bands of `band` output rows, into `out` `[ho, wo, cout]`.
    #[allow(clippy::too_many_arguments)] // input geometry and the three scratch buffers
    fn forward_in_bands(&self, x: &[f32], h: usize, w: usize, band: usize, expanded: &mut Vec<f32>, dw: &mut Vec<f32>, out: &mut [f32]) {
        let cin = self.in_channels;
        assert_eq!(x.len(), h * w * cin, "MBConv block: input is not [{h}, {w}, {cin}]");
        let hid = self.depthwise.channels();
        let cout = self.project.out_channels();
        let (ho, wo) = self.depthwise.output_size(h, w);
        let hidden_row = w * hid;
        let band = band.max(1);
        // Input rows of the hidden activation currently held at the front of `expanded`.
        let mut held = 0..0;
        let mut oy0 = 0;
        while oy0 < ho {
            let rows = oy0..(oy0 + band).min(ho);
            let need = self.depthwise.input_rows(h, rows.clone());
            let hidden: &[f32] = match &self.expand {
                None => &x[need.start * hidden_row..need.end * hidden_row],
                Some(expand) => {
                    let buf = grow(expanded, need.len().max(held.len()) * hidden_row);
                    // Rows this band shares with the last one move to the front.
                    let reuse = need.start.max(held.start)..need.end.min(held.end);
                    if !reuse.is_empty() {
                        buf.copy_within((reuse.start - held.start) * hidden_row..(reuse.end - held.start) * hidden_row, (reuse.start - need.start) * hidden_row);
                    }
                    let buf = &mut buf[..need.len() * hidden_row];
                    let fresh = if reuse.is_empty() { need.clone() } else { reuse.end..need.end };
                    expand.forward(&x[fresh.start * w * cin..fresh.end * w * cin], None, &mut buf[(fresh.start - need.start) * hidden_row..(fresh.end - need.start) * hidden_row]);
                    held = need.clone();
                    buf
                }
            };
            let d = grow(dw, rows.len() * wo * hid);
            self.depthwise.forward_rows(hidden, need.start, h, w, rows.clone(), d);
            let pixels = rows.start * wo..rows.end * wo;
            // With a residual, stride is 1 and cin == cout, so output pixels are input pixels.
            let residual = self.residual.then(|| &x[pixels.start * cout..pixels.end * cout]);
            self.project.forward(d, residual, &mut out[pixels.start * cout..pixels.end * cout]);
            oy0 = rows.end;
        }
    }

    /// Output rows per band such that a band's hidden input rows take about [`BAND_BYTES`].
    fn band_rows(&self, hidden_row: usize) -> usize {
        let (k, s) = (self.depthwise.kernel(), self.depthwise.stride());
        let rows_in = (BAND_BYTES / (hidden_row * 4).max(1)).max(k);
        ((rows_in - k) / s + 1).max(1)
    }
}

/// The first `len` elements of `v`, growing it (never shrinking) as needed.
fn grow(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// Buffers a group of images needs on its trip through the trunk; reused from group to group on a
/// thread.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    y: Vec<f32>,
    expanded: Vec<f32>,
    dw: Vec<f32>,
    patches: Vec<f32>,
}

/// EfficientNet-Lite0 with batch norms folded, ready for inference.
#[derive(Clone, Debug)]
pub struct EfficientNetLite0 {
    stem: DenseConv,
    blocks: Vec<MbConvBlock>,
    head: PointwiseConv,
    fc: PointwiseConv,
}

impl EfficientNetLite0 {
    /// Loads the checkpoint at `path` (the PyTorch port's tensor names; `num_batches_tracked` and any
    /// other extra tensors are ignored).
    pub fn load(path: &Path) -> Result<Self, EfficientNetError> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| EfficientNetError::Io { path: label.clone(), source })?;
        Self::from_safetensors_bytes(&bytes, &label)
    }

    /// Loads from the bytes of a safetensors file; `label` names it in errors.
    pub fn from_safetensors_bytes(bytes: &[u8], label: &str) -> Result<Self, EfficientNetError> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| EfficientNetError::Format { path: label.to_string(), reason: e.to_string() })?;
        Self::new(&VarBuilder::new(&tensors, label))
    }

    /// Builds the model from a [`VarBuilder`] at the checkpoint's root.
    pub fn new(vb: &VarBuilder<'_>) -> Result<Self, EfficientNetError> {
        let (w, b) = vb.pp("_conv_stem").conv_bn(&vb.pp("_bn0"), &[STEM_CHANNELS, INPUT_CHANNELS, 3, 3])?;
        let stem = DenseConv::from_torch(&w, &b, STEM_CHANNELS, INPUT_CHANNELS, 3, 2, Activation::Relu6);
        let mut blocks = Vec::new();
        let vb_blocks = vb.pp("_blocks");
        for st in &STAGES {
            for r in 0..st.repeats {
                let (cin, stride) = if r == 0 { (st.in_channels, st.stride) } else { (st.out_channels, 1) };
                blocks.push(MbConvBlock::load(&vb_blocks.pp(blocks.len()), cin, st.out_channels, st.kernel, stride, st.expand)?);
            }
        }
        let last = STAGES[STAGES.len() - 1].out_channels;
        let (w, b) = vb.pp("_conv_head").conv_bn(&vb.pp("_bn1"), &[FEATURE_DIM, last, 1, 1])?;
        let head = PointwiseConv::from_torch(&w, &b, FEATURE_DIM, last, Activation::Relu6);
        let fc_w = vb.pp("_fc").get(&[NUM_CLASSES, FEATURE_DIM], "weight")?;
        let fc_b = vb.pp("_fc").get(&[NUM_CLASSES], "bias")?;
        let fc = PointwiseConv::from_torch(&fc_w, &fc_b, NUM_CLASSES, FEATURE_DIM, Activation::None);
        Ok(EfficientNetLite0 { stem, blocks, head, fc })
    }

    /// Number of MBConv blocks (16).
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Runs the network on a normalized NCHW batch `input` of `shape = [n, 3, h, w]` (any `h, w ≥ 1`;
    /// 224 is the trained size) and returns `(features [n, 1280], logits [n, 1000])`.
    ///
    /// Memory does not grow with `n` beyond the input and outputs: each thread streams groups of up to
    /// eight images through its own scratch buffers (at most about 30 MB per thread at 224x224).
    pub fn forward(&self, input: &[f32], shape: [usize; 4]) -> Result<(Matrix, Matrix), EfficientNetError> {
        let features = self.embed(input, shape)?;
        let n = shape[0];
        let mut logits = vec![0.0; n * NUM_CLASSES];
        features
            .as_slice()
            .par_chunks(FC_ROWS * FEATURE_DIM)
            .zip(logits.par_chunks_mut(FC_ROWS * NUM_CLASSES))
            .for_each(|(f, l)| self.fc.forward(f, None, l));
        let logits = Matrix::new(logits, n, NUM_CLASSES).map_err(|e| EfficientNetError::Input { expected: "logits".into(), got: e.to_string() })?;
        Ok((features, logits))
    }

    /// The 1280-d globally pooled features of each image (`[n, 1280]`), without the classifier: the
    /// embedding for diversity-based strategies.
    pub fn embed(&self, input: &[f32], shape: [usize; 4]) -> Result<Matrix, EfficientNetError> {
        let [n, c, h, w] = shape;
        if c != INPUT_CHANNELS || h == 0 || w == 0 {
            return Err(EfficientNetError::Input { expected: "shape [n, 3, h, w] with h, w >= 1".into(), got: format!("{shape:?}") });
        }
        let image_len = c * h * w;
        if input.len() != n * image_len {
            return Err(EfficientNetError::Input { expected: format!("{} values for shape {shape:?}", n * image_len), got: format!("{} values", input.len()) });
        }
        let mut features = vec![0.0; n * FEATURE_DIM];
        if n > 0 {
            // Scratch buffers are kept in a small pool (at most one per running task) rather than
            // allocated per group: fresh allocations of tens of MB cost page faults.
            let pool: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());
            // Groups of up to GROUP_MAX images, but at least two groups per thread where the batch
            // allows, so a thread slowed by other processes can have work stolen from it.
            let group = n.div_ceil(2 * rayon::current_num_threads()).clamp(1, GROUP_MAX);
            input.par_chunks(group * image_len).zip(features.par_chunks_mut(group * FEATURE_DIM)).for_each(|(images, out)| {
                let mut scratch = pool.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
                self.trunk(images, images.len() / image_len, h, w, &mut scratch, out);
                pool.lock().unwrap_or_else(|e| e.into_inner()).push(scratch);
            });
        }
        Matrix::new(features, n, FEATURE_DIM).map_err(|e| EfficientNetError::Input { expected: "features".into(), got: e.to_string() })
    }

    /// A group of `n` images `[n, 3, h, w]` through stem, blocks, head and pooling into
    /// `features[n, 1280]`; activations are NHWC `[n, h, w, c]` in between.
    fn trunk(&self, images: &[f32], n: usize, h: usize, w: usize, s: &mut Scratch, features: &mut [f32]) {
        let (mut h, mut w) = {
            let (ho, wo) = self.stem.output_size(h, w);
            let x = grow(&mut s.x, n * ho * wo * STEM_CHANNELS);
            for (image, out) in images.chunks_exact(INPUT_CHANNELS * h * w).zip(x.chunks_exact_mut(ho * wo * STEM_CHANNELS)) {
                self.stem.forward(image, h, w, &mut s.patches, out);
            }
            (ho, wo)
        };
        let mut channels = STEM_CHANNELS;
        for block in &self.blocks {
            let (ho, wo) = block.forward(&s.x[..n * h * w * channels], n, h, w, &mut s.expanded, &mut s.dw, &mut s.y);
            std::mem::swap(&mut s.x, &mut s.y);
            (h, w, channels) = (ho, wo, block.project.out_channels());
        }
        let head = grow(&mut s.expanded, n * h * w * FEATURE_DIM);
        self.head.forward(&s.x[..n * h * w * channels], None, head);
        for (map, f) in head.chunks_exact(h * w * FEATURE_DIM).zip(features.chunks_exact_mut(FEATURE_DIM)) {
            global_average_pool(map, FEATURE_DIM, f);
        }
    }
}

/// One image's prediction: its top-k `(class id, probability)` pairs, most probable first, or why the
/// image could not be read (the message names the file).
pub type ImagePrediction = Result<Vec<(usize, f32)>, String>;

/// Predicts the top `k` ImageNet classes of each image file: per image, either `(class id, probability)`
/// pairs, most probable first, or an error message naming the file (unreadable, truncated, not a
/// PNG/JPEG). One bad image does not stop the others. Images are decoded in parallel, resized to
/// 224x224 and normalized by [`imagenet_input`], and run in chunks of 32 so memory stays bounded.
///
/// The outer error is for bad arguments (`k == 0`) only.
pub fn predict_top_k(model: &EfficientNetLite0, images: &[PathBuf], k: usize) -> Result<Vec<ImagePrediction>, EfficientNetError> {
    if k == 0 {
        return Err(EfficientNetError::Param { name: "k", reason: "must be at least 1".into() });
    }
    let k = k.min(NUM_CLASSES);
    let mut results = Vec::with_capacity(images.len());
    for chunk in images.chunks(PREDICT_CHUNK) {
        let decoded: Vec<Result<Vec<f32>, String>> =
            chunk.par_iter().map(|p| imagenet_input::load_image(p, INPUT_SIZE).map_err(|e| e.to_string())).collect();
        let batch: Vec<f32> = decoded.iter().filter_map(|d| d.as_ref().ok()).flatten().copied().collect();
        let n_ok = batch.len() / (INPUT_CHANNELS * INPUT_SIZE * INPUT_SIZE);
        let (_, logits) = model.forward(&batch, [n_ok, INPUT_CHANNELS, INPUT_SIZE, INPUT_SIZE])?;
        let mut row = 0;
        for d in decoded {
            results.push(d.map(|_| {
                let top = top_k(&softmax(logits.row(row)), k);
                row += 1;
                top
            }));
        }
    }
    Ok(results)
}

/// Softmax of one row of logits (shifted by the maximum, summed in f64): see [`crate::softmax`].
pub use crate::softmax::softmax_row_f64 as softmax;

/// The `k` largest entries as `(index, value)`, largest first; ties go to the smaller index.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.into_iter().take(k).map(|i| (i, values[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_make_sixteen_blocks_ending_at_320_channels() {
        assert_eq!(STAGES.iter().map(|s| s.repeats).sum::<usize>(), 16);
        for pair in STAGES.windows(2) {
            assert_eq!(pair[0].out_channels, pair[1].in_channels);
        }
        assert_eq!(STAGES[0].in_channels, STEM_CHANNELS);
    }

    #[test]
    fn blocks_give_the_same_result_in_any_band_size() {
        let data = |n: usize, seed: f32| -> Vec<f32> { (0..n).map(|i| ((i as f32 + seed) * 0.377).sin() * 0.5).collect() };
        // (cin, cout, kernel, stride, expand): no expand, stride 2, and a residual block.
        for &(cin, cout, k, s, e) in &[(32, 16, 3, 1, 1), (16, 24, 3, 2, 6), (40, 40, 5, 1, 6), (24, 40, 5, 2, 6)] {
            let hid = cin * e;
            let block = MbConvBlock {
                in_channels: cin,
                expand: (e != 1).then(|| PointwiseConv::from_torch(&data(hid * cin, 1.0), &data(hid, 2.0), hid, cin, Activation::Relu6)),
                depthwise: DepthwiseConv::from_torch(&data(hid * k * k, 3.0), &data(hid, 4.0), hid, k, s, Activation::Relu6),
                project: PointwiseConv::from_torch(&data(cout * hid, 5.0), &data(cout, 6.0), cout, hid, Activation::None),
                residual: s == 1 && cin == cout,
            };
            let (h, w) = (23, 17);
            let x = data(h * w * cin, 7.0);
            let (ho, wo) = block.depthwise.output_size(h, w);
            let whole = {
                let mut out = vec![f32::NAN; ho * wo * cout];
                block.forward_in_bands(&x, h, w, ho, &mut Vec::new(), &mut Vec::new(), &mut out);
                out
            };
            for band in [1, 2, 3, 5] {
                let mut out = vec![f32::NAN; ho * wo * cout];
                block.forward_in_bands(&x, h, w, band, &mut Vec::new(), &mut Vec::new(), &mut out);
                assert_eq!(out, whole, "block {cin}->{cout} k{k} s{s} e{e}, bands of {band}");
            }
        }
    }

    #[test]
    fn softmax_and_top_k() {
        let p = softmax(&[1.0, 3.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let top = top_k(&p, 3);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 3, 2]);
    }
}
