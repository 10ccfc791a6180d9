//! The reports of a simulation: `curves.csv` (every round of every run), `queries.csv` (every
//! labeled sample of every run, by its row in the data file), `summary.json` (the BENCHMARK.md
//! figures per strategy) and `curves.svg` (mean curve ± band over seeds); with stream policies
//! also `stream.csv` (arrivals seen and labels spent per quarter of the stream).

use crate::config::ExperimentConfig;
use crate::metrics::{self, Efficiency, SeedCurves};
use crate::plot::{CurvePoint, CurveSeries, PlotSpec, write_svg};
use crate::rundir::{FullPoolResult, RunDir, write_atomic};
use crate::data::{LoadedData, Prepared};
use crate::outcome::{RunResult, SimulationOutcome, StreamStats};
use crate::{ExperimentError, Result};
use quarry_core::{RoundRecord, SampleId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl RunResult {
    /// The rounds within the budget (a directory continued with a smaller budget keeps its
    /// later rounds on disk but does not report them).
    fn rounds(&self, budget: usize) -> impl Iterator<Item = &RoundRecord> {
        self.history.iter().filter(move |r| r.labels <= budget)
    }

    /// The queried samples of the rounds within the budget (a round whose labels would take the
    /// run past it is left out whole, as its curve point is).
    fn queried_within(&self, budget: usize) -> impl Iterator<Item = &(SampleId, u32)> {
        let mut end_of_round: BTreeMap<u32, usize> = BTreeMap::new();
        for (i, (_, round)) in self.queried.iter().enumerate() {
            end_of_round.insert(*round, i + 1);
        }
        self.queried.iter().filter(move |(_, round)| end_of_round[round] <= budget)
    }
}

#[derive(Debug, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub per_seed: Vec<f64>,
}

impl Spread {
    pub fn of(v: Vec<f64>) -> Spread {
        Spread { mean: metrics::mean(&v), std: metrics::std(&v), per_seed: v }
    }
}

#[derive(Debug, Serialize)]
pub struct StrategySummary {
    pub strategy: String,
    pub seeds: Vec<u64>,
    pub aulc: Spread,
    /// AULC of balanced accuracy (mean recall over classes).
    pub balanced_aulc: Spread,
    pub final_accuracy: Spread,
    pub final_balanced_accuracy: Spread,
    pub final_log_loss: Spread,
    pub final_labels: usize,
    /// labels-to-target(t) with t = random's mean final accuracy (BENCHMARK.md).
    pub labels_to_target: Option<usize>,
    /// Against random, with t = random's mean final accuracy (`None` without a random run).
    pub label_efficiency: Option<Efficiency>,
    /// The same on balanced accuracy (what matters for skewed classes).
    pub label_efficiency_balanced: Option<Efficiency>,
    /// Against random, with t = 98 % of the full-pool accuracy (the anchors' variant).
    pub efficiency_vs_full_pool: Option<Efficiency>,
    /// Mean wall-clock of one round (score + select + label + fit + test), over every round after the first.
    pub seconds_per_round: f64,
    pub stops: Vec<SeedStop>,
}

#[derive(Debug, Serialize)]
pub struct SeedStop {
    pub seed: u64,
    pub rule: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
struct DataSummary {
    path: String,
    pool_size: usize,
    test_size: usize,
    features: usize,
    scaling: crate::config::Scaling,
    /// Class index → the label value in the file.
    classes: Vec<String>,
    pool_class_counts: Vec<usize>,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    quarry: &'static str,
    data: DataSummary,
    config: &'a ExperimentConfig,
    target_accuracy: Option<f64>,
    full_pool_accuracy: Option<Spread>,
    strategies: Vec<StrategySummary>,
    /// Stream-based runs: arrivals seen, labels spent and their spread over the stream.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stream_spending: Vec<StreamSpending>,
    wall_seconds: f64,
}

/// How a stream policy spent its labels over the stream, per seed and on average.
#[derive(Debug, Serialize)]
pub struct StreamSpending {
    pub strategy: String,
    pub arrivals_seen: Spread,
    pub labels_spent: Spread,
    /// Mean over seeds of the labels queried in each quarter of the stream (even pacing:
    /// `stream_budget / 4` each).
    pub quarters_mean: [f64; 4],
    pub runs: Vec<StreamStats>,
}

/// Per stream policy, in the order the strategies were given.
pub fn stream_spending(runs: &[RunResult], streams: &[StreamStats]) -> Vec<StreamSpending> {
    strategy_order(runs)
        .into_iter()
        .filter_map(|name| {
            let mine: Vec<StreamStats> = streams.iter().filter(|s| s.strategy == name).cloned().collect();
            if mine.is_empty() {
                return None;
            }
            let quarters_mean = std::array::from_fn(|q| metrics::mean(&mine.iter().map(|s| s.quarters[q] as f64).collect::<Vec<_>>()));
            Some(StreamSpending {
                strategy: name.to_string(),
                arrivals_seen: Spread::of(mine.iter().map(|s| s.arrivals_seen as f64).collect()),
                labels_spent: Spread::of(mine.iter().map(|s| s.labels_spent as f64).collect()),
                quarters_mean,
                runs: mine,
            })
        })
        .collect()
}

/// `strategy,seed,stream_length,stream_budget,arrivals_seen,labels_spent,q1,q2,q3,q4`: one row per
/// stream run (q1..q4: labels queried in each quarter of the stream).
pub fn stream_csv(streams: &[StreamStats]) -> String {
    let mut s = String::from("strategy,seed,stream_length,stream_budget,arrivals_seen,labels_spent,q1,q2,q3,q4\n");
    for r in streams {
        let [a, b, c, d] = r.quarters;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{a},{b},{c},{d}",
            r.strategy, r.seed, r.stream_length, r.stream_budget, r.arrivals_seen, r.labels_spent
        );
    }
    s
}

pub fn write_reports(
    dir: &RunDir,
    config: &ExperimentConfig,
    loaded: &LoadedData,
    prepared: &BTreeMap<u64, Arc<Prepared>>,
    outcome: &SimulationOutcome,
) -> Result<()> {
    let root = dir.root();
    write_atomic(&root.join("curves.csv"), curves_csv(&outcome.runs, config.budget).as_bytes())?;
    let files = loaded.images.as_ref().map(|(images, _, _)| (images.files.as_slice(), config.data.path.as_path()));
    write_atomic(&root.join("queries.csv"), queries_csv(&outcome.runs, config.budget, prepared, files).as_bytes())?;
    if !outcome.streams.is_empty() {
        write_atomic(&root.join("stream.csv"), stream_csv(&outcome.streams).as_bytes())?;
    }

    let (summaries, target) = summarize(&outcome.runs, &outcome.full_pool, config);
    let first = prepared.values().next().expect("at least one seed");
    let summary = Summary {
        quarry: env!("CARGO_PKG_VERSION"),
        data: DataSummary {
            path: config.data.path.display().to_string(),
            pool_size: first.pool.len(),
            test_size: first.test.len(),
            features: first.pool.dim(),
            scaling: loaded.scaling,
            classes: loaded.data.class_names.clone(),
            pool_class_counts: first.pool.class_counts(),
        },
        config,
        target_accuracy: target,
        full_pool_accuracy: (!outcome.full_pool.is_empty())
            .then(|| Spread::of(outcome.full_pool.iter().map(|f| f.accuracy).collect())),
        strategies: summaries,
        stream_spending: stream_spending(&outcome.runs, &outcome.streams),
        wall_seconds: outcome.wall_seconds,
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
    write_atomic(&root.join("summary.json"), json.as_bytes())?;

    let series = curve_series(&outcome.runs, config.budget);
    let full = summary.full_pool_accuracy.as_ref().map(|s| ("full pool", s.mean));
    let title = format!(
        "{} — {} seed{}",
        config.data.path.file_name().map_or("data".into(), |n| n.to_string_lossy().to_string()),
        config.seeds.len(),
        if config.seeds.len() == 1 { "" } else { "s" }
    );
    let spec = PlotSpec {
        title: &title,
        x_label: "labels",
        y_label: "test accuracy (mean, band = min..max over seeds)",
        series: &series,
        reference: full,
    };
    write_svg(&root.join("curves.svg"), &spec).map_err(|e| ExperimentError::Plot(e.to_string()))
}

/// `strategy,seed,round,labels,accuracy,balanced_accuracy,log_loss[,positive_recall],seconds`,
/// one row per scored round (`positive_recall` only in one-vs-rest runs).
pub fn curves_csv(runs: &[RunResult], budget: usize) -> String {
    let recall = runs.iter().any(|r| r.history.iter().any(|x| x.positive_recall.is_some()));
    let mut s = String::from("strategy,seed,round,labels,accuracy,balanced_accuracy,log_loss,");
    s.push_str(if recall { "positive_recall,seconds\n" } else { "seconds\n" });
    for run in runs {
        for r in run.rounds(budget) {
            let _ = write!(
                s,
                "{},{},{},{},{:.6},{:.6},{:.6},",
                run.strategy, run.seed, r.round, r.labels, r.accuracy, r.balanced_accuracy, r.log_loss
            );
            if recall {
                let _ = write!(s, "{:.6},", r.positive_recall.unwrap_or(f64::NAN));
            }
            let _ = writeln!(s, "{:.6}", r.seconds);
        }
    }
    s
}

/// `strategy,seed,round,pool_index,row`: one row per labeled sample of each run, in labeling order
/// (round 0 is the initial set). `pool_index` is the sample's index in that seed's pool, `row` its
/// row in `--data` (0-based over the data rows, the header not counted; an IDX file's item). For an
/// image folder (`files = Some((file of each data row, the folder))`) the last column is `file`:
/// the image's path relative to the folder, `/`-separated.
pub fn queries_csv(runs: &[RunResult], budget: usize, prepared: &BTreeMap<u64, Arc<Prepared>>, files: Option<(&[PathBuf], &Path)>) -> String {
    let mut s = String::from(if files.is_some() { "strategy,seed,round,pool_index,file\n" } else { "strategy,seed,round,pool_index,row\n" });
    for run in runs {
        let origin = &prepared[&run.seed].origin;
        for &(id, round) in run.queried_within(budget) {
            let row = origin[id.index()];
            let _ = write!(s, "{},{},{round},{},", run.strategy, run.seed, id.index());
            match files {
                Some((files, root)) => {
                    let _ = writeln!(s, "{}", csv_field(&relative_name(&files[row], root)));
                }
                None => {
                    let _ = writeln!(s, "{row}");
                }
            }
        }
    }
    s
}

/// `file`'s path below `root`, with `/` between the parts whatever the platform.
fn relative_name(file: &Path, root: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap_or(file);
    relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// `text` as one CSV field: quoted (quotes doubled) when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

fn curves_by_strategy(runs: &[RunResult], budget: usize) -> BTreeMap<&str, SeedCurves> {
    curves_of(runs, budget, |r| r.accuracy)
}

fn curves_of(runs: &[RunResult], budget: usize, metric: fn(&RoundRecord) -> f64) -> BTreeMap<&str, SeedCurves> {
    let mut out: BTreeMap<&str, SeedCurves> = BTreeMap::new();
    for run in runs {
        let c = out.entry(run.strategy.as_str()).or_default();
        for r in run.rounds(budget) {
            c.add(r.labels, metric(r));
        }
    }
    out
}

/// Per-strategy figures, in the order the strategies were given, and the target accuracy.
pub fn summarize(runs: &[RunResult], full: &[FullPoolResult], config: &ExperimentConfig) -> (Vec<StrategySummary>, Option<f64>) {
    summarize_against(runs, full, config.budget, "random")
}

/// The figures of every strategy of `runs` (rounds within `budget`), label efficiency measured
/// against the strategy named `baseline` at its mean final accuracy: one summary for pool, stream
/// and synthesis runs alike.
pub fn summarize_against(runs: &[RunResult], full: &[FullPoolResult], budget: usize, baseline: &str) -> (Vec<StrategySummary>, Option<f64>) {
    let curves = curves_by_strategy(runs, budget);
    let random = curves.get(baseline);
    let target = random.and_then(|r| r.final_mean());
    let balanced = curves_of(runs, budget, |r| r.balanced_accuracy);
    let random_b = balanced.get(baseline);
    let target_b = random_b.and_then(|r| r.final_mean());
    let full_target = (!full.is_empty()).then(|| 0.98 * metrics::mean(&full.iter().map(|f| f.accuracy).collect::<Vec<_>>()));
    let summaries = strategy_order(runs)
        .into_iter()
        .map(|name| {
            let mine: Vec<&RunResult> = runs.iter().filter(|r| r.strategy == name).collect();
            let per_seed = |f: &dyn Fn(&RunResult) -> f64| -> Spread { Spread::of(mine.iter().map(|r| f(r)).collect()) };
            let last = |r: &RunResult| r.rounds(budget).last().cloned();
            let seconds: Vec<f64> = mine.iter().flat_map(|r| r.rounds(budget).skip(1).map(|x| x.seconds)).collect();
            let common;
            let (c, cb) = if quarry_strategies::stream::policy_name(name).is_some() {
                // A stream run ends where its stream or budget does, so the seeds' last label counts
                // differ; a mean over only the seeds that got that far would be biased.
                common = (common_counts(&mine, budget, |r| r.accuracy), common_counts(&mine, budget, |r| r.balanced_accuracy));
                (&common.0, &common.1)
            } else {
                (&curves[name], &balanced[name])
            };
            StrategySummary {
                strategy: name.to_string(),
                seeds: mine.iter().map(|r| r.seed).collect(),
                aulc: per_seed(&|r| metrics::aulc(&r.rounds(budget).map(|x| x.accuracy).collect::<Vec<_>>())),
                balanced_aulc: per_seed(&|r| metrics::aulc(&r.rounds(budget).map(|x| x.balanced_accuracy).collect::<Vec<_>>())),
                final_accuracy: per_seed(&|r| last(r).map_or(f64::NAN, |x| x.accuracy)),
                final_balanced_accuracy: per_seed(&|r| last(r).map_or(f64::NAN, |x| x.balanced_accuracy)),
                final_log_loss: per_seed(&|r| last(r).map_or(f64::NAN, |x| x.log_loss)),
                final_labels: mine.iter().filter_map(|r| last(r).map(|x| x.labels)).max().unwrap_or(0),
                labels_to_target: target.and_then(|t| c.labels_to_target(t)),
                label_efficiency: random.zip(target).map(|(r, t)| metrics::efficiency(r, c, t)),
                label_efficiency_balanced: random_b.zip(target_b).map(|(r, t)| metrics::efficiency(r, cb, t)),
                efficiency_vs_full_pool: random.zip(full_target).map(|(r, t)| metrics::efficiency(r, c, t)),
                seconds_per_round: metrics::mean(&seconds),
                stops: mine.iter().map(|r| SeedStop { seed: r.seed, rule: r.stop.rule.clone(), detail: r.stop.detail.clone() }).collect(),
            }
        })
        .collect();
    (summaries, target)
}

/// The curve of `runs` at only the label counts every one of them reached.
fn common_counts(runs: &[&RunResult], budget: usize, metric: fn(&RoundRecord) -> f64) -> SeedCurves {
    let mut reached: BTreeMap<usize, usize> = BTreeMap::new();
    for run in runs {
        for r in run.rounds(budget) {
            *reached.entry(r.labels).or_default() += 1;
        }
    }
    let mut c = SeedCurves::default();
    for run in runs {
        for r in run.rounds(budget).filter(|r| reached[&r.labels] == runs.len()) {
            c.add(r.labels, metric(r));
        }
    }
    c
}

/// The strategies of `runs` in the order they were given.
fn strategy_order(runs: &[RunResult]) -> Vec<&str> {
    let mut order: Vec<&str> = Vec::new();
    for run in runs {
        if !order.contains(&run.strategy.as_str()) {
            order.push(&run.strategy);
        }
    }
    order
}

fn curve_series(runs: &[RunResult], budget: usize) -> Vec<CurveSeries> {
    let curves = curves_by_strategy(runs, budget);
    strategy_order(runs)
        .into_iter()
        .map(|name| CurveSeries {
            name: name.to_string(),
            points: curves[name]
                .summary()
                .into_iter()
                .map(|(n, mean, _, lo, hi)| CurvePoint { labels: n as f64, mean, low: lo, high: hi })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::queried;
    use quarry_core::{Pool, StopReason};
    use quarry_core::{Dataset, Matrix};

    fn run(strategy: &str, seed: u64, queried: &[(u32, u32)]) -> RunResult {
        RunResult {
            strategy: strategy.into(),
            seed,
            history: Vec::new(),
            stop: StopReason { rule: "budget".into(), detail: String::new() },
            queried: queried.iter().map(|&(id, round)| (SampleId(id), round)).collect(),
        }
    }

    fn prepared(origins: &[(u64, Vec<usize>)]) -> BTreeMap<u64, Arc<Prepared>> {
        let empty = || Dataset::new(Matrix::new(vec![0.0; 2], 2, 1).unwrap(), vec![0, 1], vec!["a".into(), "b".into()]).unwrap();
        origins.iter().map(|(seed, origin)| (*seed, Arc::new(Prepared { pool: empty(), test: empty(), origin: origin.clone() }))).collect()
    }

    #[test]
    fn the_pool_records_each_label_with_its_round_in_labeling_order() {
        let mut pool = Pool::new(6);
        pool.set_label(SampleId(4), 1, 0);
        pool.set_label(SampleId(1), 0, 0);
        pool.skip(SampleId(0), 1);
        pool.set_label(SampleId(5), 1, 1);
        assert_eq!(queried(&pool), vec![(SampleId(4), 0), (SampleId(1), 0), (SampleId(5), 1)]);
    }

    #[test]
    fn queries_name_the_data_files_rows_through_each_seeds_split() {
        // Seed 0's pool holds data rows 7, 3, 9, 0; seed 1's rows 2, 8.
        let p = prepared(&[(0, vec![7, 3, 9, 0]), (1, vec![2, 8])]);
        let runs = [run("margin", 0, &[(2, 0), (0, 0), (3, 1)]), run("random", 1, &[(1, 0), (0, 0)])];
        assert_eq!(
            queries_csv(&runs, 100, &p, None),
            "strategy,seed,round,pool_index,row\nmargin,0,0,2,9\nmargin,0,0,0,7\nmargin,0,1,3,0\nrandom,1,0,1,8\nrandom,1,0,0,2\n"
        );
        // A run continued with a smaller budget: only whole rounds within it, as in curves.csv.
        let long = [run("margin", 0, &[(0, 0), (1, 0), (2, 1), (3, 1)])];
        assert_eq!(queries_csv(&long, 3, &p, None).lines().count(), 1 + 2);
        assert_eq!(queries_csv(&long, 4, &p, None).lines().count(), 1 + 4);
    }

    #[test]
    fn image_folder_queries_name_the_file_below_the_folder() {
        let root = Path::new("/data/pets");
        let files: Vec<PathBuf> = ["/data/pets/cat/a.png", "/data/pets/dog/b,1.png"].iter().map(PathBuf::from).collect();
        let p = prepared(&[(0, vec![1, 0])]);
        assert_eq!(
            queries_csv(&[run("aift", 0, &[(0, 0), (1, 2)])], 10, &p, Some((&files, root))),
            "strategy,seed,round,pool_index,file\naift,0,0,0,\"dog/b,1.png\"\naift,0,2,1,cat/a.png\n"
        );
    }
}
