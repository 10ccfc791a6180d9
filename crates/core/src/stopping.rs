use serde::{Deserialize, Serialize};

/// One round of a run's history: what the model scored after training on `labels` labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub round: u32,
    pub labels: usize,
    pub accuracy: f64,
    pub log_loss: f64,
    /// Seconds spent in this round: fit + test scoring + pool scoring + selection.
    pub seconds: f64,
}

/// Why a run stopped, as reported in the run summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReason {
    pub rule: String,
    pub detail: String,
}

/// Reads the history and says whether more labels no longer pay.
pub trait StoppingRule: Send + Sync {
    fn name(&self) -> &str;
    /// `history` holds every round so far; `unlabeled` is how many samples remain to query.
    fn check(&self, history: &[RoundRecord], unlabeled: usize) -> Option<StopReason>;
}
