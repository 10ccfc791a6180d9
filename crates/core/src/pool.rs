use crate::SampleId;
use serde::{Deserialize, Serialize};

/// Where a pool sample stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleState {
    Unlabeled,
    /// Labeled with `label` in round `round` (round 0 is the initial set).
    Labeled { label: u32, round: u32 },
    /// The oracle declined to label it (e.g. an annotator said it cannot be labeled).
    Skipped { round: u32 },
}

/// The pool: which samples are labeled, unlabeled or skipped, in the order they were labeled.
/// It never holds a model, only ids and states, so it is cheap to save and resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pool {
    states: Vec<SampleState>,
    /// Labeled ids in the order they were labeled.
    order: Vec<SampleId>,
}

impl Pool {
    pub fn new(len: usize) -> Self {
        Pool { states: vec![SampleState::Unlabeled; len], order: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
    pub fn state(&self, id: SampleId) -> SampleState {
        self.states[id.index()]
    }
    pub fn n_labeled(&self) -> usize {
        self.order.len()
    }

    /// Labeled ids in labeling order.
    pub fn labeled(&self) -> &[SampleId] {
        &self.order
    }

    /// Labels of the labeled samples, aligned with [`Pool::labeled`].
    pub fn labels(&self) -> Vec<u32> {
        self.order
            .iter()
            .map(|&id| match self.states[id.index()] {
                SampleState::Labeled { label, .. } => label,
                _ => unreachable!("order holds only labeled samples"),
            })
            .collect()
    }

    /// Unlabeled ids in ascending order.
    pub fn unlabeled(&self) -> Vec<SampleId> {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, SampleState::Unlabeled))
            .map(|(i, _)| SampleId::from(i))
            .collect()
    }

    pub fn n_unlabeled(&self) -> usize {
        self.states.iter().filter(|s| matches!(s, SampleState::Unlabeled)).count()
    }

    /// Samples the oracle declined to label.
    pub fn n_skipped(&self) -> usize {
        self.states.iter().filter(|s| matches!(s, SampleState::Skipped { .. })).count()
    }

    /// Record an oracle's answer. Labeling a sample twice is a logic error and panics.
    pub fn set_label(&mut self, id: SampleId, label: u32, round: u32) {
        let s = &mut self.states[id.index()];
        assert!(matches!(s, SampleState::Unlabeled), "sample {id} labeled twice");
        *s = SampleState::Labeled { label, round };
        self.order.push(id);
    }

    /// Append `n` unlabeled samples (ids `len()..len() + n`).
    pub fn grow(&mut self, n: usize) {
        self.states.extend(std::iter::repeat_n(SampleState::Unlabeled, n));
    }

    /// Forget the answer about `id` (a correction follows): it is unlabeled again and leaves the
    /// labeling order.
    pub fn reset(&mut self, id: SampleId) {
        if matches!(self.states[id.index()], SampleState::Labeled { .. }) {
            self.order.retain(|&o| o != id);
        }
        self.states[id.index()] = SampleState::Unlabeled;
    }

    pub fn skip(&mut self, id: SampleId, round: u32) {
        let s = &mut self.states[id.index()];
        assert!(matches!(s, SampleState::Unlabeled), "sample {id} answered twice");
        *s = SampleState::Skipped { round };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labeling_moves_samples_and_keeps_order() {
        let mut pool = Pool::new(5);
        pool.set_label(SampleId(3), 1, 0);
        pool.set_label(SampleId(0), 0, 1);
        pool.skip(SampleId(4), 1);
        assert_eq!(pool.labeled(), &[SampleId(3), SampleId(0)]);
        assert_eq!(pool.labels(), vec![1, 0]);
        assert_eq!(pool.unlabeled(), vec![SampleId(1), SampleId(2)]);
        assert_eq!((pool.n_unlabeled(), pool.n_skipped()), (2, 1));
        assert_eq!(pool.state(SampleId(0)), SampleState::Labeled { label: 0, round: 1 });
    }

    #[test]
    #[should_panic(expected = "labeled twice")]
    fn labeling_twice_panics() {
        let mut pool = Pool::new(2);
        pool.set_label(SampleId(1), 0, 0);
        pool.set_label(SampleId(1), 0, 1);
    }
}
