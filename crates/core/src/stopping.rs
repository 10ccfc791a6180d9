use serde::{Deserialize, Serialize};

/// One round of a run's history: what the model scored after training on `labels` labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub round: u32,
    pub labels: usize,
    pub accuracy: f64,
    /// Mean of the per-class recalls over the classes present in the test set.
    #[serde(default)]
    pub balanced_accuracy: f64,
    pub log_loss: f64,
    /// Seconds spent in this round: fit + test scoring + pool scoring + selection.
    pub seconds: f64,
    /// Accuracy of the previous round's model on this round's newly queried batch, before
    /// learning its labels (Zhu, Wang & Hovy 2008; AIFT's "already classified right").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_accuracy: Option<f64>,
    /// Largest and mean uncertainty (1 − max p) of this round's model over the unlabeled
    /// candidates, measured when a stopping rule reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uncertainty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_uncertainty: Option<f64>,
    /// Cohen's κ between this round's and the previous round's predictions on the stop set
    /// (Bloodgood & Vijay-Shanker 2009), measured when a stopping rule reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_set_kappa: Option<f64>,
    /// Recall of class 1 in a one-vs-rest run (`--positive-class`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_recall: Option<f64>,
}

impl RoundRecord {
    /// A record with only the always-measured fields.
    pub fn new(round: u32, labels: usize, accuracy: f64, log_loss: f64, seconds: f64) -> Self {
        RoundRecord {
            round,
            labels,
            accuracy,
            balanced_accuracy: accuracy,
            log_loss,
            seconds,
            positive_recall: None,
            batch_accuracy: None,
            max_uncertainty: None,
            mean_uncertainty: None,
            stop_set_kappa: None,
        }
    }
}

/// Why a run stopped, as reported in the run summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReason {
    pub rule: String,
    pub detail: String,
}

/// What a stopping rule reads beyond accuracy, so the loop measures only that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopNeeds {
    pub uncertainty: bool,
    pub stop_set: bool,
}

/// Reads the history and says whether more labels no longer pay.
pub trait StoppingRule: Send + Sync {
    fn name(&self) -> &str;
    fn needs(&self) -> StopNeeds {
        StopNeeds::default()
    }
    /// `history` holds every round so far; `unlabeled` is how many samples remain to query.
    fn check(&self, history: &[RoundRecord], unlabeled: usize) -> Option<StopReason>;
}
