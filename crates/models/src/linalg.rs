//! Thin, checked wrappers over `matrixmultiply`'s GEMM for row-major slices.

/// `c[m×n] = a[m×k] · b[k×n]` (row-major, f64). `beta` scales what `c` held (0 overwrites).
pub fn gemm_f64(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], beta: f64, c: &mut [f64]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above guarantee every index the kernel touches is in bounds
    // (row strides k, n and n; column stride 1).
    unsafe {
        matrixmultiply::dgemm(
            m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, beta,
            c.as_mut_ptr(), n as isize, 1,
        );
    }
}

/// `c[k×n] = aᵀ · b` where `a` is `[m×k]` and `b` is `[m×n]` (row-major, f64).
pub fn gemm_tn_f64(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], beta: f64, c: &mut [f64]) {
    assert!(a.len() >= m * k && b.len() >= m * n && c.len() >= k * n);
    // SAFETY: aᵀ is read with row stride 1 and column stride k, all inside a[..m*k].
    unsafe {
        matrixmultiply::dgemm(
            k, m, n, 1.0, a.as_ptr(), 1, k as isize, b.as_ptr(), n as isize, 1, beta,
            c.as_mut_ptr(), n as isize, 1,
        );
    }
}

/// `c[m×n] = a[m×k] · b[k×n]` (row-major, f32).
pub fn gemm_f32(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: as in gemm_f64.
    unsafe {
        matrixmultiply::sgemm(
            m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0,
            c.as_mut_ptr(), n as isize, 1,
        );
    }
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
}
