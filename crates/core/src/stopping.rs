use serde::{Deserialize, Serialize};

/// One scored round of a run's history: the session's own measurements of the round
/// ([`RoundStats`], read through `Deref`: `record.labels`) and the model's figures on a test set.
/// Saved and reported as one flat record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// `seconds` here is the whole round as its driver timed it (query, answers, update, test).
    #[serde(flatten)]
    pub stats: RoundStats,
    pub accuracy: f64,
    /// Mean of the per-class recalls over the classes present in the test set.
    #[serde(default)]
    pub balanced_accuracy: f64,
    pub log_loss: f64,
    /// Recall of class 1 in a one-vs-rest run (`--positive-class`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_recall: Option<f64>,
}

impl RoundRecord {
    /// The record of a session round scored on a test set: the session's own measurements
    /// (`stats`) with the test-set figures.
    pub fn scored(stats: &RoundStats, accuracy: f64, balanced_accuracy: f64, log_loss: f64) -> Self {
        RoundRecord { stats: stats.clone(), accuracy, balanced_accuracy, log_loss, positive_recall: None }
    }
}

impl std::ops::Deref for RoundRecord {
    type Target = RoundStats;
    fn deref(&self) -> &RoundStats {
        &self.stats
    }
}

impl std::ops::DerefMut for RoundRecord {
    fn deref_mut(&mut self) -> &mut RoundStats {
        &mut self.stats
    }
}

/// What a session measured in one round, without any test set: what its stopping rules read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundStats {
    /// Round 0 is the first [`teach`](crate::Session::teach) (a simulation's initial set).
    pub round: u32,
    /// Labels in the pool after this round.
    pub labels: usize,
    /// Seconds spent teaching: recording the answers, updating the model, measuring for the rules.
    pub seconds: f64,
    /// Accuracy of the previous model on this round's newly labeled samples, before learning them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_accuracy: Option<f64>,
    /// Largest and mean uncertainty (1 − max p) over the unlabeled candidates, when a rule reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uncertainty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_uncertainty: Option<f64>,
    /// Cohen's κ between this and the previous model's predictions on the stop set, when a rule reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_set_kappa: Option<f64>,
}

/// Why a run stopped, as reported in the run summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopReason {
    pub rule: String,
    pub detail: String,
}

/// What a stopping rule reads beyond the pool's counts, so the session measures only that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopNeeds {
    pub uncertainty: bool,
    pub stop_set: bool,
}

impl StopNeeds {
    pub fn union(self, o: StopNeeds) -> StopNeeds {
        StopNeeds { uncertainty: self.uncertainty || o.uncertainty, stop_set: self.stop_set || o.stop_set }
    }
    pub fn any(self) -> bool {
        self.uncertainty || self.stop_set
    }
}

/// What a stopping rule sees: every round's measurements and where the pool stands.
#[derive(Debug, Clone, Copy)]
pub struct StopView<'a> {
    pub history: &'a [RoundStats],
    pub labeled: usize,
    pub unlabeled: usize,
    /// Samples marked impossible to label.
    pub cannot_label: usize,
}

/// Reads the session's history and says whether more labels no longer pay.
pub trait StoppingRule: Send + Sync {
    fn name(&self) -> &str;
    fn needs(&self) -> StopNeeds {
        StopNeeds::default()
    }
    fn check(&self, view: &StopView<'_>) -> Option<StopReason>;
}

/// A borrowed rule is a rule: rules parsed once serve every session of a run.
impl<R: StoppingRule + ?Sized> StoppingRule for &R {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn needs(&self) -> StopNeeds {
        (**self).needs()
    }
    fn check(&self, view: &StopView<'_>) -> Option<StopReason> {
        (**self).check(view)
    }
}

/// Stop when the labeling budget is spent, or when nothing is left to query.
#[derive(Debug, Clone, Copy)]
pub struct BudgetRule {
    pub budget: usize,
}

impl StoppingRule for BudgetRule {
    fn name(&self) -> &str {
        "budget"
    }
    fn check(&self, v: &StopView<'_>) -> Option<StopReason> {
        if v.labeled >= self.budget {
            Some(StopReason { rule: "budget".into(), detail: format!("{} labels used of a budget of {}", v.labeled, self.budget) })
        } else if v.unlabeled == 0 {
            Some(StopReason { rule: "pool-exhausted".into(), detail: format!("every pool sample is labeled ({})", v.labeled) })
        } else {
            None
        }
    }
}

/// AIFT's third stop (Zhou et al. 2017): whatever is not labeled, annotators marked impossible to label.
#[derive(Debug, Clone, Copy)]
pub struct RestUnlabelable;

impl StoppingRule for RestUnlabelable {
    fn name(&self) -> &str {
        "rest-unlabelable"
    }
    fn check(&self, v: &StopView<'_>) -> Option<StopReason> {
        (v.unlabeled == 0 && v.cannot_label > 0).then(|| StopReason {
            rule: self.name().into(),
            detail: format!("{} labeled; the other {} were marked impossible to label", v.labeled, v.cannot_label),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(labeled: usize, unlabeled: usize, cannot_label: usize) -> StopView<'static> {
        StopView { history: &[], labeled, unlabeled, cannot_label }
    }

    #[test]
    fn budget_fires_at_the_budget_and_on_an_empty_pool() {
        let r = BudgetRule { budget: 30 };
        assert!(r.check(&view(20, 5, 0)).is_none());
        assert_eq!(r.check(&view(30, 5, 0)).unwrap().rule, "budget");
        assert_eq!(r.check(&view(20, 0, 0)).unwrap().rule, "pool-exhausted");
    }

    #[test]
    fn rest_unlabelable_fires_only_when_every_sample_left_was_declined() {
        assert!(RestUnlabelable.check(&view(4, 1, 8)).is_none());
        assert!(RestUnlabelable.check(&view(12, 0, 0)).is_none(), "an exhausted pool is not 'unlabelable'");
        let r = RestUnlabelable.check(&view(4, 0, 8)).unwrap();
        assert_eq!(r.rule, "rest-unlabelable");
        assert!(r.detail.contains("other 8"), "{}", r.detail);
    }
}
