//! Euclidean distance kernels over row-major `f32` matrices, shared by the diversity and density
//! families. Written so the compiler vectorizes them for the baseline target (no `unsafe`, no
//! CPU-specific build flags).
//!
//! * Row against row ([`squared_distance`], [`dot`]): 8 independent accumulator lanes.
//! * All pairs ([`for_each_pair`], [`nearest`]): the other matrix is [`Packed`] in panels of 16
//!   interleaved rows, so one multiply-add updates 16 dot products, and a tile of 3 rows shares
//!   every panel load (a small GEMM micro-kernel); distances come from ‖a‖² + ‖b‖² − 2a·b.
//!   [`squared_norms`] sums in the same order as the panel lanes, so a row's distance to an
//!   identical row is exactly 0.
//!

use quarry_core::Matrix;
use rayon::prelude::*;
use std::ops::Range;

/// Accumulator lanes of the row-against-row kernels.
const LANES: usize = 8;
/// Rows of the packed matrix per panel.
const PANEL: usize = 16;
/// Rows multiplied with one panel at a time (3 × 16 accumulators fill the SSE registers).
const TILE: usize = 3;
/// Rows per parallel task in [`nearest`].
const ROW_BLOCK: usize = 48;
/// Rows per parallel task in scans over all rows.
pub(crate) const SCAN_BLOCK: usize = 2048;

/// a·b.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot product of rows of different widths");
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    let mut acc = [0f32; LANES];
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// ‖a − b‖², from the differences (exactly 0 for equal rows).
pub(crate) fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "distance between rows of different widths");
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    let mut acc = [0f32; LANES];
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// ‖row‖², summed left to right like one lane of the panel kernel.
pub(crate) fn squared_norm(row: &[f32]) -> f32 {
    row.iter().fold(0f32, |s, &v| s + v * v)
}

/// ‖row‖² of every row, in parallel.
pub(crate) fn squared_norms(m: &Matrix) -> Vec<f32> {
    (0..m.rows()).into_par_iter().with_min_len(256).map(|i| squared_norm(m.row(i))).collect()
}

/// ‖row − center‖² of every row, in parallel.
pub(crate) fn distances_to(points: &Matrix, center: &[f32]) -> Vec<f32> {
    (0..points.rows()).into_par_iter().with_min_len(256).map(|i| squared_distance(points.row(i), center)).collect()
}

/// A matrix laid out for the all-pairs kernel: panel `p` holds rows `16p .. 16p + 16`
/// interleaved, `[dim][16]`, the last one padded with zero rows.
pub(crate) struct Packed {
    data: Vec<f32>,
    rows: usize,
    dim: usize,
    norms: Vec<f32>,
}

impl Packed {
    pub(crate) fn new(m: &Matrix) -> Self {
        let (rows, dim) = (m.rows(), m.cols());
        let mut data = vec![0f32; rows.div_ceil(PANEL) * dim * PANEL];
        for (p, panel) in data.chunks_exact_mut((dim * PANEL).max(1)).enumerate() {
            for w in 0..PANEL.min(rows - p * PANEL) {
                for (k, &v) in m.row(p * PANEL + w).iter().enumerate() {
                    panel[k * PANEL + w] = v;
                }
            }
        }
        Packed { data, rows, dim, norms: squared_norms(m) }
    }

    pub(crate) fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }

    /// The rows of panel `p`.
    pub(crate) fn panel_rows(&self, p: usize) -> Range<usize> {
        p * PANEL..(p * PANEL + PANEL).min(self.rows)
    }
}

/// The dot products of `R` rows with the 16 rows of one panel.
#[inline(always)]
fn panel_dots<const R: usize>(a: [&[f32]; R], panel: &[f32]) -> [[f32; PANEL]; R] {
    let dim = panel.len() / PANEL;
    let a: [&[f32]; R] = std::array::from_fn(|r| &a[r][..dim]);
    let mut acc = [[0f32; PANEL]; R];
    for k in 0..dim {
        let b: &[f32; PANEL] = panel[k * PANEL..(k + 1) * PANEL].try_into().expect("a panel column has 16 entries");
        for r in 0..R {
            let x = a[r][k];
            for w in 0..PANEL {
                acc[r][w] += x * b[w];
            }
        }
    }
    acc
}

/// Calls `visit(i, j, ‖a_i − b_j‖²)` (clamped at 0 against rounding) for every `i` in `rows`
/// and every row `j` of the panels `panels` of `b`, in increasing `j` for each `i`.
/// Sequential: callers parallelize over blocks of rows or of panels.
pub(crate) fn for_each_pair(
    a: &Matrix,
    a_norms: &[f32],
    rows: Range<usize>,
    b: &Packed,
    panels: Range<usize>,
    mut visit: impl FnMut(usize, usize, f32),
) {
    assert_eq!(a.cols(), b.dim, "distances between rows of different widths");
    let size = b.dim * PANEL;
    for p in panels {
        let panel = &b.data[p * size..(p + 1) * size];
        let cols = b.panel_rows(p);
        let mut emit = |i: usize, dots: &[f32; PANEL]| {
            for (j, &d) in cols.clone().zip(dots) {
                visit(i, j, (a_norms[i] + b.norms[j] - 2.0 * d).max(0.0));
            }
        };
        let mut i = rows.start;
        while i + TILE <= rows.end {
            let dots = panel_dots::<TILE>(std::array::from_fn(|r| a.row(i + r)), panel);
            dots.iter().enumerate().for_each(|(r, d)| emit(i + r, d));
            i += TILE;
        }
        for i in i..rows.end {
            emit(i, &panel_dots::<1>([a.row(i)], panel)[0]);
        }
    }
}

/// A row's nearest and second-nearest rows of another matrix (squared distances).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Nearest {
    pub(crate) d2: f32,
    /// The nearest row (the lowest on ties); `u32::MAX` when there are none.
    pub(crate) index: u32,
    /// ∞ when there is no second row.
    pub(crate) second_d2: f32,
}

/// For every row of `a`, its nearest and second-nearest rows of `b`, in parallel row blocks.
pub(crate) fn nearest(a: &Matrix, b: &Packed) -> Vec<Nearest> {
    let a_norms = squared_norms(a);
    let none = Nearest { d2: f32::INFINITY, index: u32::MAX, second_d2: f32::INFINITY };
    let mut out = vec![none; a.rows()];
    out.par_chunks_mut(ROW_BLOCK).enumerate().for_each(|(blk, out)| {
        let start = blk * ROW_BLOCK;
        for_each_pair(a, &a_norms, start..start + out.len(), b, 0..b.panels(), |i, j, d2| {
            let o = &mut out[i - start];
            if d2 < o.d2 {
                *o = Nearest { d2, index: j as u32, second_d2: o.d2 };
            } else if d2 < o.second_d2 {
                o.second_d2 = d2;
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::distance;
    use super::super::testing::{euclid, line};
    use quarry_core::{QuarryRng, seeded_rng};
    use rand::Rng;

    #[test]
    fn kernels_match_naive_sums_and_identical_rows_are_at_distance_zero() {
        let mut rng = seeded_rng(1, 0);
        for dim in [1usize, 7, 8, 13, 64, 67] {
            let random = |rows: usize, rng: &mut QuarryRng| Matrix::new((0..rows * dim).map(|_| rng.random_range(-3.0..3.0)).collect(), rows, dim).unwrap();
            let a = random(10, &mut rng);
            let mut b = random(20, &mut rng);
            b.push_row(a.row(6));
            let near = distance::nearest(&a, &distance::Packed::new(&b));
            for (i, near) in near.iter().enumerate() {
                let mut naive: Vec<(f64, usize)> = (0..b.rows()).map(|j| (euclid(a.row(i), b.row(j)).powi(2), j)).collect();
                naive.sort_by(|x, y| x.0.total_cmp(&y.0));
                let close = |got: f32, want: f64| (got as f64 - want).abs() < 1e-3 * (1.0 + want);
                assert!(close(near.d2, naive[0].0) && close(near.second_d2, naive[1].0), "dim {dim} row {i}");
                assert_eq!(near.index as usize, naive[0].1);
                assert!(close(distance::squared_distance(a.row(i), b.row(3)), euclid(a.row(i), b.row(3)).powi(2)));
            }
            assert_eq!((near[6].d2, near[6].index), (0.0, 20), "a row's distance to its copy is exactly 0 (dim {dim})");
            let d = distance::dot(a.row(0), b.row(1));
            let naive: f64 = a.row(0).iter().zip(b.row(1)).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            assert!((d as f64 - naive).abs() < 1e-4 * (1.0 + naive.abs()));
        }
        let none = distance::nearest(&line(&[1.0]), &distance::Packed::new(&Matrix::zeros(0, 1)));
        assert_eq!((none[0].d2, none[0].index), (f32::INFINITY, u32::MAX));
    }
}
