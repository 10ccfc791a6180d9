//! What a simulation is asked to do, validated once.

use crate::{ExperimentError, Result};
use quarry_strategies::StrategyOptions;
use quarry_strategies::stream::StreamOptions;
use serde::{Deserialize, Serialize};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// A setting chosen by name (`--model`, `--scale`, `--cold-start`, `--committee`): the names the
/// command line takes and `run.json` records.
pub trait Named: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    /// The value `name` means (`_` and `-` alike, case ignored).
    fn from_name(name: &str) -> Option<Self> {
        let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL.iter().copied().find(|v| v.name() == wanted)
    }
}

/// The learners `--model` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Multinomial logistic regression (L-BFGS to convergence).
    #[serde(rename = "logreg")]
    Logreg,
    /// The LeNet-5 CNN for 28×28 images.
    #[serde(rename = "lenet5")]
    Lenet5,
    /// One hidden layer.
    #[serde(rename = "mlp")]
    Mlp,
    /// A pretrained EfficientNet-Lite0 over an image folder: a softmax head on its features, or
    /// its last blocks fine-tuned.
    #[serde(rename = "efficientnet-lite0")]
    EfficientnetLite0,
}

impl Named for ModelKind {
    const ALL: &'static [ModelKind] = &[ModelKind::Logreg, ModelKind::Lenet5, ModelKind::Mlp, ModelKind::EfficientnetLite0];
    fn name(self) -> &'static str {
        match self {
            ModelKind::Logreg => "logreg",
            ModelKind::Lenet5 => "lenet5",
            ModelKind::Mlp => "mlp",
            ModelKind::EfficientnetLite0 => "efficientnet-lite0",
        }
    }
}

impl ModelKind {
    /// The model a name means; an unknown name is an error listing the known ones.
    pub fn parse(name: &str) -> Result<ModelKind> {
        ModelKind::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = ModelKind::ALL.iter().map(|m| m.name()).collect();
            ExperimentError::setting("model", format!("unknown model '{name}' (known: {})", known.join(", ")))
        })
    }

    /// A network quarry trains itself (LeNet-5, MLP): online training and MC dropout apply.
    pub fn is_network(self) -> bool {
        matches!(self, ModelKind::Lenet5 | ModelKind::Mlp)
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How features are scaled before learning (P1 of BENCHMARK.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scaling {
    /// Pixels (IDX) → `Unit`, tabular (CSV) → `Standardize`: the P1 protocol.
    Auto,
    /// Standardize with the mean and std of the whole pool (tabular data: pool features are known).
    Standardize,
    /// Divide by 255 (pixels).
    Unit,
    None,
}

impl Named for Scaling {
    const ALL: &'static [Scaling] = &[Scaling::Auto, Scaling::Standardize, Scaling::Unit, Scaling::None];
    fn name(self) -> &'static str {
        match self {
            Scaling::Auto => "auto",
            Scaling::Standardize => "standardize",
            Scaling::Unit => "unit",
            Scaling::None => "none",
        }
    }
}

/// Where the test set comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestSpec {
    /// A stratified split of the data drawn with each seed.
    Fraction(f64),
    /// A separate file of the same kind (and its IDX labels file, if given).
    File { path: PathBuf, labels: Option<PathBuf> },
}

/// The data: a CSV (with its label column) or an IDX images file (with its labels file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub path: PathBuf,
    pub labels: Option<PathBuf>,
    pub label_column: Option<String>,
    /// Use only the first N samples of the data file as the pool (e.g. P1's 20,000 Fashion-MNIST images).
    pub pool_size: Option<usize>,
}

/// Everything that defines a simulation's results. Two invocations with equal
/// [`ExperimentConfig::identity`] may share a run directory; the budget may grow and the
/// strategy and seed lists may change between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    pub data: DataSpec,
    pub test: TestSpec,
    pub scaling: Scaling,
    pub model: ModelKind,
    /// Inverse L2 strength of logistic regression.
    pub c: f64,
    /// Settings of the neural learners (`lenet5`, `mlp`).
    #[serde(default)]
    pub net: NetConfig,
    /// One-vs-rest: class with this label value becomes class 1, every other class 0.
    #[serde(default)]
    pub positive_class: Option<String>,
    /// Image pools: the pretrained backbone's weights, working resolution and AIFT patches per candidate.
    #[serde(default)]
    pub image: ImageConfig,
    pub initial: usize,
    pub batch: usize,
    pub budget: usize,
    /// Score only this many random unlabeled samples per round (all when `None`).
    pub candidates: Option<usize>,
    /// Random warm start: query at random until this many labels, then use the strategy.
    #[serde(default)]
    pub warmup: usize,
    /// How the initial set is drawn.
    #[serde(default)]
    pub cold_start: ColdStart,
    /// How a committee (query-by-committee strategies) is built.
    #[serde(default)]
    pub committee: CommitteeSpec,
    pub strategies: Vec<String>,
    /// Parameters of the strategies (β, committee size, MC passes, pre-filter).
    pub options: StrategyOptions,
    pub seeds: Vec<u64>,
    /// Stopping rules besides the budget, as `--stop` takes them (see [`crate::stopping::parse_rules`]).
    #[serde(default)]
    pub stop: String,
    /// Also fit on the whole labeled pool per seed, for the full-pool reference accuracy.
    pub full_pool: bool,
    /// Score the test set only at these label counts (plus the first and last round)...
    #[serde(default)]
    pub eval_at: Vec<usize>,
    /// ... and at every multiple of this many labels. Neither given: every round.
    #[serde(default)]
    pub eval_every: Option<usize>,
    /// Parameters of the stream-based policies (`stream-*` strategies).
    #[serde(default)]
    pub stream: StreamOptions,
}

/// How the committee of the query-by-committee strategies is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitteeSpec {
    /// Copies of the model, each on a bootstrap resample of the labels (query by bagging).
    #[default]
    Bagging,
    /// Members of different kinds, each on every label: logistic regression at several
    /// regularization strengths alternating with MLPs of different seeds (and LeNet-5 on 28x28 images).
    Mixed,
}

impl Named for CommitteeSpec {
    const ALL: &'static [CommitteeSpec] = &[CommitteeSpec::Bagging, CommitteeSpec::Mixed];
    fn name(self) -> &'static str {
        match self {
            CommitteeSpec::Bagging => "bagging",
            CommitteeSpec::Mixed => "mixed",
        }
    }
}

/// How the initial labeled set is chosen (the same set for every strategy of a seed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColdStart {
    /// Uniformly at random.
    #[default]
    Random,
    /// k-means++ seeding in the feature / embedding space: spread over the pool.
    KmeansPp,
}

impl Named for ColdStart {
    const ALL: &'static [ColdStart] = &[ColdStart::Random, ColdStart::KmeansPp];
    fn name(self) -> &'static str {
        match self {
            ColdStart::Random => "random",
            ColdStart::KmeansPp => "kmeans-pp",
        }
    }
}

/// Image folders with a pretrained backbone (`--model efficientnet-lite0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub weights: Option<PathBuf>,
    /// Images (and patches) are resized to this square size before the backbone.
    pub resolution: usize,
    /// Augmented patches per candidate (AIFT's m).
    pub patches: usize,
    /// The smallest crop of a patch, as a fraction of the image's shorter side (crops are drawn
    /// uniformly from this to the whole side).
    #[serde(default = "default_patch_scale")]
    pub patch_scale: f64,
    /// Fine-tune the last this many blocks of the backbone with a new head (SGD, head at 10× the
    /// backbone's rate) over cached frozen-trunk features; 0: a softmax head on the frozen
    /// backbone's pooled features.
    #[serde(default)]
    pub train_blocks: usize,
    /// A feature-cache file for the pooled features (read when fresh, built otherwise). Not part
    /// of a run's identity: it changes how fast the features come, not what they are.
    #[serde(skip)]
    pub features_cache: Option<PathBuf>,
    /// Refits also train on each labeled image's `patches` augmented patches (AIFT's step 4).
    #[serde(default)]
    pub train_patches: bool,
}

/// The smallest patch crop, as a fraction of the shorter side, unless `--patch-scale` says otherwise.
pub const DEFAULT_PATCH_SCALE: f64 = 0.6;

fn default_patch_scale() -> f64 {
    DEFAULT_PATCH_SCALE
}

/// The bounds of `--patches`, `--resolution` and `--patch-scale` (`quarry simulate` and `quarry query`).
pub fn check_patches(patches: usize, resolution: usize, patch_scale: f64) -> Result<()> {
    if patches == 0 || resolution < 8 {
        return Err(ExperimentError::setting("patches", "patches must be ≥ 1 and --resolution ≥ 8"));
    }
    if !(patch_scale > 0.0 && patch_scale <= 1.0) {
        return Err(ExperimentError::setting("patch-scale",
            format!("the smallest crop is a fraction of the image's side in (0, 1], got {patch_scale}"),
        ));
    }
    Ok(())
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig { weights: None, resolution: 96, patches: 8, patch_scale: DEFAULT_PATCH_SCALE, train_blocks: 0, features_cache: None, train_patches: false }
    }
}

/// How a neural learner trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// `online`: one optimizer step on each newly labeled batch (P2); `refit`: `epochs` passes
    /// over every label after each query, continuing from the current weights.
    pub online: bool,
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// Dropout before each fully connected layer (needed by the Bayesian strategies).
    pub dropout: f32,
    /// Hidden units of the MLP.
    pub hidden: usize,
    /// Minibatch size of `refit` training.
    pub minibatch: usize,
    /// Online mode: earlier labels replayed with each new batch.
    #[serde(default)]
    pub replay: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { online: false, epochs: 1, lr: 1e-3, dropout: 0.0, hidden: 256, minibatch: 64, replay: 0 }
    }
}

/// The part of a config that must match for a run directory to be continued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    pub data: DataSpec,
    pub test: TestSpec,
    pub scaling: Scaling,
    pub model: ModelKind,
    pub c: f64,
    pub net: NetConfig,
    pub positive_class: Option<String>,
    pub image: ImageConfig,
    pub initial: usize,
    pub batch: usize,
    pub candidates: Option<usize>,
    pub warmup: usize,
    pub cold_start: ColdStart,
    #[serde(default)]
    pub committee: CommitteeSpec,
    pub options: StrategyOptions,
    pub eval_at: Vec<usize>,
    pub eval_every: Option<usize>,
    /// Left out at the defaults, so directories made before stream runs existed still match.
    #[serde(default, skip_serializing_if = "StreamOptions::is_default")]
    pub stream: StreamOptions,
    /// What the input files held when the directory was made ([`ExperimentConfig::identity`]
    /// leaves it empty; `simulate` fills it from [`crate::simulate::LoadedData::fingerprint`]): a
    /// data file rewritten in place must not resume checkpoints made from its old content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprint: Vec<FileFingerprint>,
}

/// The content of one input of a run: a file (`--data`, `--labels`, `--test`, `--test-labels`,
/// an IDX labels file found by its standard name included) or an image folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// The flag that names it.
    pub flag: String,
    /// As given (or derived, for an IDX labels file).
    pub path: PathBuf,
    /// BLAKE3 of the file's bytes, hex; of an image folder: of every image's path relative to
    /// the folder, size and bytes, in the folder's id order.
    pub blake3: String,
}

impl FileFingerprint {
    /// Hash the file or image folder at `path`; an unreadable file is an error naming it.
    pub fn of(flag: &str, path: &Path) -> Result<FileFingerprint> {
        let mut hasher = blake3::Hasher::new();
        if path.is_dir() {
            let folder = quarry_data::scan_image_folder(path)?;
            hasher.update(b"quarry image folder\0");
            hasher.update(&(folder.files.len() as u64).to_le_bytes());
            for file in &folder.files {
                let relative = file.strip_prefix(path).unwrap_or(file);
                hasher.update(relative.to_string_lossy().as_bytes());
                hasher.update(b"\0");
                let bytes = std::fs::read(file).map_err(|e| ExperimentError::io(file, e))?;
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
        } else {
            let mut f = std::fs::File::open(path).map_err(|e| ExperimentError::io(path, e))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).map_err(|e| ExperimentError::io(path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
        Ok(FileFingerprint { flag: flag.to_string(), path: path.to_path_buf(), blake3: hasher.finalize().to_hex().to_string() })
    }
}

impl RunIdentity {
    /// This identity with the content fingerprints of the run's input files.
    pub fn with_fingerprint(self, fingerprint: Vec<FileFingerprint>) -> RunIdentity {
        RunIdentity { fingerprint, ..self }
    }
}

/// Refuse to continue the run directory `out` when an input file named by the same flag and path
/// as when the directory was made has changed since (its checkpoints were made from the old
/// content), naming the file; and refuse a directory made before quarry recorded fingerprints, as
/// it cannot be checked. Anything else (no directory yet, other settings, another format) is left
/// to [`crate::rundir::RunDir::open`].
pub fn check_fingerprint(out: &Path, now: &[FileFingerprint]) -> Result<()> {
    let header_path = out.join("run.json");
    let Ok(text) = std::fs::read_to_string(&header_path) else { return Ok(()) };
    let Ok(header) = serde_json::from_str::<serde_json::Value>(&text) else { return Ok(()) };
    if header["format"] != crate::rundir::FORMAT || header["version"] != crate::rundir::VERSION {
        return Ok(());
    }
    let Some(identity) = header.get("identity").and_then(|i| i.as_object()) else { return Ok(()) };
    let Some(stored) = identity.get("fingerprint") else {
        let files: Vec<String> = now.iter().map(|f| f.path.display().to_string()).collect();
        return Err(ExperimentError::RunDir {
            path: header_path,
            reason: format!(
                "made by an earlier quarry that did not record the content of its data, so its saved runs cannot be checked against {}; use a new --out",
                files.join(", ")
            ),
        });
    };
    let stored: Vec<FileFingerprint> = serde_json::from_value(stored.clone()).map_err(|e| ExperimentError::RunDir {
        path: header_path.clone(),
        reason: format!("unreadable data fingerprint ({e}); use a new --out"),
    })?;
    for f in now {
        if let Some(old) = stored.iter().find(|o| o.flag == f.flag && o.path == f.path)
            && old.blake3 != f.blake3
        {
            return Err(ExperimentError::RunDir {
                path: f.path.clone(),
                reason: format!(
                    "changed since the run directory {} was made from it ({} content fingerprint differs), so its saved runs do not fit it; use a new --out (or restore it)",
                    out.display(),
                    f.flag
                ),
            });
        }
    }
    Ok(())
}

impl ExperimentConfig {
    pub fn identity(&self) -> RunIdentity {
        RunIdentity {
            data: self.data.clone(),
            test: self.test.clone(),
            scaling: self.scaling,
            model: self.model,
            c: self.c,
            net: self.net.clone(),
            positive_class: self.positive_class.clone(),
            image: ImageConfig { features_cache: None, ..self.image.clone() },
            initial: self.initial,
            batch: self.batch,
            candidates: self.candidates,
            warmup: self.warmup,
            cold_start: self.cold_start,
            committee: self.committee,
            options: self.options.clone(),
            eval_at: self.eval_at.clone(),
            eval_every: self.eval_every,
            stream: self.stream.clone(),
            fingerprint: Vec::new(),
        }
    }

    /// A network trained by quarry (LeNet-5, MLP).
    pub fn is_network(&self) -> bool {
        self.model.is_network()
    }

    /// The flags' own values, each on its own; [`ExperimentConfig::plan`] checks them first,
    /// then the names and the combinations.
    pub(crate) fn check_settings(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(ExperimentError::setting("batch", "must be at least 1, got 0"));
        }
        if self.initial == 0 && !(self.is_network() && self.net.online) {
            return Err(ExperimentError::setting("initial",
                "must be at least 1 (the first model needs labels); only an online network (--train online) starts from 0",
            ));
        }
        if self.net.replay > 0 && !self.net.online {
            return Err(ExperimentError::setting("replay", "replays earlier labels in online training; add --train online"));
        }
        if self.net.online && !self.is_network() {
            return Err(ExperimentError::setting("train", format!("online training needs a network model (lenet5, mlp), not {}", self.model)));
        }
        if self.net.epochs == 0 || self.net.minibatch == 0 || self.net.hidden == 0 {
            return Err(ExperimentError::setting("epochs", "epochs, minibatch and hidden units must be at least 1"));
        }
        if !(self.net.lr > 0.0 && self.net.lr.is_finite()) {
            return Err(ExperimentError::setting("lr", format!("must be a positive number, got {}", self.net.lr)));
        }
        if !(0.0..1.0).contains(&self.net.dropout) {
            return Err(ExperimentError::setting("dropout", format!("must lie in [0, 1), got {}", self.net.dropout)));
        }
        if self.model == ModelKind::EfficientnetLite0 && self.image.weights.is_none() {
            return Err(ExperimentError::setting("weights", "efficientnet-lite0 needs its weights file (safetensors)"));
        }
        if self.image.train_blocks > 16 {
            return Err(ExperimentError::setting("train-blocks", format!("EfficientNet-Lite0 has 16 blocks, got {}", self.image.train_blocks)));
        }
        if self.image.train_patches && (self.model != ModelKind::EfficientnetLite0 || self.net.online) {
            return Err(ExperimentError::setting("train-patches", "trains on augmented patches of an image folder (--model efficientnet-lite0, refit)"));
        }
        if self.image.train_blocks > 0 && self.model != ModelKind::EfficientnetLite0 {
            return Err(ExperimentError::setting("train-blocks", "fine-tunes efficientnet-lite0 (an image folder with --model efficientnet-lite0)"));
        }
        check_patches(self.image.patches, self.image.resolution, self.image.patch_scale)?;
        if self.eval_every == Some(0) {
            return Err(ExperimentError::setting("eval-every", "must be at least 1"));
        }
        if self.budget < self.initial {
            return Err(ExperimentError::setting("budget",
                format!("{} is below the initial set of {} labels (--initial)", self.budget, self.initial),
            ));
        }
        self.stream.check().map_err(|e| match e {
            quarry_core::Error::InvalidParameter { name, reason } => ExperimentError::Setting {
                name: ["stream-threshold", "stream-step", "stream-window"].into_iter().find(|f| *f == name).unwrap_or("stream"),
                reason,
            },
            e => ExperimentError::Core(e),
        })?;
        if self.seeds.is_empty() {
            return Err(ExperimentError::setting("seeds", "run at least one seed"));
        }
        check_distinct_seeds(&self.seeds)?;
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(ExperimentError::setting("c", format!("must be a positive number, got {}", self.c)));
        }
        if self.candidates == Some(0) {
            return Err(ExperimentError::setting("candidates", "must be at least 1 (omit it to score the whole pool)"));
        }
        if self.data.pool_size == Some(0) {
            return Err(ExperimentError::setting("pool-size", "must be at least 1"));
        }
        if let TestSpec::Fraction(f) = self.test
            && !(f > 0.0 && f < 1.0) {
                return Err(ExperimentError::setting("test-fraction", format!("must be between 0 and 1 (exclusive), got {f}")));
            }
        Ok(())
    }
}

/// Parse `--seeds`: a count `N` (seeds 0..N−1), a range `4..7` (end excluded: 4, 5, 6) or `4..=7`
/// (end included), or a comma-separated list `3,7,11` whose items may be ranges too (`7,` is seed
/// 7 alone). A seed listed twice is an error (its runs would share one place in the run directory).
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let bad = || ExperimentError::setting("seeds", format!("expected a count like 5, a range like 4..7 or 4..=7, or a list like 0,3,7; got '{s}'"));
    let seeds: Vec<u64> = if s.contains(',') {
        // A trailing comma makes a one-seed list: `--seeds 3,` is seed 3 only.
        let mut seeds = Vec::new();
        for item in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match seed_range(item, s)? {
                Some(range) => seeds.extend(range),
                None => seeds.push(item.parse::<u64>().map_err(|_| bad())?),
            }
        }
        seeds
    } else if let Some(range) = seed_range(s.trim(), s)? {
        range
    } else {
        let n: u64 = s.trim().parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(ExperimentError::setting("seeds", "run at least one seed, got 0"));
        }
        (0..n).collect()
    };
    if seeds.is_empty() {
        return Err(ExperimentError::setting("seeds", format!("'{s}' names no seed")));
    }
    check_distinct_seeds(&seeds)?;
    Ok(seeds)
}

/// `a..b` (b excluded) or `a..=b` as its seeds; `None` when `item` is not a range.
fn seed_range(item: &str, whole: &str) -> Result<Option<Vec<u64>>> {
    let Some((start, end)) = item.split_once("..") else { return Ok(None) };
    let (end, inclusive) = match end.strip_prefix('=') {
        Some(end) => (end, true),
        None => (end, false),
    };
    let number = |t: &str| {
        t.trim().parse::<u64>().map_err(|_| {
            ExperimentError::setting("seeds", format!("'{item}' in '{whole}': a range is START..END (END excluded) or START..=END, with whole numbers"))
        })
    };
    let (start, end) = (number(start)?, number(end)?);
    let seeds: Vec<u64> = if inclusive { (start..=end).collect() } else { (start..end).collect() };
    if seeds.is_empty() {
        return Err(ExperimentError::setting("seeds", format!("the range '{item}' is empty (the end of START..END is excluded: 4..5 is seed 4)")));
    }
    Ok(Some(seeds))
}

fn check_distinct_seeds(seeds: &[u64]) -> Result<()> {
    let mut sorted = seeds.to_vec();
    sorted.sort_unstable();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(ExperimentError::setting("seeds", format!("seed {} is listed twice", w[0]))),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config() -> ExperimentConfig {
        ExperimentConfig {
            data: DataSpec { path: "d.csv".into(), labels: None, label_column: Some("y".into()), pool_size: None },
            test: TestSpec::Fraction(0.3),
            scaling: Scaling::Standardize,
            model: ModelKind::Logreg,
            c: 1.0,
            net: NetConfig::default(),
            positive_class: None,
            image: ImageConfig::default(),
            initial: 10,
            batch: 10,
            budget: 100,
            candidates: None,
            warmup: 0,
            cold_start: ColdStart::Random,
            committee: CommitteeSpec::Bagging,
            strategies: vec!["random".into(), "margin".into()],
            options: StrategyOptions::default(),
            seeds: vec![0, 1],
            stop: String::new(),
            full_pool: true,
            eval_at: Vec::new(),
            eval_every: None,
            stream: StreamOptions::default(),
        }
    }

    /// A flag and a change to a valid config that makes that flag wrong.
    type BadFlag = (&'static str, Box<dyn Fn(&mut ExperimentConfig)>);

    /// The names the command line takes are the names run.json records.
    #[test]
    fn named_settings_are_their_serde_names() {
        fn check<T: Named + Serialize>() {
            for &v in T::ALL {
                assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(v.name().into()));
                assert_eq!(T::from_name(&v.name().to_uppercase().replace('-', "_")).map(T::name), Some(v.name()));
            }
            assert!(T::from_name("nope").is_none());
        }
        check::<ModelKind>();
        check::<Scaling>();
        check::<CommitteeSpec>();
        check::<ColdStart>();
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let cases: Vec<BadFlag> = vec![
            ("batch", Box::new(|c| c.batch = 0)),
            ("budget", Box::new(|c| c.budget = 5)),
            ("strategy", Box::new(|c| c.strategies = vec!["nope".into()])),
            ("strategy", Box::new(|c| c.strategies = vec!["margin".into(), "MARGIN".into()])),
            ("test-fraction", Box::new(|c| c.test = TestSpec::Fraction(1.0))),
            ("candidates", Box::new(|c| c.candidates = Some(0))),
            ("stream-window", Box::new(|c| c.stream.window = 1)),
            ("patch-scale", Box::new(|c| c.image.patch_scale = 0.0)),
            ("patch-scale", Box::new(|c| c.image.patch_scale = 1.5)),
        ];
        assert!(config().plan().is_ok());
        let mut c = config();
        c.strategies = vec!["stream_paced".into(), "stream-random".into(), "margin".into()];
        assert!(c.plan().is_ok(), "stream policies are strategies too");
        c.strategies = vec!["stream-nope".into()];
        let e = c.plan().err().unwrap().to_string();
        assert!(e.contains("margin") && e.contains("stream-paced"), "{e}");
        c.strategies = vec!["stream-paced".into(), "paced".into()];
        assert!(c.plan().is_err(), "listed twice under an alias");
        for (flag, change) in cases {
            let mut c = config();
            change(&mut c);
            let e = c.plan().err().unwrap().to_string();
            assert!(e.starts_with(flag), "{flag}: {e}");
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("quarry-config-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn fingerprint_follows_the_content_of_a_file_and_an_image_folder() {
        let d = scratch("fp");
        let csv = d.join("d.csv");
        std::fs::write(&csv, "a,y\n1,0\n2,1\n").unwrap();
        let before = FileFingerprint::of("--data", &csv).unwrap();
        assert_eq!(before, FileFingerprint::of("--data", &csv).unwrap(), "deterministic");
        assert_eq!(before.blake3.len(), 64);
        std::fs::write(&csv, "a,y\n2,1\n1,0\n").unwrap();
        assert_ne!(before.blake3, FileFingerprint::of("--data", &csv).unwrap().blake3, "rows reordered");
        let e = FileFingerprint::of("--test", &d.join("missing.csv")).unwrap_err().to_string();
        assert!(e.contains("missing.csv"), "{e}");

        let folder = d.join("images");
        for (class, file, bytes) in [("cat", "1.png", "x"), ("cat", "2.png", "y"), ("dog", "1.png", "z")] {
            std::fs::create_dir_all(folder.join(class)).unwrap();
            std::fs::write(folder.join(class).join(file), bytes).unwrap();
        }
        let fp = |_: ()| FileFingerprint::of("--data", &folder).unwrap().blake3;
        let first = fp(());
        std::fs::write(folder.join("dog/notes.txt"), "not an image").unwrap();
        assert_eq!(first, fp(()), "only the images count");
        std::fs::write(folder.join("cat/2.png"), "Y").unwrap();
        let edited = fp(());
        assert_ne!(first, edited, "an image's bytes");
        std::fs::rename(folder.join("cat/2.png"), folder.join("cat/3.png")).unwrap();
        assert_ne!(edited, fp(()), "an image's name");
    }

    #[test]
    fn a_changed_input_file_is_refused_by_name() {
        let d = scratch("check");
        let csv = d.join("digits.csv");
        std::fs::write(&csv, "a,y\n1,0\n2,1\n").unwrap();
        let now = vec![FileFingerprint::of("--data", &csv).unwrap()];
        let out = d.join("run");
        assert!(check_fingerprint(&out, &now).is_ok(), "no directory yet");
        crate::rundir::RunDir::open(&out, &config().identity().with_fingerprint(now.clone())).unwrap();
        assert!(check_fingerprint(&out, &now).is_ok(), "unchanged");

        std::fs::write(&csv, "a,y\n2,1\n1,0\n").unwrap();
        let changed = vec![FileFingerprint::of("--data", &csv).unwrap()];
        let e = check_fingerprint(&out, &changed).unwrap_err().to_string();
        assert!(e.starts_with(&csv.display().to_string()) && e.contains("changed") && e.contains("--out"), "{e}");
        // RunDir::open alone refuses it too (the fingerprint is part of the identity).
        assert!(crate::rundir::RunDir::open(&out, &config().identity().with_fingerprint(changed)).is_err());

        // Another file altogether is a change of settings: RunDir::open names the field.
        let other = vec![FileFingerprint { path: d.join("other.csv"), ..now[0].clone() }];
        assert!(check_fingerprint(&out, &other).is_ok());

        // A directory made before fingerprints were recorded cannot be checked: refused.
        let header = out.join("run.json");
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&header).unwrap()).unwrap();
        v["identity"].as_object_mut().unwrap().remove("fingerprint");
        std::fs::write(&header, v.to_string()).unwrap();
        let e = check_fingerprint(&out, &now).unwrap_err().to_string();
        assert!(e.contains("run.json") && e.contains("digits.csv") && e.contains("new --out"), "{e}");
    }

    #[test]
    fn seeds_parse_as_count_or_list() {
        assert_eq!(parse_seeds("3").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_seeds("4, 9").unwrap(), vec![4, 9]);
        assert_eq!(parse_seeds("7,").unwrap(), vec![7]);
        assert!(parse_seeds("0").is_err());
        assert!(parse_seeds("x").is_err());
    }

    #[test]
    fn seeds_parse_as_ranges_and_one_seed_can_be_named() {
        assert_eq!(parse_seeds("4..5").unwrap(), vec![4], "one seed: the end is excluded");
        assert_eq!(parse_seeds("4..7").unwrap(), vec![4, 5, 6]);
        assert_eq!(parse_seeds("4..=7").unwrap(), vec![4, 5, 6, 7]);
        assert_eq!(parse_seeds(" 2..=2 ").unwrap(), vec![2]);
        assert_eq!(parse_seeds("0..2,10").unwrap(), vec![0, 1, 10], "ranges inside a list");
        for bad in ["4..4", "5..3", "4..", "..4", "a..b", "4..=x", ","] {
            let e = parse_seeds(bad).unwrap_err().to_string();
            assert!(e.starts_with("seeds"), "{bad}: {e}");
        }
        assert!(parse_seeds("4..4").unwrap_err().to_string().contains("empty"));
        // The same seed twice would run twice into the same files of the run directory.
        assert!(parse_seeds("3,3").unwrap_err().to_string().contains("seed 3 is listed twice"));
        assert!(parse_seeds("0..3,2").is_err());
        let mut c = config();
        c.seeds = vec![1, 1];
        assert!(c.plan().err().unwrap().to_string().starts_with("seeds"));
    }
}
