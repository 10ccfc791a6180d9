//! GEMM with pre-packed weights and a fused epilogue: `out = act(a · w + bias) (+ residual)`.
//!
//! Why not a general GEMM library: in a CNN's 1x1 convolutions one operand (the weights) is fixed and
//! the other (activations `[pixels, cin]`) is new on every call, often with few output channels (16, 24,
//! 40). A general GEMM repacks both operands on every call; for an output width of 16–40, packing the
//! activations costs about as much as the multiply (28 % of EfficientNet-Lite0's time went to
//! `matrixmultiply`'s packing routine). Here the weights are packed once, at load, into column panels,
//! and the micro-kernel broadcasts activations straight from their rows, so nothing is packed at run
//! time; bias, clamp and residual are applied to the accumulators before the single store.
//!
//! Measured on the twenty 1x1/stem GEMM shapes of one 224x224 image (AVX-512 Xeon, one thread, best
//! of 7, bias + ReLU6 included, caches warm): `matrixmultiply` 0.3.11 (its AVX-512 kernel, in blocks of
//! 256 rows plus an epilogue pass) 4.9 ms, the `gemm` crate 0.18 (stable features) 6.0 ms, this 3.5 ms;
//! per shape 60–157 GFLOP/s here against 53–131 and 55–84. `gemm` would also add about 42 s of CPU
//! (64 s wall) to a clean release build on two cores, against 2 s for `matrixmultiply`.
//!
//! Blocking: rows are taken in chunks whose activations fit in L2 (`ROW_CHUNK_BYTES`); inside a chunk
//! each weight panel (`k x NR`) is swept over all rows of the chunk in `MR`-row micro-tiles, so the
//! panel stays in L1/L2 while the activation rows it meets are L2-resident.

#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{F32x, Scalar, SimdLevel, multiversion};

/// Target size of the activation rows one chunk reads.
const ROW_CHUNK_BYTES: usize = 512 * 1024;

/// Register tile of each instruction set: `MR` rows by `NV` vectors of columns, `MR·NV` accumulators.
/// AVX-512: 8 x 2 zmm (16 of 32 registers); AVX2: 6 x 2 ymm (12 of 16); scalar: 4 x 4.
const AVX512_TILE: (usize, usize) = (8, 2);
const AVX2_TILE: (usize, usize) = (6, 2);
const SCALAR_TILE: (usize, usize) = (4, 4);

fn tile(level: SimdLevel) -> (usize, usize, usize) {
    match level {
        SimdLevel::Avx512 => (AVX512_TILE.0, AVX512_TILE.1, 16),
        SimdLevel::Avx2Fma => (AVX2_TILE.0, AVX2_TILE.1, 8),
        SimdLevel::Scalar => (SCALAR_TILE.0, SCALAR_TILE.1, 1),
    }
}

/// A `[k, n]` weight matrix and `[n]` bias packed for one instruction set: column panels of
/// `NR = NV · lanes` columns, each stored `k x NR` row-major (zero-padded past `n`), panel after panel.
#[derive(Clone, Debug)]
pub struct PackedWeights {
    level: SimdLevel,
    k: usize,
    n: usize,
    /// Panel width in columns (`NV · lanes`).
    nr: usize,
    data: Vec<f32>,
    /// Bias padded with zeros to a whole number of panels.
    bias: Vec<f32>,
}

impl PackedWeights {
    /// Packs `w` `[k, n]` (row-major) and `bias` `[n]` for `level` (lowered to what the CPU has).
    pub fn new(level: SimdLevel, w: &[f32], bias: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "PackedWeights: weight is not [{k}, {n}]");
        assert_eq!(bias.len(), n, "PackedWeights: bias is not [{n}]");
        assert!(k > 0 && n > 0, "PackedWeights: empty matrix");
        let level = level.min(SimdLevel::detect());
        let (_, nv, lanes) = tile(level);
        let nr = nv * lanes;
        let panels = n.div_ceil(nr);
        let mut data = vec![0.0; panels * k * nr];
        for p in 0..panels {
            for kk in 0..k {
                for j in 0..nr.min(n - p * nr) {
                    data[(p * k + kk) * nr + j] = w[kk * n + p * nr + j];
                }
            }
        }
        let mut padded_bias = vec![0.0; panels * nr];
        padded_bias[..n].copy_from_slice(bias);
        PackedWeights { level, k, n, nr, data, bias: padded_bias }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// `out[m, n] = clamp(a[m, k] · w + bias, lo, hi) (+ residual[m, n])`, all row-major, contiguous.
    pub fn gemm(&self, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]) {
        assert!(a.len().is_multiple_of(self.k), "gemm: activations are not [m, {}]", self.k);
        let m = a.len() / self.k;
        assert_eq!(out.len(), m * self.n, "gemm: output is not [{m}, {}]", self.n);
        if let Some(r) = residual {
            assert_eq!(r.len(), out.len(), "gemm: residual is not [{m}, {}]", self.n);
        }
        if m == 0 {
            return;
        }
        gemm_with(self.level, self, a, bounds, residual, out);
    }
}

multiversion! {
    /// [`PackedWeights::gemm`] on the instruction set the weights were packed for.
    fn gemm_with(p: &PackedWeights, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]) => driver_for::<V>
}

/// [`driver`] with the register tile of `V`'s instruction set, the tile [`tile`] packed the weights
/// for.
///
/// # Safety
/// As [`driver`].
#[inline(always)]
unsafe fn driver_for<V: Tiled>(p: &PackedWeights, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]) {
    unsafe { V::drive(p, a, bounds, residual, out) }
}

/// A vector type with its register tile.
trait Tiled: F32x {
    /// [`driver`] with this type's tile.
    ///
    /// # Safety
    /// As [`driver`].
    unsafe fn drive(p: &PackedWeights, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]);
}

#[cfg(target_arch = "x86_64")]
impl Tiled for Avx512 {
    #[inline(always)]
    unsafe fn drive(p: &PackedWeights, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]) {
        unsafe { driver::<Self, { AVX512_TILE.0 }, { AVX512_TILE.1 }>(p, a, bounds, residual, out) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Tiled for Avx2 {
    #[inline(always)]
    unsafe fn drive(p: &PackedWeights, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]) {
        unsafe { driver::<Self, { AVX2_TILE.0 }, { AVX2_TILE.1 }>(p, a, bounds, residual, out) }
    }
}

impl Tiled for Scalar {
    #[inline(always)]
    unsafe fn drive(p: &PackedWeights, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]) {
        unsafe { driver::<Self, { SCALAR_TILE.0 }, { SCALAR_TILE.1 }>(p, a, bounds, residual, out) }
    }
}

/// Walks row chunks, panels and `MR`-row tiles, calling the micro-kernel with the panel's vector count.
///
/// # Safety
/// Only the instruction set of `V`; shapes were checked by [`PackedWeights::gemm`], and the packing's
/// `nr` equals `NV · V::LANES` because both come from the same level's tile.
#[inline(always)]
unsafe fn driver<V: F32x, const MR: usize, const NV: usize>(p: &PackedWeights, a: &[f32], bounds: (f32, f32), residual: Option<&[f32]>, out: &mut [f32]) {
    let (k, n, nr) = (p.k, p.n, p.nr);
    assert_eq!(nr, NV * V::LANES);
    let m = a.len() / k;
    let chunk = (ROW_CHUNK_BYTES / (4 * k)).max(1).div_ceil(MR) * MR;
    let panels = n.div_ceil(nr);
    let res = residual.map_or(std::ptr::null(), |r| r.as_ptr());
    // SAFETY: row tiles cover rows < m (clamped inside the kernel), panels cover columns < n, and
    // packed data/bias are sized for whole panels; see `micro`.
    unsafe {
        let (lo, hi) = (V::splat(bounds.0), V::splat(bounds.1));
        let mut r0 = 0;
        while r0 < m {
            let r1 = (r0 + chunk).min(m);
            for panel in 0..panels {
                let c0 = panel * nr;
                let cols = nr.min(n - c0);
                let vecs = cols.div_ceil(V::LANES);
                let b = p.data.as_ptr().add(panel * k * nr);
                let bias = p.bias.as_ptr().add(c0);
                let mut r = r0;
                while r < r1 {
                    let rows = MR.min(r1 - r);
                    let t = Tile { k, a: a.as_ptr().add(r * k), rows, b, ldb: nr, bias, cols, c: out.as_mut_ptr().add(r * n + c0), ldc: n, res: if res.is_null() { res } else { res.add(r * n + c0) } };
                    // A panel narrower than NV vectors only occurs at the right edge; the scalar tile
                    // has NV = 4 single-lane "vectors", hence the arms up to 4.
                    match vecs.min(NV) {
                        1 => rows_tile::<V, MR, 1>(t, lo, hi),
                        2 if NV >= 2 => rows_tile::<V, MR, 2>(t, lo, hi),
                        3 if NV >= 3 => rows_tile::<V, MR, 3>(t, lo, hi),
                        _ => rows_tile::<V, MR, NV>(t, lo, hi),
                    }
                    r += rows;
                }
            }
            r0 = r1;
        }
    }
}

/// Runs a full `MR`-row tile, or a tile of exactly the remaining rows at the bottom edge (so e.g. a
/// 7x7 map's 49 rows cost 6 full tiles and one of 1 row, not 7 full tiles).
///
/// # Safety
/// As [`micro`].
#[inline(always)]
unsafe fn rows_tile<V: F32x, const MR: usize, const NV: usize>(t: Tile, lo: V, hi: V) {
    unsafe {
        if t.rows >= MR {
            return micro::<V, MR, NV>(t, lo, hi);
        }
        match t.rows {
            1 => micro::<V, 1, NV>(t, lo, hi),
            2 => micro::<V, 2, NV>(t, lo, hi),
            3 => micro::<V, 3, NV>(t, lo, hi),
            4 => micro::<V, 4, NV>(t, lo, hi),
            5 => micro::<V, 5, NV>(t, lo, hi),
            6 => micro::<V, 6, NV>(t, lo, hi),
            7 => micro::<V, 7, NV>(t, lo, hi),
            _ => micro::<V, MR, NV>(t, lo, hi),
        }
    }
}

/// One micro-tile's operands: `rows ≤ MR` activation rows (stride `k`) against one weight panel.
#[derive(Clone, Copy)]
struct Tile {
    k: usize,
    a: *const f32,
    rows: usize,
    b: *const f32,
    ldb: usize,
    bias: *const f32,
    /// Valid output columns in this panel (≤ `NV · lanes`).
    cols: usize,
    c: *mut f32,
    ldc: usize,
    /// Residual at the tile's origin (stride `ldc`), or null.
    res: *const f32,
}

/// `MR x (NV·lanes)` register tile: accumulators start at the bias, take `k` rank-1 updates (one
/// broadcast per row, `NV` panel loads per step), then are clamped, get the residual added and are
/// stored (a partial last vector of columns with masked loads/stores).
///
/// # Safety
/// `a` has `rows` (`1 ≤ rows ≤ MR`) rows of `k` values; `b` has `k` rows of at least `NV·lanes` values at stride `ldb`;
/// `bias` has `NV·lanes` values; `c` (and `res` if not null) have `rows` rows of `cols` values at stride
/// `ldc`; the CPU supports `V`.
#[inline(always)]
unsafe fn micro<V: F32x, const MR: usize, const NV: usize>(t: Tile, lo: V, hi: V) {
    let l = V::LANES;
    unsafe {
        let mut acc = [[V::splat(0.0); NV]; MR];
        for v in 0..NV {
            let b = V::load(t.bias.add(v * l));
            for row in acc.iter_mut() {
                row[v] = b;
            }
        }
        // Rows past `rows` (only when the caller's tile is smaller than MR) repeat the last row:
        // computed, never stored.
        let mut rows_a = [t.a; MR];
        for (r, p) in rows_a.iter_mut().enumerate() {
            *p = t.a.add(r.min(t.rows - 1) * t.k);
        }
        let mut b = t.b;
        for kk in 0..t.k {
            let mut bv = [V::splat(0.0); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = V::load(b.add(v * l));
            }
            for r in 0..MR {
                let av = V::splat(*rows_a[r].add(kk));
                for v in 0..NV {
                    acc[r][v] = av.mul_add(bv[v], acc[r][v]);
                }
            }
            b = b.add(t.ldb);
        }
        for (r, row) in acc.iter().enumerate().take(t.rows) {
            for (v, x) in row.iter().enumerate() {
                let at = r * t.ldc + v * l;
                let mut y = x.clamp(lo, hi);
                // Only the last vector of the right-most panel can be partial.
                let valid = t.cols - v * l;
                if valid >= l {
                    if !t.res.is_null() {
                        y = y.add(V::load(t.res.add(at)));
                    }
                    y.store(t.c.add(at));
                } else {
                    if !t.res.is_null() {
                        y = y.add(V::load_partial(t.res.add(at), valid));
                    }
                    y.store_partial(t.c.add(at), valid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_at_every_level_and_edge() {
        // Sizes cross every edge: rows not a multiple of any MR, columns ending in partial panels and
        // partial vectors, k of 1.
        for &(m, k, n) in &[(1, 1, 1), (7, 3, 5), (13, 27, 32), (50, 16, 24), (9, 40, 1000), (300, 19, 37), (33, 144, 40), (49, 192, 24)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| ((i as f32) * 0.71).cos()).collect();
            let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.05 - 1.0).collect();
            let res: Vec<f32> = (0..m * n).map(|i| ((i as f32) * 0.13).sin()).collect();
            for (bounds, residual) in [((f32::NEG_INFINITY, f32::INFINITY), None), ((0.0, 6.0), Some(&res[..]))] {
                let mut want = vec![0.0; m * n];
                for i in 0..m {
                    for j in 0..n {
                        let mut s = bias[j] as f64;
                        for kk in 0..k {
                            s += a[i * k + kk] as f64 * w[kk * n + j] as f64;
                        }
                        want[i * n + j] = (s as f32).max(bounds.0).min(bounds.1) + residual.map_or(0.0, |r| r[i * n + j]);
                    }
                }
                for level in SimdLevel::available() {
                    let packed = PackedWeights::new(level, &w, &bias, k, n);
                    let mut out = vec![f32::NAN; m * n];
                    packed.gemm(&a, bounds, residual, &mut out);
                    for (i, (x, y)) in out.iter().zip(&want).enumerate() {
                        assert!((x - y).abs() < 1e-4, "{level:?} m{m} k{k} n{n} at {i}: {x} vs {y}");
                    }
                }
            }
        }
    }
}
