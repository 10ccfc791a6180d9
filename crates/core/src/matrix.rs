use crate::{Error, Result};

/// A dense row-major `f32` matrix: `rows` samples of `cols` features.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Matrix {
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::shape("matrix data", format!("{rows}x{cols} = {}", rows * cols), data.len()));
        }
        Ok(Matrix { data, rows, cols })
    }

    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix { data: vec![0.0; rows * cols], rows, cols }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Append one row of `cols` values.
    pub fn push_row(&mut self, row: &[f32]) {
        assert_eq!(row.len(), self.cols, "row length");
        self.data.extend_from_slice(row);
        self.rows += 1;
    }

    /// The rows at `indices`, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix { data, rows: indices.len(), cols: self.cols }
    }

    /// Per-column mean and standard deviation (population, as scikit-learn's StandardScaler).
    pub fn column_mean_std(&self) -> (Vec<f64>, Vec<f64>) {
        let mut mean = vec![0f64; self.cols];
        for r in 0..self.rows {
            for (m, &v) in mean.iter_mut().zip(self.row(r)) {
                *m += v as f64;
            }
        }
        let n = self.rows.max(1) as f64;
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; self.cols];
        for r in 0..self.rows {
            for ((s, &v), m) in var.iter_mut().zip(self.row(r)).zip(&mean) {
                let d = v as f64 - m;
                *s += d * d;
            }
        }
        let std = var.iter().map(|s| (s / n).sqrt()).collect();
        (mean, std)
    }

    /// Standardize in place with the given statistics; a column of zero spread is only centred
    /// (as scikit-learn does).
    pub fn standardize(&mut self, mean: &[f64], std: &[f64]) {
        let cols = self.cols;
        for r in 0..self.rows {
            let row = &mut self.data[r * cols..(r + 1) * cols];
            for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
                let s = if *s > 0.0 { *s } else { 1.0 };
                *v = ((*v as f64 - m) / s) as f32;
            }
        }
    }

    pub fn scale(&mut self, factor: f32) {
        self.data.iter_mut().for_each(|v| *v *= factor);
    }
}

impl<'a> From<&'a Matrix> for std::borrow::Cow<'a, Matrix> {
    fn from(m: &'a Matrix) -> Self {
        std::borrow::Cow::Borrowed(m)
    }
}

impl From<Matrix> for std::borrow::Cow<'_, Matrix> {
    fn from(m: Matrix) -> Self {
        std::borrow::Cow::Owned(m)
    }
}
