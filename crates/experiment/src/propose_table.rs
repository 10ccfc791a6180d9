//! `quarry query` on a CSV table instead of an image folder: the same loop (a labels file a
//! person keeps, the next batch written to `--out`), with the table's numeric columns as features.
//!
//! Every column but the id column (`--id-column`) is a feature, and every feature cell must be a
//! number (else an error naming `file:line:column`); the table has no label column, the labels
//! live in the labels file. Features are standardized with the table's own mean and standard
//! deviation. A row is named by its id column's value (unique: a repeat is an error naming both
//! lines) or, without an id column, by its 0-based row number among the data rows. The labels
//! file is read by [`crate::labels`] exactly as for images, its first column holding row names.
//!
//! With fewer than two classes labeled the batch is a cold start (k-means++ seeding on the
//! standardized features of the open rows); after that a [`Session`] over the features with
//! logistic regression or an MLP, every answer taught at once, proposes `query(k)` and the model's
//! guess for each pick. `--out` is checked and written by [`crate::propose`]'s functions, so it
//! follows the same rules as for images, and the data file is never a target.

use crate::config::{ModelKind, NetConfig};
use crate::labels::{normalize_file, read_labels};
use crate::propose::{Pick, Proposal, QuerySpec, answers_to_teach, check_out, cold_start, committee_if_needed, guessed_picks, write_batch};
use crate::{ExperimentError, Result};
use quarry_core::{Matrix, ScoreKind, Session, SessionSettings};
use quarry_models::nn::OptimizerKind;
use quarry_models::{LogisticRegressionLearner, LogisticRegressionParams, NetParams};
use quarry_strategies::StrategyOptions;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What `quarry query` on a table was asked.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// The CSV table: a header line, then one row per sample.
    pub data: PathBuf,
    /// `file,label` lines (see [`crate::labels`]); the first column holds a row's name. Missing:
    /// no labels yet.
    pub labels: PathBuf,
    /// The column naming the rows; `None`: rows are named by their 0-based number.
    pub id_column: Option<String>,
    /// `logreg` or `mlp`.
    pub model: ModelKind,
    pub strategy: String,
    pub options: StrategyOptions,
    pub batch: usize,
    /// Logistic regression's inverse regularization strength.
    pub c: f64,
    /// The MLP's passes over the labels, hidden units, dropout and Adam's learning rate.
    pub epochs: usize,
    pub hidden: usize,
    pub dropout: f32,
    pub lr: f32,
    pub seed: u64,
    /// The classes, in this order (`--classes`); `None`: every label used, sorted.
    pub classes: Option<Vec<String>>,
}

impl TableSpec {
    /// A spec with the defaults `quarry query` uses for a table: logistic regression, margin,
    /// batches of 20, an MLP of 64 hidden units trained 100 epochs at 0.01 when asked for.
    pub fn new(data: impl Into<PathBuf>, labels: impl Into<PathBuf>) -> Self {
        TableSpec {
            data: data.into(),
            labels: labels.into(),
            id_column: None,
            model: ModelKind::Logreg,
            strategy: "margin".into(),
            options: StrategyOptions::default(),
            batch: 20,
            c: 1.0,
            epochs: 100,
            hidden: 64,
            dropout: 0.0,
            lr: 0.01,
            seed: 0,
            classes: None,
        }
    }

    /// The image spec whose `--out` rules apply here too (no weights, cache or image folder).
    fn out_spec(&self) -> QuerySpec {
        QuerySpec {
            folder: PathBuf::new(),
            labels: self.labels.clone(),
            weights: PathBuf::new(),
            resolution: 0,
            patches: 0,
            patch_scale: 0.0,
            train_patches: false,
            strategy: self.strategy.clone(),
            options: self.options.clone(),
            batch: self.batch,
            c: self.c,
            seed: self.seed,
            features_cache: None,
            classes: self.classes.clone(),
        }
    }
}

/// A table read for `quarry query`.
#[derive(Debug, Clone)]
pub struct Table {
    /// Each row's name: its id, or its 0-based row number.
    pub names: Vec<String>,
    /// The feature columns' names, in file order.
    pub columns: Vec<String>,
    /// `[rows, columns]`, standardized per column with the table's mean and standard deviation
    /// (a constant column is only centered).
    pub features: Matrix,
}

/// Reads the table at `path`: every column but `id_column` is a numeric feature.
pub fn read_table(path: &Path, id_column: Option<&str>) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::setting("data", format!("{}: cannot read: {e}", path.display())))?;
    let at = |line: u64, what: String| ExperimentError::setting("data", format!("{}:{line}: {what}", path.display()));
    // The line a record is written on (the csv crate counts from the end of the previous record).
    let newlines: Vec<usize> = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
    let line_of = |pos: Option<&csv::Position>| -> u64 {
        let Some(pos) = pos else { return 0 };
        let mut i = pos.byte() as usize;
        while i < bytes.len() && matches!(bytes[i], b'\n' | b'\r') {
            i += 1;
        }
        newlines.partition_point(|&n| n < i) as u64 + 1
    };
    let csv_error = |e: csv::Error| {
        let line = line_of(e.position());
        let why = match e.kind() {
            csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
            _ => e.to_string(),
        };
        at(line, why)
    };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(bytes.as_slice());
    let mut record = csv::StringRecord::new();
    let clean = |f: &str| f.trim_matches(|c: char| c == '\u{feff}' || c.is_whitespace()).to_string();
    // The header: the first line that is not blank.
    let header: Vec<String> = loop {
        if !reader.read_record(&mut record).map_err(csv_error)? {
            return Err(ExperimentError::setting("data", format!("{}: empty (expected a header line naming the columns)", path.display())));
        }
        let fields: Vec<String> = record.iter().map(clean).collect();
        if !fields.iter().all(|f| f.is_empty()) {
            break fields;
        }
    };
    let id = match id_column {
        Some(name) => {
            let found: Vec<usize> = header.iter().enumerate().filter(|(_, h)| *h == name.trim()).map(|(i, _)| i).collect();
            match found[..] {
                [i] => Some(i),
                [] => {
                    return Err(ExperimentError::setting("id-column",
                        format!("{}: no column {name:?} (columns: {})", path.display(), header.join(", ")),
                    ));
                }
                _ => return Err(ExperimentError::setting("id-column", format!("{}: column {name:?} appears more than once", path.display()))),
            }
        }
        None => None,
    };
    let columns: Vec<String> = header.iter().enumerate().filter(|(i, _)| Some(*i) != id).map(|(_, h)| h.clone()).collect();
    if columns.is_empty() {
        return Err(ExperimentError::setting("data", format!("{}: no feature columns besides the id column", path.display())));
    }
    let mut names = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut values: Vec<f32> = Vec::new();
    while reader.read_record(&mut record).map_err(csv_error)? {
        let line = line_of(record.position());
        let fields: Vec<String> = record.iter().map(clean).collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        if fields.len() != header.len() {
            return Err(at(line, format!("{} fields, the header has {}", fields.len(), header.len())));
        }
        for (c, value) in fields.iter().enumerate() {
            if Some(c) == id {
                continue;
            }
            match value.parse::<f32>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    let hint = if id.is_none() { " (every column is a feature; name the rows' column with --id-column)" } else { "" };
                    return Err(ExperimentError::setting("data", format!(
                        "{}:{line}:{}: column {:?}: {value:?} is not a number{hint}",
                        path.display(),
                        c + 1,
                        header[c]
                    )));
                }
            }
        }
        let name = match id {
            Some(i) => {
                let key = normalize_file(&fields[i]);
                if key.is_empty() {
                    return Err(at(line, format!("the id column {:?} is empty", header[i])));
                }
                if let Some(first) = seen.insert(key.clone(), line) {
                    return Err(at(line, format!("id {:?} repeats line {first}: the id column {:?} must name each row once", fields[i], header[i])));
                }
                key
            }
            None => names.len().to_string(),
        };
        names.push(name);
    }
    if names.is_empty() {
        return Err(ExperimentError::setting("data", format!("{}: no rows after the header", path.display())));
    }
    let (rows, cols) = (names.len(), columns.len());
    for c in 0..cols {
        let mean = (0..rows).map(|r| f64::from(values[r * cols + c])).sum::<f64>() / rows as f64;
        let var = (0..rows).map(|r| (f64::from(values[r * cols + c]) - mean).powi(2)).sum::<f64>() / rows as f64;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        for r in 0..rows {
            let v = &mut values[r * cols + c];
            *v = ((f64::from(*v) - mean) / std) as f32;
        }
    }
    let features = Matrix::new(values, rows, cols)?;
    Ok(Table { names, columns, features })
}

/// Why `spec`'s model cannot make scores of `kind` (`None`: it can).
fn cannot_make(spec: &TableSpec, kind: ScoreKind) -> Option<String> {
    match kind {
        ScoreKind::McSamples if spec.model != ModelKind::Mlp => {
            Some("Monte-Carlo dropout samples need a network with dropout (--model mlp with --dropout above 0)".into())
        }
        ScoreKind::McSamples if spec.dropout <= 0.0 => Some("Monte-Carlo dropout samples need --dropout above 0".into()),
        ScoreKind::Patches => Some("predictions of augmented patches need an image folder as --data, not a table".into()),
        _ => None,
    }
}

/// Checks the settings that need no file: batch, model, strategy and what it needs.
fn check_settings(spec: &TableSpec) -> Result<Box<dyn quarry_core::Strategy>> {
    if spec.batch == 0 {
        return Err(ExperimentError::setting("batch", "must be at least 1"));
    }
    if !matches!(spec.model, ModelKind::Logreg | ModelKind::Mlp) {
        return Err(ExperimentError::setting("model", format!("{} cannot run on a table: use logreg or mlp", spec.model)));
    }
    let strategy = quarry_strategies::by_name_with(&spec.strategy, &spec.options).map_err(|e| ExperimentError::setting("strategy", e.to_string()))?;
    for kind in strategy.needs().kinds() {
        if let Some(why) = cannot_make(spec, kind) {
            return Err(ExperimentError::setting("strategy", format!("{} needs {} scores: {why}", strategy.name(), kind.name())));
        }
    }
    Ok(strategy)
}

/// Checks `--out` before any work, as [`check_out`] does for images, and also refuses the data
/// file. Returns the file to write.
pub fn check_table_out(spec: &TableSpec, out: &Path) -> Result<PathBuf> {
    if let (Ok(o), Ok(d)) = (std::fs::canonicalize(out), std::fs::canonicalize(&spec.data))
        && o == d
    {
        return Err(ExperimentError::setting("out",
            format!("{}: is the data file (--data {}); quarry never writes it: write the batch to another file", out.display(), spec.data.display()),
        ));
    }
    check_out(&spec.out_spec(), out)
}

/// Writes the batch atomically, as [`write_batch`] does for images.
pub fn write_table_batch(spec: &TableSpec, out: &Path, target: &Path, picks: &[Pick]) -> Result<()> {
    write_batch(&spec.out_spec(), out, target, picks)
}

/// The next `spec.batch` rows of the table to label.
pub fn propose_table(spec: &TableSpec) -> Result<Proposal> {
    let strategy = check_settings(spec)?;
    let table = read_table(&spec.data, spec.id_column.as_deref())?;
    let index: HashMap<&str, usize> = table.names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let given = read_labels(&spec.labels, spec.classes.as_deref()).map_err(|e| ExperimentError::setting("labels", e.to_string()))?;
    let mut answers: HashMap<usize, Option<String>> = HashMap::new();
    for a in &given.answers {
        let Some(&row) = index.get(a.file.as_str()) else {
            let named = match &spec.id_column {
                Some(c) => format!("rows are named by the column {c:?}"),
                None => format!("rows are named by their number, 0 to {}, or by --id-column", table.names.len() - 1),
            };
            return Err(ExperimentError::setting("labels",
                format!("{}:{}: {} is not a row of the table {} ({named})", spec.labels.display(), a.line, a.file, spec.data.display()),
            ));
        };
        answers.insert(row, a.label.clone());
    }
    let class_counts = given.class_counts();
    let classes_labeled = class_counts.iter().filter(|&&n| n > 0).count();
    let labeled = answers.values().filter(|a| a.is_some()).count();
    let impossible = answers.len() - labeled;
    let open: Vec<usize> = (0..table.names.len()).filter(|i| !answers.contains_key(i)).collect();
    let mut proposal = Proposal {
        picks: Vec::new(),
        how: String::new(),
        labeled,
        impossible,
        unanswered: open.len(),
        classes: given.classes,
        class_counts,
        corrections: given.corrections,
        repeats: given.repeats,
        skipped: Vec::new(),
    };
    if open.is_empty() {
        proposal.how = if impossible > 0 {
            format!("nothing left to ask: every row is labeled or marked impossible to label ({impossible} marked)")
        } else {
            "nothing left to ask: every row is labeled".into()
        };
        return Ok(proposal);
    }
    let k = spec.batch.min(open.len());
    let names = &table.names;
    if classes_labeled < 2 {
        // Cold start: diverse rows by k-means++ seeding on the standardized features of the open rows.
        proposal.picks = cold_start(&table.features, &open, k, spec.seed, names);
        proposal.how = format!("cold start: k-means++ on the standardized features ({classes_labeled} class(es) labeled; a model needs 2)");
        return Ok(proposal);
    }

    let taught = answers_to_teach(&answers, &proposal.classes);
    let n_classes = proposal.classes.len();
    let base: Box<dyn quarry_core::Learner> = match spec.model {
        ModelKind::Mlp => Box::new(
            NetParams::mlp(table.features.cols(), spec.hidden, n_classes)
                .dropout(spec.dropout)
                .optimizer(OptimizerKind::adam(spec.lr))
                .epochs(spec.epochs)
                .batch_size(NetConfig::default().minibatch)
                .seed(spec.seed)
                .build()?,
        ),
        _ => Box::new(LogisticRegressionLearner::new(LogisticRegressionParams::new().c(spec.c))),
    };
    let learner = committee_if_needed(base, strategy.as_ref(), &spec.options, spec.seed)?;
    let settings = SessionSettings { mc_draws: spec.options.mc_draws, ..SessionSettings::seeded(spec.seed) };
    let mut session = Session::new(&table.features, n_classes, learner, strategy, settings);
    session.teach(&taught)?;
    proposal.picks = guessed_picks(&session, k, &proposal.classes, names)?;
    proposal.how = format!("{} on {} fitted to {labeled} labels in {classes_labeled} classes", spec.strategy, spec.model);
    Ok(proposal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("quarry-propose-table-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rows_are_named_by_id_or_number_and_standardized() {
        let d = scratch("read");
        let f = d.join("t.csv");
        std::fs::write(&f, "\u{feff}id,x,y\n\nr1,1,5\nr2,3,5\n").unwrap();
        let t = read_table(&f, Some("id")).unwrap();
        assert_eq!(t.names, ["r1", "r2"]);
        assert_eq!(t.columns, ["x", "y"]);
        assert_eq!(t.features.row(0), [-1.0, 0.0]);
        let e = read_table(&f, None).unwrap_err().to_string();
        assert!(e.contains("t.csv:3:1: column \"id\": \"r1\" is not a number") && e.contains("--id-column"), "{e}");
        std::fs::write(&f, "x,y\n1,2\n3,4\n").unwrap();
        assert_eq!(read_table(&f, None).unwrap().names, ["0", "1"]);
        let e = read_table(&f, Some("id")).unwrap_err().to_string();
        assert!(e.starts_with("id-column: ") && e.contains("no column \"id\""), "{e}");
        std::fs::write(&f, "id,x\na,1\nb,2\na,3\n").unwrap();
        let e = read_table(&f, Some("id")).unwrap_err().to_string();
        assert!(e.contains("t.csv:4: id \"a\" repeats line 2"), "{e}");
        std::fs::remove_dir_all(&d).ok();
    }
}
