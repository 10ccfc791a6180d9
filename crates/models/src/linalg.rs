//! The crate's one safe wrapper over `matrixmultiply`'s GEMM (which picks its AVX2/FMA or AVX-512
//! kernel at run time and is deterministic: no threads of its own), for `f32` and `f64` matrices
//! read through strided views, so no caller ever copies a matrix to transpose it.
//!
//! Used by logistic regression (row-major `f64` and `f32` products: [`gemm_f64`], [`gemm_tn_f64`],
//! [`gemm_f32`]), LeNet's and the MLP's fully connected layers, and EfficientNet training's weight
//! gradients, stem and head. (The 1x1 convolutions of inference run on the packed-weight kernel
//! [`crate::kernels::PackedWeights`] instead, see `docs/compute.md`.)

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
    /// `matrixmultiply::sgemm` or `dgemm` with `alpha = 1` and column stride 1 for `c`.
    ///
    /// # Safety
    /// As `matrixmultiply`'s: every element of `a` `[m, k]`, `b` `[k, n]` and `c` `[m, n]` (row
    /// stride `ldc`) the strides reach is valid.
    #[allow(clippy::too_many_arguments)]
    #[doc(hidden)]
    unsafe fn raw(m: usize, k: usize, n: usize, a: View<Self>, b: View<Self>, beta: Self, c: *mut Self, ldc: usize);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl GemmScalar for f32 {
    unsafe fn raw(m: usize, k: usize, n: usize, a: View<f32>, b: View<f32>, beta: f32, c: *mut f32, ldc: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            matrixmultiply::sgemm(
                m, k, n, 1.0, a.data.as_ptr(), a.rs as isize, a.cs as isize, b.data.as_ptr(), b.rs as isize, b.cs as isize, beta, c,
                ldc as isize, 1,
            );
        }
    }
}

impl GemmScalar for f64 {
    unsafe fn raw(m: usize, k: usize, n: usize, a: View<f64>, b: View<f64>, beta: f64, c: *mut f64, ldc: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            matrixmultiply::dgemm(
                m, k, n, 1.0, a.data.as_ptr(), a.rs as isize, a.cs as isize, b.data.as_ptr(), b.rs as isize, b.cs as isize, beta, c,
                ldc as isize, 1,
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
    unsafe { T::raw(m, k, n, a, b, beta, c.as_mut_ptr(), n) }
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
    #[should_panic(expected = "too short")]
    fn short_operands_panic() {
        gemm(2, 3, 2, View::rows(&[0f32; 5], 3), View::rows(&[0f32; 6], 2), 0.0, &mut [0f32; 4]);
    }
}
