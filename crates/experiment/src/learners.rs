//! The learner of a run, built from the plan: the model `--model` names, wrapped in a committee
//! when the strategy reads committee votes; and the session settings and initial set of a run.

use crate::config::{ColdStart, CommitteeSpec, ExperimentConfig};
use crate::initial::{initial_set, initial_set_kmeanspp};
use crate::config::ModelKind;
use crate::plan::{Plan, check_dim};
use crate::{ExperimentError, Result};
use quarry_core::{Dataset, Learner, SampleId, SessionSettings, Strategy};
use quarry_models::nn::OptimizerKind;
use quarry_models::{Committee, EfficientNetLearner, FineTuneParams, LogisticRegressionLearner, LogisticRegressionParams, NetParams};

/// The `model` learner, with `config`'s settings, for data of `dim` features and `classes` classes.
pub(crate) fn base_learner(model: ModelKind, config: &ExperimentConfig, dim: usize, classes: usize, seed: u64) -> Result<Box<dyn Learner>> {
    let n = &config.net;
    let net = |params: NetParams| -> Result<Box<dyn Learner>> {
        let batch = if n.online { config.batch } else { n.minibatch };
        let built = params
            .dropout(n.dropout)
            .optimizer(OptimizerKind::adam(n.lr))
            .epochs(n.epochs)
            .batch_size(batch.max(1))
            .seed(seed)
            .build()?;
        Ok(Box::new(built))
    };
    let logreg = || -> Result<Box<dyn Learner>> { Ok(Box::new(LogisticRegressionLearner::new(LogisticRegressionParams::new().c(config.c)))) };
    match model {
        ModelKind::Lenet5 => {
            check_dim(model, dim)?;
            net(NetParams::lenet5(classes))
        }
        ModelKind::Mlp => net(NetParams::mlp(dim, n.hidden, classes)),
        ModelKind::Logreg => logreg(),
        ModelKind::EfficientnetLite0 => match &config.image.weights {
            Some(weights) if config.image.train_blocks > 0 => {
                Ok(Box::new(EfficientNetLearner::load(weights, fine_tune_params(config, classes, seed))?))
            }
            // A new softmax head on the frozen backbone's features (warm-started each round:
            // incremental fine-tuning of the head).
            Some(_) => logreg(),
            None => Err(ExperimentError::setting("weights", "efficientnet-lite0 needs its weights file (safetensors)")),
        },
    }
}


/// The fine-tuning settings of `--train-blocks` (with `--epochs`, `--minibatch`, `--lr` for the
/// backbone, `--dropout` before the head).
pub(crate) fn fine_tune_params(config: &ExperimentConfig, classes: usize, seed: u64) -> FineTuneParams {
    FineTuneParams {
        classes,
        train_blocks: config.image.train_blocks,
        epochs: config.net.epochs,
        batch_size: config.net.minibatch,
        lr: config.net.lr,
        dropout: config.net.dropout,
        seed,
    }
}

/// The learner a run of `strategy` uses: the base model, wrapped in a committee (`--committee`)
/// when the strategy reads committee votes.
pub(crate) fn learner_for(plan: &Plan, pool: &Dataset, strategy: &dyn Strategy, seed: u64) -> Result<Box<dyn Learner>> {
    let config = plan.config;
    let (dim, classes) = (pool.dim(), pool.n_classes());
    let base = base_learner(plan.model, config, dim, classes, seed)?;
    if !strategy.needs().has(quarry_core::ScoreKind::Committee) {
        return Ok(base);
    }
    Ok(Box::new(match config.committee {
        CommitteeSpec::Bagging => Committee::bagging(base, config.options.committee_size, seed)?,
        CommitteeSpec::Mixed => {
            let members = (0..config.options.committee_size)
                .map(|i| mixed_member(config, dim, classes, seed, i))
                .collect::<Result<Vec<_>>>()?;
            Committee::heterogeneous(base, members)?
        }
    }))
}

/// Member `i` of a mixed committee. The kinds alternate — logistic regression, an MLP and, on
/// 28x28 images, LeNet-5 — and each pass through the kinds changes the members' settings, so no
/// two members are the same model: logistic regression at C, C/10, 10·C, C/100, …; networks
/// with a different seed.
fn mixed_member(config: &ExperimentConfig, dim: usize, classes: usize, seed: u64, i: usize) -> Result<Box<dyn Learner>> {
    let kinds: &[ModelKind] =
        if dim == 784 { &[ModelKind::Logreg, ModelKind::Mlp, ModelKind::Lenet5] } else { &[ModelKind::Logreg, ModelKind::Mlp] };
    let (kind, pass) = (kinds[i % kinds.len()], i / kinds.len());
    let mut member = config.clone();
    if kind == ModelKind::Logreg {
        // 0, -1, 1, -2, 2, …
        let m = pass.div_ceil(2) as i32;
        let exponent = if pass % 2 == 1 { -m } else { m };
        member.c = config.c * 10f64.powi(exponent);
    }
    base_learner(kind, &member, dim, classes, seed.wrapping_add(1 + i as u64))
}

/// The session settings of one run of `config` (pool-based or stream).
pub(crate) fn session_settings(config: &ExperimentConfig, seed: u64) -> SessionSettings {
    SessionSettings {
        candidates: config.candidates,
        mc_draws: config.options.mc_draws,
        online: config.net.online,
        warmup: config.warmup,
        replay: config.net.replay,
        seed,
    }
}

/// The initial labeled set of a seed, as `--cold-start` draws it (the same for every strategy).
pub(crate) fn initial_labels(config: &ExperimentConfig, pool: &Dataset, seed: u64) -> quarry_core::Result<Vec<SampleId>> {
    match config.cold_start {
        ColdStart::Random => initial_set(&pool.labels, config.initial, seed),
        ColdStart::KmeansPp => initial_set_kmeanspp(&pool.features, &pool.labels, config.initial, seed),
    }
}

/// The seed of every image's augmented patches in a run of `seed`.
pub(crate) fn patch_seed(seed: u64) -> u64 {
    seed ^ (quarry_core::session::streams::PATCHES << 32)
}
