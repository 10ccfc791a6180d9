use crate::{Answer, Result, SampleId};

/// Answers labels for queried samples: ground truth in a simulation, people in the server.
/// `None` means the sample cannot be labeled (it is skipped, not asked again).
pub trait Oracle {
    fn label(&mut self, ids: &[SampleId]) -> Result<Vec<Option<u32>>>;

    /// The answers as a [`crate::Session`] takes them.
    fn answer(&mut self, ids: &[SampleId]) -> Result<Vec<(SampleId, Answer)>> {
        Ok(ids.iter().copied().zip(self.label(ids)?.into_iter().map(Answer::from)).collect())
    }
}

/// The simulation's oracle: it knows every true label.
pub struct GroundTruthOracle<'a> {
    labels: &'a [u32],
}

impl<'a> GroundTruthOracle<'a> {
    pub fn new(labels: &'a [u32]) -> Self {
        GroundTruthOracle { labels }
    }
}

impl Oracle for GroundTruthOracle<'_> {
    fn label(&mut self, ids: &[SampleId]) -> Result<Vec<Option<u32>>> {
        Ok(ids.iter().map(|id| Some(self.labels[id.index()])).collect())
    }
}
