//! The one active-learning loop every driver drives: a [`Session`] over a pool, a learner, a
//! strategy and stopping rules. It proposes ([`Session::query`]) and learns from answers
//! ([`Session::teach`]); who answers, when, and what is measured on a test set is the driver's
//! business — a simulation's ground truth and evaluation observer, a person behind `quarry query`
//! or the labeling server.
//!
//! Driving it by hand (a person answers; the model learns after each batch):
//!
//! ```
//! use quarry_core::{Answer, Learner, Matrix, SampleId, Session, SessionSettings, BudgetRule};
//! # fn demo(features: &Matrix, learner: Box<dyn Learner>, strategy: Box<dyn quarry_core::Strategy>,
//! #         ask_a_person: impl Fn(SampleId) -> Answer) -> quarry_core::Result<()> {
//! let mut session = Session::new(features, 3, learner, strategy, SessionSettings::seeded(7))
//!     .with_rules(vec![Box::new(BudgetRule { budget: 100 })]);
//! session.teach(&[(SampleId(0), Answer::Label(2)), (SampleId(9), Answer::Label(0))])?; // the first labels
//! while session.should_stop().is_none() {
//!     let query = session.query(10)?;                          // the next batch, best first, with scores
//!     let answers: Vec<_> = query.ids().into_iter().map(|id| (id, ask_a_person(id))).collect();
//!     session.teach(&answers)?;                                 // labels, skips, "cannot label"
//! }
//! let saved = session.state().clone();                          // with learner().checkpoint(): a resumable run
//! # Ok(()) }
//! ```

use crate::metrics;
use crate::{
    Error, Learner, Matrix, Needs, Pool, Probabilities, QueryContext, Result, RoundStats, SampleId, ScoreKind,
    Scores, StopNeeds, StopReason, StopView, StoppingRule, Strategy, WhatIf, seeded_rng,
};
use crate::{Query, SampleState as S};
use crate::scores::{RowsOf, Score};
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Instant;

/// Random streams of a session, so each purpose draws independent numbers from the seed.
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

/// A person's (or an oracle's) answer about one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// The sample's class. Answering a labeled sample again corrects its label.
    Label(u32),
    /// Not now: the sample stays unlabeled and may be proposed again.
    Skip,
    /// Impossible to label: never proposed again (AIFT's "unlabelable").
    CannotLabel,
}

impl From<Option<u32>> for Answer {
    /// An [`crate::Oracle`]'s answer: `None` means it cannot be labeled.
    fn from(a: Option<u32>) -> Self {
        a.map_or(Answer::CannotLabel, Answer::Label)
    }
}

/// How a session learns and queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SessionSettings {
    /// Score only this many random unlabeled samples per query (all when `None`).
    pub candidates: Option<usize>,
    /// MC-dropout passes for strategies that need them.
    pub mc_draws: usize,
    /// Online mode: each [`Session::teach`] takes one update on just the new labels
    /// (`Learner::partial_fit`) instead of a refit on every label.
    pub online: bool,
    /// Random warm start: query at random until this many labels (a cold-start fix).
    pub warmup: usize,
    /// Online mode: each update also replays this many earlier labels, drawn at random.
    pub replay: usize,
    pub seed: u64,
}

impl SessionSettings {
    /// Every candidate scored, refit after each answer batch, 20 MC passes, no warm-up.
    pub fn seeded(seed: u64) -> Self {
        SessionSettings { candidates: None, mc_draws: 20, online: false, warmup: 0, replay: 0, seed }
    }
}

/// The saved form of a session: with the learner's checkpoint, enough to continue exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionState {
    pub pool: Pool,
    /// Rounds taught so far (the model version): round `r` is the `r+1`-th [`Session::teach`].
    pub rounds: u32,
    /// One entry per round.
    pub stats: Vec<RoundStats>,
    /// The last model's predictions on the stop set, when a rule compares successive models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_set_predictions: Option<Vec<u32>>,
}

/// What a [`ScoreProvider`] is asked to score.
pub struct ScoreRequest<'a> {
    pub learner: &'a dyn Learner,
    /// Every pool sample's input row (row `i` is `SampleId(i)`).
    pub pool: &'a Matrix,
    pub candidates: &'a [SampleId],
    /// The candidates' rows of `pool`.
    pub candidate_rows: &'a Matrix,
    pub labeled: &'a [SampleId],
    pub unlabeled: &'a [SampleId],
    pub round: u32,
    pub settings: &'a SessionSettings,
}

/// Makes scores of some kinds. The learner's own scores come from [`LearnerScores`]; extra
/// inputs (AIFT's augmented patches) come from providers a driver adds with
/// [`Session::with_provider`].
pub trait ScoreProvider: Send + Sync {
    /// Fill `kind` into `out`; `Ok(false)` when this provider does not make that kind.
    fn provide(&self, kind: ScoreKind, req: &ScoreRequest<'_>, out: &mut Scores) -> Result<bool>;
}

/// The scores any [`Learner`] gives (a learner that cannot make one says so in its error), and the
/// pool's raw input rows.
pub struct LearnerScores;

impl ScoreProvider for LearnerScores {
    fn provide(&self, kind: ScoreKind, r: &ScoreRequest<'_>, out: &mut Scores) -> Result<bool> {
        let rows = |ids: &[SampleId]| r.pool.select_rows(&ids.iter().map(|id| id.index()).collect::<Vec<_>>());
        let score: Score = match kind {
            ScoreKind::Probabilities => r.learner.predict_proba(r.candidate_rows)?.into(),
            ScoreKind::McSamples => {
                let seed = r.settings.seed ^ ((streams::MC_DROPOUT << 32) | r.round as u64);
                r.learner.mc_samples(r.candidate_rows, r.settings.mc_draws, seed)?.into()
            }
            ScoreKind::Committee => r.learner.committee(r.candidate_rows)?.into(),
            ScoreKind::Embeddings => r.learner.embed(r.candidate_rows)?.into(),
            ScoreKind::LabeledEmbeddings => r.learner.embed(&rows(r.labeled))?.into(),
            ScoreKind::LabeledProbabilities => r.learner.predict_proba(&rows(r.labeled))?.into(),
            ScoreKind::PoolEmbeddings => r.learner.embed(&rows(r.unlabeled))?.into(),
            ScoreKind::GradientEmbeddings => r.learner.gradient_embedding(r.candidate_rows)?.into(),
            ScoreKind::Features => r.candidate_rows.clone().into(),
            ScoreKind::LabeledFeatures => rows(r.labeled).into(),
            // Patches, and any kind only another provider makes.
            _ => return Ok(false),
        };
        out.set(kind, score);
        Ok(true)
    }
}

impl<T: ScoreProvider + ?Sized> ScoreProvider for &T {
    fn provide(&self, kind: ScoreKind, req: &ScoreRequest<'_>, out: &mut Scores) -> Result<bool> {
        (**self).provide(kind, req, out)
    }
}

impl<T: ScoreProvider + ?Sized> ScoreProvider for std::sync::Arc<T> {
    fn provide(&self, kind: ScoreKind, req: &ScoreRequest<'_>, out: &mut Scores) -> Result<bool> {
        (**self).provide(kind, req, out)
    }
}

/// Extra training rows for the labeled samples (AIFT trains on each labeled image's augmented
/// patches too). Given the labeled ids and labels, appends rows and their labels.
pub trait Augment: Send + Sync {
    fn augment(&self, labeled: &[SampleId], labels: &[u32], x: &mut Matrix, y: &mut Vec<u32>) -> Result<()>;
}

impl<T: Augment + ?Sized> Augment for &T {
    fn augment(&self, labeled: &[SampleId], labels: &[u32], x: &mut Matrix, y: &mut Vec<u32>) -> Result<()> {
        (**self).augment(labeled, labels, x, y)
    }
}

impl<T: Augment + ?Sized> Augment for std::sync::Arc<T> {
    fn augment(&self, labeled: &[SampleId], labels: &[u32], x: &mut Matrix, y: &mut Vec<u32>) -> Result<()> {
        (**self).augment(labeled, labels, x, y)
    }
}

/// [`WhatIf`] for the session's learner: a copy refit on the labeled set plus one hypothetical
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

/// The query/teach loop over one pool. See the [module documentation](self) for an example.
pub struct Session<'a> {
    features: Cow<'a, Matrix>,
    n_classes: usize,
    learner: Box<dyn Learner + 'a>,
    strategy: Box<dyn Strategy + 'a>,
    providers: Vec<Box<dyn ScoreProvider + 'a>>,
    augment: Option<Box<dyn Augment + 'a>>,
    rules: Vec<Box<dyn StoppingRule + 'a>>,
    stop_needs: StopNeeds,
    stop_set: Vec<usize>,
    settings: SessionSettings,
    state: SessionState,
}

impl<'a> Session<'a> {
    /// A session with nothing labeled over the pool `features` (`[n, dim]`, row `i` is
    /// `SampleId(i)`) of `n_classes` classes, and no stopping rule.
    pub fn new(
        features: impl Into<Cow<'a, Matrix>>,
        n_classes: usize,
        learner: Box<dyn Learner + 'a>,
        strategy: Box<dyn Strategy + 'a>,
        settings: SessionSettings,
    ) -> Self {
        let features = features.into();
        let state = SessionState { pool: Pool::new(features.rows()), rounds: 0, stats: Vec::new(), stop_set_predictions: None };
        Session {
            features,
            n_classes,
            learner,
            strategy,
            providers: Vec::new(),
            augment: None,
            rules: Vec::new(),
            stop_needs: StopNeeds::default(),
            stop_set: Vec::new(),
            settings,
            state,
        }
    }

    /// The stopping rules [`Session::should_stop`] consults, in order (the first that fires wins).
    pub fn with_rules(mut self, rules: Vec<Box<dyn StoppingRule + 'a>>) -> Self {
        self.stop_needs = rules.iter().fold(StopNeeds::default(), |n, r| n.union(r.needs()));
        self.stop_set = if self.stop_needs.stop_set {
            let n = self.features.rows();
            let mut rng = seeded_rng(self.settings.seed, streams::STOP_SET);
            let mut v = sample(&mut rng, n, STOP_SET_SIZE.min(n)).into_vec();
            v.sort_unstable();
            v
        } else {
            Vec::new()
        };
        self.rules = rules;
        self
    }

    /// A provider of extra score kinds, asked before the learner's own.
    /// (Owned, or borrowed: `&T` and `Arc<T>` of a provider are providers.)
    pub fn with_provider(mut self, provider: impl ScoreProvider + 'a) -> Self {
        self.providers.push(Box::new(provider));
        self
    }

    /// Extra training rows for every labeled sample on each refit.
    pub fn with_augment(mut self, augment: impl Augment + 'a) -> Self {
        self.augment = Some(Box::new(augment));
        self
    }

    /// Continue from a saved state (restore the learner from its checkpoint first).
    pub fn resume(mut self, state: SessionState) -> Result<Self> {
        if state.pool.len() != self.features.rows() {
            return Err(Error::shape("saved session pool", self.features.rows(), state.pool.len()));
        }
        self.state = state;
        Ok(self)
    }

    pub fn state(&self) -> &SessionState {
        &self.state
    }
    pub fn pool(&self) -> &Pool {
        &self.state.pool
    }
    pub fn learner(&self) -> &dyn Learner {
        self.learner.as_ref()
    }
    pub fn strategy(&self) -> &dyn Strategy {
        self.strategy.as_ref()
    }
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }
    /// What the stopping rules read beyond the pool's counts.
    pub fn stop_needs(&self) -> StopNeeds {
        self.stop_needs
    }
    /// The model version: how many times the session has been taught.
    pub fn rounds(&self) -> u32 {
        self.state.rounds
    }
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }
    /// The pool's input rows.
    pub fn features(&self) -> &Matrix {
        &self.features
    }

    /// Add new samples to the pool (membership query synthesis makes its own), unlabeled; their
    /// ids follow the existing ones. `rows` must have the pool's width.
    pub fn add_samples(&mut self, rows: &Matrix) -> Result<Vec<SampleId>> {
        if rows.cols() != self.features.cols() && self.features.rows() > 0 {
            return Err(Error::shape("new pool samples", format!("{} columns", self.features.cols()), rows.cols()));
        }
        let first = self.features.rows();
        let features = self.features.to_mut();
        if first == 0 {
            *features = rows.clone();
        } else {
            (0..rows.rows()).for_each(|r| features.push_row(rows.row(r)));
        }
        self.state.pool.grow(rows.rows());
        Ok((first..first + rows.rows()).map(SampleId::from).collect())
    }

    /// The current model's class probabilities for these samples.
    pub fn predict(&self, ids: &[SampleId]) -> Result<Probabilities> {
        self.learner.predict_proba(&self.rows(ids))
    }

    /// The next `k` samples to ask about, best first, with the strategy's scores, from the current
    /// model. Asking twice without teaching gives the same batch (the randomness is fixed per round).
    pub fn query(&self, k: usize) -> Result<Query> {
        self.query_except(k, &[])
    }

    /// As [`Session::query`], leaving out samples already handed out (to another annotator, say).
    pub fn query_except(&self, k: usize, exclude: &[SampleId]) -> Result<Query> {
        let round = self.state.rounds;
        let mut candidates = self.candidates(round);
        if !exclude.is_empty() {
            let out: std::collections::HashSet<SampleId> = exclude.iter().copied().collect();
            candidates.retain(|id| !out.contains(id));
        }
        let warm = self.state.pool.n_labeled() < self.settings.warmup;
        let needs = if warm { Needs::NOTHING } else { self.strategy.needs() };
        let cand_x = self.rows(&candidates);
        let labeled = self.state.pool.labeled();
        let over_unlabeled = needs.kinds().any(|k| k.rows_of() == RowsOf::Unlabeled);
        let unlabeled = if over_unlabeled { self.state.pool.unlabeled() } else { Vec::new() };
        let req = ScoreRequest {
            learner: self.learner.as_ref(),
            pool: &self.features,
            candidates: &candidates,
            candidate_rows: &cand_x,
            labeled,
            unlabeled: &unlabeled,
            round,
            settings: &self.settings,
        };
        let mut scores = Scores::default();
        for kind in needs.kinds() {
            let mut made = false;
            for p in self.providers.iter().map(|p| p.as_ref() as &dyn ScoreProvider).chain(std::iter::once(&LearnerScores as &dyn ScoreProvider)) {
                if p.provide(kind, &req, &mut scores)? {
                    made = true;
                    break;
                }
            }
            if !made {
                return Err(Error::Other(format!(
                    "strategy {} needs {} scores, and nothing in this session makes them",
                    self.strategy.name(),
                    kind.name()
                )));
            }
        }
        let labeled_labels = self.state.pool.labels();
        let what_if = needs.what_if().then(|| Refit {
            learner: self.learner.as_ref(),
            labeled_x: self.rows(labeled),
            labeled_y: labeled_labels.clone(),
            candidates_x: &cand_x,
            n_classes: self.n_classes,
        });
        let ctx = QueryContext {
            candidates: &candidates,
            scores: &scores,
            labeled,
            labeled_labels: &labeled_labels,
            what_if: what_if.as_ref().map(|w| w as &dyn WhatIf),
        };
        let mut rng = seeded_rng(self.settings.seed, (streams::STRATEGY << 32) | round as u64);
        if warm { crate::strategy::random_batch(&ctx, k, &mut rng) } else { self.strategy.select(&ctx, k, &mut rng) }
    }

    /// Learn from answers — for any samples, in any order, proposed or not — and update the
    /// model: one round. A label for a labeled sample corrects it; [`Answer::Skip`] leaves a
    /// sample unlabeled; [`Answer::CannotLabel`] takes it out of the pool for good. Teaching an
    /// empty list still updates (fits) the model, as a simulation's round 0 with no initial labels.
    pub fn teach(&mut self, answers: &[(SampleId, Answer)]) -> Result<&RoundStats> {
        let start = Instant::now();
        let round = self.state.rounds;
        let n = self.state.pool.len();
        if let Some((id, _)) = answers.iter().find(|(id, _)| id.index() >= n) {
            return Err(Error::param("answer", format!("sample {id} is not in the pool of {n} samples")));
        }
        if let Some((id, Answer::Label(l))) = answers.iter().find(|(_, a)| matches!(a, Answer::Label(l) if *l as usize >= self.n_classes)) {
            return Err(Error::param("answer", format!("label {l} of sample {id} is not one of the {} classes", self.n_classes)));
        }
        // The current model's accuracy on the newly labeled samples, before learning them.
        let fresh: Vec<(SampleId, u32)> =
            answers.iter().filter_map(|&(id, a)| if let Answer::Label(l) = a { Some((id, l)) } else { None }).collect();
        let batch_accuracy = if round > 0 && !fresh.is_empty() {
            let ids: Vec<SampleId> = fresh.iter().map(|(id, _)| *id).collect();
            let labels: Vec<u32> = fresh.iter().map(|(_, l)| *l).collect();
            Some(metrics::accuracy(&self.predict(&ids)?, &labels))
        } else {
            None
        };
        let mut new_ids = Vec::new();
        let mut new_labels = Vec::new();
        for &(id, answer) in answers {
            let pool = &mut self.state.pool;
            match (answer, pool.state(id)) {
                (Answer::Skip, _) => {}
                (Answer::Label(l), S::Labeled { label, .. }) if label == l => {}
                (Answer::CannotLabel, S::Skipped { .. }) => {}
                (Answer::Label(l), state) => {
                    if state != S::Unlabeled {
                        pool.reset(id);
                    }
                    pool.set_label(id, l, round);
                    new_ids.push(id);
                    new_labels.push(l);
                }
                (Answer::CannotLabel, state) => {
                    if state != S::Unlabeled {
                        pool.reset(id);
                    }
                    pool.skip(id, round);
                }
            }
        }
        if self.settings.online {
            if !new_ids.is_empty() {
                self.replay_into(round, &mut new_ids, &mut new_labels);
                let x = self.rows(&new_ids);
                self.learner.partial_fit(&x, &new_labels, self.n_classes)?;
            }
        } else {
            self.fit_all()?;
        }
        self.state.rounds = round + 1;
        let mut stats = RoundStats { round, labels: self.state.pool.n_labeled(), batch_accuracy, ..Default::default() };
        if self.stop_needs.uncertainty && self.state.pool.n_unlabeled() > 0 {
            let candidates = self.candidates(round + 1);
            let p = self.predict(&candidates)?;
            let u: Vec<f64> = p.rows().map(|r| 1.0 - r.iter().cloned().fold(0f32, f32::max) as f64).collect();
            stats.max_uncertainty = Some(u.iter().cloned().fold(0.0, f64::max));
            stats.mean_uncertainty = Some(metrics::mean(&u));
        }
        if self.stop_needs.stop_set {
            let predictions = self.learner.predict_proba(&self.features.select_rows(&self.stop_set))?.argmax();
            if let Some(previous) = &self.state.stop_set_predictions {
                stats.stop_set_kappa = Some(metrics::cohen_kappa(previous, &predictions, self.n_classes));
            }
            self.state.stop_set_predictions = Some(predictions);
        }
        stats.seconds = start.elapsed().as_secs_f64();
        self.state.stats.push(stats);
        Ok(self.state.stats.last().expect("just pushed"))
    }

    /// The first stopping rule that fires, if any. Nothing stops a session never taught.
    pub fn should_stop(&self) -> Option<StopReason> {
        if self.state.rounds == 0 {
            return None;
        }
        let pool = &self.state.pool;
        let view = StopView {
            history: &self.state.stats,
            labeled: pool.n_labeled(),
            unlabeled: pool.n_unlabeled(),
            cannot_label: pool.n_skipped(),
        };
        self.rules.iter().find_map(|r| r.check(&view))
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
        let ids = self.state.pool.labeled();
        let mut x = self.rows(ids);
        let labels = self.state.pool.labels();
        let mut y = labels.clone();
        if let Some(augment) = &self.augment {
            augment.augment(ids, &labels, &mut x, &mut y)?;
        }
        self.learner.fit(&x, &y, self.n_classes)
    }

    fn rows(&self, ids: &[SampleId]) -> Matrix {
        self.features.select_rows(&ids.iter().map(|id| id.index()).collect::<Vec<_>>())
    }

    /// A round's candidates: every unlabeled sample, or a seeded subsample of `candidates`.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BudgetRule, Pick, QuarryRng, RestUnlabelable, SampleState};

    /// Nearest class mean on one feature; p ∝ exp(−distance). Deterministic, and its checkpoint
    /// is its means, so a restored copy predicts exactly as the original.
    #[derive(Clone, Default)]
    struct Centroids {
        means: Vec<f32>,
        fits: usize,
    }

    impl Learner for Centroids {
        fn name(&self) -> &str {
            "centroids"
        }
        fn fit(&mut self, x: &Matrix, y: &[u32], n_classes: usize) -> Result<()> {
            let mut sum = vec![0f32; n_classes];
            let mut count = vec![0f32; n_classes];
            for (i, &c) in y.iter().enumerate() {
                sum[c as usize] += x.row(i)[0];
                count[c as usize] += 1.0;
            }
            self.means = sum.iter().zip(&count).map(|(s, c)| if *c > 0.0 { s / c } else { f32::INFINITY }).collect();
            self.fits += 1;
            Ok(())
        }
        fn predict_proba(&self, x: &Matrix) -> Result<Probabilities> {
            let mut out = Vec::new();
            for i in 0..x.rows() {
                let w: Vec<f32> = self.means.iter().map(|m| (-(x.row(i)[0] - m).abs()).exp()).collect();
                let s: f32 = w.iter().sum();
                out.extend(w.iter().map(|v| v / s));
            }
            Probabilities::new(out, x.rows(), self.means.len())
        }
        fn checkpoint(&self) -> Result<Vec<u8>> {
            Ok(self.means.iter().flat_map(|m| m.to_le_bytes()).collect())
        }
        fn restore(&mut self, bytes: &[u8]) -> Result<()> {
            self.means = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok(())
        }
        fn boxed_clone(&self) -> Box<dyn Learner> {
            Box::new(self.clone())
        }
    }

    /// Least confidence, ties to the lower id: enough to see the session hand scores to a strategy.
    struct LeastConfident;
    impl Strategy for LeastConfident {
        fn name(&self) -> &str {
            "least-confident"
        }
        fn needs(&self) -> Needs {
            Needs::PROBABILITIES
        }
        fn select(&self, ctx: &QueryContext<'_>, k: usize, _: &mut QuarryRng) -> Result<Query> {
            let p = ctx.scores.probabilities(self.name())?;
            let mut picks: Vec<Pick> = p
                .rows()
                .zip(ctx.candidates)
                .map(|(r, &id)| Pick { id, score: 1.0 - r.iter().cloned().fold(0f32, f32::max) as f64 })
                .collect();
            picks.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
            picks.truncate(k);
            Ok(Query { picks })
        }
    }

    /// Asks for scores nothing makes.
    struct WantsPatches;
    impl Strategy for WantsPatches {
        fn name(&self) -> &str {
            "wants-patches"
        }
        fn needs(&self) -> Needs {
            Needs::of(&[ScoreKind::Patches])
        }
        fn select(&self, _: &QueryContext<'_>, _: usize, _: &mut QuarryRng) -> Result<Query> {
            unreachable!("the session refuses before selecting")
        }
    }

    /// Ten points on a line: 0..4 are class 0, 5..9 class 1.
    fn line() -> Matrix {
        Matrix::new((0..10).map(|i| i as f32).collect(), 10, 1).unwrap()
    }
    fn truth(id: SampleId) -> u32 {
        (id.0 >= 5) as u32
    }
    fn session(x: &Matrix) -> Session<'_> {
        Session::new(x, 2, Box::new(Centroids::default()), Box::new(LeastConfident), SessionSettings::seeded(3))
    }

    /// Hand-computed: with 0 → class 0 and 9 → class 1 the means are 0 and 9, so the least confident
    /// points are those nearest 4.5: 4 and 5 (equal), then 3 and 6.
    #[test]
    fn query_ranks_by_the_current_model_and_repeats_until_taught() {
        let x = line();
        let mut s = session(&x);
        s.teach(&[(SampleId(9), Answer::Label(1)), (SampleId(0), Answer::Label(0))]).unwrap();
        let q = s.query(4).unwrap();
        assert_eq!(q.ids(), [SampleId(4), SampleId(5), SampleId(3), SampleId(6)]);
        assert_eq!(s.query(4).unwrap(), q, "a second annotator asking again gets the same batch");
        let other = s.query_except(2, &q.ids()[..2]).unwrap();
        assert_eq!(other.ids(), [SampleId(3), SampleId(6)], "items handed out are left out");
    }

    #[test]
    fn teach_takes_any_answers_in_any_order_and_corrections() {
        let x = line();
        let mut s = session(&x);
        s.teach(&[(SampleId(9), Answer::Label(1)), (SampleId(0), Answer::Label(0))]).unwrap();
        // Samples never proposed, out of order; a skip; a sample that cannot be labeled.
        let stats = s.teach(&[(SampleId(7), Answer::Label(1)), (SampleId(2), Answer::Skip), (SampleId(4), Answer::CannotLabel)]).unwrap();
        assert_eq!((stats.round, stats.labels), (1, 3));
        assert_eq!(stats.batch_accuracy, Some(1.0), "7 was already predicted class 1");
        assert!(!s.query(10).unwrap().ids().contains(&SampleId(4)), "cannot-label is never proposed again");
        assert!(s.query(10).unwrap().ids().contains(&SampleId(2)), "a skip stays proposable");
        // A wrong label, then its correction: the pool keeps one label per sample.
        s.teach(&[(SampleId(6), Answer::Label(0))]).unwrap();
        s.teach(&[(SampleId(6), Answer::Label(1))]).unwrap();
        assert_eq!(s.pool().n_labeled(), 4);
        assert_eq!(s.pool().state(SampleId(6)), SampleState::Labeled { label: 1, round: 3 });
        assert_eq!(s.rounds(), 4);
        // Bad answers change nothing.
        assert!(s.teach(&[(SampleId(1), Answer::Label(0)), (SampleId(3), Answer::Label(2))]).is_err());
        assert!(s.teach(&[(SampleId(10), Answer::Label(0))]).is_err());
        assert_eq!((s.pool().n_labeled(), s.rounds()), (4, 4));
    }

    /// The budget and "the rest cannot be labeled" are ordinary rules; nothing stops before the first teach.
    #[test]
    fn rules_stop_the_session() {
        let x = line();
        let mut s = session(&x).with_rules(vec![Box::new(RestUnlabelable), Box::new(BudgetRule { budget: 4 })]);
        assert!(s.should_stop().is_none());
        s.teach(&[(SampleId(0), Answer::Label(0)), (SampleId(9), Answer::Label(1))]).unwrap();
        assert!(s.should_stop().is_none());
        let rest: Vec<_> = (1..9).map(|i| (SampleId(i), Answer::CannotLabel)).collect();
        s.teach(&rest).unwrap();
        assert_eq!(s.should_stop().unwrap().rule, "rest-unlabelable");
        let mut b = session(&x).with_rules(vec![Box::new(RestUnlabelable), Box::new(BudgetRule { budget: 4 })]);
        b.teach(&(0..4).map(|i| (SampleId(i * 3), Answer::Label(truth(SampleId(i * 3))))).collect::<Vec<_>>()).unwrap();
        assert_eq!(b.should_stop().unwrap().rule, "budget");
    }

    /// A session saved (state + checkpoint) and resumed proposes exactly what the original does.
    #[test]
    fn resumed_session_continues_exactly() {
        let x = line();
        let mut a = session(&x);
        a.teach(&[(SampleId(1), Answer::Label(0)), (SampleId(8), Answer::Label(1))]).unwrap();
        for _ in 0..3 {
            let ids = a.query(1).unwrap().ids();
            a.teach(&ids.iter().map(|&id| (id, Answer::Label(truth(id)))).collect::<Vec<_>>()).unwrap();
        }
        let (state, checkpoint) = (a.state().clone(), a.learner().checkpoint().unwrap());
        let mut learner = Centroids::default();
        learner.restore(&checkpoint).unwrap();
        let b = Session::new(&x, 2, Box::new(learner), Box::new(LeastConfident), SessionSettings::seeded(3)).resume(state).unwrap();
        assert_eq!(a.query(3).unwrap(), b.query(3).unwrap());
        assert_eq!(b.rounds(), 4);
        let wrong = Session::new(&x, 2, Box::new(Centroids::default()), Box::new(LeastConfident), SessionSettings::seeded(3));
        assert!(wrong.resume(SessionState { pool: Pool::new(3), rounds: 1, stats: vec![], stop_set_predictions: None }).is_err());
    }

    #[test]
    fn missing_scores_name_the_strategy_and_the_kind() {
        let x = line();
        let mut s = Session::new(&x, 2, Box::new(Centroids::default()), Box::new(WantsPatches), SessionSettings::seeded(0));
        s.teach(&[(SampleId(0), Answer::Label(0)), (SampleId(9), Answer::Label(1))]).unwrap();
        let e = s.query(2).unwrap_err().to_string();
        assert!(e.contains("wants-patches") && e.contains("patch-probabilities"), "{e}");
    }

    /// Samples added later (synthesized) are ordinary pool samples: taught, never proposed once labeled.
    #[test]
    fn samples_can_be_added_to_the_pool() {
        let mut s = Session::new(Matrix::zeros(0, 1), 2, Box::new(Centroids::default()), Box::new(LeastConfident), SessionSettings::seeded(0));
        let ids = s.add_samples(&Matrix::new(vec![0.0, 9.0], 2, 1).unwrap()).unwrap();
        assert_eq!(ids, [SampleId(0), SampleId(1)]);
        s.teach(&[(ids[0], Answer::Label(0)), (ids[1], Answer::Label(1))]).unwrap();
        let more = s.add_samples(&Matrix::new(vec![4.0, 8.0], 2, 1).unwrap()).unwrap();
        assert_eq!(more, [SampleId(2), SampleId(3)]);
        assert_eq!(s.query(1).unwrap().ids(), [SampleId(2)], "4 is the least confident");
        assert!(s.add_samples(&Matrix::zeros(1, 2)).is_err());
        assert_eq!(s.pool().len(), 4);
    }

    /// A server keeps a session behind a lock and teaches it from a background task: it must be
    /// `Send + Sync` when it owns everything (`'static`), providers included (owned or `Arc`).
    #[test]
    fn an_owning_session_can_cross_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        let s: Session<'static> = Session::new(line(), 2, Box::new(Centroids::default()), Box::new(LeastConfident), SessionSettings::seeded(0))
            .with_provider(std::sync::Arc::new(LearnerScores));
        send_sync(&s);
        let handle = std::thread::spawn(move || s.rounds());
        assert_eq!(handle.join().unwrap(), 0);
    }

    /// A provider added to the session is asked first, by kind.
    #[test]
    fn providers_supply_extra_kinds() {
        struct Flat;
        impl ScoreProvider for Flat {
            fn provide(&self, kind: ScoreKind, r: &ScoreRequest<'_>, out: &mut Scores) -> Result<bool> {
                if kind != ScoreKind::Probabilities {
                    return Ok(false);
                }
                let n = r.candidates.len();
                out.set(ScoreKind::Probabilities, Probabilities::new(vec![0.5; 2 * n], n, 2)?);
                Ok(true)
            }
        }
        let x = line();
        let mut s = session(&x).with_provider(&Flat);
        s.teach(&[(SampleId(0), Answer::Label(0)), (SampleId(9), Answer::Label(1))]).unwrap();
        // Every candidate equally uncertain: ties go to the lowest ids.
        assert_eq!(s.query(3).unwrap().ids(), [SampleId(1), SampleId(2), SampleId(3)]);
    }

    /// Warm-up: below `warmup` labels the batch is random (no scores asked for), and seeded.
    #[test]
    fn warmup_queries_at_random_reproducibly() {
        let x = line();
        let settings = SessionSettings { warmup: 5, ..SessionSettings::seeded(11) };
        let mut s = Session::new(&x, 2, Box::new(Centroids::default()), Box::new(WantsPatches), settings);
        s.teach(&[(SampleId(0), Answer::Label(0)), (SampleId(9), Answer::Label(1))]).unwrap();
        let q = s.query(3).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q, s.query(3).unwrap());
    }
}
