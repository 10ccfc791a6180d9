//! `quarry`: the command-line face of the quarry libraries. Only argument parsing and wiring
//! live here; everything it does is a library call a Rust user can make too.

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use quarry_experiment::report::Spread;
use quarry_experiment::{ColdStart, ModelKind, Named, CommitteeSpec, DataSpec, ExperimentConfig, ImageConfig, NetConfig, Scaling, TestSpec, parse_seeds, simulate};
use quarry_strategies::StrategyOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "quarry", version, about = "Active learning: spend a labeling budget on the samples that teach a model most.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate active learning with a ground-truth oracle and compare strategies over seeds.
    ///
    /// Each (strategy, seed) run starts from the same random initial set, then repeatedly fits
    /// the model on its labels, records test accuracy, and queries the next batch. Writes
    /// curves.csv, summary.json and curves.svg to --out; a second invocation with the same
    /// --out continues the runs saved there instead of restarting them. A `stream-*` strategy runs
    /// stream-based selective sampling instead: the pool arrives one sample at a time in a seeded
    /// order and the policy queries or passes each (stream.csv: how the labels were spread).
    Simulate(Box<SimulateArgs>),
    /// List every query strategy: the name --strategy takes, its family, the scores it needs and its paper.
    Strategies,
    /// Classify images with a pretrained network: each image's top-5 ImageNet class ids with probabilities.
    Predict(PredictArgs),
    /// Membership query synthesis on a built-in 2-D problem: synthesizers construct the points to
    /// ask about, an oracle that knows the true function labels them, and the runs are compared
    /// over seeds. Writes curves.csv, summary.json, curves.svg, queries.csv and queries.svg
    /// (the true and learned boundaries with the initial points and the queries) to --out.
    Synthesize(SynthesizeArgs),
    /// Real use: the next images to label in a folder of unlabeled images (and its sub-folders).
    /// Reads the labels a person has given so far (--labels, `file,label` lines; `-` marks an
    /// image impossible to label; a later line for the same file corrects it; a missing file
    /// means none yet), fits a softmax head on the pretrained EfficientNet-Lite0's features and
    /// lets the strategy (AIFT by default) pick from the images not yet answered; with fewer than
    /// two classes labeled, k-means++ on the embeddings picks a diverse cold-start batch. Prints
    /// the batch and writes it to --out as `file,label,guess,probability` lines: fill in each
    /// label and append the lines to the labels file. Nothing is written to the labels file, and
    /// no file given is overwritten unless it is quarry's own (an earlier batch whose answers were
    /// appended, a feature cache). With a CSV table as --data, its rows are the samples instead
    /// (named by --id-column or by row number; every other column a numeric feature) and
    /// logistic regression or an MLP (--model) is fitted on the labeled rows.
    Query(QueryArgs),
    /// Your model's scores in, the batch out: reads what the strategy needs from files any
    /// framework can write (.npy, memory-mapped: f2/f4/f8, little-endian, C order; or CSV of
    /// numbers with an optional header) and writes the chosen rows, best first, as `index,score`
    /// lines to --out (stdout without it). Row i of every file is sample i; rows listed in
    /// --labeled are never chosen. Random draws come from the seed's strategy stream
    /// (`seeded_rng(seed, STRATEGY << 32)`), so a seed fixes the batch.
    Select(SelectArgs),
}

#[derive(Args)]
struct SelectArgs {
    /// The query strategy (see `quarry strategies`; those that refit a model cannot run here).
    #[arg(long)]
    strategy: String,
    /// How many rows to choose.
    #[arg(long, value_name = "K")]
    batch: usize,
    /// Class probabilities, [n, classes] (.npy or CSV); each row sums to 1 within 1e-4.
    #[arg(long, value_name = "FILE")]
    probabilities: Option<PathBuf>,
    /// Embeddings (e.g. the last layer's input), [n, dim] (.npy or CSV).
    #[arg(long, value_name = "FILE")]
    embeddings: Option<PathBuf>,
    /// MC-dropout samples, [draws, n, classes] (.npy).
    #[arg(long, value_name = "FILE")]
    mc_samples: Option<PathBuf>,
    /// The rows already labeled: row indices, one per line, or a 1-D integer .npy.
    #[arg(long, value_name = "FILE")]
    labeled: Option<PathBuf>,
    /// Seed of the strategy's random draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Renormalize probability rows that do not sum to 1 instead of refusing them (negative values are still refused).
    #[arg(long)]
    normalize: bool,
    /// Where the `index,score` lines go (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn run_select(a: SelectArgs) -> Result<()> {
    use quarry_experiment::select::{SelectSpec, check_out, picks_csv, select};
    let spec = SelectSpec {
        strategy: a.strategy,
        batch: a.batch,
        probabilities: a.probabilities,
        embeddings: a.embeddings,
        mc_samples: a.mc_samples,
        labeled: a.labeled,
        seed: a.seed,
        normalize: a.normalize,
    };
    if let Some(out) = &a.out {
        check_out(&spec, out)?;
    }
    let picks = select(&spec)?;
    let text = picks_csv(&picks);
    match &a.out {
        Some(out) => {
            quarry_experiment::rundir::write_atomic(out, text.as_bytes())?;
            eprintln!("wrote {} rows to {}", picks.len(), out.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

#[derive(Args)]
struct QueryArgs {
    /// A folder of PNG/JPEG images: the images in it and in its sub-folders at any depth, each
    /// named by its path relative to the folder (`x.png`, `sub/y.jpg`); folder names mean nothing.
    /// Or a CSV table (a file): its rows are the samples, every column but --id-column a numeric
    /// feature (standardized), no label column.
    #[arg(long, value_name = "DIR|CSV")]
    data: PathBuf,
    /// A table's column naming its rows (unique values); without it, a row is named by its
    /// 0-based number among the data rows. Tables only.
    #[arg(long, value_name = "NAME")]
    id_column: Option<String>,
    /// A table's model: `logreg` (logistic regression, default) or `mlp` (one hidden layer).
    /// Tables only; images use a softmax head on EfficientNet-Lite0's features.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// `--model mlp`: passes over the labels (default 100).
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// `--model mlp`: dropout rate (above 0 for the MC-dropout strategies such as bald).
    #[arg(long, value_name = "P")]
    dropout: Option<f32>,
    /// The labels given so far: `file,label` lines, `file` relative to --data (quoted fields, a
    /// repeated header, a byte-order mark, `./` and extra columns are fine; the last line for a
    /// file wins). Only read, never written.
    #[arg(long, value_name = "CSV")]
    labels: PathBuf,
    /// The classes, comma-separated: a label outside them is an error naming file:line (instead
    /// of a new class), and the classes keep this order.
    #[arg(long, value_name = "A,B,...")]
    classes: Option<String>,
    /// EfficientNet-Lite0 weights (safetensors); required with an image folder.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Images and patches are resized to R×R before the backbone.
    #[arg(long, value_name = "R", default_value_t = 96)]
    resolution: usize,
    /// The query strategy (see `quarry strategies`); default `aift` for images, `margin` for a table.
    #[arg(long)]
    strategy: Option<String>,
    /// How many images (or rows) to propose.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// AIFT: augmented patches per image (m).
    #[arg(long, value_name = "M", default_value_t = 8)]
    patches: usize,
    /// AIFT: the smallest patch crop as a fraction of the image's shorter side.
    #[arg(long, value_name = "S", default_value_t = quarry_experiment::config::DEFAULT_PATCH_SCALE)]
    patch_scale: f64,
    /// Also train the head on each labeled image's augmented patches (AIFT step 4).
    #[arg(long)]
    train_patches: bool,
    /// AIFT: fraction α of each image's patches kept by majority selection.
    #[arg(long, default_value_t = 0.25)]
    aift_alpha: f64,
    /// The head's (a table's logistic regression's) inverse regularization strength.
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep the backbone's features of the folder in this memory-mapped file between calls
    /// (rebuilt when the images, weights or resolution changed). A file there that is not a
    /// feature cache is an error, never overwritten.
    #[arg(long, value_name = "FILE")]
    features_cache: Option<PathBuf>,
    /// Where to write the proposed batch: a `file,label,guess,probability` header, then per image
    /// its file, an empty label to fill in, and the model's guess with its probability (empty
    /// during the cold start). Must not be the labels file or any file given; an earlier batch
    /// is replaced only when its filled-in answers are already in the labels file.
    #[arg(long, value_name = "CSV")]
    out: PathBuf,
}

#[derive(Args)]
struct PredictArgs {
    /// The network: `efficientnet-lite0`.
    #[arg(long, default_value = "efficientnet-lite0")]
    model: String,
    /// Its weights (safetensors, PyTorch tensor names).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// PNG or JPEG images.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TrainArg {
    Refit,
    Online,
}

/// A value parser for a setting chosen by name: the library's own names, listed in `--help`.
fn named<T: Named + Send + Sync + Clone>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(T::ALL.iter().map(|v| v.name())).map(|s| T::from_name(&s).expect("a listed name"))
}

#[derive(Args)]
struct SimulateArgs {
    /// The pool: a folder of images with one sub-folder per class (with --model efficientnet-lite0), a CSV with a header, or an IDX images file (gzip or raw) whose labels file has the
    /// standard name (…-images-idx3-ubyte… → …-labels-idx1-ubyte…) or is given by --labels.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Labels file of an IDX --data.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Name of the label column of a CSV (values may be strings; they map to classes in sorted order).
    #[arg(long, value_name = "NAME")]
    label_column: Option<String>,
    /// A separate test file of the same kind as --data.
    #[arg(long, value_name = "FILE", conflicts_with = "test_fraction")]
    test: Option<PathBuf>,
    /// Labels file of an IDX --test.
    #[arg(long, value_name = "FILE", requires = "test")]
    test_labels: Option<PathBuf>,
    /// Without --test: hold out this fraction of --data as the test set (stratified, drawn with each seed).
    #[arg(long, value_name = "F", default_value_t = 0.3)]
    test_fraction: f64,
    /// Use only the first N samples of --data as the pool.
    #[arg(long, value_name = "N")]
    pool_size: Option<usize>,
    /// Feature scaling: `auto` (IDX pixels → divide by 255; CSV → standardize: the P1 protocol),
    /// `standardize` (the pool's mean and standard deviation), `unit` (divide by 255), `none`.
    #[arg(long, value_parser = named::<Scaling>(), default_value = "auto")]
    scale: Scaling,
    /// The learner: `logreg` (multinomial logistic regression, L2), `lenet5` (CNN for 28x28 images),
    /// `mlp` (one hidden layer), or `efficientnet-lite0` (image folders: a new softmax head on the
    /// frozen ImageNet-pretrained backbone, warm-started each round).
    #[arg(long, value_parser = named::<ModelKind>(), default_value = "logreg")]
    model: ModelKind,
    /// efficientnet-lite0: the pretrained weights (safetensors).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// efficientnet-lite0: images and patches are resized to R×R before the backbone (96 is ~5× faster than 224).
    #[arg(long, value_name = "R", default_value_t = 96)]
    resolution: usize,
    /// efficientnet-lite0: fine-tune the last K of its 16 blocks and a new head after each query
    /// (SGD with momentum, the head at 10× the backbone's --lr, --epochs passes over the labels,
    /// continuing from the current weights); the frozen part's output is computed once per image.
    /// 0: a softmax head on the frozen backbone's pooled features.
    #[arg(long, value_name = "K", default_value_t = 0)]
    train_blocks: usize,
    /// efficientnet-lite0: keep the frozen backbone's features of the image folder in this
    /// memory-mapped file; later runs read it instead of running the backbone (rebuilt when the
    /// images, weights or resolution changed).
    #[arg(long, value_name = "FILE")]
    features_cache: Option<PathBuf>,
    /// efficientnet-lite0: refits also train on each labeled image's --patches augmented patches
    /// (the ones it was scored on, drawn once per image and seed), as AIFT fine-tunes on the labeled candidates' patches; applies to
    /// every strategy of the run, so the comparison stays fair.
    #[arg(long)]
    train_patches: bool,
    /// AIFT: augmented patches per candidate (m).
    #[arg(long, value_name = "M", default_value_t = 8)]
    patches: usize,
    /// AIFT: the smallest patch crop as a fraction of the image's shorter side (crops are drawn
    /// from this to 1; 1 keeps the whole image and varies only flips and rotations).
    #[arg(long, value_name = "S", default_value_t = quarry_experiment::config::DEFAULT_PATCH_SCALE)]
    patch_scale: f64,
    /// Network training after each query: `refit` (--epochs passes over every label, continuing from
    /// the current weights) or `online` (one Adam step on just the new batch; P2).
    #[arg(long, value_enum, default_value = "refit")]
    train: TrainArg,
    /// Network: passes over the labeled set per round in refit mode.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Network: Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Network: dropout before each fully connected layer (the Bayesian strategies need > 0).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// MLP hidden units.
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Network: minibatch size in refit mode (online mode steps on each queried batch).
    #[arg(long, default_value_t = 64)]
    minibatch: usize,
    /// Online mode: replay this many earlier labels (drawn at random) with each new batch.
    #[arg(long, default_value_t = 0)]
    replay: usize,
    /// How the initial set is drawn: `random`, or `kmeans-pp` (k-means++ seeding in the feature /
    /// embedding space: a diverse cold start).
    #[arg(long, value_parser = named::<ColdStart>(), default_value = "random")]
    cold_start: ColdStart,
    /// Random warm start: query at random until N labels, then use the strategy (a cold-start fix).
    #[arg(long, value_name = "N", default_value_t = 0)]
    warmup: usize,
    /// One-vs-rest: this label value becomes the positive class, all others the negative one
    /// (the summary then reports balanced accuracy and the positive class's recall).
    #[arg(long, value_name = "LABEL")]
    positive_class: Option<String>,
    /// Score the test set only at these label counts (comma-separated) …
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    eval_at: Vec<usize>,
    /// … and at every multiple of N labels (default: every round; first and last are always scored).
    #[arg(long, value_name = "N")]
    eval_every: Option<usize>,
    /// Inverse L2 strength of logreg (scikit-learn's C).
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    /// Strategies to compare, comma-separated (see `quarry strategies`; `_` and `-` are the same).
    #[arg(long, value_name = "LIST", value_delimiter = ',', required = true)]
    strategy: Vec<String>,
    /// Size of the random initial labeled set (redrawn until it holds two classes).
    #[arg(long, default_value_t = 10)]
    initial: usize,
    /// Labels queried per round.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Total labels, initial set included.
    #[arg(long)]
    budget: usize,
    /// Seeds: a count N (seeds 0..N-1), a range (`4..7`: 4, 5, 6; `4..=7` includes 7) or a
    /// comma-separated list (`3,7`; `7,` is seed 7 alone).
    #[arg(long, default_value = "1")]
    seeds: String,
    /// Exactly this one seed (`--seeds 4` means four seeds, 0..3).
    #[arg(long, value_name = "S", conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Score only this many random unlabeled candidates per round (default: the whole pool).
    #[arg(long, value_name = "M")]
    candidates: Option<usize>,
    /// Information-density exponent β (density-weighted strategies).
    #[arg(long, default_value_t = 1.0)]
    beta: f64,
    /// How the query-by-committee strategies build their committee: `bagging` (copies of the model
    /// on bootstrap resamples) or `mixed` (different learner kinds — logistic regression at C, C/10,
    /// 10·C … alternating with MLPs — each on every label).
    #[arg(long, value_parser = named::<CommitteeSpec>(), default_value = "bagging")]
    committee: CommitteeSpec,
    /// Members of a query-by-committee / query-by-bagging committee.
    #[arg(long, default_value_t = 5)]
    committee_size: usize,
    /// Monte-Carlo dropout passes T for the Bayesian strategies.
    #[arg(long, default_value_t = 20)]
    mc_draws: usize,
    /// Two-step strategies keep the PREFILTER × batch most uncertain candidates, then diversify.
    #[arg(long, default_value_t = 10)]
    prefilter: usize,
    /// Stopping rules besides the budget, comma-separated NAME[:THRESHOLD]: stabilizing-predictions[:0.99]
    /// (κ of successive models on a stop set, 3 rounds), max-uncertainty[:0.05], overall-uncertainty[:0.1],
    /// batch-accuracy[:1.0] (the new batch was already classified right).
    #[arg(long, value_name = "RULES", default_value = "")]
    stop: String,
    /// stream-fixed-uncertainty: query an arrival whose normalized uncertainty, (1 − max p)/(1 − 1/K), is at least this.
    #[arg(long, value_name = "U", default_value_t = 0.5)]
    stream_threshold: f64,
    /// stream-variable-uncertainty: the threshold's adjusting step s (Žliobaitė et al. 2014).
    #[arg(long, value_name = "S", default_value_t = 0.01)]
    stream_step: f64,
    /// Stream policies: arrivals in stream-paced's quantile window, and the memory of
    /// stream-variable-uncertainty's spending estimate.
    #[arg(long, value_name = "W", default_value_t = 100)]
    stream_window: usize,
    /// AIFT: fraction α of each candidate's augmented patches kept by majority selection.
    #[arg(long, default_value_t = 0.25)]
    aift_alpha: f64,
    /// AIFT: sample the batch from the top ω × batch candidates with probability ∝ score (outlier-robust).
    #[arg(long, value_name = "OMEGA")]
    aift_sample_top: Option<usize>,
    /// Skip the reference fit on the whole labeled pool.
    #[arg(long)]
    no_full_pool: bool,
    /// The run directory (created, or continued if it holds a run with the same settings).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The libraries log through `tracing`: warnings and their notes (what a cache did), on stderr
    // (--quiet only hides the progress bar).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .event_format(PlainLines)
        .init();
    let result = match cli.command {
        Command::Simulate(args) => run_simulate(*args),
        Command::Strategies => {
            print_strategies();
            Ok(())
        }
        Command::Predict(args) => run_predict(args),
        Command::Synthesize(args) => run_synthesize(args),
        Command::Query(args) => run_query(args),
        Command::Select(args) => run_select(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// A log line as the rest of the CLI writes to stderr: `warning: …` / `error: …`, or the message alone.
struct PlainLines;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for PlainLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        match *event.metadata().level() {
            tracing::Level::ERROR => write!(writer, "error: ")?,
            tracing::Level::WARN => write!(writer, "warning: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `e` and its causes in one line, each said once: many errors already write their cause into
/// their own message (`path: Permission denied (os error 13)`) and also return it as `source()`,
/// so a cause whose text is already in the line is not repeated.
fn error_message(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = as_flag(cause).unwrap_or_else(|| cause.to_string());
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The libraries name a wrong setting as they know it (`batch: …`); said here as the flag that
/// sets it (`--batch: …`) when the command line has one.
fn as_flag(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    use quarry_experiment::ExperimentError;
    let (name, reason) = match cause.downcast_ref::<ExperimentError>() {
        Some(ExperimentError::Setting { name, reason }) => (*name, reason),
        Some(ExperimentError::Core(quarry_core::Error::InvalidParameter { name, reason })) => (name.as_str(), reason),
        _ => match cause.downcast_ref::<quarry_core::Error>() {
            Some(quarry_core::Error::InvalidParameter { name, reason }) => (name.as_str(), reason),
            _ => return None,
        },
    };
    // Some settings are set by several flags at once ("hidden/epochs").
    let flags: Vec<String> = name.split('/').map(|n| format!("--{n}")).collect();
    let known = |f: &str| {
        use clap::CommandFactory as _;
        let cli = Cli::command();
        let long = &f[2..];
        cli.get_subcommands().any(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
    };
    flags.iter().all(|f| known(f)).then(|| format!("{}: {reason}", flags.join("/")))
}

/// `--seed S` (that one seed) or `--seeds` (a count, a range or a list).
fn seeds(seed: Option<u64>, seeds: &str) -> Result<Vec<u64>> {
    Ok(match seed {
        Some(s) => vec![s],
        None => parse_seeds(seeds)?,
    })
}

/// One strategy's line of the summary table.
struct TableRow<'a> {
    strategy: &'a str,
    aulc: &'a Spread,
    final_accuracy: &'a Spread,
    labels_to_target: Option<usize>,
    efficiency: Option<f64>,
    seconds_per_round: f64,
}

impl<'a> TableRow<'a> {
    /// A strategy's line from its summary (pool, stream and synthesis runs alike).
    fn of(s: &'a quarry_experiment::report::StrategySummary) -> Self {
        TableRow {
            strategy: &s.strategy,
            aulc: &s.aulc,
            final_accuracy: &s.final_accuracy,
            labels_to_target: s.labels_to_target,
            efficiency: s.label_efficiency.as_ref().and_then(|e| e.ratio),
            seconds_per_round: s.seconds_per_round,
        }
    }
}

/// The summary table. With one seed there is no spread to print (`± 0.0000` would claim one).
/// `random` names the baseline and `target` is its mean final accuracy; without it (the baseline
/// did not run) there are no labels-to-target and efficiency columns, and a line says why.
fn summary_table(first: &str, rows: &[TableRow], seeds: usize, random: &str, target: Option<f64>, final_spread: bool, digits: usize) -> String {
    use std::fmt::Write as _;
    let width = rows.iter().map(|r| r.strategy.len()).chain([first.len(), 17]).max().unwrap_or(18) + 1;
    let spread = |s: &Spread| if seeds > 1 { format!("{:.4} ± {:.4}", s.mean, s.std) } else { format!("{:.4}", s.mean) };
    let (aulc, final_acc) = match (seeds > 1, final_spread) {
        (true, true) => ("AULC (mean±std)", "final acc (±std)"),
        (true, false) => ("AULC (mean±std)", "final acc"),
        (false, _) => ("AULC", "final acc"),
    };
    let aulc_w = if seeds > 1 { 17 } else { 6 };
    let final_w = if seeds > 1 && final_spread { 17 } else { 9 };
    let mut out = format!("{first:<width$} {aulc:>aulc_w$} {final_acc:>final_w$}");
    if target.is_some() {
        let _ = write!(out, " {:>8} {:>10}", "to tgt", "efficiency");
    }
    let _ = writeln!(out, " {:>9}", "s/round");
    for r in rows {
        let final_text = if final_spread { spread(r.final_accuracy) } else { format!("{:.4}", r.final_accuracy.mean) };
        let _ = write!(out, "{:<width$} {:>aulc_w$} {final_text:>final_w$}", r.strategy, spread(r.aulc));
        if target.is_some() {
            let to_target = r.labels_to_target.map_or("never".into(), |n| n.to_string());
            let eff = r.efficiency.map_or("—".into(), |e| format!("{e:.2}x"));
            let _ = write!(out, " {to_target:>8} {eff:>10}");
        }
        let _ = writeln!(out, " {:>9.digits$}", r.seconds_per_round);
    }
    match target {
        Some(t) => {
            let _ = writeln!(out, "target: {random}'s mean final accuracy {t:.4}");
        }
        None => {
            let _ = writeln!(out, "no labels-to-target or label efficiency: they are measured against {random}, which is not among the strategies");
        }
    }
    out
}

/// "1 seed", "5 seeds".
fn seeds_phrase(n: usize) -> String {
    if n == 1 { "1 seed".into() } else { format!("{n} seeds") }
}

fn run_query(a: QueryArgs) -> Result<()> {
    if a.data.is_file() {
        return run_query_table(a);
    }
    use quarry_experiment::propose::{QuerySpec, check_out, propose, write_batch};
    let table_only = [("id-column", a.id_column.is_some()), ("model", a.model.is_some()), ("epochs", a.epochs.is_some()), ("dropout", a.dropout.is_some())];
    if let Some((flag, _)) = table_only.iter().find(|(_, given)| *given) {
        anyhow::bail!("--{flag}: applies to a CSV table as --data, not to an image folder ({})", a.data.display());
    }
    let Some(weights) = a.weights else {
        anyhow::bail!("--weights: required with an image folder as --data (EfficientNet-Lite0 weights, safetensors)");
    };
    let classes = a.classes.as_deref().map(quarry_experiment::labels::parse_classes).transpose()?;
    let spec = QuerySpec {
        folder: a.data,
        labels: a.labels,
        weights,
        resolution: a.resolution,
        patches: a.patches,
        patch_scale: a.patch_scale,
        train_patches: a.train_patches,
        strategy: a.strategy.unwrap_or_else(|| "aift".into()),
        options: StrategyOptions { aift_alpha: a.aift_alpha, ..StrategyOptions::default() },
        batch: a.batch,
        c: a.c,
        seed: a.seed,
        features_cache: a.features_cache,
        classes,
    };
    // Before any work (and before the features cache is written): where the batch goes.
    let target = check_out(&spec, &a.out)?;
    let p = propose(&spec)?;
    report_proposal(&p, &spec.labels);
    write_batch(&spec, &a.out, &target, &p.picks)?;
    print_batch(&p, "images", &a.out, &spec.labels);
    Ok(())
}

/// `quarry query` on a CSV table: rows instead of images, logistic regression or an MLP on the
/// standardized columns instead of the backbone's features.
fn run_query_table(a: QueryArgs) -> Result<()> {
    use quarry_experiment::propose_table::{TableSpec, check_table_out, propose_table, write_table_batch};
    let image_only = [("weights", a.weights.is_some()), ("features-cache", a.features_cache.is_some()), ("train-patches", a.train_patches)];
    if let Some((flag, _)) = image_only.iter().find(|(_, given)| *given) {
        anyhow::bail!("--{flag}: applies to an image folder as --data, not to a table ({})", a.data.display());
    }
    let mut spec = TableSpec::new(a.data, a.labels);
    spec.classes = a.classes.as_deref().map(quarry_experiment::labels::parse_classes).transpose()?;
    spec.id_column = a.id_column;
    if let Some(model) = a.model.as_deref() {
        spec.model = ModelKind::parse(model)?;
    }
    if let Some(strategy) = a.strategy {
        spec.strategy = strategy;
    }
    spec.options = StrategyOptions { aift_alpha: a.aift_alpha, ..StrategyOptions::default() };
    spec.batch = a.batch;
    spec.c = a.c;
    spec.epochs = a.epochs.unwrap_or(spec.epochs);
    spec.dropout = a.dropout.unwrap_or(spec.dropout);
    spec.seed = a.seed;
    let target = check_table_out(&spec, &a.out)?;
    let p = propose_table(&spec)?;
    report_proposal(&p, &spec.labels);
    write_table_batch(&spec, &a.out, &target, &p.picks)?;
    print_batch(&p, "rows", &a.out, &spec.labels);
    Ok(())
}

/// What the labels file held, on stderr: skipped inputs, corrections, repeats, the counts and how
/// the batch was chosen.
fn report_proposal(p: &quarry_experiment::propose::Proposal, labels: &std::path::Path) {
    for s in &p.skipped {
        eprintln!("warning: {s}");
    }
    if !p.corrections.is_empty() {
        let shown: Vec<String> =
            p.corrections.iter().take(5).map(|c| format!("{} {} -> {} (line {} over line {})", c.file, c.from, c.to, c.line, c.earlier_line)).collect();
        let more = if p.corrections.len() > 5 { format!(", and {} more", p.corrections.len() - 5) } else { String::new() };
        eprintln!("{}: applied {} correction(s), the last line for a file wins: {}{more}", labels.display(), p.corrections.len(), shown.join(", "));
    }
    if p.repeats > 0 {
        eprintln!("{}: {} line(s) repeat an earlier label unchanged", labels.display(), p.repeats);
    }
    let per_class: Vec<String> = p.classes.iter().zip(&p.class_counts).map(|(c, n)| format!("{c} {n}")).collect();
    let classes = match p.class_counts.iter().filter(|&&n| n > 0).count() {
        0 if per_class.is_empty() => "no classes yet".to_string(),
        n => format!("{n} classes: {}", per_class.join(", ")),
    };
    eprintln!(
        "{} labeled ({classes}), {} marked impossible, {} unanswered; {}",
        p.labeled,
        p.impossible,
        p.unanswered,
        p.how
    );
}

/// stdout: the proposed names alone, one per line (for scripts); the guesses are in --out.
fn print_batch(p: &quarry_experiment::propose::Proposal, what: &str, out: &std::path::Path, labels: &std::path::Path) {
    for pick in &p.picks {
        println!("{}", pick.file);
    }
    if !p.picks.is_empty() {
        eprintln!(
            "wrote {} {what} to label to {}: fill in each label (or - if it cannot be labeled) and append the lines to {}",
            p.picks.len(),
            out.display(),
            labels.display()
        );
    }
}

fn run_simulate(a: SimulateArgs) -> Result<()> {
    let config = ExperimentConfig {
        data: DataSpec { path: a.data, labels: a.labels, label_column: a.label_column, pool_size: a.pool_size },
        test: match a.test {
            Some(path) => TestSpec::File { path, labels: a.test_labels },
            None => TestSpec::Fraction(a.test_fraction),
        },
        scaling: a.scale,
        model: a.model,
        c: a.c,
        net: NetConfig {
            online: matches!(a.train, TrainArg::Online),
            epochs: a.epochs,
            lr: a.lr,
            dropout: a.dropout,
            hidden: a.hidden,
            minibatch: a.minibatch,
            replay: a.replay,
        },
        warmup: a.warmup,
        committee: a.committee,
        cold_start: a.cold_start,
        positive_class: a.positive_class,
        image: ImageConfig {
            weights: a.weights,
            resolution: a.resolution,
            patches: a.patches,
            patch_scale: a.patch_scale,
            train_blocks: a.train_blocks,
            features_cache: a.features_cache,
            train_patches: a.train_patches,
        },
        eval_at: a.eval_at,
        eval_every: a.eval_every,
        initial: a.initial,
        batch: a.batch,
        budget: a.budget,
        candidates: a.candidates,
        strategies: a.strategy,
        options: StrategyOptions {
            beta: a.beta,
            committee_size: a.committee_size,
            mc_draws: a.mc_draws,
            prefilter: a.prefilter,
            aift_alpha: a.aift_alpha,
            aift_sample_top: a.aift_sample_top,
        },
        seeds: seeds(a.seed, &a.seeds)?,
        stop: a.stop,
        stream: quarry_strategies::stream::StreamOptions { threshold: a.stream_threshold, step: a.stream_step, window: a.stream_window },
        full_pool: !a.no_full_pool,
    };
    let outcome = simulate(&config, &a.out, !a.quiet)?;
    let (summaries, target) = quarry_experiment::report::summarize(&outcome.runs, &outcome.full_pool, &config);
    let rows: Vec<TableRow> = summaries
        .iter()
        .map(TableRow::of)
        .collect();
    print!("{}", summary_table("strategy", &rows, config.seeds.len(), "random", target, false, 4));
    if !outcome.full_pool.is_empty() {
        let accs: Vec<f64> = outcome.full_pool.iter().map(|f| f.accuracy).collect();
        let mean = quarry_experiment::metrics::mean(&accs);
        match accs.len() {
            1 => println!("full-pool accuracy: {mean:.4} (1 seed)"),
            n => println!("full-pool accuracy: {mean:.4} (mean over {n} seeds)"),
        }
    }
    for s in quarry_experiment::report::stream_spending(&outcome.runs, &outcome.streams) {
        let q = s.quarters_mean;
        println!(
            "{}: {:.0} of {:.0} arrivals seen, {:.1} labels spent; per quarter of the stream {:.1} / {:.1} / {:.1} / {:.1}",
            s.strategy,
            s.arrivals_seen.mean,
            quarry_experiment::metrics::mean(&s.runs.iter().map(|r| r.stream_length as f64).collect::<Vec<_>>()),
            s.labels_spent.mean,
            q[0],
            q[1],
            q[2],
            q[3]
        );
    }
    let stream = if outcome.streams.is_empty() { "" } else { ", stream.csv" };
    println!(
        "wall clock {:.2} s ({}); wrote curves.csv, queries.csv, summary.json, curves.svg{stream} to {}",
        outcome.wall_seconds,
        seeds_phrase(config.seeds.len()),
        a.out.display()
    );
    Ok(())
}

fn run_predict(a: PredictArgs) -> Result<()> {
    if a.model != "efficientnet-lite0" {
        anyhow::bail!("--model: unknown model '{}' (known: efficientnet-lite0)", a.model);
    }
    let model = quarry_models::EfficientNetLite0::load(&a.weights)?;
    let predictions = quarry_models::predict_top_k(&model, &a.images, a.top)?;
    let mut failed = 0;
    for (path, p) in a.images.iter().zip(predictions) {
        match p {
            Ok(top) => {
                // The id first (as before), then its name: "285 (0.8123) Egyptian cat".
                let classes: Vec<String> = top
                    .iter()
                    .map(|&(c, p)| match quarry_models::imagenet_class_name(c) {
                        Some(name) => format!("{c} ({p:.4}) {name}"),
                        None => format!("{c} ({p:.4})"),
                    })
                    .collect();
                println!("{}: {}", path.display(), classes.join(", "));
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} images could not be read", a.images.len());
    }
    Ok(())
}

fn print_strategies() {
    for s in quarry_strategies::catalogue() {
        let aliases = if s.aliases.is_empty() { String::new() } else { format!(" (also: {})", s.aliases.join(", ")) };
        println!("{}{aliases}\n    family: {}\n    needs:  {}\n    paper:  {}\n    {}\n", s.name, s.family, s.needs, s.paper, s.summary);
    }
    let scenarios = quarry_strategies::scenarios();
    if !scenarios.is_empty() {
        println!("Scenarios beyond pool-based sampling:\n");
        for s in scenarios {
            println!("{}\n    family: {}\n    needs:  {}\n    paper:  {}\n    {}\n", s.name, s.family, s.needs, s.paper, s.summary);
        }
    }
}

#[derive(Args)]
struct SynthesizeArgs {
    /// The 2-D problem: circle, sine, linear or ring (its true function is the oracle).
    #[arg(long, default_value = "circle")]
    problem: String,
    /// Synthesizers to compare, comma-separated: synthesis-boundary, synthesis-uncertainty,
    /// synthesis-random (the baseline of label efficiency).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "synthesis-boundary,synthesis-uncertainty,synthesis-random")]
    strategy: Vec<String>,
    /// `rbf`: logistic regression on (x, y) and an --rbf-grid² grid of Gaussian bumps; `quadratic`:
    /// logistic regression on (x, y, x², xy, y²); `mlp`: the MLP learner on (x, y).
    #[arg(long, default_value = "rbf")]
    model: String,
    /// Inverse L2 strength of the logistic regression (rbf, quadratic).
    #[arg(long, default_value_t = 100.0)]
    c: f64,
    /// Gaussian bumps per side of the rbf feature grid.
    #[arg(long, default_value_t = 8)]
    rbf_grid: usize,
    /// mlp: hidden units.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    /// mlp: passes over every label after each round (continuing from the current weights).
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// mlp: Adam learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// Random initial points (redrawn until both classes occur; the same for every synthesizer of a seed).
    #[arg(long, default_value_t = 10)]
    initial: usize,
    /// Points synthesized per round.
    #[arg(long, default_value_t = 5)]
    batch: usize,
    /// Total labels, initial set included.
    #[arg(long, default_value_t = 100)]
    budget: usize,
    /// Seeds: a count N (seeds 0..N-1), a range (`4..7`: 4, 5, 6; `4..=7` includes 7) or a
    /// comma-separated list (`3,7`; `7,` is seed 7 alone).
    #[arg(long, default_value = "5")]
    seeds: String,
    /// Exactly this one seed (`--seeds 4` means four seeds, 0..3).
    #[arg(long, value_name = "S", conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Probability that the oracle flips a label (the test set is noise-free).
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Uniform test points of the domain, labeled by the true function.
    #[arg(long, default_value_t = 5000)]
    test_size: usize,
    /// The output directory (created; an earlier synthesize run there is replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// No progress output, as for `quarry simulate` (synthesize shows none: its runs take
    /// seconds), so one flag fits both commands.
    #[arg(long, short)]
    quiet: bool,
}

fn run_synthesize(a: SynthesizeArgs) -> Result<()> {
    use quarry_experiment::synthesis::{ModelSpec, Problem, SynthesisConfig, synthesize};
    let model = match a.model.trim().to_ascii_lowercase().as_str() {
        "rbf" => ModelSpec::Rbf { grid: a.rbf_grid, c: a.c },
        "quadratic" => ModelSpec::Quadratic { c: a.c },
        "mlp" => ModelSpec::Mlp { hidden: a.hidden, epochs: a.epochs, lr: a.lr },
        other => anyhow::bail!("--model: unknown model '{other}' (known: rbf, quadratic, mlp)"),
    };
    let config = SynthesisConfig {
        problem: Problem::parse(&a.problem)?,
        strategies: a.strategy,
        model,
        initial: a.initial,
        batch: a.batch,
        budget: a.budget,
        seeds: seeds(a.seed, &a.seeds)?,
        noise: a.noise,
        test_size: a.test_size,
    };
    let outcome = synthesize(&config, &a.out)?;
    let rows: Vec<TableRow> = outcome
        .summaries
        .iter()
        .map(|s| &s.figures)
        .map(TableRow::of)
        .collect();
    print!("{}", summary_table("synthesizer", &rows, config.seeds.len(), "synthesis-random", outcome.target, true, 5));
    println!(
        "wall clock {:.2} s; wrote curves.csv, summary.json, curves.svg, queries.csv, queries.svg to {}",
        outcome.wall_seconds,
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "runs/x: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied (os error 13)");
        // The cause is in the message and is also its source: printed once.
        let e = anyhow::Error::new(Outer(io()));
        assert_eq!(error_message(&e), "runs/x: Permission denied (os error 13)");
        // A context whose cause is not in its message keeps the cause.
        let e = anyhow::Error::new(io()).context("writing runs/x/curves.csv");
        assert_eq!(error_message(&e), "writing runs/x/curves.csv: Permission denied (os error 13)");
        // A setting the library names is said as the flag that sets it.
        let e = anyhow::Error::from(quarry_experiment::ExperimentError::setting("batch", "must be at least 1, got 0"));
        assert_eq!(error_message(&e), "--batch: must be at least 1, got 0");
        let e = anyhow::Error::from(quarry_experiment::ExperimentError::setting("hidden/epochs", "must be at least 1"));
        assert_eq!(error_message(&e), "--hidden/--epochs: must be at least 1");
        let e = anyhow::Error::from(quarry_core::Error::param("MC draws", "must be at least 1"));
        assert_eq!(error_message(&e), "invalid parameter MC draws: must be at least 1", "not a flag: said as the library says it");
    }

    fn spread(v: &[f64]) -> Spread {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        Spread { mean, std: 0.0, per_seed: v.to_vec() }
    }

    #[test]
    fn one_seed_has_no_spread_and_no_baseline_no_target_columns() {
        let (a, f) = (spread(&[0.8]), spread(&[0.9]));
        let rows = [TableRow { strategy: "margin", aulc: &a, final_accuracy: &f, labels_to_target: None, efficiency: None, seconds_per_round: 0.01 }];
        let t = summary_table("strategy", &rows, 1, "random", None, false, 4);
        assert!(!t.contains('±') && !t.contains("never") && !t.contains("to tgt"), "{t}");
        assert!(t.contains("margin") && t.contains("0.8000") && t.contains("not among the strategies"), "{t}");
        let t = summary_table("strategy", &rows, 3, "random", Some(0.93), false, 4);
        assert!(t.contains("0.8000 ± 0.0000") && t.contains("never") && t.contains("random's mean final accuracy 0.9300"), "{t}");
        assert_eq!(seeds_phrase(1), "1 seed");
        assert_eq!(seeds_phrase(5), "5 seeds");
    }

    #[test]
    fn seed_names_one_seed_and_conflicts_with_seeds() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["quarry", "simulate", "--data", "d.csv", "--strategy", "random", "--budget", "20", "--out", "o"], args].concat());
        let seeds_of = |args: &[&str]| match parse(args).unwrap().command {
            Command::Simulate(a) => seeds(a.seed, &a.seeds).unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(seeds_of(&["--seed", "4"]), vec![4]);
        assert_eq!(seeds_of(&["--seeds", "4"]), vec![0, 1, 2, 3]);
        assert_eq!(seeds_of(&["--seeds", "4..5"]), vec![4]);
        assert_eq!(seeds_of(&["--seeds", "4..=7"]), vec![4, 5, 6, 7]);
        assert_eq!(seeds_of(&[]), vec![0]);
        assert!(parse(&["--seed", "4", "--seeds", "2"]).is_err());
        // synthesize takes the same seeds and -q.
        let s = Cli::try_parse_from(["quarry", "synthesize", "--out", "o", "-q", "--seed", "3"]).unwrap();
        match s.command {
            Command::Synthesize(a) => assert!(a.quiet && seeds(a.seed, &a.seeds).unwrap() == vec![3]),
            _ => unreachable!(),
        }
    }
}
