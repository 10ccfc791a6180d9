//! A whole simulation: every strategy × every seed, each run a [`Session`] driven with a
//! ground-truth oracle (a stream policy's run in [`crate::stream::StreamRun`]), resumable from its
//! run directory, then the reports.

use crate::evaluate::{EvalSchedule, Evaluator};
use crate::initial::{initial_set, initial_set_kmeanspp};
use crate::config::{ColdStart, CommitteeSpec, ExperimentConfig, FileFingerprint, Scaling, TestSpec, check_fingerprint};
use crate::images::{AugmentedPatches, Featurizer, ImageSet, PatchCache, load_image_folder};
use crate::metrics;
use crate::patch_scores::PatchScores;
use crate::plan::{Arm, ModelKind, Plan};
use crate::report::{self, RunResult};
use crate::rundir::{FullPoolResult, RunDir};
use crate::stopping::run_rules;
use crate::stream::{StreamRun, StreamStats};
use crate::{ExperimentError, Result};
use indicatif::{ProgressBar, ProgressStyle};
use quarry_core::{Dataset, GroundTruthOracle, Learner, Oracle, RoundRecord, SampleId, Session, SessionSettings, SessionState, Strategy};
use serde::{Deserialize, Serialize};
use quarry_models::nn::OptimizerKind;
use quarry_models::{Committee, EfficientNetLearner, EfficientNetLite0, EfficientNetTrainer, FineTuneParams, LogisticRegressionLearner, LogisticRegressionParams, NetParams};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The data of a simulation as read from disk, before any per-seed split.
pub struct LoadedData {
    pub data: Dataset,
    pub test: Option<Dataset>,
    /// The scaling the config's `Auto` resolved to.
    pub scaling: Scaling,
    /// An image folder's decoded images, what turned them into pool rows, and the embedded
    /// augmented patches every run over them shares.
    pub images: Option<(Arc<ImageSet>, Arc<Featurizer>, Arc<PatchCache>)>,
    /// Files that could not be read (reported, left out).
    pub skipped: Vec<quarry_data::Skipped>,
    /// The content of every input file read (or image folder), part of the run's identity.
    pub fingerprint: Vec<FileFingerprint>,
}

/// One seed's pool and test set, scaled.
pub struct Prepared {
    pub pool: Dataset,
    pub test: Dataset,
    /// Pool row → row of the loaded data.
    pub origin: Vec<usize>,
}

/// Read the data (and test file) the config names; errors name the file and line.
pub fn load_data(config: &ExperimentConfig) -> Result<LoadedData> {
    let spec = &config.data;
    if spec.path.is_dir() {
        return load_images(config);
    }
    if config.model == "efficientnet-lite0" {
        return Err(ExperimentError::flag("--model", "efficientnet-lite0 reads an image folder as --data (one sub-folder per class)"));
    }
    let mut data = quarry_data::load(&spec.path, spec.label_column.as_deref(), spec.labels.as_deref(), None)?;
    if let Some(n) = spec.pool_size {
        if n > data.len() {
            return Err(ExperimentError::flag(
                "--pool-size",
                format!("{n} exceeds the {} samples in {}", data.len(), spec.path.display()),
            ));
        }
        data = data.subset(&(0..n).collect::<Vec<_>>());
    }
    let test = match &config.test {
        TestSpec::Fraction(_) => None,
        TestSpec::File { path, labels } => Some(quarry_data::load(
            path,
            spec.label_column.as_deref(),
            labels.as_deref(),
            Some(&data.class_names),
        )?),
    };
    if let Some(positive) = &config.positive_class {
        data = one_vs_rest(data, positive, &spec.path)?;
    }
    let test = match (test, &config.positive_class) {
        (Some(t), Some(positive)) => Some(one_vs_rest(t, positive, &spec.path)?),
        (t, _) => t,
    };
    let scaling = match config.scaling {
        Scaling::Auto => match quarry_data::detect_format(&spec.path)? {
            quarry_data::DataFormat::Idx => Scaling::Unit,
            quarry_data::DataFormat::Csv => Scaling::Standardize,
        },
        s => s,
    };
    Ok(LoadedData { data, test, scaling, images: None, skipped: Vec::new(), fingerprint: input_fingerprint(config)? })
}

/// The content fingerprint of each file the data was read from: `--data`, its IDX labels file
/// (given or found by its standard name), and `--test` with its labels file.
fn input_fingerprint(config: &ExperimentConfig) -> Result<Vec<FileFingerprint>> {
    let idx_labels = |path: &Path, given: &Option<std::path::PathBuf>| -> Result<Option<std::path::PathBuf>> {
        Ok(match (given, quarry_data::detect_format(path)?) {
            (Some(l), _) => Some(l.clone()),
            (None, quarry_data::DataFormat::Idx) => quarry_data::idx_labels_path(path),
            (None, quarry_data::DataFormat::Csv) => None,
        })
    };
    let spec = &config.data;
    let mut files = vec![("--data", spec.path.clone())];
    files.extend(idx_labels(&spec.path, &spec.labels)?.map(|l| ("--labels", l)));
    if let TestSpec::File { path, labels } = &config.test {
        files.push(("--test", path.clone()));
        files.extend(idx_labels(path, labels)?.map(|l| ("--test-labels", l)));
    }
    files.into_iter().map(|(flag, path)| FileFingerprint::of(flag, &path)).collect()
}

/// An image folder: decoded (unreadable files reported on stderr by name and skipped) and embedded
/// once by the pretrained backbone.
fn load_images(config: &ExperimentConfig) -> Result<LoadedData> {
    let spec = &config.data;
    if config.model != "efficientnet-lite0" {
        return Err(ExperimentError::flag("--model", format!("an image folder needs --model efficientnet-lite0, not {}", config.model)));
    }
    if let TestSpec::File { .. } = config.test {
        return Err(ExperimentError::flag("--test", "with an image folder, hold out a test set with --test-fraction"));
    }
    let weights = config.image.weights.as_ref().expect("validated");
    let featurizer = Arc::new(if config.image.train_blocks > 0 {
        // The fine-tuning trainer's frozen part (its weights never change): rows are its output.
        let params = EfficientNetLearner::trainer_params(&fine_tune_params(config, 1, 0))?;
        Featurizer::Frozen(Arc::new(
            EfficientNetTrainer::load(weights, params).map_err(|e| ExperimentError::flag("--weights", e.to_string()))?,
        ))
    } else {
        Featurizer::Pooled(Arc::new(EfficientNetLite0::load(weights).map_err(|e| ExperimentError::flag("--weights", e.to_string()))?))
    });
    let cache = config.image.features_cache.as_deref().map(|file| (file, weights.as_path()));
    let (data, images, skipped) = load_image_folder(&spec.path, &featurizer, config.image.resolution, cache)?;
    for s in &skipped {
        eprintln!("warning: {s}");
    }
    let fingerprint = vec![FileFingerprint::of("--data", &spec.path)?];
    Ok(LoadedData { data, test: None, scaling: Scaling::None, images: Some((Arc::new(images), featurizer, Arc::default())), skipped, fingerprint })
}

/// Relabel to two classes: `positive` → 1 ("x"), everything else → 0 ("not-x").
fn one_vs_rest(mut d: Dataset, positive: &str, path: &Path) -> Result<Dataset> {
    let pos = d.class_names.iter().position(|c| c == positive).ok_or_else(|| {
        ExperimentError::flag(
            "--positive-class",
            format!("'{positive}' is not a class of {} (classes: {})", path.display(), d.class_names.join(", ")),
        )
    })? as u32;
    d.labels.iter_mut().for_each(|l| *l = (*l == pos) as u32);
    d.class_names = vec![format!("not-{positive}"), positive.to_string()];
    Ok(d)
}

/// Split (stratified, with the seed) unless a test file was given, then scale.
pub fn prepare(loaded: &LoadedData, config: &ExperimentConfig, seed: u64) -> Result<Prepared> {
    let (mut pool, mut test, origin) = match (&loaded.test, &config.test) {
        (Some(test), _) => (loaded.data.clone(), test.clone(), (0..loaded.data.len()).collect()),
        (None, TestSpec::Fraction(f)) => {
            let d = &loaded.data;
            let (p, t) = quarry_data::stratified_split(&d.labels, d.n_classes(), *f, seed)?;
            (d.subset(&p), d.subset(&t), p)
        }
        (None, TestSpec::File { .. }) => unreachable!("load_data reads the test file"),
    };
    match loaded.scaling {
        Scaling::Standardize => {
            let (mean, std) = pool.features.column_mean_std();
            pool.features.standardize(&mean, &std);
            test.features.standardize(&mean, &std);
        }
        Scaling::Unit => {
            pool.features.scale(1.0 / 255.0);
            test.features.scale(1.0 / 255.0);
        }
        Scaling::None | Scaling::Auto => {}
    }
    Ok(Prepared { pool, test, origin })
}

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
            None => Err(ExperimentError::flag("--weights", "efficientnet-lite0 needs its weights file (safetensors)")),
        },
    }
}

/// LeNet-5 reads 28×28 images.
fn check_dim(model: ModelKind, dim: usize) -> Result<()> {
    if model == ModelKind::Lenet5 && dim != 784 {
        return Err(ExperimentError::flag("--model", format!("lenet5 reads 28x28 images (784 features); this data has {dim}")));
    }
    Ok(())
}

/// The fine-tuning settings of `--train-blocks` (with `--epochs`, `--minibatch`, `--lr` for the
/// backbone, `--dropout` before the head).
fn fine_tune_params(config: &ExperimentConfig, classes: usize, seed: u64) -> FineTuneParams {
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
fn learner_for(plan: &Plan, p: &Prepared, strategy: &dyn Strategy, seed: u64) -> Result<Box<dyn Learner>> {
    let config = plan.config;
    let (dim, classes) = (p.pool.dim(), p.pool.n_classes());
    let base = base_learner(plan.model, config, dim, classes, seed)?;
    if !strategy.needs().committee {
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

/// What a finished simulation produced.
pub struct SimulationOutcome {
    pub runs: Vec<RunResult>,
    /// How each stream-based run (a `stream-*` strategy) spent its labels.
    pub streams: Vec<StreamStats>,
    pub full_pool: Vec<FullPoolResult>,
    pub wall_seconds: f64,
}

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
        check_dim(plan.model, p.pool.dim())?;
        if config.initial > p.pool.len() {
            return Err(ExperimentError::flag(
                "--initial",
                format!("{} labels asked for, the pool has {} samples", config.initial, p.pool.len()),
            ));
        }
        if config.batch > p.pool.len() {
            return Err(ExperimentError::flag(
                "--batch",
                format!("a batch of {} is larger than the pool of {} samples", config.batch, p.pool.len()),
            ));
        }
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
    // The runs in progress, named on the bar.
    let running: std::sync::Mutex<Vec<(String, u64)>> = Default::default();
    let show_running = |change: &dyn Fn(&mut Vec<(String, u64)>)| {
        let mut r = running.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut r);
        bar.set_message(running_message(&r));
    };

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
                    show_running(&|r| r.push((arm.name().to_string(), seed)));
                    let _done = Finally(|| show_running(&|r| r.retain(|(name, s)| (name.as_str(), *s) != (arm.name(), seed))));
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
            eprintln!("augmented patches: {patches} embedded in {seconds:.1} s (each once per seed, shared by the strategies)");
        }
    }
    let outcome = SimulationOutcome { runs, streams, full_pool, wall_seconds };
    report::write_reports(&dir, config, &loaded, &prepared, &outcome)?;
    Ok(outcome)
}

/// The progress bar: elapsed time, rounds done of at most this many, the time left at the
/// average rate so far, and the runs in progress.
///
/// The time left is (rounds left) × (seconds so far ÷ rounds so far), so the bar must count only
/// rounds run now: a run resumed from the run directory takes its saved rounds off the bar's
/// length (`bar.dec_length(n)`), it does not count them as done (`bar.inc(n)`) — they cost no
/// time, and as progress they would make the rate look far higher than it is ("1s left" for
/// 10 s). indicatif's own `{eta}` weighs the last few seconds, which swing with the strategy mix.
fn progress_style() -> ProgressStyle {
    // Two lines, so the runs in progress are not squeezed out by the bar on an 80-column terminal.
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rounds{left}\n  {wide_msg}")
        .expect("valid template")
        .with_key("left", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            if let Some(left) = time_left(state.pos(), state.len(), state.elapsed()) {
                let _ = write!(w, ", ~{} left", short_duration(left));
            }
        })
}

/// "45s", "3m 05s", "2h 07m".
fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `elapsed × (len − pos) / pos`, once there is a rate to go by (a round done and a second gone).
fn time_left(pos: u64, len: Option<u64>, elapsed: std::time::Duration) -> Option<std::time::Duration> {
    let len = len?;
    if pos == 0 || elapsed < std::time::Duration::from_secs(1) {
        return None;
    }
    Some(elapsed.mul_f64(len.saturating_sub(pos) as f64 / pos as f64))
}

/// "running margin seed 0, entropy seeds 1, 2": the runs in progress, by strategy.
fn running_message(jobs: &[(String, u64)]) -> String {
    let mut by_strategy: Vec<(&str, Vec<u64>)> = Vec::new();
    for (name, seed) in jobs {
        match by_strategy.iter_mut().find(|(n, _)| n == name) {
            Some((_, seeds)) => seeds.push(*seed),
            None => by_strategy.push((name, vec![*seed])),
        }
    }
    let parts: Vec<String> = by_strategy
        .into_iter()
        .map(|(name, mut seeds)| {
            seeds.sort_unstable();
            let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
            format!("{name} seed{} {}", if seeds.len() == 1 { "" } else { "s" }, list.join(", "))
        })
        .collect();
    if parts.is_empty() { String::new() } else { format!("running {}", parts.join("; ")) }
}

/// Runs its closure when dropped: the bar forgets a run however it ends.
struct Finally<F: Fn()>(F);

impl<F: Fn()> Drop for Finally<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn time_left_goes_by_the_average_rate_so_far() {
        // 10 of 40 rounds in 5 s: 30 more take 15 s.
        assert_eq!(time_left(10, Some(40), Duration::from_secs(5)), Some(Duration::from_secs(15)));
        assert_eq!(time_left(40, Some(40), Duration::from_secs(5)), Some(Duration::ZERO));
        assert_eq!(time_left(0, Some(40), Duration::from_secs(5)), None, "no rate yet");
        assert_eq!(time_left(3, Some(40), Duration::from_millis(200)), None, "too soon to say");
        assert_eq!(short_duration(Duration::from_millis(44_600)), "45s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(short_duration(Duration::from_secs(7620)), "2h 07m");
    }

    #[test]
    fn the_bar_names_the_runs_in_progress() {
        let jobs = |j: &[(&str, u64)]| j.iter().map(|&(n, s)| (n.to_string(), s)).collect::<Vec<_>>();
        assert_eq!(running_message(&[]), "");
        assert_eq!(running_message(&jobs(&[("margin", 0)])), "running margin seed 0");
        assert_eq!(running_message(&jobs(&[("entropy", 3), ("margin", 0), ("entropy", 1)])), "running entropy seeds 1, 3; margin seed 0");
    }
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
    let mut learner = learner_for(plan, p, strategy, seed)?;
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
        bar.inc(session.rounds() as u64);
    }
    let schedule = EvalSchedule { at: config.eval_at.clone(), every: config.eval_every };
    let evaluator = Evaluator { test: &p.test, positive_class: config.positive_class.is_some() };
    let mut oracle = GroundTruthOracle::new(&p.pool.labels);
    bar.set_message(format!("{name} seed {seed}"));
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
        if stats.round == 0 || last || schedule.wants(stats.labels) || session.stop_needs().any() {
            let mut record = evaluator.record(session.learner(), &stats).map_err(wrap)?;
            record.seconds = t0.elapsed().as_secs_f64();
            history.push(record);
            let state = SavedRun { session: session.state(), history: &history };
            dir.save_run(name, seed, &state, &session.learner().checkpoint().map_err(wrap)?)?;
        }
        bar.inc(1);
    };
    Ok(RunResult { strategy: name.to_string(), seed, history, stop, queried: report::queried(session.pool()) })
}

/// The seed of every image's augmented patches in a run of `seed`.
pub(crate) fn patch_seed(seed: u64) -> u64 {
    seed ^ (quarry_core::session::streams::PATCHES << 32)
}
