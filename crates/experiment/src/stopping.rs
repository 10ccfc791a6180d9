//! Stopping rules: when more labels no longer pay. Each reads the session's history; the session
//! measures what the rules in force need (see [`StopNeeds`]) and the summary reports the rule
//! that fired.

use crate::{ExperimentError, Result};
pub use quarry_core::{BudgetRule, RestUnlabelable};
use quarry_core::{StopNeeds, StopReason, StopView, StoppingRule};

/// Stabilizing predictions (Bloodgood & Vijay-Shanker, CoNLL 2009): stop once Cohen's κ between
/// successive models' predictions on a fixed, unlabeled stop set has stayed ≥ `kappa` for the
/// last `window` rounds (the paper: κ ≥ 0.99 averaged over 3).
#[derive(Debug, Clone, Copy)]
pub struct StabilizingPredictions {
    pub kappa: f64,
    pub window: usize,
}

impl StoppingRule for StabilizingPredictions {
    fn name(&self) -> &str {
        "stabilizing-predictions"
    }
    fn needs(&self) -> StopNeeds {
        StopNeeds { stop_set: true, ..Default::default() }
    }
    fn check(&self, v: &StopView<'_>) -> Option<StopReason> {
        let last: Vec<f64> = v.history.iter().rev().map_while(|r| r.stop_set_kappa).take(self.window).collect();
        if last.len() < self.window {
            return None;
        }
        let mean = last.iter().sum::<f64>() / last.len() as f64;
        (mean >= self.kappa).then(|| StopReason {
            rule: self.name().into(),
            detail: format!("mean κ {mean:.4} over the last {} rounds ≥ {}", self.window, self.kappa),
        })
    }
}

/// Max uncertainty (Zhu, Wang & Hovy 2008): stop when even the most uncertain unlabeled
/// candidate has uncertainty (1 − max p) below `threshold`.
#[derive(Debug, Clone, Copy)]
pub struct MaxUncertainty {
    pub threshold: f64,
}

impl StoppingRule for MaxUncertainty {
    fn name(&self) -> &str {
        "max-uncertainty"
    }
    fn needs(&self) -> StopNeeds {
        StopNeeds { uncertainty: true, ..Default::default() }
    }
    fn check(&self, v: &StopView<'_>) -> Option<StopReason> {
        let u = v.history.last()?.max_uncertainty?;
        (u < self.threshold).then(|| StopReason {
            rule: self.name().into(),
            detail: format!("max uncertainty {u:.4} < {}", self.threshold),
        })
    }
}

/// Overall uncertainty (Zhu, Wang & Hovy 2008): stop when the mean uncertainty (1 − max p) over
/// the unlabeled candidates falls below `threshold`.
#[derive(Debug, Clone, Copy)]
pub struct OverallUncertainty {
    pub threshold: f64,
}

impl StoppingRule for OverallUncertainty {
    fn name(&self) -> &str {
        "overall-uncertainty"
    }
    fn needs(&self) -> StopNeeds {
        StopNeeds { uncertainty: true, ..Default::default() }
    }
    fn check(&self, v: &StopView<'_>) -> Option<StopReason> {
        let u = v.history.last()?.mean_uncertainty?;
        (u < self.threshold).then(|| StopReason {
            rule: self.name().into(),
            detail: format!("mean uncertainty {u:.4} < {}", self.threshold),
        })
    }
}

/// Selected accuracy (Zhu, Wang & Hovy 2008; AIFT's rule "the newly queried candidates are
/// already classified right"): stop when the model, before learning them, already predicted at
/// least `threshold` of the newly queried batch correctly.
#[derive(Debug, Clone, Copy)]
pub struct BatchAccuracy {
    pub threshold: f64,
}

impl StoppingRule for BatchAccuracy {
    fn name(&self) -> &str {
        "batch-accuracy"
    }
    fn check(&self, v: &StopView<'_>) -> Option<StopReason> {
        let a = v.history.last()?.batch_accuracy?;
        (a >= self.threshold).then(|| StopReason {
            rule: self.name().into(),
            detail: format!("the model already classified {:.1} % of the newly queried batch right (≥ {})", 100.0 * a, self.threshold),
        })
    }
}

/// Every rule of a run, in the order they are asked: the rest cannot be labeled (AIFT's third
/// stop), the budget (or an exhausted pool), then the `--stop` rules.
pub fn run_rules(budget: usize, stop: &[Box<dyn StoppingRule>]) -> Vec<Box<dyn StoppingRule + '_>> {
    let mut rules: Vec<Box<dyn StoppingRule + '_>> = vec![Box::new(RestUnlabelable), Box::new(BudgetRule { budget })];
    rules.extend(stop.iter().map(|r| Box::new(r.as_ref()) as Box<dyn StoppingRule + '_>));
    rules
}

/// Parse `--stop`: comma-separated `name[:value]`, e.g.
/// `stabilizing-predictions:0.99,max-uncertainty:0.05,overall-uncertainty:0.1,batch-accuracy:1`.
pub fn parse_rules(spec: &str) -> Result<Vec<Box<dyn StoppingRule>>> {
    let mut out: Vec<Box<dyn StoppingRule>> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = match part.split_once(':') {
            Some((n, v)) => {
                let v: f64 = v.trim().parse().map_err(|_| {
                    ExperimentError::setting("stop", format!("'{part}': the value after ':' must be a number"))
                })?;
                (n.trim(), Some(v))
            }
            None => (part, None),
        };
        let in_unit = |v: f64| -> Result<f64> {
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(ExperimentError::setting("stop", format!("'{part}': the threshold must lie in [0, 1]")))
            }
        };
        let rule: Box<dyn StoppingRule> = match name.replace('_', "-").as_str() {
            "stabilizing-predictions" | "stabilizing" | "sp" => {
                Box::new(StabilizingPredictions { kappa: in_unit(value.unwrap_or(0.99))?, window: 3 })
            }
            "max-uncertainty" => Box::new(MaxUncertainty { threshold: in_unit(value.unwrap_or(0.05))? }),
            "overall-uncertainty" => Box::new(OverallUncertainty { threshold: in_unit(value.unwrap_or(0.1))? }),
            "batch-accuracy" | "selected-accuracy" => Box::new(BatchAccuracy { threshold: in_unit(value.unwrap_or(1.0))? }),
            _ => {
                return Err(ExperimentError::setting("stop",
                    format!("unknown rule '{name}' (known: stabilizing-predictions, max-uncertainty, overall-uncertainty, batch-accuracy)"),
                ));
            }
        };
        out.push(rule);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_core::RoundStats;

    fn rec(labels: usize) -> RoundStats {
        RoundStats { labels, ..Default::default() }
    }
    fn check(rule: &dyn StoppingRule, history: &[RoundStats]) -> Option<StopReason> {
        rule.check(&StopView { history, labeled: history.last().map_or(0, |r| r.labels), unlabeled: 9, cannot_label: 0 })
    }

    #[test]
    fn stabilizing_predictions_needs_a_full_window_above_kappa() {
        let r = StabilizingPredictions { kappa: 0.99, window: 3 };
        let with = |ks: &[f64]| -> Vec<RoundStats> {
            std::iter::once(rec(10)).chain(ks.iter().map(|&k| RoundStats { stop_set_kappa: Some(k), ..rec(20) })).collect()
        };
        assert!(check(&r, &with(&[1.0, 1.0])).is_none(), "window not full");
        assert!(check(&r, &with(&[0.5, 1.0, 0.995, 0.99])).is_some());
        assert!(check(&r, &with(&[1.0, 1.0, 0.9])).is_none(), "mean 0.9667 < 0.99");
    }

    #[test]
    fn uncertainty_and_batch_accuracy_rules_compare_with_their_thresholds() {
        let h = [RoundStats { max_uncertainty: Some(0.04), mean_uncertainty: Some(0.2), batch_accuracy: Some(0.9), ..rec(50) }];
        assert!(check(&MaxUncertainty { threshold: 0.05 }, &h).is_some());
        assert!(check(&OverallUncertainty { threshold: 0.1 }, &h).is_none());
        assert!(check(&BatchAccuracy { threshold: 1.0 }, &h).is_none());
        assert!(check(&BatchAccuracy { threshold: 0.9 }, &h).is_some());
        assert!(check(&MaxUncertainty { threshold: 0.05 }, &[rec(10)]).is_none(), "unmeasured never fires");
    }

    #[test]
    fn rules_parse_with_defaults_and_reject_nonsense() {
        let rules = parse_rules("stabilizing-predictions, max_uncertainty:0.2,batch-accuracy").unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
        assert_eq!(names, ["stabilizing-predictions", "max-uncertainty", "batch-accuracy"]);
        for bad in ["nope", "max-uncertainty:x", "batch-accuracy:2"] {
            assert!(parse_rules(bad).err().unwrap().to_string().starts_with("stop:"), "{bad}");
        }
        let stop = parse_rules("max-uncertainty").unwrap();
        let all: Vec<String> = run_rules(50, &stop).iter().map(|r| r.name().to_string()).collect();
        assert_eq!(all, ["rest-unlabelable", "budget", "max-uncertainty"]);
    }
}
