//! quarry's one safe wrapper over `matrixmultiply`'s GEMM (which picks its AVX2/FMA or AVX-512
//! kernel at run time and is deterministic: no threads of its own), for `f32` and `f64` matrices
//! read through strided views, so no caller ever copies a matrix to transpose it. Every `unsafe`
//! call into `matrixmultiply` in the workspace is here.
//!
//! `matrixmultiply` is a GEMM kernel, not an ML framework, so it lives in the crate every other
//! crate depends on. Used by quarry-models (logistic regression's row-major `f64` and `f32`
//! products: [`gemm_f64`], [`gemm_tn_f64`], [`gemm_f32`]; LeNet's and the MLP's fully connected
//! layers; EfficientNet training's weight gradients, stem and head — re-exported there as
//! `quarry_models::linalg`) and by quarry-strategies (the learned strategies' small networks, and
//! variance reduction's blocked dense algebra through [`gemm_into`], with `alpha` and a row stride
//! for `c`).

/// A read-only matrix view: element `(i, j)` is `data[i·rs + j·cs]`. A transpose is the same data
/// with the strides swapped.
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T> {
    data: &'a [T],
    rs: usize,
    cs: usize,
}

impl<'a, T> View<'a, T> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        View { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [T], cols: usize) -> Self {
        View { data, rs: 1, cs: cols }
    }
    /// Element `(i, j)` at `data[i·row_stride + j·col_stride]`.
    pub fn strided(data: &'a [T], row_stride: usize, col_stride: usize) -> Self {
        View { data, rs: row_stride, cs: col_stride }
    }
    /// Whether every element of a `rows × cols` matrix lies in `data`.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// The element types `matrixmultiply` multiplies.
pub trait GemmScalar: Copy + sealed::Sealed {
    /// The multiplicative identity, `alpha` of the plain product.
    #[doc(hidden)]
    const ONE: Self;

    /// `matrixmultiply`'s `sgemm` or `dgemm` with column stride 1 for `c`.
    ///
    /// # Safety
    /// As `matrixmultiply`'s: every element of `a` `[m, k]`, `b` `[k, n]` and `c` `[m, n]` (row
    /// stride `ldc`) the strides reach is valid.
    #[allow(clippy::too_many_arguments)]
    #[doc(hidden)]
    unsafe fn raw(m: usize, k: usize, n: usize, alpha: Self, a: View<Self>, b: View<Self>, beta: Self, c: *mut Self, ldc: usize);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl GemmScalar for f32 {
    const ONE: f32 = 1.0;
    unsafe fn raw(m: usize, k: usize, n: usize, alpha: f32, a: View<f32>, b: View<f32>, beta: f32, c: *mut f32, ldc: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            matrixmultiply::sgemm(
                m, k, n, alpha, a.data.as_ptr(), a.rs as isize, a.cs as isize, b.data.as_ptr(), b.rs as isize, b.cs as isize, beta,
                c, ldc as isize, 1,
            );
        }
    }
}

impl GemmScalar for f64 {
    const ONE: f64 = 1.0;
    unsafe fn raw(m: usize, k: usize, n: usize, alpha: f64, a: View<f64>, b: View<f64>, beta: f64, c: *mut f64, ldc: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            matrixmultiply::dgemm(
                m, k, n, alpha, a.data.as_ptr(), a.rs as isize, a.cs as isize, b.data.as_ptr(), b.rs as isize, b.cs as isize, beta,
                c, ldc as isize, 1,
            );
        }
    }
}

/// `c ← a·b + beta·c` with `a` `[m, k]`, `b` `[k, n]` and `c` row-major `[m, n]` (row stride `n`).
/// `beta = 0` overwrites `c` (whatever it held, NaN included); with `k = 0` the product is empty and
/// `c` is only scaled by `beta` (`matrixmultiply`'s rule).
///
/// # Panics
/// If an operand is too short for its shape.
pub fn gemm<T: GemmScalar>(m: usize, k: usize, n: usize, a: View<T>, b: View<T>, beta: T, c: &mut [T]) {
    assert!(a.fits(m, k) && b.fits(k, n) && c.len() >= m * n, "gemm operands too short for {m}x{k}x{n}");
    // SAFETY: `fits` checked that every element (i, j) of a and b the kernel reads lies in its
    // slice, and c holds m rows of n.
    unsafe { T::raw(m, k, n, T::ONE, a, b, beta, c.as_mut_ptr(), n) }
}

/// `c ← alpha·a·b + beta·c` with `a` `[m, k]`, `b` `[k, n]`, into the `[m, n]` block of `c` whose
/// row `i` starts at `c[i·ldc]` (row stride `ldc ≥ n`, column stride 1): a block of a wider
/// matrix, or of a matrix whose rows are split among threads. `c` need only reach the block's last
/// element, `c[(m−1)·ldc + n − 1]`. `beta = 0` overwrites the block; with `k = 0` it is only
/// scaled by `beta` (`matrixmultiply`'s rule).
///
/// # Panics
/// If an operand is too short for its shape, or `ldc < n` with more than one row (rows would
/// overlap).
#[allow(clippy::too_many_arguments)]
pub fn gemm_into<T: GemmScalar>(m: usize, k: usize, n: usize, alpha: T, a: View<T>, b: View<T>, beta: T, c: &mut [T], ldc: usize) {
    assert!(m <= 1 || n == 0 || ldc >= n, "gemm row stride {ldc} below the {n} columns of c");
    assert!(
        a.fits(m, k) && b.fits(k, n) && View::strided(&*c, ldc, 1).fits(m, n),
        "gemm operands too short for {m}x{k}x{n}"
    );
    // SAFETY: `fits` checked that every element (i, j) of a and b the kernel reads, and of c it
    // reads or writes, lies in its slice; `ldc ≥ n` keeps c's rows apart.
    unsafe { T::raw(m, k, n, alpha, a, b, beta, c.as_mut_ptr(), ldc) }
}

/// `c[m×n] = a[m×k] · b[k×n] + beta·c` (row-major, f64).
pub fn gemm_f64(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], beta: f64, c: &mut [f64]) {
    gemm(m, k, n, View::rows(a, k), View::rows(b, n), beta, c);
}

/// `c[k×n] = aᵀ · b + beta·c` where `a` is `[m×k]` and `b` is `[m×n]` (row-major, f64).
pub fn gemm_tn_f64(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], beta: f64, c: &mut [f64]) {
    gemm(k, m, n, View::transposed(a, k), View::rows(b, n), beta, c);
}

/// `c[m×n] = a[m×k] · b[k×n]` (row-major, f32).
pub fn gemm_f32(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    gemm(m, k, n, View::rows(a, k), View::rows(b, n), 0.0, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_hand_product() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
        let mut c = [0.0; 4];
        gemm_f64(2, 3, 2, &a, &b, 0.0, &mut c);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        let mut t = [0.0; 6]; // aᵀ(3x2) · c... use a (2x3) as m=2,k=3 and b=[2x2]
        gemm_tn_f64(2, 3, 2, &a, &[1.0, 0.0, 0.0, 1.0], 0.0, &mut t);
        assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let mut c32 = [0f32; 4];
        gemm_f32(2, 3, 2, &[1., 2., 3., 4., 5., 6.], &[1., 0., 0., 1., 1., 1.], &mut c32);
        assert_eq!(c32, [4.0, 5.0, 10.0, 11.0]);
    }

    #[test]
    fn transposed_views_multiply_like_the_hand_product() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
        let mut c = [f32::NAN; 4];
        gemm(2, 3, 2, View::rows(&a, 3), View::rows(&b, 2), 0.0, &mut c);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        // aᵀ·a' where a' = [[1,0],[0,1]] is 2x2: (3x2)·(2x2), accumulating onto ones.
        let mut t = [1.0; 6];
        gemm(3, 2, 2, View::transposed(&a, 3), View::rows(&[1.0, 0.0, 0.0, 1.0], 2), 1.0, &mut t);
        assert_eq!(t, [2.0, 5.0, 3.0, 6.0, 4.0, 7.0]);
        // A strided view reads the same as the row-major one.
        let mut s = [f32::NAN; 4];
        gemm(2, 3, 2, View::strided(&a, 3, 1), View::strided(&b, 2, 1), 0.0, &mut s);
        assert_eq!(s, c);
    }

    #[test]
    fn gemm_into_scales_and_writes_a_block_of_a_wider_matrix() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
        // c is 2 rows of 3; the product lands in columns 1..3, minus itself, onto tens.
        // The slice ends at the block's last element: row 1 is only 2 long.
        let mut c = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0];
        gemm_into(2, 3, 2, -1.0, View::rows(&a, 3), View::rows(&b, 2), 1.0, &mut c[1..], 3);
        assert_eq!(c, [10.0, 6.0, 5.0, 10.0, 0.0, -1.0]);
        // alpha = 1, beta = 0, ldc = n is gemm itself.
        let (mut x, mut y) = ([f64::NAN; 4], [f64::NAN; 4]);
        gemm_into(2, 3, 2, 1.0, View::rows(&a, 3), View::rows(&b, 2), 0.0, &mut x, 2);
        gemm(2, 3, 2, View::rows(&a, 3), View::rows(&b, 2), 0.0, &mut y);
        assert_eq!(x, y);
        // k = 0 only scales c by beta.
        let mut z = [2.0; 4];
        gemm_into(2, 0, 2, 1.0, View::rows(&[], 0), View::rows(&[], 2), 0.5, &mut z, 2);
        assert_eq!(z, [1.0; 4]);
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn short_operands_panic() {
        gemm(2, 3, 2, View::rows(&[0f32; 5], 3), View::rows(&[0f32; 6], 2), 0.0, &mut [0f32; 4]);
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn gemm_into_short_block_panics() {
        gemm_into(2, 3, 2, 1.0, View::rows(&[0f64; 6], 3), View::rows(&[0f64; 6], 2), 0.0, &mut [0f64; 4], 3);
    }

    #[test]
    #[should_panic(expected = "row stride")]
    fn gemm_into_overlapping_rows_panic() {
        gemm_into(2, 3, 2, 1.0, View::rows(&[0f64; 6], 3), View::rows(&[0f64; 6], 2), 0.0, &mut [0f64; 4], 1);
    }
}
