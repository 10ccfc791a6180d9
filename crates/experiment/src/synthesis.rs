//! The membership-query-synthesis runner behind `quarry synthesize` (Angluin 1988).
//!
//! A built-in 2-D [`Problem`] has a known true function on a bounded [`Domain`]; the oracle *is*
//! that function (optionally flipping each answer with probability `noise`). Each
//! (synthesizer, seed) run starts from `initial` uniform random points of the domain (redrawn
//! until both classes occur; the same set for every synthesizer of a seed), then in rounds the
//! [`Synthesizer`] constructs `batch` new points, the oracle labels them, the run's [`Session`]
//! takes them into its pool and learns them (refit), and
//! test accuracy is recorded on `test_size` uniform points labeled by the true function, until
//! exactly `budget` labels are spent.
//!
//! The model ([`ModelSpec`]) is logistic regression on a fixed feature map of the point, or the
//! MLP learner on the point itself; coordinates are first mapped to `[-1, 1]²`.
//!
//! [`write_reports`] writes `curves.csv` (the columns of `quarry simulate`), `summary.json`,
//! `curves.svg`, `queries.csv` (`strategy,seed,round,x,y,label`; round 0 is the initial set) and
//! `queries.svg` (for the first seed, one panel per synthesizer: true and learned boundary, the
//! learned decision regions, the initial points and the queries by class and round).

use crate::metrics::SeedCurves;
use crate::plot::{CurvePoint, CurveSeries, PlotSpec, write_svg};
use crate::outcome::RunResult;
use crate::report::{Spread, StrategySummary, curves_csv, summarize_against};
use crate::rundir::write_atomic;
use crate::synthesis_plot::{QueryPanel, write_queries_svg};
use crate::{ExperimentError, Result};
use crate::evaluate::Evaluator;
use quarry_core::{Answer, Dataset, Learner, Matrix, QuarryRng, RoundRecord, SampleId, Session, SessionSettings, StopReason, seeded_rng};
use quarry_strategies::RandomSampling;
use quarry_models::nn::OptimizerKind;
use quarry_models::{LogisticRegressionLearner, LogisticRegressionParams, NetParams};
use quarry_strategies::synthesis::{self as synth, Domain, Point, SynthesisContext, Synthesizer};
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// A built-in 2-D problem with a known true function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// Class 1 inside the circle of radius 0.6 around (0.1, −0.1), domain [−1, 1]².
    Circle,
    /// Class 1 above y = sin(x), domain [−π, π] × [−2, 2].
    Sine,
    /// Class 1 on the positive side of x·cos 30° + y·sin 30° = 0.2, domain [−1, 1]².
    Linear,
    /// Class 1 in the annulus 0.35 < r < 0.75 around the origin, domain [−1, 1]² (two boundaries).
    Ring,
}

impl Problem {
    pub const ALL: [Problem; 4] = [Problem::Circle, Problem::Sine, Problem::Linear, Problem::Ring];

    pub fn name(self) -> &'static str {
        match self {
            Problem::Circle => "circle",
            Problem::Sine => "sine",
            Problem::Linear => "linear",
            Problem::Ring => "ring",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Problem::Circle => "class 1 inside the circle of radius 0.6 around (0.1, -0.1); domain [-1, 1]^2",
            Problem::Sine => "class 1 above y = sin(x); domain [-pi, pi] x [-2, 2]",
            Problem::Linear => "class 1 where x cos 30deg + y sin 30deg > 0.2; domain [-1, 1]^2",
            Problem::Ring => "class 1 in the annulus 0.35 < r < 0.75 around the origin; domain [-1, 1]^2",
        }
    }

    /// `--problem NAME`; an unknown name lists the known ones.
    pub fn parse(name: &str) -> Result<Problem> {
        let n = name.trim().to_ascii_lowercase();
        Problem::ALL.into_iter().find(|p| p.name() == n).ok_or_else(|| {
            let known: Vec<&str> = Problem::ALL.iter().map(|p| p.name()).collect();
            ExperimentError::setting("problem", format!("unknown problem '{name}' (known: {})", known.join(", ")))
        })
    }

    pub fn domain(self) -> Domain {
        let d = match self {
            Problem::Sine => Domain::new((-std::f64::consts::PI, std::f64::consts::PI), (-2.0, 2.0)),
            _ => Domain::new((-1.0, 1.0), (-1.0, 1.0)),
        };
        d.expect("built-in domains are valid")
    }

    /// A signed score whose sign is the true class (> 0 ⇔ class 1); zero on the boundary.
    pub fn margin(self, p: Point) -> f64 {
        match self {
            Problem::Circle => 0.6 - (p[0] - 0.1).hypot(p[1] + 0.1),
            Problem::Sine => p[1] - p[0].sin(),
            Problem::Linear => {
                let th = 30f64.to_radians();
                p[0] * th.cos() + p[1] * th.sin() - 0.2
            }
            Problem::Ring => {
                let r = p[0].hypot(p[1]);
                (r - 0.35).min(0.75 - r)
            }
        }
    }

    /// The true class of `p`.
    pub fn label(self, p: Point) -> u32 {
        u32::from(self.margin(p) > 0.0)
    }
}

/// The learner of a synthesis run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// L2 logistic regression (`c`) on `(u, v)` and `grid × grid` Gaussian bumps centered on a
    /// regular grid over `[-1, 1]²` with σ = the grid spacing.
    Rbf { grid: usize, c: f64 },
    /// L2 logistic regression (`c`) on `(u, v, u², uv, v²)`.
    Quadratic { c: f64 },
    /// The MLP learner `2 → hidden → 2` (ReLU), Adam at `lr`, `epochs` passes in minibatches of
    /// 16 after each round, continuing from the previous weights.
    Mlp { hidden: usize, epochs: usize, lr: f32 },
}

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Rbf { .. } => "rbf",
            ModelSpec::Quadratic { .. } => "quadratic",
            ModelSpec::Mlp { .. } => "mlp",
        }
    }

    fn check(&self) -> Result<()> {
        match *self {
            ModelSpec::Rbf { grid, c } => {
                if !(2..=40).contains(&grid) {
                    return Err(ExperimentError::setting("rbf-grid", format!("must be 2..=40, got {grid}")));
                }
                check_c(c)
            }
            ModelSpec::Quadratic { c } => check_c(c),
            ModelSpec::Mlp { hidden, epochs, lr } => {
                if hidden == 0 || epochs == 0 {
                    return Err(ExperimentError::setting("hidden/--epochs", "must be at least 1"));
                }
                if !(lr > 0.0 && lr.is_finite()) {
                    return Err(ExperimentError::setting("lr", format!("must be a positive number, got {lr}")));
                }
                Ok(())
            }
        }
    }
}

fn check_c(c: f64) -> Result<()> {
    if c > 0.0 && c.is_finite() { Ok(()) } else { Err(ExperimentError::setting("c", format!("must be a positive number, got {c}"))) }
}

/// The feature map of a run's model: points of the domain → the rows its learner reads.
pub struct SynthModel {
    spec: ModelSpec,
    domain: Domain,
}

impl SynthModel {
    /// The feature map and the (unfitted) learner of `spec`.
    pub fn new(spec: ModelSpec, domain: Domain, seed: u64) -> Result<(SynthModel, Box<dyn Learner>)> {
        spec.check()?;
        let learner: Box<dyn Learner> = match spec {
            ModelSpec::Rbf { c, .. } | ModelSpec::Quadratic { c } => {
                Box::new(LogisticRegressionLearner::new(LogisticRegressionParams::new().c(c)))
            }
            ModelSpec::Mlp { hidden, epochs, lr } => Box::new(
                NetParams::mlp(2, hidden, 2).optimizer(OptimizerKind::adam(lr)).epochs(epochs).batch_size(16).seed(seed).build()?,
            ),
        };
        Ok((SynthModel { spec, domain }, learner))
    }

    /// The feature rows of `points`.
    pub fn features(&self, points: &[Point]) -> Matrix {
        let d = self.domain;
        let unit = |p: Point| [2.0 * (p[0] - d.x.0) / (d.x.1 - d.x.0) - 1.0, 2.0 * (p[1] - d.y.0) / (d.y.1 - d.y.0) - 1.0];
        let (cols, mut data) = match self.spec {
            ModelSpec::Rbf { grid, .. } => (2 + grid * grid, Vec::new()),
            ModelSpec::Quadratic { .. } => (5, Vec::new()),
            ModelSpec::Mlp { .. } => (2, Vec::new()),
        };
        data.reserve(points.len() * cols);
        for &p in points {
            let [u, v] = unit(p);
            data.extend([u as f32, v as f32]);
            match self.spec {
                ModelSpec::Rbf { grid, .. } => {
                    let step = 2.0 / (grid - 1) as f64;
                    let inv = 1.0 / (2.0 * step * step);
                    for i in 0..grid {
                        let cy = -1.0 + i as f64 * step;
                        for j in 0..grid {
                            let cx = -1.0 + j as f64 * step;
                            data.push((-((u - cx).powi(2) + (v - cy).powi(2)) * inv).exp() as f32);
                        }
                    }
                }
                ModelSpec::Quadratic { .. } => data.extend([(u * u) as f32, (u * v) as f32, (v * v) as f32]),
                ModelSpec::Mlp { .. } => {}
            }
        }
        Matrix::new(data, points.len(), cols).expect("rows × cols values")
    }
}

/// Everything a synthesis experiment needs.
#[derive(Debug, Clone, Serialize)]
pub struct SynthesisConfig {
    pub problem: Problem,
    pub strategies: Vec<String>,
    pub model: ModelSpec,
    pub initial: usize,
    pub batch: usize,
    pub budget: usize,
    pub seeds: Vec<u64>,
    /// Probability that the oracle flips a label (the test set is always noise-free).
    pub noise: f64,
    pub test_size: usize,
}

impl SynthesisConfig {
    /// Checks every setting; returns the synthesizers in the order given.
    pub fn synthesizers(&self) -> Result<Vec<Box<dyn Synthesizer>>> {
        if self.initial < 2 {
            return Err(ExperimentError::setting("initial", format!("needs at least 2 points (one of each class), got {}", self.initial)));
        }
        if self.batch == 0 {
            return Err(ExperimentError::setting("batch", "must be at least 1"));
        }
        if self.budget < self.initial {
            return Err(ExperimentError::setting("budget", format!("{} is below --initial {}; the budget counts the initial set", self.budget, self.initial)));
        }
        if !(0.0..0.5).contains(&self.noise) {
            return Err(ExperimentError::setting("noise", format!("must be in [0, 0.5), got {}", self.noise)));
        }
        if self.test_size == 0 {
            return Err(ExperimentError::setting("test-size", "must be at least 1"));
        }
        if self.seeds.is_empty() {
            return Err(ExperimentError::setting("seeds", "run at least one seed"));
        }
        self.model.check()?;
        if self.strategies.is_empty() {
            return Err(ExperimentError::setting("strategy", "name at least one synthesizer"));
        }
        let mut out: Vec<Box<dyn Synthesizer>> = Vec::new();
        for name in &self.strategies {
            let s = synth::by_name(name).map_err(|e| match e {
                quarry_core::Error::InvalidParameter { reason, .. } => ExperimentError::setting("strategy", reason),
                e => ExperimentError::Core(e),
            })?;
            if out.iter().any(|o| o.name() == s.name()) {
                return Err(ExperimentError::setting("strategy", format!("{} is named twice", s.name())));
            }
            out.push(s);
        }
        Ok(out)
    }
}

/// One labeled query of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryRecord {
    /// 0 for the initial set, then the round that asked.
    pub round: u32,
    pub point: Point,
    /// The oracle's answer (noisy if `noise` > 0).
    pub label: u32,
}

/// One finished (synthesizer, seed) run.
#[derive(Debug, Clone)]
pub struct SynthRun {
    pub strategy: String,
    pub seed: u64,
    pub history: Vec<RoundRecord>,
    pub queries: Vec<QueryRecord>,
    /// Fraction of the domain (a `GRID × GRID` grid of cell centers) where the final model and
    /// the true function disagree.
    pub final_disagreement: f64,
    /// The final model's P(class 1) on that grid (row-major, rows bottom to top).
    pub final_grid: Vec<f64>,
}

/// Resolution of the grid of the disagreement area and of `queries.svg`.
pub const GRID: usize = 120;

// Random-number streams of a run (see `quarry_core::seeded_rng`).
const INITIAL_STREAM: u64 = 0x5E_0001;
const TEST_STREAM: u64 = 0x5E_0002;
const PROPOSE_STREAM: u64 = 0x5E_0001_0000_0000;
const NOISE_STREAM: u64 = 0x5E_0002_0000_0000;

/// The cell centers of the `GRID × GRID` grid over the domain, row-major from the bottom row.
pub fn grid_points(domain: Domain, n: usize) -> Vec<Point> {
    let (dx, dy) = ((domain.x.1 - domain.x.0) / n as f64, (domain.y.1 - domain.y.0) / n as f64);
    (0..n).flat_map(|i| (0..n).map(move |j| [domain.x.0 + (j as f64 + 0.5) * dx, domain.y.0 + (i as f64 + 0.5) * dy])).collect()
}

/// The initial set of a seed: `n` uniform points, redrawn until both classes occur.
pub fn initial_points(problem: Problem, n: usize, seed: u64) -> Result<Vec<Point>> {
    let mut rng = seeded_rng(seed, INITIAL_STREAM);
    let d = problem.domain();
    for _ in 0..1000 {
        let pts: Vec<Point> = (0..n).map(|_| d.sample(&mut rng)).collect();
        let ones = pts.iter().filter(|&&p| problem.label(p) == 1).count();
        if ones > 0 && ones < n {
            return Ok(pts);
        }
    }
    Err(ExperimentError::setting("initial", format!("1000 draws of {n} random points of '{}' never held both classes; raise --initial", problem.name())))
}

/// The oracle: the true label, flipped with probability `noise`.
fn ask(problem: Problem, noise: f64, p: Point, rng: &mut QuarryRng) -> u32 {
    let y = problem.label(p);
    if noise > 0.0 && rng.random::<f64>() < noise { 1 - y } else { y }
}

/// One (synthesizer, seed) run; spends exactly `config.budget` labels. The synthesizer makes
/// the points, the session learns them: each batch is added to the session's pool, answered by
/// the (noisy) oracle and taught, and the model is scored on the test points after every round.
pub fn run_one(config: &SynthesisConfig, synthesizer: &dyn Synthesizer, seed: u64) -> Result<SynthRun> {
    let problem = config.problem;
    let domain = problem.domain();
    // A stream per synthesizer name (FNV-1a), so adding a synthesizer changes no other's queries.
    let which = synthesizer.name().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) & 0xFFFF;
    let mut propose_rng = seeded_rng(seed, PROPOSE_STREAM + (which << 16));
    let mut noise_rng = seeded_rng(seed, NOISE_STREAM + (which << 16));
    let mut test_rng = seeded_rng(seed, TEST_STREAM);
    let wrap = |source: quarry_core::Error| ExperimentError::Run { strategy: synthesizer.name().to_string(), seed, source };
    let (model, learner) = SynthModel::new(config.model, domain, seed)?;
    let test_points: Vec<Point> = (0..config.test_size).map(|_| domain.sample(&mut test_rng)).collect();
    let test_labels: Vec<u32> = test_points.iter().map(|&p| problem.label(p)).collect();
    let test = Dataset::new(model.features(&test_points), test_labels, vec!["0".into(), "1".into()])?;
    let evaluator = Evaluator { test: &test, positive_class: false };

    let mut points = initial_points(problem, config.initial, seed)?;
    let mut labels: Vec<u32> = points.iter().map(|&p| ask(problem, config.noise, p, &mut noise_rng)).collect();
    if !(labels.contains(&0) && labels.contains(&1)) {
        // Label noise can undo the two-class guarantee: keep the true labels of the initial set then.
        labels = points.iter().map(|&p| problem.label(p)).collect();
    }
    let mut queries: Vec<QueryRecord> = points.iter().zip(&labels).map(|(&point, &label)| QueryRecord { round: 0, point, label }).collect();
    // The session's strategy is never asked: the synthesizer makes the queries.
    let mut session = Session::new(Matrix::zeros(0, 0), 2, learner, Box::new(RandomSampling), SessionSettings::seeded(seed));
    let mut history = Vec::new();
    let mut batch_labels = labels.clone();
    let mut batch = points.clone();
    loop {
        let t = Instant::now();
        let ids = session.add_samples(&model.features(&batch)).map_err(wrap)?;
        let answers: Vec<(SampleId, Answer)> = ids.into_iter().zip(batch_labels.iter().map(|&y| Answer::Label(y))).collect();
        let stats = session.teach(&answers).map_err(wrap)?.clone();
        let mut record = evaluator.record(session.learner(), &stats).map_err(wrap)?;
        record.seconds = t.elapsed().as_secs_f64();
        history.push(record);
        if points.len() >= config.budget {
            break;
        }
        let round = session.rounds();
        let k = config.batch.min(config.budget - points.len());
        batch = {
            let positive = |q: &[Point]| positive(&session, &model, q);
            let ctx = SynthesisContext { domain, labeled: &points, labels: &labels, model: &positive };
            synthesizer.propose(&ctx, k, &mut propose_rng).map_err(wrap)?
        };
        if batch.len() != k || batch.iter().any(|&p| !domain.contains(p)) {
            return Err(wrap(quarry_core::Error::Other(format!("{} proposed {} points for {k} (or left the domain)", synthesizer.name(), batch.len()))));
        }
        batch_labels = batch.iter().map(|&p| ask(problem, config.noise, p, &mut noise_rng)).collect();
        for (&p, &y) in batch.iter().zip(&batch_labels) {
            points.push(p);
            labels.push(y);
            queries.push(QueryRecord { round, point: p, label: y });
        }
    }

    let grid = grid_points(domain, GRID);
    let final_grid = positive(&session, &model, &grid).map_err(wrap)?;
    let wrong = grid.iter().zip(&final_grid).filter(|&(&g, &p)| u32::from(p > 0.5) != problem.label(g)).count();
    Ok(SynthRun {
        strategy: synthesizer.name().to_string(),
        seed,
        history,
        queries,
        final_disagreement: wrong as f64 / grid.len() as f64,
        final_grid,
    })
}

/// The session's current P(class 1) at each point.
fn positive(session: &Session, model: &SynthModel, points: &[Point]) -> quarry_core::Result<Vec<f64>> {
    let p = session.learner().predict_proba(&model.features(points))?;
    Ok(p.rows().map(|r| r[1] as f64).collect())
}

/// Per-synthesizer figures over seeds: the simulation's own summary (labels-to-target and label
/// efficiency against [`BASELINE`]) and how much of the domain the final model gets wrong.
#[derive(Debug, Serialize)]
pub struct SynthSummary {
    #[serde(flatten)]
    pub figures: StrategySummary,
    /// Fraction of the domain where the final model disagrees with the true function.
    pub final_disagreement: Spread,
}

/// The baseline that label efficiency is measured against.
pub const BASELINE: &str = "synthesis-random";

impl SynthRun {
    /// The run as the reports read a pool run.
    fn as_result(&self, budget: usize) -> RunResult {
        RunResult {
            strategy: self.strategy.clone(),
            seed: self.seed,
            history: self.history.clone(),
            stop: StopReason { rule: "budget".into(), detail: format!("{budget} labels") },
            queried: Vec::new(), // synthesized points are not pool samples: queries.csv lists them
        }
    }
}

/// Figures per synthesizer (in the order run) and the target accuracy.
pub fn summarize(runs: &[SynthRun], budget: usize) -> (Vec<SynthSummary>, Option<f64>) {
    let results: Vec<RunResult> = runs.iter().map(|r| r.as_result(budget)).collect();
    let (figures, target) = summarize_against(&results, &[], budget, BASELINE);
    let summaries = figures
        .into_iter()
        .map(|figures| {
            let mine = runs.iter().filter(|r| r.strategy == figures.strategy);
            let final_disagreement = Spread::of(mine.map(|r| r.final_disagreement).collect());
            SynthSummary { figures, final_disagreement }
        })
        .collect();
    (summaries, target)
}

/// Every run of an experiment and its figures.
pub struct SynthesisOutcome {
    pub runs: Vec<SynthRun>,
    pub summaries: Vec<SynthSummary>,
    pub target: Option<f64>,
    pub wall_seconds: f64,
}

#[derive(Serialize)]
struct ProblemSummary {
    name: &'static str,
    description: &'static str,
    domain: [[f64; 2]; 2],
}

#[derive(Serialize)]
struct Summary<'a> {
    quarry: &'static str,
    scenario: &'static str,
    problem: ProblemSummary,
    config: &'a SynthesisConfig,
    /// synthesis-random's mean final accuracy.
    target_accuracy: Option<f64>,
    strategies: &'a [SynthSummary],
    wall_seconds: f64,
}

const SCENARIO: &str = "membership query synthesis";

/// Runs every synthesizer × seed (in parallel) and writes the reports to `out`.
///
/// `out` is created if absent; an existing directory is reused only if it is empty or holds an
/// earlier `quarry synthesize` run (whose files are replaced), never a `quarry simulate` run.
pub fn synthesize(config: &SynthesisConfig, out: &Path) -> Result<SynthesisOutcome> {
    let synthesizers = config.synthesizers()?;
    prepare_dir(out)?;
    let start = Instant::now();
    let jobs: Vec<(usize, u64)> = (0..synthesizers.len()).flat_map(|s| config.seeds.iter().map(move |&seed| (s, seed))).collect();
    let runs: Vec<SynthRun> = jobs.par_iter().map(|&(s, seed)| run_one(config, synthesizers[s].as_ref(), seed)).collect::<Result<_>>()?;
    let (summaries, target) = summarize(&runs, config.budget);
    let outcome = SynthesisOutcome { runs, summaries, target, wall_seconds: start.elapsed().as_secs_f64() };
    write_reports(config, &outcome, out)?;
    Ok(outcome)
}

fn prepare_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|e| ExperimentError::io(out, e))?;
        if entries.next().is_some() {
            let summary = std::fs::read_to_string(out.join("summary.json")).unwrap_or_default();
            let ours = serde_json::from_str::<serde_json::Value>(&summary).ok().is_some_and(|v| v["scenario"] == SCENARIO);
            if !ours {
                return Err(ExperimentError::RunDir {
                    path: out.to_path_buf(),
                    reason: "is not empty and holds no earlier `quarry synthesize` run; choose another --out".into(),
                });
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| ExperimentError::io(out, e))
}

/// `strategy,seed,round,x,y,label`, one row per labeled point (round 0 = the initial set).
pub fn queries_csv(runs: &[SynthRun]) -> String {
    let mut s = String::from("strategy,seed,round,x,y,label\n");
    for r in runs {
        for q in &r.queries {
            let _ = writeln!(s, "{},{},{},{:.9},{:.9},{}", r.strategy, r.seed, q.round, q.point[0], q.point[1], q.label);
        }
    }
    s
}

/// curves.csv, summary.json, curves.svg, queries.csv and queries.svg.
pub fn write_reports(config: &SynthesisConfig, outcome: &SynthesisOutcome, out: &Path) -> Result<()> {
    let as_results: Vec<RunResult> = outcome.runs.iter().map(|r| r.as_result(config.budget)).collect();
    write_atomic(&out.join("curves.csv"), curves_csv(&as_results, config.budget).as_bytes())?;
    write_atomic(&out.join("queries.csv"), queries_csv(&outcome.runs).as_bytes())?;

    let d = config.problem.domain();
    let summary = Summary {
        quarry: env!("CARGO_PKG_VERSION"),
        scenario: SCENARIO,
        problem: ProblemSummary { name: config.problem.name(), description: config.problem.description(), domain: [[d.x.0, d.x.1], [d.y.0, d.y.1]] },
        config,
        target_accuracy: outcome.target,
        strategies: &outcome.summaries,
        wall_seconds: outcome.wall_seconds,
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
    write_atomic(&out.join("summary.json"), json.as_bytes())?;

    let series: Vec<CurveSeries> = outcome
        .summaries
        .iter()
        .map(|s| {
            let mut c = SeedCurves::default();
            for r in outcome.runs.iter().filter(|r| r.strategy == s.figures.strategy) {
                for h in &r.history {
                    c.add(h.labels, h.accuracy);
                }
            }
            CurveSeries {
                name: s.figures.strategy.clone(),
                points: c.summary().into_iter().map(|(n, mean, _, lo, hi)| CurvePoint { labels: n as f64, mean, low: lo, high: hi }).collect(),
            }
        })
        .collect();
    let n = config.seeds.len();
    let title = format!("query synthesis on '{}' ({} model) — {n} seed{}", config.problem.name(), config.model.name(), if n == 1 { "" } else { "s" });
    let spec = PlotSpec { title: &title, x_label: "labels", y_label: "test accuracy (mean, band = min..max over seeds)", series: &series, reference: None };
    write_svg(&out.join("curves.svg"), &spec).map_err(|e| ExperimentError::Plot(e.to_string()))?;

    let seed = config.seeds[0];
    let truth: Vec<f64> = grid_points(d, GRID).into_iter().map(|p| config.problem.margin(p)).collect();
    let panels: Vec<QueryPanel> = outcome
        .runs
        .iter()
        .filter(|r| r.seed == seed)
        .map(|r| QueryPanel {
            title: format!("{} — seed {seed}, {} labels, accuracy {:.3}", r.strategy, r.queries.len(), r.history.last().map_or(f64::NAN, |h| h.accuracy)),
            domain: d,
            grid: GRID,
            learned: r.final_grid.clone(),
            truth: truth.clone(),
            queries: r.queries.iter().map(|q| (q.point, q.label, q.round)).collect(),
        })
        .collect();
    let title = format!("{}: {}", config.problem.name(), config.problem.description());
    write_queries_svg(&out.join("queries.svg"), &title, &panels).map_err(|e| ExperimentError::Plot(format!("{}: {e}", out.join("queries.svg").display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(strategies: &[&str]) -> SynthesisConfig {
        SynthesisConfig {
            problem: Problem::Circle,
            strategies: strategies.iter().map(|s| s.to_string()).collect(),
            model: ModelSpec::Rbf { grid: 8, c: 100.0 },
            initial: 10,
            batch: 4,
            budget: 31,
            seeds: vec![0, 1],
            noise: 0.0,
            test_size: 500,
        }
    }

    #[test]
    fn synthesis_problems_parse_and_label() {
        assert_eq!(Problem::parse("Circle").unwrap(), Problem::Circle);
        let err = Problem::parse("moons").unwrap_err().to_string();
        assert!(err.starts_with("problem:") && err.contains("circle, sine, linear, ring"), "{err}");
        assert_eq!(Problem::Circle.label([0.1, -0.1]), 1);
        assert_eq!(Problem::Circle.label([0.9, 0.9]), 0);
        assert_eq!(Problem::Sine.label([0.0, 0.5]), 1);
        assert_eq!(Problem::Sine.label([1.5, 0.5]), 0);
        assert_eq!(Problem::Ring.label([0.0, 0.0]), 0);
        assert_eq!(Problem::Ring.label([0.5, 0.0]), 1);
        for p in Problem::ALL {
            let pts = initial_points(p, 6, 3).unwrap();
            assert!(pts.iter().all(|&q| p.domain().contains(q)));
            let ones = pts.iter().filter(|&&q| p.label(q) == 1).count();
            assert!(ones > 0 && ones < 6, "{}", p.name());
        }
    }

    #[test]
    fn synthesis_flags_are_checked() {
        let mut c = config(&["synthesis-boundary"]);
        c.batch = 0;
        assert!(c.synthesizers().err().unwrap().to_string().starts_with("batch:"));
        let mut c = config(&["synthesis-boundary"]);
        c.budget = 5;
        assert!(c.synthesizers().err().unwrap().to_string().starts_with("budget:"));
        let c = config(&["margin"]);
        let err = c.synthesizers().err().unwrap().to_string();
        assert!(err.starts_with("strategy: unknown synthesizer 'margin'") && err.contains("synthesis-pairs"), "{err}");
        assert!(!err.contains("invalid parameter"), "said once: {err}");
        let c = config(&["synthesis-random", "synthesis_random"]);
        assert!(c.synthesizers().is_err());
    }

    #[test]
    fn synthesis_runner_spends_exactly_the_budget_and_repeats() {
        let c = config(&["synthesis-boundary", "synthesis-random"]);
        let s = c.synthesizers().unwrap();
        for synth in &s {
            let a = run_one(&c, synth.as_ref(), 3).unwrap();
            assert_eq!(a.queries.len(), 31);
            let labels: Vec<usize> = a.history.iter().map(|h| h.labels).collect();
            assert_eq!(labels, [10, 14, 18, 22, 26, 30, 31]);
            assert!(a.queries.iter().all(|q| Problem::Circle.domain().contains(q.point) && q.label == Problem::Circle.label(q.point)));
            let b = run_one(&c, synth.as_ref(), 3).unwrap();
            assert_eq!(a.queries, b.queries, "same seed, same queries");
            let acc = |r: &SynthRun| r.history.iter().map(|h| h.accuracy).collect::<Vec<_>>();
            assert_eq!(acc(&a), acc(&b), "same seed, same curve");
            let other = run_one(&c, synth.as_ref(), 4).unwrap();
            assert_ne!(a.queries, other.queries);
        }
        // Every synthesizer of a seed starts from the same initial set.
        let a = run_one(&c, s[0].as_ref(), 3).unwrap();
        let b = run_one(&c, s[1].as_ref(), 3).unwrap();
        assert_eq!(a.queries[..10], b.queries[..10]);
    }

    #[test]
    fn synthesis_noise_flips_some_labels() {
        let mut c = config(&["synthesis-random"]);
        c.noise = 0.3;
        c.budget = 200;
        c.batch = 50;
        let r = run_one(&c, c.synthesizers().unwrap()[0].as_ref(), 0).unwrap();
        let flipped = r.queries.iter().filter(|q| q.label != Problem::Circle.label(q.point)).count();
        assert!((30..=90).contains(&flipped), "{flipped} of 200 flipped at noise 0.3");
    }

    #[test]
    fn synthesis_end_to_end_writes_every_report() {
        let dir = std::env::temp_dir().join(format!("quarry-synthesis-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = config(&["synthesis-boundary", "synthesis-uncertainty", "synthesis-random"]);
        let outcome = synthesize(&c, &dir).unwrap();
        assert_eq!(outcome.runs.len(), 6);
        let curves = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
        assert!(curves.starts_with("strategy,seed,round,labels,accuracy,balanced_accuracy,log_loss,seconds\n"));
        assert_eq!(curves.lines().count(), 1 + 6 * 7);
        let queries = std::fs::read_to_string(dir.join("queries.csv")).unwrap();
        assert!(queries.starts_with("strategy,seed,round,x,y,label\n"));
        assert_eq!(queries.lines().count(), 1 + 6 * 31);
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["scenario"], SCENARIO);
        assert_eq!(summary["strategies"].as_array().unwrap().len(), 3);
        assert!(summary["strategies"][0]["aulc"]["mean"].as_f64().unwrap() > 0.5);
        assert!(summary["strategies"][2]["label_efficiency"]["ratio"].as_f64().is_some());
        for svg in ["curves.svg", "queries.svg"] {
            let text = std::fs::read_to_string(dir.join(svg)).unwrap();
            assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{svg}");
        }
        let q = std::fs::read_to_string(dir.join("queries.svg")).unwrap();
        assert!(q.contains("synthesis-uncertainty — seed 0"));
        // Rerunning into the same directory replaces the run; a foreign directory is refused.
        synthesize(&c, &dir).unwrap();
        std::fs::write(dir.join("summary.json"), "{}").unwrap();
        assert!(synthesize(&c, &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
