//! Helpers shared by the diversity family's tests.

use quarry_core::{Matrix, Query, QueryContext, SampleId, Scores};

pub(super) fn line(xs: &[f32]) -> Matrix {
    Matrix::new(xs.to_vec(), xs.len(), 1).unwrap()
}

pub(super) fn rows_of(q: &Query) -> Vec<usize> {
    q.picks.iter().map(|p| p.id.index()).collect()
}

pub(super) fn distinct(v: &[usize]) -> bool {
    let mut d = v.to_vec();
    d.sort();
    d.dedup();
    d.len() == v.len()
}

pub(super) fn euclid(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt()
}

pub(super) fn coreset_ctx<'a>(cands: &'a [SampleId], labeled: &'a [SampleId], scores: &'a Scores) -> QueryContext<'a> {
    QueryContext { candidates: cands, scores, labeled, labeled_labels: &[], what_if: None }
}

pub(super) fn points(n: usize, dim: usize) -> impl proptest::strategy::Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-5.0f32..5.0, n * dim)
}
