//! One active-learning run, advanced one round per [`ActiveLoop::step`]:
//! pool → learner scores → strategy selects → oracle labels → learner updates → metrics.

use crate::metrics;
use crate::images::AugmentedPatches;
use crate::stopping::BudgetRule;
use quarry_core::{
    Dataset, Learner, Matrix, Needs, Oracle, Pool, Probabilities, QueryContext, Result, RoundRecord, SampleId, Scores,
    StopNeeds, StopReason, StoppingRule, Strategy, WhatIf, seeded_rng,
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
    pub const STOP_SET: u64 = 5;
    /// Per round: `(REPLAY << 32) | round`.
    pub const REPLAY: u64 = 6;
    /// The augmented patches of each image (fixed per run: the patches a candidate is scored on
    /// are the ones it contributes to training once labeled, as in AIFT).
    pub const PATCHES: u64 = 7;
}

/// Size of the stop set of the stabilizing-predictions rule (Bloodgood & Vijay-Shanker use a
/// few thousand unlabeled samples).
pub const STOP_SET_SIZE: usize = 2000;

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
        let mut l = self.learner.what_if_clone();
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
    /// Online mode: after each query, one update on just the new batch (`Learner::partial_fit`)
    /// instead of a refit on every label.
    pub online: bool,
    /// Random warm start: query at random until this many labels (a cold-start fix).
    pub warmup: usize,
    /// Online mode: each update also replays this many earlier labels, drawn at random.
    pub replay: usize,
    pub seed: u64,
}

/// What one call to [`ActiveLoop::step`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// A round whose model was scored on the test set.
    Round(RoundRecord),
    /// A round that trained but was not scored (see [`EvalSchedule`]).
    Trained { round: u32, labels: usize },
    Stopped(StopReason),
}

/// The saved form of a run: enough to continue it exactly where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    pub pool: Pool,
    /// Rounds done so far (round 0 is the initial set); only evaluated rounds are in `history`.
    #[serde(default)]
    pub rounds: u32,
    pub history: Vec<RoundRecord>,
    /// The last model's predictions on the stop set, when a rule compares successive models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_set_predictions: Option<Vec<u32>>,
}

/// Draw `initial` distinct pool samples, redrawing (seeded) until at least two classes are
/// present, as a classifier needs (for two-class data: one of each).
pub fn initial_set(labels: &[u32], initial: usize, seed: u64) -> Result<Vec<SampleId>> {
    let mut rng = seeded_rng(seed, streams::INITIAL);
    let n = labels.len();
    if initial == 0 {
        return Ok(Vec::new());
    }
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

/// A diverse initial set for a cold start (zero labels, so no model can rank anything yet):
/// k-means++ seeding (Arthur & Vassilvitskii 2007) in the feature/embedding space — the first point
/// drawn at random, each next one with probability ∝ its squared distance to the nearest chosen
/// point. Redrawn (seeded) until at least two classes are present, as a classifier needs.
pub fn initial_set_kmeanspp(features: &Matrix, labels: &[u32], initial: usize, seed: u64) -> Result<Vec<SampleId>> {
    let n = features.rows();
    if initial > n {
        return Err(quarry_core::Error::param("--initial", format!("{initial} labels asked for, the pool has {n} samples")));
    }
    if initial == 0 {
        return Ok(Vec::new());
    }
    let dist2 = |a: usize, b: usize| -> f64 {
        features.row(a).iter().zip(features.row(b)).map(|(x, y)| ((x - y) as f64).powi(2)).sum()
    };
    for attempt in 0..100u64 {
        let mut rng = seeded_rng(seed, (streams::INITIAL << 32) | (1 + attempt));
        let first = rand::Rng::random_range(&mut rng, 0..n);
        let mut picks = vec![first];
        let mut d: Vec<f64> = (0..n).map(|i| dist2(i, first)).collect();
        while picks.len() < initial {
            let total: f64 = d.iter().sum();
            let next = if total > 0.0 {
                let mut u = rand::Rng::random::<f64>(&mut rng) * total;
                let mut chosen = n - 1;
                for (i, &di) in d.iter().enumerate() {
                    u -= di;
                    if u < 0.0 && di > 0.0 {
                        chosen = i;
                        break;
                    }
                }
                chosen
            } else {
                // Every remaining point duplicates a chosen one: take any unchosen point.
                (0..n).find(|i| !picks.contains(i)).expect("initial ≤ n")
            };
            picks.push(next);
            for (i, di) in d.iter_mut().enumerate() {
                *di = di.min(dist2(i, next));
            }
            d[next] = 0.0;
        }
        if initial < 2 || picks.iter().any(|&i| labels[i] != labels[picks[0]]) {
            return Ok(picks.into_iter().map(SampleId::from).collect());
        }
    }
    Err(quarry_core::Error::param("--initial", "100 k-means++ draws never held two classes; raise --initial"))
}

pub struct ActiveLoop<'a> {
    pool_data: &'a Dataset,
    test: &'a Dataset,
    learner: Box<dyn Learner + 'a>,
    strategy: &'a dyn Strategy,
    oracle: Box<dyn Oracle + 'a>,
    stopping: Vec<Box<dyn StoppingRule + 'a>>,
    needs: StopNeeds,
    stop_set: Vec<usize>,
    settings: LoopSettings,
    eval: EvalSchedule,
    /// Whether class 1 is the positive class of a one-vs-rest run (its recall is recorded).
    positive_class: bool,
    /// Predicts augmented patches of candidates (image pools; AIFT).
    patches: Option<&'a AugmentedPatches>,
    /// Train on each labeled image's augmented patches too (AIFT step 4).
    train_on_patches: bool,
    state: LoopState,
}

/// At which label counts the test set is scored (every round by default). The initial round and
/// the round that spends the budget are always scored.
#[derive(Debug, Clone, Default)]
pub struct EvalSchedule {
    pub at: Vec<usize>,
    pub every: Option<usize>,
}

impl EvalSchedule {
    pub fn every_round() -> Self {
        EvalSchedule::default()
    }
    fn wants(&self, labels: usize) -> bool {
        (self.at.is_empty() && self.every.is_none())
            || self.at.contains(&labels)
            || self.every.is_some_and(|e| labels.is_multiple_of(e))
    }
}

impl<'a> ActiveLoop<'a> {
    /// A new run whose pool starts with `initial` labeled by the oracle (round 0). The budget
    /// rule is always in force; `stopping` adds others.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool_data: &'a Dataset,
        test: &'a Dataset,
        learner: Box<dyn Learner + 'a>,
        strategy: &'a dyn Strategy,
        mut oracle: Box<dyn Oracle + 'a>,
        settings: LoopSettings,
        stopping: Vec<Box<dyn StoppingRule + 'a>>,
        initial: &[SampleId],
    ) -> Result<Self> {
        let mut pool = Pool::new(pool_data.len());
        for (id, label) in initial.iter().zip(oracle.label(initial)?) {
            match label {
                Some(l) => pool.set_label(*id, l, 0),
                None => pool.skip(*id, 0),
            }
        }
        let state = LoopState { pool, rounds: 0, history: Vec::new(), stop_set_predictions: None };
        Ok(Self::resume(pool_data, test, learner, strategy, oracle, settings, stopping, state))
    }

    /// Continue a saved run (the learner already restored from its checkpoint).
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        pool_data: &'a Dataset,
        test: &'a Dataset,
        learner: Box<dyn Learner + 'a>,
        strategy: &'a dyn Strategy,
        oracle: Box<dyn Oracle + 'a>,
        settings: LoopSettings,
        mut stopping: Vec<Box<dyn StoppingRule + 'a>>,
        mut state: LoopState,
    ) -> Self {
        if state.rounds == 0 {
            // A state saved before round counting: every round was evaluated.
            state.rounds = state.history.len() as u32;
        }
        stopping.insert(0, Box::new(BudgetRule { budget: settings.budget }));
        let needs = stopping.iter().fold(StopNeeds::default(), |n, r| {
            let m = r.needs();
            StopNeeds { uncertainty: n.uncertainty || m.uncertainty, stop_set: n.stop_set || m.stop_set }
        });
        let stop_set = if needs.stop_set {
            let n = pool_data.len();
            let mut rng = seeded_rng(settings.seed, streams::STOP_SET);
            let mut v = sample(&mut rng, n, STOP_SET_SIZE.min(n)).into_vec();
            v.sort_unstable();
            v
        } else {
            Vec::new()
        };
        ActiveLoop { pool_data, test, learner, strategy, oracle, stopping, needs, stop_set, settings, eval: EvalSchedule::every_round(), positive_class: false, patches: None, train_on_patches: false, state }
    }

    /// Let strategies that read augmented patches (AIFT) have them.
    pub fn with_patches(mut self, patches: &'a AugmentedPatches) -> Self {
        self.patches = Some(patches);
        self
    }

    /// Refits train on every labeled image's augmented patches besides the image itself, as AIFT
    /// fine-tunes on the patches of the candidates it labeled (needs [`Self::with_patches`]). Each
    /// image's patches are drawn once from the run's seed: the ones it was scored on, if it was.
    pub fn with_training_patches(mut self) -> Self {
        self.train_on_patches = true;
        self
    }

    /// Record the recall of class 1 (a one-vs-rest run).
    pub fn with_positive_class(mut self) -> Self {
        self.positive_class = true;
        self
    }

    /// Score the test set only at these label counts (and at the start and the end).
    pub fn with_eval_schedule(mut self, eval: EvalSchedule) -> Self {
        self.eval = eval;
        self
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
        let round = self.state.rounds;
        let mut batch_accuracy = None;
        let n_classes = self.pool_data.n_classes();
        if round > 0 {
            let unlabeled = self.state.pool.n_unlabeled();
            let skipped = self.state.pool.n_skipped();
            if unlabeled == 0 && skipped > 0 {
                // AIFT's third stop: whatever was not labeled, annotators marked impossible to label.
                return Ok(StepOutcome::Stopped(StopReason {
                    rule: "rest-unlabelable".into(),
                    detail: format!("{} labeled; the other {skipped} were marked impossible to label", self.state.pool.n_labeled()),
                }));
            }
            let stop_history = self.stop_history();
            for rule in &self.stopping {
                if let Some(reason) = rule.check(&stop_history, unlabeled) {
                    return Ok(StepOutcome::Stopped(reason));
                }
            }
            let k = self.settings.batch.min(self.settings.budget - self.state.pool.n_labeled());
            let picks = self.query(round, k)?;
            let answers = self.oracle.label(&picks)?;
            batch_accuracy = self.accuracy_before_learning(&picks, &answers)?;
            let mut new_ids = Vec::new();
            let mut new_labels = Vec::new();
            for (id, label) in picks.iter().zip(answers) {
                match label {
                    Some(l) => {
                        self.state.pool.set_label(*id, l, round);
                        new_ids.push(*id);
                        new_labels.push(l);
                    }
                    None => self.state.pool.skip(*id, round),
                }
            }
            if self.settings.online {
                if !new_ids.is_empty() {
                    self.replay_into(round, &mut new_ids, &mut new_labels);
                    self.learner.partial_fit(&self.rows(&new_ids), &new_labels, n_classes)?;
                }
            } else {
                self.fit_all()?;
            }
        } else if self.settings.online {
            if self.state.pool.n_labeled() > 0 {
                let ids = self.state.pool.labeled().to_vec();
                self.learner.partial_fit(&self.rows(&ids), &self.state.pool.labels(), n_classes)?;
            }
        } else {
            self.fit_all()?;
        }
        self.state.rounds = round + 1;
        let labels = self.state.pool.n_labeled();
        let last = labels >= self.settings.budget || self.state.pool.n_unlabeled() == 0;
        if !(round == 0 || last || self.eval.wants(labels) || self.needs.stop_set || self.needs.uncertainty) {
            return Ok(StepOutcome::Trained { round, labels });
        }
        let probs = self.learner.predict_proba(&self.test.features)?;
        let mut record = RoundRecord::new(
            round,
            labels,
            metrics::accuracy(&probs, &self.test.labels),
            metrics::log_loss(&probs, &self.test.labels),
            0.0,
        );
        record.balanced_accuracy = metrics::balanced_accuracy(&probs, &self.test.labels);
        if n_classes == 2 && self.positive_class {
            record.positive_recall = metrics::recalls(&probs, &self.test.labels)[1];
        }
        record.batch_accuracy = batch_accuracy;
        if self.needs.uncertainty && self.state.pool.n_unlabeled() > 0 {
            let candidates = self.candidates(round + 1);
            let p = self.learner.predict_proba(&self.rows(&candidates))?;
            let u: Vec<f64> = p.rows().map(|r| 1.0 - r.iter().cloned().fold(0f32, f32::max) as f64).collect();
            record.max_uncertainty = Some(u.iter().cloned().fold(0.0, f64::max));
            record.mean_uncertainty = Some(metrics::mean(&u));
        }
        if self.needs.stop_set {
            let predictions = self.learner.predict_proba(&self.pool_data.features.select_rows(&self.stop_set))?.argmax();
            if let Some(previous) = &self.state.stop_set_predictions {
                record.stop_set_kappa = Some(metrics::cohen_kappa(previous, &predictions, n_classes));
            }
            self.state.stop_set_predictions = Some(predictions);
        }
        record.seconds = start.elapsed().as_secs_f64();
        self.state.history.push(record.clone());
        Ok(StepOutcome::Round(record))
    }

    /// The history the stopping rules read: the evaluated rounds, with the label count of the
    /// last round done (evaluated or not) so the budget rule sees every label.
    fn stop_history(&self) -> Vec<RoundRecord> {
        let mut h = self.state.history.clone();
        let labels = self.state.pool.n_labeled();
        if h.last().is_some_and(|r| r.labels != labels) || h.is_empty() {
            h.push(RoundRecord::new(self.state.rounds.saturating_sub(1), labels, f64::NAN, f64::NAN, 0.0));
        }
        h
    }

    /// Add `replay` earlier labels (not in this batch), drawn with the round's seed.
    fn replay_into(&self, round: u32, ids: &mut Vec<SampleId>, labels: &mut Vec<u32>) {
        let earlier = self.state.pool.n_labeled() - ids.len();
        let k = self.settings.replay.min(earlier);
        if k == 0 {
            return;
        }
        let mut rng = seeded_rng(self.settings.seed, (streams::REPLAY << 32) | round as u64);
        let all = self.state.pool.labeled();
        let all_labels = self.state.pool.labels();
        // Labeling order puts this batch last: earlier labels are the first `earlier` entries.
        for i in sample(&mut rng, earlier, k) {
            ids.push(all[i]);
            labels.push(all_labels[i]);
        }
    }

    fn fit_all(&mut self) -> Result<()> {
        let idx: Vec<usize> = self.state.pool.labeled().iter().map(|id| id.index()).collect();
        let mut x = self.pool_data.features.select_rows(&idx);
        let labels = self.state.pool.labels();
        let mut y = labels.clone();
        if let (true, Some(patches)) = (self.train_on_patches, self.patches) {
            let per_row = patches.per_row(&idx, self.patch_seed()).map_err(|e| quarry_core::Error::Other(e.to_string()))?;
            for (rows, &label) in per_row.iter().zip(&labels) {
                for r in 0..rows.rows() {
                    x.push_row(rows.row(r));
                    y.push(label);
                }
            }
        }
        self.learner.fit(&x, &y, self.pool_data.n_classes())
    }

    /// The current model's accuracy on a batch it has not learned yet (`None` if nothing was answered).
    fn accuracy_before_learning(&self, picks: &[SampleId], answers: &[Option<u32>]) -> Result<Option<f64>> {
        let answered: Vec<(SampleId, u32)> = picks.iter().zip(answers).filter_map(|(id, a)| a.map(|l| (*id, l))).collect();
        if answered.is_empty() {
            return Ok(None);
        }
        let ids: Vec<SampleId> = answered.iter().map(|(id, _)| *id).collect();
        let labels: Vec<u32> = answered.iter().map(|(_, l)| *l).collect();
        let p = self.learner.predict_proba(&self.rows(&ids))?;
        Ok(Some(metrics::accuracy(&p, &labels)))
    }

    fn rows(&self, ids: &[SampleId]) -> Matrix {
        self.pool_data.features.select_rows(&ids.iter().map(|id| id.index()).collect::<Vec<_>>())
    }

    /// The batch of `k` the strategy would query next, without asking anyone (real use: the
    /// person labels it outside the loop).
    pub fn propose(&self, k: usize) -> Result<Vec<SampleId>> {
        self.query(self.state.rounds, k)
    }

    /// The seed of every image's augmented patches in this run.
    fn patch_seed(&self) -> u64 {
        self.settings.seed ^ (streams::PATCHES << 32)
    }

    /// This round's candidates: every unlabeled sample, or a seeded subsample of `candidates`.
    fn candidates(&self, round: u32) -> Vec<SampleId> {
        let mut candidates = self.state.pool.unlabeled();
        if let Some(m) = self.settings.candidates.filter(|&m| m < candidates.len()) {
            let mut rng = seeded_rng(self.settings.seed, (streams::CANDIDATES << 32) | round as u64);
            let mut keep = sample(&mut rng, candidates.len(), m).into_vec();
            keep.sort_unstable();
            candidates = keep.into_iter().map(|i| candidates[i]).collect();
        }
        candidates
    }

    /// Candidates (all unlabeled, or a seeded subsample), their scores if the strategy needs
    /// any, and the strategy's batch.
    fn query(&self, round: u32, k: usize) -> Result<Vec<SampleId>> {
        let candidates = self.candidates(round);
        let needs = if self.state.pool.n_labeled() < self.settings.warmup { Needs::NOTHING } else { self.strategy.needs() };
        let rows = |ids: &[SampleId]| self.rows(ids);
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
        if needs.patches {
            let p = self.patches.ok_or_else(|| {
                quarry_core::Error::Other(format!(
                    "strategy {} needs augmented patches of each candidate: give an image folder as --data with --model efficientnet-lite0",
                    self.strategy.name()
                ))
            })?;
            let rows: Vec<usize> = candidates.iter().map(|id| id.index()).collect();
            scores.patches = Some(p.probabilities(self.learner.as_ref(), &rows, self.patch_seed()).map_err(|e| quarry_core::Error::Other(e.to_string()))?);
        }
        if needs.features {
            scores.features = Some(cand_x.clone());
        }
        if needs.labeled_features {
            scores.labeled_features = Some(rows(labeled));
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
        let labeled_labels = self.state.pool.labels();
        let ctx = QueryContext {
            candidates: &candidates,
            scores: &scores,
            labeled,
            labeled_labels: &labeled_labels,
            what_if: what_if.as_ref().map(|w| w as &dyn WhatIf),
        };
        let mut rng = seeded_rng(self.settings.seed, (streams::STRATEGY << 32) | round as u64);
        let query = if self.state.pool.n_labeled() < self.settings.warmup {
            quarry_strategies::RandomSampling.select(&ctx, k, &mut rng)?
        } else {
            self.strategy.select(&ctx, k, &mut rng)?
        };
        Ok(query.ids())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels the first `n` samples it is asked about, then declines every other (an annotator
    /// marking images impossible to label).
    struct LabelsThenDeclines {
        labels: Vec<u32>,
        left: usize,
    }

    impl Oracle for LabelsThenDeclines {
        fn label(&mut self, ids: &[SampleId]) -> quarry_core::Result<Vec<Option<u32>>> {
            Ok(ids
                .iter()
                .map(|id| {
                    let answer = (self.left > 0).then(|| self.labels[id.index()]);
                    self.left = self.left.saturating_sub(1);
                    answer
                })
                .collect())
        }
    }

    /// Declined samples are never asked again, and once every remaining one was declined the run
    /// stops with AIFT's "the rest cannot be labeled" reason, keeping the labels it has.
    #[test]
    fn stops_when_annotators_mark_the_rest_unlabelable() {
        let x = Matrix::new((0..12).map(|i| i as f32).collect(), 12, 1).unwrap();
        let y: Vec<u32> = (0..12).map(|i| (i >= 6) as u32).collect();
        let data = Dataset::new(x, y.clone(), vec!["a".into(), "b".into()]).unwrap();
        let oracle = Box::new(LabelsThenDeclines { labels: y, left: 4 });
        let settings = LoopSettings { batch: 3, budget: 12, candidates: None, mc_draws: 1, online: false, warmup: 0, replay: 0, seed: 0 };
        let learner = Box::new(quarry_models::LogisticRegressionLearner::new(Default::default()));
        let strategy = quarry_strategies::RandomSampling;
        let initial = [SampleId::from(0), SampleId::from(11)];
        let mut lp = ActiveLoop::new(&data, &data, learner, &strategy, oracle, settings, vec![], &initial).unwrap();
        let reason = loop {
            match lp.step().unwrap() {
                StepOutcome::Stopped(r) => break r,
                _ => continue,
            }
        };
        assert_eq!(reason.rule, "rest-unlabelable", "{reason:?}");
        assert_eq!(lp.state().pool.n_labeled(), 4);
        assert_eq!(lp.state().pool.n_skipped(), 8);
    }

    /// Two tight clusters 1,000 apart: after the first pick, the other cluster holds essentially
    /// all the D² mass, so a 2-point k-means++ start covers both; picks are distinct.
    #[test]
    fn kmeanspp_start_spreads_over_clusters() {
        let xs: Vec<f32> = (0..20).map(|i| if i < 10 { i as f32 * 0.01 } else { 1000.0 + i as f32 * 0.01 }).collect();
        let x = Matrix::new(xs, 20, 1).unwrap();
        let y: Vec<u32> = (0..20).map(|i| (i >= 10) as u32).collect();
        for seed in 0..10 {
            let picks = initial_set_kmeanspp(&x, &y, 2, seed).unwrap();
            assert_ne!(picks[0].index() < 10, picks[1].index() < 10, "seed {seed}: {picks:?}");
        }
        let many = initial_set_kmeanspp(&x, &y, 20, 3).unwrap();
        let mut ids: Vec<_> = many.iter().map(|p| p.index()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20);
        assert!(initial_set_kmeanspp(&x, &y, 21, 0).is_err());
        assert_eq!(initial_set_kmeanspp(&x, &y, 5, 7).unwrap(), initial_set_kmeanspp(&x, &y, 5, 7).unwrap());
    }
}
