//! The stream-based selective-sampling runner: one (policy, seed) run of `quarry simulate` whose
//! `--strategy` is a stream policy (`stream-paced`, `stream-variable-uncertainty`,
//! `stream-fixed-uncertainty`, `stream-random`; see [`quarry_strategies::stream`]).
//!
//! The initial set (`--initial`, drawn exactly as for the pool-based runs of the seed) is labeled
//! and fit first (round 0). The rest of the pool is shuffled into a seeded stream; samples arrive
//! one at a time, the current model's normalized least confidence for each goes to the policy,
//! which queries it or lets it pass for good. After every `--batch` queried labels (or fewer, when
//! the budget or the stream ends) the queried arrivals are answered and taught to the run's
//! [`Session`] — the same session a pool run drives, so refit or `--train online` (with
//! `--replay`), the stopping rules and the round measurements are the same — and the model is
//! scored when the evaluation schedule wants it and after the stream's last update. The stream
//! run stops at the budget, at a `--stop` rule (checked before each walk, so nothing is walked
//! that is not asked), or at the end of the stream (rule `stream-end`).
//!
//! Arrivals are predicted in blocks of [`BLOCK`] with the current model and the block is dropped
//! whenever the model changes, which decides exactly as predicting one at a time would.
//!
//! The whole state — stream position, policy state, queried positions, pool, history and the
//! learner's checkpoint — is saved in the run directory after every scored round and when the run
//! ends, so a second invocation continues an unfinished run and reuses a finished one. A saved run
//! with another `--budget` is redone from scratch: the policies pace themselves by the budget, so
//! a stream run cannot be extended the way a pool run can. `--warmup` does not apply to stream
//! runs (an arrival cannot be queried later).

use crate::plan::Plan;
use crate::evaluate::{EvalSchedule, Evaluator};
use crate::rundir::RunDir;
use crate::learners::{base_learner, initial_labels, session_settings};
use crate::outcome::{RunResult, StreamStats};
use crate::stopping::run_rules;
use crate::{ExperimentError, Result};
use indicatif::ProgressBar;
use quarry_core::{
    Dataset, GroundTruthOracle, Oracle, Probabilities, RoundRecord, SampleId, Session, SessionSettings, SessionState, StopReason,
    seeded_rng,
};
use quarry_strategies::RandomSampling;
use quarry_strategies::stream::{Arrival, PolicyState, StreamBudget, StreamPolicy, build_policy, policy_name};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Arrivals predicted at once by the current model.
pub const BLOCK: usize = 256;
/// Random stream of the stream order (after those of [`quarry_core::session::streams`]).
pub const ORDER_STREAM: u64 = 8;

/// The saved form of a stream run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamState {
    /// The `--budget` the run was made with (the policies pace themselves by it).
    pub budget: usize,
    pub stream_budget: StreamBudget,
    /// Arrivals decided so far (the next arrival's index in the stream).
    pub position: usize,
    pub policy: PolicyState,
    /// Stream positions of the queried arrivals, in order.
    pub queried_at: Vec<usize>,
    /// Scored rounds; `seconds` includes deciding on the batch's arrivals.
    pub history: Vec<RoundRecord>,
    pub session: SessionState,
    /// Set once the run is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<StopReason>,
}

impl StreamStats {
    fn of(strategy: &str, seed: u64, state: &StreamState) -> Self {
        let n = state.stream_budget.arrivals.max(1);
        let mut quarters = [0usize; 4];
        for &p in &state.queried_at {
            quarters[(p * 4 / n).min(3)] += 1;
        }
        StreamStats {
            strategy: strategy.to_string(),
            seed,
            stream_length: state.stream_budget.arrivals,
            stream_budget: state.stream_budget.labels,
            arrivals_seen: state.position,
            labels_spent: state.queried_at.len(),
            quarters,
        }
    }
}

/// The stream of a seed: every pool sample outside the initial set, in a seeded random order.
pub fn stream_order(pool_len: usize, initial: &[SampleId], seed: u64) -> Vec<SampleId> {
    let mut taken = vec![false; pool_len];
    initial.iter().for_each(|id| taken[id.index()] = true);
    let mut order: Vec<SampleId> = (0..pool_len).filter(|&i| !taken[i]).map(SampleId::from).collect();
    order.shuffle(&mut seeded_rng(seed, ORDER_STREAM));
    order
}

/// The current model's predictions for a block of upcoming arrivals.
struct Block {
    start: usize,
    probs: Probabilities,
}

/// Everything a stream run reads.
pub struct StreamRun<'a> {
    pub plan: &'a Plan<'a>,
    pub pool: &'a Dataset,
    pub test: &'a Dataset,
    /// The `--strategy` name (any accepted spelling of a stream policy).
    pub name: &'a str,
    pub seed: u64,
    /// Hooks for tests (the default: none).
    #[doc(hidden)]
    pub testing: Testing,
}

/// Test hooks of a [`StreamRun`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Testing {
    /// Give up (with an error, the run left unfinished in the run directory) once this many
    /// rounds are scored, as an interrupted invocation would.
    pub interrupt_after: Option<usize>,
    /// Predict this many arrivals at once instead of [`BLOCK`].
    pub block: Option<usize>,
}

impl StreamRun<'_> {
    /// Run (or continue, or reuse) this stream run, saving it in `dir` when given.
    pub fn run(&self, dir: Option<&RunDir>, bar: &ProgressBar) -> Result<(RunResult, StreamStats)> {
        let (config, seed) = (self.plan.config, self.seed);
        let name = policy_name(self.name).ok_or_else(|| ExperimentError::setting("strategy", format!("'{}' is not a stream policy", self.name)))?;
        let wrap = |source: quarry_core::Error| ExperimentError::Run { strategy: name.to_string(), seed, source };
        let initial = initial_labels(config, self.pool, seed).map_err(wrap)?;
        let order = stream_order(self.pool.len(), &initial, seed);
        let stream_budget = StreamBudget { labels: config.budget.saturating_sub(initial.len()), arrivals: order.len() };
        let saved = match dir {
            Some(d) => d.load_run::<StreamState>(name, seed)?,
            None => None,
        };
        let saved = saved.filter(|(s, _)| s.budget == config.budget && s.session.pool.len() == self.pool.len() && s.stream_budget == stream_budget);
        if let Some((state, _)) = &saved
            && let Some(stop) = &state.finished
        {
            bar.dec_length(state.session.rounds as u64);
            let stats = StreamStats::of(name, seed, state);
            let queried = crate::outcome::queried(&state.session.pool);
            return Ok((RunResult { strategy: name.to_string(), seed, history: state.history.clone(), stop: stop.clone(), queried }, stats));
        }
        let mut learner = base_learner(self.plan.model, config, self.pool.dim(), self.pool.n_classes(), seed)?;
        if let Some((_, checkpoint)) = &saved {
            learner.restore(checkpoint).map_err(wrap)?;
        }
        // A stream has no random warm start (the policy decides from the first arrival), and the
        // session's strategy is never asked: the policy chooses.
        let settings = SessionSettings { warmup: 0, ..session_settings(config, seed) };
        let mut session = Session::new(&self.pool.features, self.pool.n_classes(), learner, Box::new(RandomSampling), settings)
            .with_rules(run_rules(config.budget, &self.plan.rules));
        let (mut st, mut policy) = match saved {
            Some((state, _)) => {
                bar.dec_length(state.session.rounds as u64);
                session = session.resume(state.session.clone()).map_err(wrap)?;
                let policy = state.policy.clone().restore();
                (state, policy)
            }
            None => {
                let policy = build_policy(name, &config.stream, stream_budget, seed).map_err(wrap)?;
                let st = StreamState {
                    budget: config.budget,
                    stream_budget,
                    position: 0,
                    policy: policy.save(),
                    queried_at: Vec::new(),
                    history: Vec::new(),
                    session: session.state().clone(),
                    finished: None,
                };
                (st, policy)
            }
        };
        let schedule = EvalSchedule { at: config.eval_at.clone(), every: config.eval_every };
        let evaluator = Evaluator { test: self.test, positive_class: config.positive_class.is_some() };
        let mut oracle = GroundTruthOracle::new(&self.pool.labels);
        let save = |st: &mut StreamState, session: &Session, policy: &dyn StreamPolicy| -> Result<()> {
            st.session = session.state().clone();
            st.policy = policy.save();
            match dir {
                Some(d) => d.save_run(name, seed, st, &session.learner().checkpoint().map_err(wrap)?),
                None => Ok(()),
            }
        };
        let mut walk_seconds = 0.0;
        let stop = loop {
            let t0 = Instant::now();
            let picks = if session.rounds() == 0 {
                initial.clone()
            } else {
                let labeled = session.pool().n_labeled();
                let want = config.batch.min(config.budget.saturating_sub(labeled));
                let stream_end = |st: &StreamState| StopReason {
                    rule: "stream-end".into(),
                    detail: format!(
                        "all {} arrivals seen; {} of the stream's {} labels spent ({} labels in all)",
                        order.len(),
                        st.queried_at.len(),
                        stream_budget.labels,
                        labeled
                    ),
                };
                if want > 0 && st.position == order.len() {
                    break stream_end(&st);
                }
                if let Some(reason) = session.should_stop() {
                    break reason;
                }
                let mut picks = Vec::new();
                let mut block: Option<Block> = None;
                while picks.len() < want && st.position < order.len() {
                    let t = st.position;
                    if block.as_ref().is_none_or(|b| t >= b.start + b.probs.len()) {
                        let ids = &order[t..(t + self.testing.block.unwrap_or(BLOCK)).min(order.len())];
                        block = Some(Block { start: t, probs: session.predict(ids).map_err(wrap)? });
                    }
                    let b = block.as_ref().expect("predicted");
                    if policy.decide(&Arrival::from_probabilities(b.probs.row(t - b.start))) {
                        picks.push(order[t]);
                        st.queried_at.push(t);
                    }
                    st.position += 1;
                }
                if picks.is_empty() {
                    break stream_end(&st);
                }
                picks
            };
            walk_seconds += t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let stats = session.teach(&oracle.answer(&picks).map_err(wrap)?).map_err(wrap)?.clone();
            let last = stats.labels >= config.budget || session.pool().n_unlabeled() == 0 || st.position == order.len();
            if schedule.scores(&session, &stats, last) {
                let mut r = evaluator.record(session.learner(), &stats).map_err(wrap)?;
                r.seconds = t1.elapsed().as_secs_f64() + walk_seconds;
                walk_seconds = 0.0;
                st.history.push(r);
                save(&mut st, &session, policy.as_ref())?;
                if self.testing.interrupt_after.is_some_and(|n| st.history.len() >= n) {
                    return Err(ExperimentError::setting("strategy", format!("{name} interrupted after {} rounds", st.history.len())));
                }
            }
            bar.inc(1);
        };
        st.finished = Some(stop.clone());
        save(&mut st, &session, policy.as_ref())?;
        let stats = StreamStats::of(name, seed, &st);
        let queried = crate::outcome::queried(session.pool());
        Ok((RunResult { strategy: name.to_string(), seed, history: st.history, stop, queried }, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ColdStart, CommitteeSpec, DataSpec, ExperimentConfig, ImageConfig, NetConfig, Scaling, TestSpec};
    use quarry_core::Matrix;
    use quarry_strategies::StrategyOptions;
    use quarry_strategies::stream::StreamOptions;
    use quarry_core::QuarryRng;
    use rand::{Rng, SeedableRng};

    /// Three overlapping Gaussian classes in 4-D.
    fn blobs(n: usize, seed: u64) -> Dataset {
        let mut rng = QuarryRng::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = (i % 3) as u32;
            for d in 0..4 {
                let centre = if d as u32 == c { 1.5 } else { 0.0 };
                let g: f64 = (0..6).map(|_| rng.random::<f64>()).sum::<f64>() - 3.0;
                x.push((centre + g) as f32);
            }
            y.push(c);
        }
        Dataset::new(Matrix::new(x, n, 4).unwrap(), y, vec!["a".into(), "b".into(), "c".into()]).unwrap()
    }

    fn config() -> ExperimentConfig {
        ExperimentConfig {
            data: DataSpec { path: "blobs".into(), labels: None, label_column: None, pool_size: None },
            test: TestSpec::Fraction(0.3),
            scaling: Scaling::None,
            model: crate::config::ModelKind::Logreg,
            c: 1.0,
            net: NetConfig::default(),
            positive_class: None,
            image: ImageConfig::default(),
            initial: 6,
            batch: 5,
            budget: 46,
            candidates: None,
            warmup: 0,
            cold_start: ColdStart::Random,
            committee: CommitteeSpec::Bagging,
            strategies: vec!["stream-paced".into()],
            options: StrategyOptions::default(),
            seeds: vec![0],
            stop: String::new(),
            full_pool: false,
            eval_at: Vec::new(),
            eval_every: None,
            stream: StreamOptions::default(),
        }
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("quarry-stream-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn run(config: &ExperimentConfig, pool: &Dataset, test: &Dataset, name: &str, seed: u64, dir: Option<&RunDir>) -> Result<(RunResult, StreamStats)> {
        StreamRun { plan: &config.plan()?, pool, test, name, seed, testing: Testing::default() }.run(dir, &ProgressBar::hidden())
    }

    fn curve(r: &RunResult) -> Vec<(usize, f64, f64)> {
        r.history.iter().map(|x| (x.labels, x.accuracy, x.log_loss)).collect()
    }

    /// Equal curves, up to the last bit or so that a history read back from JSON may differ by
    /// (serde_json's float parsing is not exact round-trip; the learner checkpoint is bytes).
    fn assert_same_curve(a: &RunResult, b: &RunResult) {
        let (a, b) = (curve(a), curve(b));
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(&b) {
            assert!(x.0 == y.0 && x.1 == y.1 && (x.2 - y.2).abs() <= 1e-12 * x.2.abs(), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn same_seed_same_run_and_labels_only_arrivals_when_they_arrive() {
        let (pool, test) = (blobs(400, 1), blobs(150, 2));
        let config = config();
        for name in ["stream-paced", "stream-variable-uncertainty", "stream-fixed-uncertainty", "stream-random"] {
            let root = temp_dir(name);
            let dir = RunDir::open(&root, &config.identity()).unwrap();
            let (a, sa) = run(&config, &pool, &test, name, 3, Some(&dir)).unwrap();
            let (b, sb) = run(&config, &pool, &test, name, 3, None).unwrap();
            assert_eq!(curve(&a), curve(&b), "{name}");
            assert_eq!(sa, sb);
            // Within the budget, and the first point is the initial set.
            assert!(sa.labels_spent <= config.budget - config.initial, "{name}: {sa:?}");
            assert_eq!(a.history[0].labels, config.initial);
            assert!(a.history.last().unwrap().labels <= config.budget);
            assert_eq!(a.history.last().unwrap().labels, config.initial + sa.labels_spent, "{name}: the last update is scored");
            // The labels are the queried arrivals, in stream order: nothing passed was asked for later.
            let (state, _) = dir.load_run::<StreamState>(name, 3).unwrap().unwrap();
            let order = stream_order(pool.len(), &state.session.pool.labeled()[..config.initial], 3);
            assert!(state.queried_at.windows(2).all(|w| w[0] < w[1]));
            assert!(state.queried_at.iter().all(|&t| t < state.position));
            let asked: Vec<SampleId> = state.queried_at.iter().map(|&t| order[t]).collect();
            assert_eq!(&state.session.pool.labeled()[config.initial..], &asked[..], "{name}");
            assert_eq!(sa.quarters.iter().sum::<usize>(), sa.labels_spent);
            let _ = std::fs::remove_dir_all(&root);
        }
    }

    /// Deciding on blocks of predictions is deciding one arrival at a time.
    #[test]
    fn block_predictions_decide_as_one_at_a_time() {
        let (pool, test) = (blobs(300, 8), blobs(90, 9));
        let config = config();
        let bar = ProgressBar::hidden();
        for name in ["stream-paced", "stream-variable-uncertainty"] {
            let plan = config.plan().unwrap();
            let one = StreamRun { plan: &plan, pool: &pool, test: &test, name, seed: 1, testing: Testing { interrupt_after: None, block: Some(1) } };
            let (a, sa) = one.run(None, &bar).unwrap();
            let (b, sb) = run(&config, &pool, &test, name, 1, None).unwrap();
            assert_eq!(curve(&a), curve(&b), "{name}");
            assert_eq!(sa, sb);
        }
    }

    #[test]
    fn a_greedy_policy_stops_at_the_budget_and_the_stream_end_is_a_stop() {
        let (pool, test) = (blobs(300, 4), blobs(90, 5));
        let mut config = config();
        config.stream.threshold = 0.0;
        let (r, s) = run(&config, &pool, &test, "stream-fixed-uncertainty", 0, None).unwrap();
        assert_eq!(r.stop.rule, "budget");
        assert_eq!((s.labels_spent, s.arrivals_seen), (40, 40), "queries every arrival until the budget is spent");
        assert_eq!(s.quarters, [40, 0, 0, 0]);
        let (r, s) = run(&config, &pool, &test, "stream-paced", 0, None).unwrap();
        assert!(s.arrivals_seen * 20 >= (pool.len() - config.initial) * 19, "paced: about the whole stream, {s:?}");
        assert!(s.labels_spent >= 38 && s.labels_spent <= 40, "{s:?}");
        assert!(s.quarters.iter().all(|&q| (5..=15).contains(&q)), "{s:?}");
        assert!(r.stop.rule == "budget" || r.stop.rule == "stream-end", "{:?}", r.stop);
        // A budget larger than the stream: every arrival is queried and the stream ends.
        config.budget = 1000;
        let (r, s) = run(&config, &pool, &test, "stream-random", 0, None).unwrap();
        assert_eq!(r.stop.rule, "stream-end");
        assert_eq!(s.labels_spent, pool.len() - config.initial);
    }

    #[test]
    fn an_interrupted_run_continues_to_the_same_result_and_a_finished_one_is_reused() {
        let (pool, test) = (blobs(400, 6), blobs(150, 7));
        let mut config = config();
        (config.initial, config.budget, config.eval_every) = (5, 45, Some(10));
        let root = temp_dir("resume");
        let dir = RunDir::open(&root, &config.identity()).unwrap();
        let bar = ProgressBar::hidden();
        let plan = config.plan().unwrap();
        let base = StreamRun { plan: &plan, pool: &pool, test: &test, name: "stream-variable-uncertainty", seed: 2, testing: Testing { interrupt_after: Some(3), block: None } };
        assert!(base.run(Some(&dir), &bar).is_err());
        let (state, _) = dir.load_run::<StreamState>("stream-variable-uncertainty", 2).unwrap().unwrap();
        assert!(state.finished.is_none() && state.history.len() == 3);
        let resumed = StreamRun { testing: Testing::default(), ..base };
        let (a, sa) = resumed.run(Some(&dir), &bar).unwrap();
        let (b, sb) = run(&config, &pool, &test, "stream-variable-uncertainty", 2, None).unwrap();
        assert_same_curve(&a, &b);
        assert_eq!(sa, sb);
        assert!(a.history.iter().all(|r| r.labels % 10 == 0 || r.labels == config.initial || r.labels == config.initial + sa.labels_spent));
        // Finished: the third invocation reads it back (the recorded timings too) instead of redoing it.
        let (c, sc) = resumed.run(Some(&dir), &bar).unwrap();
        assert_same_curve(&c, &a);
        assert!(c.history.iter().zip(&a.history).all(|(x, y)| (x.seconds - y.seconds).abs() <= 1e-12 * y.seconds), "read back, not redone");
        assert_eq!((sc, c.stop), (sa, a.stop));
        let _ = std::fs::remove_dir_all(&root);
    }
}
