//! 2-D convolution with 5×5 kernels (cross-correlation, stride 1, zero padding) over a chunk of
//! samples, by direct SIMD kernels in the flat padded layout of [the module docs](super).
//!
//! Input of sample `s`: `x[s·in_stride ..]` holds its `[cin][hp][wp]` padded image row by row
//! (`hp = h + 2·pad`, `wp = w + 2·pad`), followed by zeros. Output: `y[o][s][q]` for flat
//! positions `q = oy·wp + ox < npos` (`npos = ho·wp`, padded to `npos_pad`); the columns
//! `ox ≥ wo` and the positions past `npos` are computed but meaningless, and their gradients
//! must be zero. A tap `(c, ky, kx)` is then the shift `c·hp·wp + ky·wp + kx` of the whole
//! flat image, so every pass is a sum of shifted vectors with no im2col copy:
//!
//! * forward: a tile of up to 8 output channels × one vector of positions in registers; each tap
//!   loads one shifted input vector and adds it times one broadcast weight per channel;
//! * weight gradient: a tile of output channels × the 5 taps of one kernel row, accumulated
//!   over every position of every sample of the chunk, then summed across lanes in a fixed order;
//! * input gradient: the full correlation of the output gradient with the kernels, up to 8 input
//!   channels × one vector of input positions per tile, reading the output gradient at negative
//!   shifts (its planes carry a zero margin in front for that).
//!
//! Tiles hold 4, 6 or 8 channels ([`block_size`]), so LeNet's 6-channel layers waste no lanes.
//!
//! GEMM libraries reach a fraction of their speed on these shapes (K = 25 and M = 6 for the
//! first layer; for the second, packing the operands costs as much as the product), which is why
//! these loops are written by hand.

use super::params::ParamBuilder;
use crate::kernels::simd::{F32x, Portable8, SimdLevel, multiversion};
use std::ops::Range;

/// Kernel size.
pub(crate) const K: usize = 5;
/// Positions are padded to a multiple of this (the widest SIMD lane count).
const LANES_MAX: usize = 16;
/// Channels computed together by the forward and input-gradient kernels (each needs a register
/// per channel): the smallest of 4, 6 or 8 that holds them all, else 8.
fn block_size(channels: usize) -> usize {
    match channels {
        0..=4 => 4,
        5..=6 => 6,
        _ => 8,
    }
}

fn round_up(n: usize) -> usize {
    n.div_ceil(LANES_MAX) * LANES_MAX
}

/// `Σ v` accumulated in 16 lanes (vectorizes; a fixed order, so deterministic).
fn sum(v: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES_MAX];
    let mut chunks = v.chunks_exact(LANES_MAX);
    for c in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conv2d {
    pub cin: usize,
    pub cout: usize,
    pub pad: usize,
    /// Padded input height and width.
    pub hp: usize,
    pub wp: usize,
    /// Valid output height and width.
    pub ho: usize,
    pub wo: usize,
    /// Whether [`Conv2d::backward`] computes the input gradient (not for a first layer).
    pub input_grad: bool,
    weight: Range<usize>,
    bias: Range<usize>,
}

impl Conv2d {
    /// Declares `{name}.weight` `[cout, cin, 5, 5]` and `{name}.bias` `[cout]` for `h×w` inputs.
    pub fn new(params: &mut ParamBuilder, name: &str, (cin, cout): (usize, usize), (h, w): (usize, usize), pad: usize, input_grad: bool) -> Self {
        let fan_in = cin * K * K;
        let weight = params.add(&format!("{name}.weight"), &[cout, cin, K, K], fan_in);
        let bias = params.add(&format!("{name}.bias"), &[cout], fan_in);
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        assert!(hp >= K && wp >= K && cin > 0 && cout > 0, "a {K}x{K} convolution needs at least {K}x{K} padded input");
        Conv2d { cin, cout, pad, hp, wp, ho: hp - K + 1, wo: wp - K + 1, input_grad, weight, bias }
    }

    fn plane(&self) -> usize {
        self.hp * self.wp
    }
    /// Flat output positions per channel (with the garbage columns).
    fn npos(&self) -> usize {
        self.ho * self.wp
    }
    /// Per-channel stride of the output: `npos` rounded up to whole SIMD vectors.
    pub fn npos_pad(&self) -> usize {
        round_up(self.npos())
    }
    /// Floats per sample of the input: the padded image plus the zeros the last shifts read.
    pub fn in_stride(&self) -> usize {
        self.cin * self.plane() + (self.npos_pad() - self.npos()) + K - 1
    }
    /// Floats of the output of a chunk of `s` samples, `[cout][s][npos_pad]`.
    pub fn out_len(&self, s: usize) -> usize {
        self.cout * s * self.npos_pad()
    }
    /// The output gradient's layout for [`Conv2d::backward`]: `dy[o][s][margin + q]`, planes of
    /// `plane` floats that are zero outside the valid positions (the input gradient reads up to
    /// `4·wp + 4` before a position and up to a whole input plane after it).
    pub fn dy_layout(&self) -> (usize, usize) {
        if self.input_grad {
            let margin = round_up((K - 1) * self.wp + K - 1);
            (margin, margin + self.npos_pad().max(self.dx_plane()))
        } else {
            (0, self.npos_pad())
        }
    }
    pub fn dy_len(&self, s: usize) -> usize {
        self.cout * s * self.dy_layout().1
    }
    /// Per-channel stride of the input gradient `dx[s][c][dx_plane]` (the padded input plane,
    /// rounded up to whole vectors).
    pub fn dx_plane(&self) -> usize {
        round_up(self.plane())
    }
    pub fn dx_len(&self, s: usize) -> usize {
        s * self.cin * self.dx_plane()
    }
    fn shifts(&self) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.cin * K * K);
        for c in 0..self.cin {
            for ky in 0..K {
                for kx in 0..K {
                    v.push(c * self.plane() + ky * self.wp + kx);
                }
            }
        }
        v
    }

    /// Copies `s` unpadded `[cin, h, w]` images (rows of `x`) into the padded input layout.
    pub fn pack_input(&self, x: &[f32], s: usize, out: &mut [f32]) {
        let (h, w, stride) = (self.hp - 2 * self.pad, self.wp - 2 * self.pad, self.in_stride());
        let out = &mut out[..s * stride];
        out.fill(0.0);
        for (img, dst) in x.chunks_exact(self.cin * h * w).zip(out.chunks_exact_mut(stride)) {
            for c in 0..self.cin {
                for y in 0..h {
                    let at = c * self.plane() + (y + self.pad) * self.wp + self.pad;
                    dst[at..at + w].copy_from_slice(&img[(c * h + y) * w..][..w]);
                }
            }
        }
    }

    /// `y[o][s][q] = b[o] + Σ_tap W[o][tap]·x[s][shift(tap) + q]` for a chunk of `s` samples.
    pub fn forward(&self, isa: SimdLevel, p: &[f32], x: &[f32], s: usize, y: &mut [f32]) {
        let (w, b) = (&p[self.weight.clone()], &p[self.bias.clone()]);
        let ntaps = self.cin * K * K;
        let block = block_size(self.cout);
        let blocks = self.cout.div_ceil(block);
        // Weights as [block][tap][channel in block] so that one tap's weights are adjacent;
        // channels past `cout` in the last block repeat the last channel (computed, not stored).
        let mut wt = vec![0f32; blocks * ntaps * block];
        let mut bt = vec![0f32; blocks * block];
        for blk in 0..blocks {
            for j in 0..block {
                let o = (blk * block + j).min(self.cout - 1);
                for t in 0..ntaps {
                    wt[(blk * ntaps + t) * block + j] = w[o * ntaps + t];
                }
                bt[blk * block + j] = b[o];
            }
        }
        let (shifts, np, stride) = (self.shifts(), self.npos_pad(), self.in_stride());
        assert!(x.len() >= s * stride && y.len() >= self.out_len(s), "convolution buffers too short");
        let geometry = Geometry { shifts: &shifts, np, s, cout: self.cout, block };
        for si in 0..s {
            conv_forward(isa, &x[si * stride..][..stride], &wt, &bt, &geometry, si, y);
        }
    }

    /// Adds the chunk's weight and bias gradients to `grads` and, when the layer computes input
    /// gradients, writes `dx` (`[s][cin][dx_plane]`, padded positions included). `dy` is in the
    /// [`Conv2d::dy_layout`]; `x` is the forward input.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(&self, isa: SimdLevel, p: &[f32], grads: &mut [f32], x: &[f32], dy: &[f32], s: usize, dx: Option<&mut [f32]>) {
        let (margin, plane) = self.dy_layout();
        let (np, stride, ntaps) = (self.npos_pad(), self.in_stride(), self.cin * K * K);
        assert!(x.len() >= s * stride && dy.len() >= self.dy_len(s), "convolution buffers too short");
        let db = &mut grads[self.bias.clone()];
        for (o, g) in db.iter_mut().enumerate() {
            for si in 0..s {
                *g += sum(&dy[(o * s + si) * plane + margin..][..np]);
            }
        }
        let shifts = self.shifts();
        let geometry = Geometry { shifts: &shifts, np, s, cout: self.cout, block: 0 };
        let mut dw = vec![0f32; self.cout * ntaps];
        conv_weight_grad(isa, x, stride, dy, margin, plane, &geometry, &mut dw);
        for (g, d) in grads[self.weight.clone()].iter_mut().zip(&dw) {
            *g += d;
        }
        if let Some(dx) = dx {
            assert!(self.input_grad, "this convolution was built without input gradients");
            let w = &p[self.weight.clone()];
            let block = block_size(self.cin);
            let cblocks = self.cin.div_ceil(block);
            // Weights as [cblock][o][ky·5 + kx][input channel in block] (the last block padded
            // by repeating the last channel).
            let mut wx = vec![0f32; cblocks * self.cout * K * K * block];
            for cb in 0..cblocks {
                for o in 0..self.cout {
                    for r in 0..K * K {
                        for j in 0..block {
                            let c = (cb * block + j).min(self.cin - 1);
                            wx[((cb * self.cout + o) * K * K + r) * block + j] = w[(o * self.cin + c) * K * K + r];
                        }
                    }
                }
            }
            let dxp = self.dx_plane();
            assert!(dx.len() >= self.dx_len(s), "input gradient buffer too short");
            let g = InputGrad { wx: &wx, cin: self.cin, cout: self.cout, wp: self.wp, dx_plane: dxp, margin, plane, s, block };
            for si in 0..s {
                conv_input_grad(isa, dy, &g, si, &mut dx[si * self.cin * dxp..][..self.cin * dxp]);
            }
        }
    }
}

/// What the forward and weight-gradient kernels need to know about the layer and the chunk.
struct Geometry<'a> {
    /// Flat shift of each tap, in PyTorch's weight order `(c, ky, kx)`.
    shifts: &'a [usize],
    /// Output positions per channel (a multiple of 16).
    np: usize,
    /// Samples in the chunk.
    s: usize,
    cout: usize,
    /// Output channels per forward tile ([`block_size`]).
    block: usize,
}

multiversion! {
    /// The forward pass of sample `si` (input `x`, one sample) into `y[o][si][..]`.
    fn conv_forward(x: &[f32], wt: &[f32], bt: &[f32], g: &Geometry, si: usize, y: &mut [f32]) => conv_forward_kernel::<V>, portable: Portable8
}

#[inline(always)]
fn conv_forward_kernel<V: F32x>(x: &[f32], wt: &[f32], bt: &[f32], g: &Geometry, si: usize, y: &mut [f32]) {
    match g.block {
        4 => forward_tiles::<V, 4>(x, wt, bt, g, si, y),
        6 => forward_tiles::<V, 6>(x, wt, bt, g, si, y),
        _ => forward_tiles::<V, 8>(x, wt, bt, g, si, y),
    }
}

/// Per tile of `B` output channels × one vector of positions: `B` accumulators start at the
/// biases, and each tap adds one shifted input vector times `B` broadcast weights.
#[inline(always)]
fn forward_tiles<V: F32x, const B: usize>(x: &[f32], wt: &[f32], bt: &[f32], g: &Geometry, si: usize, y: &mut [f32]) {
    let ntaps = g.shifts.len();
    let blocks = g.cout.div_ceil(B);
    let max_shift = g.shifts.iter().copied().max().unwrap_or(0);
    assert!(x.len() >= max_shift + g.np && g.np.is_multiple_of(V::LANES));
    assert!(y.len() >= g.cout * g.s * g.np && wt.len() >= blocks * ntaps * B && bt.len() >= blocks * B);
    for blk in 0..blocks {
        let wb = &wt[blk * ntaps * B..][..ntaps * B];
        let channels = (g.cout - blk * B).min(B);
        for q0 in (0..g.np).step_by(V::LANES) {
            // SAFETY: the asserts above bound every load (q0 + shift + LANES ≤ np + max_shift ≤
            // x.len()) and store (channel < cout, position < np); V's instruction set is enabled
            // by the multiversion! wrapper.
            unsafe {
                let mut acc = [V::zero(); B];
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = V::splat(bt[blk * B + j]);
                }
                for (t, &shift) in g.shifts.iter().enumerate() {
                    let xv = V::load(x.as_ptr().add(q0 + shift));
                    let w = wb.as_ptr().add(t * B);
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = V::mul_add(V::splat(*w.add(j)), xv, *a);
                    }
                }
                for (j, a) in acc.iter().enumerate().take(channels) {
                    a.store(y.as_mut_ptr().add(((blk * B + j) * g.s + si) * g.np + q0));
                }
            }
        }
    }
}

multiversion! {
    /// `dw[o][tap] = Σ_s Σ_q dy[o][s][q]·x[s][shift(tap) + q]` over the whole chunk.
    #[allow(clippy::too_many_arguments)]
    fn conv_weight_grad(x: &[f32], stride: usize, dy: &[f32], margin: usize, plane: usize, g: &Geometry, dw: &mut [f32]) => conv_weight_grad_kernel::<V>, portable: Portable8
}

#[inline(always)]
fn conv_weight_grad_kernel<V: F32x>(x: &[f32], stride: usize, dy: &[f32], margin: usize, plane: usize, g: &Geometry, dw: &mut [f32]) {
    // 4 channels x 5 taps = 20 accumulators on AVX-512 (32 registers), 2 x 5 on AVX2 (16).
    if V::LANES >= 16 {
        weight_grad_tiles::<V, 4>(x, stride, dy, margin, plane, g, dw)
    } else {
        weight_grad_tiles::<V, 2>(x, stride, dy, margin, plane, g, dw)
    }
}

#[inline(always)]
fn weight_grad_tiles<V: F32x, const OB: usize>(x: &[f32], stride: usize, dy: &[f32], margin: usize, plane: usize, g: &Geometry, dw: &mut [f32]) {
    let ntaps = g.shifts.len();
    let max_shift = g.shifts.iter().copied().max().unwrap_or(0);
    assert!(x.len() >= (g.s - 1) * stride + max_shift + g.np && stride >= max_shift + g.np);
    assert!(dy.len() >= g.cout * g.s * plane && plane >= margin + g.np && dw.len() >= g.cout * ntaps);
    assert!(ntaps.is_multiple_of(K) && g.np.is_multiple_of(V::LANES));
    let mut lanes = [0f32; LANES_MAX];
    for o0 in (0..g.cout).step_by(OB) {
        // Channels past cout repeat the last one (computed, never stored).
        let chans: [usize; OB] = std::array::from_fn(|j| (o0 + j).min(g.cout - 1));
        for row in 0..ntaps / K {
            let shift0 = g.shifts[row * K];
            // SAFETY: bounded by the asserts above (sample si's reads stay within its stride and
            // below x.len(); dy reads within the planes); V's instruction set is enabled by the
            // multiversion wrapper.
            unsafe {
                let mut acc = [[V::zero(); K]; OB];
                for si in 0..g.s {
                    let xs = x.as_ptr().add(si * stride + shift0);
                    let dys: [*const f32; OB] = std::array::from_fn(|j| dy.as_ptr().add((chans[j] * g.s + si) * plane + margin));
                    for q0 in (0..g.np).step_by(V::LANES) {
                        let d: [V; OB] = std::array::from_fn(|j| V::load(dys[j].add(q0)));
                        for kx in 0..K {
                            let xv = V::load(xs.add(q0 + kx));
                            for (a, &dj) in acc.iter_mut().zip(&d) {
                                a[kx] = V::mul_add(dj, xv, a[kx]);
                            }
                        }
                    }
                }
                for (j, a) in acc.iter().enumerate() {
                    if o0 + j >= g.cout {
                        break;
                    }
                    for (kx, v) in a.iter().enumerate() {
                        v.store(lanes.as_mut_ptr());
                        dw[(o0 + j) * ntaps + row * K + kx] = lanes[..V::LANES].iter().sum();
                    }
                }
            }
        }
    }
}

/// What the input-gradient kernel needs.
struct InputGrad<'a> {
    /// Weights `[cblock][o][ky·5 + kx][8]`.
    wx: &'a [f32],
    cin: usize,
    cout: usize,
    wp: usize,
    dx_plane: usize,
    /// The output gradient's layout (see [`Conv2d::dy_layout`]).
    margin: usize,
    plane: usize,
    s: usize,
    /// Input channels per tile ([`block_size`]).
    block: usize,
}

multiversion! {
    /// `dx[c][p] = Σ_o Σ_(ky,kx) W[o][c][ky][kx]·dy[o][p − ky·wp − kx]` for sample `si`.
    fn conv_input_grad(dy: &[f32], g: &InputGrad, si: usize, dx: &mut [f32]) => conv_input_grad_kernel::<V>, portable: Portable8
}

#[inline(always)]
fn conv_input_grad_kernel<V: F32x>(dy: &[f32], g: &InputGrad, si: usize, dx: &mut [f32]) {
    match g.block {
        4 => input_grad_tiles::<V, 4>(dy, g, si, dx),
        6 => input_grad_tiles::<V, 6>(dy, g, si, dx),
        _ => input_grad_tiles::<V, 8>(dy, g, si, dx),
    }
}

/// Per tile of `B` input channels × one vector of input positions: every output channel and
/// kernel offset adds one shifted output-gradient vector times `B` broadcast weights.
#[inline(always)]
fn input_grad_tiles<V: F32x, const B: usize>(dy: &[f32], g: &InputGrad, si: usize, dx: &mut [f32]) {
    let reach = (K - 1) * g.wp + K - 1;
    let blocks = g.cin.div_ceil(B);
    assert!(g.margin >= reach && g.plane >= g.margin + g.dx_plane && g.dx_plane.is_multiple_of(V::LANES));
    assert!(dy.len() >= g.cout * g.s * g.plane && dx.len() >= g.cin * g.dx_plane);
    assert!(g.wx.len() >= blocks * g.cout * K * K * B);
    for cb in 0..blocks {
        let channels = (g.cin - cb * B).min(B);
        for p0 in (0..g.dx_plane).step_by(V::LANES) {
            // SAFETY: reads dy[o][si][margin + p0 − shift .. + LANES] with shift ≤ reach ≤ margin
            // and p0 + LANES ≤ dx_plane ≤ plane − margin; stores within dx (asserted above); V's
            // instruction set is enabled by the multiversion! wrapper.
            unsafe {
                let mut acc = [V::zero(); B];
                for o in 0..g.cout {
                    let d = dy.as_ptr().add((o * g.s + si) * g.plane + g.margin + p0);
                    let w = g.wx.as_ptr().add((cb * g.cout + o) * K * K * B);
                    for ky in 0..K {
                        for kx in 0..K {
                            let dv = V::load(d.sub(ky * g.wp + kx));
                            let wr = w.add((ky * K + kx) * B);
                            for (j, a) in acc.iter_mut().enumerate() {
                                *a = V::mul_add(V::splat(*wr.add(j)), dv, *a);
                            }
                        }
                    }
                }
                for (j, a) in acc.iter().enumerate().take(channels) {
                    a.store(dx.as_mut_ptr().add((cb * B + j) * g.dx_plane + p0));
                }
            }
        }
    }
}
