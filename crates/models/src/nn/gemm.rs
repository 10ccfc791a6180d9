//! Strided single-precision GEMM over slices, through `matrixmultiply` (which picks its AVX2/FMA
//! kernel at run time and is deterministic: no threads of its own).

/// A read-only matrix view: element `(i, j)` is `data[i·rs + j·cs]`. A transpose is the same data
/// with the strides swapped, so no layer ever copies a matrix to transpose it.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        View { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        View { data, rs: 1, cs: cols }
    }
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `c ← a·b + beta·c` with `a` `[m, k]`, `b` `[k, n]` and `c` row-major `[m, n]` (row stride `n`).
/// `beta = 0` overwrites `c` (whatever it held, NaN included).
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: View, b: View, beta: f32, c: &mut [f32]) {
    assert!(a.fits(m, k) && b.fits(k, n) && c.len() >= m * n, "gemm operands too short for {m}x{k}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| *v *= beta);
        return;
    }
    // SAFETY: `fits` checked that every element (i, j) of a and b the kernel reads lies in its
    // slice, and c holds m rows of n.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_views_multiply_like_the_hand_product() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
        let mut c = [f32::NAN; 4];
        gemm(2, 3, 2, View::rows(&a, 3), View::rows(&b, 2), 0.0, &mut c);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        // aᵀ·a' where a' = [[1,0],[0,1]] is 2x2: (3x2)·(2x2), accumulating onto ones.
        let mut t = [1.0; 6];
        gemm(3, 2, 2, View::transposed(&a, 3), View::rows(&[1.0, 0.0, 0.0, 1.0], 2), 1.0, &mut t);
        assert_eq!(t, [2.0, 5.0, 3.0, 6.0, 4.0, 7.0]);
    }
}
