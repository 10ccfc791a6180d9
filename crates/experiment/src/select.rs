//! `quarry select`: a batch chosen from scores another framework computed. The strategy says what
//! it needs ([`quarry_core::Needs`]); those scores are read from `.npy` files (memory-mapped,
//! see [`crate::npy`]) or CSV files and handed to it as the session would, and its picks come back
//! best first.
//!
//! Rows are samples: row `i` of every file is sample `i`. The candidates are every row not listed
//! in the labeled file, as `SampleId(i)`; labeled rows are never selected. The random draws (ties,
//! k-means++ seeding, …) come from `seeded_rng(seed, streams::STRATEGY << 32)`: the stream a
//! session's first query uses, so the same seed gives the same batch.

use crate::npy::{Npy, shape_text};
use crate::{ExperimentError, Result};
use quarry_core::session::streams;
use quarry_core::{Matrix, McSamples, Pick, Probabilities, QueryContext, SampleId, ScoreKind, Scores, seeded_rng};
use quarry_strategies::StrategyOptions;
use std::path::{Path, PathBuf};

/// What `quarry select` is asked.
#[derive(Debug, Clone, Default)]
pub struct SelectSpec {
    pub strategy: String,
    pub batch: usize,
    /// Class probabilities `[n, classes]` (.npy or CSV).
    pub probabilities: Option<PathBuf>,
    /// Embeddings `[n, dim]` (.npy or CSV).
    pub embeddings: Option<PathBuf>,
    /// MC-dropout samples `[draws, n, classes]` (.npy).
    pub mc_samples: Option<PathBuf>,
    /// Row indices already labeled: one per line, or a 1-D integer .npy. Without it nothing is
    /// labeled yet (core-set then starts from a random row).
    pub labeled: Option<PathBuf>,
    pub seed: u64,
    /// Renormalize probability rows that do not sum to 1 (instead of refusing them).
    pub normalize: bool,
}

fn bad(path: &Path, reason: impl Into<String>) -> ExperimentError {
    ExperimentError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, reason.into()))
}

fn is_npy(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// A 2-D input: a memory-mapped .npy or a parsed CSV.
enum Table {
    Npy(Npy),
    Csv { path: PathBuf, data: Vec<f32>, cols: usize },
}

impl Table {
    /// Reads `path` as `[n, cols]`; `what` is how the shape is said in errors (`[n, classes]`).
    fn open(path: &Path, what: &str) -> Result<Table> {
        if is_npy(path) {
            let npy = Npy::open(path)?;
            if npy.shape.len() != 2 || !npy.dtype.is_float() {
                return Err(bad(path, format!("expected a 2-D float array {what}, found shape {} ({:?})", shape_text(&npy.shape), npy.dtype)));
            }
            Ok(Table::Npy(npy))
        } else {
            let (data, rows, cols) = read_csv(path)?;
            if rows == 0 {
                return Err(bad(path, format!("expected {what}, found no rows")));
            }
            Ok(Table::Csv { path: path.to_path_buf(), data, cols })
        }
    }
    fn path(&self) -> &Path {
        match self {
            Table::Npy(n) => n.path(),
            Table::Csv { path, .. } => path,
        }
    }
    fn rows(&self) -> usize {
        match self {
            Table::Npy(n) => n.shape[0],
            Table::Csv { data, cols, .. } => data.len() / cols,
        }
    }
    fn cols(&self) -> usize {
        match self {
            Table::Npy(n) => n.shape[1],
            Table::Csv { cols, .. } => *cols,
        }
    }
    /// The rows `rows`, in that order, row-major.
    fn gather(&self, rows: &[usize]) -> Result<Vec<f32>> {
        let c = self.cols();
        let mut out = Vec::with_capacity(rows.len() * c);
        for &r in rows {
            match self {
                Table::Npy(n) => n.extend_f32(r * c, (r + 1) * c, &mut out)?,
                Table::Csv { data, .. } => out.extend_from_slice(&data[r * c..(r + 1) * c]),
            }
        }
        Ok(out)
    }
}

/// Numbers separated by commas, an optional header line; blank lines skipped.
fn read_csv(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::io(path, e))?;
    let mut data = Vec::new();
    let (mut rows, mut cols) = (0usize, None);
    let mut first = true;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"')).collect();
        let parsed: std::result::Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        let was_first = std::mem::replace(&mut first, false);
        let values = match parsed {
            Ok(v) => v,
            Err(_) if was_first => continue, // the header
            Err(_) => {
                let (col, f) = fields.iter().enumerate().find(|(_, f)| f.parse::<f64>().is_err()).unwrap();
                return Err(bad(path, format!("line {}, column {}: '{f}' is not a number", ln + 1, col + 1)));
            }
        };
        match cols {
            None => cols = Some(values.len()),
            Some(c) if c != values.len() => {
                return Err(bad(path, format!("line {} has {} columns, the rows before it {c}", ln + 1, values.len())));
            }
            _ => {}
        }
        data.extend(values.iter().map(|&v| v as f32));
        rows += 1;
    }
    Ok((data, rows, cols.unwrap_or(0)))
}

/// Row indices, one per line (an optional header; the first field of a CSV line), or a 1-D .npy
/// of integers.
fn read_indices(path: &Path) -> Result<Vec<i64>> {
    if is_npy(path) {
        let npy = Npy::open(path)?;
        if npy.shape.len() != 1 {
            return Err(bad(path, format!("expected a 1-D array of row indices [m], found shape {}", shape_text(&npy.shape))));
        }
        return npy.to_i64();
    }
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::io(path, e))?;
    let mut out = Vec::new();
    let mut first = true;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        let field = line.split(',').next().unwrap_or("").trim().trim_matches('"');
        let was_first = std::mem::replace(&mut first, false);
        match field.parse::<i64>() {
            Ok(v) => out.push(v),
            Err(_) => match field.parse::<f64>() {
                Ok(x) if x.fract() == 0.0 => out.push(x as i64),
                _ if was_first => {}
                _ => return Err(bad(path, format!("line {}: '{field}' is not a row index", ln + 1))),
            },
        }
    }
    Ok(out)
}

/// Checks (or with `normalize`, fixes) that each row of `data` (`cols` wide) is a distribution.
/// `row_name(r)` says row `r` as the file counts it.
fn check_distributions(path: &Path, data: &mut [f32], cols: usize, normalize: bool, row_name: impl Fn(usize) -> String) -> Result<()> {
    for (r, row) in data.chunks_exact_mut(cols).enumerate() {
        if let Some((c, v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            return Err(bad(path, format!("{}, column {c} is {v}: probabilities must be finite and non-negative", row_name(r))));
        }
        let sum: f64 = row.iter().map(|&v| v as f64).sum();
        if (sum - 1.0).abs() > 1e-4 {
            if !normalize || sum <= 0.0 {
                let hint = if normalize { "" } else { " (--normalize renormalizes each row)" };
                return Err(bad(path, format!("{} sums to {sum}, not 1 within 1e-4{hint}", row_name(r))));
            }
            row.iter_mut().for_each(|v| *v = (*v as f64 / sum) as f32);
        }
    }
    Ok(())
}

/// What each kind of score is read from, for the message naming what a strategy lacks.
fn source_of(kind: ScoreKind) -> &'static str {
    match kind {
        ScoreKind::Probabilities => "--probabilities FILE ([n, classes])",
        ScoreKind::McSamples => "--mc-samples FILE ([draws, n, classes] .npy)",
        ScoreKind::Embeddings | ScoreKind::PoolEmbeddings => "--embeddings FILE ([n, dim])",
        ScoreKind::LabeledEmbeddings => "--embeddings FILE ([n, dim]; the labeled rows' embeddings are read from it)",
        ScoreKind::LabeledProbabilities => "--probabilities FILE ([n, classes]; the labeled rows' probabilities are read from it)",
        ScoreKind::GradientEmbeddings => "--probabilities FILE and --embeddings FILE (the gradient embeddings are built from both)",
        ScoreKind::Committee => "every committee member's probabilities, which quarry select does not read (use quarry simulate/query)",
        ScoreKind::Patches => "predictions of augmented image patches, which quarry select does not read (use quarry query)",
        ScoreKind::Features | ScoreKind::LabeledFeatures => {
            "the raw input features, which quarry select does not read (use quarry simulate/query)"
        }
    }
}

/// Runs the strategy on the scores in the files and returns its picks, best first
/// (`pick.id.0` is the row).
pub fn select(spec: &SelectSpec) -> Result<Vec<Pick>> {
    if spec.batch == 0 {
        return Err(ExperimentError::setting("batch", "must be at least 1"));
    }
    let strategy = quarry_strategies::by_name_with(&spec.strategy, &StrategyOptions::default())
        .map_err(|e| ExperimentError::setting("strategy", e.to_string()))?;
    let name = strategy.name().to_string();
    let needs = strategy.needs();

    // What cannot run is said before any file is read.
    if needs.what_if() {
        return Err(ExperimentError::setting(
            "strategy",
            format!("{name} refits the model with hypothetical labels: it needs a model quarry can refit: use quarry simulate/query"),
        ));
    }
    let (p, e, mc) = (spec.probabilities.is_some(), spec.embeddings.is_some(), spec.mc_samples.is_some());
    let mut lacking: Vec<&str> = needs
        .kinds()
        .filter(|&k| match k {
            ScoreKind::Probabilities => !p,
            ScoreKind::McSamples => !mc,
            ScoreKind::Embeddings | ScoreKind::PoolEmbeddings | ScoreKind::LabeledEmbeddings => !e,
            ScoreKind::LabeledProbabilities => !p,
            ScoreKind::GradientEmbeddings => !(p && e),
            _ => true,
        })
        .map(source_of)
        .collect();
    lacking.dedup();
    if !lacking.is_empty() {
        return Err(ExperimentError::setting("strategy", format!("{name} needs {}", lacking.join("; and "))));
    }
    let need = |k: ScoreKind| needs.has(k);
    let mut want_p = need(ScoreKind::Probabilities) || need(ScoreKind::GradientEmbeddings) || need(ScoreKind::LabeledProbabilities);
    let mut want_e = need(ScoreKind::Embeddings)
        || need(ScoreKind::PoolEmbeddings)
        || need(ScoreKind::LabeledEmbeddings)
        || need(ScoreKind::GradientEmbeddings);
    let mut want_mc = need(ScoreKind::McSamples);
    if !(want_p || want_e || want_mc) {
        // A strategy that reads no scores (random) still needs to know how many rows there are.
        match (p, e, mc) {
            (true, _, _) => want_p = true,
            (_, true, _) => want_e = true,
            (_, _, true) => want_mc = true,
            _ => {
                return Err(ExperimentError::setting(
                    "strategy",
                    format!("{name} reads no scores, but the number of rows comes from a file: give --probabilities, --embeddings or --mc-samples"),
                ));
            }
        }
    }

    // Open what is needed; every file must have the same rows.
    let probs = if want_p { Some(Table::open(spec.probabilities.as_deref().unwrap(), "[n, classes]")?) } else { None };
    let embs = if want_e { Some(Table::open(spec.embeddings.as_deref().unwrap(), "[n, dim]")?) } else { None };
    let mcs = if want_mc {
        let path = spec.mc_samples.as_deref().unwrap();
        if !is_npy(path) {
            return Err(bad(path, "MC-dropout samples [draws, n, classes] are read from a .npy file"));
        }
        let npy = Npy::open(path)?;
        if npy.shape.len() != 3 || !npy.dtype.is_float() {
            return Err(bad(path, format!("expected a 3-D float array [draws, n, classes], found shape {} ({:?})", shape_text(&npy.shape), npy.dtype)));
        }
        Some(npy)
    } else {
        None
    };
    let mut sizes: Vec<(&Path, usize, String)> = Vec::new();
    if let Some(t) = &probs {
        sizes.push((t.path(), t.rows(), format!("[{}, {}]", t.rows(), t.cols())));
    }
    if let Some(t) = &embs {
        sizes.push((t.path(), t.rows(), format!("[{}, {}]", t.rows(), t.cols())));
    }
    if let Some(m) = &mcs {
        sizes.push((m.path(), m.shape[1], shape_text(&m.shape)));
    }
    let (first_path, n, first_shape) = sizes.first().cloned().expect("every strategy reads at least one file");
    for (path, rows, shape) in &sizes[1..] {
        if *rows != n {
            return Err(bad(
                path,
                format!("expected {n} samples (as {} has, shape {first_shape}), found shape {shape}", first_path.display()),
            ));
        }
    }
    if let (Some(t), Some(m)) = (&probs, &mcs)
        && t.cols() != m.shape[2]
    {
        return Err(bad(m.path(), format!("expected {} classes (as {} has), found shape {}", t.cols(), t.path().display(), shape_text(&m.shape))));
    }

    // The labeled rows and the candidates.
    let mut is_labeled = vec![false; n];
    let mut labeled = Vec::new();
    if let Some(path) = &spec.labeled {
        for (i, v) in read_indices(path)?.into_iter().enumerate() {
            if v < 0 || v as u64 >= n as u64 {
                return Err(bad(path, format!("entry {} is row {v}, outside the {n} rows of {}", i + 1, first_path.display())));
            }
            if !std::mem::replace(&mut is_labeled[v as usize], true) {
                labeled.push(v as usize);
            }
        }
    }
    if n > u32::MAX as usize {
        return Err(bad(first_path, format!("{n} rows: at most {} are supported", u32::MAX)));
    }
    let candidates: Vec<usize> = (0..n).filter(|&i| !is_labeled[i]).collect();
    let ids: Vec<SampleId> = candidates.iter().map(|&i| SampleId(i as u32)).collect();
    let labeled_ids: Vec<SampleId> = labeled.iter().map(|&i| SampleId(i as u32)).collect();

    let probabilities_of = |rows: &[usize]| -> Result<Probabilities> {
        let t = probs.as_ref().unwrap();
        let mut data = t.gather(rows)?;
        check_distributions(t.path(), &mut data, t.cols(), spec.normalize, |r| format!("row {}", rows[r]))?;
        Ok(Probabilities::new(data, rows.len(), t.cols())?)
    };
    let embeddings_of = |rows: &[usize]| -> Result<Matrix> {
        let t = embs.as_ref().unwrap();
        let data = t.gather(rows)?;
        if let Some(at) = data.iter().position(|v| !v.is_finite()) {
            return Err(bad(t.path(), format!("row {}, column {} is {}: embeddings must be finite", rows[at / t.cols()], at % t.cols(), data[at])));
        }
        Ok(Matrix::new(data, rows.len(), t.cols())?)
    };

    let mut scores = Scores::default();
    let cand_p = if need(ScoreKind::Probabilities) || need(ScoreKind::GradientEmbeddings) { Some(probabilities_of(&candidates)?) } else { None };
    let cand_e = if need(ScoreKind::Embeddings) || need(ScoreKind::PoolEmbeddings) || need(ScoreKind::GradientEmbeddings) {
        Some(embeddings_of(&candidates)?)
    } else {
        None
    };
    if need(ScoreKind::GradientEmbeddings) {
        let g = quarry_models::logistic::gradient_embedding(cand_p.as_ref().unwrap(), cand_e.as_ref().unwrap());
        scores.set(ScoreKind::GradientEmbeddings, g);
    }
    if need(ScoreKind::LabeledEmbeddings) {
        scores.set(ScoreKind::LabeledEmbeddings, embeddings_of(&labeled)?);
    }
    if need(ScoreKind::LabeledProbabilities) {
        scores.set(ScoreKind::LabeledProbabilities, probabilities_of(&labeled)?);
    }
    if let Some(m) = mcs.as_ref().filter(|_| need(ScoreKind::McSamples)) {
        let (draws, classes) = (m.shape[0], m.shape[2]);
        let mut data = Vec::with_capacity(draws * candidates.len() * classes);
        for t in 0..draws {
            for &r in &candidates {
                let at = (t * n + r) * classes;
                m.extend_f32(at, at + classes, &mut data)?;
            }
        }
        let per_draw = candidates.len();
        check_distributions(m.path(), &mut data, classes, spec.normalize, |r| format!("draw {}, row {}", r / per_draw, candidates[r % per_draw]))?;
        scores.set(ScoreKind::McSamples, McSamples::new(data, draws, candidates.len(), classes)?);
    }
    let classes = cand_p.as_ref().map(|p| p.n_classes()).or(mcs.as_ref().map(|m| m.shape[2])).unwrap_or(0);
    if need(ScoreKind::Embeddings) {
        scores.set(ScoreKind::Embeddings, cand_e.clone().unwrap());
    }
    if need(ScoreKind::PoolEmbeddings) {
        scores.set(ScoreKind::PoolEmbeddings, cand_e.unwrap());
    }
    if need(ScoreKind::Probabilities) {
        scores.set(ScoreKind::Probabilities, cand_p.unwrap());
    }

    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    strategy.check_scale(candidates.len(), classes)?;
    let ctx = QueryContext { candidates: &ids, scores: &scores, labeled: &labeled_ids, labeled_labels: &[], what_if: None };
    let mut rng = seeded_rng(spec.seed, streams::STRATEGY << 32);
    Ok(strategy.select(&ctx, spec.batch, &mut rng)?.picks)
}

/// The picks as `index,score` lines under that header.
pub fn picks_csv(picks: &[Pick]) -> String {
    let mut out = String::from("index,score\n");
    for p in picks {
        out.push_str(&format!("{},{}\n", p.id.0, p.score));
    }
    out
}

/// Refuses an `--out` that is one of the inputs (it would be overwritten).
pub fn check_out(spec: &SelectSpec, out: &Path) -> Result<()> {
    let Ok(target) = out.canonicalize() else { return Ok(()) };
    for input in [&spec.probabilities, &spec.embeddings, &spec.mc_samples, &spec.labeled].into_iter().flatten() {
        if input.canonicalize().is_ok_and(|p| p == target) {
            return Err(ExperimentError::setting("out", format!("{} is an input; choose another file", out.display())));
        }
    }
    Ok(())
}
