//! A whole simulation: every strategy × every seed, each run a [`Session`] driven with a
//! ground-truth oracle (a stream policy's run in [`crate::stream::StreamRun`]), resumable from its
//! run directory, then the reports.

use crate::config::{ExperimentConfig, TestSpec, check_fingerprint};
use crate::data::{LoadedData, Prepared, load_data, prepare};
use crate::evaluate::{EvalSchedule, Evaluator};
use crate::images::AugmentedPatches;
use crate::learners::{base_learner, initial_labels, learner_for, patch_seed, session_settings};
use crate::metrics;
use crate::outcome::{RunResult, SimulationOutcome, StreamStats, queried};
use crate::patch_scores::PatchScores;
use crate::plan::{Arm, Plan};
use crate::progress::{Running, progress_style};
use crate::report;
use crate::rundir::{FullPoolResult, RunDir};
use crate::stopping::run_rules;
use crate::stream::StreamRun;
use crate::{ExperimentError, Result};
use indicatif::ProgressBar;
use quarry_core::{GroundTruthOracle, Oracle, RoundRecord, Session, SessionState, Strategy};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Run (or continue) every strategy × seed of `config` in `out`, then write the reports there.
pub fn simulate(config: &ExperimentConfig, out: &Path, show_progress: bool) -> Result<SimulationOutcome> {
    let t0 = Instant::now();
    let plan = config.plan()?;
    let loaded = load_data(config)?;
    let prepared: BTreeMap<u64, Arc<Prepared>> = match config.test {
        TestSpec::File { .. } => {
            let p = Arc::new(prepare(&loaded, config, 0)?);
            config.seeds.iter().map(|&s| (s, p.clone())).collect()
        }
        TestSpec::Fraction(_) => {
            config.seeds.iter().map(|&s| Ok((s, Arc::new(prepare(&loaded, config, s)?)))).collect::<Result<_>>()?
        }
    };
    if let Some((_, p)) = prepared.iter().next() {
        plan.check_pool(&p.pool)?;
    }
    // Opened only once the settings are known to work, so a refused run leaves no directory behind.
    // A data file changed in place since the directory was made is refused by name (its saved
    // runs were made from the old content); other differing settings are RunDir::open's to report.
    check_fingerprint(out, &loaded.fingerprint)?;
    let dir = RunDir::open(out, &config.identity().with_fingerprint(loaded.fingerprint.clone()))?;
    let jobs: Vec<(&Arm, u64)> = plan.arms.iter().flat_map(|arm| config.seeds.iter().map(move |&seed| (arm, seed))).collect();
    let rounds_per_run = 1 + (config.budget - config.initial).div_ceil(config.batch);
    let bar = if show_progress { ProgressBar::new((jobs.len() * rounds_per_run) as u64) } else { ProgressBar::hidden() };
    bar.set_style(progress_style());
    let running = Running::new(&bar);

    // The full-pool reference fit runs beside the active-learning runs, not before them.
    let (full_pool, runs) = rayon::join(
        || -> Result<Vec<FullPoolResult>> {
            // An online network never fits the whole pool at once: no full-pool reference there.
            Ok(match (config.full_pool && !config.net.online, &config.test) {
                (false, _) => Vec::new(),
                // A fixed test file: every seed has the same pool, so the (deterministic) fit is done once.
                (true, TestSpec::File { .. }) => {
                    let first = config.seeds[0];
                    let r = full_pool_accuracy(&dir, &plan, &prepared[&first], first)?;
                    config.seeds.iter().map(|&seed| FullPoolResult { seed, ..r.clone() }).collect()
                }
                (true, TestSpec::Fraction(_)) => config
                    .seeds
                    .par_iter()
                    .map(|&seed| full_pool_accuracy(&dir, &plan, &prepared[&seed], seed))
                    .collect::<Result<_>>()?,
            })
        },
        || -> Result<Vec<(RunResult, Option<StreamStats>)>> {
            jobs.par_iter()
                .map(|&(arm, seed)| {
                    let p = &prepared[&seed];
                    let _named = running.start(arm.name(), seed);
                    match arm {
                        Arm::Stream(name) => {
                            let run = StreamRun { plan: &plan, pool: &p.pool, test: &p.test, name, seed, testing: Default::default() };
                            run.run(Some(&dir), &bar).map(|(r, s)| (r, Some(s)))
                        }
                        Arm::Pool(strategy) => run_one(&dir, &plan, &loaded, p, strategy.as_ref(), seed, &bar).map(|r| (r, None)),
                    }
                })
                .collect()
        },
    );
    let (full_pool, runs) = (full_pool?, runs?);
    let (runs, streams): (Vec<RunResult>, Vec<Option<StreamStats>>) = runs.into_iter().unzip();
    let streams = streams.into_iter().flatten().collect();
    bar.finish_and_clear();
    let wall_seconds = t0.elapsed().as_secs_f64();
    if let Some((_, _, cache)) = &loaded.images {
        let (patches, seconds) = cache.work();
        if patches > 0 && show_progress {
            tracing::info!("augmented patches: {patches} embedded in {seconds:.1} s (each once per seed, shared by the strategies)");
        }
    }
    let outcome = SimulationOutcome { runs, streams, full_pool, wall_seconds };
    report::write_reports(&dir, config, &loaded, &prepared, &outcome)?;
    Ok(outcome)
}

fn full_pool_accuracy(dir: &RunDir, plan: &Plan, p: &Prepared, seed: u64) -> Result<FullPoolResult> {
    if let Some(r) = dir.load_full_pool(seed)? {
        return Ok(r);
    }
    let t = Instant::now();
    let mut l = base_learner(plan.model, plan.config, p.pool.dim(), p.pool.n_classes(), seed)?;
    l.fit(&p.pool.features, &p.pool.labels, p.pool.n_classes())?;
    let probs = l.predict_proba(&p.test.features)?;
    let r = FullPoolResult {
        seed,
        accuracy: metrics::accuracy(&probs, &p.test.labels),
        log_loss: metrics::log_loss(&probs, &p.test.labels),
        seconds: t.elapsed().as_secs_f64(),
    };
    dir.save_full_pool(&r)?;
    Ok(r)
}

/// What a pool-based run saves after each scored round (with the learner's checkpoint).
#[derive(Serialize, Deserialize)]
struct SavedRun<S = SessionState, H = Vec<RoundRecord>> {
    session: S,
    history: H,
}

/// One pool-based run: a session over the seed's pool with a ground-truth oracle, scored on the
/// test set by an [`Evaluator`] after every round the schedule wants (and round 0, the last
/// round, and every round a stopping rule measures), saved after each scored round.
fn run_one(
    dir: &RunDir,
    plan: &Plan,
    loaded: &LoadedData,
    p: &Prepared,
    strategy: &dyn Strategy,
    seed: u64,
    bar: &ProgressBar,
) -> Result<RunResult> {
    let (config, name) = (plan.config, strategy.name());
    let wrap = |source: quarry_core::Error| ExperimentError::Run { strategy: name.to_string(), seed, source };
    let mut learner = learner_for(plan, &p.pool, strategy, seed)?;
    let saved = dir.load_run::<SavedRun>(name, seed)?;
    if let Some((_, checkpoint)) = &saved {
        learner.restore(checkpoint).map_err(wrap)?;
    }
    let patches = loaded.images.as_ref().map(|(images, featurizer, cache)| PatchScores {
        patches: AugmentedPatches {
            featurizer: featurizer.clone(),
            images: images.clone(),
            cache: cache.clone(),
            origin: p.origin.clone(),
            patches: config.image.patches,
            min_scale: config.image.patch_scale,
            resolution: config.image.resolution,
        },
        seed: patch_seed(seed),
    });
    let mut session = Session::new(&p.pool.features, p.pool.n_classes(), learner, Box::new(strategy), session_settings(config, seed))
        .with_rules(run_rules(config.budget, &plan.rules));
    if let Some(patches) = &patches {
        session = session.with_provider(patches);
        if config.image.train_patches {
            session = session.with_augment(patches);
        }
    }
    let mut history = Vec::new();
    if let Some((run, _)) = saved {
        session = session.resume(run.session).map_err(|e| ExperimentError::RunDir {
            path: dir.root().join("runs").join(name),
            reason: format!("seed {seed} was saved with another pool than this data's: {e}"),
        })?;
        history = run.history;
        bar.dec_length(session.rounds() as u64);
    }
    let schedule = EvalSchedule { at: config.eval_at.clone(), every: config.eval_every };
    let evaluator = Evaluator { test: &p.test, positive_class: config.positive_class.is_some() };
    let mut oracle = GroundTruthOracle::new(&p.pool.labels);
    let stop = loop {
        let t0 = Instant::now();
        let ids = if session.rounds() == 0 {
            initial_labels(config, &p.pool, seed).map_err(wrap)?
        } else if let Some(reason) = session.should_stop() {
            break reason;
        } else {
            let k = config.batch.min(config.budget - session.pool().n_labeled());
            session.query(k).map_err(wrap)?.ids()
        };
        let answers = oracle.answer(&ids).map_err(wrap)?;
        let stats = session.teach(&answers).map_err(wrap)?.clone();
        let last = stats.labels >= config.budget || session.pool().n_unlabeled() == 0;
        if schedule.scores(&session, &stats, last) {
            let mut record = evaluator.record(session.learner(), &stats).map_err(wrap)?;
            record.seconds = t0.elapsed().as_secs_f64();
            history.push(record);
            let state = SavedRun { session: session.state(), history: &history };
            dir.save_run(name, seed, &state, &session.learner().checkpoint().map_err(wrap)?)?;
        }
        bar.inc(1);
    };
    Ok(RunResult { strategy: name.to_string(), seed, history, stop, queried: queried(session.pool()) })
}
