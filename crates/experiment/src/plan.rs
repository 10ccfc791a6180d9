//! A simulation's settings checked once into a typed plan — the model, each arm's strategy
//! object or stream policy, the stopping rules — the linfa way: [`ExperimentConfig::plan`] is the
//! one place names are resolved and combinations are judged, and the drivers take the plan and
//! never parse a name again. Everything that cannot run (a Bayesian strategy on a model without
//! dropout, AIFT without images) is refused here, before any file is read or written.

use crate::config::{ExperimentConfig, ModelKind, TestSpec};
use crate::{ExperimentError, Result};
use quarry_core::{Dataset, ScoreKind, StoppingRule, Strategy};
use quarry_strategies::UnknownStrategy;
use quarry_strategies::stream::{POLICIES, policy_name};

/// One arm of a simulation: a pool-based strategy, or a stream-based policy.
pub enum Arm {
    Pool(Box<dyn Strategy>),
    /// The stream policy's canonical name (see [`quarry_strategies::stream`]).
    Stream(&'static str),
}

impl Arm {
    /// The canonical name (the run directory's folder, the reports' `strategy`).
    pub fn name(&self) -> &str {
        match self {
            Arm::Pool(s) => s.name(),
            Arm::Stream(name) => name,
        }
    }
}

/// A simulation ready to run: every setting checked, every name resolved.
pub struct Plan<'c> {
    pub config: &'c ExperimentConfig,
    pub model: ModelKind,
    /// In the order `--strategy` lists them.
    pub arms: Vec<Arm>,
    /// The `--stop` rules (each run adds the budget and "the rest cannot be labeled").
    pub rules: Vec<Box<dyn StoppingRule>>,
}

/// LeNet-5 reads 28×28 images.
pub(crate) fn check_dim(model: ModelKind, dim: usize) -> Result<()> {
    if model == ModelKind::Lenet5 && dim != 784 {
        return Err(ExperimentError::setting("model", format!("lenet5 reads 28x28 images (784 features); this data has {dim}")));
    }
    Ok(())
}

impl Plan<'_> {
    /// The checks that need the data: the initial set and a batch fit in the pool, and the model
    /// reads rows of this width. Run on the first seed's pool before the run directory is opened.
    pub fn check_pool(&self, pool: &Dataset) -> Result<()> {
        let config = self.config;
        check_dim(self.model, pool.dim())?;
        if config.initial > pool.len() {
            return Err(ExperimentError::setting("initial", format!("{} labels asked for, the pool has {} samples", config.initial, pool.len())));
        }
        if config.batch > pool.len() {
            return Err(ExperimentError::setting("batch", format!("a batch of {} is larger than the pool of {} samples", config.batch, pool.len())));
        }
        // The first query is the largest: every sample but the initial set, or --candidates of them.
        let unlabeled = pool.len().saturating_sub(config.initial);
        let candidates = config.candidates.map_or(unlabeled, |m| m.min(unlabeled));
        for arm in &self.arms {
            if let Arm::Pool(strategy) = arm {
                strategy.check_scale(candidates, pool.n_classes())?;
            }
        }
        Ok(())
    }
}

impl ExperimentConfig {
    /// Check every setting and every combination, and resolve the names, before any file is
    /// read or written.
    pub fn plan(&self) -> Result<Plan<'_>> {
        self.check_settings()?;
        let model = self.model;
        let image_folder = model == ModelKind::EfficientnetLite0;
        if self.strategies.is_empty() {
            return Err(ExperimentError::setting("strategy", "name at least one strategy"));
        }
        let mut arms = Vec::with_capacity(self.strategies.len());
        for name in &self.strategies {
            if let Some(policy) = policy_name(name) {
                arms.push(Arm::Stream(policy));
                continue;
            }
            let strategy = quarry_strategies::by_name_with(name, &self.options).map_err(|e| match e {
                UnknownStrategy::Unknown { given, known } => {
                    let stream: Vec<&str> = POLICIES.iter().map(|(n, _)| *n).collect();
                    ExperimentError::setting("strategy", format!("unknown strategy '{given}' (known: {known}; stream-based: {})", stream.join(", ")))
                }
                // A strategy option out of range is that option's error (`beta`, `mc-draws`, …).
                UnknownStrategy::BadOptions { source, .. } => ExperimentError::Core(source),
            })?;
            for kind in strategy.needs().kinds() {
                if let Some(why) = self.cannot_make(model, image_folder, kind) {
                    return Err(ExperimentError::setting("strategy", format!("{} needs {} scores: {why}", strategy.name(), kind.name())));
                }
            }
            arms.push(Arm::Pool(strategy));
        }
        let mut names: Vec<&str> = arms.iter().map(Arm::name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ExperimentError::setting("strategy", format!("'{}' is listed twice", w[0])));
        }
        let rules = crate::stopping::parse_rules(&self.stop)?;
        if let (ModelKind::EfficientnetLite0, TestSpec::File { .. }) = (model, &self.test) {
            return Err(ExperimentError::setting("test", "with an image folder, hold out a test set with --test-fraction"));
        }
        Ok(Plan { config: self, model, arms, rules })
    }

    /// Why the learner of this config cannot make scores of `kind` (`None`: it can).
    fn cannot_make(&self, model: ModelKind, image_folder: bool, kind: ScoreKind) -> Option<String> {
        match kind {
            ScoreKind::McSamples => {
                let has_dropout = model.is_network() || (model == ModelKind::EfficientnetLite0 && self.image.train_blocks > 0);
                if !has_dropout {
                    Some(format!("Monte-Carlo dropout samples need a network with dropout (--model mlp or lenet5, with --dropout above 0); {model} has no dropout"))
                } else if self.net.dropout <= 0.0 {
                    Some(format!("Monte-Carlo dropout samples need --dropout above 0 ({model} is trained without dropout)"))
                } else {
                    None
                }
            }
            ScoreKind::Patches if !image_folder => {
                Some(format!("predictions of augmented patches need an image folder as --data with --model efficientnet-lite0, not {model}"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_parse_by_name_and_unknown_ones_are_refused() {
        use crate::config::{ModelKind, Named};
        for &m in ModelKind::ALL {
            assert_eq!(ModelKind::parse(m.name()).unwrap(), m);
            assert_eq!(serde_json::to_value(m).unwrap(), serde_json::Value::String(m.name().into()), "run identities keep the name");
        }
        assert_eq!(ModelKind::parse("EfficientNet_Lite0").unwrap(), ModelKind::EfficientnetLite0);
        let e = ModelKind::parse("resnet").unwrap_err().to_string();
        assert!(e.starts_with("model:") && e.contains("resnet") && e.contains("logreg, lenet5, mlp, efficientnet-lite0"), "{e}");
        assert!(ModelKind::Mlp.is_network() && !ModelKind::Logreg.is_network());
    }

    /// What cannot run is refused with the strategy, the scores it needs and what would make them.
    #[test]
    fn combinations_that_cannot_run_are_refused() {
        let mut config = crate::config::tests::config();
        config.strategies = vec!["margin".into(), "bald".into()];
        let e = config.plan().err().expect("bald on logreg").to_string();
        assert!(e.starts_with("strategy:") && e.contains("bald") && e.contains("mc-samples") && e.contains("dropout"), "{e}");
        config.model = ModelKind::Mlp;
        let e = config.plan().err().expect("bald without dropout").to_string();
        assert!(e.contains("--dropout above 0"), "{e}");
        config.net.dropout = 0.2;
        let plan = config.plan().unwrap();
        let names: Vec<&str> = plan.arms.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["margin", "bald"]);
        assert_eq!(plan.model, ModelKind::Mlp);
        config.strategies = vec!["aift".into()];
        let e = config.plan().err().expect("aift without images").to_string();
        assert!(e.contains("aift") && e.contains("image folder"), "{e}");
        config.strategies = vec!["stream-paced".into(), "MARGIN".into()];
        let plan = config.plan().unwrap();
        assert!(matches!(plan.arms[0], Arm::Stream("stream-paced")));
        assert_eq!(plan.arms[1].name(), "margin");
    }
}
