//! Helpers shared by the expected-change family's tests.

use quarry_core::{Probabilities, Query};

pub(super) fn picks(q: &Query) -> Vec<u32> {
    q.ids().iter().map(|i| i.0).collect()
}

pub(super) fn probs_of(rows: &[Vec<f32>]) -> Probabilities {
    Probabilities::from_rows(&rows.iter().map(|r| r.as_slice()).collect::<Vec<_>>()).unwrap()
}
