//! Real use on a folder of unlabeled images: from the labels a person has given so far (a CSV
//! file they keep), the next batch to label.
//!
//! With fewer than two classes labeled no head can be trained, so the batch is a cold start:
//! k-means++ seeding on the pretrained backbone's embeddings (diverse images). After that the
//! softmax head is fitted on the labeled images (and, with `train_patches`, their augmented
//! patches) and the strategy — AIFT by default — picks from every image not yet answered. An
//! image labeled `-` was marked impossible to label: it is never proposed again, and once every
//! image is labeled or marked, there is nothing left to ask (AIFT's third stop).
//!
//! The folder is read as a whole tree (images at the top and in sub-folders at any depth, named by
//! their path relative to it); the labels file is read by [`crate::labels`]. Nothing the person
//! gave is overwritten: the labels file is only read, the batch file (`--out`) is checked by
//! [`check_out`] before any work and written atomically by [`write_batch`], and the features cache
//! only ever replaces a feature cache.

use crate::images::{AugmentedPatches, Featurizer, ImageSet, PatchCache, image_features};
use crate::labels::{Correction, read_entries, read_labels, starts_with_header};
use crate::patch_scores::PatchScores;
use crate::{ExperimentError, Result};
use quarry_core::{Answer, Matrix, SampleId, Session, SessionSettings, seeded_rng};
use quarry_data::image_folder::scan_image_tree;
use quarry_data::{Skipped, decode_all, is_image_file};
use quarry_models::imagenet_input::decode_image;
use quarry_models::{Committee, EfficientNetLite0, LogisticRegressionLearner, LogisticRegressionParams};
use quarry_strategies::StrategyOptions;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::labels::IMPOSSIBLE;

/// What `quarry query` was asked.
pub struct QuerySpec {
    /// A folder of images: the images in it and in its sub-folders at any depth (the sub-folder
    /// names mean nothing; a file is named by its path relative to the folder, `sub/x.png`).
    pub folder: PathBuf,
    /// `file,label` lines (see [`crate::labels`]); `file` is relative to `folder`. Missing: no
    /// labels yet.
    pub labels: PathBuf,
    pub weights: PathBuf,
    pub resolution: usize,
    pub patches: usize,
    pub patch_scale: f64,
    pub train_patches: bool,
    pub strategy: String,
    pub options: StrategyOptions,
    pub batch: usize,
    pub c: f64,
    pub seed: u64,
    /// Keep the backbone's features of the folder in this file between calls (rebuilt when the
    /// images, weights or resolution changed). Only a missing file or a feature cache is written.
    pub features_cache: Option<PathBuf>,
    /// The classes, in this order (`--classes`): a label outside them is an error. `None`: every
    /// label used is a class, sorted.
    pub classes: Option<Vec<String>>,
}

/// The model's guess for a proposed image.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    pub class: String,
    /// The head's probability of that class.
    pub probability: f64,
}

/// A proposed image.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Relative to the folder, `/`-separated.
    pub file: String,
    /// `None` during the cold start (no model yet).
    pub guess: Option<Guess>,
}

/// The next batch to label.
#[derive(Debug)]
pub struct Proposal {
    /// The images to label next, in the order the strategy ranked them.
    pub picks: Vec<Pick>,
    /// How they were chosen.
    pub how: String,
    pub labeled: usize,
    pub impossible: usize,
    pub unanswered: usize,
    /// The classes (the `--classes` order, or sorted) and how many labels each has.
    pub classes: Vec<String>,
    pub class_counts: Vec<usize>,
    /// Later lines of the labels file that changed a file's label (the later one was used).
    pub corrections: Vec<Correction>,
    /// Lines that repeated a file's label unchanged.
    pub repeats: usize,
    /// Images that could not be read (reported, left out).
    pub skipped: Vec<Skipped>,
}

impl Proposal {
    /// The proposed files, in order.
    pub fn files(&self) -> Vec<&str> {
        self.picks.iter().map(|p| p.file.as_str()).collect()
    }
}

/// Where `path` leads: itself canonicalized when it exists (symbolic links and `./` resolved),
/// else its canonical folder joined with its name. `None` when even the folder is missing.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let name = path.file_name()?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(std::fs::canonicalize(parent).ok()?.join(name))
}

/// Checks `--out` before anything is computed or written, and returns the file to write (the
/// path with links resolved). Refused: the labels file, the weights, the features cache, an
/// image of the folder, a folder, an existing file that is not a batch file quarry wrote (no
/// `file,label` header), and a batch file holding answers the labels file does not have yet.
pub fn check_out(spec: &QuerySpec, out: &Path) -> Result<PathBuf> {
    let refuse = |why: String| Err(ExperimentError::setting("out", format!("{}: {why}", out.display())));
    if std::fs::symlink_metadata(out).is_ok() && !out.exists() {
        return refuse("is a symbolic link to nothing; name the file itself".into());
    }
    let Some(target) = resolve(out) else {
        return refuse("its folder does not exist".into());
    };
    if target.is_dir() {
        return refuse("is a folder; name a file to write the batch to".into());
    }
    let same = |other: &Path| resolve(other).is_some_and(|o| o == target);
    if same(&spec.labels) {
        return refuse(format!("is the labels file (--labels {}); quarry never writes it: write the batch to another file", spec.labels.display()));
    }
    if same(&spec.weights) {
        return refuse(format!("is the weights file (--weights {})", spec.weights.display()));
    }
    if let Some(cache) = spec.features_cache.as_deref().filter(|c| same(c)) {
        return refuse(format!("is the features cache (--features-cache {})", cache.display()));
    }
    if let Ok(folder) = std::fs::canonicalize(&spec.folder)
        && target.starts_with(&folder)
        && is_image_file(&target)
    {
        return refuse(format!("is an image of the folder --data {}; write the batch to a .csv file", spec.folder.display()));
    }
    check_existing_out(spec, out, &target)?;
    Ok(target)
}

/// An existing batch file may be replaced only when it is one (a `file,label` header) and every
/// answer filled in there is already in the labels file.
fn check_existing_out(spec: &QuerySpec, out: &Path, target: &Path) -> Result<()> {
    let refuse = |why: String| Err(ExperimentError::setting("out", format!("{}: {why}", out.display())));
    let bytes = match std::fs::read(target) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return refuse(format!("cannot read what is there: {e}")),
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(());
    }
    let not_ours = "refusing to overwrite it: name a new file, or an earlier batch file";
    if !starts_with_header(&bytes) {
        return refuse(format!("exists and is not a batch file quarry wrote (no `file,label` header); {not_ours}"));
    }
    let entries = crate::labels::parse_entries(&bytes, out)
        .map_err(|e| ExperimentError::setting("out", format!("exists and cannot be read as a batch file ({e}); {not_ours}")))?;
    let known: HashSet<String> = read_entries(&spec.labels)
        .map_err(|e| ExperimentError::setting("labels", e.to_string()))?
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.file)
        .collect();
    let pending: Vec<&str> = entries.iter().filter(|e| !e.label.is_empty() && !known.contains(&e.file)).map(|e| e.file.as_str()).collect();
    if !pending.is_empty() {
        let shown = pending.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        let more = if pending.len() > 5 { format!(" and {} more", pending.len() - 5) } else { String::new() };
        return refuse(format!(
            "holds {} answer(s) that {} does not have yet ({shown}{more}): append those lines to it first (or delete this file to drop them); refusing to overwrite it",
            pending.len(),
            spec.labels.display()
        ));
    }
    Ok(())
}

/// Writes the batch to `target` (from [`check_out`]) atomically: a temporary file beside it,
/// synced, then renamed over it, after checking once more that no answers were filled in there
/// meanwhile. `out` is the path as given, for messages.
pub fn write_batch(spec: &QuerySpec, out: &Path, target: &Path, picks: &[Pick]) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| ExperimentError::setting("out", format!("{}: {what}: {e}", out.display()));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(batch_csv(picks).as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("cannot write", e));
    }
    if let Err(e) = check_existing_out(spec, out, target) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, target).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        fail("cannot move the new batch into place", e)
    })
}

/// The next `spec.batch` images to label.
pub fn propose(spec: &QuerySpec) -> Result<Proposal> {
    if spec.batch == 0 {
        return Err(ExperimentError::setting("batch", "must be at least 1"));
    }
    crate::config::check_patches(spec.patches, spec.resolution, spec.patch_scale)?;
    let strategy = quarry_strategies::by_name_with(&spec.strategy, &spec.options)
        .map_err(|e| ExperimentError::setting("strategy", e.to_string()))?;
    if let Some(cache) = &spec.features_cache {
        // Before any work: a cache path naming something else is refused, never overwritten.
        quarry_models::feature_cache::check_replaceable(cache).map_err(|e| ExperimentError::setting("features-cache", e.to_string()))?;
        let at = resolve(cache);
        if at.is_some() && at == resolve(&spec.labels) {
            return Err(ExperimentError::setting("features-cache", format!("{}: is the labels file (--labels)", cache.display())));
        }
        if let (Some(at), Ok(folder)) = (&at, std::fs::canonicalize(&spec.folder))
            && at.starts_with(&folder)
            && is_image_file(at)
        {
            return Err(ExperimentError::setting("features-cache", format!("{}: names an image of the folder --data", cache.display())));
        }
    }
    let tree = scan_image_tree(&spec.folder).map_err(|e| ExperimentError::setting("data", e.to_string()))?;
    if tree.is_empty() {
        return Err(ExperimentError::setting("data",
            format!("{}: no .png, .jpg or .jpeg images in it or in its sub-folders", spec.folder.display()),
        ));
    }
    let (decoded, skipped) = decode_all(&tree.files, decode_image);
    let names: Vec<String> = decoded.iter().map(|(i, _)| tree.names[*i].clone()).collect();
    let paths: Vec<PathBuf> = decoded.iter().map(|(i, _)| tree.files[*i].clone()).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let unreadable: HashSet<&str> =
        tree.files.iter().zip(&tree.names).filter(|(f, _)| skipped.iter().any(|s| &s.path == *f)).map(|(_, n)| n.as_str()).collect();

    // The labels so far: each must name a readable image of the folder.
    let given = read_labels(&spec.labels, spec.classes.as_deref()).map_err(|e| ExperimentError::setting("labels", e.to_string()))?;
    let mut answers: HashMap<usize, Option<String>> = HashMap::new();
    for a in &given.answers {
        let Some(&row) = index.get(a.file.as_str()) else {
            let why = if unreadable.contains(a.file.as_str()) { "could not be read" } else { "is not an image in the folder" };
            return Err(ExperimentError::setting("labels",
                format!("{}:{}: {} {why} ({})", spec.labels.display(), a.line, a.file, spec.folder.display()),
            ));
        };
        answers.insert(row, a.label.clone());
    }
    let class_counts = given.class_counts();
    let classes_labeled = class_counts.iter().filter(|&&n| n > 0).count();
    let labeled = answers.values().filter(|a| a.is_some()).count();
    let impossible = answers.len() - labeled;
    let open: Vec<usize> = (0..names.len()).filter(|i| !answers.contains_key(i)).collect();
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
        skipped,
    };
    if open.is_empty() {
        proposal.how = if impossible > 0 {
            format!("nothing left to ask: every image is labeled or marked impossible to label ({impossible} marked)")
        } else {
            "nothing left to ask: every image is labeled".into()
        };
        return Ok(proposal);
    }

    let model = EfficientNetLite0::load(&spec.weights).map_err(|e| ExperimentError::setting("weights", e.to_string()))?;
    let featurizer = Arc::new(Featurizer::Pooled(Arc::new(model)));
    let images: Vec<image::DynamicImage> = decoded.into_iter().map(|(_, img)| img).collect();
    let cache = spec.features_cache.as_deref().map(|file| (file, spec.weights.as_path()));
    let features = image_features(&featurizer, &images, &paths, spec.resolution, cache)?;
    let k = spec.batch.min(open.len());

    if classes_labeled < 2 {
        // Cold start: diverse images by k-means++ seeding on the embeddings of the open images.
        proposal.picks = cold_start(&features, &open, k, spec.seed, &names);
        proposal.how = format!("cold start: k-means++ on the pretrained embeddings ({classes_labeled} class(es) labeled; a head needs 2)");
        return Ok(proposal);
    }

    // Every answer so far, taught at once (round 0); '-' = cannot be labeled.
    let taught = answers_to_teach(&answers, &proposal.classes);
    let head = Box::new(LogisticRegressionLearner::new(LogisticRegressionParams::new().c(spec.c)));
    let learner = committee_if_needed(head, strategy.as_ref(), &spec.options, spec.seed)?;
    let settings = SessionSettings { mc_draws: spec.options.mc_draws, ..SessionSettings::seeded(spec.seed) };
    let patches = PatchScores {
        patches: AugmentedPatches {
            featurizer,
            images: Arc::new(ImageSet { images, files: names.iter().map(PathBuf::from).collect() }),
            cache: Arc::new(PatchCache::default()),
            origin: (0..names.len()).collect(),
            patches: spec.patches,
            min_scale: spec.patch_scale,
            resolution: spec.resolution,
        },
        seed: crate::learners::patch_seed(spec.seed),
    };
    let n_classes = proposal.classes.len();
    let mut session = Session::new(features, n_classes, learner, strategy, settings).with_provider(&patches);
    if spec.train_patches {
        session = session.with_augment(&patches);
    }
    session.teach(&taught)?;
    proposal.picks = guessed_picks(&session, k, &proposal.classes, &names)?;
    proposal.how = format!("{} on a softmax head fitted to {labeled} labels in {classes_labeled} classes", spec.strategy);
    Ok(proposal)
}

/// A cold start (fewer than two classes labeled, so no model yet): `k` diverse samples among the
/// `open` rows of `features`, by k-means++ seeding, named by `names`.
pub(crate) fn cold_start(features: &Matrix, open: &[usize], k: usize, seed: u64, names: &[String]) -> Vec<Pick> {
    let x = features.select_rows(open);
    let mut rng = seeded_rng(seed, 0xC01D);
    let first = rand::Rng::random_range(&mut rng, 0..open.len());
    let picks = quarry_strategies::diversity::kmeans_pp_seeding(&x, None, first, k, &mut rng);
    picks.into_iter().map(|(j, _)| Pick { file: names[open[j]].clone(), guess: None }).collect()
}

/// Every answer of the labels file (row → label, `None` = cannot be labeled) as the session takes
/// them, in row order, each label as its index in `classes`.
pub(crate) fn answers_to_teach(answers: &HashMap<usize, Option<String>>, classes: &[String]) -> Vec<(SampleId, Answer)> {
    let class_of: HashMap<&str, u32> = classes.iter().enumerate().map(|(c, n)| (n.as_str(), c as u32)).collect();
    let mut taught: Vec<(SampleId, Answer)> =
        answers.iter().map(|(&i, a)| (SampleId::from(i), a.as_deref().map_or(Answer::CannotLabel, |l| Answer::Label(class_of[l])))).collect();
    taught.sort_by_key(|(id, _)| *id);
    taught
}

/// `base`, or a bagging committee of it when the strategy reads committee votes.
pub(crate) fn committee_if_needed(
    base: Box<dyn quarry_core::Learner>,
    strategy: &dyn quarry_core::Strategy,
    options: &StrategyOptions,
    seed: u64,
) -> Result<Box<dyn quarry_core::Learner>> {
    Ok(if strategy.needs().has(quarry_core::ScoreKind::Committee) {
        Box::new(Committee::bagging(base, options.committee_size, seed)?)
    } else {
        base
    })
}

/// The session's next `k` picks, named by `names`, each with the model's guess and its probability
/// (written beside it so the person can confirm or correct).
pub(crate) fn guessed_picks(session: &Session, k: usize, classes: &[String], names: &[String]) -> Result<Vec<Pick>> {
    let picks = session.query(k)?.ids();
    let probabilities = session.predict(&picks)?;
    Ok(picks
        .iter()
        .enumerate()
        .map(|(r, id)| {
            let best = probabilities.row(r).iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1));
            let guess = best.map(|(c, &p)| Guess { class: classes[c].clone(), probability: f64::from(p) });
            Pick { file: names[id.index()].clone(), guess }
        })
        .collect())
}

/// The batch as the lines a person fills in: a `file,label,guess,probability` header, then per
/// image its file, an empty label to fill in (or `-`), and the model's guess with its probability
/// (both empty during the cold start). Filled lines can be appended to the labels file as they
/// are: the labels reader ignores the extra columns. Names are quoted where CSV needs it.
pub fn batch_csv(picks: &[Pick]) -> String {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let mut rows = vec![["file".to_string(), "label".into(), "guess".into(), "probability".into()]];
    for p in picks {
        let (guess, probability) = match &p.guess {
            Some(g) => (g.class.clone(), format!("{:.3}", g.probability)),
            None => (String::new(), String::new()),
        };
        rows.push([p.file.clone(), String::new(), guess, probability]);
    }
    for row in &rows {
        // Writing to a Vec cannot fail.
        let _ = w.write_record(row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("quarry-propose-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn png(path: &Path, shade: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(4, 4, image::Luma([shade])).save(path).unwrap();
    }

    fn spec(d: &Path) -> QuerySpec {
        QuerySpec {
            folder: d.join("img"),
            labels: d.join("labels.csv"),
            weights: d.join("no-weights.safetensors"),
            resolution: 32,
            patches: 2,
            patch_scale: 0.5,
            train_patches: false,
            strategy: "margin".into(),
            options: StrategyOptions::default(),
            batch: 2,
            c: 1.0,
            seed: 0,
            features_cache: None,
            classes: None,
        }
    }

    fn pick(file: &str, guess: Option<(&str, f64)>) -> Pick {
        Pick { file: file.into(), guess: guess.map(|(c, p)| Guess { class: c.into(), probability: p }) }
    }

    #[test]
    fn batch_csv_has_guess_columns_and_quotes_names() {
        let text = batch_csv(&[pick("x.png", Some(("cat", 0.8123))), pick("a,b.png", None)]);
        assert_eq!(text, "file,label,guess,probability\nx.png,,cat,0.812\n\"a,b.png\",,,\n");
        // Filled in and appended as they are, the lines read back as labels (extra columns ignored).
        let filled = text.replace("x.png,,", "x.png,dog,").replace("\"a,b.png\",,", "\"a,b.png\",-,");
        let l = crate::labels::labels_from_entries(crate::labels::parse_entries(filled.as_bytes(), Path::new("b")).unwrap(), Path::new("b"), None).unwrap();
        let got: Vec<_> = l.answers.iter().map(|a| (a.file.as_str(), a.label.as_deref())).collect();
        assert_eq!(got, [("x.png", Some("dog")), ("a,b.png", None)]);
    }

    /// Images at the top and in sub-folders (any depth) are all samples, named relative to the
    /// folder; an empty sub-folder is nothing. Before, the top-level images were ignored as soon
    /// as a sub-folder existed, and an empty sub-folder was an error. Every image answered here,
    /// so no weights are needed.
    #[test]
    fn the_whole_tree_is_read_and_labels_use_relative_names() {
        let d = scratch("tree");
        for (f, shade) in [("top.png", 10), ("sub/a.png", 20), ("sub/deep/b.png", 30)] {
            png(&d.join("img").join(f), shade);
        }
        std::fs::create_dir_all(d.join("img/empty")).unwrap();
        std::fs::write(d.join("labels.csv"), "file,label\ntop.png,cat\n./sub/a.png,dog\nsub/deep/b.png,-\n").unwrap();
        let p = propose(&spec(&d)).unwrap();
        assert_eq!((p.labeled, p.impossible, p.unanswered), (2, 1, 0));
        assert!(p.how.contains("nothing left to ask"), "{}", p.how);
        assert_eq!(p.classes, ["cat", "dog"]);

        // One image left: the labels were accepted, the next step is the model (no weights here).
        std::fs::write(d.join("labels.csv"), "file,label\ntop.png,cat\nsub/a.png,dog\n").unwrap();
        let e = propose(&spec(&d)).unwrap_err().to_string();
        assert!(e.starts_with("weights: "), "{e}");
        std::fs::write(d.join("labels.csv"), "top.png,cat\nsub/missing.png,dog\n").unwrap();
        let e = propose(&spec(&d)).unwrap_err().to_string();
        assert!(e.contains("labels.csv:2: sub/missing.png is not an image in the folder"), "{e}");

        let empty = scratch("tree-empty");
        std::fs::create_dir_all(empty.join("img/a/b")).unwrap();
        let e = propose(&spec(&empty)).unwrap_err().to_string();
        assert!(e.starts_with("data: ") && e.contains("no .png, .jpg or .jpeg images in it or in its sub-folders"), "{e}");
        std::fs::remove_dir_all(&d).ok();
        std::fs::remove_dir_all(&empty).ok();
    }

    /// Corrections and the class list reach the proposal: the last line wins and is counted; with
    /// `classes`, a typo is an error naming file:line and the order is the given one.
    #[test]
    fn corrections_and_class_list_reach_the_proposal() {
        let d = scratch("classes");
        png(&d.join("img/a.png"), 1);
        png(&d.join("img/b.png"), 2);
        std::fs::write(d.join("labels.csv"), "\u{feff}file,label\na.png,cat\n\"b.png\",dgo\nfile,label\nb.png,dog\n./b.png,dog\n").unwrap();
        let p = propose(&spec(&d)).unwrap();
        assert_eq!(p.corrections.len(), 1);
        assert_eq!((p.corrections[0].line, p.corrections[0].from.as_str(), p.corrections[0].to.as_str()), (5, "dgo", "dog"));
        assert_eq!(p.repeats, 1);
        let mut s = spec(&d);
        s.classes = Some(vec!["dog".into(), "cat".into(), "bird".into()]);
        let p = propose(&s).unwrap();
        assert_eq!(p.classes, ["dog", "cat", "bird"]);
        assert_eq!(p.class_counts, [1, 1, 0]);
        std::fs::write(d.join("labels.csv"), "a.png,cat\nb.png,dgo\n").unwrap();
        let e = propose(&s).unwrap_err().to_string();
        assert!(e.contains("labels.csv:2: b.png: label \"dgo\" is not one of --classes dog,cat,bird"), "{e}");
        std::fs::remove_dir_all(&d).ok();
    }

    /// `--out` may not be the labels file (also through `./` or a symbolic link, and also before
    /// the labels file exists), the weights, the cache, an image of the folder or a folder.
    #[test]
    fn out_refuses_every_file_the_person_gave() {
        let d = scratch("out");
        png(&d.join("img/a.png"), 1);
        png(&d.join("img/sub/b.png"), 2);
        let mut s = spec(&d);
        let e = check_out(&s, &d.join("labels.csv")).unwrap_err().to_string();
        assert!(e.contains("is the labels file"), "a labels file not written yet is still the labels file: {e}");
        std::fs::write(&s.labels, "file,label\na.png,cat\n").unwrap();
        let dotted = d.join(".").join("labels.csv");
        assert!(check_out(&s, &dotted).unwrap_err().to_string().contains("is the labels file"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&s.labels, d.join("link.csv")).unwrap();
            let e = check_out(&s, &d.join("link.csv")).unwrap_err().to_string();
            assert!(e.starts_with("out: ") && e.contains("link.csv: is the labels file"), "{e}");
        }
        std::fs::write(&s.weights, "weights").unwrap();
        assert!(check_out(&s, &s.weights.clone()).unwrap_err().to_string().contains("is the weights file"));
        s.features_cache = Some(d.join("features.bin"));
        assert!(check_out(&s, &d.join("features.bin")).unwrap_err().to_string().contains("is the features cache"));
        for image in ["img/a.png", "img/sub/b.png", "img/sub/new.jpg"] {
            let e = check_out(&s, &d.join(image)).unwrap_err().to_string();
            assert!(e.contains("is an image of the folder"), "{image}: {e}");
        }
        assert!(check_out(&s, &d.join("img")).unwrap_err().to_string().contains("is a folder"));
        assert!(check_out(&s, &d.join("nowhere/next.csv")).unwrap_err().to_string().contains("its folder does not exist"));
        assert_eq!(check_out(&s, &d.join("next.csv")).unwrap(), std::fs::canonicalize(&d).unwrap().join("next.csv"));
        assert_eq!(std::fs::read(&s.labels).unwrap(), b"file,label\na.png,cat\n", "the labels file is untouched");
        std::fs::remove_dir_all(&d).ok();
    }

    /// An existing `--out` is replaced only when it is a batch file whose filled-in answers are
    /// all in the labels file already; the write is atomic (no temporary file left behind).
    #[test]
    fn out_keeps_answers_not_appended_yet_and_is_written_atomically() {
        let d = scratch("pending");
        png(&d.join("img/a.png"), 1);
        let s = spec(&d);
        std::fs::write(&s.labels, "file,label\na.png,cat\n").unwrap();
        let out = d.join("next.csv");

        let data = d.join("data.csv");
        std::fs::write(&data, "x,y,label\n1,2,cat\n").unwrap();
        let e = check_out(&s, &data).unwrap_err().to_string();
        assert!(e.contains("not a batch file quarry wrote"), "{e}");

        std::fs::write(&out, "file,label,guess,probability\nb.png,dog,cat,0.6\nc.png,,cat,0.5\na.png,cat,,\n").unwrap();
        let e = check_out(&s, &out).unwrap_err().to_string();
        assert!(e.contains("holds 1 answer(s) that") && e.contains("(b.png)") && e.contains("append those lines"), "{e}");
        // Appended: now it may be replaced.
        std::fs::write(&s.labels, "file,label\na.png,cat\nb.png,dog\n").unwrap();
        let target = check_out(&s, &out).unwrap();
        // Filled in while quarry was working: the write is refused and the answers kept.
        std::fs::write(&out, "file,label\nz.png,cat\n").unwrap();
        assert!(write_batch(&s, &out, &target, &[pick("c.png", None)]).is_err());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "file,label\nz.png,cat\n");
        std::fs::write(&out, "file,label\nz.png,\n").unwrap();
        write_batch(&s, &out, &target, &[pick("c.png", Some(("cat", 0.5)))]).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "file,label,guess,probability\nc.png,,cat,0.500\n");
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
        assert!(left.is_empty(), "no temporary file left behind");
        std::fs::remove_dir_all(&d).ok();
    }

    /// `--features-cache` naming the labels file (or any non-cache) is refused before any work,
    /// and the file is left as it was; so is a cache path equal to a labels file not written yet.
    #[test]
    fn features_cache_over_a_csv_is_refused_untouched() {
        let d = scratch("cache");
        png(&d.join("img/a.png"), 1);
        png(&d.join("img/b.png"), 2);
        let mut s = spec(&d);
        s.features_cache = Some(s.labels.clone());
        let e = propose(&s).unwrap_err().to_string();
        assert!(e.starts_with("features-cache: ") && e.contains("labels.csv: is the labels file"), "{e}");
        std::fs::write(&s.labels, "file,label\na.png,cat\n").unwrap();
        let e = propose(&s).unwrap_err().to_string();
        assert!(e.contains("labels.csv: exists and is not a quarry feature cache"), "{e}");
        assert_eq!(std::fs::read(&s.labels).unwrap(), b"file,label\na.png,cat\n");
        std::fs::remove_dir_all(&d).ok();
    }
}
