//! The evaluation observer a simulation attaches to its session: after a round, the model is
//! scored on the held-out test set (the session itself never sees a test set).

use crate::metrics;
use quarry_core::{Dataset, Learner, Result, RoundRecord, RoundStats, Session};

/// At which label counts the test set is scored (every round by default). The driver also
/// scores round 0, the round that spends the budget, and every round when a stopping rule
/// measures the model.
#[derive(Debug, Clone, Default)]
pub struct EvalSchedule {
    pub at: Vec<usize>,
    pub every: Option<usize>,
}

impl EvalSchedule {
    pub fn every_round() -> Self {
        EvalSchedule::default()
    }
    pub fn is_every_round(&self) -> bool {
        self.at.is_empty() && self.every.is_none()
    }
    pub fn wants(&self, labels: usize) -> bool {
        self.is_every_round() || self.at.contains(&labels) || self.every.is_some_and(|e| labels.is_multiple_of(e))
    }

    /// Whether a driver scores the round `stats` of `session`: round 0, the run's `last` round,
    /// every round a stopping rule measures the model, and the rounds the schedule wants.
    pub fn scores(&self, session: &Session, stats: &RoundStats, last: bool) -> bool {
        stats.round == 0 || last || self.wants(stats.labels) || session.stop_needs().any()
    }
}

/// Scores a session's model on a test set.
pub struct Evaluator<'a> {
    pub test: &'a Dataset,
    /// Record the recall of class 1 (a one-vs-rest run).
    pub positive_class: bool,
}

impl Evaluator<'_> {
    /// The round's record: the session's own measurements with the test-set figures.
    pub fn record(&self, learner: &dyn Learner, stats: &RoundStats) -> Result<RoundRecord> {
        let probs = learner.predict_proba(&self.test.features)?;
        let labels = &self.test.labels;
        let mut record = RoundRecord::scored(
            stats,
            metrics::accuracy(&probs, labels),
            metrics::balanced_accuracy(&probs, labels),
            metrics::log_loss(&probs, labels),
        );
        if self.test.n_classes() == 2 && self.positive_class {
            record.positive_recall = metrics::recalls(&probs, labels)[1];
        }
        Ok(record)
    }
}
