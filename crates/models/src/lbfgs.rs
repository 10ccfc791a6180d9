//! Limited-memory BFGS for smooth convex objectives (Nocedal & Wright, Algorithm 7.4/7.5),
//! with a backtracking line search on the Armijo condition. Deterministic: no randomness,
//! fixed evaluation order.

/// Why the minimizer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The gradient's largest entry fell below the tolerance.
    GradientTolerance,
    /// The line search found no decrease (the objective is flat to machine precision).
    NoProgress,
    MaxIterations,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub iterations: usize,
    pub evaluations: usize,
    pub value: f64,
    pub grad_inf: f64,
    pub termination: Termination,
}

/// Minimize `f` from `x` in place. `f(x, grad)` returns the value and writes the gradient.
pub fn minimize(
    x: &mut [f64],
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    grad_tol: f64,
    max_iter: usize,
    memory: usize,
) -> Report {
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(x, &mut g);
    let mut evaluations = 1;
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(memory);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(memory);
    let mut rho: Vec<f64> = Vec::with_capacity(memory);
    let mut d = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut alpha_buf = vec![0.0; memory];
    let inf = |v: &[f64]| v.iter().fold(0.0f64, |m, a| m.max(a.abs()));

    for iter in 0..max_iter {
        let gi = inf(&g);
        if gi <= grad_tol {
            return Report { iterations: iter, evaluations, value: fx, grad_inf: gi, termination: Termination::GradientTolerance };
        }
        // Two-loop recursion: d = -H g.
        d.copy_from_slice(&g);
        for i in (0..s_hist.len()).rev() {
            let a = rho[i] * dot(&s_hist[i], &d);
            alpha_buf[i] = a;
            axpy(-a, &y_hist[i], &mut d);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / gi.max(1.0),
        };
        d.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let b = rho[i] * dot(&y_hist[i], &d);
            axpy(alpha_buf[i] - b, &s_hist[i], &mut d);
        }
        d.iter_mut().for_each(|v| *v = -*v);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            for (di, gi) in d.iter_mut().zip(&g) {
                *di = -gi / inf(&g).max(1.0);
            }
            slope = dot(&g, &d);
        }
        // Backtracking line search (Armijo, c1 = 1e-4).
        let mut step = 1.0;
        let mut accepted = false;
        let mut f_new = fx;
        for _ in 0..40 {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            f_new = f(&x_new, &mut g_new);
            evaluations += 1;
            if f_new.is_finite() && f_new <= fx + 1e-4 * step * slope {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            return Report { iterations: iter, evaluations, value: fx, grad_inf: inf(&g), termination: Termination::NoProgress };
        }
        let mut s: Vec<f64> = if s_hist.len() == memory { s_hist.remove(0) } else { vec![0.0; n] };
        let mut y: Vec<f64> = if y_hist.len() == memory { rho.remove(0); y_hist.remove(0) } else { vec![0.0; n] };
        for i in 0..n {
            s[i] = x_new[i] - x[i];
            y[i] = g_new[i] - g[i];
        }
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            rho.push(1.0 / sy);
            s_hist.push(s);
            y_hist.push(y);
        }
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        fx = f_new;
    }
    Report { iterations: max_iter, evaluations, value: fx, grad_inf: inf(&g), termination: Termination::MaxIterations }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_a_quadratic_exactly() {
        // f = ½ Σ c_i (x_i - t_i)², minimum at t.
        let c = [1.0, 10.0, 100.0];
        let t = [3.0, -2.0, 0.5];
        let mut x = [0.0; 3];
        let r = minimize(
            &mut x,
            |x, g| {
                let mut f = 0.0;
                for i in 0..3 {
                    g[i] = c[i] * (x[i] - t[i]);
                    f += 0.5 * c[i] * (x[i] - t[i]).powi(2);
                }
                f
            },
            1e-10,
            200,
            5,
        );
        assert_eq!(r.termination, Termination::GradientTolerance);
        for i in 0..3 {
            assert!((x[i] - t[i]).abs() < 1e-9, "{x:?}");
        }
    }

    #[test]
    fn minimizes_rosenbrock() {
        let mut x = [-1.2, 1.0];
        let r = minimize(
            &mut x,
            |x, g| {
                let (a, b) = (x[0], x[1]);
                g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
                g[1] = 200.0 * (b - a * a);
                (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
            },
            1e-8,
            1000,
            10,
        );
        assert!((x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6, "{x:?} {r:?}");
    }
}
