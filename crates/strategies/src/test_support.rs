//! Fixtures shared by the strategy modules' tests.

use quarry_core::{Matrix, SampleId};

/// Candidate ids `0..n`.
pub fn ids(n: usize) -> Vec<SampleId> {
    (0..n).map(SampleId::from).collect()
}

/// A matrix from rows of equal length.
pub fn matrix(rows: &[&[f32]]) -> Matrix {
    let cols = rows.first().map_or(0, |r| r.len());
    Matrix::new(rows.concat(), rows.len(), cols).unwrap()
}

/// `n` random probability rows over `k` classes (every entry > 0).
pub fn prob_rows(n: usize, k: usize) -> impl proptest::strategy::Strategy<Value = Vec<Vec<f32>>> {
    use proptest::strategy::Strategy as _;
    proptest::collection::vec(proptest::collection::vec(0.001f32..1.0, k), n).prop_map(|rows| {
        rows.into_iter()
            .map(|r| {
                let s: f32 = r.iter().sum();
                r.into_iter().map(|v| v / s).collect()
            })
            .collect()
    })
}
