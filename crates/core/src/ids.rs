use serde::{Deserialize, Serialize};

/// A sample's stable identity: its row in the pool as read from the data file.
/// It never changes when samples are labeled, skipped or resumed from disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SampleId(pub u32);

impl SampleId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<usize> for SampleId {
    fn from(i: usize) -> Self {
        SampleId(u32::try_from(i).expect("pools hold fewer than 2^32 samples"))
    }
}

impl std::fmt::Display for SampleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}
