//! One active-learning run, advanced one round per [`ActiveLoop::step`]:
//! pool → learner scores → strategy selects → oracle labels → learner updates → metrics.

use crate::metrics;
use quarry_core::{
    Dataset, Learner, Matrix, Oracle, Pool, Probabilities, QueryContext, Result, RoundRecord, SampleId, Scores,
    StopReason, StoppingRule, Strategy, WhatIf, seeded_rng,
};
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Random streams of a run, so each purpose draws independent numbers from the seed.
pub mod streams {
    pub const INITIAL: u64 = 1;
    /// Per round: `(STRATEGY << 32) | round`, so a resumed run draws what it would have drawn.
    pub const STRATEGY: u64 = 2;
    pub const CANDIDATES: u64 = 3;
    pub const MC_DROPOUT: u64 = 4;
}

/// [`WhatIf`] for the loop's learner: a copy refit on the labeled set plus one hypothetical
/// label (warm-started from the current fit), scored on the query's candidates.
struct Refit<'a> {
    learner: &'a dyn Learner,
    labeled_x: Matrix,
    labeled_y: Vec<u32>,
    candidates_x: &'a Matrix,
    n_classes: usize,
}

impl WhatIf for Refit<'_> {
    fn probabilities_after(&self, candidate: usize, label: u32) -> Result<Probabilities> {
        let mut x = self.labeled_x.clone();
        x.push_row(self.candidates_x.row(candidate));
        let mut y = self.labeled_y.clone();
        y.push(label);
        let mut l = self.learner.boxed_clone();
        l.fit(&x, &y, self.n_classes)?;
        l.predict_proba(self.candidates_x)
    }
}

/// The settings of one run.
#[derive(Debug, Clone, Copy)]
pub struct LoopSettings {
    pub batch: usize,
    pub budget: usize,
    pub candidates: Option<usize>,
    /// MC-dropout passes for strategies that need them.
    pub mc_draws: usize,
    pub seed: u64,
}

/// Stop when the budget is spent or nothing is left to query.
#[derive(Debug, Clone, Copy)]
pub struct BudgetRule {
    pub budget: usize,
}

impl StoppingRule for BudgetRule {
    fn name(&self) -> &str {
        "budget"
    }
    fn check(&self, history: &[RoundRecord], unlabeled: usize) -> Option<StopReason> {
        let labels = history.last().map_or(0, |r| r.labels);
        if labels >= self.budget {
            Some(StopReason { rule: "budget".into(), detail: format!("{labels} labels used of a budget of {}", self.budget) })
        } else if unlabeled == 0 {
            Some(StopReason { rule: "pool-exhausted".into(), detail: format!("every pool sample is labeled ({labels})") })
        } else {
            None
        }
    }
}

/// What one call to [`ActiveLoop::step`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Round(RoundRecord),
    Stopped(StopReason),
}

/// The saved form of a run: enough to continue it exactly where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    pub pool: Pool,
    pub history: Vec<RoundRecord>,
}

/// Draw `initial` distinct pool samples, redrawing (seeded) until at least two classes are
/// present, as a classifier needs (for two-class data: one of each).
pub fn initial_set(labels: &[u32], initial: usize, seed: u64) -> Result<Vec<SampleId>> {
    let mut rng = seeded_rng(seed, streams::INITIAL);
    let n = labels.len();
    if initial > n {
        return Err(quarry_core::Error::param("--initial", format!("{initial} labels asked for, the pool has {n} samples")));
    }
    for _ in 0..1000 {
        let picks: Vec<usize> = sample(&mut rng, n, initial).into_vec();
        let first = labels[picks[0]];
        if picks.iter().any(|&i| labels[i] != first) {
            return Ok(picks.into_iter().map(SampleId::from).collect());
        }
    }
    Err(quarry_core::Error::param("--initial", format!("1000 random draws of {initial} samples never held two classes; raise --initial")))
}

pub struct ActiveLoop<'a> {
    pool_data: &'a Dataset,
    test: &'a Dataset,
    learner: Box<dyn Learner + 'a>,
    strategy: &'a dyn Strategy,
    oracle: Box<dyn Oracle + 'a>,
    stopping: Vec<Box<dyn StoppingRule + 'a>>,
    settings: LoopSettings,
    state: LoopState,
}

impl<'a> ActiveLoop<'a> {
    /// A new run whose pool starts with `initial` labeled by the oracle (round 0).
    pub fn new(
        pool_data: &'a Dataset,
        test: &'a Dataset,
        learner: Box<dyn Learner + 'a>,
        strategy: &'a dyn Strategy,
        mut oracle: Box<dyn Oracle + 'a>,
        settings: LoopSettings,
        initial: &[SampleId],
    ) -> Result<Self> {
        let mut pool = Pool::new(pool_data.len());
        for (id, label) in initial.iter().zip(oracle.label(initial)?) {
            match label {
                Some(l) => pool.set_label(*id, l, 0),
                None => pool.skip(*id, 0),
            }
        }
        let state = LoopState { pool, history: Vec::new() };
        Ok(Self::resume(pool_data, test, learner, strategy, oracle, settings, state))
    }

    /// Continue a saved run (the learner already restored from its checkpoint).
    pub fn resume(
        pool_data: &'a Dataset,
        test: &'a Dataset,
        learner: Box<dyn Learner + 'a>,
        strategy: &'a dyn Strategy,
        oracle: Box<dyn Oracle + 'a>,
        settings: LoopSettings,
        state: LoopState,
    ) -> Self {
        let stopping: Vec<Box<dyn StoppingRule>> = vec![Box::new(BudgetRule { budget: settings.budget })];
        ActiveLoop { pool_data, test, learner, strategy, oracle, stopping, settings, state }
    }

    pub fn state(&self) -> &LoopState {
        &self.state
    }
    pub fn learner(&self) -> &dyn Learner {
        self.learner.as_ref()
    }
    pub fn history(&self) -> &[RoundRecord] {
        &self.state.history
    }

    /// Round 0 fits the initial set; each later round queries a batch, labels it, refits and
    /// measures. Returns `Stopped` (and changes nothing) once a stopping rule fires.
    pub fn step(&mut self) -> Result<StepOutcome> {
        let start = Instant::now();
        let round = self.state.history.len() as u32;
        if round > 0 {
            let unlabeled = self.state.pool.n_unlabeled();
            for rule in &self.stopping {
                if let Some(reason) = rule.check(&self.state.history, unlabeled) {
                    return Ok(StepOutcome::Stopped(reason));
                }
            }
            let k = self.settings.batch.min(self.settings.budget - self.state.pool.n_labeled());
            let picks = self.query(round, k)?;
            let answers = self.oracle.label(&picks)?;
            for (id, label) in picks.iter().zip(answers) {
                match label {
                    Some(l) => self.state.pool.set_label(*id, l, round),
                    None => self.state.pool.skip(*id, round),
                }
            }
        }
        let idx: Vec<usize> = self.state.pool.labeled().iter().map(|id| id.index()).collect();
        let x = self.pool_data.features.select_rows(&idx);
        self.learner.fit(&x, &self.state.pool.labels(), self.pool_data.n_classes())?;
        let probs = self.learner.predict_proba(&self.test.features)?;
        let record = RoundRecord {
            round,
            labels: self.state.pool.n_labeled(),
            accuracy: metrics::accuracy(&probs, &self.test.labels),
            log_loss: metrics::log_loss(&probs, &self.test.labels),
            seconds: start.elapsed().as_secs_f64(),
        };
        self.state.history.push(record.clone());
        Ok(StepOutcome::Round(record))
    }

    /// Candidates (all unlabeled, or a seeded subsample), their scores if the strategy needs
    /// any, and the strategy's batch.
    fn query(&self, round: u32, k: usize) -> Result<Vec<SampleId>> {
        let mut candidates = self.state.pool.unlabeled();
        if let Some(m) = self.settings.candidates.filter(|&m| m < candidates.len()) {
            let mut rng = seeded_rng(self.settings.seed, (streams::CANDIDATES << 32) | round as u64);
            let mut keep = sample(&mut rng, candidates.len(), m).into_vec();
            keep.sort_unstable();
            candidates = keep.into_iter().map(|i| candidates[i]).collect();
        }
        let needs = self.strategy.needs();
        let features = &self.pool_data.features;
        let rows = |ids: &[SampleId]| features.select_rows(&ids.iter().map(|id| id.index()).collect::<Vec<_>>());
        let cand_x = rows(&candidates);
        let labeled = self.state.pool.labeled();
        let mut scores = Scores::default();
        if needs.probabilities {
            scores.probabilities = Some(self.learner.predict_proba(&cand_x)?);
        }
        if needs.mc_samples {
            let seed = self.settings.seed ^ ((streams::MC_DROPOUT << 32) | round as u64);
            scores.mc_samples = Some(self.learner.mc_samples(&cand_x, self.settings.mc_draws, seed)?);
        }
        if needs.committee {
            scores.committee = Some(self.learner.committee(&cand_x)?);
        }
        if needs.embeddings {
            scores.embeddings = Some(self.learner.embed(&cand_x)?);
        }
        if needs.labeled_embeddings {
            scores.labeled_embeddings = Some(self.learner.embed(&rows(labeled))?);
        }
        if needs.labeled_probabilities {
            scores.labeled_probabilities = Some(self.learner.predict_proba(&rows(labeled))?);
        }
        if needs.pool_embeddings {
            scores.pool_embeddings = Some(self.learner.embed(&rows(&self.state.pool.unlabeled()))?);
        }
        if needs.gradient_embeddings {
            scores.gradient_embeddings = Some(self.learner.gradient_embedding(&cand_x)?);
        }
        let what_if = if needs.what_if {
            Some(Refit {
                learner: self.learner.as_ref(),
                labeled_x: rows(labeled),
                labeled_y: self.state.pool.labels(),
                candidates_x: &cand_x,
                n_classes: self.pool_data.n_classes(),
            })
        } else {
            None
        };
        let ctx = QueryContext {
            candidates: &candidates,
            scores: &scores,
            labeled,
            what_if: what_if.as_ref().map(|w| w as &dyn WhatIf),
        };
        let mut rng = seeded_rng(self.settings.seed, (streams::STRATEGY << 32) | round as u64);
        let query = self.strategy.select(&ctx, k, &mut rng)?;
        Ok(query.ids())
    }
}
