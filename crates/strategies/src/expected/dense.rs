//! Small dense linear algebra in f64, row-major: what variance reduction needs and nothing more.
//! The O(n³) work goes through `matrixmultiply`'s GEMM (blocked, SIMD-dispatched at run time)
//! by way of quarry's one wrapper, [`quarry_core::linalg::gemm_into`], split over rayon's threads
//! by row blocks; the scalar loops left are O(n² · block).

use quarry_core::linalg::{View, gemm_into};
use rayon::prelude::*;

/// Block size of the blocked factorizations.
const NB: usize = 96;

/// `Σ a_i b_i`, four accumulators so the compiler can vectorize.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}

/// `c[m×n] = alpha · a[m×k] · b[k×n] + beta · c`, where `c` has row stride `ldc` and `a`, `b`
/// are read through (row stride, column stride): [`gemm_into`] over strided views.
///
/// # Panics
/// If an operand is too short for its shape.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize, k: usize, n: usize, alpha: f64, a: &[f64], a_st: (usize, usize), b: &[f64], b_st: (usize, usize), beta: f64,
    c: &mut [f64], ldc: usize,
) {
    gemm_into(m, k, n, alpha, View::strided(a, a_st.0, a_st.1), View::strided(b, b_st.0, b_st.1), beta, c, ldc);
}

/// [`gemm`] with the rows of `c` split over rayon's threads.
#[allow(clippy::too_many_arguments)]
pub fn par_gemm(
    m: usize, k: usize, n: usize, alpha: f64, a: &[f64], a_st: (usize, usize), b: &[f64], b_st: (usize, usize), beta: f64,
    c: &mut [f64], ldc: usize,
) {
    let rows = m.div_ceil(rayon::current_num_threads().max(1) * 2).max(16);
    if rows >= m {
        return gemm(m, k, n, alpha, a, a_st, b, b_st, beta, c, ldc);
    }
    c.par_chunks_mut(rows * ldc).enumerate().for_each(|(t, block)| {
        let r0 = t * rows;
        if r0 < m {
            gemm(rows.min(m - r0), k, n, alpha, &a[r0 * a_st.0..], a_st, b, b_st, beta, block, ldc);
        }
    });
}

/// `a · b` for square `[n, n]` matrices.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    par_gemm(n, n, n, 1.0, a, (n, 1), b, (n, 1), 0.0, &mut c, n);
    c
}

/// `a · b` for square `[n, n]` matrices whose product is known to be symmetric: only the
/// blocks on and above the diagonal are multiplied, then mirrored.
pub fn matmul_symmetric(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    if n == 0 {
        return c;
    }
    c.par_chunks_mut(NB * n).enumerate().for_each(|(t, block)| {
        let i0 = t * NB;
        let rows = block.len() / n;
        gemm(rows, n, n - i0, 1.0, &a[i0 * n..], (n, 1), &b[i0..], (n, 1), 0.0, &mut block[i0..], n);
    });
    mirror_upper(&mut c, n);
    c
}

/// Copy the upper triangle onto the lower one.
fn mirror_upper(c: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            c[i * n + j] = c[j * n + i];
        }
    }
}

/// The lower Cholesky factor `L` (`a = L Lᵀ`) of a symmetric positive-definite `[n, n]`
/// matrix (only its lower triangle is read), or `None` if it is not positive definite.
/// Right-looking and blocked: factor a diagonal block, solve the panel below it, update the
/// trailing matrix with one GEMM.
pub fn cholesky(a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    let mut l = a;
    let mut diag = vec![0.0; NB * NB];
    let mut panel = Vec::new();
    for k in (0..n).step_by(NB) {
        let kb = NB.min(n - k);
        // The diagonal block, unblocked; earlier columns' contributions are already subtracted.
        for j in 0..kb {
            let row_j: Vec<f64> = l[(k + j) * n + k..(k + j) * n + k + j].to_vec();
            let d = l[(k + j) * n + k + j] - dot(&row_j, &row_j);
            if !(d > 0.0 && d.is_finite()) {
                return None;
            }
            let ljj = d.sqrt();
            l[(k + j) * n + k + j] = ljj;
            for i in j + 1..kb {
                let at = (k + i) * n + k;
                l[at + j] = (l[at + j] - dot(&l[at..at + j], &row_j)) / ljj;
            }
        }
        for i in 0..kb {
            diag[i * kb..(i + 1) * kb].copy_from_slice(&l[(k + i) * n + k..(k + i) * n + k + kb]);
        }
        let below = n - k - kb;
        if below == 0 {
            break;
        }
        // The panel below: each row x solves x L_kkᵀ = a_row.
        let diag = &diag[..kb * kb];
        l[(k + kb) * n..].par_chunks_mut(n).for_each(|row| {
            let x = &mut row[k..k + kb];
            for j in 0..kb {
                x[j] = (x[j] - dot(&x[..j], &diag[j * kb..j * kb + j])) / diag[j * kb + j];
            }
        });
        // The trailing matrix: A₂₂ −= P Pᵀ.
        panel.clear();
        for i in k + kb..n {
            panel.extend_from_slice(&l[i * n + k..i * n + k + kb]);
        }
        par_gemm(below, kb, below, -1.0, &panel, (kb, 1), &panel, (1, kb), 1.0, &mut l[(k + kb) * n + k + kb..], n);
    }
    for i in 0..n {
        l[i * n + i + 1..(i + 1) * n].iter_mut().for_each(|v| *v = 0.0);
    }
    Some(l)
}

/// `L⁻¹` of a lower-triangular `[n, n]` `L` with a positive diagonal, by blocked forward
/// substitution on `L X = I`: block row `i` is `L_ii⁻¹ (I_i − L_{i,<i} X_{<i})`.
fn lower_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut x = vec![0.0; n * n];
    let mut r = Vec::new();
    for i0 in (0..n).step_by(NB) {
        let ib = NB.min(n - i0);
        let w = i0 + ib;
        r.clear();
        r.resize(ib * w, 0.0);
        for t in 0..ib {
            r[t * w + i0 + t] = 1.0;
        }
        // X is lower triangular, so only its first i0 columns meet L_{i,<i}.
        par_gemm(ib, i0, i0, -1.0, &l[i0 * n..], (n, 1), &x, (n, 1), 1.0, &mut r, w);
        for t in 0..ib {
            let (done, rest) = r.split_at_mut(t * w);
            let row = &mut rest[..w];
            for s in 0..t {
                let f = l[(i0 + t) * n + i0 + s];
                if f != 0.0 {
                    row.iter_mut().zip(&done[s * w..(s + 1) * w]).for_each(|(v, &d)| *v -= f * d);
                }
            }
            let inv = 1.0 / l[(i0 + t) * n + i0 + t];
            row.iter_mut().for_each(|v| *v *= inv);
            x[(i0 + t) * n..(i0 + t) * n + w].copy_from_slice(row);
        }
    }
    x
}

/// The inverse of a symmetric positive-definite `[n, n]` matrix, `a⁻¹ = L⁻ᵀ L⁻¹`, or `None`
/// if it is not positive definite; reuses `a`'s memory (two `n × n` buffers at most). With
/// `X = L⁻¹` lower triangular, block row `i` of `Xᵀ X` only needs rows `≥ i` of `X`.
pub fn spd_inverse(a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    let mut inv = cholesky(a, n)?;
    let x = lower_inverse(&inv, n);
    if n == 0 {
        return Some(inv);
    }
    inv.par_chunks_mut(NB * n).enumerate().for_each(|(t, block)| {
        let i0 = t * NB;
        let rows = block.len() / n;
        // (Xᵀ)[i0.., i0..] read as X's columns i0.. from row i0 on: row stride 1, column stride n.
        gemm(rows, n - i0, n - i0, 1.0, &x[i0 * n + i0..], (1, n), &x[i0 * n + i0..], (n, 1), 0.0, &mut block[i0..], n);
    });
    mirror_upper(&mut inv, n);
    Some(inv)
}

/// Solve `a x = rhs` for `[n, n]` `a` and `[n, cols]` `rhs` in place (Gaussian elimination
/// with partial pivoting); `false` if `a` is singular.
pub fn solve_in_place(a: &mut [f64], n: usize, rhs: &mut [f64], cols: usize) -> bool {
    for j in 0..n {
        let pivot = (j..n).max_by(|&r, &s| a[r * n + j].abs().total_cmp(&a[s * n + j].abs())).unwrap_or(j);
        let size = a[pivot * n + j].abs();
        if size == 0.0 || size.is_nan() {
            return false;
        }
        if pivot != j {
            for c in 0..n {
                a.swap(j * n + c, pivot * n + c);
            }
            for c in 0..cols {
                rhs.swap(j * cols + c, pivot * cols + c);
            }
        }
        for r in j + 1..n {
            let f = a[r * n + j] / a[j * n + j];
            if f != 0.0 {
                for c in j..n {
                    a[r * n + c] -= f * a[j * n + c];
                }
                for c in 0..cols {
                    rhs[r * cols + c] -= f * rhs[j * cols + c];
                }
            }
        }
    }
    for j in (0..n).rev() {
        for c in 0..cols {
            let s: f64 = (j + 1..n).map(|t| a[j * n + t] * rhs[t * cols + c]).sum();
            rhs[j * cols + c] = (rhs[j * cols + c] - s) / a[j * n + j];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::dense;

    #[test]
    fn cholesky_inverse_and_solve() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = dense::cholesky(a.to_vec(), 3).unwrap();
        // L = [[2, 0, 0], [1, 2, 0], [0.2, 0.4, sqrt(3 − 0.04 − 0.16)]]
        let want = [2.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.2, 0.4, 2.8f64.sqrt()];
        for (g, w) in l.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{l:?}");
        }
        let inv = dense::spd_inverse(a.to_vec(), 3).unwrap();
        let id = dense::matmul(&a, &inv, 3);
        for i in 0..3 {
            for j in 0..3 {
                assert!((id[i * 3 + j] - (i == j) as u8 as f64).abs() < 1e-12, "{id:?}");
            }
        }
        assert!(dense::cholesky(vec![1.0, 2.0, 2.0, 1.0], 2).is_none(), "indefinite");
        // Needs a row swap: [[0, 1], [1, 1]] x = [1, 2] → x = (1, 1).
        let (mut m, mut rhs) = ([0.0, 1.0, 1.0, 1.0], [1.0, 2.0]);
        assert!(dense::solve_in_place(&mut m, 2, &mut rhs, 1));
        assert_eq!(rhs, [1.0, 1.0]);
        assert!(!dense::solve_in_place(&mut [1.0, 2.0, 2.0, 4.0], 2, &mut [1.0, 1.0], 1), "singular");
    }

    /// Sizes past the block size, with a partial last block.
    #[test]
    fn blocked_cholesky_and_inverse_of_a_larger_matrix() {
        let n = 250;
        let g: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let mut a = dense::matmul(&g, &g.iter().enumerate().map(|(i, _)| g[(i % n) * n + i / n]).collect::<Vec<_>>(), n);
        (0..n).for_each(|i| a[i * n + i] += 1.0);
        let l = dense::cholesky(a.clone(), n).unwrap();
        let lt: Vec<f64> = (0..n * n).map(|i| l[(i % n) * n + i / n]).collect();
        let llt = dense::matmul(&l, &lt, n);
        let inv = dense::spd_inverse(a.clone(), n).unwrap();
        let id = dense::matmul(&a, &inv, n);
        for i in 0..n {
            for j in 0..n {
                assert!((llt[i * n + j] - a[i * n + j]).abs() < 1e-8 * a[i * n + i], "L Lᵀ at ({i}, {j})");
                assert!((id[i * n + j] - (i == j) as u8 as f64).abs() < 1e-8, "A A⁻¹ at ({i}, {j}): {}", id[i * n + j]);
                assert_eq!(inv[i * n + j], inv[j * n + i]);
            }
        }
    }

    #[test]
    fn parallel_matmul_matches_the_naive_product() {
        let n = 137;
        let a: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let b: Vec<f64> = (0..n * n).map(|i| ((i * 104_729) % 97) as f64 / 48.0 - 1.0).collect();
        let c = dense::matmul(&a, &b, n);
        for i in 0..n {
            for j in 0..n {
                let want: f64 = (0..n).map(|t| a[i * n + t] * b[t * n + j]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-10);
            }
        }
        // a · aᵀ is symmetric: the half-product agrees with the full one.
        let at: Vec<f64> = (0..n * n).map(|i| a[(i % n) * n + i / n]).collect();
        let (full, half) = (dense::matmul(&a, &at, n), dense::matmul_symmetric(&a, &at, n));
        assert!(full.iter().zip(&half).all(|(x, y)| (x - y).abs() < 1e-10));
    }
}
